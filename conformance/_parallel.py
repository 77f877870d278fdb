"""``-j N``: the slices of a run in worker processes (SPEC §8).

Each worker opens the adapter as the run's session does (isolated: its own adapter
processes; in-process: the same SPEC or factory), pins itself to a CPU of its own, runs
its slice and sends it back as JSON. The first conformant-breaking violation any worker
meets stops every other (a shared event); the run then shrinks it once.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import ConformanceError, InternalError
from ._session import AdapterSession, as_session
from ._slices import Plan, slice_to_json

Progress = Callable[[str, int, int], None]
#: How often the parent looks at its workers while none reports.
POLL = 0.5


def portable(session: AdapterSession) -> tuple[str | Callable[[], Any], bool]:
    """What a worker opens: the session's SPEC, or its factory if that pickles."""
    adapter, isolate = session.portable()
    if not isinstance(adapter, str):
        try:
            pickle.loads(pickle.dumps(adapter))
        except Exception as e:
            raise ConformanceError(
                f"-j needs an adapter another process can open: {session.spec} does not "
                f"pickle ({type(e).__name__}: {e})",
                hint="pass its SPEC string (path/to/file.py:Class) instead of the object"
            ) from None
    return adapter, isolate


def run_in_workers(session: AdapterSession, profile: str, plans: Sequence[Plan],
                   tolerated: frozenset[str], notify: Progress) -> list[dict[str, Any]]:
    """Every slice of ``plans`` in a worker process; their results, in ``plans``' order."""
    import multiprocessing

    adapter, isolate = portable(session)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    out: Any = ctx.Queue()
    cpus: list[int | None] = list(session.cpus()) or [None]
    procs = [ctx.Process(target=_worker, daemon=True, name=f"wcifs-slice-{p.index}", args=(
        adapter, isolate, session.call_timeout, profile, p, tolerated,
        cpus[(p.index - 1) % len(cpus)], stop, out)) for p in plans]
    results: dict[int, dict[str, Any]] = {}
    progress = {p.index: (0, 0) for p in plans}
    phase = "generating"
    try:
        for proc in procs:
            proc.start()
        while len(results) < len(plans):
            try:
                message = out.get(timeout=POLL)
            except queue.Empty:
                lost = [p for p, proc in zip(plans, procs, strict=True)
                        if p.index not in results and not proc.is_alive()]
                if lost and out.empty():
                    raise InternalError(f"the worker of slice {lost[0].index} of "
                                        f"{lost[0].of} died (exit code "
                                        f"{procs[plans.index(lost[0])].exitcode})") from None
                continue
            kind, index = message[0], message[1]
            if kind == "progress":
                phase = "shrinking" if message[2] == "shrinking" else phase
                progress[index] = (message[3], message[4])
                notify(phase, sum(n for n, _ in progress.values()),
                       max(bad for _, bad in progress.values()))
            elif kind == "done":
                results[index] = message[2]
            else:
                raise_error(message)
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [results[p.index] for p in plans]


def _worker(adapter: str | Callable[[], Any], isolate: bool, call_timeout: float,
            profile: str, plan: Plan, tolerated: frozenset[str], cpu: int | None,
            stop: Any, out: Any) -> None:
    """A worker process: one slice, its result (or its error) on ``out``."""
    def notify(phase: str, examples: int, violations: int) -> None:
        out.put(("progress", plan.index, phase, examples, violations))

    out.put(job(adapter, isolate, call_timeout, profile, plan, tolerated, cpu, stop.is_set,
                stop.set, notify))


def job(adapter: str | Callable[[], Any], isolate: bool, call_timeout: float, profile: str,
        plan: Plan, tolerated: frozenset[str], cpu: int | None,
        stop: Callable[[], bool], on_fatal: Callable[[], None],
        notify: Progress) -> tuple[Any, ...]:
    """One slice wherever it runs: ``("done", index, slice JSON)`` or ``("error", index,
    error class name, exit code, message, trace)``; never raises."""
    try:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpu})
        from ._engine import _slice
        from ._profiles import PROFILES

        session, owned = as_session(adapter, call_timeout, isolate)
        try:
            result = _slice(session, PROFILES[profile], plan, tolerated, notify,
                            stop=stop, on_fatal=on_fatal)
            result.timeouts = session.timeouts
        finally:
            if owned:
                session.close()
        return ("done", plan.index, slice_to_json(result))
    except ConformanceError as e:
        return ("error", plan.index, type(e).__name__, e.exit_code, str(e),
                getattr(e, "trace", None))
    except BaseException as e:  # the suite's own failure, reported by the parent (exit 4)
        return ("error", plan.index, "InternalError", 4,
                f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-8)}", None)


def raise_error(message: tuple[Any, ...]) -> None:
    """Raise in the parent what a slice's ``("error", ...)`` message reports."""
    _, _, name, code, text, trace = message
    if name == "InternalError":
        raise InternalError(text, trace)
    raise ConformanceError(text, exit_code=code)
