"""Suite power: concurrency in the model, identity-based SAFE-11, the widened SAFE-12 and
SAFE-13, non-determinism, coverage, and traces of both format versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gallery import CORRECT

from conformance import (
    TRACE_FORMAT_VERSION,
    BaseAdapter,
    EcpRequest,
    PostCreate,
    PreCreate,
    ScanResult,
    Verdict,
    replay,
    run_conformance,
)
from conformance._check import Checker, Tally, Violation, reads_layer_roots
from reference import ops as O
from reference.adapter import ReferenceAdapter, reference_factory
from reference.contract import ChangeKind, FileChange, ScanOrigin, ScanOutcome
from reference.model import World

DATA = Path(__file__).parent / "data"
V1_TRACE = DATA / "safe11-identity-v1.json"


class TrustingNoSweep(ReferenceAdapter):
    """Correct at the conformant level: trusts registered layers and never asks for a
    proactive scan (the adapter that met the SAFE-11 false alarm)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("conformant", False)


SAFE_ADAPTERS = [*CORRECT, reference_factory("signature-current"),
                 reference_factory("conformant"), TrustingNoSweep]


# --- SAFE-11 by identity ----------------------------------------------------------------
@pytest.mark.parametrize("adapter", SAFE_ADAPTERS, ids=lambda a: a.__name__)
def test_safe11_false_alarm_trace_replays_clean(adapter: type[BaseAdapter]) -> None:
    """A finding on C1's placeholder (its own ids) says nothing about L1's backing file,
    which C2 opens: skipping it on registered-layer trust is not SAFE-11."""
    trace = json.loads(V1_TRACE.read_text())
    assert trace["format_version"] == 1  # stored as the old suite wrote it
    found = replay(adapter, trace).violations
    assert [v.id for v in found if v.level == "conformant"] == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parent.parent, env=env)


def test_replay_require_counts_only_required_levels() -> None:
    spec = f"{Path(__file__)}:TrustingNoSweep"
    default = _cli("replay", str(V1_TRACE), "--adapter", spec)
    assert default.returncode == 0, default.stdout + default.stderr
    assert "replays clean: SAFE-11 does not recur" in default.stdout
    assert "not at a required level (conformant): SIG-1" in default.stdout
    strict = _cli("replay", str(V1_TRACE), "--adapter", spec, "--require", "signature-current")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "SIG-1 (signature-current) violated" in strict.stdout


def test_a_finding_under_the_backing_ids_is_safe11() -> None:
    """The same history, but the host finds the malware in the layer file itself (a
    proactive scan): now C2's skip exposes a file this product found infected."""
    ops = [O.InstallLayer(files=2, malware_file=1, delay=1), O.StartContainer((0,)),
           O.RegisterLayer(0), O.SignatureUpdate(), O.ProactiveScan(abort_after=2),
           O.StartContainer((0,)), O.OpenFile(-1, 1)]

    class ForgetsFindings(TrustingNoSweep):
        __slots__ = ()

        def scan_completed(self, result: ScanResult) -> None:
            if result.outcome is not ScanOutcome.INFECTED:
                super().scan_completed(result)

    with pytest.raises(Violation) as caught:
        Checker(ForgetsFindings, O.Setup(), Tally()).run(ops)
    assert caught.value.id == "SAFE-11"
    Checker(TrustingNoSweep, O.Setup(), Tally()).run(ops)  # the correct one scans it


