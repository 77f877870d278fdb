"""The quick hot-path measurement and the benchmark summary (``conformance._bench``).

Shape only: nothing here judges a time. The benchmarks themselves run under
``tox -e bench`` (SPEC §9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance import (
    BaseAdapter,
    ConformanceError,
    EcpRequest,
    PostCreate,
    PreCreate,
    Verdict,
    load_adapter,
)
from conformance._bench import hot_path, summarize

GALLERY = Path(__file__).with_name("gallery.py")
FIGURES = ("post_create_hit_ns", "pre_create_ns", "post_create_ratio", "pre_create_ratio")
QUICK = 0.03  # seconds of timing per call


class NeverSkips(BaseAdapter):
    """Attaches the ECP, then scans everything: correct, and no cache hit to measure."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return EcpRequest() if create.silo is not None else None

    def post_create(self, create: PostCreate) -> Verdict:
        return Verdict.SCAN


class RaisesOnOpen(NeverSkips):
    def post_create(self, create: PostCreate) -> Verdict:
        if create.silo is not None:
            raise RuntimeError("boom\nsecond line")
        return Verdict.SCAN


@pytest.mark.parametrize("spec", ["reference", f"{GALLERY}:LruAdapter"])
def test_hot_path_reports_every_figure(spec: str) -> None:
    figures = hot_path(load_adapter(spec), seconds=QUICK)
    assert figures["unit"] == "ns"
    assert figures["floor_dict_get_ns"] > 0
    for side in ("adapter", "reference"):
        assert figures[side]["cache_hit"] is True
        for key in FIGURES:
            assert figures[side][key] > 0, (side, key)
    assert figures["reference"]["name"] == "WCIFS reference adapter"
    assert figures["machine"]["cpus"] >= 1


def test_an_adapter_that_never_skips_has_no_cache_hit() -> None:
    figures = hot_path(NeverSkips, seconds=QUICK)
    ours = figures["adapter"]
    assert ours["cache_hit"] is False
    assert ours["post_create_hit_ns"] is None
    assert ours["post_create_ratio"] is None
    assert "no cache hit" in ours["note"]
    assert ours["pre_create_ns"] > 0 and ours["pre_create_ratio"] > 0
    assert figures["reference"]["cache_hit"] is True


def test_an_adapter_that_raises_is_a_one_line_conformance_error() -> None:
    with pytest.raises(ConformanceError) as info:
        hot_path(RaisesOnOpen, seconds=QUICK)
    message = str(info.value)
    assert "RuntimeError: boom second line" in message
    assert "\n" not in message


def _bench(metric: str, seconds: float, who: str = "", **extra: Any) -> dict[str, Any]:
    return {"extra_info": {"metric": metric, "who": who, **extra},
            "stats": {"min": seconds, "median": seconds * 1.1}}


def test_summary_ratios_and_targets() -> None:
    output = {"benchmarks": [
        _bench("floor_dict_get", 20e-9),
        _bench("post_create_hit", 50e-9, "reference"),
        _bench("pre_create", 30e-9, "reference"),
        _bench("pre_create", 40e-9, "adapter"),
        _bench("engine_throughput", 1.0, steps_per_second=3000.0),
        _bench("noop_machine_throughput", 1.0, steps_per_second=7500.0),
        _bench("cache_bytes_per_entry", 1.0, bytes_per_entry=106.9),
    ]}
    summary = summarize(output, {"spec": "x.py:A", "name": "A", "version": "1"}, ["a note"])
    hot = summary["hot_path"]
    assert hot["floor_dict_get_ns"] == 20.0
    assert hot["reference"]["post_create_ratio"] == 2.5
    assert hot["reference"]["pre_create_ratio"] == 1.5
    assert hot["adapter"]["cache_hit"] is False
    assert hot["adapter"]["post_create_ratio"] is None
    assert summary["throughput"]["ratio"] == 0.4
    targets = summary["targets"]
    assert targets["reference_post_create_ratio"]["met"] is True
    assert targets["throughput_ratio"]["met"] is False
    assert targets["cache_bytes_per_entry"]["met"] is True
    assert targets["start_time_ratio_big_to_small_layer"]["met"] is None  # not measured
    assert summary["adapter"]["spec"] == "x.py:A"
    assert summary["notes"] == ["a note"]
