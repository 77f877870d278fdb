"""The reference model of a container host (SPEC §2–§3).

A :class:`World` holds host volumes, package layers, containers and the truth about every
content: which scans *this adapter's product* ran on it and what they found. Applying an
operation drives the adapter through the callbacks of SPEC §4 in the order of SPEC §3 and
reports every create to an optional ``on_create`` hook, which is where an oracle judges.

The adapter only ever receives frozen records of bytes, ints and strings; the objects in
this module never leave it.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import ops as O
from .contract import (
    ECP_SIZE,
    LAYER_ROOT_LOCATIONS_KEY,
    ZERO_ID,
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

_VALID_LAYER_ECP = frozenset({Flags.SERVICED_FROM_LAYER,
                              Flags.SERVICED_FROM_LAYER | Flags.SERVICED_FROM_REGISTERED_LAYER})

LAYER = Flags.SERVICED_FROM_LAYER
SCRATCH = Flags.SERVICED_FROM_SCRATCH
REGISTERED = Flags.SERVICED_FROM_REGISTERED_LAYER
REMOTE = Flags.SERVICED_FROM_REMOTE_LAYER
USER_MODE = Flags.SERVICED_FROM_USER_MODE

_GUID_NS = uuid.UUID("5b0c1d3e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
_FIRST_ID = 0x100


def volume_guid(kind: str, index: int) -> bytes:
    """Deterministic GUID (``bytes_le`` layout) for host or container volume ``index``."""
    return uuid.uuid5(_GUID_NS, f"{kind}-{index}").bytes_le


def file_id(value: int) -> bytes:
    """FILE_ID_128: 16 bytes little-endian, bytes 0–7 the low 64 bits."""
    return value.to_bytes(16, "little")


def low64(fid: bytes) -> bytes:
    return fid[:8]


class Adapter(Protocol):
    def start(self, services: Any) -> None: ...
    def pre_create(self, create: PreCreate) -> EcpRequest | None: ...
    def post_create(self, create: PostCreate) -> Verdict: ...
    def scan_completed(self, result: ScanResult) -> None: ...
    def file_changed(self, change: FileChange) -> None: ...
    def signature_updated(self, version: int) -> bool: ...
    def proactive_scan_completed(self, version: int) -> None: ...
    def proactive_scan_aborted(self, version: int) -> None: ...
    def stop(self) -> None: ...


class Provenance(enum.Enum):
    """Where the bytes an open exposes really come from (the model's truth, never the ECP's)."""

    LAYER = "local layer"
    REGISTERED = "registered layer"
    REMOTE = "remote layer"
    SCRATCH = "scratch"
    USER_MODE = "user-mode (cloud) file"
    MAPPED = "host file through a mapped directory"
    HOST = "host file"
    INSTALL = "layer file as laid out at install"
    CONTAINER_VOLUME = "container-volume file, non-container open"


REDIRECTED = frozenset({Provenance.LAYER, Provenance.REGISTERED, Provenance.REMOTE})


@dataclass(slots=True, eq=False)
class Content:
    """An immutable blob and what this product's scans found in it."""

    cid: int
    detectable_from: int | None
    origin: str
    clean: set[int] = field(default_factory=set)
    infected: bool = False
    errors: int = 0

    def describe(self) -> str:
        det = "clean forever" if self.detectable_from is None else (
            f"malware detectable from v{self.detectable_from}"
        )
        return f"content #{self.cid} ({self.origin}; {det})"


@dataclass(slots=True, eq=False)
class FileObj:
    """A file with an identity: a host file, or a container-volume file."""

    volume_guid: bytes
    file_id: bytes
    path: str
    content: Content
    past: list[Content] = field(default_factory=list)

    @property
    def key(self) -> bytes:
        """``FileId + VolumeGuid``: the same layout as the ECP's id bytes."""
        return self.file_id + self.volume_guid

    def replace(self, content: Content) -> None:
        self.past.append(self.content)
        self.content = content


@dataclass(slots=True, eq=False)
class HostVolume:
    index: int
    fs: str
    guid: bytes
    next_lo: int = _FIRST_ID
    next_dir: int = 1
    free: list[int] = field(default_factory=list)
    free_dirs: list[int] = field(default_factory=list)

    def alloc(self) -> bytes:
        if self.free:
            return file_id(self.free.pop())
        self.next_lo += 1
        return file_id(self.next_lo - 1)

    def alloc_layer(self, n: int) -> tuple[list[bytes], int]:
        """Ids for a layer's files, numbered within the layer's directory. On ReFS the
        directory is the upper 64 bits, so files of different layers share their low 64
        bits; on NTFS it sits above bit 32 of a 64-bit id. Either way the first layer on
        every volume gets the same ids as the first layer on the others."""
        d = self.free_dirs.pop() if self.free_dirs else self._new_dir()
        shift = 64 if self.fs == "ReFS" else 32
        return [file_id((d << shift) | (_FIRST_ID + i)) for i in range(n)], d

    def _new_dir(self) -> int:
        self.next_dir += 1
        return self.next_dir - 1

    def release(self, fid: bytes) -> None:
        """Free a single file's id (layer ids come back with their directory)."""
        self.free.append(int.from_bytes(fid, "little"))


@dataclass(slots=True, eq=False)
class Layer:
    serial: int
    remote: bool
    registered: bool
    volume: HostVolume | None
    install_version: int
    files: dict[str, FileObj]
    #: The layer's id directory on its volume (freed, and reused, at uninstall).
    directory: int = 0
    containers_started: int = 0

    @property
    def name(self) -> str:
        return f"L{self.serial}"


class EntryKind(enum.Enum):
    PLACEHOLDER = "placeholder"
    SCRATCH = "scratch"
    USER_MODE = "user-mode"
    DELETED = "deleted"


@dataclass(slots=True, eq=False)
class Entry:
    """A materialized path on a container volume."""

    kind: EntryKind
    file: FileObj
    backing: FileObj | None = None
    backing_layer: Layer | None = None
    #: Served from a layer in this container before it was copied on write.
    cow_from_layer: bool = False
    old_backing: FileObj | None = None


