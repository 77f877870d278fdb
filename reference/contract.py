"""The vendor-facing contract (SPEC §4): every type an adapter sees or returns.

These live in ``reference`` because the model and the reference adapter speak them too;
vendors import them from ``conformance``, which re-exports this module unchanged.
Everything handed to an adapter is frozen and holds only bytes, ints and strings: nothing
reaches back into the model.
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

__all__ = [
    "ECP_SIZE",
    "GUID_ECP_CREATE_REDIRECTION",
    "LAYER_ROOT_LOCATIONS_KEY",
    "PROTOCOL_VERSION",
    "VALID_FLAG_COMBINATIONS",
    "ZERO_ID",
    "AdapterInfo",
    "BaseAdapter",
    "ChangeKind",
    "EcpRequest",
    "FileChange",
    "Flags",
    "PostCreate",
    "PreCreate",
    "RedirectionEcp",
    "ScanOrigin",
    "ScanOutcome",
    "ScanResult",
    "Services",
    "Verdict",
]

#: Version of the adapter protocol (in-process API, JSON lines, C ABI).
PROTOCOL_VERSION = 1

#: ``sizeof(WCIFS_REDIRECTION_ECP_CONTEXT)``: the value an AV filter puts in ``Size``.
ECP_SIZE = 36

#: ``GUID_ECP_CREATE_REDIRECTION``.
GUID_ECP_CREATE_REDIRECTION = uuid.UUID("188d6bd6-a126-4fa8-bdf2-1ccdf896f3e0")

#: The registry key products must never read (SAFE-12).
LAYER_ROOT_LOCATIONS_KEY = (
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\LayerRootLocations"
)

#: A FILE_ID_128 or GUID that wcifs left unset.
ZERO_ID = bytes(16)

_LAYOUT = struct.Struct("<HH16s16s")


class Flags(enum.IntFlag):
    """``WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_*`` (and ``CREATE_REDIRECTION_*``)."""

    SERVICED_FROM_LAYER = 0x1
    SERVICED_FROM_SCRATCH = 0x2
    SERVICED_FROM_REGISTERED_LAYER = 0x4
    SERVICED_FROM_REMOTE_LAYER = 0x8
    SERVICED_FROM_USER_MODE = 0x10


_LAYER_ONLY = int(Flags.SERVICED_FROM_LAYER)


#: The only flag values that carry a provenance (SAFE-5); anything else means "unknown".
VALID_FLAG_COMBINATIONS = frozenset(
    {
        Flags.SERVICED_FROM_LAYER,
        Flags.SERVICED_FROM_LAYER | Flags.SERVICED_FROM_REGISTERED_LAYER,
        Flags.SERVICED_FROM_LAYER | Flags.SERVICED_FROM_REMOTE_LAYER,
        Flags.SERVICED_FROM_LAYER
        | Flags.SERVICED_FROM_REMOTE_LAYER
        | Flags.SERVICED_FROM_REGISTERED_LAYER,
        Flags.SERVICED_FROM_SCRATCH,
    }
)


class Verdict(enum.Enum):
    SCAN = "SCAN"
    SKIP = "SKIP"


class ScanOutcome(enum.Enum):
    CLEAN = "CLEAN"
    INFECTED = "INFECTED"
    ERROR = "ERROR"


class ScanOrigin(enum.Enum):
    ON_ACCESS = "ON_ACCESS"
    PROACTIVE = "PROACTIVE"


class ChangeKind(enum.Enum):
    WRITE = "WRITE"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class PreCreate:
    create_id: int
    volume_guid: bytes
    path: str
    #: The container context ``IoGetSiloParameters`` reports; ``None`` outside one.
    silo: int | None


@dataclass(frozen=True, slots=True)
class EcpRequest:
    #: The ``Size`` field the filter writes into the ECP it attaches.
    size: int = ECP_SIZE


@dataclass(frozen=True, slots=True, eq=False)
class RedirectionEcp:
    """A ``WCIFS_REDIRECTION_ECP_CONTEXT`` as the filter finds it in post-create.

    ``raw`` is the buffer; the other fields are parsed from it once, at construction, so
    reading them is an attribute load. A buffer shorter than 36 bytes parses without
    raising: missing bytes read as zero and ``complete`` is False.
    """

    raw: bytes
    acknowledged: bool
    size: int = field(init=False)
    flags: Flags = field(init=False)
    file_id: bytes = field(init=False)
    volume_guid: bytes = field(init=False)
    #: ``FileId + VolumeGuid`` (bytes 4..36 of the layout): the backing identity as one key.
    ids: bytes = field(init=False)
    #: True when ``raw`` holds the whole 36-byte layout.
    complete: bool = field(init=False)
    #: ``ids`` when wcifs acknowledged a complete ECP whose flags are exactly
    #: ``SERVICED_FROM_LAYER`` (a plain local-layer open, SAFE-4 and SAFE-5), else None.
    #: It is the one case a (VolumeGuid, FileId) cache decides on its own; pre-parsed so
    #: that a cache hit costs one attribute load and one lookup.
    layer_key: bytes | None = field(init=False)

    def __post_init__(self) -> None:
        raw = self.raw
        complete = len(raw) >= ECP_SIZE
        buf = raw[:ECP_SIZE] if complete else raw.ljust(ECP_SIZE, b"\0")
        size, flags, file_id, volume_guid = _LAYOUT.unpack(buf)
        setattr_ = object.__setattr__
        setattr_(self, "size", size)
        setattr_(self, "flags", Flags(flags))
        setattr_(self, "file_id", file_id)
        setattr_(self, "volume_guid", volume_guid)
        ids = buf[4:ECP_SIZE]
        setattr_(self, "ids", ids)
        setattr_(self, "complete", complete)
        setattr_(self, "layer_key",
                 ids if flags == _LAYER_ONLY and complete and self.acknowledged else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RedirectionEcp):
            return NotImplemented
        return self.raw == other.raw and self.acknowledged == other.acknowledged

    def __hash__(self) -> int:
        return hash((self.raw, self.acknowledged))

    def __repr__(self) -> str:
        return (
            f"RedirectionEcp(acknowledged={self.acknowledged}, size={self.size}, "
            f"flags={int(self.flags):#x}, file_id={self.file_id.hex()}, "
            f"volume_guid={self.volume_guid.hex()}, raw_len={len(self.raw)})"
        )

    @classmethod
    def parse(cls, raw: bytes, acknowledged: bool = True) -> RedirectionEcp:
        return cls(bytes(raw), acknowledged)

    @staticmethod
    def pack(
        size: int = ECP_SIZE,
        flags: int = 0,
        file_id: bytes = ZERO_ID,
        volume_guid: bytes = ZERO_ID,
    ) -> bytes:
        """The 36-byte little-endian layout; ids must be exactly 16 bytes."""
        if len(file_id) != 16 or len(volume_guid) != 16:
            raise ValueError("file_id and volume_guid must be 16 bytes each")
        return _LAYOUT.pack(size & 0xFFFF, int(flags) & 0xFFFF, file_id, volume_guid)


@dataclass(frozen=True, slots=True)
class PostCreate:
    create_id: int
    volume_guid: bytes
    path: str
    silo: int | None
    #: The opened file's own id on ``volume_guid`` (container-side for a placeholder).
    file_id: bytes
    ecp: RedirectionEcp | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A finished scan. ``create_id`` names the on-access create it answers, or is None
    for a proactive scan. The ids are those of the file as the scan opened it: for an
    on-access scan of a placeholder, the container volume and the container-side id (the
    backing ids are in that create's ECP); for a proactive scan, the layer file's own."""

    create_id: int | None
    volume_guid: bytes
    file_id: bytes
    #: The signature version the scan *started* under.
    signature_version: int
    outcome: ScanOutcome
    origin: ScanOrigin


