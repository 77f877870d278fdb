"""Suite throughput (SPEC §9): checked operations per second of the conformance engine
against the reference adapter, beside a no-op Hypothesis state machine in the same run
(the framework floor), both counted as steps (operations, rule executions) per second."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance._bench import engine_throughput, noop_machine_throughput

from .conftest import pedantic

ROUNDS = 2


def _best(benchmark: BenchmarkFixture, run: Any, metric: str) -> None:
    results: list[dict[str, Any]] = []
    pedantic(benchmark, lambda: results.append(run()), rounds=ROUNDS)
    best = max(results, key=lambda r: float(r["steps_per_second"]))
    benchmark.extra_info.update(metric=metric, rounds=ROUNDS, **best)


@pytest.mark.benchmark(group="throughput")
def test_engine_throughput(benchmark: BenchmarkFixture) -> None:
    _best(benchmark, engine_throughput, "engine_throughput")
    assert benchmark.extra_info["conformant"], "the reference adapter failed the suite"


@pytest.mark.benchmark(group="throughput")
def test_noop_machine_throughput(benchmark: BenchmarkFixture) -> None:
    _best(benchmark, noop_machine_throughput, "noop_machine_throughput")
