"""The native hot path of a ``lib:`` adapter (SPEC §9, §10).

Timing a C function through ctypes measures ctypes (some hundreds of ns a call), not the
adapter (some ns). Where a compiler is present, :func:`native_hot_path` compiles the
harness shipped with the suite (``include/wcifs_native_bench.c``) and lets it time the
cache-hit ``post_create`` natively, beside a native hash-table lookup of the same 32-byte
key in the same run.

The harness replays the events :func:`conformance._bench.cache_hit_case` records while the
model primes the adapter (install a one-file local layer, start a container, open the file
twice), so that its last ``post_create`` is the local-layer cache hit the Python figures
measure. Recording loads the library in
the calling process: call it where the adapter may run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reference.contract import (
    ChangeKind,
    EcpRequest,
    FileChange,
    PostCreate,
    PreCreate,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Verdict,
)

from ._bench import Event, cache_hit_case
from ._errors import ProtocolError

__all__ = ["HARNESS", "Event", "encode_events", "native_hot_path", "priming_events"]

#: The harness's C source, compiled at bench time.
HARNESS = Path(__file__).resolve().parent / "include" / "wcifs_native_bench.c"

_OUTCOMES = {ScanOutcome.CLEAN: 0, ScanOutcome.INFECTED: 1, ScanOutcome.ERROR: 2}
_ORIGINS = {ScanOrigin.ON_ACCESS: 0, ScanOrigin.PROACTIVE: 1}
_KINDS = {ChangeKind.WRITE: 0, ChangeKind.DELETE: 1}


def priming_events(factory: Callable[[], Any]) -> list[Event]:
    """The events a fresh adapter from ``factory`` sees while the hot-path benchmark primes
    it (:func:`~conformance._bench.cache_hit_case`); the last ``post_create`` among them is
    the second open. The harness can replay only well-typed answers."""
    events = list(cache_hit_case(factory).events)
    for hook, _, answer in events:
        if hook == "post_create" and type(answer) is not Verdict:
            raise ProtocolError(f"post_create returned {answer!r}, not a Verdict")
        if hook == "pre_create" and answer is not None and type(answer) is not EcpRequest:
            raise ProtocolError(f"pre_create returned {answer!r}, not an EcpRequest or None")
    return events


def _x(data: bytes) -> str:
    return "x" + data.hex()


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def _path(path: str) -> str:
    return _x(path.encode("utf-8", "surrogatepass"))


def encode_events(events: Sequence[Event]) -> str:
    """The harness's input (its format is documented at the top of its source)."""
    lines = []
    for hook, arg, answer in events:
        if hook == "start":
            lines.append(f"start {arg}")
        elif hook == "pre_create":
            assert isinstance(arg, PreCreate)
            size = answer.size if isinstance(answer, EcpRequest) else -1
            lines.append(f"pre {arg.create_id} {_opt(arg.silo)} {_x(arg.volume_guid)} "
                         f"{_path(arg.path)} {size}")
        elif hook == "post_create":
            assert isinstance(arg, PostCreate)
            ecp = arg.ecp
            raw = "-" if ecp is None else _x(ecp.raw)
            ack = int(ecp is not None and ecp.acknowledged)
            lines.append(f"post {arg.create_id} {_opt(arg.silo)} {_x(arg.volume_guid)} "
                         f"{_x(arg.file_id)} {_path(arg.path)} {raw} {ack} "
                         f"{int(answer is Verdict.SKIP)}")
        elif hook == "scan_completed":
            assert isinstance(arg, ScanResult)
            lines.append(f"scan {_opt(arg.create_id)} {_x(arg.volume_guid)} "
                         f"{_x(arg.file_id)} {arg.signature_version} "
                         f"{_OUTCOMES[arg.outcome]} {_ORIGINS[arg.origin]}")
        elif hook == "file_changed":
            assert isinstance(arg, FileChange)
            lines.append(f"change {_x(arg.volume_guid)} {_x(arg.file_id)} {_path(arg.path)} "
                         f"{_KINDS[arg.kind]} {_opt(arg.silo)}")
        elif hook == "signature_updated":
            lines.append(f"update {arg} {int(answer is True)}")
        elif hook == "proactive_scan_completed":
            lines.append(f"completed {arg}")
        elif hook == "proactive_scan_aborted":
            lines.append(f"aborted {arg}")
        elif hook == "stop":
            lines.append("stop")
        else:
            raise ValueError(f"unknown hook {hook!r}")
    return "\n".join(lines) + "\n"


