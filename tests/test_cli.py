"""The ``wcifs-conformance`` command line (SPEC §8): every verb, option and exit code.

End-to-end tests run ``python -m conformance`` in a subprocess, one per exit code; the many
small variants (malformed traces, usage errors, keygen, bench) call ``conformance._cli.run``
in-process, which is the same code without the interpreter start-up.

The faulty adapter runs with a single generated example: the standard workloads then catch
its defect deterministically, and Hypothesis has nothing to shrink, so each run takes a
fraction of a second (shrinking a generated counterexample can take ten seconds or more).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from conformance._cli import run
from conformance._invariants import IDS, INVARIANTS

GALLERY = Path(__file__).resolve().with_name("gallery.py")
FAULTY = f"{GALLERY}:SkipsScratch"
#: Enough examples (with this seed) for the reference to exercise every invariant.
REFERENCE_RUN = ("--max-examples", "100", "--seed", "1")
FAULTY_RUN = ("--max-examples", "1", "--seed", "1")


def cli(*args: str | Path, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def one_error_line(stderr: str) -> str:
    """stderr holds exactly one line, the CLI's error line, and no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("wcifs-conformance: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def error_after_progress(stderr: str) -> str:
    """A run that failed on its way: plain progress lines, then one error line, and no
    traceback."""
    *progress, last = stderr.strip().splitlines()
    for line in progress:
        assert line.startswith("wcifs-conformance: ") and ": error:" not in line, stderr
    assert last.startswith("wcifs-conformance: error: "), stderr
    assert "Traceback" not in stderr
    return last


