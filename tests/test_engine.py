"""The engine itself: determinism, replay, certify-profile coverage, failure output."""

from __future__ import annotations

import json

import pytest
from gallery import SkipsScratch, TruncatedKey

from conformance import INVARIANTS, replay, run_conformance
from conformance._engine import PROFILES
from reference import ops as O
from reference.adapter import reference_factory


def _fingerprint(result: object) -> str:
    r = result  # a ConformanceResult
    data = {
        "levels": r.levels,  # type: ignore[attr-defined]
        "invariants": {i: (v.status, v.exercised) for i, v in
                       r.invariants.items()},  # type: ignore[attr-defined]
        "traces": [v.trace() for v in r.violations],  # type: ignore[attr-defined]
        "examples": r.stats["examples"],  # type: ignore[attr-defined]
        "steps": r.stats["steps"],  # type: ignore[attr-defined]
        "efficiency": [(w.name, w.scans_per_container)
                       for w in r.efficiency],  # type: ignore[attr-defined]
    }
    return json.dumps(data, sort_keys=True, default=str)


@pytest.mark.parametrize("adapter", [reference_factory("conformant"), SkipsScratch],
                         ids=["conformant-reference", "SkipsScratch"])
def test_same_seed_same_verdicts_counts_and_traces(adapter: type) -> None:
    a = run_conformance(adapter, "quick", seed=99, max_examples=150)
    b = run_conformance(adapter, "quick", seed=99, max_examples=150)
    assert _fingerprint(a) == _fingerprint(b)


@pytest.mark.slow
def test_reference_at_certify_profile_meets_every_level_and_exercises_every_invariant() -> None:
    result = run_conformance(reference_factory(), "certify")
    assert result.levels == {"conformant": True, "signature-current": True, "optimized": True}
    assert result.failed == [], result.summary()
    unexercised = [i for i, v in result.invariants.items() if v.exercised == 0]
    assert unexercised == []
    assert result.settings["derandomized"] is True
    assert result.seed == run_conformance(reference_factory(), "certify", max_examples=1).seed


def test_violation_output_names_rule_steps_truth_and_replay() -> None:
    result = run_conformance(TruncatedKey, "quick", seed=3, workloads=False)
    report = result.invariants["SAFE-6"].violation
    assert report is not None, result.summary()
    text = report.render("tests/gallery.py:TruncatedKey", "traces/SAFE-6.json")
    assert INVARIANTS["SAFE-6"].rule in text
    for key in ("decision", "ecp", "provenance", "content", "scan history", "signatures"):
        assert f"  {key}: " in text
    assert "Replay: wcifs-conformance replay traces/SAFE-6.json --adapter " \
           "tests/gallery.py:TruncatedKey" in text
    assert report.steps and all(isinstance(s, str) and s for s in report.steps)
    # The trace is plain JSON that survives a round trip and replays the same violation.
    trace = json.loads(json.dumps(report.trace()))
    assert replay(TruncatedKey, trace).ids[:1] == ["SAFE-6"]
    assert len(trace["ops"]) == len(report.steps)


def test_ops_round_trip_through_json() -> None:
    ops = [O.InstallLayer(volume=1, files=4, registered=True, malware_file=2, delay=1),
           O.StartContainer((1, 0), hyperv=True), O.OpenFile(0, -2, True, True, 13),
           O.ProactiveScan(abort_after=2, update_midway=True, fail_file=0)]
    assert [O.op_from_json(json.loads(json.dumps(O.op_to_json(op)))) for op in ops] == ops


@pytest.mark.parametrize("bad", [{"op": "open", "file": "x"}, {"op": "nope"}, [],
                                 {"op": "open", "colour": 1}])
def test_malformed_operations_are_rejected_with_a_reason(bad: object) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        O.op_from_json(bad)


def test_profiles_are_the_documented_three() -> None:
    assert set(PROFILES) == {"quick", "certify", "deep"}
    assert PROFILES["quick"].max_examples < PROFILES["certify"].max_examples \
        < PROFILES["deep"].max_examples
