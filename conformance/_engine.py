"""One conformance run: Hypothesis over generated examples, then the standard workloads.

A violation that breaks ``conformant`` ends the run at once and Hypothesis shrinks it;
signature-current, efficiency and warning violations are recorded at their first
occurrence and minimized afterwards by deterministic replay. Every counterexample ends as
a minimal operation list that :func:`replay` reproduces without any Hypothesis database.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import seed as hseed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

import strategies
from reference import ops as O
from reference.adapter import reference_factory
from reference.contract import PROTOCOL_VERSION, AdapterInfo

from ._check import SHADOW_LEVELS, Checker, Recorded, Tally, Violation, violation
from ._errors import AdapterStartError
from ._invariants import (
    CONFORMANT,
    IDS,
    INVARIANTS,
    SIGNATURE_CURRENT,
    WARNING,
    levels_met,
)
from ._version import __version__, suite_commit
from ._workloads import Workload, standard_workloads

Progress = Callable[[str, int, int], None]
TRACE_FORMAT = "wcifs-conformance-trace"
#: 2: operations for concurrency and long histories (``concurrent_opens``,
#: ``signature_updates``, ``start_containers``, ``open_many``, ``malware_every``), and
#: ``nondeterministic``. Version 1 traces replay unchanged.
TRACE_FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class RunProfile:
    name: str
    max_examples: int
    max_fragments: int
    #: Fixed seed per suite version (``certify``); otherwise random unless given.
    fixed_seed: bool
    description: str
    #: Hypothesis ``target()`` toward long histories (slower examples; swarm selection
    #: and bulk operations reach them in every profile anyway).
    targeting: bool = False


PROFILES: dict[str, RunProfile] = {
    "quick": RunProfile("quick", 2000, 18, False, "about half a minute"),
    "certify": RunProfile("certify", 10000, 18, True,
                          "derandomized: a fixed seed per suite version, a minute or two"),
    "deep": RunProfile("deep", 100000, 32, False, "nightly scale, an hour or so", True),
}


def default_seed(profile: RunProfile) -> int:
    if profile.fixed_seed:
        digest = hashlib.sha256(f"wcifs-conformance {__version__}".encode()).digest()
        return int.from_bytes(digest[:4], "big")
    return int.from_bytes(hashlib.sha256(str(time.time_ns()).encode()).digest()[:4], "big")


@dataclass(slots=True)
class ViolationReport:
    id: str
    level: str
    scope: str
    summary: str
    detail: dict[str, str]
    setup: O.Setup
    ops: tuple[O.Op, ...]
    steps: list[str]
    #: The failure did not recur on replay: the trace is the unshrunk example.
    nondeterministic: bool = False

    @property
    def rule(self) -> str:
        return INVARIANTS[self.id].rule

    def trace(self, adapter_spec: str = "SPEC") -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "format_version": TRACE_FORMAT_VERSION,
            "suite_version": __version__,
            "invariant": self.id,
            "rule": self.rule,
            "scope": self.scope,
            "summary": self.summary,
            "detail": self.detail,
            "setup": O.setup_to_json(self.setup),
            "ops": [O.op_to_json(op) for op in self.ops],
            "steps": self.steps,
            "nondeterministic": self.nondeterministic,
            "replay": f"wcifs-conformance replay TRACE.json --adapter {adapter_spec}",
        }

    def render(self, adapter_spec: str = "SPEC", trace_path: str = "TRACE.json") -> str:
        lines = [f"{self.id} violated: {self.rule}", f"  {self.summary}", "", "Steps:"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        lines += ["", "Decision and truth:"]
        lines += [f"  {k}: {v}" for k, v in self.detail.items() if k != "traceback"]
        if "traceback" in self.detail:
            lines += ["", self.detail["traceback"].rstrip()]
        lines += ["", f"Replay: wcifs-conformance replay {trace_path} --adapter {adapter_spec}"]
        return "\n".join(lines)


@dataclass(slots=True)
class InvariantResult:
    id: str
    level: str
    rule: str
    status: str
    exercised: int
    violation: ViolationReport | None = None


@dataclass(slots=True)
class WorkloadResult:
    name: str
    title: str
    containers: int
    scans_per_container: float | None
    reference_scans_per_container: float
    invariant: str


@dataclass(slots=True)
class ConformanceResult:
    adapter_spec: str
    adapter_info: AdapterInfo
    profile: str
    seed: int
    settings: dict[str, Any]
    levels: dict[str, bool]
    invariants: dict[str, InvariantResult]
    violations: list[ViolationReport]
    efficiency: list[WorkloadResult]
    stats: dict[str, Any]
    started: str
    finished: str
    versions: dict[str, str] = field(default_factory=dict)
    #: ID -> {"operation" | "profile" | "scene": {name: times exercised}}; each dimension
    #: sums to the invariant's ``exercised`` count.
    coverage: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [i for i, r in self.invariants.items() if r.status == "fail"]

    def meets(self, levels: Sequence[str]) -> bool:
        return all(self.levels[level] for level in levels)

    def summary(self) -> str:
        badges = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in self.levels.items())
        lines = [f"{self.adapter_info.name} {self.adapter_info.version} ({self.adapter_spec}), "
                 f"profile {self.profile}, seed {self.seed}: {badges}"]
        for v in self.violations:
            lines.append(f"  {v.id} ({v.level}): {v.summary} [{len(v.steps)} steps]")
        return "\n".join(lines)


def run_conformance(
    factory: Callable[[], Any],
    profile: str = "quick",
    *,
    seed: int | None = None,
    spec: str | None = None,
    max_examples: int | None = None,
    progress: Progress | None = None,
    workloads: bool = True,
) -> ConformanceResult:
    """Check an adapter factory against every invariant; return levels, counts, traces.

    A vendor's whole test can be ``assert run_conformance(MyAdapter).levels["conformant"]``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    prof = PROFILES[profile]
    seed = default_seed(prof) if seed is None else seed
    spec = spec or _spec_of(factory)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info, at_start = _smoke(factory)
    tally = Tally()
    examples = max_examples if max_examples is not None else prof.max_examples
    notify = progress or (lambda phase, n, bad: None)

    fatal: Violation | None
    example: tuple[O.Setup, list[O.Op]] | None
    if at_start is not None:
        # Broken before any event (e.g. SAFE-12 in start): nothing to generate or shrink.
        fatal, example = at_start, (O.Setup(), [])
        workloads = False
    else:
        fatal, example = _hypothesis_run(factory, prof, examples, seed, tally, notify)
    reports: dict[tuple[str, str], ViolationReport] = {}
    if fatal is not None and example is not None:
        notify("minimizing", tally.examples, 1)
        setup, ops = example
        if fatal.id == "SAFE-13" and fatal.detail.get("nondeterministic"):
            reports[("all", fatal.id)] = _unshrunk(factory, setup, ops, fatal)
        else:
            reports[("all", fatal.id)] = _minimized(factory, setup, ops[: fatal.step + 1],
                                                    fatal.id, "all", fatal)
    efficiency: list[WorkloadResult] = []
    if workloads:
        notify("workloads", tally.examples, len(reports) + len(tally.recorded))
        efficiency = _run_workloads(factory, tally, reports)
    notify("minimizing", tally.examples, len(reports) + len(tally.recorded))
    for key, rec in list(tally.recorded.items()):
        if key not in reports:
            reports[key] = _minimized(factory, rec.setup, rec.ops, rec.violation.id,
                                      rec.scope, rec.violation)

    failed = {i for (scope, i) in reports if scope == "all"}
    sig_met = levels_met(failed)[SIGNATURE_CURRENT]
    eff_scope = SIGNATURE_CURRENT if sig_met else CONFORMANT
    failed |= {i for (scope, i) in reports if scope == eff_scope}
    chosen = {i: r for (scope, i), r in reports.items() if scope in ("all", eff_scope)}
    levels = levels_met(failed)
    invariants = {}
    for inv_id in IDS:
        inv = INVARIANTS[inv_id]
        n = tally.exercised.get(inv_id, 0)
        status = "fail" if inv_id in failed else ("pass" if n else "not-exercised")
        invariants[inv_id] = InvariantResult(inv_id, inv.level, inv.rule, status, n,
                                             chosen.get(inv_id))
    elapsed = time.perf_counter() - t0
    violations = sorted(chosen.values(), key=lambda r: (INVARIANTS[r.id].level == WARNING,
                                                         IDS.index(r.id)))
    stats = {
        "examples": tally.examples,
        "steps": tally.steps,
        "creates": tally.creates,
        "scans": tally.scans,
        "seconds": round(elapsed, 3),
        "steps_per_second": round(tally.steps / elapsed, 1) if elapsed else 0.0,
        "efficiency_shadow": eff_scope,
    }
    return ConformanceResult(
        adapter_spec=spec,
        adapter_info=info,
        profile=profile,
        seed=seed,
        settings={"max_examples": examples, "max_fragments": prof.max_fragments,
                  "derandomized": prof.fixed_seed, "database": None, "deadline": None,
                  "targeting": prof.targeting},
        levels=levels,
        invariants=invariants,
        violations=violations,
        efficiency=efficiency,
        stats=stats,
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
        coverage=coverage_of(tally),
    )


