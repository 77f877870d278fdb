"""Unit tests of the reference model against the platform facts of SPEC §2 and §3.

A recording adapter answers like a plain filter (an ECP of 36 bytes in a container context,
``SCAN`` for everything) and logs every call; ``World(..., on_create=...)`` hands over the
truth of each create (provenance, content, backing identity).
"""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from reference import ops as O
from reference.contract import (
    ECP_SIZE,
    LAYER_ROOT_LOCATIONS_KEY,
    VALID_FLAG_COMBINATIONS,
    ZERO_ID,
    BaseAdapter,
    ChangeKind,
    EcpRequest,
    FileChange,
    Flags,
    PostCreate,
    PreCreate,
    RedirectionEcp,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Verdict,
)
from reference.model import CreateRecord, Provenance, World

LAYER = Flags.SERVICED_FROM_LAYER
SCRATCH = Flags.SERVICED_FROM_SCRATCH
REGISTERED = Flags.SERVICED_FROM_REGISTERED_LAYER
REMOTE = Flags.SERVICED_FROM_REMOTE_LAYER
USER_MODE = Flags.SERVICED_FROM_USER_MODE
NO_FLAGS = Flags(0)
ZERO_IDS = bytes(32)


# --- harness --------------------------------------------------------------------------
class Recorder(BaseAdapter):
    """Records every hook call in order. Asks for an ECP of ``size`` bytes in a container
    context (or always, with ``always_ecp``), answers ``verdict``, and answers
    ``signature_updated`` with ``proactive``."""

    def __init__(self, size: int | None = ECP_SIZE, verdict: Verdict = Verdict.SCAN,
                 always_ecp: bool = False, proactive: bool = False,
                 script: list[Verdict] | None = None) -> None:
        self.size = size
        self.verdict = verdict
        #: Verdicts to give in turn (cycled) instead of ``verdict``.
        self.script = script or []
        self.always_ecp = always_ecp
        self.proactive = proactive
        self.services: Any = None
        self.calls: list[tuple[str, Any]] = []

    def start(self, services: Any) -> None:
        self.services = services
        self.calls.append(("start", services))

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        self.calls.append(("pre_create", create))
        if self.size is not None and (create.silo is not None or self.always_ecp):
            return EcpRequest(self.size)
        return None

    def post_create(self, create: PostCreate) -> Verdict:
        self.calls.append(("post_create", create))
        if self.script:
            n = sum(1 for name, _ in self.calls if name == "post_create")
            return self.script[(n - 1) % len(self.script)]
        return self.verdict

    def scan_completed(self, result: ScanResult) -> None:
        self.calls.append(("scan_completed", result))

    def file_changed(self, change: FileChange) -> None:
        self.calls.append(("file_changed", change))

    def signature_updated(self, version: int) -> bool:
        self.calls.append(("signature_updated", version))
        return self.proactive

    def proactive_scan_completed(self, version: int) -> None:
        self.calls.append(("proactive_scan_completed", version))

    def proactive_scan_aborted(self, version: int) -> None:
        self.calls.append(("proactive_scan_aborted", version))

    def stop(self) -> None:
        self.calls.append(("stop", None))


@dataclass
class Step:
    """What one or more operations caused: the adapter calls and the create records."""

    calls: list[tuple[str, Any]]
    records: list[CreateRecord]

    def of(self, name: str) -> list[Any]:
        return [arg for n, arg in self.calls if n == name]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    @property
    def record(self) -> CreateRecord:
        assert len(self.records) == 1, self.records
        return self.records[0]

    @property
    def ecp(self) -> RedirectionEcp:
        ecp = self.record.post.ecp
        assert ecp is not None
        return ecp


@dataclass
class Harness:
    profile: str = "wcifs"
    volumes: tuple[str, ...] = ("NTFS",)
    version: int = 1
    adapter: Recorder = field(default_factory=Recorder)

    def __post_init__(self) -> None:
        self.records: list[CreateRecord] = []
        self.world = World(O.Setup(self.volumes, self.profile, self.version), self.adapter,
                           on_create=self.records.append)

    def do(self, *ops: O.Op) -> Step:
        nc, nr = len(self.adapter.calls), len(self.records)
        self.world.run(ops)
        return Step(self.adapter.calls[nc:], self.records[nr:])

    def open(self, container: int = 0, file: int = 0, **kw: Any) -> Step:
        return self.do(O.OpenFile(container=container, file=file, **kw))


def harness(*ops: O.Op, **kw: Any) -> Harness:
    adapter_kw = {k: kw.pop(k) for k in ("size", "verdict", "always_ecp", "proactive", "script")
                  if k in kw}
    h = Harness(adapter=Recorder(**adapter_kw), **kw)
    h.do(*ops)
    return h


def host_key(h: Harness, layer: int, file: int) -> bytes:
    """FileId + VolumeGuid of a layer file on its host volume (the backing identity)."""
    f = h.world.layers[layer].files[O.layer_path(file)]
    return f.file_id + f.volume_guid


def acked(ecp: RedirectionEcp | None) -> RedirectionEcp:
    assert ecp is not None
    assert ecp.acknowledged
    assert ecp.complete
    return ecp


# --- setup ----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [
    {"volumes": ()}, {"volumes": ("NTFS",) * 4}, {"volumes": ("FAT32",)},
    {"profile": "lenient"}, {"version": 0},
])
def test_setup_rejects_invalid_values(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        O.Setup(**kw)


@pytest.mark.parametrize("volumes", [("NTFS",), ("ReFS", "NTFS"), ("ReFS", "ReFS", "NTFS")])
def test_host_volumes_have_distinct_16_byte_guids(volumes: tuple[str, ...]) -> None:
    h = harness(volumes=volumes)
    guids = [v.guid for v in h.world.volumes]
    assert [v.fs for v in h.world.volumes] == list(volumes)
    assert all(len(g) == 16 and g != ZERO_ID for g in guids)
    assert len(set(guids)) == len(guids)


def test_start_hands_services_and_signature_version() -> None:
    h = harness(version=3)
    assert [name for name, _ in h.adapter.calls] == ["start"]
    assert h.world.last_completed is None  # no proactive scan has completed at start
    services = h.adapter.services
    assert services.signature_version() == 3
    h.do(O.SignatureUpdate())
    assert services.signature_version() == 4


def test_stop_reaches_the_adapter_last() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), O.OpenFile())
    h.world.stop()
    assert h.adapter.calls[-1] == ("stop", None)
    assert [n for n, _ in h.adapter.calls].count("stop") == 1


