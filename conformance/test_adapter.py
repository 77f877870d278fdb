"""Conformance checks collected by ``pytest --pyargs conformance --conformance-adapter SPEC``:
one test per level and one per invariant, all presenting a single run's verdict (the same
one ``certify`` and ``run_conformance`` give)."""

from __future__ import annotations

from typing import Any

import pytest

from ._invariants import IDS, INVARIANTS, LEVELS, WARNING, rests_on
from .plugin import required_levels


@pytest.mark.conformance
@pytest.mark.parametrize("level", LEVELS)
def test_level(conformance_result: Any, level: str, request: pytest.FixtureRequest) -> None:
    verdict = conformance_result.verdicts[level]
    if verdict.met:
        return
    if level not in required_levels(request.config):
        pytest.skip(f"not required: {verdict.why()}")
    pytest.fail(conformance_result.explain([verdict]), pytrace=False)


@pytest.mark.conformance
@pytest.mark.parametrize("inv", IDS)
def test_invariant(conformance_result: Any, inv: str, request: pytest.FixtureRequest) -> None:
    outcome = conformance_result.invariants[inv]
    level = INVARIANTS[inv].level
    needed = [lv for lv in required_levels(request.config) if inv in rests_on(lv)]
    if outcome.status == "not-exercised":
        if needed:
            pytest.fail(f"{inv} was never exercised, so {', '.join(needed)} cannot be "
                        "established (run more examples)", pytrace=False)
        pytest.skip(f"{inv} was not exercised in this run")
    if outcome.status == "fail":
        v = outcome.violation
        text = v.render(conformance_result.adapter_spec) if v is not None else inv
        if level == WARNING:
            pytest.skip(f"warning: {text}")
        if not needed:
            pytest.skip(f"{inv} failed, but level {level} is not required:\n{text}")
        pytest.fail(text, pytrace=False)