def _compiler() -> list[str] | None:
    cc = os.environ.get("CC")
    if cc:
        return shlex.split(cc)
    found = shutil.which("cc")
    return [found] if found else None


def build_library(source: Path, out: Path) -> str | None:
    """``cc -shared -fPIC -O2 -I conformance/include`` of ``source`` into ``out``; the path,
    or None without a compiler or when it does not compile."""
    compiler = _compiler()
    if compiler is None:
        return None
    cmd = [*compiler, "-shared", "-fPIC", "-O2", "-I", str(HARNESS.parent), "-o", str(out),
           str(source)]
    try:
        made = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return str(out) if made.returncode == 0 else None


def _not_measured(why: str) -> dict[str, Any]:
    return {"measured": False, "note": f"not measured: {why}"}


def _last_line(text: bytes) -> str:
    lines = text.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def native_hot_path(lib_path: str, events: Sequence[Event] | None = None, *,
                    seconds: float = 0.3) -> dict[str, Any]:
    """ns per call of the library's cache-hit ``post_create``, timed natively, beside a
    native lookup of the same 32-byte key (the floor), and their ratio.

    ``events`` defaults to :func:`priming_events` of the library (loaded here). Without a
    compiler, or when the harness cannot run, the dict says ``"measured": False`` and
    why in ``note``; it never raises for those."""
    compiler = _compiler()
    if compiler is None:
        return _not_measured("no compiler")
    if os.name != "posix":
        return _not_measured("the harness needs POSIX dlopen")
    if events is None:
        from ._native import native_factory

        events = priming_events(native_factory(lib_path))
    script = encode_events(events).encode()
    with tempfile.TemporaryDirectory(prefix="wcifs-native-bench-") as tmp:
        exe = Path(tmp) / "wcifs_native_bench"
        build = [*compiler, "-O2", "-I", str(HARNESS.parent), "-o", str(exe), str(HARNESS),
                 "-ldl"]
        try:
            made = subprocess.run(build, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return _not_measured(f"the compiler did not run: {e}")
        if made.returncode != 0:
            return _not_measured(f"the harness did not compile: {_last_line(made.stderr)}")
        limit = 60 + 10 * seconds
        proc = subprocess.Popen([str(exe), os.path.abspath(lib_path), repr(float(seconds))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(script, timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return _not_measured(f"the harness did not finish within {limit:g} s")
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    if proc.returncode != 0:
        why = (_last_line(err) if proc.returncode > 0
               else f"the harness died of signal {-proc.returncode}")
        return _not_measured(why)
    try:
        figures: dict[str, Any] = json.loads(out)
    except ValueError:
        return _not_measured(f"the harness printed no JSON: {_last_line(out)}")
    hit = figures["verdict"] == "SKIP"
    result: dict[str, Any] = {
        "measured": True,
        "unit": "ns",
        "method": "native loop over the library's post_create (compiled harness, "
                  "clock_gettime, best of 5), beside a native open-addressing lookup of "
                  "the same 32-byte key called through a function pointer",
        "cache_hit": hit,
        "verdict": figures["verdict"],
        "post_create_ns": figures["post_create_ns"],
        "floor_ns": figures["floor_ns"],
        "ratio": figures["ratio"],
        "compiler": " ".join(compiler),
    }
    if not hit:
        result["note"] = ("it answered SCAN to the second open of a local-layer file that "
                          "was scanned clean as the layer was laid out: no cache hit")
    return result