def test_registry_reads_are_recorded_and_layer_root_locations_exists() -> None:
    h = harness()
    services = h.adapter.services
    assert services.read_registry(LAYER_ROOT_LOCATIONS_KEY) is not None
    assert services.read_registry(r"HKLM\SOFTWARE\Contoso") is None
    assert services.reads == [LAYER_ROOT_LOCATIONS_KEY, r"HKLM\SOFTWARE\Contoso"]


# --- §2: context per create -----------------------------------------------------------
def test_container_open_has_the_container_silo() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer(), O.StartContainer())
    c1, c2 = h.world.containers
    s1 = h.open(0)
    s2 = h.open(1)
    assert s1.record.pre.silo == s1.record.post.silo == c1.silo
    assert s2.record.pre.silo == s2.record.post.silo == c2.silo
    assert c1.silo != c2.silo
    assert s1.record.pre.volume_guid == c1.guid
    assert s2.record.pre.volume_guid == c2.guid


def test_context_is_per_create_not_per_volume() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer())
    c = h.world.containers[0]
    in_container = h.open(0, 1).record
    ordinary = h.do(O.VolumeOpen(0, 1)).record  # same file, same volume, container running
    assert in_container.pre.volume_guid == ordinary.pre.volume_guid == c.guid
    assert in_container.pre.path == ordinary.pre.path
    assert in_container.pre.silo == c.silo
    assert ordinary.pre.silo is None and ordinary.post.silo is None
    assert ordinary.provenance is Provenance.CONTAINER_VOLUME


def test_stopped_container_volume_gives_ordinary_opens() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer(), always_ecp=True)
    c = h.world.containers[0]
    layer_file = h.world.layers[0].files[O.layer_path(1)]
    h.open(0, 1)
    h.do(O.StopContainer(0))
    assert not c.running
    # A container open needs a running container: nothing happens.
    assert h.open(0, 1).calls == []
    step = h.do(O.VolumeOpen(0, 1))
    rec = step.record
    assert rec.pre.silo is None and rec.post.silo is None
    assert rec.pre.volume_guid == c.guid
    ecp = rec.post.ecp
    assert ecp is not None
    assert ecp.acknowledged is False
    assert ecp.flags == NO_FLAGS and ecp.ids == ZERO_IDS
    # The open sees what the container saw.
    assert rec.content is layer_file.content
    assert rec.provenance is Provenance.CONTAINER_VOLUME


def test_host_opens_have_no_context_and_no_ecp() -> None:
    h = harness(O.HostCreate(name=1))
    step = h.do(O.HostOpen(0))
    f = h.world.host_files[0]
    rec = step.record
    assert rec.pre.silo is None
    assert rec.post.ecp is None
    assert rec.post.file_id == f.file_id and rec.post.volume_guid == f.volume_guid
    assert rec.provenance is Provenance.HOST


# --- §2: the ECP and how wcifs fills it -----------------------------------------------
def test_no_ecp_when_the_filter_attaches_none() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), size=None)
    rec = h.open().record
    assert rec.request is None
    assert rec.post.ecp is None


def test_placeholder_reports_layer_and_backing_ids() -> None:
    h = harness(O.InstallLayer(files=3), O.StartContainer())
    c = h.world.containers[0]
    backing = h.world.layers[0].files[O.layer_path(2)]
    step = h.open(0, 2)
    rec = step.record
    ecp = acked(rec.post.ecp)
    assert ecp.size == ECP_SIZE
    assert ecp.flags == LAYER
    assert ecp.file_id == backing.file_id
    assert ecp.volume_guid == backing.volume_guid == h.world.volumes[0].guid
    # The post-create's own file id is the container-side id, on the container volume.
    entry = c.entries[O.layer_path(2)]
    assert rec.post.volume_guid == c.guid
    assert rec.post.file_id == entry.file.file_id
    assert rec.post.path == O.layer_path(2)
    assert rec.provenance is Provenance.LAYER
    assert rec.identity is backing
    assert rec.content is backing.content


def test_scratch_opens_are_acknowledged_with_zero_ids() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), O.CreateFile(name=0))
    rec = h.open(0, O.new_file(0)).record
    ecp = acked(rec.post.ecp)
    assert ecp.flags == SCRATCH
    assert ecp.ids == ZERO_IDS
    assert rec.provenance is Provenance.SCRATCH
    assert rec.post.path == O.new_path(0)


@pytest.mark.parametrize("size", [4, 5, 20, 35])
def test_short_size_leaves_ids_unset_but_is_acknowledged(size: int) -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), size=size)
    ecp = h.open().ecp
    assert ecp.acknowledged is True
    assert ecp.size == size
    assert ecp.flags == LAYER
    assert ecp.file_id == ZERO_ID and ecp.volume_guid == ZERO_ID


@pytest.mark.parametrize("size", [36, 37, 64, 0xFFFF])
def test_size_of_at_least_36_gets_ids(size: int) -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), size=size)
    ecp = h.open().ecp
    assert ecp.acknowledged is True
    assert ecp.size == size
    assert ecp.ids == host_key(h, 0, 0)


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_size_below_4_is_not_acknowledged(size: int) -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), size=size)
    ecp = h.open().ecp
    assert ecp.acknowledged is False
    assert ecp.flags == NO_FLAGS
    assert ecp.ids == ZERO_IDS


