"""Hot path (SPEC §9): ``post_create`` of a local-layer cache hit and ``pre_create`` in a
container context, for the adapter under test and for the reference, beside ``dict.get``
of the same key (the in-process floor). All of them go through pytest-benchmark's own loop
(``benchmark.pedantic(fn, (arg,), ...)``, the loop ``benchmark(fn, arg)`` runs), so the
floor and the calls are timed alike; iterations per round are fixed from a first estimate
rather than by pytest-benchmark's calibration, which one slow call can throw off."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance._bench import HotPathCase, cache_hit_case, floor_lookup, hot_path
from conformance._watchdog import watchdog
from reference.adapter import reference_factory
from reference.contract import Verdict

from .conftest import BenchTarget, note, pedantic

WHO = ("adapter", "reference")
#: Seconds per round, and per benchmark.
ROUND = 100e-6
BUDGET = 0.5
#: Seconds one measurement may take, calibration included, before it counts as a hang.
WALL_CLOCK = 60.0


def measure(benchmark: BenchmarkFixture, fn: Callable[[Any], object], arg: object) -> object:
    """``fn(arg)`` in rounds of ``ROUND`` seconds for ``BUDGET`` seconds; its last result.
    The whole measurement is under a watchdog: an adapter that hangs ends it (SPEC §10)."""
    return watchdog(WALL_CLOCK).call(getattr(fn, "__name__", "call"), _measure, benchmark,
                                     fn, arg)


def _measure(benchmark: BenchmarkFixture, fn: Callable[[Any], object], arg: object) -> object:
    timer = timeit.Timer("f(x)", globals={"f": fn, "x": arg})
    number, elapsed = 1, 0.0
    while elapsed < 2e-3 and number < 1_000_000:
        number *= 10
        elapsed = timer.timeit(number)
    per_call = max(elapsed / number, 1e-9)
    iterations = max(1, min(100_000, int(ROUND / per_call)))
    rounds = max(5, min(20_000, int(BUDGET / (iterations * per_call))))
    return pedantic(benchmark, fn, (arg,), iterations=iterations, rounds=rounds,
                    warmup_rounds=1)


@pytest.fixture(scope="module")
def cases(bench_target: BenchTarget) -> dict[str, HotPathCase]:
    return {"adapter": cache_hit_case(bench_target.factory),
            "reference": cache_hit_case(reference_factory())}


@pytest.mark.benchmark(group="hot-path")
def test_floor_dict_get(benchmark: BenchmarkFixture, cases: dict[str, HotPathCase]) -> None:
    get, key = floor_lookup(cases["reference"].key)
    benchmark.extra_info["metric"] = "floor_dict_get"
    measure(benchmark, get, key)


@pytest.mark.benchmark(group="hot-path")
@pytest.mark.parametrize("who", WHO)
def test_post_create_hit(benchmark: BenchmarkFixture, cases: dict[str, HotPathCase], who: str,
                         request: pytest.FixtureRequest) -> None:
    case = cases[who]
    if not case.cache_hit:
        note(request.config, case.note)
        pytest.skip(case.note)
    benchmark.extra_info.update(metric="post_create_hit", who=who, adapter=case.info.name)
    verdict = measure(benchmark, case.adapter.post_create, case.post)
    assert verdict is Verdict.SKIP, f"{case.info.name} stopped answering SKIP while measured"


@pytest.mark.benchmark(group="hot-path")
@pytest.mark.parametrize("who", WHO)
def test_pre_create(benchmark: BenchmarkFixture, cases: dict[str, HotPathCase],
                    who: str) -> None:
    case = cases[who]
    benchmark.extra_info.update(metric="pre_create", who=who, adapter=case.info.name)
    measure(benchmark, case.adapter.pre_create, case.pre)


@pytest.mark.benchmark(group="hot-path-quick")
def test_quick_hot_path(benchmark: BenchmarkFixture, bench_target: BenchTarget) -> None:
    """The quick in-process measurement the certificate records, for comparison."""
    result = pedantic(benchmark, hot_path, (bench_target.factory,))
    benchmark.extra_info.update(metric="hot_path_quick", hot_path=result)
