"""One conformance run: Hypothesis over generated examples, then the standard workloads.

A violation that breaks ``conformant`` ends the run at once and Hypothesis shrinks it;
signature-current, efficiency and warning violations are recorded at their first
occurrence and minimized afterwards by deterministic replay. Every counterexample ends as
a minimal operation list that :func:`replay` reproduces without any Hypothesis database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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

from . import _dialogue as dialogue
from . import _slices as slices
from ._check import SHADOW_LEVELS, Checker, Recorded, Tally, Violation, violation
from ._errors import AdapterStartError, ConformanceError, InternalError
from ._expect import Comparison
from ._expect import compare as compare_expected
from ._formats import TRACE_FORMAT, TRACE_FORMAT_VERSION
from ._invariants import (
    CONFORMANT,
    IDS,
    INVARIANTS,
    LEVELS,
    OPTIMIZED,
    SIGNATURE_CURRENT,
    WARNING,
    LevelVerdict,
    level_verdicts,
)
from ._loading import adapter_info, instantiate
from ._profiles import CUSTOM, PROFILES, RunProfile, default_seed
from ._session import AdapterSession, InProcess, as_session
from ._version import __version__, suite_commit
from ._watchdog import DEFAULT_CALL_TIMEOUT
from ._workloads import Workload, standard_workloads

Progress = Callable[[str, int, int], None]


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
    #: Every call the adapter received, as handed and answered (:mod:`._dialogue`).
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: The index in ``calls`` of the call the violation was found in.
    failing_call: int | None = None

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
            "calls": self.calls,
            "failing_call": self.failing_call,
            "replay": f"wcifs-conformance replay TRACE.json --adapter {adapter_spec}",
        }

    def render(self, adapter_spec: str = "SPEC", trace_path: str = "TRACE.json") -> str:
        lines = [f"{self.id} violated: {self.rule}", f"  {self.summary}", "", "Steps:"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        lines += ["", "Decision and truth:"]
        lines += [f"  {k}: {v}" for k, v in self.detail.items() if k != "traceback"]
        if self.failing_call is not None:
            lines += ["", "The call it was found in:"]
            lines += [f"  {line}" for line in dialogue.call_lines(
                self.calls[self.failing_call], failing=True)]
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
    """A complete verdict: every face (CLI, pytest plugin, bundle, ``verify``) presents it
    and none decides anything of its own."""

    adapter_spec: str
    adapter_info: AdapterInfo
    #: The profile run, or ``custom`` when ``max_examples`` overrode its budget
    #: (``settings["based_on"]`` names the profile it started from).
    profile: str
    seed: int
    settings: dict[str, Any]
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
    #: The known failures the run was told of (``--expect``), ID -> reason; None: none.
    expected: dict[str, str] | None = None
    #: (I, N) when this is shard I of N: a partial result, for ``merge``.
    shard: tuple[int, int] | None = None
    #: A shard's own slice and its workloads' tally, as ``merge`` reads them back.
    slice: dict[str, Any] | None = None

    @property
    def failed(self) -> list[str]:
        return [i for i, r in self.invariants.items() if r.status == "fail"]

    @property
    def verdicts(self) -> dict[str, LevelVerdict]:
        """Per level: met, or which invariants failed or were never exercised."""
        return level_verdicts({i: r.status for i, r in self.invariants.items()})

    @property
    def levels(self) -> dict[str, bool]:
        return {level: v.met for level, v in self.verdicts.items()}

    @property
    def expectations(self) -> Comparison | None:
        """The results against the expectation file, if the run had one."""
        if self.expected is None:
            return None
        return compare_expected(self.expected,
                                {i: r.status for i, r in self.invariants.items()})

    @property
    def stopped_early(self) -> bool:
        """A conformant-breaking violation ended generation before the budget was spent."""
        return bool(self.stats.get("stopped_early"))

    @property
    def efficiency_reference(self) -> str:
        """The reference adapter whose decisions efficiency was judged against."""
        return f"reference:{self.stats.get('efficiency_shadow', SIGNATURE_CURRENT)}"

    def unmet(self, levels: Sequence[str]) -> list[LevelVerdict]:
        """The verdicts of those of ``levels`` that are not met."""
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown:
            raise ValueError(f"unknown level(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(LEVELS)}")
        verdicts = self.verdicts
        return [verdicts[lv] for lv in dict.fromkeys(levels) if not verdicts[lv].met]

    def require(self, *levels: str) -> ConformanceResult:
        """Raise :class:`AssertionError` with the rendered counterexamples unless every one
        of ``levels`` (default ``conformant``) is met; return ``self`` otherwise."""
        unmet = self.unmet(levels or (CONFORMANT,))
        if unmet:
            raise AssertionError(self.explain(unmet))
        return self

    def explain(self, unmet: Sequence[LevelVerdict]) -> str:
        """Why ``unmet`` levels are not met: the verdict lines, then each counterexample that
        breaks one of them, rendered in full."""
        lines = [self.summary(), ""]
        lines += [v.why() for v in unmet]
        blamed = {i for v in unmet for i in v.failed}
        for report in self.violations:
            if report.id in blamed:
                lines += ["", report.render(self.adapter_spec)]
        return "\n".join(lines)

    def summary(self) -> str:
        badges = ", ".join(f"{k}: " + ("met" if v.met else "NOT met" if v.failed
                                       else "not established")
                           for k, v in self.verdicts.items())
        stopped = "; stopped early at a violation" if self.stopped_early else ""
        lines = [f"{self.adapter_info.name} {self.adapter_info.version} ({self.adapter_spec}), "
                 f"profile {self.profile}, seed {self.seed}, "
                 f"{self.stats.get('examples', 0)} examples{stopped}: {badges}"]
        for v in self.violations:
            lines.append(f"  {v.id} ({v.level}): {v.summary} [{len(v.steps)} steps]")
        return "\n".join(lines)


def run_conformance(
    adapter: Callable[[], Any] | str,
    profile: str = "quick",
    *,
    seed: int | None = None,
    spec: str | None = None,
    max_examples: int | None = None,
    progress: Progress | None = None,
    workloads: bool = True,
    isolate: bool | None = None,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    expected: Mapping[str, str] | None = None,
    workers: int = 1,
    shard: int | None = None,
    cluster: str | None = None,
    stop_when: Callable[[Tally], bool] | None = None,
) -> ConformanceResult:
    """Check an adapter against every invariant; return levels, counts, traces.

    ``adapter`` is a factory (a class or zero-argument callable, run in this process) or
    an adapter SPEC string (run in an adapter process unless ``isolate`` is False, SPEC
    §10). Every adapter call is under ``call_timeout`` seconds.

    ``expected`` (ID -> reason, as :func:`~conformance._expect.load_expectations` reads an
    expectation file) names known failures: each is recorded at its first occurrence and
    the run goes on, so that one known bug does not hide the next. Levels are judged as
    always; :attr:`ConformanceResult.expectations` compares the results with the file.

    ``workers`` splits the budget into that many slices, each a Hypothesis run with a seed
    derived from ``seed``, run in as many worker processes (``-j N``); a passing run's
    counts and traces depend only on (suite, adapter, seed, workers). With ``shard`` (I of
    ``workers``), only slice I runs, and the result is partial (``merge`` joins shards).
    ``cluster`` (a dask scheduler's address, or ``local``) runs the slices as its tasks.
    ``stop_when`` ends generation early once it holds of the counts so far (one slice
    only; the suite's own tests stop a mutant at its first proof).

    A vendor's whole test can be ``run_conformance(MyAdapter).require("conformant")``.
    """
    session, owned = as_session(adapter, call_timeout, isolate)
    try:
        return _run(session, profile, seed=seed, spec=spec or session.spec,
                    max_examples=max_examples, progress=progress, workloads=workloads,
                    expected=None if expected is None else dict(expected),
                    workers=workers, shard=shard, cluster=cluster, stop_when=stop_when)
    finally:
        if owned:
            session.close()


def _run(factory: AdapterSession, profile: str, *, seed: int | None, spec: str,
         max_examples: int | None, progress: Progress | None, workloads: bool,
         expected: dict[str, str] | None = None, workers: int = 1,
         shard: int | None = None, cluster: str | None = None,
         stop_when: Callable[[Tally], bool] | None = None) -> ConformanceResult:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if workers < 1 or (shard is not None and not 1 <= shard <= workers):
        raise ValueError(f"shard {shard} of {workers} workers: give 1 <= shard <= workers")
    if stop_when is not None and workers != 1:
        raise ValueError("stop_when watches one slice: give workers=1")
    prof = PROFILES[profile]
    seed = default_seed(prof) if seed is None else seed
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info, at_start = _smoke(factory)
    tally = Tally(tolerated=frozenset(expected or ()))
    examples = max_examples if max_examples is not None else prof.max_examples
    notify = progress or (lambda phase, n, bad: None)

    fatal: Violation | None
    example: tuple[O.Setup, list[O.Op]] | None
    generated = 0
    plans = slices.plan(seed, examples, workers)
    mine = plans if shard is None else [plans[shard - 1]]
    done: list[slices.SliceResult] = []
    if at_start is not None:
        # Broken before any event (e.g. SAFE-12 in start): nothing to generate or shrink.
        fatal, example = at_start, (O.Setup(), [])
        workloads = False
        if shard is not None:  # a shard's bundle still carries its (empty) slice for merge
            done = [slices.SliceResult(mine[0], 0, Tally(tolerated=tally.tolerated), fatal,
                                       example)]
    else:
        if cluster is not None and shard is None:
            done = _elsewhere(factory, profile, mine, tally.tolerated, notify, cluster)
        elif len(mine) == 1:
            done = [_slice(factory, prof, mine[0], tally.tolerated, notify, until=stop_when)]
        else:
            done = _elsewhere(factory, profile, mine, tally.tolerated, notify, None)
        merged = slices.merge(done, tally.tolerated)
        tally, fatal, example, generated = (merged.tally, merged.fatal, merged.example,
                                            merged.generated)
    # A shard's own slice, as merge reads it back: before minimization and workloads.
    raw = slices.slice_to_json(done[0]) if shard is not None and done else None
    reports: dict[tuple[str, str], ViolationReport] = {}
    if fatal is not None and example is not None:
        notify("minimizing", generated, 1)
        setup, ops = example
        if fatal.id == "SAFE-13" and fatal.detail.get("nondeterministic"):
            reports[("all", fatal.id)] = _unshrunk(factory, setup, ops, fatal)
        else:
            reports[("all", fatal.id)] = _minimized(factory, setup, ops[: fatal.step + 1],
                                                    fatal.id, "all", fatal, tally.tolerated)
    efficiency: list[WorkloadResult] = []
    ran = Tally(tolerated=tally.tolerated)
    if (workloads and shard in (None, 1) and not (fatal is not None and _hang(fatal))
            and not factory.out_of_time):
        notify("workloads", generated, _found(tally, reports))
        efficiency = _run_workloads(factory, ran, reports)
        slices.absorb(tally, ran)
    notify("minimizing", generated, _found(tally, reports))
    for key, rec in list(tally.recorded.items()):
        if key not in reports:
            reports[key] = _minimized(factory, rec.setup, rec.ops, rec.violation.id,
                                      rec.scope, rec.violation, tally.tolerated)

    payload = None if raw is None else _shard_payload(raw, ran, efficiency, reports, fatal,
                                                      spec)
    return _conclude(
        spec=spec, info=info, profile=profile, prof=prof, seed=seed, examples=examples,
        tally=tally, reports=reports, fatal=fatal, generated=generated,
        efficiency=efficiency, seconds=time.perf_counter() - t0,
        timeouts=factory.timeouts + sum(s.timeouts for s in done), mode=factory.mode,
        call_timeout=factory.call_timeout, workers=workers, started=started,
        run_versions=versions(), expected=expected,
        shard=None if shard is None else (shard, workers), payload=payload)


def _shard_payload(raw: dict[str, Any], ran: Tally, efficiency: list[WorkloadResult],
                   reports: dict[tuple[str, str], ViolationReport], fatal: Violation | None,
                   spec: str) -> dict[str, Any]:
    """What merge needs of a shard to claim what -j N would: its raw slice, its workloads'
    counts and results, and every violation it minimized, by scope, marked as found by
    the slice itself or by the workloads (which count after every slice's)."""
    from_slice = {(r["scope"], r["violation"]["id"]) for r in raw["tally"]["recorded"]}
    if fatal is not None:
        from_slice.add(("all", fatal.id))
    return {**raw, "workloads": slices.tally_to_json(ran),
            "efficiency": [dataclasses.asdict(w) for w in efficiency],
            "reports": [{"scope": key[0], "trace": r.trace(spec),
                         "origin": "slice" if key in from_slice else "workloads"}
                        for key, r in reports.items()]}


def _conclude(*, spec: str, info: AdapterInfo, profile: str, prof: RunProfile, seed: int,
              examples: int, tally: Tally, reports: dict[tuple[str, str], ViolationReport],
              fatal: Violation | None, generated: int, efficiency: list[WorkloadResult],
              seconds: float, timeouts: int, mode: str, call_timeout: float, workers: int,
              started: datetime, run_versions: dict[str, str],
              expected: dict[str, str] | None, shard: tuple[int, int] | None,
              payload: dict[str, Any] | None) -> ConformanceResult:
    """The result of a run (or of shards merged): statuses, the chosen reports, stats."""
    failed = {i for (scope, i) in reports if scope == "all"}
    eff_scope = efficiency_scope(failed)
    failed |= {i for (scope, i) in reports if scope == eff_scope}
    chosen = {i: r for (scope, i), r in reports.items() if scope in ("all", eff_scope)}
    invariants = {}
    for inv_id in IDS:
        inv = INVARIANTS[inv_id]
        n = tally.exercised.get(inv_id, 0)
        status = "fail" if inv_id in failed else ("pass" if n else "not-exercised")
        invariants[inv_id] = InvariantResult(inv_id, inv.level, inv.rule, status, n,
                                             chosen.get(inv_id))
    violations = sorted(chosen.values(), key=lambda r: (INVARIANTS[r.id].level == WARNING,
                                                         IDS.index(r.id)))
    stats = {
        # Generated examples only: not shrink attempts, replays or workloads.
        "examples": generated,
        "stopped_early": fatal is not None and generated < examples,
        "steps": tally.steps,
        "creates": tally.creates,
        "scans": tally.scans,
        "seconds": round(seconds, 3),
        "steps_per_second": round(tally.steps / seconds, 1) if seconds else 0.0,
        "efficiency_shadow": eff_scope,
        "timeouts": timeouts,
    }
    return ConformanceResult(
        adapter_spec=spec,
        adapter_info=info,
        profile=profile if examples == prof.max_examples else CUSTOM,
        seed=seed,
        settings={"based_on": profile,
                  "max_examples": examples, "max_fragments": prof.max_fragments,
                  "derandomized": prof.fixed_seed, "database": None, "deadline": None,
                  "targeting": prof.targeting, "isolation": mode,
                  "call_timeout": call_timeout, "workers": workers},
        invariants=invariants,
        violations=violations,
        efficiency=efficiency,
        stats=stats,
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=run_versions,
        coverage=coverage_of(tally),
        expected=expected,
        shard=shard,
        slice=payload,
    )


def efficiency_scope(failed: Iterable[str]) -> str:
    """The shadow reference efficiency is judged against: that of the highest safety level
    with no failure among ``failed`` (IDs judged in every scope), SPEC §5."""
    safe = not any(INVARIANTS[i].level in (CONFORMANT, SIGNATURE_CURRENT) for i in failed)
    return SIGNATURE_CURRENT if safe else CONFORMANT


def _found(tally: Tally, reports: dict[tuple[str, str], ViolationReport]) -> int:
    """How many violations the result will report so far: warnings aside, and efficiency
    counted against one reference only (SPEC §5), as :func:`run_conformance` chooses it."""
    keys = {*reports, *tally.recorded}
    scope = efficiency_scope(i for s, i in keys if s == "all")
    return len({i for s, i in keys if s in ("all", scope) and INVARIANTS[i].level != WARNING})


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


def _smoke(factory: Callable[[], Any]) -> tuple[AdapterInfo, Violation | None]:
    """Make one adapter and start it, so a broken factory is an exit-3 error, not a run;
    also return a violation it commits before any event."""
    try:
        adapter = instantiate(factory)
    except ConformanceError:
        raise
    except Exception as e:
        raise AdapterStartError(f"the adapter could not be created: {type(e).__name__}: {e}",
                                hint="the factory must build an adapter with no arguments"
                                ) from e
    info = adapter_info(adapter)
    try:
        Checker(lambda: adapter, O.Setup(), Tally(), probe=False).run(())
    except Violation as v:
        if v.id == "SAFE-13" and v.detail.get("call") == "start":
            raise AdapterStartError(f"the adapter could not be started: {v.summary}") from None
        if v.id == "SAFE-12":
            return info, v
    return info, None


def _slice(factory: AdapterSession, prof: RunProfile, plan: slices.Plan,
           tolerated: frozenset[str], notify: Progress,
           stop: Callable[[], bool] | None = None,
           on_fatal: Callable[[], None] | None = None,
           until: Callable[[Tally], bool] | None = None) -> slices.SliceResult:
    """One slice of a run's budget, in this process. ``stop`` says another slice found a
    conformant-breaking violation (look no further); ``on_fatal`` tells them this one did;
    ``until`` ends the slice once it holds of its counts."""
    tally = Tally(tolerated=tolerated)
    stopped = [False]

    def stopping() -> bool:
        stopped[0] = stopped[0] or (stop is not None and stop()) or (
            until is not None and until(tally))
        return stopped[0]

    fatal, example, generated = _hypothesis_run(factory, prof, plan.examples, plan.seed,
                                                tally, notify, stopping, on_fatal)
    return slices.SliceResult(plan, generated, tally, fatal, example, stopped[0])


def _elsewhere(factory: AdapterSession, profile: str, plans: Sequence[slices.Plan],
               tolerated: frozenset[str], notify: Progress, cluster: str | None
               ) -> list[slices.SliceResult]:
    """Each slice in a worker process of its own, pinned to a CPU of its own (a worker
    and its adapter process play ping-pong on one CPU, as a single run does), or as a task
    of a dask cluster."""
    if cluster is not None:
        from ._cluster import run_on_cluster

        found = run_on_cluster(cluster, factory, profile, plans, tolerated, notify)
    else:
        from ._parallel import run_in_workers

        found = run_in_workers(factory, profile, plans, tolerated, notify)
    return [slices.slice_from_json(d, tolerated) for d in found]


def _hypothesis_run(factory: AdapterSession, prof: RunProfile, max_examples: int,
                    seed: int, tally: Tally, notify: Progress,
                    stop: Callable[[], bool] | None = None,
                    on_fatal: Callable[[], None] | None = None
                    ) -> tuple[Violation | None, tuple[O.Setup, list[O.Op]] | None, int]:
    """The first conformant-breaking violation (shrunk) and its example, if any, and how
    many examples were generated before it."""
    #: The example run last (after shrinking, the minimal one).
    last: list[tuple[O.Setup, list[O.Op]]] = []
    #: The first failing example, unshrunk, and what it broke.
    first: list[tuple[O.Setup, list[O.Op], Violation]] = []
    generated = [0]
    #: The first example on which the suite itself failed.
    broken: list[tuple[O.Setup, list[O.Op], Exception]] = []

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
        # After the draw: an example that stops drawing early would look to Hypothesis
        # like a strategy that draws inconsistently.
        if not first and stop is not None and stop():
            raise _Stopped
        last[:] = [(setup, ops)]
        if not first:
            generated[0] += 1
        try:
            checker = Checker(factory, setup, tally)
            checker.run(ops, scenes=scenes)
        except Violation as v:
            if v.id in tally.tolerated and not _hang(v):
                # Known (an adapter fault, the others are recorded as they happen): this
                # example ends here; the run goes on.
                tally.record(v, setup, ops, "all")
                return
            if on_fatal is not None and not first:
                on_fatal()
            if _hang(v):
                # Shrinking would sit through the timeout on every attempt: leave Hypothesis
                # (a BaseException passes through it), minimize under a budget of timeouts.
                raise _Hung(setup, ops, v) from None
            if not first:
                first.append((setup, ops, v))
                notify("shrinking", generated[0], 1)
            raise
        except Exception as e:
            # Adapter faults are SAFE-13 violations by now: anything else is the suite's.
            if not broken:
                broken.append((setup, ops, e))
            raise
        finally:
            if tally.examples % 25 == 0:
                notify("shrinking" if first else "generating", generated[0],
                       _found(tally, {}) + bool(first))
        if prof.targeting:
            # Hill-climb toward long histories (costly: only where the budget allows).
            world = checker.world
            target(float(min(world.version, 1000)), label="signature updates")
            target(float(min(len(world.findings), 100)), label="detections")

    notify("generating", 0, 0)
    try:
        with _adapter_constants(factory.source):
            check()
    except _Hung as h:
        return h.violation, (h.setup, h.ops), generated[0]
    except _Stopped:
        return None, None, generated[0]
    except Violation as v:
        if last and _recurs(factory, last[0], v, tally.tolerated):
            return v, last[0], generated[0]
        setup, ops, _ = first[0]
        return _nondeterministic(v), (setup, ops), generated[0]
    except Flaky as e:
        if broken:
            raise _internal(*broken[0]) from e
        # The failure did not recur while Hypothesis replayed it: the adapter's answers are
        # not a function of the events it received.
        setup, ops, failure = first[0]
        return _nondeterministic(failure), (setup, ops), generated[0]
    except Exception as e:
        setup, ops = last[0] if last else broken[0][:2] if broken else (O.Setup(), [])
        raise _internal(setup, ops, e) from e
    return None, None, generated[0]


def _hang(v: Violation) -> bool:
    """An adapter call timed out (SAFE-13): every replay of it costs a whole timeout."""
    return v.detail.get("fault") == "timeout"


class _Stopped(BaseException):
    """Another slice found a conformant-breaking violation: this one stops (a
    BaseException, so that Hypothesis lets it through)."""


class _Hung(BaseException):
    """An adapter call timed out on this example."""

    def __init__(self, setup: O.Setup, ops: list[O.Op], violation: Violation) -> None:
        super().__init__(violation.summary)
        self.setup = setup
        self.ops = ops
        self.violation = violation


@contextlib.contextmanager
def _adapter_constants(source: Path | None) -> Iterator[None]:
    """Pin the constants Hypothesis mixes into its draws to the adapter's own source file.

    Hypothesis draws some values from literals in the code under test that is not installed
    (its "local constants", gathered from whatever local modules are loaded), so one seed
    generated different examples from a checkout than from a wheel, and from a vendor's
    pytest session (their modules loaded) than from ``certify``. Pinned, every route
    generates the same examples, in the suite's process or not (the file is read, never
    imported), and a small fixed limit written in the adapter still gets tried. Without
    the internals this relies on, Hypothesis's default stands."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants, _constants_from_source
        from sortedcontainers import SortedSet
    except ImportError:  # pragma: no cover - another Hypothesis
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if original is None or cache is None:  # pragma: no cover - another Hypothesis
        yield
        return
    found = Constants()
    if source is not None and source.suffix == ".py":
        try:
            code = source.read_bytes()
            # Hypothesis's own limit for a module's constants.
            if len(code) <= 512 * 1024:
                found = _constants_from_source(code, limit=True)
        except Exception:  # unreadable or unparsable: no constants, as Hypothesis would
            pass
    pinned = Constants(integers=SortedSet(found.integers))
    providers._get_local_constants = lambda: pinned
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.cache.clear()


def _internal(setup: O.Setup, ops: Sequence[O.Op], e: Exception) -> InternalError:
    """The suite failed on this example: an error to report, with the example as a trace."""
    return InternalError(f"{type(e).__name__}: {e}", trace={
        "format": TRACE_FORMAT, "format_version": TRACE_FORMAT_VERSION,
        "suite_version": __version__, "invariant": None, "internal_error": repr(e),
        "setup": O.setup_to_json(setup), "ops": [O.op_to_json(op) for op in ops]})


def _recurs(factory: Callable[[], Any], example: tuple[O.Setup, list[O.Op]],
            v: Violation, tolerated: frozenset[str] = frozenset()) -> bool:
    """The shrunk failure recurs on a fresh replay (twice, to be sure)."""
    setup, ops = example
    return all(reproduce(factory, setup, ops[: v.step + 1], v.id, tolerated=tolerated)
               is not None for _ in range(2))


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
    """A non-recurring failure's report: the example as it failed, described, unshrunk
    (the dialogue is a second run's: it may differ from the one that failed)."""
    calls: list[dict[str, Any]] = []
    return ViolationReport(found.id, found.level, "all", found.summary, found.detail, setup,
                           tuple(ops), _described(factory, setup, ops, calls),
                           nondeterministic=True, calls=calls)


def reproduce(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op], inv: str,
              scope: str = "all", describe: list[str] | None = None,
              calls: list[dict[str, Any]] | None = None,
              tolerated: frozenset[str] = frozenset()) -> Violation | None:
    """Run ``ops`` once; return the violation of ``inv`` (in ``scope``) if it recurs. With
    ``calls``, the adapter's dialogue is written into it; ``tolerated`` are the run's known
    failures (recorded, not raised: the run that found ``inv`` went on past them)."""
    tally = Tally(tolerated=tolerated)
    try:
        Checker(factory, setup, tally, dialogue=calls).run(ops, describe)
    except Violation as v:
        return v if v.id == inv else None
    rec: Recorded | None = tally.recorded.get((scope, inv))
    return rec.violation if rec is not None else None


def _minimized(factory: AdapterSession, setup: O.Setup, ops: Sequence[O.Op], inv: str,
               scope: str, found: Violation, tolerated: frozenset[str] = frozenset()
               ) -> ViolationReport:
    """Delete operations while the same violation recurs; then describe the survivors."""
    current = list(ops)
    if not factory.out_of_time and reproduce(factory, setup, current, inv, scope,
                                                tolerated=tolerated) is not None:
        chunk = max(1, len(current) // 2)
        while chunk >= 1 and not factory.out_of_time:
            i = 0
            while i < len(current) and not factory.out_of_time:
                candidate = current[:i] + current[i + chunk:]
                if candidate and reproduce(factory, setup, candidate, inv, scope,
                                                        tolerated=tolerated) is not None:
                    current = candidate
                else:
                    i += chunk
            chunk //= 2
    steps: list[str] = []
    if factory.out_of_time and not _hang(found):
        # Another replay could hang again: describe the steps with the reference instead.
        return ViolationReport(found.id, found.level, scope, found.summary, found.detail,
                               setup, tuple(current),
                               _described(reference_factory(SIGNATURE_CURRENT), setup, current))
    calls: list[dict[str, Any]] = []
    final = reproduce(factory, setup, current, inv, scope, steps, calls, tolerated) or found
    if final is not found:
        steps = steps[: final.step + 1]
        current = current[: final.step + 1]
        calls = dialogue.up_to_step(calls, final.step + 1)
    return ViolationReport(final.id, final.level, scope, final.summary, final.detail, setup,
                           tuple(current), steps, calls=calls,
                           failing_call=dialogue.mark(calls, final) if final is not found
                           else None)


def _described(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op],
               calls: list[dict[str, Any]] | None = None) -> list[str]:
    """The steps of ``ops`` in words, as the model stands with ``factory``'s adapter; those
    after a violation stopped it as their records print."""
    steps: list[str] = []
    with contextlib.suppress(Violation):
        Checker(factory, setup, Tally(), probe=False, dialogue=calls).run(ops, steps)
    return steps + [str(op) for op in ops[len(steps):]]


def replay(adapter: Callable[[], Any] | str, trace: dict[str, Any],
           require: Sequence[str] = (CONFORMANT,), *, isolate: bool | None = None,
           call_timeout: float = DEFAULT_CALL_TIMEOUT) -> ReplayOutcome:
    """Re-run a trace (as written by :meth:`ViolationReport.trace`) deterministically and
    judge it: does its violation recur, and does anything else break a level in ``require``
    (``conformant`` always counts: every level rests on it)?

    ``adapter``, ``isolate`` and ``call_timeout`` are as for :func:`run_conformance`. A
    trace without ``invariant`` (a hand-written history) is judged on the levels alone.
    Raises ``ValueError`` for a malformed trace."""
    session, owned = as_session(adapter, call_timeout, isolate)
    try:
        return _replay(session, trace, require)
    finally:
        if owned:
            session.close()


def _replay(factory: AdapterSession, trace: dict[str, Any],
            require: Sequence[str]) -> ReplayOutcome:
    inv = trace.get("invariant")
    if inv is not None and inv not in INVARIANTS:
        raise ValueError(f"trace names no known invariant ({inv!r})")
    setup = O.setup_from_json(trace.get("setup"))
    raw_ops = trace.get("ops")
    if not isinstance(raw_ops, list):
        raise ValueError("trace has no 'ops' list")
    ops = [O.op_from_json(o) for o in raw_ops]
    scope = str(trace.get("scope") or "all")
    tally = Tally()
    steps: list[str] = []
    calls: list[dict[str, Any]] = []
    fatal = None
    try:
        Checker(factory, setup, tally, dialogue=calls).run(ops, steps)
    except Violation as v:
        fatal = v
    found = [fatal] if fatal is not None else []
    # The trace's own violation, judged as when it was recorded (efficiency against the
    # reference it names).
    recorded = {key: r.violation for key, r in tally.recorded.items()}
    main = fatal if fatal is not None and fatal.id == inv else recorded.get((scope, str(inv)))
    inv = inv or ""
    # Other efficiency findings are judged as a run judges them.
    eff_scope = efficiency_scope([v.id for v in found] + [i for s, i in recorded if s == "all"])
    found += [v for (s, _), v in recorded.items() if s in ("all", eff_scope)]
    shown = [] if main is None else [main]
    seen = {inv}
    order = {CONFORMANT: 0, SIGNATURE_CURRENT: 1, OPTIMIZED: 2, WARNING: 3}
    for other in sorted(found, key=lambda f: order[f.level]):
        if other.id not in seen:
            seen.add(other.id)
            shown.append(other)
    required = {CONFORMANT, *require}
    at = {v.id: i for v in reversed(shown) if (i := dialogue.mark(calls, v)) is not None}
    return ReplayOutcome(setup, ops, steps, shown, inv, scope, main, sorted(required), calls,
                         at)


@dataclass(slots=True)
class ReplayOutcome:
    setup: O.Setup
    ops: list[O.Op]
    steps: list[str]
    #: Everything that recurred: the trace's own violation first, then by level.
    violations: list[Violation]
    invariant: str = ""
    scope: str = "all"
    #: The trace's own violation, if it recurred.
    main: Violation | None = None
    required: list[str] = field(default_factory=lambda: [CONFORMANT])
    #: Every call the adapter received (:mod:`._dialogue`).
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: Violation ID -> the index in ``calls`` of the call it was found in.
    found_in: dict[str, int] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [v.id for v in self.violations]

    @property
    def recurs(self) -> bool:
        return self.main is not None

    @property
    def breaking(self) -> list[str]:
        """Other violations at a required level."""
        return [v.id for v in self.violations if v.level in self.required and v is not self.main]

    @property
    def passed(self) -> bool:
        """Exit status 0: neither the trace's violation nor any at a required level recurs."""
        return not self.recurs and not self.breaking

    def result(self) -> str:
        """The one-line verdict ``replay`` ends with."""
        inv = self.invariant or "the trace"
        judged = (f" (judged against the {self.scope} reference adapter, as when the trace "
                  "was recorded)" if self.invariant and INVARIANTS[inv].level == OPTIMIZED
                  and self.scope != "all" else "")
        breaking = self.breaking
        if self.recurs:
            also = f"; also {', '.join(breaking)}" if breaking else ""
            return f"Result: {inv} recurs{judged}{also}."
        if breaking:
            return f"Result: {inv} does not recur{judged}, but {', '.join(breaking)} did."
        others = [v.id for v in self.violations if v.level not in self.required
                  and v.level != WARNING]
        warned = [v.id for v in self.violations if v.level == WARNING]
        levels = ", ".join(lv for lv in self.required)
        extra = "".join(f" ({what}: {', '.join(ids)})" for what, ids in (
            (f"not at a required level ({levels})", others), ("warnings", warned)) if ids)
        return f"Result: replays clean: {inv} does not recur{judged}{extra}."


def _run_workloads(factory: AdapterSession, tally: Tally,
                   reports: dict[tuple[str, str], ViolationReport]) -> list[WorkloadResult]:
    results = []
    for w, theirs in zip(standard_workloads(), _reference_scans(), strict=True):
        ours = None if factory.out_of_time else _workload_scans(factory, w, tally, reports)
        results.append(WorkloadResult(
            w.name, w.title, w.containers,
            None if ours is None else round(ours / w.containers, 3),
            round(theirs / w.containers, 3), w.invariant))
    return results


@functools.cache
def _reference_scans() -> tuple[int, ...]:
    """The reference's container scans per workload: deterministic, so measured once."""
    ref = InProcess(reference_factory(SIGNATURE_CURRENT), "reference")
    return tuple(_workload_scans(ref, w, Tally(), None) or 0 for w in standard_workloads())


def _workload_scans(factory: AdapterSession, w: Workload, tally: Tally,
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
