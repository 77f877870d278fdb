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

from hypothesis import strategies as st

from reference import ops as O

__all__ = ["examples", "fragments", "operations", "setups"]


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
    _op(O.ProactiveScan, abort_after=_abort, update_midway=_bool,
              fail_file=st.sampled_from([-1, -1, -1, 0, 2])),
)

_SCENES = 11
_scene_kind = st.sampled_from(range(_SCENES))
# Scenes name low file numbers, which every layer of two or more files has.
_scene_file = st.integers(0, 1)


@st.composite
def _scene(draw: st.DrawFn) -> list[O.Op]:
    """A short scene that sets up a trap and then walks into it."""
    c = draw(_idx)
    f = draw(_scene_file)
    which = draw(_scene_kind)
    if which == 0:  # reopen right after copy-on-write
        return [O.OpenFile(c, f), O.WriteFile(c, f), O.OpenFile(c, f, fuzz=draw(_fuzz))]
    if which == 1:  # tamper on the host, then reopen here and in another container
        return [O.OpenFile(c, f), O.TamperLayerFile(draw(_idx), f), O.OpenFile(c, f),
                O.OpenFile(draw(_idx), f)]
    if which == 2:  # an update, then opens in a new container
        return [O.SignatureUpdate(abort_after=draw(_abort)),
                O.StartContainer((draw(_idx),), hyperv=draw(_bool)),
                O.OpenFile(-1, f), O.OpenFile(c, f)]
    if which == 3:  # uninstall, reinstall: the freed ids come back
        return [O.UninstallLayer(draw(_idx)), draw(_local_install),
                O.StartContainer((-1,)), O.OpenFile(-1, f)]
    if which == 4:  # a stopped container's volume, opened and written from the host
        return [O.StopContainer(c), O.VolumeWrite(c, f), O.VolumeOpen(c, f),
                O.VolumeOpen(c, draw(_cfile))]
    if which == 5:  # new scratch file, opened, rewritten, reopened
        n = draw(_small)
        return [O.CreateFile(c, n), O.OpenFile(c, O.new_file(n)),
                O.WriteFile(c, O.new_file(n)), O.OpenFile(c, O.new_file(n)),
                O.CreateFile(c, n + 1), O.OpenFile(c, O.new_file(n + 1))]
    if which == 6:  # an update lands between a scan and its result
        return [O.SignatureUpdate(abort_after=0), O.OpenFile(c, f, update_mid_scan=True),
                O.OpenFile(draw(_idx), f)]
    if which == 7:  # a failed scan, then the same file again
        return [O.TamperLayerFile(draw(_idx), f), O.OpenFile(c, f, fail=True),
                O.OpenFile(draw(_idx), f)]
    if which == 8:  # mapped host file, hostile leftovers in the unacknowledged ECP
        return [O.HostCreate(draw(_idx), draw(_small)), O.OpenMapped(c, -1, fuzz=draw(_fuzz)),
                O.OpenFile(c, f, fuzz=draw(_fuzz))]
    if which == 9:  # same ids elsewhere: a second volume or a ReFS neighbour layer
        return [draw(_local_install), O.StartContainer((-1,)), O.TamperLayerFile(-1, f),
                O.OpenFile(c, f), O.OpenFile(-1, f)]
    # a proactive scan that may abort or straddle an update, then redirected opens
    return [O.ProactiveScan(abort_after=draw(_abort), update_midway=draw(_bool)),
            O.OpenFile(c, f), O.OpenFile(draw(_idx), draw(_layer_file))]


_scenes = _scene()
_opens = st.lists(st.one_of(_open, _open, _op(O.VolumeOpen, container=_idx,
                                                      file=_cfile)), min_size=1, max_size=4)
_fragments: st.SearchStrategy[list[O.Op]] = st.one_of(
    _operations.map(lambda op: [op]), _scenes, _scenes, _opens)


def fragments() -> st.SearchStrategy[list[O.Op]]:
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
def examples(draw: st.DrawFn, max_fragments: int = 20) -> tuple[O.Setup, list[O.Op]]:
    """A setup and an operation list: an opening, then fragments."""
    setup = draw(_setups)
    ops = draw(_openings)
    for frag in draw(_fragment_lists(max_fragments)):
        ops.extend(frag)
    return setup, ops


_LISTS: dict[int, st.SearchStrategy[list[list[O.Op]]]] = {}


def _fragment_lists(n: int) -> st.SearchStrategy[list[list[O.Op]]]:
    if n not in _LISTS:
        _LISTS[n] = st.lists(_fragments, min_size=n // 2, max_size=n)
    return _LISTS[n]
