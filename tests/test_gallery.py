"""The suite catches every mutant with the right ID, and raises no alarm against correct
adapters (SPEC §5: a false alarm is as serious as a missed bug)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from gallery import CORRECT, MUTANTS, ScansEverything

from conformance import INVARIANTS, BaseAdapter, replay, rests_on, run_conformance
from conformance._check import Tally
from conformance._engine import efficiency_scope
from reference.adapter import reference_factory

SEED = 1  # tox -e power measures seeds 1..5
CASES = [(inv, m) for inv, ms in MUTANTS.items() for m in ms]
SAFETY_LEVELS = ("conformant", "signature-current")


def proved(any_of: Iterable[str], *all_of: str, established: Iterable[str] = ("conformant",)
           ) -> Callable[[Tally], bool]:
    """A run may stop at the first proof of what a test asserts: one of ``any_of`` and each
    of ``all_of`` failed (where a safe adapter's result reports them), and every invariant
    of the ``established`` levels exercised. A run that never gets there runs its budget."""
    needed = {i for level in established for i in rests_on(level)}
    some, each = set(any_of), set(all_of)

    def done(t: Tally) -> bool:
        # Efficiency is judged against the safest reference the adapter matches so far.
        shadow = efficiency_scope(i for scope, i in t.recorded if scope == "all")
        found = {i for scope, i in t.recorded if scope in ("all", shadow)}
        return (bool(found & some) and each <= found
                and all(t.exercised.get(i, 0) for i in needed))

    return done


def test_every_invariant_has_a_mutant() -> None:
    assert set(MUTANTS) == set(INVARIANTS)


@pytest.mark.parametrize(("inv", "mutant"), CASES, ids=[f"{i}-{m.__name__}" for i, m in CASES])
def test_mutant_is_caught_with_its_id(inv: str, mutant: type[BaseAdapter]) -> None:
    # A conformant-breaking mutant stops at its violation; the others, once it is proved
    # and conformant is established (what the assertions below need).
    stop = None if INVARIANTS[inv].level == "conformant" else proved([inv])
    result = run_conformance(mutant, "quick", seed=SEED, workloads=inv.startswith("EFF"),
                             stop_when=stop)
    assert inv in result.failed, result.summary()
    level = INVARIANTS[inv].level
    if level == "conformant":
        # A conformant-breaking violation ends the run: it is the first one and the only
        # fatal one, and every level is lost with it.
        assert result.violations[0].id == inv, result.summary()
        assert not any(result.levels.values())
    elif level == "warning":
        assert result.levels["conformant"], result.summary()
    else:
        assert not result.levels[level]
        assert result.levels["conformant"], result.summary()

    report = result.invariants[inv].violation
    assert report is not None
    assert report.steps or inv == "SAFE-12"  # SAFE-12 trips in start(), before any step
    trace = report.trace("tests/gallery.py:" + mutant.__name__)
    if report.nondeterministic:
        # A failure that does not recur is reported, not replayed: the unshrunk example.
        assert inv == "SAFE-13" and trace["nondeterministic"] and trace["ops"]
        return
    assert inv in replay(mutant, trace).ids
    # The same steps are harmless to the reference (at the level the trace was judged
    # against): the trace shows the mutant's defect, not the suite's.
    level = trace["scope"] if trace["scope"] in SAFETY_LEVELS else "signature-current"
    # (the conformant reference is expected to miss signature-current: SIG-* are its own)
    allowed = {"signature-current"} if level == "conformant" else set()
    ids = replay(reference_factory(level), trace).ids
    assert [i for i in ids if INVARIANTS[i].level not in allowed] == []


@pytest.mark.slow
@pytest.mark.parametrize("adapter", [*CORRECT, reference_factory("signature-current"),
                                     reference_factory("signature-current", False)],
                         ids=lambda a: a.__name__)
@pytest.mark.parametrize("seed", [SEED, 7])
def test_correct_adapters_raise_no_safety_alarm(adapter: type[BaseAdapter], seed: int) -> None:
    # A short run per seed keeps CI quick; `tox -e power -- --correct` runs 20,000 examples
    # over several seeds.
    result = run_conformance(adapter, "quick", seed=seed, max_examples=1000, workloads=False)
    alarms = [i for i in result.failed if INVARIANTS[i].level in (*SAFETY_LEVELS, "warning")]
    assert alarms == [], result.summary()
    assert result.levels["conformant"] and result.levels["signature-current"]


def test_conformant_reference_meets_only_conformant_safety() -> None:
    result = run_conformance(reference_factory("conformant"), "quick", seed=SEED,
                             stop_when=proved(["SIG-1"], "SIG-2",
                                              established=("conformant", "optimized")))
    assert result.levels == {"conformant": True, "signature-current": False, "optimized": True}
    assert {"SIG-1", "SIG-2"} <= set(result.failed)
    assert not [i for i in result.failed if INVARIANTS[i].level == "conformant"]


def test_safe_but_wasteful_adapter_is_conformant_not_optimized() -> None:
    effs = [i for i in INVARIANTS if INVARIANTS[i].level == "optimized"]
    result = run_conformance(ScansEverything, "quick", seed=SEED, stop_when=proved(
        effs, established=("conformant", "signature-current")))
    assert result.levels == {"conformant": True, "signature-current": True, "optimized": False}
    assert all(INVARIANTS[i].level == "optimized" for i in result.failed)
    # Beside the reference, it pays for every redirected open.
    first = next(w for w in result.efficiency if w.name == "first-container")
    assert first.scans_per_container == 6 and first.reference_scans_per_container == 0
