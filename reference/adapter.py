"""The reference adapter: the guidance's optimal safe policy (SPEC §2, §5).

One cache, keyed by the complete backing identity ``FileId + VolumeGuid`` (exactly bytes
4..36 of the ECP, also what a host file's own ids give), holds the signature version of
the file's last clean scan. An entry counts only for the current version. Install-time,
on-access and proactive scans all feed it; a write or delete of the file drops it.

Levels:
- ``conformant`` trusts registered and remote layers, as the guidance allows;
- ``signature-current`` trusts them only after a proactive scan completed under the
  current signature version; until then registered files go through the cache and remote
  files are scanned.
"""

from __future__ import annotations

import functools

from .contract import (
    ECP_SIZE,
    AdapterInfo,
    BaseAdapter,
    EcpRequest,
    FileChange,
    Flags,
    PostCreate,
    PreCreate,
    ScanOutcome,
    ScanResult,
    Services,
    Verdict,
)

_LAYER = int(Flags.SERVICED_FROM_LAYER)
_LAYER_REGISTERED = _LAYER | int(Flags.SERVICED_FROM_REGISTERED_LAYER)
_LAYER_REMOTE = _LAYER | int(Flags.SERVICED_FROM_REMOTE_LAYER)
_LAYER_REMOTE_REGISTERED = _LAYER_REMOTE | int(Flags.SERVICED_FROM_REGISTERED_LAYER)

SCAN = Verdict.SCAN
SKIP = Verdict.SKIP
_REQUEST = EcpRequest(ECP_SIZE)
_ZERO = bytes(16)

LEVELS = ("conformant", "signature-current")


class ReferenceAdapter(BaseAdapter):
    """Optimal safe decisions. ``level`` is ``conformant`` or ``signature-current``;
    ``request_proactive_scan`` makes ``signature_updated`` ask for a proactive scan."""

    info = AdapterInfo(name="WCIFS reference adapter", version="1.0")

    __slots__ = (
        "_cache",
        "_infected",
        "_pending",
        "_trust_always",
        "_trusted",
        "_version",
        "level",
        "request_proactive_scan",
    )

    def __init__(self, level: str = "signature-current",
                 request_proactive_scan: bool = True) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.request_proactive_scan = request_proactive_scan
        #: FileId + VolumeGuid -> signature version of the last clean scan.
        self._cache: dict[bytes, int] = {}
        #: Identities a scan found infected: never skipped, whatever the flags say.
        self._infected: set[bytes] = set()
        #: create_id -> backing identity of an on-access scan in flight (``b""`` once the
        #: file changed under it: the result then says nothing about the new content).
        self._pending: dict[int, bytes] = {}
        self._version = 0
        self._trust_always = level == "conformant"
        #: Registered/remote layers may be trusted right now.
        self._trusted = self._trust_always

    def start(self, services: Services) -> None:
        self._version = services.signature_version()

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return _REQUEST if create.silo is not None else None

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None:
            key = ecp.layer_key
            if key is not None:
                # A plain local-layer open (acknowledged, complete, flags exactly LAYER):
                # the cache alone decides. This is the hot path (SPEC §9): keep it short.
                if self._cache.get(key) == self._version:
                    return SKIP
                self._pending[create.create_id] = key
                return SCAN
            if not (ecp.acknowledged and ecp.complete):
                return SCAN  # never acknowledged, or truncated: it tells nothing
            flags = ecp.flags
            if flags == _LAYER_REGISTERED:
                key = ecp.ids
                # Trust needs ids: without them an infected file could not be recognised.
                # A finding may also stand under the id the container sees (a scan done
                # while the ids were withheld, or a non-container open of the volume).
                if self._trusted and key[:16] != _ZERO and key not in self._infected and (
                        create.file_id + create.volume_guid) not in self._infected:
                    return SKIP
                if self._cache.get(key) == self._version:
                    return SKIP
                self._pending[create.create_id] = key
                return SCAN
            if flags in (_LAYER_REMOTE, _LAYER_REMOTE_REGISTERED):
                return SKIP if self._trusted else SCAN
            return SCAN  # scratch, user mode, unknown bits, contradictions
        if create.silo is None:
            # An ordinary open: remember the result under the file's own identity, which is
            # the backing identity later ECPs will name if this is a layer file.
            self._pending[create.create_id] = create.file_id + create.volume_guid
        return SCAN

    def scan_completed(self, result: ScanResult) -> None:
        if result.create_id is None:
            key = result.file_id + result.volume_guid
        else:
            key = self._pending.pop(result.create_id, b"")
            if result.outcome is ScanOutcome.INFECTED:
                self._infected.add(result.file_id + result.volume_guid)
            if not key:
                return
        if key[:16] == _ZERO or key[16:] == _ZERO:
            return  # unset ids name nothing
        if result.outcome is ScanOutcome.CLEAN:
            cached = self._cache.get(key)
            if cached is None or cached < result.signature_version:
                self._cache[key] = result.signature_version
        elif result.outcome is ScanOutcome.INFECTED:
            self._infected.add(key)
            self._cache.pop(key, None)

    def file_changed(self, change: FileChange) -> None:
        key = change.file_id + change.volume_guid
        self._cache.pop(key, None)
        self._infected.discard(key)
        pending = self._pending
        if pending and key in pending.values():
            # Written while its scan is in flight: the result will cover the old content.
            for create_id, k in pending.items():
                if k == key:
                    pending[create_id] = b""

    def signature_updated(self, version: int) -> bool:
        self._version = version
        self._trusted = self._trust_always
        return self.request_proactive_scan

    def proactive_scan_completed(self, version: int) -> None:
        if version == self._version:
            self._trusted = True


@functools.cache
def reference_factory(level: str = "signature-current",
                      request_proactive_scan: bool = True) -> type[ReferenceAdapter]:
    """A zero-argument factory for the reference adapter in the given configuration."""

    class Configured(ReferenceAdapter):
        __slots__ = ()

        def __init__(self) -> None:
            super().__init__(level, request_proactive_scan)

    Configured.__name__ = Configured.__qualname__ = (
        f"ReferenceAdapter[{level}{'' if request_proactive_scan else ', no proactive'}]")
    return Configured
