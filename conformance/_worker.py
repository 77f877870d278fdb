"""The adapter process for Python and ``lib:`` adapters (SPEC §10): ``python -m
conformance._worker SPEC`` serves the adapter named by SPEC over the process protocol, so
that the suite's own process never loads it.

The suite passes its ``sys.path`` in ``WCIFS_WORKER_PATH`` so that SPEC resolves here
exactly as it would in the suite's process.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, BinaryIO

from . import _wire as W
from ._loading import adapter_info, instantiate

#: The answers most calls get, encoded once (the lines the suite decodes without parsing).
_ENCODED = {value: line + b"\n" for line, value in W.COMMON_ANSWERS.items()
            if type(value) is not dict}
_NULL = _ENCODED[None]


def _die_with_parent() -> None:
    """Linux: end this process when the suite dies, even if an adapter call never returns."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Services:
    """``Services`` for one adapter: each call is a service request to the suite."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def read_registry(self, key: str) -> object | None:
        return self._worker.service({"service": "read_registry", "key": str(key)})

    def signature_version(self) -> int:
        value: Any = self._worker.service({"service": "signature_version"})
        return int(value)


class Worker:
    def __init__(self, spec: str, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.spec = spec
        self.stdin = stdin
        self.stdout = stdout
        self.factory: Any = None
        self.adapters: dict[int, Any] = {}

    def write(self, obj: Any) -> None:
        self.send(self.encode(obj))

    def send(self, line: bytes) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def service(self, request: dict[str, Any]) -> object | None:
        self.write(request)
        answer = json.loads(self.stdin.readline())
        return answer.get("value") if isinstance(answer, dict) else None

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        from reference.contract import PROTOCOL_VERSION

        from ._errors import ConformanceError
        from ._loading import load_adapter

        if request.get("protocol") != PROTOCOL_VERSION:
            return {"return": {"protocol": PROTOCOL_VERSION, "batch": True,
                               "info": {"name": "wcifs worker", "version": "0"}}}
        try:
            self.factory = load_adapter(self.spec)
            adapter = instantiate(self.factory)
        except ConformanceError as e:
            return {"error": str(e), "exit_code": e.exit_code}
        except Exception as e:
            return {"error": f"the adapter could not be created: {type(e).__name__}: {e} (the "
                             "factory must build an adapter with no arguments)",
                    "exit_code": 3}
        info = adapter_info(adapter)
        return {"return": {"protocol": PROTOCOL_VERSION, "batch": True,
                           "info": {"name": info.name, "version": info.version}}}

    def handle(self, request: dict[str, Any]) -> bytes:
        call = request.get("call")
        try:
            if call == "new":
                self.adapters[int(request["adapter"])] = instantiate(self.factory)
                return _NULL
            if call == "drop":
                self.adapters.pop(int(request["adapter"]), None)
                return _NULL
            adapter = self.adapters[int(request["adapter"])]
            if call == "start":
                adapter.start(_Services(self))
                return _NULL
            if call == "stop":
                adapter.stop()
                return _NULL
            key = W.ARGUMENT.get(str(call))
            if key is None:
                return self.encode({"error": f"unknown call {call!r}"})
            value = getattr(adapter, str(call))(W.decode_argument(str(call), request[key]))
            answer = W.encode_answer(str(call), value)
        except Exception as e:
            return self.encode({"error": f"{type(e).__name__}: {e}",
                                "traceback": traceback.format_exc(limit=-6)})
        if answer is None or type(answer) is str or type(answer) is bool:
            return _ENCODED[answer]
        return self.encode({"return": answer})

    @staticmethod
    def encode(obj: Any) -> bytes:
        return W.dumps(obj).encode() + b"\n"

    def serve(self) -> int:
        for raw in self.stdin:
            request = json.loads(raw)
            if "batch" in request:
                for r in request["batch"]:
                    self.send(self.handle(r))
            elif request.get("call") == "hello":
                self.write(self.hello(request))
            else:
                self.send(self.handle(request))
        return 0


def _hot_path(seconds: str, call_timeout: str, spec: str) -> int:
    """Print the hot-path figures of SPEC's adapter (timed here, away from the suite)."""
    from ._bench import hot_path
    from ._errors import ConformanceError
    from ._loading import load_adapter

    try:
        figures = hot_path(load_adapter(spec), seconds=float(seconds),
                           call_timeout=float(call_timeout))
        if spec.startswith("lib:"):
            from ._native_bench import native_hot_path

            figures["native"] = native_hot_path(spec[4:].strip(), seconds=float(seconds))
    except ConformanceError as e:
        print(str(e), file=sys.stderr)
        return 3
    except Exception as e:
        print(f"the hot-path benchmark stopped on {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    sys.__stdout__.write(json.dumps(figures) + "\n")  # type: ignore[union-attr]
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not (len(args) == 1 or (len(args) == 4 and args[0] == "--hot-path")):
        print("usage: python -m conformance._worker [--hot-path SECONDS TIMEOUT] SPEC",
              file=sys.stderr)
        return 2
    _die_with_parent()
    path = os.environ.get("WCIFS_WORKER_PATH")
    if path:
        sys.path[:] = json.loads(path)
    if args[0] == "--hot-path":
        return _hot_path(*args[1:])
    # The protocol owns stdout: an adapter's print() goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Worker(args[0], sys.stdin.buffer, out).serve()


if __name__ == "__main__":
    sys.exit(main())