def coverage_of(tally: Tally) -> dict[str, dict[str, dict[str, int]]]:
    """Per invariant, how often it was exercised per operation kind, profile and scene."""
    out: dict[str, dict[str, dict[str, int]]] = {
        i: {"operation": {}, "profile": {}, "scene": {}} for i in IDS}
    for (inv, kind, profile, scene), n in sorted(tally.coverage.items()):
        dims = out.get(inv)
        if dims is None:
            continue
        for dim, name in (("operation", kind), ("profile", profile), ("scene", scene)):
            dims[dim][name] = dims[dim].get(name, 0) + n
    return out


def versions() -> dict[str, str]:
    return {
        "suite": __version__,
        "suite_commit": suite_commit(),
        "protocol": str(PROTOCOL_VERSION),
        "hypothesis": hypothesis.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _spec_of(factory: Callable[[], Any]) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"


def _smoke(factory: Callable[[], Any]) -> tuple[AdapterInfo, Violation | None]:
    """Make one adapter and start it, so a broken factory is an exit-3 error, not a run;
    also return a violation it commits before any event."""
    try:
        adapter = factory()
    except Exception as e:
        raise AdapterStartError(f"the adapter could not be created: {type(e).__name__}: {e}",
                                hint="the factory must build an adapter with no arguments"
                                ) from e
    info = getattr(adapter, "info", None)
    if not isinstance(info, AdapterInfo):
        info = AdapterInfo(name=type(adapter).__name__, version="unknown")
    try:
        Checker(lambda: adapter, O.Setup(), Tally(), probe=False).run(())
    except Violation as v:
        if v.id == "SAFE-13" and v.detail.get("call") == "start":
            raise AdapterStartError(f"the adapter could not be started: {v.summary}") from None
        if v.id == "SAFE-12":
            return info, v
    return info, None


def _hypothesis_run(factory: Callable[[], Any], prof: RunProfile, max_examples: int,
                    seed: int, tally: Tally, notify: Progress
                    ) -> tuple[Violation | None, tuple[O.Setup, list[O.Op]] | None]:
    #: The example run last (after shrinking, the minimal one).
    last: list[tuple[O.Setup, list[O.Op]]] = []
    #: The first failing example, unshrunk, and what it broke.
    first: list[tuple[O.Setup, list[O.Op], Violation]] = []

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              verbosity=Verbosity.quiet, print_blob=False,
              # No explain phase: our own minimizer and the truth report say more.
              phases=(Phase.explicit, Phase.generate,
                      *((Phase.target,) if prof.targeting else ()), Phase.shrink))
    @hseed(seed)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        setup, ops, scenes = strategies.draw_example(data.draw, prof.max_fragments)
        last[:] = [(setup, ops)]
        try:
            checker = Checker(factory, setup, tally)
            checker.run(ops, scenes=scenes)
        except Violation as v:
            if not first:
                first.append((setup, ops, v))
                notify("shrinking", tally.examples, 1)
            raise
        finally:
            if tally.examples % 25 == 0:
                notify("shrinking" if first else "generating", tally.examples,
                       len(tally.recorded) + bool(first))
        if prof.targeting:
            # Hill-climb toward long histories (costly: only where the budget allows).
            world = checker.world
            target(float(min(world.version, 1000)), label="signature updates")
            target(float(min(len(world.findings), 100)), label="detections")

    notify("generating", 0, 0)
    try:
        check()
    except Violation as v:
        if last and _recurs(factory, last[0], v):
            return v, last[0]
        setup, ops, _ = first[0]
        return _nondeterministic(v), (setup, ops)
    except Flaky:
        # The failure did not recur while Hypothesis replayed it: the adapter's answers are
        # not a function of the events it received.
        setup, ops, failure = first[0]
        return _nondeterministic(failure), (setup, ops)
    return None, None


