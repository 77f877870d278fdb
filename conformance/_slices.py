"""Slices of a run's budget (SPEC §8: ``-j N``, ``--shard I/N``, ``--cluster``).

A run of B examples with seed S in N slices gives slice I (1-based) ``B // N`` examples,
one more for the first ``B % N``, and a seed derived from (S, N, I); one slice is the whole
run with seed S. Each slice is a Hypothesis run of its own; what it found travels as JSON
(a worker process, a CI shard's bundle, a dask task) and the slices merge in index order,
so a passing run's counts and traces depend only on (suite, adapter, S, N).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reference import ops as O

from ._check import Recorded, Tally, Violation, violation
from ._profiles import slice_examples

#: The slice data's own version (inside a shard's bundle, ``slice.json``).
SLICE_FORMAT = "wcifs-conformance-slice"
SLICE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Plan:
    index: int
    of: int
    seed: int
    examples: int


def derived_seed(seed: int, of: int, index: int) -> int:
    """Slice ``index`` of ``of``'s seed: the run's own when there is one slice."""
    if of == 1:
        return seed
    digest = hashlib.sha256(f"wcifs-slice:{seed}:{of}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def plan(seed: int, examples: int, of: int) -> list[Plan]:
    return [Plan(i, of, derived_seed(seed, of, i), slice_examples(examples, of, i))
            for i in range(1, of + 1)]


@dataclass(slots=True)
class SliceResult:
    plan: Plan
    #: Examples generated (not shrink attempts).
    generated: int
    tally: Tally
    #: The first conformant-breaking violation, shrunk by Hypothesis, and its example.
    fatal: Violation | None = None
    example: tuple[O.Setup, list[O.Op]] | None = None
    #: Another slice's violation stopped this one before its budget was spent.
    interrupted: bool = False
    #: Calls that timed out in this slice's adapter session.
    timeouts: int = 0


# --- the portable form ---------------------------------------------------------------------
def violation_to_json(v: Violation) -> dict[str, Any]:
    return {"id": v.id, "summary": v.summary, "detail": dict(v.detail), "step": v.step,
            "at": list(v.at) if v.at is not None else None, "probes": list(v.probes)}


def violation_from_json(d: dict[str, Any]) -> Violation:
    v = violation(str(d["id"]), str(d["summary"]), {str(k): str(x) for k, x in
                                                     d["detail"].items()}, int(d["step"]))
    if d.get("at") is not None:
        v.at = (str(d["at"][0]), int(d["at"][1]))
    v.probes = list(d.get("probes") or [])
    return v


def _example(setup: O.Setup, ops: Sequence[O.Op]) -> dict[str, Any]:
    return {"setup": O.setup_to_json(setup), "ops": [O.op_to_json(op) for op in ops]}


def _example_from(d: dict[str, Any]) -> tuple[O.Setup, list[O.Op]]:
    return O.setup_from_json(d["setup"]), [O.op_from_json(o) for o in d["ops"]]


def tally_to_json(t: Tally) -> dict[str, Any]:
    return {
        "exercised": dict(sorted(t.exercised.items())),
        "coverage": [[*key, n] for key, n in sorted(t.coverage.items())],
        "recorded": [{"scope": scope, "violation": violation_to_json(r.violation),
                      **_example(r.setup, r.ops)} for (scope, _), r in t.recorded.items()],
        "examples": t.examples, "steps": t.steps, "creates": t.creates, "scans": t.scans,
        "container_scans": t.container_scans,
    }


def tally_from_json(d: dict[str, Any], tolerated: frozenset[str] = frozenset()) -> Tally:
    t = Tally(tolerated=tolerated)
    t.exercised = Counter({str(k): int(n) for k, n in d["exercised"].items()})
    t.coverage = Counter({(str(a), str(b), str(c), str(e)): int(n)
                          for a, b, c, e, n in d["coverage"]})
    for r in d["recorded"]:
        v = violation_from_json(r["violation"])
        setup, ops = _example_from(r)
        t.recorded[(str(r["scope"]), v.id)] = Recorded(v, setup, tuple(ops), str(r["scope"]))
    for name in ("examples", "steps", "creates", "scans", "container_scans"):
        setattr(t, name, int(d[name]))
    return t


def slice_to_json(s: SliceResult) -> dict[str, Any]:
    return {
        "format": SLICE_FORMAT, "format_version": SLICE_FORMAT_VERSION,
        "index": s.plan.index, "of": s.plan.of, "seed": s.plan.seed,
        "examples": s.plan.examples, "generated": s.generated, "interrupted": s.interrupted,
        "timeouts": s.timeouts,
        "tally": tally_to_json(s.tally),
        "fatal": None if s.fatal is None or s.example is None else {
            "violation": violation_to_json(s.fatal), **_example(*s.example)},
    }


def slice_from_json(d: dict[str, Any], tolerated: frozenset[str] = frozenset()
                    ) -> SliceResult:
    if d.get("format") != SLICE_FORMAT or d.get("format_version") != SLICE_FORMAT_VERSION:
        raise ValueError(f"not a {SLICE_FORMAT} of version {SLICE_FORMAT_VERSION}")
    fatal = d.get("fatal")
    return SliceResult(
        Plan(int(d["index"]), int(d["of"]), int(d["seed"]), int(d["examples"])),
        int(d["generated"]), tally_from_json(d["tally"], tolerated),
        None if fatal is None else violation_from_json(fatal["violation"]),
        None if fatal is None else _example_from(fatal), bool(d.get("interrupted")),
        int(d.get("timeouts", 0)))


# --- merging ------------------------------------------------------------------------------
def merge(slices: Sequence[SliceResult], tolerated: frozenset[str] = frozenset()
          ) -> SliceResult:
    """One result of many, in index order: counts add up, each violation's first
    occurrence is the lowest slice's, and so is the fatal one."""
    ordered = sorted(slices, key=lambda s: s.plan.index)
    total = Tally(tolerated=tolerated)
    fatal: SliceResult | None = None
    for s in ordered:
        absorb(total, s.tally)
        if fatal is None and s.fatal is not None:
            fatal = s
    first = ordered[0].plan
    return SliceResult(
        Plan(1, first.of, first.seed, sum(s.plan.examples for s in ordered)),
        sum(s.generated for s in ordered), total,
        None if fatal is None else fatal.fatal, None if fatal is None else fatal.example,
        any(s.interrupted for s in ordered), sum(s.timeouts for s in ordered))


def absorb(total: Tally, more: Tally) -> None:
    """Add ``more``'s counts to ``total``; a violation ``total`` already holds keeps its
    first occurrence."""
    total.exercised.update(more.exercised)
    total.coverage.update(more.coverage)
    for key, rec in more.recorded.items():
        total.recorded.setdefault(key, rec)
    total.examples += more.examples
    total.steps += more.steps
    total.creates += more.creates
    total.scans += more.scans
    total.container_scans += more.container_scans
