"""Model operations: small frozen records, so a sequence is plain data.

Entities are named by small indices taken modulo what exists when the operation runs
(layer 3 of 2 installed layers is layer 1; with none installed the operation does
nothing). Any sequence is therefore valid, shrinks by plain deletion, and replays exactly.

Container file indices: ``i >= 0`` names the layer path ``\\Windows\\System32\\f<i>.dll``;
``i < 0`` names the container-created path ``\\Users\\app\\n<-i-1>.dat`` (see :func:`new_file`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

#: The most files a generated layer has in ordinary fragments (bulk installs take more).
MAX_LAYER_FILES = 6
#: Bounds on bulk operations, so a hand-written trace cannot ask for a runaway example.
MAX_BULK = 1_000_000
def bulk(count: int) -> int:
    """How many times a bulk operation acts: at least once, at most ``MAX_BULK``."""
    return max(1, min(count, MAX_BULK))


#: The most opens one ``concurrent_opens`` puts in flight at once.
MAX_IN_FLIGHT = 8

PROFILES = ("wcifs", "no-registered-flag", "hostile")
FILESYSTEMS = ("NTFS", "ReFS")


def layer_path(i: int) -> str:
    return f"\\Windows\\System32\\f{i}.dll"


def new_path(i: int) -> str:
    return f"\\Users\\app\\n{i}.dat"


def container_path(file: int) -> str:
    return layer_path(file) if file >= 0 else new_path(-file - 1)


def new_file(name: int) -> int:
    """The container file index of the path ``CreateFile(name=name)`` creates."""
    return -name - 1


def host_path(i: int) -> str:
    return f"\\Shares\\data\\h{i}.txt"


@dataclass(frozen=True, slots=True)
class Setup:
    """What an example starts with: host volumes, platform profile, signature version."""

    volumes: tuple[str, ...] = ("NTFS",)
    profile: str = "wcifs"
    version: int = 1

    def __post_init__(self) -> None:
        if not 1 <= len(self.volumes) <= 3 or any(v not in FILESYSTEMS for v in self.volumes):
            raise ValueError(f"volumes must be 1 to 3 of {FILESYSTEMS}, got {self.volumes!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.version < 1:
            raise ValueError("the initial signature version must be at least 1")


class Op:
    """Base of all operations; ``kind`` is the name used in traces.

    An operation is declared in one place per concern, and each is checked: its record
    here (decorated with :func:`operation`, which checks the trace format can carry its
    fields), its handler and its description on ``reference.model.World`` (``@handles``,
    ``@describes``; importing the model fails if either is missing) and its strategy in
    ``strategies.OPERATIONS`` (``tests/test_ops_registry.py``).
    """

    kind: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The trace form: ``{"op": kind}`` plus every field that differs from its default
        (tuples as lists)."""
        data: dict[str, Any] = {"op": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value != f.default:
                data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: object) -> Op:
        """Inverse of :meth:`to_json`; raises ``ValueError`` naming what is wrong. On
        ``Op`` itself any registered kind is accepted, on a subclass only its own."""
        if not isinstance(data, dict) or not isinstance(data.get("op"), str):
            raise ValueError(f"an operation must be an object with an 'op' name, got {data!r}")
        name = data["op"]
        target = OPS.get(name)
        if target is None:
            raise ValueError(f"unknown operation {name!r}")
        if cls is not Op and target is not cls:
            raise ValueError(f"expected operation {cls.kind!r}, got {name!r}")
        kwargs = {k: v for k, v in data.items() if k != "op"}
        fields = {f.name: f for f in dataclasses.fields(target)}  # type: ignore[arg-type]
        for k, v in kwargs.items():
            if k not in fields:
                raise ValueError(f"operation {name!r} has no field {k!r}")
            default = fields[k].default
            if isinstance(default, tuple):
                if not isinstance(v, list) or not all(type(x) is int for x in v):
                    raise ValueError(f"{name}.{k} must be a list of integers")
                kwargs[k] = tuple(v)
            elif type(v) is not type(default):
                raise ValueError(f"{name}.{k} must be {type(default).__name__}, got {v!r}")
        return target(**kwargs)


_O = TypeVar("_O", bound=Op)

#: Every operation by its trace name (filled by :func:`operation`).
OPS: dict[str, type[Op]] = {}


def _traceable(default: object) -> bool:
    """A default whose type the trace format carries (and ``from_json`` checks against)."""
    if isinstance(default, tuple):
        return all(type(x) is int for x in default)
    return type(default) in (bool, int)