# --- concurrency in the model -----------------------------------------------------------
class Recorder(BaseAdapter):
    """Scans everything and writes down every event it is handed."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return EcpRequest() if create.silo is not None else None

    def post_create(self, create: PostCreate) -> Verdict:
        self.events.append(create)
        return Verdict.SCAN

    def scan_completed(self, result: ScanResult) -> None:
        self.events.append(result)

    def file_changed(self, change: FileChange) -> None:
        self.events.append(change)

    def signature_updated(self, version: int) -> bool:
        self.events.append(("update", version))
        return False


def _concurrent(op: O.ConcurrentOpens) -> list[Any]:
    rec = Recorder()
    world = World(O.Setup(), rec)
    world.run([O.InstallLayer(files=4), O.StartContainer((0,)), O.StartContainer((0,))])
    rec.events.clear()
    world.apply(op)
    return rec.events


def test_every_create_completes_before_results_arrive_in_reverse() -> None:
    events = _concurrent(O.ConcurrentOpens(containers=(0, 1), files=(0, 1, 2)))
    posts = [e for e in events if isinstance(e, PostCreate)]
    results = [e for e in events if isinstance(e, ScanResult)]
    assert events[:3] == posts and events[3:] == results
    assert [r.create_id for r in results] == [p.create_id for p in reversed(posts)]
    # Each result names its own create's file, in alternating containers.
    by_id = {p.create_id: p for p in posts}
    assert all(r.file_id == by_id[r.create_id].file_id
               and r.volume_guid == by_id[r.create_id].volume_guid for r in results)
    assert len({p.volume_guid for p in posts}) == 2


def test_shuffled_order_is_deterministic_and_a_permutation() -> None:
    op = O.ConcurrentOpens(files=(0, 1, 2, 3), order=17)
    first = [e.create_id for e in _concurrent(op) if isinstance(e, ScanResult)]
    again = [e.create_id for e in _concurrent(op) if isinstance(e, ScanResult)]
    assert first == again
    assert len(set(first)) == 4


def test_a_write_in_flight_arrives_before_the_stale_result() -> None:
    events = _concurrent(O.ConcurrentOpens(files=(0, 1), write=0, host_write=True))
    change = next(i for i, e in enumerate(events) if isinstance(e, FileChange))
    tampered = events[change]
    assert tampered.kind is ChangeKind.WRITE and tampered.silo is None
    assert all(isinstance(e, ScanResult) for e in events[change + 1:])


def test_an_update_in_flight_leaves_results_with_the_version_they_started_under() -> None:
    events = _concurrent(O.ConcurrentOpens(files=(0, 1), update=True, proactive=True))
    update = events.index(("update", 2))
    later = events[update + 1:]
    on_access = [e for e in later if isinstance(e, ScanResult) and e.origin is
                 ScanOrigin.ON_ACCESS]
    sweep = [e for e in later if isinstance(e, ScanResult) and e.origin is ScanOrigin.PROACTIVE]
    assert len(on_access) == 2 and len(sweep) == 4
    assert {e.signature_version for e in on_access + sweep} == {1}
    # The proactive results interleave with the on-access ones.
    kinds = [e.origin for e in later if isinstance(e, ScanResult)]
    assert kinds[:2] == [ScanOrigin.ON_ACCESS, ScanOrigin.PROACTIVE]


def test_a_stale_result_is_never_cached_by_the_reference() -> None:
    ops = [O.InstallLayer(files=2), O.StartContainer((0,)), O.SignatureUpdate(abort_after=0),
           O.ConcurrentOpens(files=(0, 1), write=0, host_write=True, malware=True),
           O.StartContainer((0,)), O.OpenFile(-1, 0)]
    tally = Tally()
    Checker(reference_factory(), O.Setup(), tally).run(ops)
    assert tally.exercised["SAFE-14"] >= 2


# --- SAFE-12 and SAFE-13, widened ---------------------------------------------------------
@pytest.mark.parametrize("key", [
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\LayerRootLocations",
    r"\Registry\Machine\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization"
    r"\LayerRootLocations",
    r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization"
    r"\LayerRootLocations",
    r"hklm\software\microsoft\windows nt\currentversion\virtualization\layerrootlocations\\",
    r"HKLM\\SOFTWARE\Microsoft\Windows NT\\CurrentVersion\Virtualization\LayerRootLocations",
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\LayerRootLocations\0",
    "HKLM/SOFTWARE/Microsoft/Windows NT/CurrentVersion/Virtualization/LayerRootLocations",
])
def test_every_spelling_of_layer_root_locations_is_forbidden(key: str) -> None:
    assert reads_layer_roots(key)


@pytest.mark.parametrize("key", [
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization",
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\LayerRootLocationsOld",
    r"HKCU\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\LayerRootLocations",
])
def test_neighbouring_keys_are_allowed(key: str) -> None:
    assert not reads_layer_roots(key)


class ClearsSilo(ReferenceAdapter):
    """Rewrites what it was handed, as a "normalisation" step."""

    __slots__ = ()

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        answer = super().pre_create(create)
        object.__setattr__(create, "silo", None)
        return answer


def test_an_adapter_that_changes_its_input_is_safe13_and_judged_on_the_truth() -> None:
    ops = [O.InstallLayer(files=2), O.StartContainer((0,)), O.OpenFile(0, 0)]
    with pytest.raises(Violation) as caught:
        Checker(ClearsSilo, O.Setup(), Tally()).run(ops)
    v = caught.value
    assert v.id == "SAFE-13" and "changed what it was handed" in v.summary
    assert "silo" in v.summary


_CALLS = [0]


class FlakyAdapter(ReferenceAdapter):
    """Keeps a counter across adapters: every 150th create anywhere raises."""

    __slots__ = ()

    def post_create(self, create: PostCreate) -> Verdict:
        _CALLS[0] += 1
        if _CALLS[0] % 150 == 0:
            raise RuntimeError("table full")
        return super().post_create(create)


def test_a_non_recurring_failure_is_safe13_nondeterministic_with_the_unshrunk_trace() -> None:
    result = run_conformance(FlakyAdapter, "quick", seed=4, max_examples=200, workloads=False)
    conformant = [i for i in result.failed if result.invariants[i].level == "conformant"]
    assert conformant == ["SAFE-13"], result.summary()
    report = result.invariants["SAFE-13"].violation
    assert report is not None and report.nondeterministic
    assert "non-deterministic" in report.summary
    trace = report.trace()
    assert trace["nondeterministic"] is True and trace["format_version"] == TRACE_FORMAT_VERSION
    assert len(trace["ops"]) == len(report.ops) > 0


# --- coverage and traces -------------------------------------------------------------------
def test_coverage_sums_to_exercised_in_every_dimension() -> None:
    result = run_conformance(reference_factory(), "quick", seed=11, max_examples=60)
    for inv, r in result.invariants.items():
        dims = result.coverage[inv]
        for dim in ("operation", "profile", "scene"):
            assert sum(dims[dim].values()) == r.exercised, (inv, dim)
    assert "start" in result.coverage["SAFE-12"]["operation"]
    assert "opening" in result.coverage["SAFE-1"]["scene"]
    assert any(s.startswith("workload:") for s in result.coverage["SAFE-1"]["scene"])


def test_new_operations_round_trip_through_json() -> None:
    ops = [O.ConcurrentOpens(containers=(0, 2), files=(1, -1), order=5, fail=1, write=0,
                             host_write=True, malware=True, update=True, proactive=True),
           O.SignatureUpdates(256, abort_after=0), O.StartContainers(300, (1,), True),
           O.OpenMany(1, 2, 500), O.InstallLayer(files=90, malware_every=3)]
    for op in ops:
        assert O.op_from_json(json.loads(json.dumps(O.op_to_json(op)))) == op


def test_same_seed_same_trace_in_another_process_with_another_hash_seed() -> None:
    """SPEC §8: same suite, adapter and seed give the same traces, whatever the
    interpreter's string-hash seed (which Hypothesis's labels can otherwise pick up). The
    work spent shrinking (``stats.steps`` of a failing run) is not compared: Hypothesis's
    shrinker makes a varying number of calls from run to run, even in one process setup,
    on the way to the same minimal example."""
    code = ("import json, sys; sys.path.insert(0, 'tests'); from gallery import "
            "IgnoresVersion; from conformance import run_conformance; r = run_conformance("
            "IgnoresVersion, 'quick', seed=5, workloads=False); print(json.dumps("
            "[r.stats['examples'], [v.trace() for v in r.violations]]))")
    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, cwd=Path(__file__).parent.parent, env=env)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1]


def _trace_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (Path(__file__).parent.parent / "reports" / "trace.schema.json").read_text())
    return schema


def test_traces_of_both_format_versions_validate_against_the_trace_schema() -> None:
    import jsonschema

    schema = _trace_schema()
    jsonschema.validate(json.loads(V1_TRACE.read_text()), schema)
    ops = [O.InstallLayer(files=2), O.StartContainer((0,)), O.SignatureUpdate(abort_after=0),
           O.ConcurrentOpens(files=(0, 1), fail=0), O.SignatureUpdates(3),
           O.StartContainers(2), O.OpenMany(0, 0, 2)]
    steps: list[str] = []
    Checker(reference_factory(), O.Setup(), Tally()).run(ops, steps)
    from conformance._engine import ViolationReport

    trace = ViolationReport("SAFE-14", "conformant", "all", "example", {}, O.Setup(),
                            tuple(ops), steps).trace()
    assert trace["format_version"] == TRACE_FORMAT_VERSION
    jsonschema.validate(trace, schema)
    # A version 1 trace cannot hold what version 2 added (nor what 3 did).
    v2 = {k: v for k, v in trace.items() if k not in ("calls", "failing_call")}
    jsonschema.validate({**v2, "format_version": 2}, schema)
    old = {**v2, "format_version": 1, "nondeterministic": False}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(old, schema)