def progress_only(stderr: str) -> list[str]:
    """Without a terminal, certify writes plain progress lines to stderr, nothing else."""
    lines = stderr.splitlines()
    assert lines, "certify shows progress without a terminal too"
    for line in lines:
        assert line.startswith("wcifs-conformance: ") and ": error:" not in line, stderr
    return lines


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def reference_run(workdir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = workdir / "reference-bundle"
    return cli("certify", "--adapter", "reference", *REFERENCE_RUN, "--out", out,
               cwd=workdir, env={"CI": "true"}), out


@pytest.fixture(scope="module")
def faulty_run(workdir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = workdir / "faulty-bundle"
    return cli("certify", "--adapter", FAULTY, *FAULTY_RUN, "--out", out, cwd=workdir,
               env={"CI": "true"}), out


# --- one end-to-end test per exit code --------------------------------------------------------
def test_certify_reference_meets_the_required_level_exit_0(
        reference_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = reference_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    progress = progress_only(proc.stderr)
    assert any(": generating: 0 of 100 examples" in line for line in progress)
    assert any(": workloads: " in line for line in progress)
    last = proc.stdout.splitlines()[-2:]
    assert last == ["Required levels (conformant): met",
                    f"Certificate: {(out / 'certificate.html').resolve().as_uri()}"]
    assert "\x1b[" not in proc.stdout, "no colour without a terminal"
    assert f"Bundle: {out}" in proc.stdout
    for name in ("certificate.json", "certificate.html", "summary.md", "junit.xml",
                 "benchmark.json", "MANIFEST.sha256"):
        assert (out / name).is_file(), name
    assert not (out / "traces").exists() or not list((out / "traces").iterdir())
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["levels"] == {"conformant": True, "signature-current": True, "optimized": True}
    assert cert["verdict"]["met"] is True


def test_certify_faulty_adapter_exit_1_and_its_trace_replays(
        faulty_run: tuple[subprocess.CompletedProcess[str], Path], workdir: Path) -> None:
    proc, out = faulty_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    progress_only(proc.stderr)
    assert "SAFE-2" in proc.stdout and "NOT met" in proc.stdout
    summary = (out / "summary.md").read_text()
    assert "**SAFE-2**" in summary
    assert f"wcifs-conformance replay {out}/traces/SAFE-2.json --adapter {FAULTY}" in summary
    trace = out / "traces" / "SAFE-2.json"
    assert json.loads(trace.read_text())["invariant"] == "SAFE-2"
    # The one example's failing open is counted: what an op broke, it exercised.
    cert = json.loads((out / "certificate.json").read_text())
    assert all(r["exercised"] >= 1 for r in cert["invariants"].values() if r["status"] == "fail")

    again = cli("replay", trace, "--adapter", FAULTY, cwd=workdir)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "Steps:" in again.stdout
    assert "SAFE-2 (conformant) violated" in again.stdout
    assert "Result: SAFE-2 recurs." in again.stdout

    clean = cli("replay", trace, "--adapter", "reference", cwd=workdir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "replays clean" in clean.stdout
    assert "violated" not in clean.stdout


def test_unknown_adapter_spec_exit_2(workdir: Path) -> None:
    proc = cli("certify", "--adapter", "no_such_vendor_module:Adapter", "--out",
               workdir / "never", cwd=workdir)
    assert proc.returncode == 2
    assert "no module named 'no_such_vendor_module'" in one_error_line(proc.stderr)
    assert not (workdir / "never").exists()


def test_adapter_whose_constructor_raises_exit_3(tmp_path: Path) -> None:
    (tmp_path / "broken_adapter.py").write_text(textwrap.dedent("""
        from conformance import BaseAdapter

        class Broken(BaseAdapter):
            def __init__(self):
                raise RuntimeError("licence server unreachable")
    """))
    proc = cli("certify", "--adapter", "broken_adapter.py:Broken", "--out", tmp_path / "out",
               cwd=tmp_path)
    assert proc.returncode == 3
    line = one_error_line(proc.stderr)
    assert "could not be created" in line and "licence server unreachable" in line
    assert not (tmp_path / "out").exists()


def test_malformed_trace_exit_2(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text('{"format": "wcifs-conformance-trace", "invariant": "SAFE-2", "ops": [')
    proc = cli("replay", trace, "--adapter", "reference", cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not JSON" in one_error_line(proc.stderr)


# --- replay ----------------------------------------------------------------------------------
def _trace(faulty_run: tuple[Any, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((faulty_run[1] / "traces" / "SAFE-2.json").read_text())
    return data


@pytest.mark.parametrize("mutate, message", [
    (None, "does not exist"),
    ("not json", "is not JSON"),
    ([1, 2, 3], "is not a wcifs-conformance-trace file"),
    ({"format": "something-else"}, "is not a wcifs-conformance-trace file"),
    ({"invariant": "SAFE-99"}, "names no known invariant"),
    ({"ops": "install everything"}, "is malformed"),
    ({"ops": [{"op": "ReformatDisk"}]}, "unknown operation 'ReformatDisk'"),
    ({"ops": [{"no-op-name": 1}]}, "is malformed"),
    ({"setup": {"volumes": ["FAT32"]}}, "is malformed"),
    ({"setup": "NTFS"}, "is malformed"),
])
def test_malformed_traces_are_one_line_exit_2(
        mutate: object, message: str, faulty_run: tuple[Any, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.json"
    if isinstance(mutate, dict):
        path.write_text(json.dumps({**_trace(faulty_run), **mutate}))
    elif isinstance(mutate, str):
        path.write_text(mutate)
    elif mutate is not None:
        path.write_text(json.dumps(mutate))
    assert run(["replay", str(path), "--adapter", "reference"]) == 2
    captured = capsys.readouterr()
    assert message in one_error_line(captured.err)
    assert captured.out == ""


def test_replay_names_an_unknown_adapter_exit_2(faulty_run: tuple[Any, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    trace = faulty_run[1] / "traces" / "SAFE-2.json"
    assert run(["replay", str(trace), "--adapter", "reference.adapter.ReferenceAdapter"]) == 2
    assert "did you mean reference.adapter:ReferenceAdapter?" in one_error_line(
        capsys.readouterr().err)


def test_replay_with_an_adapter_that_cannot_start_exit_3(
        faulty_run: tuple[Any, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nostart.py").write_text(textwrap.dedent("""
        from conformance import BaseAdapter

        class NoStart(BaseAdapter):
            def start(self, services):
                raise OSError("driver not loaded")
    """))
    trace = faulty_run[1] / "traces" / "SAFE-2.json"
    assert run(["replay", str(trace), "--adapter", f"{tmp_path / 'nostart.py'}:NoStart"]) == 3
    assert "could not be started" in one_error_line(capsys.readouterr().err)


def test_replay_of_an_efficiency_trace_says_which_reference_judged_it(
        faulty_run: tuple[Any, Path], capsys: pytest.CaptureFixture[str]) -> None:
    traces = sorted((faulty_run[1] / "traces").glob("EFF-*.json"))
    assert traces, "the faulty adapter's run records efficiency findings too"
    assert run(["replay", str(traces[0]), "--adapter", FAULTY]) == 1
    out = capsys.readouterr().out
    assert f"Result: {traces[0].stem} recurs (judged against the conformant reference" in out


# --- certify -------------------------------------------------------------------------------
def test_certify_fails_when_a_required_invariant_was_never_exercised(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bundle"
    assert run(["certify", "--adapter", "reference", "--max-examples", "1", "--seed", "1",
                "--no-bench", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "Not exercised:" in text and "drop --max-examples" in text
    assert "conformant         not established" in text
    cert = json.loads((out / "certificate.json").read_text())
    # A level resting on an invariant the run never tried is not claimed.
    assert cert["levels"]["conformant"] is False
    assert cert["verdict"]["met"] is False and cert["verdict"]["unexercised"]


def test_certify_requires_several_levels(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bundle"
    code = run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "--out", str(out),
                "--require", "signature-current,conformant"])
    assert code == 1
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["verdict"]["required"] == ["signature-current", "conformant"]
    assert cert["verdict"]["not_met"] == ["signature-current", "conformant"]
    assert "Required levels (signature-current, conformant): NOT met" in capsys.readouterr().out


def test_certify_verbose_prints_progress_and_every_violation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "-v",
                "--out", str(tmp_path / "b")]) == 1
    captured = capsys.readouterr()
    assert "wcifs-conformance: certifying" in captured.err
    assert "wcifs-conformance: workloads:" in captured.err
    assert "SAFE-2 violated:" in captured.out and "Decision and truth:" in captured.out


def test_certify_default_out_dir_is_under_reports_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench"])
    (bundle,) = (tmp_path / "reports" / "out").iterdir()
    assert bundle.name.startswith("wcifs-reference-adapter-")
    assert bundle.name.endswith("Z")
    assert (bundle / "certificate.json").is_file()
    assert f"Bundle: {Path('reports', 'out', bundle.name)}" in capsys.readouterr().out


def test_certify_refuses_a_directory_that_is_not_a_bundle(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert run(["certify", "--adapter", "reference", "--out", str(tmp_path)]) == 2
    assert "not empty" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_certify_replaces_an_earlier_bundle(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "--out", str(out)])
    assert (out / "traces" / "SAFE-2.json").is_file()
    assert run(["certify", "--adapter", "reference", *REFERENCE_RUN, "--no-bench",
                "--out", str(out)]) == 0
    assert not list((out / "traces").glob("*.json"))
    assert run(["verify", str(out)]) == 0


@pytest.mark.parametrize("argv, message", [
    (["certify", "--adapter", "reference", "--require", "bulletproof"], "unknown level"),
    (["certify", "--adapter", "reference", "--require", ","], "unknown level"),
    (["certify", "--adapter", "reference", "--profile", "thorough"], "invalid choice"),
    (["certify", "--adapter", "reference", "--max-examples", "0"], "at least 1"),
    (["certify", "--adapter", "reference", "--seed", "-1"], "must not be negative"),
    (["certify"], "required: --adapter"),
    (["replay", "--adapter", "reference"], "required: TRACE.json"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert err.strip().splitlines()[-1].startswith("wcifs-conformance")
    assert message in err and "Traceback" not in err


def test_no_verb_prints_help_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    err = capsys.readouterr().err
    for verb in ("certify", "replay", "bench", "verify", "invariants", "keygen"):
        assert verb in err


def test_sign_key_that_is_not_a_private_key_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen", "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    code = run(["certify", "--adapter", "reference", "--sign-key",
                str(tmp_path / "wcifs-signing-key.pub"), "--out", str(tmp_path / "b")])
    assert code == 2
    assert "--sign-key" in one_error_line(capsys.readouterr().err)
    assert run(["certify", "--adapter", "reference", "--sign-key",
                str(tmp_path / "missing.pem")]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)


def test_adapter_file_that_fails_to_import_exit_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "syntax.py").write_text("class Adapter(:\n")
    assert run(["certify", "--adapter", f"{tmp_path / 'syntax.py'}:Adapter"]) == 3
    assert "importing" in one_error_line(capsys.readouterr().err)


# --- benchmark figures in the certificate, and the bench verb ---------------------------------
def _fake_bench(monkeypatch: pytest.MonkeyPatch, **attrs: Any) -> None:
    module = types.ModuleType("conformance._bench")
    for name, value in attrs.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, "conformance._bench", module)


def test_certify_records_the_hot_path_when_the_benchmark_module_has_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = {"unit": "ns", "floor_dict_get_ns": 20.0,
               "adapter": {"post_create_hit_ns": 60.0, "post_create_ratio": 3.0},
               "reference": {"post_create_hit_ns": 50.0, "post_create_ratio": 2.5}}
    _fake_bench(monkeypatch, hot_path_for=lambda session: figures)
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--out", str(tmp_path / "b")])
    cert = json.loads((tmp_path / "b" / "certificate.json").read_text())
    assert cert["benchmark"] == figures
    assert json.loads((tmp_path / "b" / "benchmark.json").read_text()) == figures


def test_certify_with_no_bench_records_the_run(tmp_path: Path) -> None:
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "--out", str(tmp_path / "b")])
    cert = json.loads((tmp_path / "b" / "certificate.json").read_text())
    assert cert["benchmark"]["hot_path"] is None
    assert cert["benchmark"]["run"] == cert["stats"]


def test_a_failing_hot_path_does_not_cost_the_certificate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hot_path_for(session: Any) -> dict[str, Any]:
        raise RuntimeError("timer broke")

    _fake_bench(monkeypatch, hot_path_for=hot_path_for)
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--out", str(tmp_path / "b")])
    cert = json.loads((tmp_path / "b" / "certificate.json").read_text())
    assert cert["benchmark"]["hot_path"] is None
    assert "timer broke" in cert["benchmark"]["error"]


def test_bench_calls_run_bench_and_prints_where_it_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, Path]] = []

    def run_bench(spec: str, out_dir: Path, extra_args: list[str]) -> Path:
        assert extra_args == ["--conformance-call-timeout", "5.0"]
        calls.append((spec, out_dir))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "benchmark.json").write_text("{}")
        return out_dir / "benchmark.json"

    _fake_bench(monkeypatch, run_bench=run_bench)
    assert run(["bench", "--adapter", "reference", "--out", str(tmp_path / "bench")]) == 0
    assert calls == [("reference", tmp_path / "bench")]
    assert f"Benchmark: {tmp_path / 'bench' / 'benchmark.json'}" in capsys.readouterr().out
    assert run(["bench", "--adapter", "nope:Nope"]) == 2


# --- invariants and keygen ---------------------------------------------------------------------
def test_invariants_prints_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["invariants"]) == 0
    out = capsys.readouterr().out
    for inv_id, inv in INVARIANTS.items():
        assert f"{inv_id} " in out and inv.level in out
    assert run(["invariants", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == list(IDS)
    assert all(d["rule"] == INVARIANTS[d["id"]].rule and d["level"] == INVARIANTS[d["id"]].level
               for d in data)


def test_console_script_is_the_same_program(tmp_path: Path) -> None:
    script = shutil.which("wcifs-conformance")
    if script is None:
        pytest.skip("the wcifs-conformance script is not on PATH")
    proc = subprocess.run([script, "invariants", "--json"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0
    assert [d["id"] for d in json.loads(proc.stdout)] == list(IDS)


def test_keygen_writes_a_private_and_a_public_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert run(["keygen", "--out-dir", str(keys), "--name", "ci"]) == 0
    assert "SHA256:" in capsys.readouterr().out
    private, public = keys / "ci.pem", keys / "ci.pub"
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    if os.name == "posix":
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert run(["keygen", "--out-dir", str(keys), "--name", "ci"]) == 2
    assert "--force" in one_error_line(capsys.readouterr().err)
    before = public.read_bytes()
    assert run(["keygen", "--out-dir", str(keys), "--name", "ci", "--force"]) == 0
    assert public.read_bytes() != before
    assert run(["keygen", "--out-dir", str(keys), "--name", "../escape"]) == 2


def test_encrypted_signing_key_takes_its_passphrase_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WCIFS_SIGN_KEY_PASSPHRASE", "correct horse")
    assert run(["keygen", "--out-dir", str(tmp_path)]) == 0
    assert "ENCRYPTED" in (tmp_path / "wcifs-signing-key.pem").read_text()
    key = str(tmp_path / "wcifs-signing-key.pem")
    out = tmp_path / "b"
    run(["certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "--out", str(out),
         "--sign-key", key])
    assert (out / "MANIFEST.sha256.sig").is_file()
    monkeypatch.delenv("WCIFS_SIGN_KEY_PASSPHRASE")
    capsys.readouterr()
    assert run(["certify", "--adapter", "reference", "--sign-key", key]) == 2
    assert "is encrypted" in one_error_line(capsys.readouterr().err)


# --- progress on a terminal ----------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_certify_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import select

    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "certify", "--adapter", FAULTY, *FAULTY_RUN,
         "--no-bench", "--out", str(tmp_path / "b")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=child, env={**env, "COLUMNS": "100"})
    os.close(child)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:
                    break
                if not data:
                    break
                seen += data
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(main)
        assert proc.stdout is not None
        proc.stdout.close()
    text = seen.decode("utf-8", "replace")
    assert "certifying" in text
    assert "examples" in text and "violation(s)" in text


# --- output that fits habits: -q, --color, NO_COLOR -------------------------------------------
@pytest.mark.parametrize(("flags", "env", "coloured"), [
    (("-q",), {}, False),
    (("-q", "--color", "always"), {"NO_COLOR": "1"}, True),  # the flag wins over NO_COLOR
    (("-q", "--color", "never"), {}, False),
])
def test_quiet_prints_the_verdict_and_the_certificate_only(
        flags: tuple[str, ...], env: dict[str, str], coloured: bool, tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = cli("certify", "--adapter", FAULTY, *FAULTY_RUN, "--no-bench", "--out", out, *flags,
               cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "", "-q: no progress either"
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert lines[1] == f"Certificate: {(out / 'certificate.html').resolve().as_uri()}"
    assert lines[0].startswith("Required levels (conformant): ")
    assert ("\x1b[31mNOT met\x1b[0m" in lines[0]) is coloured
    assert "NOT met" in lines[0]


def test_quiet_and_verbose_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["certify", "--adapter", "reference", "-q", "-v"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
