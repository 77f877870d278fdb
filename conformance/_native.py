"""Adapters in a C shared library (``lib:PATH``, SPEC §10), loaded with :mod:`ctypes`.

The library speaks the C ABI of ``conformance/include/wcifs_adapter.h``; :func:`native_factory`
turns it into a factory of objects that keep the Python contract of SPEC §4, so the checks,
the adapter process and the benchmarks treat it like any other adapter.

Why ctypes rather than cffi: it is in the standard library (nothing more to install where
the suite runs), it needs no build step and no compiler at run time, and calling exported
symbols through declared prototypes (cffi's "ABI mode") is all a plain C ABI needs.

The cost per call is the foreign call itself plus one ``struct.pack_into``: each instance
owns a buffer laid out as [event struct][36-byte ECP][path], and every event is written
into it by one precompiled :class:`struct.Struct` in native alignment (``@``, the C
compiler's rules), so the pointers inside the struct are constants of the instance. The
ECP is copied zero-padded to 36 bytes by the ``36s`` field, for free.
"""

from __future__ import annotations

import ctypes
import os
import struct
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.contract import (
    ECP_SIZE,
    AdapterInfo,
    ChangeKind,
    EcpRequest,
    FileChange,
    PostCreate,
    PreCreate,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Services,
    Verdict,
)

from ._errors import AdapterLoadError

__all__ = ["ABI_VERSION", "HEADER", "LAYOUTS", "REQUIRED", "NativeAdapter", "NativeFactory",
           "field_offsets", "native_factory"]

#: ``WCIFS_ADAPTER_ABI_VERSION`` of the header this suite ships.
ABI_VERSION = 1

#: The C ABI, for vendors (shipped with the suite).
HEADER = Path(__file__).resolve().parent / "include" / "wcifs_adapter.h"

_PREFIX = "wcifs_adapter_"
#: The exports every library defines (``wcifs_adapter_`` + name); the rest are optional.
REQUIRED = ("abi_version", "new", "free", "pre_create", "post_create")

#: The event structs of the header, field by field, as :mod:`struct` codes. ``@`` lays
#: them out as the C compiler does (a test compiles the header and compares offsets).
LAYOUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "wcifs_pre_create": (("create_id", "q"), ("silo", "q"), ("path", "P"),
                         ("volume_guid", "16s"), ("has_silo", "i"), ("reserved", "i")),
    "wcifs_post_create": (("create_id", "q"), ("silo", "q"), ("path", "P"), ("ecp", "P"),
                          ("file_id", "16s"), ("volume_guid", "16s"), ("has_silo", "i"),
                          ("ecp_acknowledged", "i"), ("ecp_length", "I"), ("reserved", "i")),
    "wcifs_scan_result": (("create_id", "q"), ("signature_version", "q"), ("file_id", "16s"),
                          ("volume_guid", "16s"), ("has_create_id", "i"), ("outcome", "i"),
                          ("origin", "i"), ("reserved", "i")),
    "wcifs_file_change": (("silo", "q"), ("path", "P"), ("file_id", "16s"),
                          ("volume_guid", "16s"), ("has_silo", "i"), ("kind", "i")),
}


def _format(name: str) -> str:
    return "@" + "".join(code for _, code in LAYOUTS[name])


def field_offsets(name: str) -> dict[str, int]:
    """Offset of each field of ``name`` under native alignment."""
    out: dict[str, int] = {}
    codes = "@"
    for field, code in LAYOUTS[name]:
        codes += code
        out[field] = struct.calcsize(codes) - struct.calcsize("@" + code)
    return out