@dataclass(slots=True, eq=False)
class Container:
    serial: int
    silo: int
    hyperv: bool
    layers: tuple[Layer, ...]
    guid: bytes
    running: bool = True
    #: First container on freshly installed layers (EFF-4).
    first_on_fresh: bool = False
    next_id: int = _FIRST_ID
    free: list[int] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"C{self.serial}"

    def alloc(self) -> bytes:
        if self.free:
            return file_id(self.free.pop())
        self.next_id += 1
        return file_id(self.next_id - 1)

    def backing_for(self, path: str) -> tuple[Layer, FileObj] | None:
        for layer in self.layers:
            f = layer.files.get(path)
            if f is not None:
                return layer, f
        return None


@dataclass(slots=True, eq=False)
class CreateRecord:
    """One create as the truth knows it, handed to ``on_create`` after the verdict."""

    pre: PreCreate
    request: EcpRequest | None
    post: PostCreate
    provenance: Provenance
    content: Content
    #: The file whose identity the content belongs to (backing file for layer opens).
    identity: FileObj | None
    container: Container | None
    layer: Layer | None
    verdict: Verdict
    version: int
    cow_from_layer: bool = False
    #: Scratch entry copied on write from a placeholder (hostile fuzz may echo these ids).
    old_backing: FileObj | None = None
    #: The identity SAFE-11 judges a SKIP by: the backing ids for a layer open, the opened
    #: file's own ids otherwise, None for a remote-layer open (it carries no identity).
    finding_key: bytes | None = None

    @property
    def covered(self) -> bool:
        return self.version in self.content.clean


@dataclass(slots=True, eq=False)
class Scan:
    """An on-access scan: its truth is settled, and its result delivered, by ``deliver``."""

    create_id: int
    volume: bytes
    file_id: bytes
    version: int
    content: Content
    fail: bool
    #: The file the scan truly concerns (the backing file of a placeholder).
    identity: FileObj
    #: Where a finding is recorded: the backing ids if the ECP named them truly and
    #: validly, the opened file's own ids otherwise (what the adapter could attribute).
    finding: bytes
    prov: Provenance
    #: The ECP claimed ids other than those of the file scanned (a hostile decoy).
    claimed: bool


@dataclass(slots=True)
class Services:
    """The host services handed to ``start``; records every registry read."""

    world: World
    registry: dict[str, object] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def read_registry(self, key: str) -> object | None:
        self.reads.append(key)
        return self.registry.get(key)

    def signature_version(self) -> int:
        return self.world.version


# --- the operation registry --------------------------------------------------------------
_F = TypeVar("_F", bound=Callable[..., Any])

#: How :meth:`World.apply` runs each operation class, and how a trace describes it: each
#: filled by a decorator on the ``World`` method that does it (:func:`handles`,
#: :func:`describes`). :func:`check_registry` runs when this module is imported.
HANDLERS: dict[type[O.Op], Callable[[World, Any], None]] = {}
DESCRIBERS: dict[type[O.Op], Callable[[World, Any], str]] = {}


def _registrar(table: dict[type[O.Op], Any], role: str, classes: tuple[type[O.Op], ...]
               ) -> Callable[[_F], _F]:
    if not classes:
        raise TypeError(f"a {role} must name the operation classes it is for")
    for cls in classes:
        if not isinstance(cls, type) or O.OPS.get(getattr(cls, "kind", "")) is not cls:
            raise TypeError(f"{cls!r} is not a registered operation: decorate its record with "
                            "@operation in reference/ops.py")

    def wrap(fn: _F) -> _F:
        for cls in classes:
            if cls in table:
                raise TypeError(f"operation {cls.kind!r} has two {role}s: "
                                f"{table[cls].__qualname__} and {fn.__qualname__}")
            table[cls] = fn
        return fn

    return wrap


def handles(*classes: type[O.Op]) -> Callable[[_F], _F]:
    """Decorates the ``World`` method that applies these operations: ``(self, op) -> None``."""
    return _registrar(HANDLERS, "handler", classes)


def describes(*classes: type[O.Op]) -> Callable[[_F], _F]:
    """Decorates the ``World`` method that describes these operations for a trace, as the
    world stands before they apply: ``(self, op) -> str``, naming what they act on."""
    return _registrar(DESCRIBERS, "description", classes)


def check_registry() -> None:
    """Raise ``TypeError`` naming every registered operation (``reference.ops.OPS``)
    without a handler or a description: there is no fallback for either."""
    missing = [
        f"{kind!r} ({cls.__qualname__}) has no {role}: decorate a World method with "
        f"@{deco}(O.{cls.__name__})"
        for kind, cls in O.OPS.items()
        for table, role, deco in ((HANDLERS, "handler", "handles"),
                                  (DESCRIBERS, "description", "describes"))
        if cls not in table
    ]
    if missing:
        raise TypeError("operations not fully registered:\n  " + "\n  ".join(missing))