def test_copy_on_write_keeps_path_and_own_id_and_flips_to_scratch() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer(), O.StartContainer())
    c1 = h.world.containers[0]
    backing = h.world.layers[0].files[O.layer_path(1)]
    first = h.open(0, 1).record
    assert acked(first.post.ecp).flags == LAYER
    own_id = first.post.file_id

    write = h.do(O.WriteFile(0, 1))
    assert write.records == []
    assert write.of("file_changed") == [
        FileChange(c1.guid, own_id, O.layer_path(1), ChangeKind.WRITE, c1.silo)]

    again = h.open(0, 1).record
    ecp = acked(again.post.ecp)
    assert ecp.flags == SCRATCH
    assert ecp.ids == ZERO_IDS
    assert again.post.file_id == own_id
    assert again.post.path == first.post.path
    assert again.provenance is Provenance.SCRATCH
    assert again.cow_from_layer is True
    assert again.old_backing is backing
    assert again.content is not backing.content
    # And it stays scratch.
    assert acked(h.open(0, 1).record.post.ecp).flags == SCRATCH
    # The layer file itself is untouched: another container still sees it.
    other = h.open(1, 1).record
    assert acked(other.post.ecp).flags == LAYER
    assert other.content is backing.content


def test_registered_layer_reports_layer_registered_with_ids() -> None:
    h = harness(O.InstallLayer(registered=True), O.StartContainer())
    rec = h.open().record
    ecp = acked(rec.post.ecp)
    assert ecp.flags == LAYER | REGISTERED
    assert ecp.ids == host_key(h, 0, 0)
    assert rec.provenance is Provenance.REGISTERED


def test_register_and_unregister_change_later_opens() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer())
    assert acked(h.open(0, 0).ecp).flags == LAYER
    h.do(O.RegisterLayer(0))
    step = h.open(0, 0)
    assert acked(step.ecp).flags == LAYER | REGISTERED
    assert step.record.provenance is Provenance.REGISTERED
    h.do(O.UnregisterLayer(0))
    step = h.open(0, 1)
    assert acked(step.ecp).flags == LAYER
    assert step.record.provenance is Provenance.LAYER


def test_no_registered_flag_profile_reports_plain_layer_with_ids() -> None:
    h = harness(O.InstallLayer(registered=True), O.StartContainer(),
                profile="no-registered-flag")
    rec = h.open().record
    ecp = acked(rec.post.ecp)
    assert ecp.flags == LAYER
    assert ecp.ids == host_key(h, 0, 0)
    # The truth still knows it is a registered layer.
    assert rec.provenance is Provenance.REGISTERED


def test_no_registered_flag_profile_local_opens_never_carry_registered() -> None:
    h = harness(O.InstallLayer(registered=True, files=3), O.StartContainer(),
                profile="no-registered-flag")
    step = h.do(*(O.OpenFile(0, f) for f in range(3)), O.RegisterLayer(0), O.OpenFile(0, 0))
    assert [acked(r.post.ecp).flags for r in step.records] == [LAYER] * 4


def test_no_registered_flag_profile_remote_opens_never_carry_registered() -> None:
    h = harness(O.InstallLayer(remote=True, registered=True), O.StartContainer(hyperv=True),
                profile="no-registered-flag")
    ecp = acked(h.open().ecp)
    assert not ecp.flags & REGISTERED
    assert ecp.flags == LAYER | REMOTE


@pytest.mark.parametrize("registered", [False, True])
def test_remote_layer_reports_layer_remote_with_zero_ids(registered: bool) -> None:
    h = harness(O.InstallLayer(remote=True, registered=registered, files=2),
                O.StartContainer(hyperv=True))
    rec = h.open(0, 1).record
    ecp = acked(rec.post.ecp)
    expected = LAYER | REMOTE | (REGISTERED if registered else NO_FLAGS)
    assert ecp.flags == expected
    assert ecp.ids == ZERO_IDS
    assert rec.provenance is Provenance.REMOTE
    assert rec.pre.silo == h.world.containers[0].silo


def test_remote_layer_install_is_invisible_to_this_host() -> None:
    h = harness()
    step = h.do(O.InstallLayer(remote=True, files=3))
    assert step.calls == []
    assert h.world.scans == 0


def test_hyperv_containers_run_on_remote_layers_only() -> None:
    h = harness(O.InstallLayer())
    h.do(O.StartContainer(hyperv=True))
    assert h.world.containers == []
    h.do(O.InstallLayer(remote=True), O.StartContainer(hyperv=False))
    assert h.world.containers[0].layers == (h.world.layers[0],)
    h.do(O.StartContainer(hyperv=True))
    assert h.world.containers[1].layers == (h.world.layers[1],)


def test_mapped_directory_open_has_silo_but_unacknowledged_ecp() -> None:
    h = harness(O.InstallLayer(), O.HostCreate(name=0), O.StartContainer())
    c = h.world.containers[0]
    f = h.world.host_files[0]
    rec = h.do(O.OpenMapped(0, 0)).record
    assert rec.pre.silo == c.silo
    assert rec.pre.volume_guid == f.volume_guid
    assert rec.post.file_id == f.file_id
    ecp = rec.post.ecp
    assert ecp is not None
    assert ecp.acknowledged is False
    assert ecp.flags == NO_FLAGS and ecp.ids == ZERO_IDS
    assert rec.provenance is Provenance.MAPPED
    assert rec.content is f.content


def test_user_mode_file_reports_serviced_from_user_mode() -> None:
    h = harness(O.InstallLayer(), O.StartContainer())
    rec = h.do(O.OpenUserMode(0, name=2)).record
    ecp = acked(rec.post.ecp)
    assert ecp.flags == USER_MODE
    assert ecp.flags not in VALID_FLAG_COMBINATIONS
    assert ecp.ids == ZERO_IDS
    assert rec.provenance is Provenance.USER_MODE
    # Reopening the same cloud file gives the same file.
    again = h.do(O.OpenUserMode(0, name=2)).record
    assert again.post.file_id == rec.post.file_id
    assert again.content is rec.content


# --- §3: ids ----------------------------------------------------------------------------
def test_ids_are_16_bytes_and_ntfs_upper_bytes_are_zero() -> None:
    h = harness(O.InstallLayer(files=4), O.HostCreate(name=0))
    files = [*h.world.layers[0].files.values(), *h.world.host_files]
    for f in files:
        assert len(f.file_id) == 16
        assert f.file_id[8:] == bytes(8)
        assert f.file_id != ZERO_ID
    assert len({f.file_id for f in files}) == len(files)