_SIZES = {name: struct.calcsize(_format(name)) for name in LAYOUTS}
#: Where the ECP copy and the path go in an instance's buffer (after the largest event).
_ECP_AT = -(-max(_SIZES.values()) // 8) * 8
_PATH_AT = _ECP_AT + 40  # the ECP's 36 bytes, rounded up to 8
#: Paths up to this many UTF-8 bytes are copied inline; longer ones get their own buffer.
_PATH_ROOM = 1024
_BUFFER = _PATH_AT + _PATH_ROOM


def _with_path(name: str) -> struct.Struct:
    return struct.Struct(f"{_format(name)}{_PATH_AT - _SIZES[name]}x{_PATH_ROOM}s")


_PACK_PRE = _with_path("wcifs_pre_create").pack_into
_PACK_CHANGE = _with_path("wcifs_file_change").pack_into
_PACK_SCAN = struct.Struct(_format("wcifs_scan_result")).pack_into
# The post_create struct, then the ECP zero-padded to 36 bytes, then the path.
_PACK_POST = struct.Struct(
    f"{_format('wcifs_post_create')}{_ECP_AT - _SIZES['wcifs_post_create']}x"
    f"{ECP_SIZE}s{_PATH_AT - _ECP_AT - ECP_SIZE}x{_PATH_ROOM}s").pack_into

_SCAN, _SKIP = Verdict.SCAN, Verdict.SKIP
_REQUEST = EcpRequest(ECP_SIZE)
_OUTCOMES = {ScanOutcome.CLEAN: 0, ScanOutcome.INFECTED: 1, ScanOutcome.ERROR: 2}
_ORIGINS = {ScanOrigin.ON_ACCESS: 0, ScanOrigin.PROACTIVE: 1}
_KINDS = {ChangeKind.WRITE: 0, ChangeKind.DELETE: 1}

_p = ctypes.c_void_p
_PROTOTYPES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "abi_version": (ctypes.c_int, ()),
    "name": (ctypes.c_char_p, ()),
    "version": (ctypes.c_char_p, ()),
    "new": (_p, ()),
    "free": (None, (_p,)),
    "start": (ctypes.c_int, (_p, _p)),
    "stop": (ctypes.c_int, (_p,)),
    "pre_create": (ctypes.c_int, (_p, _p, _p)),
    "post_create": (ctypes.c_int, (_p, _p)),
    "scan_completed": (ctypes.c_int, (_p, _p)),
    "file_changed": (ctypes.c_int, (_p, _p)),
    "signature_updated": (ctypes.c_int, (_p, ctypes.c_int64)),
    "proactive_scan_completed": (ctypes.c_int, (_p, ctypes.c_int64)),
    "proactive_scan_aborted": (ctypes.c_int, (_p, ctypes.c_int64)),
    "last_error": (ctypes.c_char_p, (_p,)),
}

_READ_REGISTRY = ctypes.CFUNCTYPE(ctypes.c_int64, _p, ctypes.c_char_p, _p, ctypes.c_size_t)
_SIGNATURE_VERSION = ctypes.CFUNCTYPE(ctypes.c_int64, _p)


class _ServicesStruct(ctypes.Structure):
    _fields_ = [("context", _p), ("read_registry", _READ_REGISTRY),
                ("signature_version", _SIGNATURE_VERSION)]