@dataclass(frozen=True, slots=True)
class FileChange:
    volume_guid: bytes
    file_id: bytes
    path: str
    kind: ChangeKind
    silo: int | None


class Services(Protocol):
    """What the host offers an adapter in ``start``."""

    def read_registry(self, key: str) -> object | None:
        """Read a registry value. Every read is recorded; LayerRootLocations is forbidden."""
        ...

    def signature_version(self) -> int:
        """The product's current signature version."""
        ...


class BaseAdapter:
    """The decision logic of an AV filter, as the suite drives it.

    A fresh instance is made for every generated example. ``pre_create`` and
    ``post_create`` MUST be implemented; every other hook has a no-op default.
    No method may raise, and each MUST return exactly the type shown (SAFE-13).
    """

    __slots__ = ()

    #: Who made this adapter; recorded in the certificate.
    info: ClassVar[AdapterInfo] = AdapterInfo(name="unnamed adapter", version="0")

    def start(self, services: Services) -> None:
        """Called once before any other hook."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        """Decide whether to attach a redirection ECP. MUST attach one in a container context."""
        raise NotImplementedError

    def post_create(self, create: PostCreate) -> Verdict:
        """Decide SCAN or SKIP for a completed create."""
        raise NotImplementedError

    def scan_completed(self, result: ScanResult) -> None:
        """A scan (on-access or proactive) finished."""

    def file_changed(self, change: FileChange) -> None:
        """A file was written to or deleted, on any volume."""

    def signature_updated(self, version: int) -> bool:
        """New signatures are in force. Return True to run a proactive scan now."""
        return False

    def proactive_scan_completed(self, version: int) -> None:
        """A proactive scan that started under ``version`` scanned every layer file."""

    def proactive_scan_aborted(self, version: int) -> None:
        """A proactive scan that started under ``version`` stopped part-way."""

    def stop(self) -> None:
        """Called after the last event of a history that ran to its end. An adapter made
        for a diagnosis replay, or one whose history stopped at a violation, gets no
        ``stop``: nothing may depend on it."""