def test_refs_low_64_bit_collisions_between_two_layers() -> None:
    h = harness(O.InstallLayer(files=3), O.InstallLayer(files=3), O.StartContainer(layers=(0,)),
                O.StartContainer(layers=(1,)), volumes=("ReFS",))
    l1, l2 = h.world.layers
    collisions = 0
    for p, f1 in l1.files.items():
        f2 = l2.files[p]
        assert f1.volume_guid == f2.volume_guid
        assert f1.file_id != f2.file_id
        collisions += f1.file_id[:8] == f2.file_id[:8]
    assert collisions == 3
    # As the ECPs carry them.
    e1 = acked(h.open(0, 0).ecp)
    e2 = acked(h.open(1, 0).ecp)
    assert e1.file_id[:8] == e2.file_id[:8]
    assert e1.ids != e2.ids


@pytest.mark.parametrize("fs", ["NTFS", "ReFS"])
def test_equal_file_ids_on_two_host_volumes(fs: str) -> None:
    h = harness(volumes=(fs, fs))
    s1 = h.do(O.InstallLayer(volume=0, files=2))
    s2 = h.do(O.InstallLayer(volume=1, files=2))
    ids1 = [(p.file_id, p.volume_guid) for p in s1.of("post_create")]
    ids2 = [(p.file_id, p.volume_guid) for p in s2.of("post_create")]
    assert [i for i, _ in ids1] == [i for i, _ in ids2]
    assert all(v1 != v2 for (_, v1), (_, v2) in zip(ids1, ids2, strict=True))


@pytest.mark.parametrize("fs", ["NTFS", "ReFS"])
def test_uninstalled_ids_are_reused_by_the_next_install(fs: str) -> None:
    h = harness(O.InstallLayer(files=3), volumes=(fs,))
    old = {f.file_id + f.volume_guid for f in h.world.layers[0].files.values()}
    step = h.do(O.UninstallLayer(0))
    deletes = step.of("file_changed")
    assert {d.file_id + d.volume_guid for d in deletes} == old
    assert all(d.kind is ChangeKind.DELETE and d.silo is None for d in deletes)
    assert step.records == []
    install = h.do(O.InstallLayer(files=3))
    new = {f.file_id + f.volume_guid for f in h.world.layers[0].files.values()}
    assert new == old
    # Each reused id is announced by a write before its first create.
    names = install.names
    for change in install.of("file_changed"):
        assert change.kind is ChangeKind.WRITE
    assert names[:3] == ["file_changed", "pre_create", "post_create"]


def test_uninstall_waits_for_running_containers_and_dismounts_stopped_ones() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer())
    step = h.do(O.UninstallLayer(0))
    assert step.calls == []
    assert len(h.world.layers) == 1
    h.do(O.StopContainer(0))
    step = h.do(O.UninstallLayer(0))
    assert [c.kind for c in step.of("file_changed")] == [ChangeKind.DELETE] * 2
    assert h.world.layers == [] and h.world.containers == []


def test_host_file_id_reuse_is_announced() -> None:
    h = harness(O.HostCreate(name=0))
    f = h.world.host_files[0]
    deleted = h.do(O.HostDelete(0)).of("file_changed")
    assert deleted == [FileChange(f.volume_guid, f.file_id, f.path, ChangeKind.DELETE, None)]
    created = h.do(O.HostCreate(name=5)).of("file_changed")
    assert len(created) == 1
    assert created[0].file_id == f.file_id and created[0].kind is ChangeKind.WRITE
    assert created[0].path == O.host_path(5)


def test_container_file_delete_and_id_reuse() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), O.CreateFile(name=0))
    c = h.world.containers[0]
    first = h.open(0, O.new_file(0)).record.post.file_id
    step = h.do(O.DeleteFile(0, O.new_file(0)))
    assert step.of("file_changed") == [
        FileChange(c.guid, first, O.new_path(0), ChangeKind.DELETE, c.silo)]
    assert h.open(0, O.new_file(0)).calls == []  # deleted: nothing to open
    created = h.do(O.CreateFile(0, name=1)).of("file_changed")
    assert created == [FileChange(c.guid, first, O.new_path(1), ChangeKind.WRITE, c.silo)]


# --- §3: contents and scans ---------------------------------------------------------------
def test_scan_is_infected_iff_detectable_from_at_most_version() -> None:
    h = harness()
    step = h.do(O.InstallLayer(files=3, malware_file=1, delay=0))
    outcomes = [r.outcome for r in step.of("scan_completed")]
    assert outcomes == [ScanOutcome.CLEAN, ScanOutcome.INFECTED, ScanOutcome.CLEAN]
    contents = [f.content for f in h.world.layers[0].files.values()]
    assert contents[0].detectable_from is None
    assert contents[1].detectable_from == 1 and contents[1].infected


def test_malware_detectable_later_is_clean_until_then() -> None:
    h = harness(O.InstallLayer(files=1, malware_file=0, delay=1), O.StartContainer())
    content = h.world.layers[0].files[O.layer_path(0)].content
    assert content.detectable_from == 2
    assert content.clean == {1} and not content.infected
    h.do(O.SignatureUpdate())
    result = h.open().of("scan_completed")[0]
    assert result.outcome is ScanOutcome.INFECTED
    assert result.signature_version == 2
    assert content.infected


def test_failed_scans_report_error_and_cover_nothing() -> None:
    h = harness()
    install = h.do(O.InstallLayer(files=2, fail_file=0))
    assert [r.outcome for r in install.of("scan_completed")] == [
        ScanOutcome.ERROR, ScanOutcome.CLEAN]
    f0 = h.world.layers[0].files[O.layer_path(0)]
    assert f0.content.clean == set() and f0.content.errors == 1
    h.do(O.StartContainer())
    step = h.open(0, 0, fail=True)
    assert step.of("scan_completed")[0].outcome is ScanOutcome.ERROR
    assert step.record.covered is False


def test_create_path_order_and_scan_result() -> None:
    h = harness(O.InstallLayer(), O.StartContainer())
    scans = h.world.scans
    step = h.open()
    assert step.names == ["pre_create", "post_create", "scan_completed"]
    pre, post, result = (arg for _, arg in step.calls)
    rec = step.record
    assert rec.pre is pre and rec.post is post
    assert pre.create_id == post.create_id == result.create_id
    assert (result.volume_guid, result.file_id) == (post.volume_guid, post.file_id)
    assert result.origin is ScanOrigin.ON_ACCESS
    assert result.signature_version == 1 == rec.version
    assert result.outcome is ScanOutcome.CLEAN
    assert rec.verdict is Verdict.SCAN
    assert rec.request == EcpRequest(ECP_SIZE)
    assert h.world.scans == scans + 1


