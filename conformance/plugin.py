"""The pytest plugin: ``pytest --pyargs conformance --conformance-adapter SPEC``.

Registers options only; nothing heavy is imported until a conformance test runs.
"""

from __future__ import annotations

from typing import Any

import pytest

ADAPTER_OPTION = "--conformance-adapter"
PROFILE_OPTION = "--conformance-profile"
SEED_OPTION = "--conformance-seed"
REQUIRE_OPTION = "--conformance-require"
MAX_EXAMPLES_OPTION = "--conformance-max-examples"
TRACES_OPTION = "--conformance-traces"
IN_PROCESS_OPTION = "--conformance-in-process"
CALL_TIMEOUT_OPTION = "--conformance-call-timeout"
WORKERS_OPTION = "--conformance-workers"
_RESULT = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wcifs-conformance", "WCIFS anti-virus conformance suite")
    group.addoption(ADAPTER_OPTION, metavar="SPEC", default=None,
                    help="adapter to check: reference, module.path:attr, path/to/file.py:attr, "
                         "'exec:COMMAND [ARGS]' or lib:PATH")
    group.addoption(PROFILE_OPTION, default="quick", choices=("quick", "certify", "deep"),
                    help="run profile (default: quick)")
    group.addoption(SEED_OPTION, type=int, default=None, metavar="N",
                    help="seed (default: random for quick and deep, fixed for certify)")
    group.addoption(REQUIRE_OPTION, default="conformant", metavar="LEVEL[,LEVEL...]",
                    help="levels the adapter must meet (default: conformant)")
    group.addoption(MAX_EXAMPLES_OPTION, type=int, default=None, metavar="N",
                    help="fewer examples than the profile's, for a short local run")
    group.addoption(TRACES_OPTION, default=None, metavar="DIR",
                    help="write each violation's trace to DIR/<ID>.json (for "
                         "wcifs-conformance replay)")
    group.addoption(IN_PROCESS_OPTION, action="store_true", default=False,
                    help="load a Python or lib: adapter into the test process instead of its "
                         "own adapter process (faster, not isolated)")
    group.addoption(CALL_TIMEOUT_OPTION, type=float, default=None, metavar="SECONDS",
                    help="the longest an adapter call may take before it counts as a hang "
                         "(SAFE-13; default: 5)")
    group.addoption(WORKERS_OPTION, type=int, default=1, metavar="N",
                    help="split the budget across N worker processes, as certify -j N "
                         "(default: 1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a check of the adapter named by "
                            f"{ADAPTER_OPTION}")
    spec = config.getoption(ADAPTER_OPTION, None)
    if spec:
        # A bad spec or level is a usage error (exit 4), reported once, before collection;
        # the adapter itself is loaded only where it runs, isolated by default.
        required_levels(config)
        from ._errors import ConformanceError
        from ._loading import parse_spec

        try:
            parse_spec(spec)
        except ConformanceError as e:
            raise pytest.UsageError(f"{ADAPTER_OPTION} {spec}: {e}") from None
        timeout = config.getoption(CALL_TIMEOUT_OPTION, None)
        if timeout is not None and not timeout > 0:
            raise pytest.UsageError(f"{CALL_TIMEOUT_OPTION}: give a number of seconds above 0")
        if config.getoption(WORKERS_OPTION, 1) < 1:
            raise pytest.UsageError(f"{WORKERS_OPTION}: give a number of workers from 1")


@pytest.fixture(scope="session")
def conformance_result(request: pytest.FixtureRequest) -> Any:
    """The whole conformance run for the adapter named on the command line, made once."""
    config = request.config
    if _RESULT in config.stash:
        return config.stash[_RESULT]
    spec = config.getoption(ADAPTER_OPTION)
    if not spec:
        pytest.skip(f"no adapter named: pass {ADAPTER_OPTION} SPEC")
    from . import ConformanceError, run_conformance
    from ._faults import DEFAULT_CALL_TIMEOUT

    try:
        result = run_conformance(spec, config.getoption(PROFILE_OPTION),
                                 seed=config.getoption(SEED_OPTION), spec=spec,
                                 max_examples=config.getoption(MAX_EXAMPLES_OPTION),
                                 isolate=not config.getoption(IN_PROCESS_OPTION),
                                 call_timeout=config.getoption(CALL_TIMEOUT_OPTION)
                                 or DEFAULT_CALL_TIMEOUT,
                                 workers=config.getoption(WORKERS_OPTION))
    except ConformanceError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_RESULT] = result
    traces = config.getoption(TRACES_OPTION)
    if traces:
        _write_traces(result, traces)
    return result


def _write_traces(result: Any, folder: str) -> None:
    import json
    from pathlib import Path

    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for v in result.violations:
            (out / f"{v.id}.json").write_text(
                json.dumps(v.trace(result.adapter_spec), indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise pytest.UsageError(f"{TRACES_OPTION} {folder}: {e.strerror or e}") from None


def required_levels(config: pytest.Config) -> list[str]:
    from ._invariants import LEVELS

    levels = [s.strip() for s in str(config.getoption(REQUIRE_OPTION)).split(",") if s.strip()]
    unknown = [level for level in levels if level not in LEVELS]
    if unknown:
        raise pytest.UsageError(f"{REQUIRE_OPTION}: unknown level(s) {', '.join(unknown)}; "
                                f"choose from {', '.join(LEVELS)}")
    return levels


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    result = config.stash.get(_RESULT, None)
    if result is not None:
        terminalreporter.section("wcifs conformance")
        terminalreporter.write_line(result.summary())