def operation(kind: str) -> Callable[[type[_O]], type[_O]]:
    """Register a frozen dataclass as the operation named ``kind`` in traces. Raises
    ``TypeError`` at once if the name is taken or the record is not one the trace format
    can carry (frozen, every field defaulted to a bool, an int or a tuple of ints)."""

    def wrap(cls: type[_O]) -> type[_O]:
        where = f"operation {kind!r} ({cls.__qualname__})"
        if kind in OPS:
            raise TypeError(f"{where}: the name is taken by {OPS[kind].__qualname__}")
        if not (isinstance(cls, type) and issubclass(cls, Op)):
            raise TypeError(f"{where}: an operation must subclass Op")
        params = getattr(cls, "__dataclass_params__", None)
        if not dataclasses.is_dataclass(cls) or params is None or not params.frozen:
            raise TypeError(f"{where}: an operation must be a frozen dataclass "
                            "(put @operation above @dataclass(frozen=True, slots=True))")
        for f in dataclasses.fields(cls):
            if not _traceable(f.default):
                raise TypeError(f"{where}: field {f.name!r} needs a default that is a bool, "
                                f"an int or a tuple of ints, got {f.default!r}")
        cls.kind = kind
        OPS[kind] = cls
        return cls

    return wrap


# --- package layers -------------------------------------------------------------------
@operation("install_layer")
@dataclass(frozen=True, slots=True)
class InstallLayer(Op):
    volume: int = 0
    files: int = 3
    registered: bool = False
    #: A remote layer lives on another host (reached by Hyper-V containers over SMB).
    remote: bool = False
    #: Index of a malicious file (-1: none); it is detectable from version + ``delay``.
    malware_file: int = -1
    delay: int = 0
    #: Index of a file whose install-time scan ends in ERROR (-1: none).
    fail_file: int = -1
    #: Every ``malware_every``-th file is malicious too (0: none), for dozens of detections.
    malware_every: int = 0


@operation("register_layer")
@dataclass(frozen=True, slots=True)
class RegisterLayer(Op):
    layer: int = 0


@operation("unregister_layer")
@dataclass(frozen=True, slots=True)
class UnregisterLayer(Op):
    layer: int = 0


@operation("tamper_layer_file")
@dataclass(frozen=True, slots=True)
class TamperLayerFile(Op):
    """A write to a local layer file on its host volume."""

    layer: int = 0
    file: int = 0
    malware: bool = False
    delay: int = 0


@operation("uninstall_layer")
@dataclass(frozen=True, slots=True)
class UninstallLayer(Op):
    layer: int = 0


# --- containers -----------------------------------------------------------------------
@operation("start_container")
@dataclass(frozen=True, slots=True)
class StartContainer(Op):
    #: Layer chain, top first, as indices into the installed layers of the right kind.
    layers: tuple[int, ...] = (0,)
    hyperv: bool = False


@operation("start_containers")
@dataclass(frozen=True, slots=True)
class StartContainers(Op):
    """``count`` containers started on the same chain: hundreds of silos cheaply."""

    count: int = 2
    layers: tuple[int, ...] = (0,)
    hyperv: bool = False


@operation("stop_container")
@dataclass(frozen=True, slots=True)
class StopContainer(Op):
    container: int = 0


@operation("open")
@dataclass(frozen=True, slots=True)
class OpenFile(Op):
    """A create in a container's context."""

    container: int = 0
    file: int = 0
    #: The scan (if the adapter asks for one) ends in ERROR.
    fail: bool = False
    #: A signature update lands while the scan runs (a proactive scan it asks for is
    #: aborted at once: the engine is busy).
    update_mid_scan: bool = False
    #: Hostile-profile ECP mutation selector (ignored in other profiles).
    fuzz: int = 0


@operation("open_many")
@dataclass(frozen=True, slots=True)
class OpenMany(Op):
    """A container opens layer files ``first`` .. ``first + count - 1`` one after another."""

    container: int = 0
    first: int = 0
    count: int = 2


@operation("concurrent_opens")
@dataclass(frozen=True, slots=True)
class ConcurrentOpens(Op):
    """Creates on several threads (SPEC §3 Concurrency): every open completes before any
    scan result arrives, and the results arrive in another order. Open ``i`` is of file
    ``files[i]`` in container ``containers[i % len(containers)]``."""

    containers: tuple[int, ...] = (0,)
    files: tuple[int, ...] = (0, 1)
    #: Delivery order of the results: 0 reverses them, k > 0 shuffles them with seed k.
    order: int = 0
    #: Index (modulo the opens) of the open whose scan ends in ERROR (-1: none).
    fail: int = -1
    #: Index (modulo the opens) of the open whose file is written while its scan is in
    #: flight (-1: none).
    write: int = -1
    #: That write comes from the host: a layer file tampered with on its host volume, or a
    #: non-container write to the container's volume.
    host_write: bool = False
    #: The write brings malware detectable under the current version.
    malware: bool = False
    #: A signature update lands while the scans are in flight.
    update: bool = False
    #: A proactive scan runs alongside; its results interleave with the on-access ones.
    proactive: bool = False

    def container_of(self, i: int) -> int:
        """The container (index) open ``i`` is made in."""
        return self.containers[i % len(self.containers)] if self.containers else 0


