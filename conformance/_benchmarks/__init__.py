"""The pytest-benchmark suite of SPEC §9, shipped with the package so it runs from a wheel.

Run it with ``tox -e bench``, with ``wcifs-conformance bench --adapter SPEC``, or directly::

    python -m pytest -p no:xdist -o python_files='bench_*.py' --benchmark-only \\
        --pyargs conformance._benchmarks [--conformance-adapter SPEC] [--benchmark-json PATH]

The modules are named ``bench_*.py`` so that no ordinary test run collects them.
"""