def test_skip_means_no_scan() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), verdict=Verdict.SKIP)
    scans = h.world.scans
    step = h.open()
    assert step.names == ["pre_create", "post_create"]
    assert step.record.verdict is Verdict.SKIP
    assert h.world.scans == scans == 0


def test_create_ids_are_unique_and_increasing() -> None:
    h = harness(O.InstallLayer(files=3), O.StartContainer(), O.OpenFile(0, 1),
                O.VolumeOpen(0, 1), O.HostCreate(), O.HostOpen())
    ids = [r.pre.create_id for r in h.records]
    assert ids == sorted(set(ids))


# --- §3: layers and containers --------------------------------------------------------------
def test_layer_install_delivers_change_then_ordinary_create_and_host_ids() -> None:
    h = harness()
    step = h.do(O.InstallLayer(files=2))
    layer = h.world.layers[0]
    vol = h.world.volumes[0].guid
    assert step.names == ["file_changed", "pre_create", "post_create", "scan_completed"] * 2
    for i, f in enumerate(layer.files.values()):
        change, pre, post, result = (arg for _, arg in step.calls[4 * i: 4 * i + 4])
        assert change == FileChange(vol, f.file_id, f.path, ChangeKind.WRITE, None)
        assert (pre.volume_guid, pre.path, pre.silo) == (vol, f.path, None)
        assert (post.volume_guid, post.file_id, post.silo, post.ecp) == (
            vol, f.file_id, None, None)
        assert result == ScanResult(pre.create_id, vol, f.file_id, 1, ScanOutcome.CLEAN,
                                    ScanOrigin.ON_ACCESS)
        rec = step.records[i]
        assert rec.provenance is Provenance.INSTALL
        assert rec.identity is f and rec.layer is layer
    # The ids a later ECP carries are the ones the install scan named.
    h.do(O.StartContainer())
    result = step.of("scan_completed")[1]
    assert acked(h.open(0, 1).ecp).ids == result.file_id + result.volume_guid


def test_layer_chain_upper_layers_override_lower() -> None:
    h = harness(O.InstallLayer(files=5), O.InstallLayer(files=2),
                O.StartContainer(layers=(1, 0)))
    lower, upper = h.world.layers
    c = h.world.containers[0]
    assert c.layers == (upper, lower)
    assert acked(h.open(0, 0).ecp).ids == host_key(h, 1, 0)
    assert acked(h.open(0, 4).ecp).ids == host_key(h, 0, 4)
    assert h.open(0, 7).calls == []  # no such file in the chain


def test_containers_have_their_own_volume_guids() -> None:
    h = harness(O.InstallLayer(), *[O.StartContainer() for _ in range(3)])
    guids = [c.guid for c in h.world.containers]
    assert len(set(guids)) == 3
    assert not set(guids) & {v.guid for v in h.world.volumes}


def test_starting_a_container_is_lazy() -> None:
    h = harness(O.InstallLayer(files=5))
    step = h.do(O.StartContainer())
    assert step.calls == []
    c = h.world.containers[0]
    assert c.entries == {}
    h.open(0, 3)
    assert list(c.entries) == [O.layer_path(3)]


def test_new_file_create_and_rewrite_are_announced() -> None:
    h = harness(O.InstallLayer(), O.StartContainer())
    c = h.world.containers[0]
    created = h.do(O.CreateFile(0, name=0)).of("file_changed")
    assert len(created) == 1
    assert (created[0].volume_guid, created[0].path, created[0].kind, created[0].silo) == (
        c.guid, O.new_path(0), ChangeKind.WRITE, c.silo)
    first = h.open(0, O.new_file(0)).record
    rewritten = h.do(O.CreateFile(0, name=0)).of("file_changed")
    assert rewritten == created
    second = h.open(0, O.new_file(0)).record
    assert second.post.file_id == first.post.file_id
    assert second.content is not first.content


def test_host_side_writes_and_deletes_are_announced() -> None:
    h = harness()
    vol = h.world.volumes[0].guid
    (create,) = h.do(O.HostCreate(name=3)).of("file_changed")
    f = h.world.host_files[0]
    assert create == FileChange(vol, f.file_id, O.host_path(3), ChangeKind.WRITE, None)
    old = f.content
    (write,) = h.do(O.HostWrite(0)).of("file_changed")
    assert write == create
    assert f.content is not old
    assert h.do(O.HostOpen(0)).record.content is f.content


def test_volume_write_on_stopped_container_is_copy_on_write_without_context() -> None:
    h = harness(O.InstallLayer(), O.StartContainer())
    c = h.world.containers[0]
    own = h.open().record.post.file_id
    h.do(O.StopContainer(0))
    (change,) = h.do(O.VolumeWrite(0, 0)).of("file_changed")
    assert change == FileChange(c.guid, own, O.layer_path(0), ChangeKind.WRITE, None)
    rec = h.do(O.VolumeOpen(0, 0)).record
    assert rec.content is c.entries[O.layer_path(0)].file.content
    assert rec.content is not h.world.layers[0].files[O.layer_path(0)].content


def test_tampering_reports_only_the_backing_host_file() -> None:
    h = harness(O.InstallLayer(files=2), O.StartContainer(), O.StartContainer())
    backing = h.world.layers[0].files[O.layer_path(1)]
    before = h.open(0, 1).record
    assert before.content is backing.content
    old = backing.content
    step = h.do(O.TamperLayerFile(0, 1, malware=True))
    assert step.calls == [("file_changed", FileChange(
        backing.volume_guid, backing.file_id, backing.path, ChangeKind.WRITE, None))]
    assert backing.content is not old
    assert backing.past == [old]  # its history keeps the content a scan may have cleared
    # The placeholder shows the new content, already materialized or not, same ids.
    after = h.open(0, 1)
    assert after.record.content is backing.content
    assert acked(after.ecp).ids == host_key(h, 0, 1)
    assert after.record.post.file_id == before.post.file_id
    assert after.of("scan_completed")[0].outcome is ScanOutcome.INFECTED
    assert h.open(1, 1).record.content is backing.content
    h.do(O.StopContainer(0))
    assert h.do(O.VolumeOpen(0, 1)).record.content is backing.content


