"""The suite's power, measured: is every gallery mutant caught, with its own ID, on every seed?

    python tests/power.py [--seeds N] [--first-seed S] [--no-certify] [-j N] [--only NAMES]
    python tests/power.py --correct [--max-examples N] [--seeds N] [-j N] [--only NAMES]
    tox -e power -- [the same options]

Mutant mode (the default) runs every mutant of ``gallery.MUTANTS`` on the ``quick`` profile
once per seed (seeds S..S+N-1, default 1..5) and once on the ``certify`` profile (its fixed
seed), in a process pool, and prints one row per mutant: the ID it must be caught with, how
many quick seeds caught it with that ID, what was found instead when it was not, whether the
certify run caught it, and the time spent.

Correct mode (``--correct``) runs the correct adapters of ``gallery.CORRECT`` and the
reference configurations with ``--max-examples`` per seed and reports every safety alarm
(a conformant or signature-current violation, or a warning). SIG-1 and SIG-2 are the
conformant reference's own and are no alarm against it.

The exit status is 0 only when every mutant was caught with its ID on every run (mutant
mode) and no correct adapter drew an alarm (correct mode); 1 otherwise; 2 on bad options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ``gallery`` lives beside us

import gallery

from conformance import INVARIANTS, run_conformance
from reference.adapter import reference_factory

SAFETY = ("conformant", "signature-current", "warning")
#: Reference configurations checked in correct mode: name -> (level, proactive scans).
REFERENCES: dict[str, tuple[str, bool]] = {
    "reference[signature-current]": ("signature-current", True),
    "reference[signature-current, no proactive]": ("signature-current", False),
    "reference[conformant]": ("conformant", True),
}
#: What a configuration is allowed to fail without it being an alarm.
EXPECTED_MISSES = {"reference[conformant]": frozenset({"SIG-1", "SIG-2"})}


@dataclass(frozen=True)
class Job:
    adapter: str
    #: The ID a mutant must be caught with ("" for a correct adapter).
    expected: str
    profile: str
    seed: int | None
    max_examples: int | None = None


@dataclass
class Outcome:
    job: Job
    failed: list[str] = field(default_factory=list)
    first: str = ""
    seconds: float = 0.0
    error: str = ""
    #: Length of the shrunk counterexample of the expected ID (0: none).
    steps: int = 0

    @property
    def caught(self) -> bool:
        return not self.error and self.job.expected in self.failed

    def alarms(self) -> list[str]:
        allowed = EXPECTED_MISSES.get(self.job.adapter, frozenset())
        return [i for i in self.failed
                if INVARIANTS[i].level in SAFETY and i not in allowed]

    def found(self) -> str:
        """What the run reported, for a row where the expected ID was not found."""
        if self.error:
            return "error: " + self.error
        ids = [i for i in self.failed if INVARIANTS[i].level in SAFETY]
        return "+".join(ids) if ids else "nothing"


def factory_for(name: str) -> Callable[[], Any]:
    if name in REFERENCES:
        return reference_factory(*REFERENCES[name])
    adapter = getattr(gallery, name, None)
    if adapter is None:
        raise SystemExit(f"power: no adapter named {name!r} in gallery")
    return adapter  # type: ignore[no-any-return]


def run_job(job: Job) -> Outcome:
    """One conformance run, in a worker process; never raises."""
    t0 = time.perf_counter()
    out = Outcome(job)
    try:
        result = run_conformance(factory_for(job.adapter), job.profile, seed=job.seed,
                                 max_examples=job.max_examples,
                                 workloads=job.expected.startswith("EFF"))
        out.failed = list(result.failed)
        out.first = result.violations[0].id if result.violations else ""
        report = result.invariants[job.expected].violation if job.expected else None
        out.steps = len(report.steps) if report is not None else 0
    except BaseException as e:  # a crash of the suite is a finding too: report, go on
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        out.error = last.splitlines()[0][:120]
    out.seconds = time.perf_counter() - t0
    return out


def mutant_jobs(seeds: list[int], certify: bool, only: set[str] | None,
                max_examples: int | None) -> list[Job]:
    jobs = []
    for inv, mutants in gallery.MUTANTS.items():
        for m in mutants:
            if only is not None and m.__name__ not in only and inv not in only:
                continue
            if certify:
                jobs.append(Job(m.__name__, inv, "certify", None))
            jobs += [Job(m.__name__, inv, "quick", s, max_examples) for s in seeds]
    return jobs


def correct_jobs(seeds: list[int], only: set[str] | None, max_examples: int) -> list[Job]:
    names = [a.__name__ for a in gallery.CORRECT] + list(REFERENCES)
    return [Job(n, "", "quick", s, max_examples) for n in names
            if only is None or n in only for s in seeds]


def run_all(jobs: list[Job], workers: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    # Certify runs are the longest: start them first so the pool ends evenly.
    ordered = sorted(jobs, key=lambda j: (j.profile != "certify", j.max_examples is None))
    width = len(str(len(jobs)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[Outcome], Job] = {pool.submit(run_job, j): j for j in ordered}
        try:
            for n, fut in enumerate(as_completed(futures), 1):
                out = fut.result()
                outcomes.append(out)
                print(f"[{n:>{width}}/{len(jobs)}] {progress_line(out)}", flush=True)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes


def progress_line(out: Outcome) -> str:
    j = out.job
    where = f"{j.profile}" + (f" seed {j.seed}" if j.seed is not None else "")
    if j.expected:
        verdict = (f"caught {j.expected} in {out.steps} steps" if out.caught
                   else f"MISSED {j.expected} (found {out.found()})")
    else:
        alarms = out.alarms()
        verdict = ("error: " + out.error if out.error else
                   f"ALARM {'+'.join(alarms)}" if alarms else "no alarm")
    return f"{j.adapter} {where}: {verdict} ({out.seconds:.1f}s)"


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _count(items: list[str]) -> str:
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in Counter(items).items())


def mutant_report(outcomes: list[Outcome], n_seeds: int, certify: bool) -> tuple[str, bool]:
    by: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        by.setdefault((o.job.expected, o.job.adapter), []).append(o)
    order = [(inv, m.__name__) for inv, ms in gallery.MUTANTS.items() for m in ms]
    rows, ok = [], True
    for key in order:
        if key not in by:
            continue
        inv, name = key
        runs = by[key]
        quick = [o for o in runs if o.job.profile == "quick"]
        cert = [o for o in runs if o.job.profile == "certify"]
        caught = sum(o.caught for o in quick)
        instead = _count([o.found() for o in quick if not o.caught])
        if cert:
            c = cert[0]
            cert_cell = "yes" if c.caught else f"no ({c.found()})"
        else:
            cert_cell = "skipped"
        ok = ok and caught == len(quick) and all(o.caught for o in cert)
        steps = sorted(o.steps for o in runs if o.caught)
        rows.append([name, inv, f"{caught}/{len(quick)}", instead or "-", cert_cell,
                     f"{steps[len(steps) // 2]}" if steps else "-",
                     f"{sum(o.seconds for o in runs):.0f}s"])
    header = ["mutant", "expected", f"quick ({n_seeds} seeds)", "found instead",
              "certify" if certify else "certify (skipped)", "median steps", "time"]
    every = sorted(o.steps for o in outcomes if o.caught)
    summary = (f"\nshrunk counterexamples: median {every[len(every) // 2]} steps "
               f"(range {every[0]}-{every[-1]}) over {len(every)} caught runs"
               if every else "")
    return table(header, rows) + summary, ok


def correct_report(outcomes: list[Outcome]) -> tuple[str, bool]:
    by: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by.setdefault(o.job.adapter, []).append(o)
    rows, ok = [], True
    for name, runs in by.items():
        quiet = [o for o in runs if not o.error and not o.alarms()]
        alarms = [f"{i}@{o.job.seed}" for o in runs for i in o.alarms()]
        errors = [f"{o.error}@{o.job.seed}" for o in runs if o.error]
        expected = sorted({i for o in runs for i in o.failed
                           if i in EXPECTED_MISSES.get(name, ())})
        ok = ok and len(quiet) == len(runs)
        rows.append([name, f"{len(quiet)}/{len(runs)}", ", ".join(alarms + errors) or "-",
                     ", ".join(expected) or "-", f"{sum(o.seconds for o in runs):.0f}s"])
    return table(["adapter", "seeds without alarm", "alarms (ID@seed)",
                  "expected misses", "time"], rows), ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tests/power.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, metavar="N",
                   help="quick-profile seeds per adapter (default 5)")
    p.add_argument("--first-seed", type=int, default=1, metavar="S",
                   help="the seeds are S..S+N-1 (default 1)")
    p.add_argument("--no-certify", action="store_true",
                   help="skip the certify-profile run of each mutant")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated adapter class names or invariant IDs to run")
    p.add_argument("--correct", action="store_true",
                   help="run the correct adapters and reference configurations instead, "
                        "and report false alarms")
    p.add_argument("--max-examples", type=int, metavar="N",
                   help="examples per run (correct mode: default 20000; mutant mode: "
                        "overrides the quick profile's count, certify keeps its own)")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or (args.max_examples is not None
                                           and args.max_examples < 1):
        p.error("--seeds, -j and --max-examples must be at least 1")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None

    if args.correct:
        jobs = correct_jobs(seeds, only, args.max_examples or 20000)
    else:
        jobs = mutant_jobs(seeds, not args.no_certify, only, args.max_examples)
    if not jobs:
        p.error(f"--only {args.only!r} names no adapter")
    workers = min(args.jobs, len(jobs))
    what = "correct adapters" if args.correct else "mutants"
    print(f"power: {len(jobs)} runs of {len({j.adapter for j in jobs})} {what}, seeds "
          f"{seeds[0]}..{seeds[-1]}, {workers} worker(s)", flush=True)
    t0 = time.perf_counter()
    outcomes = run_all(jobs, workers)
    if args.correct:
        text, ok = correct_report(outcomes)
    else:
        text, ok = mutant_report(outcomes, len(seeds), not args.no_certify)
    print()
    print(text)
    print(f"\n{'PASS' if ok else 'FAIL'}: {time.perf_counter() - t0:.0f}s wall clock")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