class World:
    """The container host. ``apply(op)`` runs one operation against ``adapter``."""

    def __init__(
        self,
        setup: O.Setup,
        adapter: Adapter,
        on_create: Callable[[CreateRecord], None] | None = None,
        *,
        spoil: tuple[frozenset[bytes], bool] | None = None,
        hide_aborts: bool = False,
    ) -> None:
        self.setup = setup
        self.profile = setup.profile
        self.hostile = setup.profile == "hostile"
        self.adapter = adapter
        self.on_create = on_create
        self.version = setup.version
        self.volumes = [
            HostVolume(i, fs, volume_guid("host", i)) for i, fs in enumerate(setup.volumes)
        ]
        self.layers: list[Layer] = []
        self.containers: list[Container] = []
        self._running_list: list[Container] = []
        self.host_files: list[FileObj] = []
        #: How many live layer files carry each FileId, and each low 64 bits of one: the
        #: collisions a wrongly keyed cache walks into (kept, so a lookup is O(1)).
        self.layer_ids: Counter[bytes] = Counter()
        self.layer_low64: Counter[bytes] = Counter()
        self._content_serial = 0
        self._layer_serial = 0
        self._container_serial = 0
        self._create_id = 0
        #: Newest version a proactive scan *completed* under (None: none yet).
        self.last_completed: int | None = None
        #: The last proactive scan that started under the current version was aborted.
        self.aborted_at: int | None = None
        #: Last completed proactive scan saw a signature update land mid-scan.
        self.completed_across_update = False
        self.last_clean: FileObj | None = None
        #: (identity key, content serial) of every finding of this product (SAFE-11).
        self.findings: set[tuple[bytes, int]] = set()
        #: Diagnosis probes only: ``(keys, others)`` turns every clean result about the
        #: files with ``keys`` (or, with ``others``, about every other file) into ERROR, to
        #: see whether a SKIP rested on that file's own scans or on another's.
        self.spoil = spoil
        #: Diagnosis probes only: aborted proactive scans end without a word to the adapter.
        self.hide_aborts = hide_aborts
        #: Exercise counts the model itself observes (the checker drains it after each op).
        self.ex: Counter[str] = Counter()
        self.services = Services(self)
        self.services.registry[LAYER_ROOT_LOCATIONS_KEY] = "C:\\ProgramData\\Layers"
        self.scans = 0
        adapter.start(self.services)

    # --- helpers ------------------------------------------------------------------------
    def id_shared(self, f: FileObj) -> bool:
        """Another live layer file has this file's FileId (any volume) or its low 64 bits."""
        return self.layer_ids[f.file_id] > 1 or self.layer_low64[low64(f.file_id)] > 1

    def _content(self, origin: str, malware: bool = False, delay: int = 0) -> Content:
        self._content_serial += 1
        det = self.version + max(0, delay) if malware else None
        return Content(self._content_serial, det, origin)

    def _change(self, f: FileObj, kind: ChangeKind, silo: int | None) -> None:
        self.adapter.file_changed(FileChange(f.volume_guid, f.file_id, f.path, kind, silo))

    def _pick(self, items: list[Any], index: int) -> Any:
        return items[index % len(items)] if items else None

    def local_layers(self) -> list[Layer]:
        return [la for la in self.layers if not la.remote]

    def remote_layers(self) -> list[Layer]:
        return [la for la in self.layers if la.remote]

    def found_infected(self, key: bytes | None, content: Content) -> bool:
        """A scan of this product found ``content`` infected as the file with ``key``."""
        return key is not None and (key, content.cid) in self.findings

    def _result(self, result: ScanResult, key: bytes) -> ScanResult:
        spoil = self.spoil
        if spoil is not None and (key not in spoil[0]) is spoil[1] and (
                result.outcome is ScanOutcome.CLEAN):
            return ScanResult(result.create_id, result.volume_guid, result.file_id,
                              result.signature_version, ScanOutcome.ERROR, result.origin)
        return result

    def _scan(self, content: Content, version: int, fail: bool) -> ScanOutcome:
        self.scans += 1
        if fail:
            content.errors += 1
            return ScanOutcome.ERROR
        det = content.detectable_from
        if det is not None and det <= version:
            content.infected = True
            return ScanOutcome.INFECTED
        content.clean.add(version)
        return ScanOutcome.CLEAN

    # --- operations -----------------------------------------------------------------
    def apply(self, op: O.Op) -> None:
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise TypeError(f"no handler for operation {op!r}: see reference.model.handles")
        handler(self, op)

    def run(self, ops: Iterable[O.Op]) -> None:
        for op in ops:
            self.apply(op)

    def describe(self, op: O.Op) -> str:
        """A readable line for a trace; call before ``apply`` to name what it resolves to."""
        return describe_op(self, op)

    # Each operation's handler (``@handles``) is followed by its description
    # (``@describes``), which names what it acts on as the world stands before it applies.
    def _container_name(self, i: int, running: bool = True) -> str:
        pool = [c for c in self.containers if c.running] if running else self.containers
        if not pool:
            return "(no container)"
        c = pool[i % len(pool)]
        return f"{c.name}{'' if c.running else ' (stopped)'}"

    def _layer_name(self, i: int, pool: list[Layer] | None = None) -> str:
        pool = self.layers if pool is None else pool
        return pool[i % len(pool)].name if pool else "(no layer)"

    def _host_file_name(self, i: int) -> str:
        f = self._pick(self.host_files, i)
        return f.path if f else "(no host file)"

    def _malware_note(self, op: Any) -> str:
        return f", malware detectable from v{self.version + op.delay}" if op.malware else ""

    @handles(O.InstallLayer)
    def _op_install_layer(self, op: O.InstallLayer) -> None:
        self._layer_serial += 1
        n = O.bulk(op.files)
        name = f"L{self._layer_serial}"
        paths = [O.layer_path(i) for i in range(n)]
        every = op.malware_every

        def malware(i: int) -> bool:
            return op.malware_file == i or (every > 0 and (i + 1) % every == 0)

        if op.remote:
            files = {
                p: FileObj(ZERO_ID, ZERO_ID, p, self._content(f"{name}{p}", malware(i), op.delay))
                for i, p in enumerate(paths)
            }
            self.layers.append(Layer(self._layer_serial, True, op.registered, None,
                                     self.version, files))
            return
        vol = self.volumes[op.volume % len(self.volumes)]
        ids, d = vol.alloc_layer(n)
        layer = Layer(self._layer_serial, False, op.registered, vol, self.version, {}, d)
        self.layers.append(layer)
        for i, (p, fid) in enumerate(zip(paths, ids, strict=True)):
            f = FileObj(vol.guid, fid, f"\\Layers\\{name}{p}",
                        self._content(f"{name}{p}", malware(i), op.delay))
            layer.files[p] = f
            self.layer_ids[fid] += 1
            self.layer_low64[low64(fid)] += 1
            self._change(f, ChangeKind.WRITE, None)
            self._host_open(f, Provenance.INSTALL, fail=op.fail_file == i, layer=layer)

    @describes(O.InstallLayer)
    def _describe_install_layer(self, op: O.InstallLayer) -> str:
        vol = op.volume % len(self.volumes)
        where = "remote host" if op.remote else f"host volume H{vol} ({self.volumes[vol].fs})"
        extra = ""
        if op.malware_file >= 0:
            extra += f", file {op.malware_file} malware from v{self.version + op.delay}"
        if op.malware_every > 0:
            extra += f", every {op.malware_every}th file malware from v{self.version + op.delay}"
        if op.fail_file >= 0:
            extra += f", install scan of file {op.fail_file} fails"
        reg = "registered " if op.registered else ""
        return (f"install {reg}{'remote ' if op.remote else 'local '}layer "
                f"L{self._layer_serial + 1} ({O.bulk(op.files)} files) "
                f"on {where}{extra}")

    @handles(O.RegisterLayer)
    def _op_register_layer(self, op: O.RegisterLayer) -> None:
        layer = self._pick(self.layers, op.layer)
        if layer is not None:
            layer.registered = True

    @describes(O.RegisterLayer)
    def _describe_register_layer(self, op: O.RegisterLayer) -> str:
        return f"register layer {self._layer_name(op.layer)}"

    @handles(O.UnregisterLayer)
    def _op_unregister_layer(self, op: O.UnregisterLayer) -> None:
        layer = self._pick(self.layers, op.layer)
        if layer is not None:
            layer.registered = False

    @describes(O.UnregisterLayer)
    def _describe_unregister_layer(self, op: O.UnregisterLayer) -> str:
        return f"unregister layer {self._layer_name(op.layer)}"

    @handles(O.TamperLayerFile)
    def _op_tamper_layer_file(self, op: O.TamperLayerFile) -> None:
        layer = self._pick(self.local_layers(), op.layer)
        if layer is None:
            return
        self._tamper(layer, self._pick(list(layer.files.values()), op.file), op.malware,
                     op.delay)

    @describes(O.TamperLayerFile)
    def _describe_tamper_layer_file(self, op: O.TamperLayerFile) -> str:
        where = self._layer_name(op.layer, self.local_layers())
        return (f"host writes {O.layer_path(op.file)} of layer {where} on its host volume"
                f"{self._malware_note(op)}")

    def _tamper(self, layer: Layer, f: FileObj, malware: bool, delay: int) -> None:
        """A write to a local layer file on its host volume."""
        f.replace(self._content(f"tampered {layer.name} {f.path}", malware, delay))
        self._change(f, ChangeKind.WRITE, None)

    @handles(O.UninstallLayer)
    def _op_uninstall_layer(self, op: O.UninstallLayer) -> None:
        layer = self._pick(self.layers, op.layer)
        if layer is None or any(c.running and layer in c.layers for c in self.containers):
            return
        # Stopped containers on it are dismounted with it.
        self.containers = [c for c in self.containers if layer not in c.layers]
        self.layers.remove(layer)
        if layer.volume is None:
            return
        for f in layer.files.values():
            self.layer_ids[f.file_id] -= 1
            self.layer_low64[low64(f.file_id)] -= 1
            self._change(f, ChangeKind.DELETE, None)
        layer.volume.free_dirs.append(layer.directory)

    @describes(O.UninstallLayer)
    def _describe_uninstall_layer(self, op: O.UninstallLayer) -> str:
        return f"uninstall layer {self._layer_name(op.layer)}"

    @handles(O.StartContainer)
    def _op_start_container(self, op: O.StartContainer) -> None:
        pool = self.remote_layers() if op.hyperv else self.local_layers()
        if not pool:
            return
        chain: list[Layer] = []
        for i in op.layers[:4] or (0,):
            la = pool[i % len(pool)]
            if la not in chain:
                chain.append(la)
        self._container_serial += 1
        s = self._container_serial
        fresh = all(la.containers_started == 0 and la.install_version == self.version
                    for la in chain)
        for la in chain:
            la.containers_started += 1
        c = Container(s, s, op.hyperv, tuple(chain), volume_guid("container", s),
                      first_on_fresh=fresh)
        self.containers.append(c)
        self._running_list.append(c)

    @describes(O.StartContainer)
    def _describe_start_container(self, op: O.StartContainer) -> str:
        kind, chain = self._chain_names(op.layers, op.hyperv)
        return f"start {kind} container C{self._container_serial + 1} on [{chain}]"

    def _chain_names(self, layers: tuple[int, ...], hyperv: bool) -> tuple[str, str]:
        pool = self.remote_layers() if hyperv else self.local_layers()
        chain = ", ".join(dict.fromkeys(self._layer_name(i, pool) for i in layers[:4] or (0,)))
        return ("Hyper-V" if hyperv else "process-isolated"), chain

    @handles(O.StartContainers)
    def _op_start_containers(self, op: O.StartContainers) -> None:
        one = O.StartContainer(op.layers, op.hyperv)
        for _ in range(O.bulk(op.count)):
            self._op_start_container(one)

    @describes(O.StartContainers)
    def _describe_start_containers(self, op: O.StartContainers) -> str:
        kind, chain = self._chain_names(op.layers, op.hyperv)
        first = self._container_serial + 1
        n = O.bulk(op.count)
        return f"start {n} {kind} containers C{first}..C{first + n - 1} on [{chain}]"

    @handles(O.StopContainer)
    def _op_stop_container(self, op: O.StopContainer) -> None:
        c = self._running(op.container)
        if c is not None:
            c.running = False
            self._running_list.remove(c)

    @describes(O.StopContainer)
    def _describe_stop_container(self, op: O.StopContainer) -> str:
        return f"stop container {self._container_name(op.container)} (its volume stays mounted)"

    def _running(self, index: int) -> Container | None:
        running = self.running
        return running[index % len(running)] if running else None

    @property
    def running(self) -> list[Container]:
        """Running containers, in start order (kept, not rebuilt: opens are frequent)."""
        return self._running_list

    def _entry(self, c: Container, path: str, materialize: bool = True) -> Entry | None:
        """The entry at ``path``, materializing a placeholder on first access."""
        e = c.entries.get(path)
        if e is not None:
            return None if e.kind is EntryKind.DELETED else e
        found = c.backing_for(path)
        if found is None or not materialize:
            return None
        layer, backing = found
        e = Entry(EntryKind.PLACEHOLDER, FileObj(c.guid, c.alloc(), path, backing.content),
                  backing, layer)
        c.entries[path] = e
        return e

    @handles(O.OpenFile)
    def _op_open(self, op: O.OpenFile) -> None:
        c = self._running(op.container)
        if c is None:
            return
        e = self._entry(c, O.container_path(op.file))
        if e is None:
            return
        self._container_open(c, e, op.fail, op.update_mid_scan, op.fuzz)

    @describes(O.OpenFile)
    def _describe_open(self, op: O.OpenFile) -> str:
        extra = (" (scan fails)" if op.fail else "") + (
            " (signature update lands mid-scan)" if op.update_mid_scan else "")
        if self.hostile and op.fuzz:
            extra += f" (hostile ECP #{op.fuzz})"
        return f"{self._container_name(op.container)} opens {O.container_path(op.file)}{extra}"

    @handles(O.OpenMany)
    def _op_open_many(self, op: O.OpenMany) -> None:
        c = self._running(op.container)
        if c is None:
            return
        first = max(0, op.first)
        for i in range(first, first + O.bulk(op.count)):
            e = self._entry(c, O.layer_path(i))
            if e is None:
                if c.backing_for(O.layer_path(i)) is None:
                    break  # past the last layer file
                continue  # deleted in this container
            self._container_open(c, e, False, False, 0)

    @describes(O.OpenMany)
    def _describe_open_many(self, op: O.OpenMany) -> str:
        first = max(0, op.first)
        n = O.bulk(op.count)
        return (f"{self._container_name(op.container)} opens {O.layer_path(first)} .. "
                f"{O.layer_path(first + n - 1)} one after another")

    @handles(O.ConcurrentOpens)
    def _op_concurrent_opens(self, op: O.ConcurrentOpens) -> None:
        in_flight: list[Scan] = []
        opened: list[tuple[Container, Entry]] = []
        files = op.files[:O.MAX_IN_FLIGHT]
        fail = op.fail % len(files) if op.fail >= 0 and files else -1
        for i, file in enumerate(files):
            c = self._running(op.container_of(i))
            if c is None:
                return
            e = self._entry(c, O.container_path(file))
            if e is None:
                continue
            opened.append((c, e))
            self._container_open(c, e, i == fail, False, 0, defer=in_flight)
        if op.write >= 0 and opened:
            c, e = opened[op.write % len(opened)]
            self._write_in_flight(c, e, op.host_write, op.malware)
        version = self.version
        sweep = self._layer_files() if op.proactive else []
        if op.update:
            # The engine is busy: a proactive scan the update asks for is aborted at once.
            self._update(abort_after=0)
        items: list[Scan | FileObj] = []
        if op.order == 0:
            ours: list[Scan | FileObj] = list(reversed(in_flight))
            theirs: list[Scan | FileObj] = list(sweep)
            while ours or theirs:
                items += [x.pop(0) for x in (ours, theirs) if x]
        else:
            items = [*in_flight, *sweep]
            random.Random(op.order).shuffle(items)
        overlap = len(items) > 1
        for item in items:
            if isinstance(item, Scan):
                if overlap:
                    self.ex["SAFE-14"] += 1
                self.deliver(item)
            else:
                self._sweep_file(item, version, False)
        if op.proactive:
            self._proactive_done(version, op.update)

    @describes(O.ConcurrentOpens)
    def _describe_concurrent_opens(self, op: O.ConcurrentOpens) -> str:
        files = op.files[:O.MAX_IN_FLIGHT]
        fail = op.fail % len(files) if op.fail >= 0 and files else -1
        cs = op.containers
        opens = [f"{self._container_name(cs[i % len(cs)] if cs else 0)} opens "
                 f"{O.container_path(f)}{' (scan fails)' if i == fail else ''}"
                 for i, f in enumerate(files)]
        parts = [f"at once: {'; '.join(opens)}"]
        if op.write >= 0 and files:
            who = "the host" if op.host_write else "the container"
            parts.append(f"{who} writes {O.container_path(files[op.write % len(files)])} while "
                         f"its scan is in flight{' (malware)' if op.malware else ''}")
        if op.proactive:
            parts.append(f"a proactive scan under v{self.version} runs alongside")
        if op.update:
            parts.append(f"signature update to v{self.version + 1} lands mid-scan")
        order = "in reverse order" if op.order == 0 else f"in shuffled order #{op.order}"
        parts.append(f"results arrive {order}")
        return ", ".join(parts)

    def _write_in_flight(self, c: Container, e: Entry, host: bool, malware: bool) -> None:
        """A write that lands while the file's scan is in flight: its result goes stale."""
        layer = e.backing_layer
        if e.kind is EntryKind.PLACEHOLDER and host and layer is not None and not layer.remote:
            assert e.backing is not None
            self._tamper(layer, e.backing, malware, 0)
        else:
            self._write_entry(c, e, malware, 0, None if host else c.silo)

    def _container_open(self, c: Container, e: Entry, fail: bool, mid: bool,
                        fuzz: int, defer: list[Scan] | None = None) -> None:
        f = e.file
        backing = e.backing
        if e.kind is EntryKind.PLACEHOLDER:
            assert backing is not None and e.backing_layer is not None
            layer = e.backing_layer
            content = backing.content
            if layer.remote:
                prov = Provenance.REMOTE
                reported = layer.registered and self.profile != "no-registered-flag"
                flags = LAYER | REMOTE | (REGISTERED if reported else 0)
                ids = None
            elif layer.registered:
                prov = Provenance.REGISTERED
                flags = LAYER if self.profile == "no-registered-flag" else LAYER | REGISTERED
                ids = backing
            else:
                prov, flags, ids = Provenance.LAYER, LAYER, backing
            identity: FileObj = backing
        elif e.kind is EntryKind.USER_MODE:
            prov, flags, ids, content, identity, layer = (
                Provenance.USER_MODE, USER_MODE, None, f.content, f, None)
        else:
            prov, flags, ids, content, identity, layer = (
                Provenance.SCRATCH, SCRATCH, None, f.content, f, None)
        self._create(
            c.guid, f.path, c.silo, f, prov, content, identity, c, layer,
            handled=True, flags=flags, ids=ids, fail=fail, mid=mid, fuzz=fuzz,
            cow=e.cow_from_layer, old_backing=e.old_backing, defer=defer,
        )

    @handles(O.WriteFile)
    def _op_write(self, op: O.WriteFile) -> None:
        c = self._running(op.container)
        if c is None:
            return
        e = self._entry(c, O.container_path(op.file))
        if e is None:
            return
        self._write_entry(c, e, op.malware, op.delay, c.silo)

    @describes(O.WriteFile)
    def _describe_write(self, op: O.WriteFile) -> str:
        return (f"{self._container_name(op.container)} writes {O.container_path(op.file)}"
                f"{self._malware_note(op)}")

    def _write_entry(self, c: Container, e: Entry, malware: bool, delay: int,
                     silo: int | None) -> None:
        content = self._content(f"{c.name} write {e.file.path}", malware, delay)
        if e.kind is EntryKind.PLACEHOLDER:
            # Copy-on-write: same path and container-side id, content now in scratch.
            e.kind = EntryKind.SCRATCH
            e.cow_from_layer = True
            e.old_backing = e.backing
            e.backing = None
            e.backing_layer = None
        e.file.replace(content)
        self._change(e.file, ChangeKind.WRITE, silo)

    @handles(O.CreateFile)
    def _op_create(self, op: O.CreateFile) -> None:
        c = self._running(op.container)
        if c is None:
            return
        path = O.new_path(op.name)
        e = c.entries.get(path)
        if e is not None and e.kind is not EntryKind.DELETED:
            self._write_entry(c, e, op.malware, op.delay, c.silo)
            return
        content = self._content(f"{c.name} new {path}", op.malware, op.delay)
        e = Entry(EntryKind.SCRATCH, FileObj(c.guid, c.alloc(), path, content))
        c.entries[path] = e
        self._change(e.file, ChangeKind.WRITE, c.silo)

    @describes(O.CreateFile)
    def _describe_create(self, op: O.CreateFile) -> str:
        return (f"{self._container_name(op.container)} creates {O.new_path(op.name)}"
                f"{self._malware_note(op)}")

    @handles(O.DeleteFile)
    def _op_delete(self, op: O.DeleteFile) -> None:
        c = self._running(op.container)
        if c is None:
            return
        path = O.container_path(op.file)
        e = self._entry(c, path)
        if e is None:
            return
        self._change(e.file, ChangeKind.DELETE, c.silo)
        c.free.append(int.from_bytes(e.file.file_id, "little"))
        c.entries[path] = Entry(EntryKind.DELETED, e.file)

    @describes(O.DeleteFile)
    def _describe_delete(self, op: O.DeleteFile) -> str:
        return f"{self._container_name(op.container)} deletes {O.container_path(op.file)}"

    @handles(O.OpenMapped)
    def _op_open_mapped(self, op: O.OpenMapped) -> None:
        c = self._running(op.container)
        f = self._pick(self.host_files, op.file)
        if c is None or f is None:
            return
        self._create(f.volume_guid, f.path, c.silo, f, Provenance.MAPPED, f.content, f, c,
                     None, handled=False, fail=op.fail, fuzz=op.fuzz)

    @describes(O.OpenMapped)
    def _describe_open_mapped(self, op: O.OpenMapped) -> str:
        f = self._pick(self.host_files, op.file)
        return (f"{self._container_name(op.container)} opens mapped host file "
                f"{f.path if f else '(none)'}")

    @handles(O.OpenUserMode)
    def _op_open_user_mode(self, op: O.OpenUserMode) -> None:
        c = self._running(op.container)
        if c is None:
            return
        path = f"\\Users\\app\\OneDrive\\u{op.name}.docx"
        e = c.entries.get(path)
        if e is None or e.kind is EntryKind.DELETED:
            content = self._content(f"{c.name} cloud {path}", op.malware)
            e = Entry(EntryKind.USER_MODE, FileObj(c.guid, c.alloc(), path, content))
            c.entries[path] = e
        self._container_open(c, e, op.fail, False, op.fuzz)

    @describes(O.OpenUserMode)
    def _describe_open_user_mode(self, op: O.OpenUserMode) -> str:
        return f"{self._container_name(op.container)} opens cloud file u{op.name}.docx"

    @handles(O.HostCreate)
    def _op_host_create(self, op: O.HostCreate) -> None:
        vol = self.volumes[op.volume % len(self.volumes)]
        path = O.host_path(op.name)
        for f in self.host_files:
            if f.path == path and f.volume_guid == vol.guid:
                self._host_write(f, op.malware, op.delay)
                return
        f = FileObj(vol.guid, vol.alloc(), path,
                    self._content(f"host {path}", op.malware, op.delay))
        self.host_files.append(f)
        self._change(f, ChangeKind.WRITE, None)

    @describes(O.HostCreate)
    def _describe_host_create(self, op: O.HostCreate) -> str:
        return (f"host creates {O.host_path(op.name)} on H{op.volume % len(self.volumes)}"
                f"{self._malware_note(op)}")

    def _host_write(self, f: FileObj, malware: bool, delay: int) -> None:
        f.replace(self._content(f"host write {f.path}", malware, delay))
        self._change(f, ChangeKind.WRITE, None)

    @handles(O.HostWrite)
    def _op_host_write(self, op: O.HostWrite) -> None:
        f = self._pick(self.host_files, op.file)
        if f is not None:
            self._host_write(f, op.malware, op.delay)

    @describes(O.HostWrite)
    def _describe_host_write(self, op: O.HostWrite) -> str:
        return f"host writes {self._host_file_name(op.file)}"

    @handles(O.HostOpen)
    def _op_host_open(self, op: O.HostOpen) -> None:
        f = self._pick(self.host_files, op.file)
        if f is not None:
            self._host_open(f, Provenance.HOST, op.fail)

    @describes(O.HostOpen)
    def _describe_host_open(self, op: O.HostOpen) -> str:
        return f"host opens {self._host_file_name(op.file)}"

    @handles(O.HostDelete)
    def _op_host_delete(self, op: O.HostDelete) -> None:
        f = self._pick(self.host_files, op.file)
        if f is None:
            return
        self.host_files.remove(f)
        self._change(f, ChangeKind.DELETE, None)
        for vol in self.volumes:
            if vol.guid == f.volume_guid:
                vol.release(f.file_id)

    @describes(O.HostDelete)
    def _describe_host_delete(self, op: O.HostDelete) -> str:
        return f"host deletes {self._host_file_name(op.file)}"

    def _host_open(self, f: FileObj, prov: Provenance, fail: bool,
                   layer: Layer | None = None) -> None:
        self._create(f.volume_guid, f.path, None, f, prov, f.content, f, None, layer,
                     handled=False, fail=fail)

    @handles(O.VolumeOpen)
    def _op_volume_open(self, op: O.VolumeOpen) -> None:
        c = self._pick(self.containers, op.container)
        if c is None:
            return
        e = self._entry(c, O.container_path(op.file))
        if e is None:
            return
        content = e.backing.content if e.backing is not None else e.file.content
        self._create(c.guid, e.file.path, None, e.file, Provenance.CONTAINER_VOLUME, content,
                     e.file if e.backing is None else e.backing, c, None,
                     handled=False, fail=op.fail)

    @describes(O.VolumeOpen)
    def _describe_volume_open(self, op: O.VolumeOpen) -> str:
        return (f"host opens {O.container_path(op.file)} on the volume of "
                f"{self._container_name(op.container, False)} (no container context)")

    @handles(O.VolumeWrite)
    def _op_volume_write(self, op: O.VolumeWrite) -> None:
        c = self._pick(self.containers, op.container)
        if c is None:
            return
        e = self._entry(c, O.container_path(op.file))
        if e is not None:
            self._write_entry(c, e, op.malware, op.delay, None)

    @describes(O.VolumeWrite)
    def _describe_volume_write(self, op: O.VolumeWrite) -> str:
        return (f"host writes {O.container_path(op.file)} on the volume of "
                f"{self._container_name(op.container, False)}{self._malware_note(op)}")

    @handles(O.SignatureUpdate)
    def _op_signature_update(self, op: O.SignatureUpdate) -> None:
        self._update(op.abort_after)

    @describes(O.SignatureUpdate)
    def _describe_signature_update(self, op: O.SignatureUpdate) -> str:
        abort = (f" (a proactive scan it asks for is aborted after {op.abort_after} files)"
                 if op.abort_after >= 0 else "")
        return f"signature update to v{self.version + 1}{abort}"

    @handles(O.SignatureUpdates)
    def _op_signature_updates(self, op: O.SignatureUpdates) -> None:
        n = O.bulk(op.count)
        for i in range(n):
            self._update(op.abort_after if i == n - 1 else 0)

    @describes(O.SignatureUpdates)
    def _describe_signature_updates(self, op: O.SignatureUpdates) -> str:
        n = O.bulk(op.count)
        return f"{n} signature updates, v{self.version + 1} .. v{self.version + n}"

    def _update(self, abort_after: int = -1) -> None:
        self.version += 1
        if self.adapter.signature_updated(self.version):
            self._proactive(abort_after, False, -1)

    @handles(O.ProactiveScan)
    def _op_proactive_scan(self, op: O.ProactiveScan) -> None:
        self._proactive(op.abort_after, op.update_midway, op.fail_file)

    @describes(O.ProactiveScan)
    def _describe_proactive_scan(self, op: O.ProactiveScan) -> str:
        parts = [f"proactive scan under v{self.version}"]
        if op.abort_after >= 0:
            parts.append(f"aborted after {op.abort_after} files")
        if op.update_midway:
            parts.append(f"signature update to v{self.version + 1} lands mid-scan")
        return ", ".join(parts)

    def _layer_files(self) -> list[FileObj]:
        return [f for la in self.local_layers() for f in la.files.values()]

    def _proactive(self, abort_after: int, update_midway: bool, fail_file: int) -> None:
        version = self.version
        files = self._layer_files()
        stop = len(files) if abort_after < 0 else min(abort_after, len(files))
        aborted = 0 <= abort_after < len(files)
        midway = len(files) // 2
        updated = False
        for i, f in enumerate(files[:stop]):
            if update_midway and i == midway:
                updated = True
                self._update()
            self._sweep_file(f, version, i == fail_file)
        if update_midway and not updated:
            self._update()
        if aborted:
            self.aborted_at = version
            if not self.hide_aborts:
                self.adapter.proactive_scan_aborted(version)
        else:
            self._proactive_done(version, update_midway)

    def _sweep_file(self, f: FileObj, version: int, fail: bool) -> None:
        """One file of a proactive scan: scanned now, its result delivered at once."""
        outcome = self._scan(f.content, version, fail)
        key = f.key
        if outcome is ScanOutcome.CLEAN:
            self.last_clean = f
        elif outcome is ScanOutcome.INFECTED:
            self.findings.add((key, f.content.cid))
        self.adapter.scan_completed(self._result(ScanResult(
            None, f.volume_guid, f.file_id, version, outcome, ScanOrigin.PROACTIVE), key))

    def _proactive_done(self, version: int, update_midway: bool) -> None:
        # A nested scan (asked for by the mid-scan update) may have completed under a
        # newer version already: the newest completion is what counts.
        if self.last_completed is None or version >= self.last_completed:
            self.last_completed = version
            self.completed_across_update = update_midway
        self.adapter.proactive_scan_completed(version)

    # --- the create path ------------------------------------------------------------
    def _create(
        self,
        volume: bytes,
        path: str,
        silo: int | None,
        opened: FileObj,
        prov: Provenance,
        content: Content,
        identity: FileObj | None,
        container: Container | None,
        layer: Layer | None,
        *,
        handled: bool,
        flags: int = 0,
        ids: FileObj | None = None,
        fail: bool = False,
        mid: bool = False,
        fuzz: int = 0,
        cow: bool = False,
        old_backing: FileObj | None = None,
        defer: list[Scan] | None = None,
    ) -> None:
        self._create_id += 1
        cid = self._create_id
        pre = PreCreate(cid, volume, path, silo)
        request = self.adapter.pre_create(pre)
        ecp = None
        if request is not None:
            ecp = self._fill_ecp(request, handled, flags, ids, fuzz, old_backing)
        post = PostCreate(cid, volume, path, silo, opened.file_id, ecp)
        verdict = self.adapter.post_create(post)
        version = self.version
        layer_open = prov is Provenance.LAYER or prov is Provenance.REGISTERED
        if self.on_create is not None:
            finding_key = None if prov is Provenance.REMOTE else (
                identity.key if layer_open and identity is not None else opened.key)
            self.on_create(CreateRecord(
                pre, request, post, prov, content, identity, container, layer,
                verdict, version, cow, old_backing, finding_key))
        if verdict is not Verdict.SCAN:
            return
        scanned = identity if identity is not None else opened
        truly = (layer_open and ecp is not None and ecp.acknowledged and ecp.complete
                 and ecp.flags in _VALID_LAYER_ECP and ecp.ids == scanned.key)
        claimed = (ecp is not None and ecp.acknowledged and ecp.complete
                   and ecp.file_id != ZERO_ID and ecp.ids != scanned.key)
        scan = Scan(cid, volume, opened.file_id, version, content, fail, scanned,
                    scanned.key if truly else opened.key, prov, claimed)
        if defer is not None:
            defer.append(scan)
            return
        if mid:
            # The update lands while the engine is busy: a proactive scan it asks for
            # starts and is aborted at once, so the late result is what the adapter has.
            self._update(abort_after=0)
        self.deliver(scan)

    def deliver(self, scan: Scan) -> None:
        """Settle an on-access scan's truth and hand its result to the adapter. The scan
        covered the content as it was at the create, whatever was written since."""
        outcome = self._scan(scan.content, scan.version, scan.fail)
        if outcome is ScanOutcome.CLEAN:
            if scan.prov in (Provenance.INSTALL, Provenance.LAYER, Provenance.REGISTERED):
                self.last_clean = scan.identity
        elif outcome is ScanOutcome.INFECTED:
            self.findings.add((scan.finding, scan.content.cid))
        if scan.claimed:
            self.ex["SAFE-14"] += 1
        self.adapter.scan_completed(self._result(ScanResult(
            scan.create_id, scan.volume, scan.file_id, scan.version, outcome,
            ScanOrigin.ON_ACCESS), scan.identity.key))

    def _fill_ecp(self, request: EcpRequest, handled: bool, flags: int,
                  ids: FileObj | None, fuzz: int, old: FileObj | None) -> RedirectionEcp:
        size = request.size
        if not handled or size < 4:
            raw = RedirectionEcp.pack(size & 0xFFFF)
            if self.hostile and fuzz % 2 and self.last_clean is not None:
                # Leftover garbage in an ECP nobody acknowledged: layer-looking flags and
                # the ids of a file already scanned clean.
                lc = self.last_clean
                raw = RedirectionEcp.pack(size & 0xFFFF, LAYER | (fuzz & REGISTERED),
                                          lc.file_id, lc.volume_guid)
            return RedirectionEcp(raw, False)
        fid = vol = ZERO_ID
        if ids is not None and size >= ECP_SIZE:
            fid, vol = ids.file_id, ids.volume_guid
        if self.hostile and fuzz:
            return self._fuzz(size, flags, fid, vol, fuzz, old)
        return RedirectionEcp(RedirectionEcp.pack(size, flags, fid, vol), True)

    def _fuzz(self, size: int, flags: int, fid: bytes, vol: bytes, fuzz: int,
              old: FileObj | None) -> RedirectionEcp:
        """Hostile ECP contents. Never a lie a careful adapter could not detect: a valid
        combination keeps the true provenance and the true or zero ids."""
        decoy = old if old is not None else self.last_clean
        kind = fuzz % 8
        if kind == 1:
            flags |= 0x40  # an unknown bit
        elif kind in (2, 3) and flags != LAYER:
            # Contradiction carrying plausible ids (a modified file's old backing ids).
            flags = LAYER | (SCRATCH if kind == 2 else USER_MODE)
            if decoy is not None:
                fid, vol = decoy.file_id, decoy.volume_guid
        elif kind in (2, 3):
            flags |= SCRATCH if kind == 2 else USER_MODE
        elif kind == 4 and flags & LAYER:
            fid = vol = ZERO_ID
        elif kind == 5:
            raw = RedirectionEcp.pack(size, flags, fid, vol)
            return RedirectionEcp(raw[: (fuzz // 8) % 30 + 2], True)
        elif kind == 6:
            size = (size + 1 + fuzz // 8) & 0xFFFF
        elif kind == 7:
            flags = flags | REMOTE | SCRATCH
        return RedirectionEcp(RedirectionEcp.pack(size, flags, fid, vol), True)

    def stop(self) -> None:
        self.adapter.stop()


def describe_op(world: World, op: O.Op) -> str:
    """Human-readable step, resolved against the world as it stands before ``op``."""
    describer = DESCRIBERS.get(type(op))
    if describer is None:
        raise TypeError(f"no description for operation {op!r}: see reference.model.describes")
    return describer(world, op)


check_registry()
