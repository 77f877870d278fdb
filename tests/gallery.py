"""The mutant gallery: adapters that are wrong on purpose, one defect each, plus correct
adapters written differently from the reference.

``MUTANTS`` maps each invariant ID of SPEC §6 to an adapter the suite must catch with that
ID; ``CORRECT`` lists adapters it must never raise a safety alarm against.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from conformance import (
    ECP_SIZE,
    LAYER_ROOT_LOCATIONS_KEY,
    AdapterInfo,
    BaseAdapter,
    EcpRequest,
    FileChange,
    Flags,
    PostCreate,
    PreCreate,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Services,
    Verdict,
)
from reference.adapter import ReferenceAdapter

LAYER = Flags.SERVICED_FROM_LAYER
SCRATCH = Flags.SERVICED_FROM_SCRATCH
REGISTERED = Flags.SERVICED_FROM_REGISTERED_LAYER
REMOTE = Flags.SERVICED_FROM_REMOTE_LAYER
ZERO = bytes(16)


class _Mutant(ReferenceAdapter):
    """The signature-current reference with one defect added by a subclass."""

    __slots__ = ("_extra",)

    def __init__(self) -> None:
        super().__init__("signature-current", True)
        self._extra: dict[object, object] = {}


# --- SAFE ---------------------------------------------------------------------------------
class TrustsLayerFlag(_Mutant):
    """SAFE-1: skips every local-layer open on the flag alone (unless it once found that
    file infected), with no cache of clean scans at all."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.flags == LAYER and (
                ecp.ids not in self._infected):
            return Verdict.SKIP
        return super().post_create(create)


class SkipsScratch(_Mutant):
    """SAFE-2: treats container-local (scratch) files as nothing to scan."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.flags == SCRATCH:
            return Verdict.SKIP
        return super().post_create(create)


class StaleLayerMarker(_Mutant):
    """SAFE-3: keeps "served from layer, clean" as a permanent per-file marker."""

    def post_create(self, create: PostCreate) -> Verdict:
        marker = (create.volume_guid, create.file_id)
        verdict = super().post_create(create)
        ecp = create.ecp
        if ecp is None or not ecp.acknowledged:
            return verdict
        if ecp.flags & LAYER:
            if verdict is Verdict.SKIP:
                self._extra[marker] = True
        elif self._extra.get(marker):
            return Verdict.SKIP
        return verdict


class IgnoresAcknowledged(_Mutant):
    """SAFE-4: reads the flags of an ECP whether or not wcifs acknowledged it."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and not ecp.acknowledged and ecp.flags == LAYER:
            if self._cache.get(ecp.ids) == self._version:
                return Verdict.SKIP
        return super().post_create(create)


class TestsLayerBit(_Mutant):
    """SAFE-5: honours any flags with the LAYER bit as a local-layer open."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags & LAYER and not (
                ecp.flags & (REMOTE | REGISTERED)):
            if self._cache.get(ecp.ids) == self._version:
                return Verdict.SKIP
        return super().post_create(create)


class _ShortKey(_Mutant):
    """A local-layer cache under a key cut down from FileId + VolumeGuid by ``short``."""

    @staticmethod
    def short(ids: bytes) -> bytes:
        raise NotImplementedError

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == LAYER:
            if self._extra.get(self.short(ecp.ids)) == self._version:
                return Verdict.SKIP
            self._pending[create.create_id] = ecp.ids
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        key = self._pending.get(result.create_id) if result.create_id is not None else (
            result.file_id + result.volume_guid)
        super().scan_completed(result)
        if key and result.outcome is ScanOutcome.CLEAN:
            self._extra[self.short(key)] = result.signature_version

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        self._extra.pop(self.short(change.file_id + change.volume_guid), None)


class FileIdOnlyKey(_ShortKey):
    """SAFE-6: keys its cache by FileId alone, forgetting the volume."""

    @staticmethod
    def short(ids: bytes) -> bytes:
        return ids[:16]


class TruncatedKey(_ShortKey):
    """SAFE-6: keeps only the low 64 bits of the FileId (an NTFS habit, wrong on ReFS)."""

    @staticmethod
    def short(ids: bytes) -> bytes:
        return ids[:8] + ids[16:]


class ContainerSideKey(_Mutant):
    """SAFE-6: caches layer files by the id the container sees, not the backing ids."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == LAYER:
            own = create.file_id + create.volume_guid
            if self._extra.get(own) == self._version:
                return Verdict.SKIP
            self._extra[("pending", create.create_id)] = own
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        own = self._extra.pop(("pending", result.create_id), None)
        if own is not None and result.outcome is ScanOutcome.CLEAN:
            self._extra[own] = result.signature_version
        super().scan_completed(result)

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        self._extra.pop(change.file_id + change.volume_guid, None)


