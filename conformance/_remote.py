"""The suite's end of the adapter process protocol (SPEC §10, docs/PROTOCOL.md).

An adapter process is a child speaking JSON lines over its stdin and stdout. Every read is
under the per-call timeout; a hang, a crash, garbage or an early exit kills the child's
process group and becomes an :class:`AdapterFault` naming the call. Calls whose answer is
``null`` are held back and sent with the next call that needs an answer, as one batch, when
the adapter accepts batches: that halves the round trips of a typical create.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reference.contract import PROTOCOL_VERSION, AdapterInfo

from . import _wire as W
from ._errors import AdapterStartError, ProtocolError
from ._faults import AdapterFault

#: The first answer may wait for the adapter's own start-up (an interpreter, a JIT...).
HELLO_TIMEOUT = 30.0
#: Seconds a child gets to exit on its own after its stdin closes.
EXIT_GRACE = 1.0
#: The longest line an adapter may write; beyond it the stream is garbage.
MAX_LINE = 1 << 20
_STDERR_TAIL = 1500



class Child:
    """One adapter process and its pipes."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None,
                 cpu: int | None = None) -> None:
        self.argv = list(argv)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                bufsize=0, env=env, start_new_session=True)  # Ctrl-C reaches the suite only
        except OSError as e:
            self.stderr.close()
            raise AdapterStartError(f"cannot start the adapter process {self.argv[0]!r}: "
                                    f"{e.strerror or e}",
                                    hint="check the command after exec:") from None
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, {cpu})
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buf = b""
        self.alive = True
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def write(self, call: str, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._in, view):]
        except (BrokenPipeError, OSError):
            raise self._gone(call) from None

    def readline(self, call: str, timeout: float) -> bytes:
        buf = self._buf
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                self._buf = buf[end + 1:]
                return buf[:end]
            if len(buf) > MAX_LINE:
                raise self.fault(call, "garbage", f"wrote a line longer than {MAX_LINE} bytes")
            if not self._poll.poll(timeout * 1000):
                raise self.fault(call, "timeout", f"did not answer within {timeout:g} s "
                                 "(--call-timeout)")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                self._buf = buf
                raise self._gone(call)
            buf += chunk

    def fault(self, call: str, kind: str, what: str) -> AdapterFault:
        """Kill the child and describe what it did, with the tail of its stderr."""
        detail = {"fault": kind}
        tail = self.stderr_tail()
        if tail:
            detail["stderr"] = tail
        self.kill()
        return AdapterFault(call, kind, what, detail)

    def _gone(self, call: str) -> AdapterFault:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(EXIT_GRACE)
        code = self.proc.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return self.fault(call, "crash", f"crashed: the adapter process was killed by "
                                  f"{signal.Signals(-code).name}")
        status = "still running, with its stdout closed" if code is None else f"status {code}"
        return self.fault(call, "exited", f"ended the conversation: the adapter process "
                          f"exited before answering ({status})")

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - _STDERR_TAIL))
            text = self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return text if size <= _STDERR_TAIL else "..." + text

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            self._reap()

    def close(self) -> None:
        """Close stdin and give the child :data:`EXIT_GRACE` to exit; then kill it."""
        if self.alive:
            self.alive = False
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(EXIT_GRACE)
            self._reap()

    def _reap(self) -> None:
        """Kill the process group (the child and whatever it left in it) and collect it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(OSError):
            self.stderr.close()
        _LIVE.discard(self)


_LIVE: set[Child] = set()


@atexit.register
def _kill_all() -> None:
    for child in list(_LIVE):
        child.kill()



class Connection:
    """An adapter process that serves any number of adapters; restarted after a fault."""

    def __init__(self, argv: Sequence[str], call_timeout: float,
                 env: dict[str, str] | None = None, cpu: int | None = None) -> None:
        self.argv = list(argv)
        self.env = env
        self.cpu = cpu
        self.call_timeout = call_timeout
        self.child: Child | None = None
        self.info = AdapterInfo(name="unnamed adapter", version="0")
        self.batch = False
        self.timeouts = 0
        self._next = 0
        #: Requests with a null answer not sent yet: (call, adapter, line).
        self._queue: list[tuple[str, RemoteAdapter | None, bytes]] = []

    # --- life cycle -------------------------------------------------------------------
    def open(self) -> Child:
        child = self.child
        if child is not None and child.alive:
            return child
        self._queue.clear()
        child = self.child = Child(self.argv, self.env, self.cpu)
        try:
            self._hello(child)
        except BaseException:
            child.kill()
            raise
        return child

    def _hello(self, child: Child) -> None:
        child.write("hello", W.dumps({"call": "hello", "protocol": PROTOCOL_VERSION}).encode()
                    + b"\n")
        try:
            line = child.readline("hello", max(self.call_timeout,
                                               min(HELLO_TIMEOUT, 10 * self.call_timeout)))
        except AdapterFault as f:
            raise _start_error(f) from None
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            child.kill()
            raise ProtocolError(f"the adapter did not answer hello with a JSON object: "
                                f"{line[:80]!r}", hint="see docs/PROTOCOL.md")
        if "error" in answer:
            code = answer.get("exit_code")
            if code in (2, 3):  # the suite's own worker, loading a Python or lib: adapter
                raise AdapterStartError(str(answer["error"]), exit_code=code)
            raise AdapterStartError(f"the adapter could not be started: {answer['error']}")
        ret = answer.get("return")
        if not isinstance(ret, dict):
            raise ProtocolError(f"the adapter answered hello without a return object: "
                                f"{line[:80]!r}", hint="see docs/PROTOCOL.md")
        spoken = ret.get("protocol")
        if spoken != PROTOCOL_VERSION:
            raise ProtocolError(f"the adapter speaks protocol version {spoken!r}; this suite "
                                f"speaks version {PROTOCOL_VERSION}",
                                hint="build the adapter against this suite's docs/PROTOCOL.md")
        info = ret.get("info")
        if not (isinstance(info, dict) and isinstance(info.get("name"), str)
                and isinstance(info.get("version"), str)):
            raise ProtocolError(f"the adapter's hello declares no info {{name, version}}: "
                                f"{line[:80]!r}", hint="see docs/PROTOCOL.md")
        self.info = AdapterInfo(info["name"], info["version"])
        self.batch = ret.get("batch") is True

    def close(self) -> None:
        self._queue.clear()
        if self.child is not None:
            self.child.close()
            self.child = None

    # --- adapters -----------------------------------------------------------------------
    def new(self) -> RemoteAdapter:
        """A fresh adapter in the process (started first if need be)."""
        child = self.open()
        self._next += 1
        n = self._next
        self.sync(None, "new", W.dumps({"call": "new", "adapter": n}).encode())
        return RemoteAdapter(self, child, n)

    def dropped(self, adapter: RemoteAdapter) -> None:
        if adapter.child is self.child and adapter.child.alive:
            self._queue.append(("drop", None, b'{"call":"drop","adapter":%d}' % adapter.n))

    # --- calls ----------------------------------------------------------------------------
    def void(self, adapter: RemoteAdapter, call: str, line: bytes) -> None:
        self._check(adapter, call)
        if self.batch:
            self._queue.append((call, adapter, line))
        else:
            self.sync(adapter, call, line)

    def flush(self) -> None:
        """Send what was held back, one call at a time (an adapter without batches). A drop
        queued meanwhile (an adapter collected during an exchange) goes too."""
        while self._queue:
            self._exchange([self._queue.pop(0)])

    def sync(self, adapter: RemoteAdapter | None, call: str, line: bytes) -> Any:
        if adapter is not None:
            self._check(adapter, call)
        if not self.batch:
            self.flush()
            return W.decode_answer(call, self._exchange([(call, adapter, line)]))
        queue, self._queue = self._queue, []
        queue.append((call, adapter, line))
        return W.decode_answer(call, self._exchange(queue))

    def _check(self, adapter: RemoteAdapter, call: str) -> None:
        if adapter.child is not self.child or not adapter.child.alive:
            raise AdapterFault(call, "exited", "was called on an adapter whose process had "
                               "already failed", {"fault": "exited"})

    def _exchange(self, requests: list[tuple[str, RemoteAdapter | None, bytes]]) -> Any:
        """Send ``requests`` (one line, or one batch) and read one answer each; return the
        last one's value. The first error among them is raised once all are read."""
        child = self.child
        assert child is not None
        last_call = requests[-1][0]
        if len(requests) == 1:
            child.write(last_call, requests[0][2] + b"\n")
        else:
            child.write(last_call, b'{"batch":[' + b",".join(r[2] for r in requests) + b"]}\n")
        error: AdapterFault | None = None
        value: Any = None
        for call, adapter, _ in requests:
            value, failed = self._answer(child, call, adapter)
            error = error or failed
        if error is not None:
            raise error
        return value

    def _answer(self, child: Child, call: str, adapter: RemoteAdapter | None
                ) -> tuple[Any, AdapterFault | None]:
        """Read ``call``'s answer, serving any service requests before it: its value, or the
        error the hook reported. A hang, garbage or an early exit raises at once."""
        while True:
            try:
                line = child.readline(call, self.call_timeout)
            except AdapterFault as f:
                if f.kind == "timeout":
                    self.timeouts += 1
                raise
            value = W.COMMON_ANSWERS.get(line, W.COMMON_ANSWERS)
            if value is not W.COMMON_ANSWERS:
                return value, None
            try:
                answer = json.loads(line)
            except ValueError:
                answer = None
            if type(answer) is not dict:
                raise child.fault(call, "garbage", f"answered with garbage: {line[:80]!r}")
            if "return" in answer:
                return answer["return"], None
            if "error" in answer:
                tb = answer.get("traceback")
                return None, AdapterFault(call, "raised", f"raised {answer['error']}",
                                          {"traceback": str(tb)} if tb else {})
            if "service" not in answer:
                raise child.fault(call, "garbage", f"answered with neither return, error nor "
                                  f"service: {line[:80]!r}")
            self._serve(child, call, adapter, answer)

    def _serve(self, child: Child, call: str, adapter: RemoteAdapter | None,
               request: dict[str, Any]) -> None:
        services = None if adapter is None else adapter.services
        name = request.get("service")
        value: Any = None
        if services is not None and name == "read_registry":
            value = services.read_registry(str(request.get("key")))
            if not (value is None or type(value) in (str, int)):
                value = str(value)
        elif services is not None and name == "signature_version":
            value = services.signature_version()
        elif name not in ("read_registry", "signature_version"):
            raise child.fault(call, "protocol", f"asked for an unknown service {name!r}")
        child.write(call, W.dumps({"value": value}).encode() + b"\n")


