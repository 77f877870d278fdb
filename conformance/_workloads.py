"""The standard efficiency workloads of SPEC §9, as scripted operation sequences."""

from __future__ import annotations

from dataclasses import dataclass

from reference import ops as O

FILES = 6


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    title: str
    setup: O.Setup
    ops: tuple[O.Op, ...]
    containers: int
    #: The invariant this workload exercises most directly.
    invariant: str


def _container_opens(n: int, hyperv: bool = False, chain: tuple[int, ...] = (0,)) -> list[O.Op]:
    out: list[O.Op] = []
    for _ in range(n):
        out.append(O.StartContainer(chain, hyperv=hyperv))
        out.extend(O.OpenFile(-1, f) for f in range(FILES))
        out.append(O.StopContainer(-1))
    return out


def _churn(n: int) -> list[O.Op]:
    out: list[O.Op] = []
    for _ in range(n):
        out.append(O.StartContainer((0,)))
        out += [O.WriteFile(-1, 0), O.OpenFile(-1, 0), O.CreateFile(-1, 0),
                O.OpenFile(-1, O.new_file(0)), O.OpenFile(-1, O.new_file(0))]
        out.extend(O.OpenFile(-1, f) for f in range(1, FILES))
        out.append(O.StopContainer(-1))
    return out


def standard_workloads() -> list[Workload]:
    wcifs = O.Setup(("NTFS",), "wcifs")
    reg = O.InstallLayer(files=FILES, registered=True)
    local = O.InstallLayer(files=FILES)
    return [
        Workload("first-container", "first container on a freshly installed registered base "
                 "layer", wcifs, (reg, *_container_opens(1)), 1, "EFF-4"),
        Workload("first-container-no-registered-flag", "the same, when the system does not "
                 "report REGISTERED", O.Setup(("NTFS",), "no-registered-flag"),
                 (reg, *_container_opens(1)), 1, "EFF-6"),
        Workload("hundred-containers", "100 containers on one local base layer", wcifs,
                 (local, *_container_opens(100)), 100, "EFF-1"),
        Workload("hyper-v", "Hyper-V containers on a remote layer, after a completed "
                 "proactive scan", wcifs,
                 (O.InstallLayer(files=FILES, remote=True), O.ProactiveScan(),
                  *_container_opens(20, hyperv=True)), 20, "EFF-2"),
        Workload("update-burst", "a signature update, a burst of 20 containers, then a "
                 "proactive scan and 20 more", wcifs,
                 (reg, O.InstallLayer(files=FILES // 2), O.SignatureUpdate(abort_after=0),
                  *_container_opens(20, chain=(1, 0)), O.ProactiveScan(),
                  *_container_opens(20, chain=(1, 0))), 40, "EFF-5"),
        Workload("scratch-churn", "20 containers modifying and creating files", wcifs,
                 (local, *_churn(20)), 20, "EFF-1"),
    ]