class ZeroIdKey(_Mutant):
    """SAFE-6: caches every acknowledged open by the ECP's ids, unset (zero) ones included."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == SCRATCH:
            if self._extra.get(ecp.ids) == self._version:
                return Verdict.SKIP
            self._extra[("pending", create.create_id)] = ecp.ids
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        key = self._extra.pop(("pending", result.create_id), None)
        if key is not None and result.outcome is ScanOutcome.CLEAN:
            self._extra[key] = result.signature_version
        super().scan_completed(result)


class IgnoresVersion(_Mutant):
    """SAFE-7: any clean entry is a hit, whatever signature version it was scanned under."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == LAYER:
            if ecp.ids in self._cache:
                return Verdict.SKIP
        return super().post_create(create)


class CreditsDeliveryVersion(_Mutant):
    """SAFE-7: credits a scan to the version current when its result arrives."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.signature_version != self._version:
            result = ScanResult(result.create_id, result.volume_guid, result.file_id,
                                self._version, result.outcome, result.origin)
        super().scan_completed(result)


class VolumeContext(_Mutant):
    """SAFE-8: decides container context per volume: once a container volume, always one,
    and files there are taken to be served from layers."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        if create.silo is not None:
            self._extra[create.volume_guid] = True
        return super().pre_create(create)

    def post_create(self, create: PostCreate) -> Verdict:
        if create.silo is None and self._extra.get(create.volume_guid):
            return Verdict.SKIP
        return super().post_create(create)


class NoInvalidation(_Mutant):
    """SAFE-9: never drops a cache entry when a file is written or deleted."""

    def file_changed(self, change: FileChange) -> None:
        pass


class CachesErrors(_Mutant):
    """SAFE-10: a scan that ended in ERROR is cached as if it were clean."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.outcome is ScanOutcome.ERROR:
            result = ScanResult(result.create_id, result.volume_guid, result.file_id,
                                result.signature_version, ScanOutcome.CLEAN, result.origin)
        super().scan_completed(result)


class TrustsRegisteredBlindly(_Mutant):
    """SAFE-11: trusts registered layers even for a file it found infected."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.flags == LAYER | REGISTERED and (
                self._trusted):
            return Verdict.SKIP
        return super().post_create(create)


class ReadsLayerRoots(_Mutant):
    """SAFE-12: still reads the LayerRootLocations key the old guidance mentioned."""

    def start(self, services: Services) -> None:
        services.read_registry(LAYER_ROOT_LOCATIONS_KEY)
        super().start(services)


class UnpacksRawEcp(_Mutant):
    """SAFE-13: unpacks the raw ECP buffer itself and crashes on a short one."""

    def post_create(self, create: PostCreate) -> Verdict:
        if create.ecp is not None and create.ecp.acknowledged:
            struct.unpack("<HH16s16s", create.ecp.raw)
        return super().post_create(create)


class ReturnsStrings(_Mutant):
    """SAFE-13: answers with a string instead of a Verdict."""

    def post_create(self, create: PostCreate) -> Verdict:
        return "SCAN"  # type: ignore[return-value]


# --- SIG ----------------------------------------------------------------------------------
class TrustsRegisteredAfterUpdate(_Mutant):
    """SIG-1: keeps trusting registered layers after a signature update."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and (
                ecp.flags == LAYER | REGISTERED) and ecp.ids not in self._infected and (
                ecp.ids[:16] != ZERO):
            return Verdict.SKIP
        return super().post_create(create)


class TrustsRemoteAfterUpdate(_Mutant):
    """SIG-2: keeps trusting remote layers after a signature update."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and (
                ecp.flags & ~REGISTERED) == LAYER | REMOTE:
            return Verdict.SKIP
        return super().post_create(create)