@operation("write")
@dataclass(frozen=True, slots=True)
class WriteFile(Op):
    """A container writes a file: copy-on-write for a placeholder."""

    container: int = 0
    file: int = 0
    malware: bool = False
    delay: int = 0


@operation("create")
@dataclass(frozen=True, slots=True)
class CreateFile(Op):
    """A container creates a new scratch file ``\\Users\\app\\n<name>.dat``."""

    container: int = 0
    name: int = 0
    malware: bool = False
    delay: int = 0


@operation("delete")
@dataclass(frozen=True, slots=True)
class DeleteFile(Op):
    container: int = 0
    file: int = 0


@operation("open_mapped")
@dataclass(frozen=True, slots=True)
class OpenMapped(Op):
    """A container opens a host file through a mapped directory (wcifs not involved)."""

    container: int = 0
    file: int = 0
    fail: bool = False
    fuzz: int = 0


@operation("open_user_mode")
@dataclass(frozen=True, slots=True)
class OpenUserMode(Op):
    """A container opens a cloud (user-mode redirected) file."""

    container: int = 0
    name: int = 0
    malware: bool = False
    fail: bool = False
    fuzz: int = 0


# --- ordinary host activity -----------------------------------------------------------
@operation("host_create")
@dataclass(frozen=True, slots=True)
class HostCreate(Op):
    volume: int = 0
    name: int = 0
    malware: bool = False
    delay: int = 0


@operation("host_write")
@dataclass(frozen=True, slots=True)
class HostWrite(Op):
    file: int = 0
    malware: bool = False
    delay: int = 0


@operation("host_open")
@dataclass(frozen=True, slots=True)
class HostOpen(Op):
    file: int = 0
    fail: bool = False


@operation("host_delete")
@dataclass(frozen=True, slots=True)
class HostDelete(Op):
    file: int = 0


@operation("volume_open")
@dataclass(frozen=True, slots=True)
class VolumeOpen(Op):
    """An ordinary (non-container) open of a file on a container volume."""

    container: int = 0
    file: int = 0
    fail: bool = False


@operation("volume_write")
@dataclass(frozen=True, slots=True)
class VolumeWrite(Op):
    """An ordinary (non-container) write to a file on a container volume."""

    container: int = 0
    file: int = 0
    malware: bool = False
    delay: int = 0


# --- signatures and proactive scans -----------------------------------------------------
@operation("signature_update")
@dataclass(frozen=True, slots=True)
class SignatureUpdate(Op):
    #: If the adapter asks for a proactive scan: abort it after this many files (-1: none).
    abort_after: int = -1


@operation("signature_updates")
@dataclass(frozen=True, slots=True)
class SignatureUpdates(Op):
    """A run of ``count`` signature updates (months of a host's life). A proactive scan
    asked for by any but the last is aborted at once: the next update lands before it
    gets anywhere."""

    count: int = 2
    abort_after: int = -1


@operation("proactive_scan")
@dataclass(frozen=True, slots=True)
class ProactiveScan(Op):
    abort_after: int = -1
    #: A signature update lands half-way through.
    update_midway: bool = False
    #: Index (in scan order) of a file whose scan ends in ERROR (-1: none).
    fail_file: int = -1


def op_to_json(op: Op) -> dict[str, Any]:
    """``op.to_json()``."""
    return op.to_json()


def op_from_json(data: object) -> Op:
    """``Op.from_json(data)``: any registered operation; ``ValueError`` naming what is wrong."""
    return Op.from_json(data)


def setup_to_json(setup: Setup) -> dict[str, Any]:
    return {"volumes": list(setup.volumes), "profile": setup.profile, "version": setup.version}


def setup_from_json(data: object) -> Setup:
    if not isinstance(data, dict):
        raise ValueError("setup must be an object")
    try:
        return Setup(
            volumes=tuple(data.get("volumes", ["NTFS"])),
            profile=str(data.get("profile", "wcifs")),
            version=int(data.get("version", 1)),
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad setup: {e}") from None
