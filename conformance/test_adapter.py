"""Conformance checks collected by ``pytest --pyargs conformance --conformance-adapter SPEC``:
one test per required level and one per invariant, all from a single run."""

from __future__ import annotations

from typing import Any

import pytest

from ._invariants import IDS, INVARIANTS
from .plugin import required_levels


@pytest.mark.conformance
@pytest.mark.parametrize("inv", IDS)
def test_invariant(conformance_result: Any, inv: str, request: pytest.FixtureRequest) -> None:
    outcome = conformance_result.invariants[inv]
    level = INVARIANTS[inv].level
    if outcome.status == "not-exercised":
        pytest.skip(f"{inv} was not exercised in this run")
    if outcome.status == "fail":
        v = outcome.violation
        text = v.render(conformance_result.adapter_spec) if v is not None else inv
        if level == "warning":
            pytest.skip(f"warning: {text}")
        if level not in required_levels(request.config) and level != "conformant":
            pytest.skip(f"{inv} failed, but level {level} is not required:\n{text}")
        pytest.fail(text, pytrace=False)


@pytest.mark.conformance
def test_required_levels(conformance_result: Any, request: pytest.FixtureRequest) -> None:
    missing = [lv for lv in required_levels(request.config) if not conformance_result.levels[lv]]
    if missing:
        pytest.fail(f"required level(s) not met: {', '.join(missing)}\n"
                    f"{conformance_result.summary()}", pytrace=False)
