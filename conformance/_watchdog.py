"""The per-call timeout for adapters that run in the suite's own process (SPEC §10).

A child process that hangs is killed; an in-process adapter cannot be, so a watchdog thread
raises :class:`CallTimedOut` inside the call instead (``PyThreadState_SetAsyncExc``). That
interrupts Python code (``while True: pass``); a call blocked inside native code is
interrupted only when it returns to Python, which is why isolation is the default.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import Any

from ._faults import DEFAULT_CALL_TIMEOUT, AdapterFault

__all__ = ["DEFAULT_CALL_TIMEOUT", "CallTimedOut", "Timed", "Watchdog", "watchdog"]

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int


class CallTimedOut(BaseException):
    """Raised inside a call that outlived its timeout. A ``BaseException``, so that an
    adapter's own ``except Exception`` does not swallow it."""


class Watchdog:
    """Times one call at a time on any thread; fires :class:`CallTimedOut` into a call that
    has run ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._seq = 0
        #: (sequence number, thread id, start time) of the call in progress.
        self._active: tuple[int, int, float] | None = None
        self._fired = 0
        #: How many calls have timed out.
        self.fired = 0
        self._thread: threading.Thread | None = None

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="wcifs-call-watchdog",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        tick = min(0.25, max(0.01, self.timeout / 8))
        while True:
            time.sleep(tick)
            with self._lock:
                active = self._active
                if active is None or self._fired == active[0]:
                    continue
                seq, thread, started = active
                if time.monotonic() - started >= self.timeout:
                    self._fired = seq
                    _set_async_exc(thread, ctypes.py_object(CallTimedOut))

    def begin(self) -> int:
        if self._thread is None:
            self._start_thread()
        # One assignment, atomic under the GIL: the watchdog sees the call whole or not yet.
        seq = self._seq = self._seq + 1
        self._active = (seq, threading.get_ident(), time.monotonic())
        return seq

    def end(self, seq: int) -> bool:
        """Close call ``seq``; True if it timed out. A timeout fired too late to land inside
        the call is withdrawn, so it cannot strike the suite's own code."""
        with self._lock:
            self._active = None
            if self._fired != seq:
                return False
        _set_async_exc(threading.get_ident(), ctypes.py_object())  # withdraw if pending
        return True

    def call(self, name: str, method: Any, *args: Any) -> Any:
        """``method(*args)`` under the timeout; a hang becomes an :class:`AdapterFault`."""
        seq = self.begin()
        timed_out = False
        try:
            try:
                return method(*args)
            finally:
                timed_out = self.end(seq)
        except CallTimedOut:
            timed_out = True
        finally:
            if timed_out:
                self.fired += 1
                raise AdapterFault(name, "timeout",
                                   f"did not return within {self.timeout:g} s "
                                   "(--call-timeout)", {"fault": "timeout"}) from None
        raise AssertionError("unreachable")  # pragma: no cover


_shared: dict[float, Watchdog] = {}


def _after_fork() -> None:
    # A forked process has none of its parent's threads: each watchdog starts its own anew.
    for dog in _shared.values():
        dog._thread = None
        dog._active = None
        dog._lock = threading.Lock()  # the parent's watchdog may have held it


os.register_at_fork(after_in_child=_after_fork)


def watchdog(timeout: float) -> Watchdog:
    """One watchdog (and thread) per timeout value, shared by every run in the process."""
    dog = _shared.get(timeout)
    if dog is None:
        dog = _shared[timeout] = Watchdog(timeout)
    return dog


class Timed:
    """An in-process adapter whose every hook runs under a :class:`Watchdog`."""

    __slots__ = ("_adapter", "_dog", "info")

    def __init__(self, adapter: Any, dog: Watchdog) -> None:
        self._adapter = adapter
        self._dog = dog
        self.info = getattr(adapter, "info", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def start(self, services: Any) -> None:
        self._dog.call("start", self._adapter.start, services)

    def pre_create(self, create: Any) -> Any:
        return self._dog.call("pre_create", self._adapter.pre_create, create)

    def post_create(self, create: Any) -> Any:
        return self._dog.call("post_create", self._adapter.post_create, create)

    def scan_completed(self, result: Any) -> None:
        self._dog.call("scan_completed", self._adapter.scan_completed, result)

    def file_changed(self, change: Any) -> None:
        self._dog.call("file_changed", self._adapter.file_changed, change)

    def signature_updated(self, version: int) -> Any:
        return self._dog.call("signature_updated", self._adapter.signature_updated, version)

    def proactive_scan_completed(self, version: int) -> None:
        self._dog.call("proactive_scan_completed", self._adapter.proactive_scan_completed,
                       version)

    def proactive_scan_aborted(self, version: int) -> None:
        self._dog.call("proactive_scan_aborted", self._adapter.proactive_scan_aborted,
                       version)

    def stop(self) -> None:
        self._dog.call("stop", self._adapter.stop)