# --- §3: signatures and proactive scans ---------------------------------------------------
def test_signature_update_notifies_the_new_version() -> None:
    h = harness(O.InstallLayer(files=2))
    step = h.do(O.SignatureUpdate())
    assert step.calls == [("signature_updated", 2)]
    assert h.world.version == 2


def test_signature_update_runs_proactive_scan_when_asked() -> None:
    h = harness(O.InstallLayer(files=2), proactive=True)
    step = h.do(O.SignatureUpdate())
    assert step.names == ["signature_updated", "scan_completed", "scan_completed",
                          "proactive_scan_completed"]
    assert step.of("proactive_scan_completed") == [2]
    assert all(r.signature_version == 2 for r in step.of("scan_completed"))
    step = h.do(O.SignatureUpdate(abort_after=1))
    assert step.names == ["signature_updated", "scan_completed", "proactive_scan_aborted"]
    assert step.of("proactive_scan_aborted") == [3]


def test_update_mid_scan_credits_the_version_the_scan_started_under() -> None:
    h = harness(O.InstallLayer(files=1, malware_file=0, delay=1), O.StartContainer())
    step = h.open(0, 0, update_mid_scan=True)
    assert step.names == ["pre_create", "post_create", "signature_updated", "scan_completed"]
    assert step.of("signature_updated") == [2]
    (result,) = step.of("scan_completed")
    assert result.signature_version == 1
    assert result.outcome is ScanOutcome.CLEAN  # detectable only from v2
    assert step.record.version == 1
    assert h.world.version == 2
    assert step.record.content.clean == {1}


def _proactive_world() -> Harness:
    return harness(O.InstallLayer(volume=0, files=3), O.InstallLayer(volume=1, files=2,
                                                                      registered=True),
                   O.InstallLayer(remote=True, files=4), O.StartContainer(),
                   O.StartContainer(hyperv=True), volumes=("NTFS", "ReFS"))


def test_proactive_scan_covers_every_local_layer_file_once() -> None:
    h = _proactive_world()
    h.do(O.SignatureUpdate())
    step = h.do(O.ProactiveScan())
    results = step.of("scan_completed")
    assert step.names == ["scan_completed"] * 5 + ["proactive_scan_completed"]
    assert step.of("proactive_scan_completed") == [2]
    assert step.records == []  # no creates
    local = [f for la in h.world.local_layers() for f in la.files.values()]
    assert sorted(r.file_id + r.volume_guid for r in results) == sorted(f.key for f in local)
    for r in results:
        assert r.create_id is None
        assert r.origin is ScanOrigin.PROACTIVE
        assert r.signature_version == 2
        assert r.outcome is ScanOutcome.CLEAN
    assert all(2 in f.content.clean for f in local)
    remote = h.world.remote_layers()[0]
    assert all(2 not in f.content.clean for f in remote.files.values())
    assert h.world.last_completed == 2


@pytest.mark.parametrize("abort_after", [0, 1, 4])
def test_aborted_proactive_scan(abort_after: int) -> None:
    h = _proactive_world()
    step = h.do(O.ProactiveScan(abort_after=abort_after))
    assert step.names == ["scan_completed"] * abort_after + ["proactive_scan_aborted"]
    assert step.of("proactive_scan_aborted") == [1]
    assert all(r.origin is ScanOrigin.PROACTIVE for r in step.of("scan_completed"))
    assert h.world.last_completed is None


def test_abort_after_all_files_completes() -> None:
    h = _proactive_world()
    step = h.do(O.ProactiveScan(abort_after=5))
    assert step.names[-1] == "proactive_scan_completed"
    assert len(step.of("scan_completed")) == 5


def test_proactive_scan_with_failing_file_and_midway_update() -> None:
    h = _proactive_world()
    step = h.do(O.ProactiveScan(fail_file=1, update_midway=True))
    results = step.of("scan_completed")
    assert [r.outcome for r in results] == [ScanOutcome.CLEAN, ScanOutcome.ERROR] + [
        ScanOutcome.CLEAN] * 3
    assert all(r.signature_version == 1 for r in results)
    assert step.of("signature_updated") == [2]
    assert step.names.index("signature_updated") == 2  # before the third of 5 files
    assert step.of("proactive_scan_completed") == [1]


def test_uninstalled_layers_leave_the_proactive_scan() -> None:
    h = harness(O.InstallLayer(files=2), O.InstallLayer(files=3))
    h.do(O.UninstallLayer(0))
    step = h.do(O.ProactiveScan())
    assert len(step.of("scan_completed")) == 3


def test_proactive_scan_malware_found_under_new_signatures() -> None:
    h = harness(O.InstallLayer(files=2, malware_file=1, delay=1))
    h.do(O.SignatureUpdate())
    results = h.do(O.ProactiveScan()).of("scan_completed")
    assert [r.outcome for r in results] == [ScanOutcome.CLEAN, ScanOutcome.INFECTED]


# --- hostile profile ------------------------------------------------------------------------
HOSTILE_SCENE = (
    O.InstallLayer(files=2),                            # L1 local
    O.InstallLayer(files=2, registered=True),           # L2 registered
    O.InstallLayer(files=2, remote=True),               # L3 remote
    O.InstallLayer(files=2, remote=True, registered=True),  # L4 remote registered
    O.HostCreate(name=0),
    O.StartContainer(layers=(0,)),                      # C1 on L1
    O.StartContainer(layers=(1,)),                      # C2 on L2
    O.StartContainer(layers=(0,), hyperv=True),         # C3 on L3
    O.StartContainer(layers=(1,), hyperv=True),         # C4 on L4
    O.OpenFile(0, 0),                                   # leaves a clean layer file behind
    O.WriteFile(0, 1),                                  # C1 f1 copied on write
    O.CreateFile(0, name=0),
)


