"""The certification bundle (SPEC §8): certificate and schema, the rendered files, the
manifest and signature, and ``verify`` catching every kind of tampering by the right check.
"""

from __future__ import annotations

import ast
import itertools
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import reports
from conformance import ConformanceResult, load_adapter, run_conformance
from conformance._cli import run
from conformance._invariants import IDS, LEVELS
from reports._manifest import ManifestError, manifest_text

GALLERY = Path(__file__).resolve().with_name("gallery.py")
FAULTY = f"{GALLERY}:SkipsScratch"
REPORT_FILES = ("certificate.json", "certificate.html", "summary.md", "junit.xml",
                "benchmark.json")
CHECKS = {"files present": 1, "hashes match": 2, "signature": 3,
          "certificate matches its schema": 4, "levels follow from the invariant results": 5,
          "invariant results consistent": 6, "every invariant of a claimed level exercised": 7,
          "suite and Hypothesis versions recorded": 8}


# --- runs and bundles, made once ---------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_result() -> ConformanceResult:
    return run_conformance(load_adapter("reference"), "quick", seed=1, spec="reference",
                           max_examples=100)


@pytest.fixture(scope="module")
def faulty_result() -> ConformanceResult:
    return run_conformance(load_adapter(FAULTY), "quick", seed=1, spec=FAULTY, max_examples=1)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("signer", "other"):
        private, public = reports.generate_key_pair()
        (d / f"{name}.pem").write_bytes(private)
        (d / f"{name}.pub").write_bytes(public)
        paths[name], paths[f"{name}.pub"] = d / f"{name}.pem", d / f"{name}.pub"
    return paths


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, reference_result: ConformanceResult,
         faulty_result: ConformanceResult, keys: dict[str, Path]) -> dict[str, Path]:
    """Pristine bundles: reference and faulty, each unsigned and signed."""
    root = tmp_path_factory.mktemp("bundles")
    signer = reports.load_private_key(keys["signer"])
    out = {}
    for name, result in (("reference", reference_result), ("faulty", faulty_result)):
        for signed in (False, True):
            key = f"{name}-signed" if signed else name
            reports.write_bundle(result, root / key, signing_key=signer if signed else None)
            out[key] = root / key
    return out


