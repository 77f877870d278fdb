"""``certify -j N --cluster ADDRESS``: the slices of a run as tasks of a ``dask.distributed``
scheduler the vendor already runs (``local`` starts a ``LocalCluster`` on this machine).

Each task opens the adapter on its worker (the suite and the adapter must be importable
there, by the same SPEC), claims a CPU of that machine no other task of the run holds, and
returns its slice as JSON; the client shows progress as tasks finish, stops the others
when one meets a conformant-breaking violation (a dask ``Event``), and then shrinks,
merges and runs the workloads as ``-j N`` does. An optional extra:
``pip install 'wcifs-av-conformance[cluster]'``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._errors import ConformanceError
from ._parallel import job, portable, raise_error
from ._session import AdapterSession
from ._slices import Plan

Progress = Callable[[str, int, int], None]
#: How often a task asks the scheduler whether another task stopped the run.
ASK_EVERY = 1.0
LOCAL = "local"


class ClusterError(ConformanceError):
    """No dask.distributed, or no scheduler at the address (exit 2)."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs dask.distributed, an optional extra",
                           hint="pip install 'wcifs-av-conformance[cluster]'") from None
    return distributed


def run_on_cluster(address: str, session: AdapterSession, profile: str,
                   plans: Sequence[Plan], tolerated: frozenset[str],
                   notify: Progress) -> list[dict[str, Any]]:
    """Every slice of ``plans`` as a task on the cluster; their results, in order."""
    distributed = _distributed()
    adapter, isolate = portable(session)
    if not isinstance(adapter, str):
        raise ClusterError("--cluster runs an adapter named by its SPEC, which every "
                           "worker opens itself")
    with contextlib.ExitStack() as stack:
        if address == LOCAL:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=max(1, min(len(plans), len(session.cpus()) or 1)),
                threads_per_worker=1, processes=True, dashboard_address=None))
            target: Any = cluster
        else:
            target = address
        try:
            client = stack.enter_context(distributed.Client(target, timeout="10s"))
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"no dask scheduler answers at {address}: {e}") from None
        run = uuid.uuid4().hex[:12]
        stop = distributed.Event(f"wcifs-stop-{run}", client=client)
        futures = [client.submit(_task, adapter, isolate, session.call_timeout, profile, p,
                                 tolerated, stop.name, key=f"wcifs-slice-{p.index}-of-"
                                 f"{p.of}-{run}", pure=False) for p in plans]
        results: dict[int, dict[str, Any]] = {}
        generated = violations = 0
        try:
            for future in distributed.as_completed(futures):
                message = future.result()
                if message[0] != "done":
                    stop.set()
                    raise_error(message)
                data = message[2]
                results[int(message[1])] = data
                generated += int(data["generated"])
                violations += data["fatal"] is not None
                notify("generating" if not violations else "shrinking", generated,
                       violations)
        finally:
            stop.set()
            client.cancel(futures)
    return [results[p.index] for p in plans]


def _task(adapter: str, isolate: bool, call_timeout: float, profile: str, plan: Plan,
          tolerated: frozenset[str], stop_name: str) -> tuple[Any, ...]:
    """One slice on a dask worker."""
    event = _distributed().Event(stop_name)
    asked = [0.0, False]

    def stopped() -> bool:
        now = time.monotonic()
        if not asked[1] and now - asked[0] >= ASK_EVERY:
            asked[:] = [now, bool(event.is_set())]
        return bool(asked[1])

    with _claimed_cpu() as cpu:
        return job(adapter, isolate, call_timeout, profile, plan, tolerated, cpu, stopped,
                   event.set, lambda phase, n, bad: None)


@contextlib.contextmanager
def _claimed_cpu() -> Iterator[int | None]:
    """A CPU of this machine that no other task holds (a lock file per CPU), so that tasks
    of several worker processes do not share one; None when every CPU is taken."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        yield None
        return
    locks = Path(tempfile.gettempdir())
    for cpu in cpus:
        fd = os.open(locks / f"wcifs-conformance-cpu-{cpu}.lock", os.O_CREAT | os.O_RDWR,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        before = set(cpus)
        try:
            yield cpu
        finally:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, before)
            os.close(fd)
        return
    yield None
