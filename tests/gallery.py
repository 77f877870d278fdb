"""The mutant gallery: adapters that are wrong on purpose, one defect each, plus correct
adapters written differently from the reference.

``MUTANTS`` maps each invariant ID of SPEC §6 to an adapter the suite must catch with that
ID; ``CORRECT`` lists adapters it must never raise a safety alarm against.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections import OrderedDict, deque
from dataclasses import replace
from typing import ClassVar

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

    def _scanned(self, result: ScanResult) -> bytes | None:
        """The backing identity a result is for: the pending create's, or a proactive
        scan's named file. Read it before ``super().scan_completed`` pops the pending."""
        if result.create_id is None:
            return result.file_id + result.volume_guid
        return self._pending.get(result.create_id)


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
        key = self._scanned(result)
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
    """EFF-1: remembers install-time and proactive scans, but not the clean scans done on
    access in a container, so every container rescans after an update (what they found
    infected it still remembers)."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is ScanOrigin.ON_ACCESS and result.outcome is not (
                ScanOutcome.INFECTED) and self._pending.get(
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
    """EFF-4: does not cache the clean scans of files as they are laid out at install (it
    still remembers what they found infected)."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is ScanOrigin.ON_ACCESS and result.outcome is not (
                ScanOutcome.INFECTED) and self._pending.get(
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
        # A scan in flight for this file covered what it was before the write.
        self.inflight = {c: k for c, k in self.inflight.items() if k != key}

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
            if own and result.outcome is ScanOutcome.CLEAN:
                self._scratch[own] = result.signature_version
            return
        super().scan_completed(result)

    def file_changed(self, change: FileChange) -> None:
        own = change.file_id + change.volume_guid
        self._scratch.pop(own, None)
        for create_id, key in self._scratch_pending.items():
            if key == own:
                self._scratch_pending[create_id] = b""  # stale: the file changed mid-scan
        super().file_changed(change)


class ScansEverything(BaseAdapter):
    """Safe but wasteful: attaches the ECP where it must, then scans every open."""

    info = AdapterInfo(name="gallery scan-everything adapter", version="1")

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return None if create.silo is None else EcpRequest()

    def post_create(self, create: PostCreate) -> Verdict:
        return Verdict.SCAN


CORRECT: list[type[BaseAdapter]] = [LruAdapter, ScratchCacheAdapter]


# ==========================================================================================
# More mutants: concurrency, long histories, rare scenes, registry spellings, tampering.
# Each is the reference plus one defect, written the way a vendor would write it.
# ==========================================================================================

# --- concurrency (SPEC §3 "Concurrency") --------------------------------------------------
class SingleScanSlot(_Mutant):
    """SAFE-14: keeps one "scan in flight" slot, the key of the last open it sent to the
    engine, and credits every on-access result that arrives to that key, whatever open
    the result's create_id names."""

    def post_create(self, create: PostCreate) -> Verdict:
        verdict = super().post_create(create)
        if verdict is Verdict.SCAN:
            self._extra["slot"] = self._pending.get(create.create_id, b"")
        return verdict

    def scan_completed(self, result: ScanResult) -> None:
        if result.create_id is not None:
            slot = self._extra.get("slot", b"")
            assert isinstance(slot, bytes)
            self._pending[result.create_id] = slot
        super().scan_completed(result)

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        if self._extra.get("slot") == change.file_id + change.volume_guid:
            self._extra["slot"] = b""  # its scan now covers content that is gone


class CreditsLastFileSeen(_Mutant):
    """SAFE-14: credits an on-access result to the last file it looked at (the file of the
    last post_create, scanned or skipped) instead of the open its create_id names."""

    def post_create(self, create: PostCreate) -> Verdict:
        verdict = super().post_create(create)
        ecp = create.ecp
        key = self._pending.get(create.create_id)
        if not key and ecp is not None and ecp.acknowledged and ecp.complete and (
                ecp.flags in (LAYER, LAYER | REGISTERED)):
            key = ecp.ids
        self._extra["last"] = key or create.file_id + create.volume_guid
        return verdict

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        if self._extra.get("last") == change.file_id + change.volume_guid:
            del self._extra["last"]

    def scan_completed(self, result: ScanResult) -> None:
        if result.create_id is None:
            super().scan_completed(result)
            return
        self._pending.pop(result.create_id, None)
        key = self._extra.get("last")
        if result.outcome is ScanOutcome.INFECTED:
            self._infected.add(result.file_id + result.volume_guid)
        if not isinstance(key, bytes) or key[:16] == ZERO or key[16:] == ZERO:
            return
        if result.outcome is ScanOutcome.CLEAN:
            if self._cache.get(key, -1) < result.signature_version:
                self._cache[key] = result.signature_version
        elif result.outcome is ScanOutcome.INFECTED:
            self._infected.add(key)
            self._cache.pop(key, None)


class CreditsClaimedIds(_Mutant):
    """SAFE-14: scans an acknowledged ECP whose flags make no sense (LAYER|SCRATCH, a
    USER_MODE or unknown bit) but, when it carries ids, caches the clean result under the
    ids it claimed, "so the backing file is covered too"."""

    def post_create(self, create: PostCreate) -> Verdict:
        verdict = super().post_create(create)
        ecp = create.ecp
        if verdict is Verdict.SCAN and create.create_id not in self._pending and (
                ecp is not None and ecp.acknowledged and ecp.complete) and (
                ecp.file_id != ZERO and ecp.volume_guid != ZERO):
            self._pending[create.create_id] = ecp.ids
        return verdict


class KeepsScanAcrossWrite(_Mutant):
    """SAFE-9: drops the cache entry of a file that is written or deleted, but not the scan
    in flight for it, so a result for the old content is cached clean for the new."""

    def file_changed(self, change: FileChange) -> None:
        key = change.file_id + change.volume_guid
        self._cache.pop(key, None)
        self._infected.discard(key)


# --- long histories and small fixed limits (SPEC §3 "Long histories") ---------------------
class ByteVersion(_Mutant):
    """SAFE-7: keeps the signature version in an 8-bit counter (a UCHAR in its cache
    entries), so 256 updates later an old entry reads as current."""

    def start(self, services: Services) -> None:
        super().start(services)
        self._version &= 0xFF

    def signature_updated(self, version: int) -> bool:
        return super().signature_updated(version & 0xFF)

    def scan_completed(self, result: ScanResult) -> None:
        super().scan_completed(replace(result, signature_version=result.signature_version
                                       & 0xFF))

    def proactive_scan_completed(self, version: int) -> None:
        super().proactive_scan_completed(version & 0xFF)


class RestampsOnRehash(_Mutant):
    """SAFE-7: when its cache grows past its table size (64, doubling) it rehashes into a
    bigger table and re-inserts every entry stamped with the current signature version."""

    def scan_completed(self, result: ScanResult) -> None:
        super().scan_completed(result)
        size = self._extra.get("table_size", 64)
        assert isinstance(size, int)
        if len(self._cache) > size:
            self._extra["table_size"] = size * 2
            self._cache = {key: self._version for key in self._cache}


class ForgetsOldDetections(_Mutant):
    """SAFE-11: remembers only its last 8 detections (a FIFO ring), so a registered-layer
    file found infected earlier is trusted again once 8 newer detections push it out."""

    RING = 8

    def scan_completed(self, result: ScanResult) -> None:
        before = len(self._infected)
        known = set(self._infected) if before else set()
        super().scan_completed(result)
        if len(self._infected) == before:
            return
        ring = self._extra.setdefault("ring", deque())
        assert isinstance(ring, deque)
        for key in self._infected - known:
            ring.append(key)
        while len(ring) > self.RING:
            self._infected.discard(ring.popleft())


class DirectMappedCache(_Mutant):
    """SAFE-6: a direct-mapped table of 4096 slots for local-layer files: slot = FileId low
    32 bits mod 4096, tag = the FileId's low 32 bits and the version (ids are sequential,
    so that spreads well): the volume and the upper bits are never compared."""

    SLOTS = 4096

    @staticmethod
    def tag(ids: bytes) -> int:
        return int.from_bytes(ids[:4], "little")

    def _table(self) -> list[tuple[int, int] | None]:
        table = self._extra.get("table")
        if table is None:
            table = self._extra["table"] = [None] * self.SLOTS
        assert isinstance(table, list)
        return table

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.layer_key is not None:
            tag = self.tag(ecp.ids)
            if self._table()[tag % self.SLOTS] == (tag, self._version):
                return Verdict.SKIP
            self._pending[create.create_id] = ecp.ids
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        key = self._scanned(result)
        super().scan_completed(result)
        if key and result.outcome is ScanOutcome.CLEAN and result.signature_version == (
                self._version) and key[:16] != ZERO:
            tag = self.tag(key)
            self._table()[tag % self.SLOTS] = (tag, result.signature_version)

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        tag = self.tag(change.file_id)
        table = self._table()
        entry = table[tag % self.SLOTS]
        if entry is not None and entry[0] == tag:
            table[tag % self.SLOTS] = None


class HashedSlotNoTag(_Mutant):
    """SAFE-6: a fixed table of 1024 version stamps indexed by crc32(FileId + VolumeGuid):
    it stores no key, so two files hashing to one slot share a verdict."""

    SLOTS = 1024

    def _slots(self) -> list[int]:
        slots = self._extra.get("slots")
        if slots is None:
            slots = self._extra["slots"] = [0] * self.SLOTS
        assert isinstance(slots, list)
        return slots

    @classmethod
    def slot(cls, ids: bytes) -> int:
        return zlib.crc32(ids) % cls.SLOTS

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if ecp is not None and ecp.layer_key is not None:
            if self._slots()[self.slot(ecp.ids)] == self._version:
                return Verdict.SKIP
            self._pending[create.create_id] = ecp.ids
            return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        key = self._scanned(result)
        super().scan_completed(result)
        if key and result.outcome is ScanOutcome.CLEAN and key[:16] != ZERO:
            slots = self._slots()
            i = self.slot(key)
            slots[i] = max(slots[i], result.signature_version)

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        self._slots()[self.slot(change.file_id + change.volume_guid)] = 0


class FoldedFileId(_ShortKey):
    """SAFE-6: folds the 128-bit FileId into 64 bits (low XOR high) beside the VolumeGuid;
    exact on NTFS, where the upper half is zero, but ReFS ids collide."""

    @staticmethod
    def short(ids: bytes) -> bytes:
        low = int.from_bytes(ids[:8], "little")
        high = int.from_bytes(ids[8:16], "little")
        return (low ^ high).to_bytes(8, "little") + ids[16:]


# --- scratch-file caches keyed by (silo, path) --------------------------------------------
class _ScratchPathCache(_Mutant):
    """A cache of scanned scratch files keyed by (silo, path), learning which silo owns a
    volume from its creates so host-side writes (``silo=None``) invalidate it too, and
    dropping a scan in flight when its file changes. ``silo_of`` and ``host_change`` are
    where its subclasses put their one defect."""

    @staticmethod
    def silo_of(silo: int) -> int:
        return silo

    def host_change(self, change: FileChange) -> int | None:
        """The silo a change with no silo context belongs to (None: not a container's)."""
        silo = self._extra.get(("volume", change.volume_guid))
        return silo if isinstance(silo, int) else None

    def _key(self, silo: int, path: str) -> tuple[str, int, str]:
        return ("scratch", self.silo_of(silo), path.casefold())

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        if create.silo is not None:
            self._extra[("volume", create.volume_guid)] = create.silo
            if ecp is not None and ecp.acknowledged and ecp.complete and ecp.flags == SCRATCH:
                key = self._key(create.silo, create.path)
                if self._extra.get(key) == self._version:
                    return Verdict.SKIP
                self._extra[("pending", create.create_id)] = key
                return Verdict.SCAN
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        key = self._extra.pop(("pending", result.create_id), None)
        if key is None:
            super().scan_completed(result)
            return
        if result.outcome is ScanOutcome.CLEAN and key:
            self._extra[key] = result.signature_version
        elif result.outcome is ScanOutcome.INFECTED:
            self._infected.add(result.file_id + result.volume_guid)

    def file_changed(self, change: FileChange) -> None:
        super().file_changed(change)
        silo = change.silo if change.silo is not None else self.host_change(change)
        if silo is None:
            return
        key = self._key(silo, change.path)
        self._extra.pop(key, None)
        for k, v in self._extra.items():
            if v == key and isinstance(k, tuple) and k[0] == "pending":
                self._extra[k] = ()  # the scan in flight covered the old content


class ByteSiloScratchCache(_ScratchPathCache):
    """SAFE-6: keeps the silo of its (silo, path) scratch cache in a byte, so container 257
    finds container 1's scanned file at the same path. (SAFE-6, not SAFE-2: the exposed
    file is an unscanned scratch file, but the most specific cause is a lossy cache key,
    and SAFE-6 covers the keys of scratch opens too, as its "no unset (zero) ids of ...
    scratch opens" says; SAFE-2 is the general scratch rule, as SAFE-1 is for layers.)"""

    @staticmethod
    def silo_of(silo: int) -> int:
        return silo & 0xFF


class ScratchCacheMissesHostWrites(_ScratchPathCache):
    """SAFE-9: its (silo, path) scratch cache is invalidated only by changes made in the
    same silo, so a host-side write (silo=None) to a running container's file is missed."""

    def host_change(self, change: FileChange) -> int | None:
        return None


# --- rare scenes -------------------------------------------------------------------------
class CachesInstallErrors(_Mutant):
    """SAFE-10: counts a file as scanned once it was scanned as laid out on the host (an
    ordinary open), even when that scan ended in ERROR."""

    def post_create(self, create: PostCreate) -> Verdict:
        if create.silo is None and create.ecp is None:
            self._extra[("ordinary", create.create_id)] = True
        return super().post_create(create)

    def scan_completed(self, result: ScanResult) -> None:
        ordinary = self._extra.pop(("ordinary", result.create_id), False)
        if ordinary and result.outcome is ScanOutcome.ERROR:
            result = replace(result, outcome=ScanOutcome.CLEAN)
        super().scan_completed(result)


class IgnoresProactiveDetections(_Mutant):
    """SAFE-11: a proactive scan only refreshes the cache: a file it finds infected is
    dropped from the cache but not remembered as infected, so once the scan completes the
    registered layer holding it is trusted."""

    def scan_completed(self, result: ScanResult) -> None:
        if result.origin is ScanOrigin.PROACTIVE and result.outcome is ScanOutcome.INFECTED:
            self._cache.pop(result.file_id + result.volume_guid, None)
            return
        super().scan_completed(result)


# --- the LayerRootLocations key under other spellings (SAFE-12) ---------------------------
_LRL_TAIL = LAYER_ROOT_LOCATIONS_KEY.split("\\", 1)[1]  # SOFTWARE\...\LayerRootLocations


class _ReadsLayerRootsAs(_Mutant):
    key: ClassVar[str] = LAYER_ROOT_LOCATIONS_KEY

    def start(self, services: Services) -> None:
        services.read_registry(self.key)
        super().start(services)


class ReadsLayerRootsNative(_Mutant):
    """SAFE-12: reads the key by its kernel name (\\Registry\\Machine\\...), the first
    time it sees a container context, as a minifilter's ZwOpenKey would."""

    key = "\\Registry\\Machine\\" + _LRL_TAIL

    def __init__(self) -> None:
        super().__init__()
        self.services: Services | None = None

    def start(self, services: Services) -> None:
        super().start(services)
        self.services = services

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        if create.silo is not None and self.services is not None:
            self.services.read_registry(self.key)
            self.services = None
        return super().pre_create(create)


class ReadsLayerRootsLongHive(_ReadsLayerRootsAs):
    """SAFE-12: reads the key spelled with the long hive name HKEY_LOCAL_MACHINE\\."""

    key = "HKEY_LOCAL_MACHINE\\" + _LRL_TAIL


class ReadsLayerRootsLowerCase(_ReadsLayerRootsAs):
    """SAFE-12: reads the key spelled in lower case (registry names ignore case)."""

    key = LAYER_ROOT_LOCATIONS_KEY.lower()


class ReadsLayerRootsTrailingSeparator(_ReadsLayerRootsAs):
    """SAFE-12: reads the key with a trailing backslash, as a path join leaves it."""

    key = LAYER_ROOT_LOCATIONS_KEY + "\\"


class ReadsLayerRootsValue(_ReadsLayerRootsAs):
    """SAFE-12: reads a value beneath the key (a layer root's entry) rather than the key."""

    key = LAYER_ROOT_LOCATIONS_KEY + "\\{8bd0c6a4-5b1e-4c3c-9d67-0f1a2b3c4d5e}"


class ReadsLayerRootsDoubledSeparator(_ReadsLayerRootsAs):
    """SAFE-12: reads the key with a doubled separator from a sloppy string join."""

    key = LAYER_ROOT_LOCATIONS_KEY.replace("\\Virtualization", "\\\\Virtualization")


# --- tampering with its inputs, and non-determinism (SAFE-13) -----------------------------
class ClearsSilo(_Mutant):
    """SAFE-13: once it has attached its ECP it clears pre.silo on the object it was handed
    (object.__setattr__), as its C code NULLs a silo pointer after dereferencing it."""

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        request = super().pre_create(create)
        if create.silo is not None:
            object.__setattr__(create, "silo", None)
        return request


class DropsUnacknowledgedEcp(_Mutant):
    """SAFE-13: "normalizes" a PostCreate whose ECP was never acknowledged by setting its
    ecp to None on the object it was handed, so later code need not check acknowledged."""

    def post_create(self, create: PostCreate) -> Verdict:
        if create.ecp is not None and not create.ecp.acknowledged:
            object.__setattr__(create, "ecp", None)
        return super().post_create(create)


_CONTEXT_RING = 1000
#: Module-level, shared by every instance in the process, never reset; and one short.
_contexts: list[int | None] = [None] * (_CONTEXT_RING - 1)
_context_seq = itertools.count(1)


class SharedContextRing(_Mutant):
    """SAFE-13: keeps per-create contexts in a module-level ring indexed by a process-wide
    sequence number mod 1000, allocated one entry short: every 1000th post_create of the
    process raises IndexError, whatever the events (so it does not recur on replay)."""

    def post_create(self, create: PostCreate) -> Verdict:
        _contexts[next(_context_seq) % _CONTEXT_RING] = create.create_id
        return super().post_create(create)


# --- more correct adapters, written differently from the reference -------------------------
_Key = tuple[bytes, bytes]
_REMOTE_FLAGS = (LAYER | REMOTE, LAYER | REMOTE | REGISTERED)


class TupleCacheAdapter(BaseAdapter):
    """(VolumeGuid, FileId) tuples in a version-checked dict; one pending entry per create,
    dropped when its file changes while the scan is in flight; registered and remote
    layers trusted only after a proactive scan completed under the current version."""

    info = AdapterInfo(name="gallery tuple-cache adapter", version="1")

    def __init__(self) -> None:
        self.version = 0
        self.clean: dict[_Key, int] = {}
        self.infected: set[_Key] = set()
        self.pending: dict[int, _Key] = {}
        self.waiting: dict[_Key, set[int]] = {}
        #: key -> signature version current when the file last changed.
        self.changed_under: dict[_Key, int] = {}
        self.swept: int | None = None

    def start(self, services: Services) -> None:
        self.version = services.signature_version()

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return None if create.silo is None else EcpRequest()

    def _expect(self, create_id: int, key: _Key) -> Verdict:
        self.pending[create_id] = key
        self.waiting.setdefault(key, set()).add(create_id)
        return Verdict.SCAN

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        own = (create.volume_guid, create.file_id)
        if ecp is None:
            # An ordinary open names the file itself (a layer file at install included).
            return self._expect(create.create_id, own) if create.silo is None else Verdict.SCAN
        if not ecp.acknowledged or not ecp.complete:
            return Verdict.SCAN
        flags = int(ecp.flags)
        if flags in _REMOTE_FLAGS:
            return Verdict.SKIP if self.swept == self.version else Verdict.SCAN
        key = (ecp.volume_guid, ecp.file_id)
        if flags not in (LAYER, LAYER | REGISTERED) or ZERO in key:
            return Verdict.SCAN
        if key in self.infected or own in self.infected:
            return self._expect(create.create_id, key)
        if flags == LAYER | REGISTERED and self.swept == self.version:
            return Verdict.SKIP
        if self.clean.get(key) == self.version:
            return Verdict.SKIP
        return self._expect(create.create_id, key)

    def scan_completed(self, result: ScanResult) -> None:
        named = (result.volume_guid, result.file_id)
        key: _Key | None
        if result.create_id is None:
            key = named
            # A sweep result for a file changed under this version may predate the change.
            if self.changed_under.get(key, -1) >= result.signature_version and (
                    result.outcome is ScanOutcome.CLEAN):
                return
        else:
            key = self.pending.pop(result.create_id, None)
            if key is not None:
                self.waiting.get(key, set()).discard(result.create_id)
            if result.outcome is ScanOutcome.INFECTED:
                self.infected.add(named)
        if key is None or ZERO in key:
            return
        if result.outcome is ScanOutcome.CLEAN:
            if self.clean.get(key, -1) < result.signature_version:
                self.clean[key] = result.signature_version
        elif result.outcome is ScanOutcome.INFECTED:
            self.infected.add(key)
            self.clean.pop(key, None)

    def file_changed(self, change: FileChange) -> None:
        key = (change.volume_guid, change.file_id)
        self.clean.pop(key, None)
        self.infected.discard(key)
        self.changed_under[key] = self.version
        for create_id in self.waiting.pop(key, ()):
            self.pending.pop(create_id, None)

    def signature_updated(self, version: int) -> bool:
        self.version = version
        return True

    def proactive_scan_completed(self, version: int) -> None:
        if version == self.version:
            self.swept = version


class GenerationCacheAdapter(BaseAdapter):
    """Trusts nothing but its cache: scans every open that is not a plain local or
    registered layer open with ids, remote ones included. The cache (bytes keys) holds the
    current version only and is emptied on every update; each pending scan carries the
    change generation it started at, and counts only if its file has not changed since."""

    info = AdapterInfo(name="gallery generation-cache adapter", version="1")

    def __init__(self) -> None:
        self.version = 0
        self.generation = 0
        self.cache: set[bytes] = set()
        self.infected: set[bytes] = set()
        self.pending: dict[int, tuple[bytes, int]] = {}
        #: key -> (generation, signature version) of its last change.
        self.changed: dict[bytes, tuple[int, int]] = {}

    def start(self, services: Services) -> None:
        self.version = services.signature_version()

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return EcpRequest(ECP_SIZE) if create.silo is not None else None

    def post_create(self, create: PostCreate) -> Verdict:
        ecp = create.ecp
        own = create.file_id + create.volume_guid
        if ecp is None:
            if create.silo is None:
                self.pending[create.create_id] = (own, self.generation)
            return Verdict.SCAN
        if not (ecp.acknowledged and ecp.complete) or ecp.flags not in (
                LAYER, LAYER | REGISTERED):
            return Verdict.SCAN
        key = ecp.ids
        if key[:16] == ZERO or key[16:] == ZERO:
            return Verdict.SCAN
        if key in self.cache and key not in self.infected and own not in self.infected:
            return Verdict.SKIP
        self.pending[create.create_id] = (key, self.generation)
        return Verdict.SCAN

    def scan_completed(self, result: ScanResult) -> None:
        named = result.file_id + result.volume_guid
        if result.create_id is None:
            key = named
            changed = self.changed.get(key)
            fresh = changed is None or changed[1] < result.signature_version
        else:
            key, started = self.pending.pop(result.create_id, (b"", 0))
            if result.outcome is ScanOutcome.INFECTED:
                self.infected.add(named)
            changed = self.changed.get(key)
            fresh = changed is None or changed[0] <= started
        if not key or key[:16] == ZERO or key[16:] == ZERO:
            return
        if result.outcome is ScanOutcome.INFECTED:
            self.infected.add(key)
            self.cache.discard(key)
        elif result.outcome is ScanOutcome.CLEAN and fresh and (
                result.signature_version == self.version):
            self.cache.add(key)

    def file_changed(self, change: FileChange) -> None:
        key = change.file_id + change.volume_guid
        self.generation += 1
        self.changed[key] = (self.generation, self.version)
        self.cache.discard(key)
        self.infected.discard(key)

    def signature_updated(self, version: int) -> bool:
        self.version = version
        self.cache.clear()
        return False


for _inv, _mutants in {
    "SAFE-14": [SingleScanSlot, CreditsLastFileSeen, CreditsClaimedIds],
    "SAFE-9": [KeepsScanAcrossWrite, ScratchCacheMissesHostWrites],
    "SAFE-7": [ByteVersion, RestampsOnRehash],
    "SAFE-11": [ForgetsOldDetections, IgnoresProactiveDetections],
    "SAFE-6": [DirectMappedCache, HashedSlotNoTag, FoldedFileId, ByteSiloScratchCache],
    "SAFE-10": [CachesInstallErrors],
    "SAFE-12": [ReadsLayerRootsNative, ReadsLayerRootsLongHive, ReadsLayerRootsLowerCase,
                ReadsLayerRootsTrailingSeparator, ReadsLayerRootsValue,
                ReadsLayerRootsDoubledSeparator],
    "SAFE-13": [ClearsSilo, DropsUnacknowledgedEcp, SharedContextRing],
}.items():
    MUTANTS.setdefault(_inv, []).extend(_mutants)
CORRECT += [TupleCacheAdapter, GenerationCacheAdapter]