def _recurs(factory: Callable[[], Any], example: tuple[O.Setup, list[O.Op]],
            v: Violation) -> bool:
    """The shrunk failure recurs on a fresh replay (twice, to be sure)."""
    setup, ops = example
    return all(reproduce(factory, setup, ops[: v.step + 1], v.id) is not None
               for _ in range(2))


def _nondeterministic(v: Violation) -> Violation:
    return violation(
        "SAFE-13",
        f"non-deterministic: {v.id} ({v.summary}) did not recur when the same events were "
        "replayed to a fresh adapter; its answers depend on something besides its inputs "
        "(state kept across adapters, time, randomness)",
        {**v.detail, "nondeterministic": "yes", "first failure": f"{v.id}: {v.summary}"},
        v.step)


def _unshrunk(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op],
              found: Violation) -> ViolationReport:
    """A non-recurring failure's report: the example as it failed, described, unshrunk."""
    steps: list[str] = []
    with contextlib.suppress(Violation):
        Checker(factory, setup, Tally(), probe=False).run(ops, steps)
    steps += [str(op) for op in ops[len(steps):]]
    return ViolationReport(found.id, found.level, "all", found.summary, found.detail, setup,
                           tuple(ops), steps, nondeterministic=True)


def reproduce(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op], inv: str,
              scope: str = "all", describe: list[str] | None = None
              ) -> Violation | None:
    """Run ``ops`` once; return the violation of ``inv`` (in ``scope``) if it recurs."""
    tally = Tally()
    try:
        Checker(factory, setup, tally).run(ops, describe)
    except Violation as v:
        return v if v.id == inv else None
    rec: Recorded | None = tally.recorded.get((scope, inv))
    return rec.violation if rec is not None else None


