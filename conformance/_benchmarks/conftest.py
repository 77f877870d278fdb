"""Fixtures and the JSON hook of the benchmark suite (SPEC §9).

The adapter under test comes from the plugin's ``--conformance-adapter`` (default: the
reference). ``pytest_benchmark_update_json`` adds a ``"wcifs"`` object to the JSON:
ratios to the floors, the targets, and the adapter's identity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ..plugin import ADAPTER_OPTION, CALL_TIMEOUT_OPTION

#: Benchmarks run in this module order: the hot path first, on a quiet heap.
ORDER = ("bench_hot_path", "bench_throughput", "bench_scale")
_NOTES = pytest.StashKey[list[str]]()
_TARGET = pytest.StashKey["BenchTarget"]()
_SESSION = pytest.StashKey[Any]()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BenchTarget:
    spec: str
    factory: Callable[[], Any]
    identity: dict[str, str]


def _target(config: pytest.Config) -> BenchTarget:
    if _TARGET not in config.stash:
        from .. import ConformanceError
        from .._bench import adapter_identity
        from .._faults import DEFAULT_CALL_TIMEOUT
        from .._session import open_adapter

        spec = config.getoption(ADAPTER_OPTION) or "reference"
        timeout = config.getoption(CALL_TIMEOUT_OPTION) or DEFAULT_CALL_TIMEOUT
        try:
            # These benchmarks run in their own process: the in-process hot path is what
            # they time. An exec: adapter stays in its process, timed through the protocol.
            session = open_adapter(spec, isolate=False, call_timeout=timeout)
            config.stash[_SESSION] = session
            factory = session.raw
            identity = adapter_identity(spec, factory)
        except ConformanceError as e:
            pytest.exit(f"{ADAPTER_OPTION} {spec}: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
        config.stash[_TARGET] = BenchTarget(spec, factory, identity)
    return config.stash[_TARGET]


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def note(config: pytest.Config, text: str) -> None:
    """Record a remark for the JSON summary (e.g. an adapter with no cache hit)."""
    notes = config.stash.setdefault(_NOTES, [])
    if text not in notes:
        notes.append(text)


def pedantic(benchmark: BenchmarkFixture, target: Callable[..., T], args: Sequence[object] = (),
             *, rounds: int = 1, iterations: int = 1, warmup_rounds: int = 0) -> T:
    """``benchmark.pedantic`` with types: ``target(*args)``, ``iterations`` times a round."""
    result: T = benchmark.pedantic(  # type: ignore[no-untyped-call]
        target, args=tuple(args), rounds=rounds, iterations=iterations,
        warmup_rounds=warmup_rounds)
    return result


@pytest.fixture(scope="session")
def bench_target(pytestconfig: pytest.Config) -> BenchTarget:
    """The adapter named by ``--conformance-adapter`` (default: ``reference``)."""
    return _target(pytestconfig)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = getattr(item, "module", None)
        short = getattr(name, "__name__", "").rpartition(".")[2]
        return ORDER.index(short) if short in ORDER else len(ORDER)

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any,
                                 output_json: dict[str, Any]) -> None:
    from .._bench import summarize

    notes: list[str] = config.stash.get(_NOTES, [])
    output_json["wcifs"] = summarize(output_json, _target(config).identity, notes)
