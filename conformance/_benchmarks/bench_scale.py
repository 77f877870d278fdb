"""Scale (SPEC §9): 1,000 containers on a 200,000-file layer with 1% of the files opened in
each (time, and tracemalloc peak), container start cost against layer size, and the
reference cache's bytes per entry at 1,000,000 entries."""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance._bench import cache_bytes_per_entry, scale

from .conftest import pedantic


@pytest.mark.benchmark(group="scale")
def test_scale(benchmark: BenchmarkFixture) -> None:
    result = pedantic(benchmark, scale)
    benchmark.extra_info.update(metric="scale", **result)
    assert result["placeholders_materialized"] == result["opens"]


@pytest.mark.benchmark(group="scale")
def test_cache_bytes_per_entry(benchmark: BenchmarkFixture) -> None:
    result = pedantic(benchmark, cache_bytes_per_entry)
    benchmark.extra_info.update(metric="cache_bytes_per_entry", **result)
