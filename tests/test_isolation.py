"""Adapters as a separate party (SPEC §10): isolation by default, per-call timeouts, and
every way an adapter process can fail, each diagnosed as SAFE-13 (or exit 3 at start) with
no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_cli import error_after_progress

from conformance import _remote, replay, run_conformance
from conformance._cli import run as cli
from conformance._session import TIMEOUT_BUDGET, open_adapter

HERE = Path(__file__).resolve().parent
CHILD = HERE / "faults" / "child.py"
GALLERY = HERE / "gallery.py"
TIMEOUT = "0.5"


def exec_spec(mode: str, *extra: str) -> str:
    return f"exec:{sys.executable} {CHILD} {mode} {' '.join(extra)}".rstrip()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process id of every adapter process started while the test runs."""
    pids: list[int] = []
    original = _remote.Child.__init__

    def record(self: _remote.Child, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        pids.append(self.pid)

    monkeypatch.setattr(_remote.Child, "__init__", record)
    return pids


def gone(pid: int) -> bool:
    """No such process (a zombie would still be there: the suite must reap its children)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def certify(tmp_path: Path, spec: str, *args: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "bundle"
    code = cli(["certify", "--adapter", spec, "--max-examples", "30", "--seed", "1",
                "--no-bench", "--call-timeout", TIMEOUT, "--out", str(out), *args])
    cert = json.loads((out / "certificate.json").read_text()) if out.exists() else {}
    return code, cert


@pytest.mark.parametrize(("mode", "kind", "said"), [
    ("hang", "timeout", "post_create did not answer within 0.5 s"),
    ("crash", "crash", "post_create crashed: the adapter process was killed by SIGSEGV"),
    ("garbage", "garbage", "post_create answered with garbage: b'SKIP it, trust me'"),
    ("wrongtype", None, "post_create returned 42, not a Verdict"),
    ("exit", "exited", "post_create ended the conversation: the adapter process exited "
                       "before answering (status 0)"),
    ("raise", None, "post_create raised KeyError: 'volume'"),
])
def test_a_failing_adapter_process_is_safe_13_with_a_replayable_trace(
        tmp_path: Path, started: list[int], capsys: pytest.CaptureFixture[str], mode: str,
        kind: str | None, said: str) -> None:
    code, cert = certify(tmp_path, exec_spec(mode))
    assert code == 1
    inv = cert["invariants"]["SAFE-13"]  # type: ignore[index]
    assert inv["status"] == "fail"
    trace = json.loads((tmp_path / "bundle" / inv["first_counterexample"]).read_text())
    assert trace["summary"].startswith(said)
    assert trace["detail"]["call"] == "post_create"
    assert trace["detail"].get("fault") == kind
    if mode == "crash":
        assert "cache corrupted" in trace["detail"]["stderr"]  # the child's stderr tail
    # Shrunk to the open that triggers it: a layer, a container, one open.
    assert len(trace["ops"]) == 3, trace["steps"]
    assert started and all(gone(pid) for pid in started)
    capsys.readouterr()
    assert cli(["replay", str(tmp_path / "bundle" / inv["first_counterexample"]),
                "--adapter", exec_spec(mode), "--call-timeout", TIMEOUT]) == 1
    assert "Result: SAFE-13 recurs" in capsys.readouterr().out
    assert all(gone(pid) for pid in started)


@pytest.mark.parametrize(("mode", "said"), [
    ("version", "the adapter speaks protocol version 2; this suite speaks version 1"),
    ("exit-hello", "the adapter could not be started: hello ended the conversation"),
    ("hang-hello", "the adapter could not be started: hello did not answer within 5 s"),
    ("crash-start", "the adapter could not be started: start crashed: the adapter process "
                    "was killed by SIGSEGV"),
])
def test_an_adapter_process_that_fails_at_start_is_exit_3(
        tmp_path: Path, started: list[int], capsys: pytest.CaptureFixture[str], mode: str,
        said: str) -> None:
    code, _ = certify(tmp_path, exec_spec(mode))
    err = capsys.readouterr().err
    assert code == 3
    assert said in error_after_progress(err)
    assert all(gone(pid) for pid in started)


def test_a_missing_exec_command_is_exit_3_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = certify(tmp_path, "exec:./no-such-adapter --fast")
    assert code == 3
    assert "cannot start the adapter process './no-such-adapter'" in capsys.readouterr().err


def test_an_exec_command_line_that_does_not_split_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certify(tmp_path, 'exec:python "adapter.py')[0] == 2
    assert "cannot split the exec: command line" in capsys.readouterr().err


def test_a_hang_ends_the_run_after_a_bounded_number_of_timeouts(started: list[int]) -> None:
    result = run_conformance(exec_spec("hang"), max_examples=200, seed=3, call_timeout=0.3)
    assert result.failed == ["SAFE-13"]
    # Shrinking re-meets the hang on every attempt: the budget stops it.
    assert 1 <= result.stats["timeouts"] <= TIMEOUT_BUDGET + 2
    assert all(gone(pid) for pid in started)


@pytest.mark.parametrize("isolate", [False, True])
def test_a_python_adapter_that_loops_forever_is_caught_in_either_mode(isolate: bool) -> None:
    result = run_conformance(f"{HERE / 'faults' / 'spin.py'}:Spins", max_examples=50, seed=2,
                             call_timeout=0.3, isolate=isolate)
    report = result.invariants["SAFE-13"].violation
    assert report is not None
    assert report.summary == (
        "post_create did not answer within 0.3 s (--call-timeout)" if isolate
        else "post_create did not return within 0.3 s (--call-timeout)")
    assert result.settings["isolation"] == ("isolated" if isolate else "in-process")


def test_an_adapter_that_patches_the_suite_gets_no_certificate_by_default(
        tmp_path: Path) -> None:
    spec = f"{HERE / 'faults' / 'tamper.py'}:Tamperer"
    levels = "conformant,signature-current,optimized"
    code, cert = certify(tmp_path / "isolated", spec, "--require", levels)
    assert code == 1
    assert cert["invariants"]["SAFE-1"]["status"] == "fail"  # type: ignore[index]
    assert cert["run"]["isolation"] == "isolated"  # type: ignore[index]
    # What isolation prevents: in the suite's own process (a separate interpreter here, as
    # the patch would stay in this one) the same adapter passes; the certificate then says
    # it ran in-process, on its face too.
    out = tmp_path / "in-process"
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "certify", "--adapter", spec, "--in-process",
         "--require", levels, "--max-examples", "30", "--seed", "1", "--no-bench",
         "--out", str(out)], env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["run"]["isolation"] == "in-process"
    assert "in-process: the adapter shared the suite's process" in (
        out / "summary.md").read_text()


def test_an_isolated_python_adapter_is_never_imported_by_the_suite() -> None:
    path = str(GALLERY)
    before = {m for m, mod in sys.modules.items() if getattr(mod, "__file__", None) == path}
    result = run_conformance(f"{path}:SkipsScratch", max_examples=20, seed=1)
    assert result.failed
    after = {m for m, mod in sys.modules.items() if getattr(mod, "__file__", None) == path}
    assert after == before


def test_isolated_and_in_process_runs_judge_alike() -> None:
    """Same adapter, same seed: the same examples, verdicts, counts and traces."""
    spec = f"{GALLERY}:ReadsLayerRootsNative"  # services travel through the protocol
    runs = [run_conformance(spec, max_examples=40, seed=5, isolate=iso, workloads=False)
            for iso in (False, True)]
    assert runs[0].failed == runs[1].failed == ["SAFE-12"]
    assert ({i: r.exercised for i, r in runs[0].invariants.items()}
            == {i: r.exercised for i, r in runs[1].invariants.items()})
    assert [v.trace() for v in runs[0].violations] == [v.trace() for v in runs[1].violations]


def test_ctrl_c_stops_a_run_and_leaves_no_adapter_process(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "certify", "--adapter",
         exec_spec("hang", marker), "--call-timeout", "60", "--no-bench",
         "--out", str(tmp_path / "b")], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    children: list[int] = []
    while not children and time.monotonic() < deadline:
        time.sleep(0.2)
        children = _pids_with(marker)
    assert children, "the adapter process never started"
    time.sleep(1)  # into the hanging call
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert _pids_with(marker) == []


def _pids_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and b"child.py" in cmdline:
                pids.append(int(entry.name))
    return pids


def test_an_adapter_process_without_batches_gets_one_call_at_a_time(
        started: list[int]) -> None:
    result = run_conformance(exec_spec("nobatch"), max_examples=40, seed=6)
    assert result.levels["conformant"], result.summary()  # scans everything: conformant
    assert all(gone(pid) for pid in started)


def test_a_session_restarts_its_process_after_a_fault(started: list[int]) -> None:
    from conformance import ECP_SIZE, PostCreate, RedirectionEcp
    from conformance._faults import AdapterFault

    layer_open = PostCreate(1, bytes(16), "\\f0.dll", 1, bytes(16), RedirectionEcp(
        RedirectionEcp.pack(ECP_SIZE, 1, b"\1" * 16, b"\2" * 16), True))
    with open_adapter(exec_spec("crash"), call_timeout=1) as session:
        assert session.info.name == "faulty child (crash)"
        first, second = session(), session()  # several adapters live in one process
        assert len(started) == 1 and second.n == first.n + 1
        with pytest.raises(AdapterFault) as crash:
            first.post_create(layer_open)
        assert crash.value.kind == "crash" and "cache corrupted" in crash.value.detail["stderr"]
        with pytest.raises(AdapterFault) as after:
            second.signature_updated(2)  # it lived in the process that crashed
        assert after.value.kind == "exited"
        third = session()
        assert len(started) == 2 and third.signature_updated(2) is False
    assert all(gone(pid) for pid in started)


@pytest.mark.parametrize(("variant", "invariant"), [
    ("stale_marker", "SAFE-9"),  # tests/gallery.py NoInvalidation
    ("truncated_key", "SAFE-6"),  # tests/gallery.py TruncatedKey
])
def test_faulty_exec_variant_is_caught_with_its_id(variant: str, invariant: str,
                                                   started: list[int]) -> None:
    spec = f"exec:{sys.executable} {HERE / 'exec' / f'{variant}.py'}"
    result = run_conformance(spec, "quick", seed=1, workloads=False)
    assert result.violations and result.violations[0].id == invariant, result.summary()
    report = result.invariants[invariant].violation
    assert report is not None
    with open_adapter(spec) as session:
        assert invariant in replay(session, report.trace(spec)).ids
    assert all(gone(pid) for pid in started)


def test_a_timeout_that_fires_as_a_call_returns_never_strikes_the_suite() -> None:
    """The watchdog's exception lands inside the call or is withdrawn: calls that end right
    around the deadline never leak it into the code after them."""
    from conformance._faults import AdapterFault
    from conformance._watchdog import Watchdog

    dog = Watchdog(0.02)

    def busy(seconds: float) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return "done"

    outcomes = set()
    for i in range(150):
        try:
            outcomes.add(dog.call("post_create", busy, 0.012 + (i % 15) * 0.002))
        except AdapterFault as f:
            outcomes.add(f.kind)
        busy(0.004)  # suite code after the call: a leaked timeout would be raised here
    assert outcomes == {"done", "timeout"}
    assert dog.fired >= 1


def test_an_adapter_process_does_not_inherit_the_signing_passphrase(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance._cli import PASSPHRASE_ENV
    from conformance._session import SECRET_VARIABLES

    assert PASSPHRASE_ENV in SECRET_VARIABLES
    monkeypatch.setenv(PASSPHRASE_ENV, "hunter2")
    monkeypatch.setenv("WCIFS_TEST_VISIBLE", "yes")
    for spec in (exec_spec("none"), "reference"):
        with open_adapter(spec) as session:
            assert session.info.name  # started
            environ = (Path("/proc") / str(session.main.child.pid) / "environ").read_bytes()
        assert b"WCIFS_TEST_VISIBLE=yes" in environ
        assert b"hunter2" not in environ
