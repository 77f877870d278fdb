"""Adapters in any language (SPEC §10): what isolation and the protocol cost.

- **round trip**: ``post_create`` of a local-layer cache hit through each route (an adapter
  process over the JSON-lines protocol, the suite's own worker, and a C library through
  ``ctypes`` in-process), beside the in-process reference's call and the ``dict.get`` floor,
  all timed in the same run;
- **certify time**: one and the same run (fixed seed and budget) of the reference in-process,
  the reference isolated, the ``exec:`` sample and the C sample (isolated and in-process),
  reported as seconds and as a ratio to the in-process reference.

``WCIFS_BENCH_PROTOCOL_EXAMPLES`` sets the budget of the certify-time runs (default 1,000
examples of the certify profile's seed; the figures are ratios, so a shorter run compares
alike).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance import run_conformance
from conformance._bench import HotPathCase, cache_hit_case, floor_lookup
from conformance._profiles import PROFILES, default_seed
from conformance._session import AdapterSession, open_adapter
from reference.adapter import reference_factory
from reference.contract import Verdict

from .bench_hot_path import measure
from .conftest import pedantic

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
EXEC_SAMPLE = f"exec:{sys.executable} {SAMPLES / 'exec_adapter.py'}"
EXAMPLES = int(os.environ.get("WCIFS_BENCH_PROTOCOL_EXAMPLES", "1000"))
ROUTES = ("reference in-process", "reference isolated", "exec sample", "lib sample isolated",
          "lib sample in-process")


@pytest.fixture(scope="module")
def c_sample() -> Iterator[str | None]:
    """The C sample built with the system compiler (None without one)."""
    from conformance._native_bench import build_library

    with tempfile.TemporaryDirectory(prefix="wcifs-sample-") as tmp:
        yield build_library(SAMPLES / "sample_adapter.c", Path(tmp) / "sample.so")


def routes(c_sample: str | None) -> dict[str, tuple[str, bool]]:
    """name -> (spec, isolate)."""
    out = {"reference in-process": ("reference", False),
           "reference isolated": ("reference", True),
           "exec sample": (EXEC_SAMPLE, True)}
    if c_sample is not None:
        out["lib sample isolated"] = (f"lib:{c_sample}", True)
        out["lib sample in-process"] = (f"lib:{c_sample}", False)
    return out


@pytest.fixture(scope="module")
def sessions(c_sample: str | None) -> Iterator[dict[str, AdapterSession]]:
    opened = {name: open_adapter(spec, isolate=iso)
              for name, (spec, iso) in routes(c_sample).items()}
    try:
        yield opened
    finally:
        for session in opened.values():
            session.close()


def _case(session: AdapterSession) -> HotPathCase:
    return cache_hit_case(session.raw)


@pytest.mark.benchmark(group="protocol-round-trip")
def test_round_trip_floor(benchmark: BenchmarkFixture) -> None:
    get, key = floor_lookup(cache_hit_case(reference_factory()).key)
    benchmark.extra_info["metric"] = "floor_dict_get"
    measure(benchmark, get, key)


@pytest.mark.benchmark(group="protocol-round-trip")
@pytest.mark.parametrize("route", ROUTES)
def test_round_trip(benchmark: BenchmarkFixture, sessions: dict[str, AdapterSession],
                    route: str) -> None:
    if route not in sessions:
        pytest.skip("no C compiler: the C sample was not built")
    case = _case(sessions[route])
    assert case.cache_hit, f"{route}: no cache hit to measure"
    benchmark.extra_info.update(metric="post_create_round_trip", route=route)
    assert measure(benchmark, case.adapter.post_create, case.post) is Verdict.SKIP


_SECONDS: dict[str, float] = {}


@pytest.mark.benchmark(group="protocol-certify-time")
@pytest.mark.parametrize("route", ROUTES)
def test_certify_time(benchmark: BenchmarkFixture, sessions: dict[str, AdapterSession],
                      route: str) -> None:
    if route not in sessions:
        pytest.skip("no C compiler: the C sample was not built")
    seed = default_seed(PROFILES["certify"])

    def run() -> Any:
        t0 = time.perf_counter()
        result = run_conformance(sessions[route], "certify", seed=seed, max_examples=EXAMPLES)
        _SECONDS[route] = time.perf_counter() - t0
        return result

    result = pedantic(benchmark, run)
    assert all(result.levels.values()), result.summary()
    base = _SECONDS.get("reference in-process")
    benchmark.extra_info.update(
        metric="certify_seconds", route=route, examples=EXAMPLES,
        ratio_to_in_process_reference=None if not base else round(_SECONDS[route] / base, 2))
