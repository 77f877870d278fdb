"""An adapter opened for a run: the factory every part of the suite makes adapters from.

By default (SPEC §10) the adapter lives in an adapter process and the suite's process
never imports it: Python and ``lib:`` adapters in ``python -m conformance._worker``,
``exec:`` adapters in the vendor's own program. ``in-process`` loads it here, for fast
local iteration. Every call, in either mode, is under the per-call timeout.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.contract import AdapterInfo

from ._loading import check_module_exists, instantiate, load_adapter, parse_spec
from ._remote import Connection, colocate, restore
from ._watchdog import DEFAULT_CALL_TIMEOUT, Timed, watchdog

ISOLATED = "isolated"
IN_PROCESS = "in-process"

#: Timeouts a run sits through before it stops looking further (each costs a full timeout):
#: shrinking a hang re-meets it on every attempt.
TIMEOUT_BUDGET = 4


class AdapterSession:
    """Callable like a factory: each call is a fresh adapter (SPEC §4)."""

    mode: str = IN_PROCESS

    def __init__(self, spec: str, call_timeout: float) -> None:
        self.spec = spec
        self.call_timeout = call_timeout
        #: The adapter's source file, for the constants Hypothesis mixes into draws.
        self.source: Path | None = None

    def __call__(self) -> Any:
        raise NotImplementedError

    @property
    def probes(self) -> Callable[[], Any]:
        """The factory for counterfactual replays (a separate process when isolated, so a
        probe that crashes the adapter leaves the example's own adapter alive)."""
        return self

    @property
    def timeouts(self) -> int:
        return 0

    @property
    def out_of_time(self) -> bool:
        """The run has sat through :data:`TIMEOUT_BUDGET` timeouts: look no further."""
        return self.timeouts >= TIMEOUT_BUDGET

    def cpus(self) -> list[int]:
        """The CPUs this process may run on, as before the session pinned it to one."""
        try:
            return sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return []

    def portable(self) -> tuple[str | Callable[[], Any], bool]:
        """What another process needs to open this adapter as this session does: a SPEC
        (or, in-process, a factory that pickles) and whether to isolate it."""
        return self.spec, self.mode == ISOLATED

    @property
    def raw(self) -> Callable[[], Any]:
        """The factory whose adapters' own methods a benchmark times: in-process, the
        vendor's factory (no watchdog around each call); otherwise this session, whose every
        call is a round trip to the adapter process."""
        return self

    def close(self) -> None:
        """End the adapter processes, if any."""

    def __enter__(self) -> AdapterSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(AdapterSession):
    """A factory in this process, every hook under the watchdog."""

    def __init__(self, factory: Callable[[], Any], spec: str,
                 call_timeout: float = DEFAULT_CALL_TIMEOUT, *, from_spec: bool = False
                 ) -> None:
        super().__init__(spec, call_timeout)
        self.factory = factory
        #: ``spec`` loads this factory (open_adapter made it), not just names it.
        self.from_spec = from_spec
        self.dog = watchdog(call_timeout)
        self._fired = self.dog.fired
        module = sys.modules.get(str(getattr(factory, "__module__", "") or ""))
        with contextlib.suppress(TypeError, OSError):
            self.source = Path(inspect.getsourcefile(module) or "") if module else None

    def __call__(self) -> Any:
        return Timed(instantiate(self.factory), self.dog)

    @property
    def timeouts(self) -> int:
        return self.dog.fired - self._fired

    def portable(self) -> tuple[str | Callable[[], Any], bool]:
        return (self.spec if self.from_spec else self.factory), False

    @property
    def raw(self) -> Callable[[], Any]:
        return self.factory


class Isolated(AdapterSession):
    """An adapter in its own process, reached over the protocol."""

    mode = ISOLATED

    def __init__(self, spec: str, argv: list[str], call_timeout: float,
                 env: dict[str, str] | None = None, source: Path | None = None) -> None:
        super().__init__(spec, call_timeout)
        self.argv = argv
        self.env = env
        self.source = source
        self._cpu, self._affinity = colocate()
        self.main = Connection(argv, call_timeout, env, self._cpu)
        self._probes: Connection | None = None

    def cpus(self) -> list[int]:
        return sorted(self._affinity) if self._affinity else super().cpus()

    def __call__(self) -> Any:
        return self.main.new()

    def start(self) -> Isolated:
        """Start the adapter process now: a broken adapter fails here (exit 2 or 3)."""
        self.main.open()
        return self

    @property
    def probes(self) -> Callable[[], Any]:
        if self._probes is None:
            self._probes = Connection(self.argv, self.call_timeout, self.env, self._cpu)
        return self._probes.new

    @property
    def timeouts(self) -> int:
        return self.main.timeouts + (self._probes.timeouts if self._probes else 0)

    @property
    def info(self) -> AdapterInfo:
        """What the adapter declared in hello."""
        self.main.open()
        return self.main.info

    def close(self) -> None:
        self.main.close()
        if self._probes is not None:
            self._probes.close()
        restore(self._affinity)
        self._affinity = None


def open_adapter(spec: str, *, isolate: bool = True,
                 call_timeout: float = DEFAULT_CALL_TIMEOUT) -> AdapterSession:
    """Open the adapter SPEC names, in an adapter process (default) or in this one.
    Raises :class:`~conformance.ConformanceError` subclasses (exit 2 or 3)."""
    if not call_timeout > 0:
        raise ValueError("call_timeout must be positive")
    parsed = parse_spec(spec)
    if parsed.kind == "exec":
        return Isolated(spec, shlex.split(parsed.target), call_timeout, _adapter_env()).start()
    if not isolate:
        return InProcess(load_adapter(spec), spec, call_timeout, from_spec=True)
    if parsed.kind == "module":
        check_module_exists(parsed.target)
    return Isolated(spec, [sys.executable, "-m", "conformance._worker", spec], call_timeout,
                    _worker_env(), _source(parsed.kind, parsed.target)).start()


def as_session(adapter: Callable[[], Any] | str | AdapterSession,
               call_timeout: float = DEFAULT_CALL_TIMEOUT,
               isolate: bool | None = None) -> tuple[AdapterSession, bool]:
    """``adapter`` as a session, and whether the caller opened it (and must close it). A
    SPEC string is isolated unless ``isolate`` is False; a factory object is already in
    this process, so it runs here, under the watchdog."""
    if isinstance(adapter, AdapterSession):
        return adapter, False
    if isinstance(adapter, str):
        return open_adapter(adapter, isolate=isolate is not False,
                            call_timeout=call_timeout), True
    if isolate:
        raise ValueError("a factory object runs in this process; pass its SPEC string to "
                         "isolate it")
    spec = f"{getattr(adapter, '__module__', '?')}:{getattr(adapter, '__qualname__', '?')}"
    return InProcess(adapter, spec, call_timeout), True


#: What an adapter process must not inherit: the passphrase of the bundle's signing key.
SECRET_VARIABLES = ("WCIFS_SIGN_KEY_PASSPHRASE",)


def _adapter_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}


def _worker_env() -> dict[str, str]:
    """The worker sees this process's ``sys.path``, and finds the suite even when the
    suite's own package was put on the path by hand."""
    env = _adapter_env()
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
    env["WCIFS_WORKER_PATH"] = json.dumps([p or os.getcwd() for p in sys.path])
    return env


def _source(kind: str, target: str) -> Path | None:
    """The adapter's source file, found without importing it."""
    if kind == "file":
        return Path(target)
    if kind == "reference":
        origin = importlib.util.find_spec("reference.adapter")
        return Path(origin.origin) if origin and origin.origin else None
    if kind != "module":
        return None
    loaded = sys.modules.get(target)
    if loaded is not None:
        file = getattr(loaded, "__file__", None)
        return Path(file) if file else None
    paths: list[str] | None = None
    parts = target.split(".")
    found = None
    for i in range(len(parts)):
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), paths)
        if found is None:
            return None
        if i < len(parts) - 1:
            locations = found.submodule_search_locations
            if locations is None:
                return None
            paths = list(locations)
    return Path(found.origin) if found and found.origin else None
