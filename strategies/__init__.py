"""Hypothesis strategies over model operations.

An example is a :class:`~reference.ops.Setup` and a list of operations. It opens with a
small host (one or two local layers, maybe a remote one, a container or two on them) and
continues as *fragments*: single operations, bursts of opens, and short scenes that put a
faulty adapter in front of the situation that exposes it (reopen right after a write,
tamper then reopen, uninstall then reinstall so ids are reused, an update between a scan
and its result, hostile leftovers in an unacknowledged ECP, ...). Operations name entities
by small indices taken modulo what exists, so any list is valid and the shrinker may
delete any fragment.

Each fragment is one Hypothesis choice: its operations and arguments are decoded from
compact tables (:mod:`strategies._tables`), since Hypothesis' cost is per choice. All
strategies are built once, at import: building them per draw costs more than running the
model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from reference import ops as O

from ._tables import Choice, Const, Field, Record, Seq, Values, strategy

__all__ = ["LONG_SCENES", "OPERATIONS", "SCENES", "draw_example", "examples", "fragments",
           "op_kinds", "operations", "setups"]

_op = Record.of

_idx = Values(range(4))
_small = Values(range(3))
_bool = Values((False, True))
_rare = Values([False] * 7, [True])
_layer_file = Values(range(O.MAX_LAYER_FILES))
_new_file = (-1, -2, -3)
#: A layer path or a container-created one, each half the time.
_cfile = Values(range(O.MAX_LAYER_FILES), _new_file * (O.MAX_LAYER_FILES // len(_new_file)))
_fuzz = Values(range(48))
_no_fuzz_or_fuzz = Values([0] * 48, range(48))
_maybe_file = Values((-1, -1, -1, 0, 1))
_abort = Values((-1, -1, 0, 1, 2))
_malware = Values([False] * 5, [True])
_seldom = Values([False] * 9, [True])
_two_to_eight = Values(range(2, 9))
_layers = Seq(_idx, 1, 3)


def setups() -> st.SearchStrategy[O.Setup]:
    return _setups


_setup = Record.of(
    O.Setup, volumes=Seq(Values(O.FILESYSTEMS), 1, 3),
    profile=Values(O.PROFILES), version=Const(1))

_local_install = _op(
    O.InstallLayer, volume=_idx, files=Values(range(2, O.MAX_LAYER_FILES + 1)),
    registered=Values((False, False, True)), remote=Const(False),
    malware_file=_maybe_file, delay=_small, fail_file=_maybe_file)
_remote_install = _op(
    O.InstallLayer, files=Values(range(1, O.MAX_LAYER_FILES + 1)), registered=_bool,
    remote=Const(True), malware_file=_maybe_file, delay=_small)
_install = Choice(_local_install, _local_install, _remote_install)

_open = _op(O.OpenFile, container=_idx, file=_cfile, fail=_rare, update_mid_scan=_rare,
            fuzz=_no_fuzz_or_fuzz)

_in_flight = Seq(_cfile, 2, O.MAX_IN_FLIGHT)
_order = Values([0] * 1000, range(1, 1001))


def operations() -> st.SearchStrategy[O.Op]:
    """Any single operation: one of :data:`OPERATIONS`."""
    return _operations


def op_kinds() -> tuple[str, ...]:
    """The trace names of the operations the strategies generate: the keys of
    :data:`OPERATIONS`, from which :func:`operations` is built (scenes use only these;
    ``tests/test_ops_registry.py`` checks both, and that every ``reference.ops.OPS`` kind
    is here)."""
    return tuple(cls.kind for cls in OPERATIONS)


#: The table of each operation class. :func:`operations` chooses among these in this
#: order (the order is part of what a seed generates: keep it).
_RECORDS: dict[type[O.Op], Field] = {
    O.InstallLayer: _install,
    O.RegisterLayer: _op(O.RegisterLayer, layer=_idx),
    O.UnregisterLayer: _op(O.UnregisterLayer, layer=_idx),
    O.TamperLayerFile: _op(O.TamperLayerFile, layer=_idx, file=_layer_file, malware=_malware,
                           delay=_small),
    O.UninstallLayer: _op(O.UninstallLayer, layer=_idx),
    O.StartContainer: _op(O.StartContainer, layers=_layers,
                          hyperv=Values((False, False, True))),
    O.StopContainer: _op(O.StopContainer, container=_idx),
    O.OpenFile: _open,
    O.WriteFile: _op(O.WriteFile, container=_idx, file=_cfile, malware=_malware, delay=_small),
    O.CreateFile: _op(O.CreateFile, container=_idx, name=_small, malware=_malware,
                      delay=_small),
    O.DeleteFile: _op(O.DeleteFile, container=_idx, file=_cfile),
    O.OpenMapped: _op(O.OpenMapped, container=_idx, file=_idx, fail=_rare, fuzz=_fuzz),
    O.OpenUserMode: _op(O.OpenUserMode, container=_idx, name=_small, malware=_malware,
                        fail=_rare, fuzz=_fuzz),
    O.HostCreate: _op(O.HostCreate, volume=_idx, name=_small, malware=_malware, delay=_small),
    O.HostWrite: _op(O.HostWrite, file=_idx, malware=_malware, delay=_small),
    O.HostOpen: _op(O.HostOpen, file=_idx, fail=_rare),
    O.HostDelete: _op(O.HostDelete, file=_idx),
    O.VolumeOpen: _op(O.VolumeOpen, container=_idx, file=_cfile, fail=_rare),
    O.VolumeWrite: _op(O.VolumeWrite, container=_idx, file=_cfile, malware=_malware,
                       delay=_small),
    O.SignatureUpdate: _op(O.SignatureUpdate, abort_after=_abort),
    O.SignatureUpdates: _op(O.SignatureUpdates, count=_two_to_eight, abort_after=_abort),
    O.StartContainers: _op(O.StartContainers, count=_two_to_eight, layers=Seq(_idx, 1, 1)),
    O.OpenMany: _op(O.OpenMany, container=_idx, first=_layer_file, count=_two_to_eight),
    O.ConcurrentOpens: _op(
        O.ConcurrentOpens, containers=_layers, files=_in_flight, order=_order,
        fail=_maybe_file, write=_maybe_file, host_write=_bool, malware=_bool, update=_rare,
        proactive=_rare),
    O.ProactiveScan: _op(O.ProactiveScan, abort_after=_abort, update_midway=_bool,
                         fail_file=Values((-1, -1, -1, 0, 2))),
}
#: The strategy of each operation class, each drawn as one choice.
OPERATIONS: Mapping[type[O.Op], st.SearchStrategy[O.Op]] = MappingProxyType(
    {cls: strategy(record) for cls, record in _RECORDS.items()})
_any_op = Choice(*_RECORDS.values())
_operations: st.SearchStrategy[O.Op] = strategy(_any_op)

# Scenes name low file numbers, which every layer of two or more files has.
_scene_file = Values(range(2))
_pre_update = Values([(), (O.SignatureUpdate(abort_after=0),)])
#: Boundary values half the time: wrap-arounds and table sizes live at powers of two.
_STORM_EDGES = (256, 255, 257, 128, 127, 129, 64, 512, 1024)
_storm = Values(_STORM_EDGES * 67, range(2, 601))
#: Mostly no completed proactive scan after a storm: one would rescan every layer file.
_storm_abort = Values((0, 0, 1, -1))
_big = Values((80, 300, 140, 48, 80, 140, 300, 48, 1100, 2100))
#: The install scans every file already: opening a slice of them is enough.
_opened = Values((48, 140, 300))
_many = Values((300, 70, 140, 600))
_offset = Values((256, 128, 64, 1))


# Scenes are plain functions of values decoded from one choice, not ``@st.composite``:
# Hypothesis labels a composite by a hash of its code, which differs from process to
# process, and its shrinker orders its passes by label, so composite scenes made the
# shrunk traces depend on the interpreter's hash seed.
_Scene = Callable[..., list[O.Op]]


def _cow_reopen(c: int, f: int, fuzz: int) -> list[O.Op]:
    return [O.OpenFile(c, f), O.WriteFile(c, f), O.OpenFile(c, f, fuzz=fuzz)]


def _tamper_reopen(c: int, f: int, layer: int, other: int) -> list[O.Op]:
    return [O.OpenFile(c, f), O.TamperLayerFile(layer, f), O.OpenFile(c, f),
            O.OpenFile(other, f)]


def _update_new_container(c: int, f: int, abort: int, layer: int, hyperv: bool
                          ) -> list[O.Op]:
    return [O.SignatureUpdate(abort_after=abort), O.StartContainer((layer,), hyperv=hyperv),
            O.OpenFile(-1, f), O.OpenFile(c, f)]


def _id_reuse(c: int, f: int, layer: int, install: O.Op) -> list[O.Op]:
    return [O.UninstallLayer(layer), install, O.StartContainer((-1,)), O.OpenFile(-1, f)]


def _stopped_volume(c: int, f: int, other: int) -> list[O.Op]:
    # ``other`` opened from the host while the container runs and again once it stopped.
    return [O.VolumeOpen(c, other), O.StopContainer(c), O.VolumeWrite(c, f),
            O.VolumeOpen(c, f), O.VolumeOpen(c, other)]


def _scratch_rewrite(c: int, f: int, n: int) -> list[O.Op]:
    return [O.CreateFile(c, n), O.OpenFile(c, O.new_file(n)),
            O.WriteFile(c, O.new_file(n)), O.OpenFile(c, O.new_file(n)),
            O.CreateFile(c, n + 1), O.OpenFile(c, O.new_file(n + 1))]


def _update_mid_scan(c: int, f: int, other: int) -> list[O.Op]:
    return [O.SignatureUpdate(abort_after=0), O.OpenFile(c, f, update_mid_scan=True),
            O.OpenFile(other, f)]


def _failed_scan(c: int, f: int, layer: int, other: int) -> list[O.Op]:
    return [O.TamperLayerFile(layer, f), O.OpenFile(c, f, fail=True), O.OpenFile(other, f)]


def _mapped_hostile(c: int, f: int, volume: int, name: int, fuzz: int, fuzz2: int
                    ) -> list[O.Op]:
    return [O.HostCreate(volume, name), O.OpenMapped(c, -1, fuzz=fuzz),
            O.OpenFile(c, f, fuzz=fuzz2)]


def _ids_elsewhere(c: int, f: int, install: O.Op) -> list[O.Op]:
    return [install, O.StartContainer((-1,)), O.TamperLayerFile(-1, f), O.OpenFile(c, f),
            O.OpenFile(-1, f)]


def _proactive_then_open(c: int, f: int, abort: int, midway: bool, other: int, f2: int
                         ) -> list[O.Op]:
    return [O.ProactiveScan(abort_after=abort, update_midway=midway), O.OpenFile(c, f),
            O.OpenFile(other, f2)]


def _host_writes_scratch(c: int, f: int, n: int, new: bool, malware: bool) -> list[O.Op]:
    # A running container's own file, written from the host (no container context).
    file = O.new_file(n) if new else f
    return [O.CreateFile(c, n), O.OpenFile(c, file), O.VolumeWrite(c, file, malware=malware),
            O.OpenFile(c, file)]


def _install_error(c: int, f: int, pre: Sequence[O.Op], volume: int, files: int,
                   registered: bool, malware: bool, sweep_fail: int) -> list[O.Op]:
    # The install-time scan of a file fails; later opens of it, trusted or cached.
    return [*pre,
            O.InstallLayer(volume, files=files, registered=registered, fail_file=f,
                           malware_file=f if malware else -1, delay=0),
            O.StartContainer((-1,)), O.ProactiveScan(fail_file=sweep_fail),
            O.OpenFile(-1, f), O.StartContainer((-1,)), O.OpenFile(-1, f)]


def _host_opens_container_file(c: int, f: int, layer: int, malware: bool, registered: int,
                               chain: int) -> list[O.Op]:
    # The host opens a container's file (no container context), then containers do.
    return [O.TamperLayerFile(layer, f, malware=malware), O.VolumeOpen(c, f),
            O.RegisterLayer(registered), O.StartContainer((chain,)), O.OpenFile(-1, f),
            O.OpenFile(c, f)]


def _claimed_ids(c: int, f: int, fuzz: int, layer: int) -> list[O.Op]:
    # A modified file's hostile ECP carries its old backing ids (LAYER|SCRATCH and kin).
    return [O.SignatureUpdate(abort_after=0), O.WriteFile(c, f), O.OpenFile(c, f, fuzz=fuzz),
            O.StartContainer((layer,)), O.OpenFile(-1, f)]


def _concurrent(c: int, f: int, pre: Sequence[O.Op], op: O.ConcurrentOpens, again: int,
                other: int, third: int) -> list[O.Op]:
    files = op.files
    news = [O.CreateFile(c, -x - 1) for x in files if x < 0]
    reopen = files[again % len(files)]
    # The file written while its scan was in flight, opened again where it was written:
    # a result of the old content must not be credited to the new.
    w = op.write % len(files)
    written = [O.OpenFile(op.container_of(w), files[w])] if op.write >= 0 else []
    # The last file opened, again where it was opened: a result must not be credited to
    # whichever open the adapter saw last.
    last = len(files) - 1
    return [*pre, *news, op, *written, O.OpenFile(op.container_of(last), files[last]),
            O.OpenFile(c, reopen), O.OpenFile(other, reopen),
            O.OpenFile(c, files[third % len(files)])]


def _update_storm(c: int, f: int, count: int, abort: int, layer: int, f2: int
                  ) -> list[O.Op]:
    return [O.SignatureUpdates(count, abort_after=abort), O.OpenFile(c, f),
            O.StartContainer((layer,)), O.OpenFile(-1, f2)]


def _big_layer(c: int, f: int, pre: Sequence[O.Op], volume: int, n: int, registered: bool,
               layer: int, opened: int) -> list[O.Op]:
    return [*pre, O.InstallLayer(volume, files=n, registered=registered),
            O.StartContainer((layer, -1)), O.OpenMany(-1, 0, opened), O.OpenFile(c, f),
            O.OpenFile(-1, f)]


def _many_containers(c: int, f: int, count: int, layer: int, offset: int, n: int, new: bool,
                     near_first: bool, malware: bool, malware2: bool) -> list[O.Op]:
    # The same paths in two containers far apart: per-silo tables with small limits. Both
    # files are written before either is opened, so neither write hides the other.
    far = c + offset
    file = O.new_file(n) if new else f
    a, b = (c, far) if near_first else (far, c)
    return [O.StartContainers(count, (layer,)),
            O.CreateFile(b, n, malware=malware), O.WriteFile(b, f, malware=malware2),
            O.CreateFile(a, n), O.WriteFile(a, f), O.OpenFile(a, file), O.OpenFile(b, file)]


def _many_detections(c: int, f: int, volume: int, every: int, n: int, registered: bool
                     ) -> list[O.Op]:
    return [O.InstallLayer(volume, files=n, registered=registered, malware_every=every),
            O.ProactiveScan(), O.StartContainer((-1,)), O.OpenFile(-1, every - 1),
            O.OpenFile(-1, 2 * every - 1), O.OpenMany(-1, 0, n)]


_concurrent_op = _op(
    O.ConcurrentOpens, containers=_layers, files=_in_flight, order=_order,
    fail=Values((-1, 0, 1, 7)), write=Values((-1, -1, 0, 1)), host_write=_bool,
    malware=_bool, update=_rare, proactive=_rare)

#: Scenes that set up a trap and walk into it, by name (the coverage table's "scene"),
#: each with the tables of its arguments after the container and the file.
SCENES: dict[str, tuple[_Scene, tuple[Field, ...]]] = {
    "cow-reopen": (_cow_reopen, (_fuzz,)),
    "tamper-reopen": (_tamper_reopen, (_idx, _idx)),
    "update-new-container": (_update_new_container, (_abort, _idx, _bool)),
    "id-reuse": (_id_reuse, (_idx, _local_install)),
    "stopped-volume": (_stopped_volume, (_cfile,)),
    "scratch-rewrite": (_scratch_rewrite, (_small,)),
    "update-mid-scan": (_update_mid_scan, (_idx,)),
    "failed-scan": (_failed_scan, (_idx, _idx)),
    "mapped-hostile": (_mapped_hostile, (_idx, _small, _fuzz, _fuzz)),
    "ids-elsewhere": (_ids_elsewhere, (_local_install,)),
    "proactive-then-open": (_proactive_then_open, (_abort, _bool, _idx, _layer_file)),
    "host-writes-scratch": (_host_writes_scratch, (_small, _bool, _bool)),
    "install-error": (_install_error, (_pre_update, _idx, Values(range(2, O.MAX_LAYER_FILES + 1)),
                                       _bool, _bool, _maybe_file)),
    "host-opens-container-file": (_host_opens_container_file, (_idx, _bool, _idx, _idx)),
    "claimed-ids": (_claimed_ids, (Values((2, 3, 10, 11)), _idx)),
    "concurrent": (_concurrent, (_pre_update, _concurrent_op, _layer_file, _idx,
                                 _layer_file)),
    # Long histories that cost little: hundreds of updates or container starts.
    "update-storm": (_update_storm, (_storm, _storm_abort, _idx, _layer_file)),
    "many-containers": (_many_containers, (_many, _idx, _offset, _small, _bool, _bool, _bool,
                                           _bool)),
}
#: Long histories (SPEC §3) that cost time: each example enables them less often.
LONG_SCENES: dict[str, tuple[_Scene, tuple[Field, ...]]] = {
    "big-layer": (_big_layer, (_pre_update, _idx, _big, _bool, _idx, _opened)),
    "many-detections": (_many_detections, (_idx, Values((2, 3)), Values((40, 90, 40, 200)),
                                           _bool)),
}


def _named(name: str, scene: _Scene, args: tuple[Field, ...]) -> Record:
    def build(*values: Any) -> tuple[str, list[O.Op]]:
        return name, scene(*values)

    return Record(build, (_idx, _scene_file, *args))


def _burst(ops: tuple[O.Op, ...]) -> tuple[str, list[O.Op]]:
    return "open-burst", list(ops)


def _one(op: O.Op) -> tuple[str, list[O.Op]]:
    return "single", [op]


_opens = Record(_burst, (Seq(Choice(_open, _open, _op(O.VolumeOpen, container=_idx,
                                                          file=_cfile)), 1, 4),))
_single = Record(_one, (_any_op,))
_COMMON: list[Field] = [_opens, *(_named(n, *sc) for n, sc in SCENES.items())]
_LONG: list[Field] = [_named(n, *sc) for n, sc in LONG_SCENES.items()]
_Fragment = st.SearchStrategy[tuple[str, list[O.Op]]]


def _families(*on: bool) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    return on[:len(_COMMON)], on[len(_COMMON):]


_swarm_record = Record(_families, [_bool] * len(_COMMON) + [_seldom] * len(_LONG))
_picks = [st.integers(0, k) for k in range(1 + len(_COMMON) + len(_LONG))]


def fragments() -> st.SearchStrategy[tuple[str, list[O.Op]]]:
    """A named fragment: ``("single", [op])``, ``("open-burst", ops)`` or a scene."""
    return _fragments


_HYPERV_OPENS = [O.OpenFile(0, i) for i in range(3)]
_FIRST_OPENS = [O.OpenFile(-1, i) for i in range(O.MAX_LAYER_FILES)]


def _opening(first: O.Op, second: O.Op | None, remote: O.Op | None, a: int, b: int
             ) -> list[O.Op]:
    """A host worth testing: local layers (one maybe on a second volume), maybe a remote
    layer, and containers on them, with every file opened once."""
    ops = [first, *([second] if second is not None else [])]
    if remote is not None:
        ops += [remote, O.StartContainer((0,), hyperv=True), *_HYPERV_OPENS]
    return [*ops, O.StartContainer((a, b)), *_FIRST_OPENS]


_none = Const(None)
_opening_record = Record(_opening, (_local_install, Choice(_none, _local_install),
                                     Choice(_none, _remote_install), _idx, _idx))


def _enabled(common: tuple[bool, ...], long: tuple[bool, ...]) -> list[_Fragment]:
    return [_SINGLE, *(f for f, on in zip(_COMMON_DRAWN, common, strict=True) if on),
            *(f for f, on in zip(_LONG_DRAWN, long, strict=True) if on)]


#: Whether an example has at least half the maximum of fragments: one in forty has no
#: floor, and the shrinker goes there (the first entry), so a shrunk example can have none.
_floor = Values([False], [True] * 39)

#: Every choice of an example but the fragment picks and count has this many bytes, so
#: none is misaligned where Hypothesis copies one over another (see ``strategy``).
_WIDTH = max(f.width for f in (_setup, _opening_record, _swarm_record, _floor, _single,
                               *_COMMON, *_LONG))
_setups = strategy(_setup, _WIDTH)
_openings = strategy(_opening_record, _WIDTH)
_swarm = strategy(_swarm_record, _WIDTH)
_floored = strategy(_floor, _WIDTH)
_SINGLE: _Fragment = strategy(_single, _WIDTH)
_COMMON_DRAWN: list[_Fragment] = [strategy(f, _WIDTH) for f in _COMMON]
_LONG_DRAWN: list[_Fragment] = [strategy(f, _WIDTH) for f in _LONG]
_fragments: _Fragment = strategy(Choice(_single, *_COMMON, *_LONG))


def draw_example(draw: Callable[[st.SearchStrategy[Any]], Any], max_fragments: int = 20
                 ) -> tuple[O.Setup, list[O.Op], list[str]]:
    """A setup, an operation list and the scene each operation belongs to: an opening,
    then fragments. Swarm testing: each example enables a random subset of fragment
    families (long histories less often), so some examples pile up what others dilute.

    The engine calls this with ``st.data()``'s ``draw``: Hypothesis labels a composite
    strategy by a hash of its code, which differs from process to process, and its
    shrinker orders its passes by label, so a composite here would make the shrunk traces
    depend on the interpreter's hash seed.
    """
    setup = draw(_setups)
    ops = draw(_openings)
    scenes = ["opening"] * len(ops)
    enabled = _enabled(*draw(_swarm))  # each long history in about one example in ten
    pick = _picks[len(enabled) - 1]
    low = max_fragments // 2 if draw(_floored) else 0
    for _ in range(draw(st.integers(low, max_fragments))):
        name, frag = draw(enabled[draw(pick)])
        ops.extend(frag)
        scenes.extend([name] * len(frag))
    return setup, ops, scenes


@st.composite
def examples(draw: st.DrawFn, max_fragments: int = 20
             ) -> tuple[O.Setup, list[O.Op], list[str]]:
    """:func:`draw_example` as a strategy, for tests (the engine draws through
    ``st.data()`` so that its shrinking does not depend on the hash seed)."""
    return draw_example(draw, max_fragments)