def _minimized(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op], inv: str,
               scope: str, found: Violation) -> ViolationReport:
    """Delete operations while the same violation recurs; then describe the survivors."""
    current = list(ops)
    if reproduce(factory, setup, current, inv, scope) is not None:
        chunk = max(1, len(current) // 2)
        while chunk >= 1:
            i = 0
            while i < len(current):
                candidate = current[:i] + current[i + chunk:]
                if candidate and reproduce(factory, setup, candidate, inv, scope) is not None:
                    current = candidate
                else:
                    i += chunk
            chunk //= 2
    steps: list[str] = []
    final = reproduce(factory, setup, current, inv, scope, steps) or found
    if final is not found:
        steps = steps[: final.step + 1]
        current = current[: final.step + 1]
    return ViolationReport(final.id, final.level, scope, final.summary, final.detail, setup,
                           tuple(current), steps)


def replay(factory: Callable[[], Any], trace: dict[str, Any]) -> ReplayOutcome:
    """Re-run a trace (as written by :meth:`ViolationReport.trace`) deterministically."""
    setup = O.setup_from_json(trace.get("setup"))
    raw_ops = trace.get("ops")
    if not isinstance(raw_ops, list):
        raise ValueError("trace has no 'ops' list")
    ops = [O.op_from_json(o) for o in raw_ops]
    tally = Tally()
    steps: list[str] = []
    fatal = None
    try:
        Checker(factory, setup, tally).run(ops, steps)
    except Violation as v:
        fatal = v
    # Efficiency is judged against the shadow the trace names (the highest level if none).
    scope = trace.get("scope")
    eff_scope = scope if scope in SHADOW_LEVELS else SIGNATURE_CURRENT
    found = [fatal] if fatal is not None else []
    found += [rec.violation for (s, _), rec in tally.recorded.items() if s in ("all", eff_scope)]
    return ReplayOutcome(setup, ops, steps, found)


@dataclass(slots=True)
class ReplayOutcome:
    setup: O.Setup
    ops: list[O.Op]
    steps: list[str]
    violations: list[Violation]

    @property
    def ids(self) -> list[str]:
        return [v.id for v in self.violations]


def _run_workloads(factory: Callable[[], Any], tally: Tally,
                   reports: dict[tuple[str, str], ViolationReport]) -> list[WorkloadResult]:
    results = []
    for w, theirs in zip(standard_workloads(), _reference_scans(), strict=True):
        ours = _workload_scans(factory, w, tally, reports)
        results.append(WorkloadResult(
            w.name, w.title, w.containers,
            None if ours is None else round(ours / w.containers, 3),
            round(theirs / w.containers, 3), w.invariant))
    return results


@functools.cache
def _reference_scans() -> tuple[int, ...]:
    """The reference's container scans per workload: deterministic, so measured once."""
    ref = reference_factory(SIGNATURE_CURRENT)
    return tuple(_workload_scans(ref, w, Tally(), None) or 0 for w in standard_workloads())


def _workload_scans(factory: Callable[[], Any], w: Workload, tally: Tally,
                    reports: dict[tuple[str, str], ViolationReport] | None) -> int | None:
    before = tally.container_scans
    try:
        Checker(factory, w.setup, tally).run(w.ops, scenes=[f"workload:{w.name}"] * len(w.ops))
    except Violation as v:
        if reports is not None and ("all", v.id) not in reports and not any(
                s == "all" and INVARIANTS[i].level == CONFORMANT for s, i in reports):
            reports[("all", v.id)] = _minimized(factory, w.setup, w.ops[: v.step + 1], v.id,
                                                "all", v)
        return None
    return tally.container_scans - before


__all__ = [
    "PROFILES",
    "SHADOW_LEVELS",
    "ConformanceResult",
    "InvariantResult",
    "ReplayOutcome",
    "RunProfile",
    "ViolationReport",
    "WorkloadResult",
    "replay",
    "reproduce",
    "run_conformance",
]