def _hostile_opens(fuzz: int) -> list[O.Op]:
    return [
        O.OpenFile(0, 0, fuzz=fuzz), O.OpenFile(0, 1, fuzz=fuzz),
        O.OpenFile(0, O.new_file(0), fuzz=fuzz), O.OpenFile(1, 0, fuzz=fuzz),
        O.OpenFile(2, 1, fuzz=fuzz), O.OpenFile(3, 0, fuzz=fuzz),
        O.OpenUserMode(0, fuzz=fuzz), O.OpenMapped(1, 0, fuzz=fuzz),
    ]


_PROVENANCE_OF = {
    LAYER: {Provenance.LAYER},
    LAYER | REGISTERED: {Provenance.REGISTERED},
    LAYER | REMOTE: {Provenance.REMOTE},
    LAYER | REMOTE | REGISTERED: {Provenance.REMOTE},
    SCRATCH: {Provenance.SCRATCH},
}


def check_hostile_record(rec: CreateRecord) -> bool:
    """Returns whether the record carried an acknowledged ECP with a valid combination."""
    ecp = rec.post.ecp
    if ecp is None:
        return False
    reparsed = RedirectionEcp.parse(ecp.raw, ecp.acknowledged)  # must not raise
    assert reparsed == ecp
    repr(ecp)
    if not ecp.acknowledged:
        return False
    if not ecp.complete:
        assert len(ecp.raw) < ECP_SIZE  # a truncated buffer is detectable
        return False
    if ecp.flags not in VALID_FLAG_COMBINATIONS:
        return False
    assert rec.provenance in _PROVENANCE_OF[ecp.flags], (ecp, rec.provenance)
    true_ids = ZERO_IDS
    if rec.provenance in (Provenance.LAYER, Provenance.REGISTERED):
        assert rec.identity is not None
        true_ids = rec.identity.key
    assert ecp.ids in (true_ids, ZERO_IDS), (ecp, rec.provenance)
    return True


@pytest.mark.parametrize("kind", range(8))
def test_hostile_ecps_never_lie_undetectably(kind: int) -> None:
    h = harness(*HOSTILE_SCENE, profile="hostile")
    for fuzz in (kind, kind + 8, kind + 16, kind + 8 * 29):
        step = h.do(*_hostile_opens(fuzz))
        assert len(step.records) == 8
        for rec in step.records:
            check_hostile_record(rec)


def test_hostile_profile_actually_fuzzes() -> None:
    h = harness(*HOSTILE_SCENE, profile="hostile")
    seen_unknown = seen_short = seen_contradiction = seen_garbage = seen_zeroed = False
    seen_size = False
    for fuzz in range(1, 48):
        for rec in h.do(*_hostile_opens(fuzz)).records:
            ecp = rec.post.ecp
            assert ecp is not None
            seen_unknown |= bool(int(ecp.flags) & ~0x1F)
            seen_short |= len(ecp.raw) < ECP_SIZE
            seen_contradiction |= ecp.acknowledged and ecp.flags in (
                LAYER | SCRATCH, LAYER | USER_MODE) and ecp.ids != ZERO_IDS
            seen_garbage |= not ecp.acknowledged and ecp.ids != ZERO_IDS
            seen_zeroed |= (ecp.acknowledged and ecp.flags == LAYER and ecp.complete
                            and ecp.ids == ZERO_IDS)
            seen_size |= ecp.acknowledged and ecp.complete and ecp.size != ECP_SIZE
    assert seen_unknown and seen_short and seen_contradiction
    assert seen_garbage and seen_zeroed and seen_size


def test_unfuzzed_opens_in_hostile_profile_are_documented_behaviour() -> None:
    h = harness(*HOSTILE_SCENE, profile="hostile")
    step = h.do(*_hostile_opens(0))
    flags = [rec.post.ecp.flags for rec in step.records if rec.post.ecp is not None]
    assert flags == [LAYER, SCRATCH, SCRATCH, LAYER | REGISTERED, LAYER | REMOTE,
                     LAYER | REMOTE | REGISTERED, USER_MODE, NO_FLAGS]


def test_other_profiles_never_fuzz() -> None:
    for profile in ("wcifs", "no-registered-flag"):
        h = harness(*HOSTILE_SCENE, profile=profile)
        step = h.do(*_hostile_opens(1), *_hostile_opens(5), *_hostile_opens(3))
        for rec in step.records:
            ecp = rec.post.ecp
            assert ecp is not None and ecp.complete and ecp.size == ECP_SIZE
            if not ecp.acknowledged:
                assert ecp.ids == ZERO_IDS and ecp.flags == NO_FLAGS
            else:
                assert ecp.flags in VALID_FLAG_COMBINATIONS | {USER_MODE}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz=st.lists(st.integers(0, 2**16), min_size=1, max_size=4))
def test_hostile_property_any_fuzz_value(fuzz: list[int]) -> None:
    h = harness(*HOSTILE_SCENE, profile="hostile")
    for f in fuzz:
        for rec in h.do(*_hostile_opens(f)).records:
            check_hostile_record(rec)


# --- random operation sequences -------------------------------------------------------------
_b = st.booleans()
#: Every operation, as the suite's own generator draws it.
OPS = strategies.operations()
#: Something to open from the first step: random operations then hit real files.
PRELUDE = (
    O.InstallLayer(volume=0, files=2), O.InstallLayer(volume=1, files=4, registered=True),
    O.InstallLayer(files=2, remote=True), O.HostCreate(),
    O.StartContainer(layers=(0, 1)), O.StartContainer(layers=(0,), hyperv=True),
)
_open = st.builds(O.OpenFile, container=st.integers(0, 3), file=st.integers(-3, 4),
                  fail=_b, update_mid_scan=_b, fuzz=st.integers(0, 47))
SEQUENCES = st.lists(st.one_of(_open, _open, OPS), min_size=3, max_size=30).map(
    lambda ops: [*PRELUDE, *ops])
SETUPS = strategies.setups()
RANDOM = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class LoggingRecorder(Recorder):
    """Also logs each create record in the same stream, right after its post-create."""

    def record(self, rec: CreateRecord) -> None:
        self.calls.append(("record", rec))