@pytest.fixture
def bundle(made: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """A private copy of a pristine bundle, free to tamper with."""
    serial = itertools.count()

    def copy(name: str) -> Path:
        return Path(shutil.copytree(made[name], tmp_path / f"{name}-{next(serial)}"))
    return copy


def verify(path: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(["verify", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def failed_checks(path: Path, public_key: Path | None = None) -> set[str]:
    key = reports.load_public_key(public_key) if public_key else None
    return {c.name for c in reports.verify_bundle(path, key) if c.failed}


def rehash(path: Path) -> None:
    names = [n for n in reports.parse_manifest((path / "MANIFEST.sha256").read_text())]
    (path / "MANIFEST.sha256").write_text(manifest_text(path, names))


def edit_certificate(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    cert = json.loads((path / "certificate.json").read_text())
    change(cert)
    (path / "certificate.json").write_text(json.dumps(cert, indent=2) + "\n")


# --- the certificate ---------------------------------------------------------------------------
def test_certificate_validates_against_the_shipped_schema(made: dict[str, Path]) -> None:
    schema = json.loads(resources.files("reports").joinpath("certificate.schema.json")
                        .read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in made.values():
        jsonschema.validate(json.loads((path / "certificate.json").read_text()), schema,
                            cls=jsonschema.Draft202012Validator)


def test_schema_names_every_invariant_and_rejects_a_broken_certificate(
        made: dict[str, Path]) -> None:
    schema = reports.schema()
    assert schema["properties"]["invariants"]["required"] == list(IDS)
    assert schema["$defs"]["id"]["enum"] == list(IDS)
    cert = json.loads((made["reference"] / "certificate.json").read_text())
    del cert["invariants"]["SAFE-7"]
    cert["levels"]["optimized"] = "yes"
    errors = reports.schema_errors(cert)
    assert any("SAFE-7" in e for e in errors) and any("levels/optimized" in e for e in errors)
    with pytest.raises(reports.CertificateError, match="does not match its schema"):
        reports.validate_certificate(cert)


def test_certificate_records_what_the_spec_asks(made: dict[str, Path],
                                                reference_result: ConformanceResult) -> None:
    cert = json.loads((made["reference"] / "certificate.json").read_text())
    assert set(cert["levels"]) == set(LEVELS)
    assert list(cert["invariants"]) == list(IDS)
    for inv_id, r in cert["invariants"].items():
        assert r["status"] == "pass" and r["exercised"] > 0, inv_id
        assert r["first_counterexample"] is None
    versions = reference_result.versions
    assert cert["suite"] == {"name": "wcifs-av-conformance", "version": versions["suite"],
                             "commit": versions["suite_commit"],
                             "protocol_version": int(versions["protocol"])}
    assert cert["adapter"]["spec"] == "reference"
    assert cert["adapter"]["info"] == {"name": reference_result.adapter_info.name,
                                       "version": reference_result.adapter_info.version}
    run_ = cert["run"]
    assert (run_["profile"], run_["seed"]) == ("quick", 1)
    assert run_["settings"]["max_examples"] == 100
    assert run_["versions"]["hypothesis"] == versions["hypothesis"]
    assert run_["platform"]["platform"] == versions["platform"]
    assert run_["started"] <= run_["finished"]
    workloads = cert["efficiency"]["workloads"]
    assert [w["name"] for w in workloads] == [w.name for w in reference_result.efficiency]
    assert all(w["scans_per_container"] == w["reference_scans_per_container"]
               for w in workloads)
    assert cert["stats"] == reference_result.stats
    assert cert["benchmark"] == {"hot_path": None, "run": reference_result.stats}
    assert cert["signing"] is None


def test_failures_name_their_traces(made: dict[str, Path],
                                    faulty_result: ConformanceResult) -> None:
    path = made["faulty"]
    cert = json.loads((path / "certificate.json").read_text())
    failed = {i for i, r in cert["invariants"].items() if r["status"] == "fail"}
    assert "SAFE-2" in failed and failed == set(faulty_result.failed)
    for inv_id in failed:
        r = cert["invariants"][inv_id]
        assert r["first_counterexample"] == f"traces/{inv_id}.json"
        trace = json.loads((path / r["first_counterexample"]).read_text())
        assert trace["invariant"] == inv_id and trace["summary"] == r["summary"]
        assert len(trace["steps"]) == r["steps"]
    assert cert["levels"]["conformant"] is False
    assert cert["verdict"] == {"required": ["conformant"], "met": False,
                               "not_met": ["conformant"],
                               "unexercised": cert["verdict"]["unexercised"]}


def test_same_seed_same_verdicts_counts_and_traces(made: dict[str, Path],
                                                   tmp_path: Path) -> None:
    again = run_conformance(load_adapter(FAULTY), "quick", seed=1, spec=FAULTY, max_examples=1)
    reports.write_bundle(again, tmp_path / "again")
    first = json.loads((made["faulty"] / "certificate.json").read_text())
    second = json.loads((tmp_path / "again" / "certificate.json").read_text())
    assert first["invariants"] == second["invariants"]
    assert first["levels"] == second["levels"]
    for trace in (made["faulty"] / "traces").iterdir():
        assert trace.read_bytes() == (tmp_path / "again" / "traces" / trace.name).read_bytes()


# --- the rendered files ------------------------------------------------------------------------
def test_summary_md_names_failures_and_how_to_replay(made: dict[str, Path]) -> None:
    text = (made["faulty"] / "summary.md").read_text()
    assert text.startswith("### WCIFS conformance: ❌ required levels not met")
    assert "| conformant (required) | ❌ not met |" in text
    assert "| **SAFE-2** | conformant |" in text
    assert f"wcifs-conformance replay {made['faulty']}/traces/SAFE-2.json --adapter {FAULTY}" \
        in text
    ok = (made["reference"] / "summary.md").read_text()
    assert "✅ required levels met" in ok and "Failed invariants" not in ok


def test_junit_has_one_case_per_invariant(made: dict[str, Path]) -> None:
    root = ET.parse(made["faulty"] / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == list(IDS)
    failure = cases["SAFE-2"].find("failure")
    assert failure is not None and failure.text is not None
    assert "SAFE-2 violated" in failure.text and "Steps:" in failure.text
    assert "Decision and truth:" in failure.text
    skipped = {i: c.find("skipped") for i, c in cases.items()}
    reasons = {i: node.get("message", "") for i, node in skipped.items() if node is not None}
    cert = json.loads((made["faulty"] / "certificate.json").read_text())
    for inv_id, r in cert["invariants"].items():
        if r["status"] == "not-exercised":
            assert "not exercised" in reasons[inv_id]
        elif r["status"] == "fail" and r["level"] == "optimized":
            # reported, but skipped: optimized is not required
            assert "level optimized is not required" in reasons[inv_id]
            node = skipped[inv_id]
            assert node is not None and "violated" in (node.text or "")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(IDS))
    assert suite.get("failures") == "1"
    clean = ET.parse(made["reference"] / "junit.xml").getroot()
    assert not list(clean.iter("failure")) and not list(clean.iter("skipped"))


def test_html_is_one_self_contained_file(made: dict[str, Path]) -> None:
    html = (made["faulty"] / "certificate.html").read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert html.count("<svg") >= 2
    for inv_id in IDS:
        assert f'id="inv-{inv_id}"' in html
    assert 'href="traces/SAFE-2.json"' in html
    for level in LEVELS:
        assert f'id="level-{level}"' in html


def test_bundle_files_and_manifest(made: dict[str, Path]) -> None:
    path = made["faulty-signed"]
    listed = reports.parse_manifest((path / "MANIFEST.sha256").read_text())
    traces = sorted(f"traces/{p.name}" for p in (path / "traces").iterdir())
    assert sorted(listed) == sorted([*REPORT_FILES, *traces])
    assert (path / "MANIFEST.sha256.sig").stat().st_size == 64
    assert (path / "signing-key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "--check", "--quiet", "MANIFEST.sha256"], cwd=path,
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("line", [
    "abc  certificate.json",
    f"{'0' * 64}  ../outside.json",
    f"{'0' * 64}  /etc/passwd",
    f"{'0' * 64}  traces/../../x",
])
def test_manifest_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ManifestError):
        reports.parse_manifest(line + "\n")


def test_package_data_is_found_through_importlib_resources() -> None:
    root = resources.files("reports")
    assert root.joinpath("certificate.schema.json").is_file()
    assert root.joinpath("templates", "certificate.html.j2").is_file()
    assert root.joinpath("templates", "certificate.css").is_file()


def test_reports_never_imports_the_model() -> None:
    """The dependency rule: ``reports`` reads results; it never imports ``reference`` or
    ``strategies``, and of ``conformance`` only the catalogue, versions and, for types, the
    engine's result classes."""
    allowed = {"conformance._invariants", "conformance._version", "conformance._engine"}
    root = Path(reports.__file__).parent
    for source in root.glob("*.py"):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in ("reference", "strategies"), f"{source.name} imports {name}"
                if top == "conformance":
                    assert name in allowed, f"{source.name} imports {name}"


def test_out_dir_rules(tmp_path: Path, faulty_result: ConformanceResult) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(reports.BundleError, match="not a directory"):
        reports.check_out_dir(tmp_path / "file")
    with pytest.raises(reports.BundleError, match="not empty"):
        reports.check_out_dir(tmp_path)
    bundle = reports.write_bundle(faulty_result, tmp_path / "b")
    (tmp_path / "b" / "traces" / "OLD-1.json").write_text("{}")
    reports.write_bundle(faulty_result, tmp_path / "b")
    assert not (tmp_path / "b" / "traces" / "OLD-1.json").exists()
    (tmp_path / "b" / "mine.txt").write_text("x")
    with pytest.raises(reports.BundleError, match="other files"):
        reports.write_bundle(faulty_result, tmp_path / "b")
    assert bundle.traces["SAFE-2"].is_file()


# --- verify: what passes ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["reference", "faulty"])
def test_verify_passes_on_a_fresh_unsigned_bundle(name: str, made: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(made[name], capsys=capsys)
    assert code == 0, out
    for check, number in CHECKS.items():
        status = "SKIP" if check == "signature" else "PASS"
        assert f"  {number}. {status}  {check}:" in out
    assert "OK: all 8 checks passed or do not apply" in out


@pytest.mark.parametrize("name", ["reference-signed", "faulty-signed"])
def test_verify_passes_on_a_fresh_signed_bundle(name: str, made: dict[str, Path],
                                                keys: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(made[name], "--public-key", str(keys["signer.pub"]), capsys=capsys)
    assert code == 0, out
    assert "3. PASS  signature: valid Ed25519 signature by SHA256:" in out
    assert "(the given public key)" in out
    assert "OK: all 8 checks passed" in out
    code, out = verify(made[name], capsys=capsys)
    assert code == 0 and "the bundled signing-key.pub" in out


def test_verify_output_is_numbered_and_ends_with_the_failed_checks(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("faulty")
    (path / "junit.xml").unlink()
    code, out = verify(path, capsys=capsys)
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split(".")[0].strip() for line in lines] == [str(n) for n in range(1, 9)]
    assert "  1. FAIL  files present: junit.xml is missing" in out
    assert out.rstrip().endswith("FAILED: check 1 (files present)")


# --- verify: what it catches -------------------------------------------------------------------
def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    if path.name == "certificate.json":  # stay valid JSON, so the hash is what catches it
        i = data.index(b"adapter never raises")
        data[i] = ord("A")
    else:
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_verify_catches_a_changed_byte_in_any_file(
        signed: bool, bundle: Callable[[str], Path], made: dict[str, Path]) -> None:
    name = "faulty-signed" if signed else "faulty"
    listed = reports.parse_manifest((made[name] / "MANIFEST.sha256").read_text())
    assert any(n.startswith("traces/") for n in listed)
    for target in listed:
        path = bundle(name)
        _flip_byte(path / target)
        failed = failed_checks(path)
        assert "hashes match" in failed, target
        if target == "certificate.json":
            assert failed <= {"hashes match", "signature", "invariant results consistent"}
        shutil.rmtree(path)


def test_verify_catches_a_changed_manifest_or_signature(
        bundle: Callable[[str], Path], keys: dict[str, Path]) -> None:
    path = bundle("faulty-signed")
    _flip_byte(path / "MANIFEST.sha256")
    assert {"signature"} <= failed_checks(path, keys["signer.pub"])
    path = bundle("reference-signed")
    _flip_byte(path / "MANIFEST.sha256.sig")
    assert failed_checks(path, keys["signer.pub"]) == {"signature"}
    assert failed_checks(path) == {"signature"}


@pytest.mark.parametrize("missing", [*REPORT_FILES[1:], "traces/SAFE-2.json",
                                     "MANIFEST.sha256"])
def test_verify_catches_a_missing_file(missing: str, bundle: Callable[[str], Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("faulty")
    (path / missing).unlink()
    code, out = verify(path, capsys=capsys)
    assert code == 1
    assert "  1. FAIL  files present:" in out and missing in out.split("2. ")[0]


def test_verify_catches_a_file_outside_the_manifest(bundle: Callable[[str], Path]) -> None:
    path = bundle("reference")
    (path / "traces").mkdir()
    (path / "traces" / "SAFE-1.json").write_text("{}")
    assert failed_checks(path) == {"files present"}


def test_a_missing_certificate_is_not_a_bundle_exit_2(
        bundle: Callable[[str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("reference")
    (path / "certificate.json").write_text("{ not json")
    code, out = verify(path, capsys=capsys)
    assert code == 2 and "is not JSON" in out
    (path / "certificate.json").unlink()
    code, out = verify(path, capsys=capsys)
    assert code == 2 and "is not a bundle" in out
    code, out = verify(tmp_path / "nowhere", capsys=capsys)
    assert code == 2 and "is not a directory" in out
    assert out.count("\n") == 1 and out.startswith("wcifs-conformance: error: ")


@pytest.mark.parametrize("rehashed", [True, False], ids=["rehashed", "not-rehashed"])
@pytest.mark.parametrize("name, level", [("reference", "optimized"),
                                         ("reference", "signature-current"),
                                         ("faulty", "conformant")])
def test_verify_catches_a_flipped_level(name: str, level: str, rehashed: bool,
                                        bundle: Callable[[str], Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle(name)

    def flip(cert: dict[str, Any]) -> None:
        cert["levels"][level] = not cert["levels"][level]

    edit_certificate(path, flip)
    if rehashed:
        rehash(path)
    failed = failed_checks(path)
    assert "levels follow from the invariant results" in failed
    assert ("hashes match" in failed) is not rehashed
    code, out = verify(path, capsys=capsys)
    assert code == 1
    assert "5. FAIL  levels follow from the invariant results:" in out
    assert f"{level} is" in out and "but the invariant results say" in out


def test_verify_catches_a_flipped_level_in_a_signed_bundle(
        bundle: Callable[[str], Path], keys: dict[str, Path]) -> None:
    path = bundle("reference-signed")
    edit_certificate(path, lambda c: c["levels"].__setitem__("optimized", False))
    rehash(path)
    assert failed_checks(path, keys["signer.pub"]) == {
        "signature", "levels follow from the invariant results"}


def test_verify_catches_a_signature_by_another_key(
        bundle: Callable[[str], Path], keys: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("faulty-signed")
    code, out = verify(path, "--public-key", str(keys["other.pub"]), capsys=capsys)
    assert code == 1
    assert "3. FAIL  signature:" in out and "signed by another key" in out
    # re-signed by another key, public key swapped: the expected signer still notices
    other = reports.load_private_key(keys["other"])
    (path / "MANIFEST.sha256.sig").write_bytes(
        other.sign((path / "MANIFEST.sha256").read_bytes()))
    shutil.copy(keys["other.pub"], path / "signing-key.pub")
    assert failed_checks(path, keys["signer.pub"]) == {"signature"}
    # and without --public-key, the certificate's recorded fingerprint does not match
    assert failed_checks(path) == {"signature"}


def test_verify_catches_a_stripped_signature(bundle: Callable[[str], Path],
                                             keys: dict[str, Path]) -> None:
    path = bundle("reference-signed")
    (path / "MANIFEST.sha256.sig").unlink()
    (path / "signing-key.pub").unlink()
    assert failed_checks(path) == {"signature"}
    unsigned = bundle("reference")
    assert failed_checks(unsigned, keys["signer.pub"]) == {"signature"}


def test_verify_catches_an_unexercised_invariant_of_a_claimed_level(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("reference")

    def forget(cert: dict[str, Any]) -> None:
        cert["invariants"]["EFF-6"].update(status="not-exercised", exercised=0)

    edit_certificate(path, forget)
    rehash(path)
    code, out = verify(path, capsys=capsys)
    assert code == 1
    assert "7. FAIL  every invariant of a claimed level exercised: optimized claimed but " \
           "EFF-6 never exercised" in out


def test_verify_catches_inconsistent_results(bundle: Callable[[str], Path]) -> None:
    path = bundle("faulty")
    # Swap SAFE-2's trace for another invariant's: the file names no longer match.
    other = next(t for t in sorted((path / "traces").iterdir()) if t.name != "SAFE-2.json")
    shutil.copy(other, path / "traces" / "SAFE-2.json")
    rehash(path)
    assert failed_checks(path) == {"invariant results consistent"}

    path = bundle("reference")
    edit_certificate(path, lambda c: c["invariants"]["SAFE-1"].update(exercised=0))
    rehash(path)
    assert "invariant results consistent" in failed_checks(path)

    path = bundle("reference")
    (path / "benchmark.json").write_text('{"hot_path": null, "run": {}}\n')
    rehash(path)
    assert failed_checks(path) == {"invariant results consistent"}


def test_verify_catches_missing_versions(bundle: Callable[[str], Path]) -> None:
    path = bundle("reference")
    edit_certificate(path, lambda c: c["run"]["versions"].update(hypothesis=""))
    rehash(path)
    failed = failed_checks(path)
    assert "suite and Hypothesis versions recorded" in failed
    assert "certificate matches its schema" in failed


def test_verify_public_key_that_is_not_a_key_exit_2(
        made: dict[str, Path], keys: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(made["reference-signed"], "--public-key", str(keys["signer"]),
                       capsys=capsys)
    assert code == 2 and "--public-key" in out