class _Library:
    """One loaded library: its exports with their prototypes (None: not exported)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            # An absolute path: dlopen searches the library path for a bare file name.
            self.dll = ctypes.CDLL(os.path.abspath(path))
        except OSError as e:
            why = " ".join(str(e).split()).removeprefix(f"{os.path.abspath(path)}: ")
            raise AdapterLoadError(
                f"cannot load adapter library {path!r}: {why}",
                hint="build it as a shared library for this platform", exit_code=3) from None
        self.fn: dict[str, Any] = {}
        for name, (restype, argtypes) in _PROTOTYPES.items():
            f: Any
            try:
                f = self.dll[_PREFIX + name]
            except AttributeError:
                f = None
            else:
                f.restype, f.argtypes = restype, argtypes
            self.fn[name] = f
        # The version first: a library of another ABI may well lack one of ours.
        for name in REQUIRED:
            if self.fn[name] is None:
                raise AdapterLoadError(
                    f"adapter library {path!r} does not export {_PREFIX}{name}",
                    hint=f"see {HEADER.name} for the functions every lib: adapter defines",
                    exit_code=3)
            if name == "abi_version" and (abi := self.fn[name]()) != ABI_VERSION:
                raise AdapterLoadError(
                    f"adapter library {path!r} speaks C ABI version {abi}; this suite "
                    f"speaks version {ABI_VERSION}",
                    hint=f"rebuild it against this suite's {HEADER.name}", exit_code=3)
        self.info = AdapterInfo(name=self._text("name") or Path(path).name,
                                version=self._text("version") or "unknown")

    def _text(self, name: str) -> str | None:
        f = self.fn[name]
        value = f() if f is not None else None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


class NativeAdapter:
    """One instance of a library's adapter, with the hooks of SPEC §4.

    Answers the suite rejects come back as they are (``post_create`` answering 7 returns
    7, not a Verdict); a hook that reports failure raises :class:`RuntimeError` with the
    library's own message. The native instance is freed when this object is collected.
    """

    __slots__ = ("__weakref__", "_addr", "_buffer", "_ecp_at", "_failures", "_handle",
                 "_lib", "_long_path", "_path_at", "_post", "_pre", "_services", "_size", "info")

    def __init__(self, lib: _Library) -> None:
        fn = lib.fn
        handle = fn["new"]()
        if not handle:
            raise RuntimeError(f"{_PREFIX}new returned NULL")
        self._lib = lib
        self._handle: int = handle
        weakref.finalize(self, fn["free"], handle)
        self.info = lib.info
        self._buffer = ctypes.create_string_buffer(_BUFFER)
        self._addr = base = ctypes.addressof(self._buffer)
        self._ecp_at = base + _ECP_AT
        self._path_at = base + _PATH_AT
        # pre_create's *ecp_size lives where post_create's ECP goes: one buffer for all.
        self._size = ctypes.c_uint16.from_buffer(self._buffer, _ECP_AT)
        self._pre = fn["pre_create"]
        self._post = fn["post_create"]
        #: Exceptions raised inside a services callback, raised again once the hook
        #: returns (ctypes would print and drop them).
        self._failures: list[BaseException] = []
        self._services: tuple[Any, ...] = ()
        self._long_path: Any = None

    # --- plumbing -----------------------------------------------------------------------
    def _failed(self, hook: str, status: int) -> RuntimeError:
        """The error for a hook that returned a negative status, with the library's
        reason when it gives one."""
        last_error = self._lib.fn["last_error"]
        reason = last_error(self._handle) if last_error is not None else None
        why = f": {reason.decode('utf-8', 'replace')}" if reason else ""
        return RuntimeError(f"{_PREFIX}{hook} failed with status {status}{why}")

    def _reraise(self) -> None:
        failure = self._failures[0]
        self._failures.clear()
        raise failure

    def _far(self, data: bytes) -> tuple[int, bytes]:
        """A path too long to copy inline: the address of its own buffer (kept until the
        next one), and nothing to copy."""
        self._long_path = ctypes.create_string_buffer(data)
        return ctypes.addressof(self._long_path), b""

    def _status(self, hook: str, *args: Any) -> None:
        f = self._lib.fn[hook]
        if f is None:
            return
        status = f(self._handle, *args)
        if self._failures:
            self._reraise()
        if status < 0:
            raise self._failed(hook, status)

    # --- the hooks ----------------------------------------------------------------------
    def start(self, services: Services) -> None:
        if self._lib.fn["start"] is None:
            return
        failures = self._failures

        def read_registry(_: int | None, key: bytes | None, buffer: int | None,
                          size: int) -> int:
            try:
                value = services.read_registry((key or b"").decode("utf-8", "replace"))
                if value is None:
                    return -1
                data = (bytes(value) if isinstance(value, (bytes, bytearray))
                        else str(value).encode("utf-8", "surrogatepass"))
                if buffer and size:
                    n = min(len(data), size - 1)
                    ctypes.memmove(buffer, data, n)
                    ctypes.memset(buffer + n, 0, 1)
                return len(data)
            except BaseException as e:  # raised again after the hook
                failures.append(e)
                return -2

        def signature_version(_: int | None) -> int:
            try:
                return int(services.signature_version())
            except BaseException as e:  # raised again after the hook
                failures.append(e)
                return 0

        callbacks = (_READ_REGISTRY(read_registry), _SIGNATURE_VERSION(signature_version))
        table = _ServicesStruct(None, *callbacks)
        # The library may keep the pointer until free: so does this object.
        self._services = (table, *callbacks)
        self._status("start", ctypes.addressof(table))

    def stop(self) -> None:
        self._status("stop")

    def pre_create(self, create: PreCreate) -> EcpRequest | int | None:
        data = create.path.encode("utf-8", "surrogatepass")  # a lone surrogate passes
        path = self._path_at
        if len(data) >= _PATH_ROOM:
            path, data = self._far(data)
        silo = create.silo
        # Packs *ecp_size = 0 too (the pad bytes cover it).
        _PACK_PRE(self._buffer, 0, create.create_id, silo or 0, path, create.volume_guid,
                  silo is not None, 0, data)
        answer: int = self._pre(self._handle, self._addr, self._ecp_at)
        if self._failures:
            self._reraise()
        if answer == 1:
            size = self._size.value
            return _REQUEST if size == ECP_SIZE else EcpRequest(size)
        if answer == 0:
            return None
        if answer < 0:
            raise self._failed("pre_create", answer)
        return answer  # an invalid answer: the suite names it (SAFE-13)

    def post_create(self, create: PostCreate) -> Verdict | int:
        data = create.path.encode("utf-8", "surrogatepass")  # a lone surrogate passes
        path = self._path_at
        if len(data) >= _PATH_ROOM:
            path, data = self._far(data)
        silo = create.silo
        ecp = create.ecp
        if ecp is None:
            _PACK_POST(self._buffer, 0, create.create_id, silo or 0, path, 0, create.file_id,
                       create.volume_guid, silo is not None, 0, 0, 0, b"", data)
        else:
            raw = ecp.raw
            n = len(raw)
            _PACK_POST(self._buffer, 0, create.create_id, silo or 0, path, self._ecp_at,
                       create.file_id, create.volume_guid, silo is not None,
                       ecp.acknowledged, n if n < ECP_SIZE else ECP_SIZE, 0, raw, data)
        answer: int = self._post(self._handle, self._addr)
        if self._failures:
            self._reraise()
        if answer == 1:
            return _SKIP
        if answer == 0:
            return _SCAN
        if answer < 0:
            raise self._failed("post_create", answer)
        return answer  # an invalid answer: the suite names it (SAFE-13)

    def scan_completed(self, result: ScanResult) -> None:
        create_id = result.create_id
        _PACK_SCAN(self._buffer, 0, create_id or 0, result.signature_version, result.file_id,
                   result.volume_guid, create_id is not None, _OUTCOMES[result.outcome],
                   _ORIGINS[result.origin], 0)
        self._status("scan_completed", self._addr)

    def file_changed(self, change: FileChange) -> None:
        data = change.path.encode("utf-8", "surrogatepass")  # a lone surrogate passes
        path = self._path_at
        if len(data) >= _PATH_ROOM:
            path, data = self._far(data)
        silo = change.silo
        _PACK_CHANGE(self._buffer, 0, silo or 0, path, change.file_id, change.volume_guid,
                     silo is not None, _KINDS[change.kind], data)
        self._status("file_changed", self._addr)

    def signature_updated(self, version: int) -> bool | int:
        f = self._lib.fn["signature_updated"]
        if f is None:
            return False
        answer: int = f(self._handle, version)
        if self._failures:
            self._reraise()
        if answer in (0, 1):
            return answer == 1
        if answer < 0:
            raise self._failed("signature_updated", answer)
        return answer  # an invalid answer: the suite names it (SAFE-13)

    def proactive_scan_completed(self, version: int) -> None:
        self._status("proactive_scan_completed", version)

    def proactive_scan_aborted(self, version: int) -> None:
        self._status("proactive_scan_aborted", version)


class NativeFactory:
    """A zero-argument factory of a library's adapters (SPEC §4): each call is a fresh
    native instance."""

    def __init__(self, lib: _Library) -> None:
        self._lib = lib
        self.path = lib.path
        self.info = lib.info
        # A run handed this factory names it by its SPEC, and (as in an adapter process)
        # takes no constants for Hypothesis from a Python source: the adapter has none.
        self.__module__ = "lib"
        self.__qualname__ = lib.path

    def __call__(self) -> NativeAdapter:
        return NativeAdapter(self._lib)

    def __repr__(self) -> str:
        return f"NativeFactory('lib:{self.path}')"


def native_factory(path: str) -> Callable[[], Any]:
    """Load the ``lib:`` adapter at ``path`` and return its factory.

    Raises :class:`AdapterLoadError`: exit 2 when there is no such file, exit 3 when the
    library cannot be loaded, lacks a required export or speaks another ABI version."""
    if not Path(path).is_file():
        raise AdapterLoadError(f"adapter library {path!r} does not exist",
                               hint="give a path relative to the current directory")
    return NativeFactory(_Library(path))