# --- ECP ----------------------------------------------------------------------------------
class DllOnlyEcp(_Mutant):
    """ECP-1: attaches the ECP only to executables."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        if create.silo is not None and create.path.endswith(".dll"):
            return EcpRequest(ECP_SIZE)
        return None


class EcpEverywhere(_Mutant):
    """ECP-2: attaches the ECP to every create, container context or not (a warning)."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return EcpRequest(ECP_SIZE)


class OldEcpSize(_Mutant):
    """ECP-3: sends the Size of an older, shorter structure."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return EcpRequest(32) if create.silo is not None else None


# --- EFF ----------------------------------------------------------------------------------
class ForgetsContainerScans(_Mutant):
    """EFF-1: remembers install-time and proactive scans, but not scans done on access in
    a container, so every container rescans after an update."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is ScanOrigin.ON_ACCESS and self._pending.get(
                result.create_id or -1, b"")[16:] != result.volume_guid:
            self._pending.pop(result.create_id or -1, None)
            return
        super().scan_completed(result)


class _ConformantTrust(_Mutant):
    def __init__(self) -> None:
        super().__init__()
        self._trust_always = True
        self._trusted = True


class ScansRemote(_ConformantTrust):
    """EFF-2: trusts registered layers as the guidance allows, but scans remote opens."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.flags & REMOTE:
            return Verdict.SCAN
        return super().post_create(create)


class ScansRegistered(_ConformantTrust):
    """EFF-3: trusts remote layers as the guidance allows, but treats registered ones as
    plain local layers."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and (
                ecp.flags == LAYER | REGISTERED):
            if self._cache.get(ecp.ids) == self._version:
                return Verdict.SKIP
            self._pending[create.create_id] = ecp.ids
            return Verdict.SCAN
        return super().post_create(create)


class IgnoresInstallScans(_Mutant):
    """EFF-4: does not remember the scans of files as they are laid out at install."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is ScanOrigin.ON_ACCESS and self._pending.get(
                result.create_id or -1, b"")[16:] == result.volume_guid:
            self._pending.pop(result.create_id or -1, None)
            return
        super().scan_completed(result)


class IgnoresProactiveScans(_Mutant):
    """EFF-5: ignores proactive scans: their results and their completion."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is not ScanOrigin.PROACTIVE:
            super().scan_completed(result)

    def proactive_scan_completed(self, version: int) -> None:
        pass


class RescansPlainLayer(_Mutant):
    """EFF-6: written for a system that always reports REGISTERED: plain LAYER opens are
    always scanned, so registered files arriving without the flag are rescanned."""

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.flags == LAYER:
            return Verdict.SCAN
        return super().post_create(create)


MUTANTS: dict[str, list[type[BaseAdapter]]] = {
    "SAFE-1": [TrustsLayerFlag],
    "SAFE-2": [SkipsScratch],
    "SAFE-3": [StaleLayerMarker],
    "SAFE-4": [IgnoresAcknowledged],
    "SAFE-5": [TestsLayerBit],
    "SAFE-6": [FileIdOnlyKey, TruncatedKey, ContainerSideKey, ZeroIdKey],
    "SAFE-7": [IgnoresVersion, CreditsDeliveryVersion],
    "SAFE-8": [VolumeContext],
    "SAFE-9": [NoInvalidation],
    "SAFE-10": [CachesErrors],
    "SAFE-11": [TrustsRegisteredBlindly],
    "SAFE-12": [ReadsLayerRoots],
    "SAFE-13": [UnpacksRawEcp, ReturnsStrings],
    "SIG-1": [TrustsRegisteredAfterUpdate],
    "SIG-2": [TrustsRemoteAfterUpdate],
    "ECP-1": [DllOnlyEcp],
    "ECP-2": [EcpEverywhere],
    "ECP-3": [OldEcpSize],
    "EFF-1": [ForgetsContainerScans],
    "EFF-2": [ScansRemote],
    "EFF-3": [ScansRegistered],
    "EFF-4": [IgnoresInstallScans],
    "EFF-5": [IgnoresProactiveScans],
    "EFF-6": [RescansPlainLayer],
}