def _start_error(f: AdapterFault) -> AdapterStartError:
    tail = f.detail.get("stderr", "").strip().splitlines()
    said = f"; its stderr ends: {tail[-1][:200]}" if tail else ""
    return AdapterStartError(f"the adapter could not be started: hello {f.what}{said}")


class RemoteAdapter:
    """One adapter living in an adapter process; the hooks of SPEC §4 over the protocol."""

    __slots__ = ("__weakref__", "_conn", "child", "info", "n", "services")

    def __init__(self, conn: Connection, child: Child, n: int) -> None:
        self._conn = conn
        self.child = child
        self.n = n
        self.info = conn.info
        self.services: Any = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.dropped(self)

    def start(self, services: Any) -> None:
        self.services = services
        self._conn.void(self, "start", W.plain_line(self.n, "start"))

    def pre_create(self, create: Any) -> Any:
        return self._conn.sync(self, "pre_create", W.pre_create_line(self.n, create))

    def post_create(self, create: Any) -> Any:
        return self._conn.sync(self, "post_create", W.post_create_line(self.n, create))

    def scan_completed(self, result: Any) -> None:
        self._conn.void(self, "scan_completed", W.scan_completed_line(self.n, result))

    def file_changed(self, change: Any) -> None:
        self._conn.void(self, "file_changed", W.file_changed_line(self.n, change))

    def signature_updated(self, version: int) -> Any:
        return self._conn.sync(self, "signature_updated",
                               W.plain_line(self.n, "signature_updated", version))

    def proactive_scan_completed(self, version: int) -> None:
        self._conn.void(self, "proactive_scan_completed",
                        W.plain_line(self.n, "proactive_scan_completed", version))

    def proactive_scan_aborted(self, version: int) -> None:
        self._conn.void(self, "proactive_scan_aborted",
                        W.plain_line(self.n, "proactive_scan_aborted", version))

    def settle(self) -> None:
        """Send the calls held back now, one at a time: a recorded dialogue then credits
        each service request to the call it was made in."""
        self._conn.flush()

    def stop(self) -> None:
        # Answered at once: a run ends with every held-back call's answer read.
        self._conn.sync(self, "stop", W.plain_line(self.n, "stop"))


def colocate() -> tuple[int | None, set[int] | None]:
    """Pin this thread to the CPU it runs on; return that CPU (for the adapter processes)
    and the affinity to restore. A call is a strict ping-pong, so both sides on one CPU
    lose no parallelism, and a switch on one CPU costs a few microseconds where a wake-up
    across CPUs costs tens (most of a round trip, measured on 2-core CI machines)."""
    try:
        before = os.sched_getaffinity(0)
        stat = Path("/proc/thread-self/stat").read_text()
        cpu = int(stat.rsplit(")", 1)[1].split()[36])  # field 39, "processor"
        if cpu not in before:
            return None, None
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError, ValueError, IndexError):
        return None, None
    return cpu, before


def restore(before: set[int] | None) -> None:
    if before is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)