def _run(setup: O.Setup, ops: list[O.Op], verdicts: list[bool], proactive: bool,
         always_ecp: bool = False) -> LoggingRecorder:
    script = [Verdict.SCAN if v else Verdict.SKIP for v in verdicts]
    adapter = LoggingRecorder(proactive=proactive, always_ecp=always_ecp, script=script)
    world = World(setup, adapter, on_create=adapter.record)
    world.run(ops)
    world.stop()
    return adapter


def _plain(value: object) -> None:
    """Frozen data of bytes, ints, strings, enums and None only (nested ECPs included)."""
    if value is None or type(value) in (bytes, int, str, bool) or isinstance(value, enum.Enum):
        return
    assert dataclasses.is_dataclass(value) and not isinstance(value, type), value
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, f.name, v)
        _plain(v)


@RANDOM
@given(setup=SETUPS, ops=SEQUENCES, verdicts=st.lists(_b, max_size=8),
       proactive=_b)
def test_everything_handed_to_the_adapter_is_frozen_plain_data(
        setup: O.Setup, ops: list[O.Op], verdicts: list[bool], proactive: bool) -> None:
    adapter = _run(setup, ops, verdicts, proactive)
    for name, arg in adapter.calls:
        if name in ("start", "record", "stop"):
            continue
        if name in ("signature_updated", "proactive_scan_completed", "proactive_scan_aborted"):
            assert type(arg) is int
            continue
        assert isinstance(arg, (PreCreate, PostCreate, ScanResult, FileChange)), arg
        _plain(arg)


def test_frozen_records_reject_assignment() -> None:
    h = harness(O.InstallLayer(), O.StartContainer(), O.OpenFile(), O.WriteFile())
    seen = set()
    for name, arg in h.adapter.calls:
        if name in ("pre_create", "post_create", "scan_completed", "file_changed"):
            seen.add(type(arg))
            _plain(arg)
    assert seen == {PreCreate, PostCreate, ScanResult, FileChange}
    ecp = h.records[-1].post.ecp
    with pytest.raises(dataclasses.FrozenInstanceError):
        ecp.flags = Flags(0)  # type: ignore[misc]


@RANDOM
@given(setup=SETUPS, ops=SEQUENCES, verdicts=st.lists(_b, max_size=8),
       proactive=_b)
def test_model_is_deterministic(setup: O.Setup, ops: list[O.Op], verdicts: list[bool],
                                proactive: bool) -> None:
    a = _run(setup, ops, verdicts, proactive)
    b = _run(setup, ops, verdicts, proactive)
    strip = [(n, x) for n, x in a.calls if n not in ("start", "record")]
    assert strip == [(n, x) for n, x in b.calls if n not in ("start", "record")]


@RANDOM
@given(setup=SETUPS, ops=SEQUENCES, verdicts=st.lists(_b, max_size=8),
       proactive=_b)
def test_hostile_property_random_sequences(setup: O.Setup, ops: list[O.Op],
                                           verdicts: list[bool], proactive: bool) -> None:
    adapter = _run(dataclasses.replace(setup, profile="hostile"), ops, verdicts, proactive)
    for name, rec in adapter.calls:
        if name != "record":
            continue
        valid = check_hostile_record(rec)
        ecp = rec.post.ecp
        # The contract's fast path (``layer_key``) trusts exactly the ECPs judged valid here.
        if ecp is not None and ecp.flags == Flags.SERVICED_FROM_LAYER:
            assert (ecp.layer_key is not None) == valid, (ecp, rec.provenance)
        elif ecp is not None:
            assert ecp.layer_key is None, ecp


@RANDOM
@given(setup=SETUPS, ops=SEQUENCES, verdicts=st.lists(_b, max_size=8),
       proactive=_b)
def test_content_changes_are_announced_before_the_next_create(
        setup: O.Setup, ops: list[O.Op], verdicts: list[bool], proactive: bool) -> None:
    """Visibility (§3): when the content behind an identity changed between two creates,
    a FileChange naming that identity came in between."""
    adapter = _run(setup, ops, verdicts, proactive)
    last: dict[bytes, Any] = {}
    announced: set[bytes] = set()
    for name, arg in adapter.calls:
        if name == "file_changed":
            announced.add(arg.file_id + arg.volume_guid)
        elif name == "record":
            rec: CreateRecord = arg
            if rec.identity is None or rec.identity.volume_guid == ZERO_ID:
                continue  # remote-layer files have no identity on this host
            key = rec.identity.key
            if key in last and last[key] is not rec.content:
                assert key in announced, (rec.provenance, rec.post.path)
            last[key] = rec.content
            announced.discard(key)


@RANDOM
@given(setup=SETUPS, ops=SEQUENCES)
def test_ecp_facts_hold_in_documented_profiles(setup: O.Setup, ops: list[O.Op]) -> None:
    """§2 in one property: acknowledged ⇔ wcifs handled it; flags follow provenance; ids
    only for local/registered layer files."""
    setup = dataclasses.replace(setup, profile="wcifs")
    adapter = _run(setup, ops, [True], False, always_ecp=True)
    expected = {
        Provenance.LAYER: LAYER, Provenance.REGISTERED: LAYER | REGISTERED,
        Provenance.SCRATCH: SCRATCH, Provenance.USER_MODE: USER_MODE,
    }
    for name, rec in adapter.calls:
        if name != "record":
            continue
        ecp = rec.post.ecp
        assert ecp is not None  # always_ecp
        handled = rec.pre.silo is not None and rec.provenance not in (Provenance.MAPPED,)
        assert ecp.acknowledged is handled
        if not handled:
            assert ecp.flags == NO_FLAGS and ecp.ids == ZERO_IDS
            continue
        if rec.provenance is Provenance.REMOTE:
            assert ecp.flags & ~REGISTERED == LAYER | REMOTE
            assert ecp.ids == ZERO_IDS
        else:
            assert ecp.flags == expected[rec.provenance]
            if rec.provenance in (Provenance.LAYER, Provenance.REGISTERED):
                assert ecp.ids == rec.identity.key
            else:
                assert ecp.ids == ZERO_IDS


def test_reference_package_imports_no_test_framework() -> None:
    code = ("import sys, reference, reference.model, reference.adapter, reference.ops;"
            "print(sorted(m for m in ('pytest', 'hypothesis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "[]"