# --- correct adapters, written differently from the reference ------------------------------
class LruAdapter(BaseAdapter):
    """A bounded LRU cache of (VolumeGuid, FileId) tuples, cleared on every update, and
    registered/remote trust only after a proactive scan completed under the current version."""

    info = AdapterInfo(name="gallery LRU adapter", version="1")

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self.clean: OrderedDict[tuple[bytes, bytes], int] = OrderedDict()
        self.bad: set[tuple[bytes, bytes]] = set()
        self.inflight: dict[int, tuple[bytes, bytes]] = {}
        self.version = 0
        self.swept = False

    def start(self, services: Services) -> None:
        self.version = services.signature_version()

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return None if create.silo is None else EcpRequest()

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if create.silo is None and ecp is None:
            self.inflight[create.create_id] = (create.volume_guid, create.file_id)
            return Verdict.SCAN
        if ecp is None or not ecp.acknowledged or len(ecp.raw) < ECP_SIZE:
            return Verdict.SCAN
        flags = int(ecp.flags)
        key = (ecp.volume_guid, ecp.file_id)
        has_ids = ecp.file_id != ZERO and ecp.volume_guid != ZERO
        if flags in (LAYER | REMOTE, LAYER | REMOTE | REGISTERED):
            return Verdict.SKIP if self.swept else Verdict.SCAN
        if flags not in (LAYER, LAYER | REGISTERED) or not has_ids or key in self.bad:
            return Verdict.SCAN
        if flags == LAYER | REGISTERED and self.swept:
            return Verdict.SKIP
        if self.clean.get(key) == self.version:
            self.clean.move_to_end(key)
            return Verdict.SKIP
        self.inflight[create.create_id] = key
        return Verdict.SCAN

    def scan_completed(self, result: ScanResult) -> None:
        if result.create_id is None:
            key: tuple[bytes, bytes] | None = (result.volume_guid, result.file_id)
        else:
            key = self.inflight.pop(result.create_id, None)
        if key is None or result.signature_version != self.version:
            return
        if result.outcome is ScanOutcome.CLEAN:
            self.clean[key] = result.signature_version
            self.clean.move_to_end(key)
            while len(self.clean) > self.capacity:
                self.clean.popitem(last=False)
        elif result.outcome is ScanOutcome.INFECTED:
            self.bad.add(key)

    def file_changed(self, change: FileChange) -> None:
        key = (change.volume_guid, change.file_id)
        self.clean.pop(key, None)
        self.bad.discard(key)

    def signature_updated(self, version: int) -> bool:
        self.version = version
        self.swept = False
        self.clean.clear()
        return True

    def proactive_scan_completed(self, version: int) -> None:
        self.swept = version == self.version


class ScratchCacheAdapter(ReferenceAdapter):
    """The reference policy plus a cache of scratch files by their own container-side id,
    dropped whenever that file is written or deleted."""

    info = AdapterInfo(name="gallery scratch-cache adapter", version="1")
    __slots__ = ("_scratch", "_scratch_pending")

    def __init__(self) -> None:
        super().__init__("signature-current", False)
        self._scratch: dict[bytes, int] = {}
        self._scratch_pending: dict[int, bytes] = {}

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == SCRATCH:
            own = create.file_id + create.volume_guid
            if self._scratch.get(own) == self._version:
                return Verdict.SKIP
            self._scratch_pending[create.create_id] = own
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        own = self._scratch_pending.pop(result.create_id or -1, None)
        if own is not None:
            if result.outcome is ScanOutcome.CLEAN:
                self._scratch[own] = result.signature_version
            return
        super().scan_completed(result)

    def file_changed(self, change: FileChange) -> None:
        self._scratch.pop(change.file_id + change.volume_guid, None)
        super().file_changed(change)


class ScansEverything(BaseAdapter):
    """Safe but wasteful: attaches the ECP where it must, then scans every open."""

    info = AdapterInfo(name="gallery scan-everything adapter", version="1")

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return None if create.silo is None else EcpRequest()

    def post_create(self, create: PostCreate) -> Verdict:
        return Verdict.SCAN


CORRECT: list[type[BaseAdapter]] = [LruAdapter, ScratchCacheAdapter]
