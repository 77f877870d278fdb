"""Hypothesis strategies over model operations.

An example is a :class:`~reference.ops.Setup` and a list of operations. The list is drawn
as *fragments*: single operations and short scenes that put a faulty adapter in front of
the situation that exposes it (reopen right after a write, tamper then reopen, uninstall
then reinstall so ids are reused, an update between a scan and its result, ...). Every
operation names entities by small indices taken modulo what exists, so any list is valid
and the shrinker may delete any fragment.
"""

from __future__ import annotations

from hypothesis import strategies as st

from reference import ops as O

__all__ = ["examples", "fragments", "operations", "setups"]

_idx = st.integers(0, 3)
_small = st.integers(0, 2)
_layer_file = st.integers(0, O.MAX_LAYER_FILES - 1)
_cfile = st.one_of(_layer_file, st.integers(-3, -1))
_fuzz = st.integers(0, 47)


def setups() -> st.SearchStrategy[O.Setup]:
    return st.builds(
        O.Setup,
        volumes=st.lists(st.sampled_from(O.FILESYSTEMS), min_size=1, max_size=3).map(tuple),
        profile=st.sampled_from(O.PROFILES),
        version=st.just(1),
    )


def _install(**fixed: object) -> st.SearchStrategy[O.Op]:
    kw: dict[str, st.SearchStrategy[object]] = {
        "volume": _idx, "files": st.integers(1, O.MAX_LAYER_FILES),
        "registered": st.booleans(), "remote": st.booleans(),
        "malware_file": st.sampled_from([-1, -1, -1, 0, 1]), "delay": _small,
        "fail_file": st.sampled_from([-1, -1, -1, 0, 1]),
    }
    kw.update({k: st.just(v) for k, v in fixed.items()})
    return st.builds(O.InstallLayer, **kw)  # type: ignore[arg-type]


def _open(**fixed: object) -> st.SearchStrategy[O.Op]:
    kw: dict[str, st.SearchStrategy[object]] = {
        "container": _idx, "file": _cfile,
        "fail": st.sampled_from([False] * 7 + [True]),
        "update_mid_scan": st.sampled_from([False] * 7 + [True]),
        "fuzz": st.sampled_from([0, 0, 0]) | _fuzz,
    }
    kw.update({k: st.just(v) for k, v in fixed.items()})
    return st.builds(O.OpenFile, **kw)  # type: ignore[arg-type]


def operations() -> st.SearchStrategy[O.Op]:
    """Any single operation."""
    malware = st.sampled_from([False] * 5 + [True])
    return st.one_of(
        _install(),
        st.builds(O.RegisterLayer, layer=_idx),
        st.builds(O.UnregisterLayer, layer=_idx),
        st.builds(O.TamperLayerFile, layer=_idx, file=_layer_file, malware=malware, delay=_small),
        st.builds(O.UninstallLayer, layer=_idx),
        st.builds(O.StartContainer, layers=st.lists(_idx, min_size=1, max_size=3).map(tuple),
                  hyperv=st.booleans()),
        st.builds(O.StopContainer, container=_idx),
        _open(),
        st.builds(O.WriteFile, container=_idx, file=_cfile, malware=malware, delay=_small),
        st.builds(O.CreateFile, container=_idx, name=_small, malware=malware, delay=_small),
        st.builds(O.DeleteFile, container=_idx, file=_cfile),
        st.builds(O.OpenMapped, container=_idx, file=_idx, fail=st.booleans(), fuzz=_fuzz),
        st.builds(O.OpenUserMode, container=_idx, name=_small, malware=malware,
                  fail=st.booleans(), fuzz=_fuzz),
        st.builds(O.HostCreate, volume=_idx, name=_small, malware=malware, delay=_small),
        st.builds(O.HostWrite, file=_idx, malware=malware, delay=_small),
        st.builds(O.HostOpen, file=_idx, fail=st.booleans()),
        st.builds(O.HostDelete, file=_idx),
        st.builds(O.VolumeOpen, container=_idx, file=_cfile, fail=st.booleans()),
        st.builds(O.VolumeWrite, container=_idx, file=_cfile, malware=malware, delay=_small),
        st.builds(O.SignatureUpdate, abort_after=st.sampled_from([-1, -1, 0, 1, 2])),
        st.builds(O.ProactiveScan, abort_after=st.sampled_from([-1, -1, 0, 1, 3]),
                  update_midway=st.booleans(), fail_file=st.sampled_from([-1, -1, -1, 0, 2])),
    )


