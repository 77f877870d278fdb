"""Hypothesis strategies over model operations.

An example is a :class:`~reference.ops.Setup` and a list of operations. It opens with a
small host (one or two local layers, maybe a remote one, a container or two on them) and
continues as *fragments*: single operations, bursts of opens, and short scenes that put a
faulty adapter in front of the situation that exposes it (reopen right after a write,
tamper then reopen, uninstall then reinstall so ids are reused, an update between a scan
and its result, hostile leftovers in an unacknowledged ECP, ...). Operations name entities
by small indices taken modulo what exists, so any list is valid and the shrinker may
delete any fragment.

All strategies are built once, at import: building them per draw costs more than running
the model.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from reference import ops as O

__all__ = ["LONG_SCENES", "SCENES", "examples", "fragments", "operations", "setups"]


def _op(cls: type[O.Op], **fields: st.SearchStrategy[object]) -> st.SearchStrategy[O.Op]:
    """Like ``st.builds``, without its per-draw signature inspection (which costs more
    than running the model)."""
    names = list(fields)

    def make(values: tuple[object, ...]) -> O.Op:
        return cls(**dict(zip(names, values, strict=True)))

    return st.tuples(*fields.values()).map(make)

_idx = st.integers(0, 3)
_small = st.integers(0, 2)
_bool = st.booleans()
_rare = st.sampled_from([False] * 7 + [True])
_layer_file = st.integers(0, O.MAX_LAYER_FILES - 1)
_cfile = st.one_of(_layer_file, st.integers(-3, -1))
_fuzz = st.integers(0, 47)
_maybe_file = st.sampled_from([-1, -1, -1, 0, 1])
_abort = st.sampled_from([-1, -1, 0, 1, 2])
_malware = st.sampled_from([False] * 5 + [True])


def setups() -> st.SearchStrategy[O.Setup]:
    return st.builds(
        O.Setup,
        volumes=st.lists(st.sampled_from(O.FILESYSTEMS), min_size=1, max_size=3).map(tuple),
        profile=st.sampled_from(O.PROFILES),
        version=st.just(1),
    )


_local_install = _op(
    O.InstallLayer, volume=_idx, files=st.integers(2, O.MAX_LAYER_FILES),
    registered=st.sampled_from([False, False, True]), remote=st.just(False),
    malware_file=_maybe_file, delay=_small, fail_file=_maybe_file)
_remote_install = _op(
    O.InstallLayer, files=st.integers(1, O.MAX_LAYER_FILES), registered=_bool,
    remote=st.just(True), malware_file=_maybe_file, delay=_small)
_install = st.one_of(_local_install, _local_install, _remote_install)

_open = _op(O.OpenFile, container=_idx, file=_cfile, fail=_rare, update_mid_scan=_rare,
                  fuzz=st.one_of(st.just(0), _fuzz))


_in_flight = st.lists(st.one_of(_layer_file, st.integers(-3, -1)), min_size=2,
                      max_size=O.MAX_IN_FLIGHT).map(tuple)
_order = st.one_of(st.just(0), st.integers(1, 1000))

def operations() -> st.SearchStrategy[O.Op]:
    """Any single operation."""
    return _operations


_operations: st.SearchStrategy[O.Op] = st.one_of(
    _install,
    _op(O.RegisterLayer, layer=_idx),
    _op(O.UnregisterLayer, layer=_idx),
    _op(O.TamperLayerFile, layer=_idx, file=_layer_file, malware=_malware, delay=_small),
    _op(O.UninstallLayer, layer=_idx),
    _op(O.StartContainer, layers=st.lists(_idx, min_size=1, max_size=3).map(tuple),
              hyperv=st.sampled_from([False, False, True])),
    _op(O.StopContainer, container=_idx),
    _open,
    _op(O.WriteFile, container=_idx, file=_cfile, malware=_malware, delay=_small),
    _op(O.CreateFile, container=_idx, name=_small, malware=_malware, delay=_small),
    _op(O.DeleteFile, container=_idx, file=_cfile),
    _op(O.OpenMapped, container=_idx, file=_idx, fail=_rare, fuzz=_fuzz),
    _op(O.OpenUserMode, container=_idx, name=_small, malware=_malware, fail=_rare,
              fuzz=_fuzz),
    _op(O.HostCreate, volume=_idx, name=_small, malware=_malware, delay=_small),
    _op(O.HostWrite, file=_idx, malware=_malware, delay=_small),
    _op(O.HostOpen, file=_idx, fail=_rare),
    _op(O.HostDelete, file=_idx),
    _op(O.VolumeOpen, container=_idx, file=_cfile, fail=_rare),
    _op(O.VolumeWrite, container=_idx, file=_cfile, malware=_malware, delay=_small),
    _op(O.SignatureUpdate, abort_after=_abort),
    _op(O.SignatureUpdates, count=st.integers(2, 8), abort_after=_abort),
    _op(O.StartContainers, count=st.integers(2, 8), layers=st.tuples(_idx)),
    _op(O.OpenMany, container=_idx, first=_layer_file, count=st.integers(2, 8)),
    _op(O.ConcurrentOpens, containers=st.lists(_idx, min_size=1, max_size=3).map(tuple),
        files=_in_flight, order=_order, fail=_maybe_file, write=_maybe_file,
        host_write=_bool, malware=_bool, update=_rare, proactive=_rare),
    _op(O.ProactiveScan, abort_after=_abort, update_midway=_bool,
              fail_file=st.sampled_from([-1, -1, -1, 0, 2])),
)

# Scenes name low file numbers, which every layer of two or more files has.
_scene_file = st.integers(0, 1)
_pre_update = st.sampled_from([[], [O.SignatureUpdate(abort_after=0)]])
#: Boundary values first: wrap-arounds and table sizes live at powers of two.
_storm = st.one_of(st.sampled_from([256, 255, 257, 128, 127, 129, 64, 512, 1024]),
                   st.integers(2, 600))
_big = st.sampled_from([80, 300, 140, 48, 600, 1100, 2100])
_many = st.sampled_from([300, 70, 140, 600])
_offset = st.sampled_from([256, 128, 64, 1])


def _cow_reopen(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.OpenFile(c, f), O.WriteFile(c, f), O.OpenFile(c, f, fuzz=draw(_fuzz))]


def _tamper_reopen(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.OpenFile(c, f), O.TamperLayerFile(draw(_idx), f), O.OpenFile(c, f),
            O.OpenFile(draw(_idx), f)]


def _update_new_container(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.SignatureUpdate(abort_after=draw(_abort)),
            O.StartContainer((draw(_idx),), hyperv=draw(_bool)),
            O.OpenFile(-1, f), O.OpenFile(c, f)]


def _id_reuse(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.UninstallLayer(draw(_idx)), draw(_local_install),
            O.StartContainer((-1,)), O.OpenFile(-1, f)]


def _stopped_volume(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.StopContainer(c), O.VolumeWrite(c, f), O.VolumeOpen(c, f),
            O.VolumeOpen(c, draw(_cfile))]


def _scratch_rewrite(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    n = draw(_small)
    return [O.CreateFile(c, n), O.OpenFile(c, O.new_file(n)),
            O.WriteFile(c, O.new_file(n)), O.OpenFile(c, O.new_file(n)),
            O.CreateFile(c, n + 1), O.OpenFile(c, O.new_file(n + 1))]


def _update_mid_scan(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.SignatureUpdate(abort_after=0), O.OpenFile(c, f, update_mid_scan=True),
            O.OpenFile(draw(_idx), f)]


def _failed_scan(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.TamperLayerFile(draw(_idx), f), O.OpenFile(c, f, fail=True),
            O.OpenFile(draw(_idx), f)]


def _mapped_hostile(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.HostCreate(draw(_idx), draw(_small)), O.OpenMapped(c, -1, fuzz=draw(_fuzz)),
            O.OpenFile(c, f, fuzz=draw(_fuzz))]


def _ids_elsewhere(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [draw(_local_install), O.StartContainer((-1,)), O.TamperLayerFile(-1, f),
            O.OpenFile(c, f), O.OpenFile(-1, f)]


def _proactive_then_open(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.ProactiveScan(abort_after=draw(_abort), update_midway=draw(_bool)),
            O.OpenFile(c, f), O.OpenFile(draw(_idx), draw(_layer_file))]


def _host_writes_scratch(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    # A running container's own file, written from the host (no container context).
    n = draw(_small)
    file = draw(st.sampled_from([O.new_file(n), f]))
    return [O.CreateFile(c, n), O.OpenFile(c, file), O.VolumeWrite(c, file, malware=draw(_bool)),
            O.OpenFile(c, file)]


def _install_error(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    # The install-time scan of a file fails; later opens of it, trusted or cached.
    return [*draw(_pre_update),
            O.InstallLayer(draw(_idx), files=draw(st.integers(2, O.MAX_LAYER_FILES)),
                           registered=draw(_bool), fail_file=f,
                           malware_file=draw(st.sampled_from([-1, f])), delay=0),
            O.StartContainer((-1,)), O.ProactiveScan(fail_file=draw(_maybe_file)),
            O.OpenFile(-1, f), O.StartContainer((-1,)), O.OpenFile(-1, f)]


def _host_opens_container_file(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    # The host opens a container's file (no container context), then containers do.
    return [O.TamperLayerFile(draw(_idx), f, malware=draw(_bool)), O.VolumeOpen(c, f),
            O.RegisterLayer(draw(_idx)), O.StartContainer((draw(_idx),)), O.OpenFile(-1, f),
            O.OpenFile(c, f)]


def _claimed_ids(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    # A modified file's hostile ECP carries its old backing ids (LAYER|SCRATCH and kin).
    return [O.SignatureUpdate(abort_after=0), O.WriteFile(c, f),
            O.OpenFile(c, f, fuzz=draw(st.sampled_from([2, 3, 10, 11]))),
            O.StartContainer((draw(_idx),)), O.OpenFile(-1, f)]



def _concurrent(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    files = draw(_in_flight)
    n = len(files)
    op = O.ConcurrentOpens(
        containers=tuple(draw(st.lists(_idx, min_size=1, max_size=3))), files=files,
        order=draw(_order), fail=draw(st.sampled_from([-1, 0, 1, n - 1])),
        write=draw(st.sampled_from([-1, -1, 0, 1])), host_write=draw(_bool),
        malware=draw(_bool), update=draw(_rare), proactive=draw(_rare))
    news = [O.CreateFile(c, -x - 1) for x in files if x < 0]
    again = draw(st.sampled_from(files))
    return [*draw(_pre_update), *news, op, O.OpenFile(c, again),
            O.OpenFile(draw(_idx), again), O.OpenFile(c, draw(st.sampled_from(files)))]


def _update_storm(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    return [O.SignatureUpdates(draw(_storm), abort_after=draw(_abort)), O.OpenFile(c, f),
            O.StartContainer((draw(_idx),)), O.OpenFile(-1, draw(_layer_file))]


def _big_layer(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    n = draw(_big)
    return [*draw(_pre_update),
            O.InstallLayer(draw(_idx), files=n, registered=draw(_bool)),
            O.StartContainer((draw(_idx), -1)), O.OpenMany(-1, 0, draw(_big)),
            O.OpenFile(c, f), O.OpenFile(-1, f)]


def _many_containers(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    # The same paths in two containers far apart: per-silo tables with small limits.
    # Both files are written before either is opened, so neither write hides the other.
    far = c + draw(_offset)
    n = draw(_small)
    file = draw(st.sampled_from([O.new_file(n), f]))
    a, b = (c, far) if draw(_bool) else (far, c)
    return [O.StartContainers(draw(_many), (draw(_idx),)),
            O.CreateFile(b, n, malware=draw(_bool)), O.WriteFile(b, f, malware=draw(_bool)),
            O.CreateFile(a, n), O.WriteFile(a, f), O.OpenFile(a, file), O.OpenFile(b, file)]


def _many_detections(draw: st.DrawFn, c: int, f: int) -> list[O.Op]:
    every = draw(st.sampled_from([2, 3]))
    n = draw(st.sampled_from([40, 90, 200]))
    return [O.InstallLayer(draw(_idx), files=n, registered=draw(_bool), malware_every=every),
            O.ProactiveScan(), O.StartContainer((-1,)), O.OpenFile(-1, every - 1),
            O.OpenFile(-1, 2 * every - 1), O.OpenMany(-1, 0, n)]


_Scene = Callable[[st.DrawFn, int, int], list[O.Op]]


def _named(name: str, scene: _Scene) -> st.SearchStrategy[tuple[str, list[O.Op]]]:
    @st.composite
    def run(draw: st.DrawFn) -> tuple[str, list[O.Op]]:
        return name, scene(draw, draw(_idx), draw(_scene_file))

    return run()


#: Scenes that set up a trap and walk into it, by name (the coverage table's "scene").
SCENES: dict[str, _Scene] = {
    "cow-reopen": _cow_reopen,
    "tamper-reopen": _tamper_reopen,
    "update-new-container": _update_new_container,
    "id-reuse": _id_reuse,
    "stopped-volume": _stopped_volume,
    "scratch-rewrite": _scratch_rewrite,
    "update-mid-scan": _update_mid_scan,
    "failed-scan": _failed_scan,
    "mapped-hostile": _mapped_hostile,
    "ids-elsewhere": _ids_elsewhere,
    "proactive-then-open": _proactive_then_open,
    "host-writes-scratch": _host_writes_scratch,
    "install-error": _install_error,
    "host-opens-container-file": _host_opens_container_file,
    "claimed-ids": _claimed_ids,
    "concurrent": _concurrent,
}
#: Long histories (SPEC §3): costlier, so each example enables them less often.
LONG_SCENES: dict[str, _Scene] = {
    "update-storm": _update_storm,
    "big-layer": _big_layer,
    "many-containers": _many_containers,
    "many-detections": _many_detections,
}

_opens = st.lists(st.one_of(_open, _open, _op(O.VolumeOpen, container=_idx, file=_cfile)),
                  min_size=1, max_size=4).map(lambda ops: ("open-burst", ops))
_single = _operations.map(lambda op: ("single", [op]))
_Fragment = st.SearchStrategy[tuple[str, list[O.Op]]]
_COMMON: list[_Fragment] = [_opens, *(_named(n, sc) for n, sc in SCENES.items())]
_LONG: list[_Fragment] = [_named(n, sc) for n, sc in LONG_SCENES.items()]
_swarm = st.tuples(st.tuples(*(_bool for _ in _COMMON)), st.tuples(*(_rare for _ in _LONG)))
_fragments: _Fragment = st.one_of(_single, *_COMMON, *_LONG)


def fragments() -> st.SearchStrategy[tuple[str, list[O.Op]]]:
    """A named fragment: ``("single", [op])``, ``("open-burst", ops)`` or a scene."""
    return _fragments


@st.composite
def _opening(draw: st.DrawFn) -> list[O.Op]:
    """A host worth testing: local layers (one maybe on a second volume), maybe a remote
    layer, and containers on them, with every file opened once."""
    ops: list[O.Op] = [draw(_local_install)]
    if draw(_bool):
        ops.append(draw(_local_install))
    if draw(_bool):
        ops.append(draw(_remote_install))
        ops += [O.StartContainer((0,), hyperv=True)]
        ops += [O.OpenFile(0, i) for i in range(3)]
    ops.append(O.StartContainer((draw(_idx), draw(_idx))))
    ops += [O.OpenFile(-1, i) for i in range(O.MAX_LAYER_FILES)]
    return ops


_openings = _opening()
_setups = setups()


@st.composite
def examples(draw: st.DrawFn, max_fragments: int = 20
             ) -> tuple[O.Setup, list[O.Op], list[str]]:
    """A setup, an operation list and the scene each operation belongs to: an opening,
    then fragments. Swarm testing: each example enables a random subset of fragment
    families (long histories less often), so some examples pile up what others dilute."""
    setup = draw(_setups)
    ops = draw(_openings)
    scenes = ["opening"] * len(ops)
    common, long = draw(_swarm)  # each long history is enabled in about one example in 8
    enabled = [_single, *(f for f, on in zip(_COMMON, common, strict=True) if on),
               *(f for f, on in zip(_LONG, long, strict=True) if on)]
    pick = st.integers(0, len(enabled) - 1)
    for _ in range(draw(st.integers(max_fragments // 2, max_fragments))):
        name, frag = draw(enabled[draw(pick)])
        ops.extend(frag)
        scenes.extend([name] * len(frag))
    return setup, ops, scenes