@st.composite
def _scene(draw: st.DrawFn) -> list[O.Op]:
    """A short scene that sets up a trap and then walks into it."""
    c = draw(_idx)
    f = draw(_layer_file)
    which = draw(st.integers(0, 9))
    if which == 0:  # reopen right after copy-on-write
        return [O.OpenFile(c, f), O.WriteFile(c, f), O.OpenFile(c, f, fuzz=draw(_fuzz))]
    if which == 1:  # tamper on the host, then reopen from another container
        la = draw(_idx)
        return [O.TamperLayerFile(la, f), O.OpenFile(c, f), O.OpenFile(draw(_idx), f)]
    if which == 2:  # an update, then opens in a new container
        return [O.SignatureUpdate(abort_after=draw(st.sampled_from([-1, 0, 1]))),
                O.StartContainer((draw(_idx),), hyperv=draw(st.booleans())),
                O.OpenFile(-1, f), O.OpenFile(c, f)]
    if which == 3:  # uninstall, reinstall: the freed ids come back
        la = draw(_idx)
        return [O.UninstallLayer(la), draw(_install(remote=False)),
                O.StartContainer((0,)), O.OpenFile(-1, f)]
    if which == 4:  # a stopped container's volume, opened and written from the host
        return [O.StopContainer(c), O.VolumeWrite(c, f), O.VolumeOpen(c, f),
                O.VolumeOpen(c, draw(_cfile))]
    if which == 5:  # new scratch file, opened, rewritten, reopened
        n = draw(_small)
        return [O.CreateFile(c, n), O.OpenFile(c, O.new_file(n)),
                O.WriteFile(c, O.new_file(n)), O.OpenFile(c, O.new_file(n))]
    if which == 6:  # an update lands between a scan and its result
        return [O.SignatureUpdate(), O.OpenFile(c, f, update_mid_scan=True),
                O.OpenFile(draw(_idx), f)]
    if which == 7:  # a failed scan, then the same file again
        return [O.TamperLayerFile(draw(_idx), f), O.OpenFile(c, f, fail=True),
                O.OpenFile(draw(_idx), f)]
    if which == 8:  # mapped host file, hostile leftovers in the unacknowledged ECP
        return [O.HostCreate(draw(_idx), draw(_small)), O.OpenMapped(c, -1, fuzz=draw(_fuzz)),
                O.OpenFile(c, f, fuzz=draw(_fuzz))]
    # a proactive scan that may abort or straddle an update, then redirected opens
    return [O.ProactiveScan(abort_after=draw(st.sampled_from([-1, 0, 2])),
                            update_midway=draw(st.booleans())),
            O.OpenFile(c, f), O.OpenFile(draw(_idx), draw(_layer_file))]


def fragments() -> st.SearchStrategy[list[O.Op]]:
    # Opens are what the oracle judges: draw them as often as everything else together.
    opens = st.one_of(_open(), st.builds(O.VolumeOpen, container=_idx, file=_cfile))
    return st.one_of(operations().map(lambda op: [op]), _scene(),
                     st.lists(opens, min_size=1, max_size=4), st.lists(_open(), min_size=1,
                                                                        max_size=4))


@st.composite
def examples(draw: st.DrawFn, max_fragments: int = 20) -> tuple[O.Setup, list[O.Op]]:
    """A setup and an operation list that starts with a layer and a container on it."""
    setup = draw(setups())
    ops: list[O.Op] = [draw(_install()), O.StartContainer((0,), hyperv=draw(st.booleans()))]
    for frag in draw(st.lists(fragments(), min_size=max_fragments // 2,
                              max_size=max_fragments)):
        ops.extend(frag)
    return setup, ops
