"""The certification bundle (SPEC §8): certificate and schema, the rendered files, the
manifest and signature, and ``verify`` catching every kind of tampering by the right check.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import reports
from conformance import (
    IDS,
    LEVELS,
    PROFILES,
    ConformanceResult,
    load_adapter,
    rests_on,
    run_conformance,
)
from conformance._cli import run
from reference.adapter import reference_factory
from reports._manifest import ManifestError, manifest_text
from reports._render import PLATFORM_PROFILES, THIN, render_html, render_junit, render_summary

GALLERY = Path(__file__).resolve().with_name("gallery.py")
FAULTY = f"{GALLERY}:SkipsScratch"
REPORT_FILES = ("certificate.json", "certificate.html", "summary.md", "junit.xml",
                "benchmark.json")
CHECKS = {"files present": 1, "hashes match": 2, "signature": 3,
          "certificate matches its schema": 4, "levels follow from the invariant results": 5,
          "invariant results consistent": 6, "every invariant of a claimed level exercised": 7,
          "suite and Hypothesis versions recorded": 8,
          "coverage adds up to the exercised counts": 9, "profile budget": 10,
          "a whole run, not a shard": 11}
N_CHECKS = len(CHECKS)
#: certificate.json and benchmark.json of a bundle written by format version 1 (before
#: coverage): `wcifs-conformance certify --adapter reference --max-examples 30 --seed 1
#: --no-bench` at commit eb6a63c. The other files of that bundle are only hashed by verify, so
#: ``v1_bundle`` renders them afresh.
V1 = Path(__file__).resolve().with_name("data") / "v1-bundle"
Coverage = dict[str, dict[str, dict[str, int]]]


def plain_coverage(result: ConformanceResult) -> Coverage:
    """What the engine records, for engines that record none yet: every exercise under
    operation "open", profile "wcifs", scene "single"."""
    return {i: {"operation": {"open": r.exercised}, "profile": {"wcifs": r.exercised},
                "scene": {"single": r.exercised}} if r.exercised
            else {"operation": {}, "profile": {}, "scene": {}}
            for i, r in result.invariants.items()}


def with_coverage(result: ConformanceResult) -> ConformanceResult:
    """The result, with :func:`plain_coverage` when its engine recorded none."""
    return result if result.coverage else dataclasses.replace(
        result, coverage=plain_coverage(result))


def spread_coverage(result: ConformanceResult) -> Coverage:
    """A fixed spread of each invariant's real count over operations, profiles and scenes:
    SAFE-12 has 3 hostile exercises, EFF-6 none outside no-registered-flag, any count below
    30 leaves some profile under 10, and "concurrent_opens" is recorded with a count of 0."""
    coverage: Coverage = {}
    for inv_id, r in result.invariants.items():
        n = r.exercised
        nrf, hostile = n // 3, n // 3
        if inv_id == "SAFE-12":
            hostile = 3
        if inv_id == "EFF-6":
            nrf, hostile = n, 0
        profile = {"wcifs": n - nrf - hostile, "no-registered-flag": nrf, "hostile": hostile}
        operation = {"open": n - n // 5 - n // 50, "install_layer": n // 5, "start": n // 50,
                     "concurrent_opens": 0}
        scene = {"single": n - n // 2 - n // 7 - n // 9 - n // 11, "opening": n // 2,
                 "cow-reopen": n // 7, "workload:first-container": n // 9,
                 "workload:update-burst": n // 11}
        coverage[inv_id] = {"operation": {k: v for k, v in operation.items()  # a zero kept
                                          if v or (n and k == "concurrent_opens")},
                            "profile": {k: v for k, v in profile.items() if v},
                            "scene": {k: v for k, v in scene.items() if v}}
    return coverage


def expected_thin(cert: dict[str, Any]) -> dict[str, list[str]]:
    """ID -> the platform profiles with fewer than THIN exercises, for exercised invariants."""
    return {i: thin for i, r in cert["invariants"].items() if r["exercised"]
            and (thin := [p for p in PLATFORM_PROFILES
                          if cert["coverage"][i]["profile"].get(p, 0) < THIN])}


def v1_bundle(dest: Path) -> Path:
    """A format-version-1 bundle around the stored certificate."""
    dest.mkdir()
    for name in ("certificate.json", "benchmark.json"):
        shutil.copy(V1 / name, dest / name)
    cert = json.loads((dest / "certificate.json").read_text())
    (dest / "certificate.html").write_text(render_html(cert, {}, str(dest)))
    (dest / "summary.md").write_text(render_summary(cert, str(dest)))
    (dest / "junit.xml").write_text(render_junit(cert, {}))
    (dest / "MANIFEST.sha256").write_text(manifest_text(dest, REPORT_FILES))
    return dest


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
            reports.write_bundle(with_coverage(result), root / key,
                                 signing_key=signer if signed else None)
            out[key] = root / key
    spread = dataclasses.replace(reference_result, coverage=spread_coverage(reference_result))
    reports.write_bundle(spread, root / "spread")
    out["spread"] = root / "spread"
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
    assert list(schema["properties"]["invariants"]["properties"]) == list(IDS)
    assert schema["$defs"]["id"]["enum"] == list(IDS)
    # format version 1 predates SAFE-14; from version 2 every ID of the catalogue is required
    assert schema["properties"]["invariants"]["required"] == [i for i in IDS if i != "SAFE-14"]
    v2 = next(rule["then"] for rule in schema["allOf"] if "coverage" in rule["then"].get(
        "required", []))
    assert v2["properties"]["invariants"]["required"] == list(IDS)
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
    # 100 examples is not quick's budget: the run is custom, based on quick
    assert (run_["profile"], run_["seed"]) == ("custom", 1)
    assert run_["settings"]["max_examples"] == 100 == cert["stats"]["examples"]
    assert run_["settings"]["based_on"] == "quick"
    assert run_["stopped_early"] is False
    assert run_["versions"]["hypothesis"] == versions["hypothesis"]
    assert run_["platform"]["platform"] == versions["platform"]
    assert run_["started"] <= run_["finished"]
    # judged against the reference the result names (the highest level it showed safe at)
    assert cert["efficiency"]["reference"] == "reference:signature-current"
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
    assert cert["efficiency"]["reference"] == "reference:conformant"  # not safe: conformant's
    verdicts = faulty_result.verdicts
    assert cert["verdict"] == {"required": ["conformant"], "met": False,
                               "not_met": ["conformant"],
                               "unexercised": list(verdicts["conformant"].unexercised),
                               "why": {lv: v.why() for lv, v in verdicts.items()}}
    assert "SAFE-2" in cert["verdict"]["why"]["conformant"]


def test_same_seed_same_verdicts_counts_and_traces(made: dict[str, Path],
                                                   tmp_path: Path) -> None:
    again = run_conformance(load_adapter(FAULTY), "quick", seed=1, spec=FAULTY, max_examples=1)
    reports.write_bundle(with_coverage(again), tmp_path / "again")
    first = json.loads((made["faulty"] / "certificate.json").read_text())
    second = json.loads((tmp_path / "again" / "certificate.json").read_text())
    assert first["invariants"] == second["invariants"]
    assert first["coverage"] == second["coverage"]
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


def test_junit_has_one_case_per_level_and_per_invariant(made: dict[str, Path]) -> None:
    root = ET.parse(made["faulty"] / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == [*LEVELS, *IDS]
    level_failures = {lv for lv in LEVELS if cases[lv].find("failure") is not None}
    assert level_failures == {"conformant"}  # the others are not required: skipped
    assert cases["optimized"].find("skipped") is not None
    failure = cases["SAFE-2"].find("failure")
    assert failure is not None and failure.text is not None
    assert "SAFE-2 violated" in failure.text and "Steps:" in failure.text
    assert "Decision and truth:" in failure.text
    skipped = {i: c.find("skipped") for i, c in cases.items()}
    reasons = {i: node.get("message", "") for i, node in skipped.items() if node is not None}
    cert = json.loads((made["faulty"] / "certificate.json").read_text())
    conformant = set(rests_on("conformant"))
    for inv_id, r in cert["invariants"].items():
        if r["status"] == "not-exercised" and inv_id in conformant:
            # a required level rests on it: the level cannot be established
            node = cases[inv_id].find("failure")
            assert node is not None and "never exercised" in node.get("message", ""), inv_id
        elif r["status"] == "not-exercised":
            assert "not exercised" in reasons[inv_id]
        elif r["status"] == "fail" and r["level"] == "optimized":
            # reported, but skipped: optimized is not required
            assert "level optimized is not required" in reasons[inv_id]
            node = skipped[inv_id]
            assert node is not None and "violated" in (node.text or "")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(LEVELS) + len(IDS))
    blamed = [i for i in conformant if cert["invariants"][i]["status"] != "pass"]
    assert suite.get("failures") == str(1 + len(blamed))  # the level, and what it rests on
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


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=Path(reports.__file__).parent.parent, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


HEAVY = ("hypothesis", "reference.model", "reference.adapter", "strategies",
         "conformance._engine", "conformance._check", "jinja2", "jsonschema", "cryptography")


def test_reports_never_imports_the_model() -> None:
    """The dependency rule, checked where it matters, in ``sys.modules`` at run time:
    ``import reports`` loads neither the model, the strategies, the engine nor Hypothesis,
    and leaves jinja2, jsonschema and cryptography for when a bundle is rendered, validated
    or signed."""
    loaded = _loaded_after("import reports")
    assert "reports._verify" in loaded and "conformance" in loaded
    assert {m for m in loaded if m.split(".")[0] in ("hypothesis", "strategies", "jinja2",
                                                     "jsonschema", "cryptography")} == set()
    assert {m for m in HEAVY if m in loaded} == set()


def test_verify_never_loads_the_engine_or_hypothesis(made: dict[str, Path]) -> None:
    path = str(made["faulty"])
    loaded = _loaded_after(f"import reports, pathlib\n"
                           f"checks = reports.verify_bundle(pathlib.Path({path!r}))\n"
                           "assert not [c for c in checks if c.failed], checks")
    assert "jsonschema" in loaded  # the schema check ran
    assert {m for m in HEAVY if m in loaded} <= {"jsonschema", "cryptography"}


def test_reports_imports_only_the_public_names_of_conformance() -> None:
    """At run time ``reports`` imports ``from conformance import ...`` only (type-only imports
    under ``TYPE_CHECKING`` aside), never ``reference`` or ``strategies``."""
    root = Path(reports.__file__).parent
    for source in root.glob("*.py"):
        tree = ast.parse(source.read_text(), str(source))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and ast.unparse(node.test) == "TYPE_CHECKING"
                       for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in ("reference", "strategies", "hypothesis"), \
                    f"{source.name} imports {name}"
                if top == "conformance":
                    assert name == "conformance", f"{source.name} imports {name}"


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
    assert f"OK: all {N_CHECKS} checks passed or do not apply" in out


@pytest.mark.parametrize("name", ["reference-signed", "faulty-signed"])
def test_verify_passes_on_a_fresh_signed_bundle(name: str, made: dict[str, Path],
                                                keys: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(made[name], "--public-key", str(keys["signer.pub"]), capsys=capsys)
    assert code == 0, out
    assert "3. PASS  signature: valid Ed25519 signature by SHA256:" in out
    assert "(the given public key)" in out
    assert f"OK: all {N_CHECKS} checks passed" in out
    code, out = verify(made[name], capsys=capsys)
    assert code == 0 and "the bundled signing-key.pub" in out


def test_verify_output_is_numbered_and_ends_with_the_failed_checks(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("faulty")
    (path / "junit.xml").unlink()
    code, out = verify(path, capsys=capsys)
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split(".")[0].strip() for line in lines] == [
        str(n) for n in range(1, N_CHECKS + 1)]
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


# --- coverage (certificate format version 2) -----------------------------------------------
def test_certificate_records_coverage_that_adds_up(made: dict[str, Path]) -> None:
    for name in ("reference", "faulty", "spread"):
        cert = json.loads((made[name] / "certificate.json").read_text())
        assert cert["format_version"] == reports.FORMAT_VERSION == 6
        assert list(cert["coverage"]) == list(IDS), name
        for inv_id, entry in cert["coverage"].items():
            n = cert["invariants"][inv_id]["exercised"]
            assert set(entry) == set(reports.COVERAGE_DIMENSIONS), inv_id
            for dim, counts in entry.items():
                assert sum(counts.values()) == n, (name, inv_id, dim)
                # most exercised first, so the same run writes the same JSON
                assert list(counts.values()) == sorted(counts.values(), reverse=True)
            if n:
                assert entry["operation"], (name, inv_id)


def test_certificate_carries_the_results_coverage_unchanged(
        made: dict[str, Path], reference_result: ConformanceResult) -> None:
    cert = json.loads((made["spread"] / "certificate.json").read_text())
    assert cert["coverage"] == spread_coverage(reference_result)
    assert cert["coverage"]["SAFE-12"]["profile"]["hostile"] == 3


def test_empty_coverage_is_written_as_empty_breakdowns(
        reference_result: ConformanceResult) -> None:
    bare = dataclasses.replace(reference_result, coverage={})
    cert = reports.build_certificate(bare, required=["conformant"], benchmark={}, traces={})
    assert cert["coverage"] == {i: {"operation": {}, "profile": {}, "scene": {}} for i in IDS}
    assert reports.schema_errors(cert) == []


def test_a_real_runs_coverage_adds_up_to_its_exercised_counts(tmp_path: Path) -> None:
    result = run_conformance(reference_factory("signature-current"), "quick", max_examples=30)
    assert result.coverage, "the engine recorded no coverage"
    bundle = reports.write_bundle(result, tmp_path / "real")
    cert = bundle.certificate
    for inv_id, r in cert["invariants"].items():
        entry = cert["coverage"][inv_id]
        for dim in reports.COVERAGE_DIMENSIONS:
            assert sum(entry[dim].values()) == r["exercised"], (inv_id, dim)
        assert set(entry["profile"]) <= set(PLATFORM_PROFILES), inv_id
        if r["exercised"]:
            assert entry["operation"] and entry["scene"], inv_id
    # (a 30-example run may leave an invariant unexercised, so check 7 may fail: not our
    # concern here)
    checks = {c.number: c for c in reports.verify_bundle(bundle.path)}
    assert checks[9].name == "coverage adds up to the exercised counts"
    assert checks[9].status == reports.PASS, checks[9].detail
    assert not {c.name for c in checks.values() if c.failed} & {
        "certificate matches its schema", "invariant results consistent"}


def test_schema_requires_coverage_from_format_version_2(made: dict[str, Path]) -> None:
    schema = reports.schema()
    assert schema["properties"]["coverage"]["required"] == list(IDS)
    v1 = json.loads((V1 / "certificate.json").read_text())
    assert v1["format_version"] == 1 and "coverage" not in v1
    assert reports.schema_errors(v1) == []
    cert = json.loads((made["spread"] / "certificate.json").read_text())
    assert reports.schema_errors(cert) == []

    def errors(change: Callable[[dict[str, Any]], None]) -> list[str]:
        broken = json.loads(json.dumps(cert))
        change(broken)
        return reports.schema_errors(broken)

    assert errors(lambda c: c.pop("coverage")) == ["(top): 'coverage' is a required property"]
    assert errors(lambda c: c["invariants"].pop("SAFE-14")) == [
        "invariants: 'SAFE-14' is a required property"]
    # coverage came with format version 2; why, custom and stopped_early with 3; isolation
    # and call_timeout with 4; workers with 6
    assert errors(lambda c: c.update(format_version=1)) == [
        "format_version: 1 is less than the minimum of 2",
        "format_version: 1 is less than the minimum of 3",
        "format_version: 1 is less than the minimum of 4",
        "format_version: 1 is less than the minimum of 6"]
    assert errors(lambda c: c["run"].pop("workers")) == ["run: 'workers' is a required property"]
    assert errors(lambda c: c["run"].update(shard={"index": 0, "of": 2})) == [
        "run/shard/index: 0 is less than the minimum of 1"]
    assert errors(lambda c: c["run"].pop("isolation")) == [
        "run: 'isolation' is a required property"]
    assert errors(lambda c: c["run"].update(isolation="sandboxed")) == [
        "run/isolation: 'sandboxed' is not one of ['isolated', 'in-process']"]
    assert errors(lambda c: c["coverage"]["SAFE-1"]["profile"].update(wcifs=-1)) == [
        "coverage/SAFE-1/profile/wcifs: -1 is less than the minimum of 0"]
    assert errors(lambda c: c["coverage"]["SAFE-1"]["scene"].update(single=2.5)) == [
        "coverage/SAFE-1/scene/single: 2.5 is not of type 'integer'"]
    assert errors(lambda c: c["coverage"]["SAFE-1"]["scene"].update(single="7")) == [
        "coverage/SAFE-1/scene/single: '7' is not of type 'integer'"]
    assert errors(lambda c: c["coverage"]["SAFE-1"].pop("scene")) == [
        "coverage/SAFE-1: 'scene' is a required property"]
    assert any("'SAFE-7' is a required property" in e
               for e in errors(lambda c: c["coverage"].pop("SAFE-7")))
    assert any("'SAFE-99' is not one of" in e
               for e in errors(lambda c: c["coverage"].update({"SAFE-99": {}})))


def test_verify_checks_a_format_version_1_bundle_by_what_it_meant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = v1_bundle(tmp_path / "v1")
    # written before the catalogue gained SAFE-14: not judged, so not "never exercised"
    assert "SAFE-14" not in json.loads((path / "certificate.json").read_text())["invariants"]
    # It names profile quick for a 30-example run: the one overstatement refused.
    assert failed_checks(path) == {"profile budget"}
    code, out = verify(path, capsys=capsys)
    assert code == 1, out
    assert "  4. PASS  certificate matches its schema:" in out
    assert "  9. SKIP  coverage adds up to the exercised counts: a format_version 1 " \
           "certificate records no coverage" in out
    # written with --max-examples 30 and labelled quick, as format 1 did
    assert check_line(out, 10) == (
        "10. FAIL  profile budget: claims profile quick but its budget was 30 examples, not "
        "2000 (a format 1 certificate; format 3 calls such a run custom)")
    assert "FAILED: check 10 (profile budget)" in out
    html = (path / "certificate.html").read_text()
    assert 'id="coverage-missing"' in html and "(format version 1)" in html
    assert 'id="coverage-table"' not in html
    assert "reduced budget: 30 examples, not the 2,000 of quick" in html
    summary = (path / "summary.md").read_text()
    assert summary.count("Coverage:") == 1 and "records no breakdown" in summary
    assert "| conformant (required) | ✅ met |" in summary


def test_verify_rejects_a_version_1_certificate_that_carries_coverage(
        tmp_path: Path, made: dict[str, Path]) -> None:
    path = v1_bundle(tmp_path / "v1")
    spread = json.loads((made["spread"] / "certificate.json").read_text())
    edit_certificate(path, lambda c: c.update(coverage=spread["coverage"]))
    rehash(path)
    assert failed_checks(path) == {"certificate matches its schema", "profile budget"}


@pytest.mark.parametrize("tamper, message", [
    (lambda c: c["coverage"]["SAFE-1"]["profile"].update(
        wcifs=c["coverage"]["SAFE-1"]["profile"]["wcifs"] + 1),
     "SAFE-1's profile breakdown sums to {n1}, but it was exercised {n} times"),
    (lambda c: c["coverage"]["SAFE-1"]["scene"].update(
        opening=c["coverage"]["SAFE-1"]["scene"]["opening"] - 2),
     "SAFE-1's scene breakdown sums to {n_2}, but it was exercised {n} times"),
    (lambda c: c["coverage"]["SAFE-1"].update(operation={}),
     "SAFE-1 was exercised {n} times but its operation breakdown is empty"),
    # the count, not the coverage, is what changed: the coverage check notices
    (lambda c: c["invariants"]["SAFE-1"].update(exercised=c["invariants"]["SAFE-1"]
                                                ["exercised"] + 1),
     "SAFE-1's operation breakdown sums to {n}, but it was exercised {n1} times"),
], ids=["profile", "scene", "operation", "exercised"])
def test_verify_rejects_coverage_that_does_not_add_up(
        tamper: Callable[[dict[str, Any]], None], message: str, bundle: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("spread")
    n = json.loads((path / "certificate.json").read_text())["invariants"]["SAFE-1"]["exercised"]
    edit_certificate(path, tamper)
    rehash(path)
    assert failed_checks(path) == {"coverage adds up to the exercised counts"}
    code, out = verify(path, capsys=capsys)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("  9. "))
    assert line.startswith("  9. FAIL  coverage adds up to the exercised counts: ")
    assert message.format(n=n, n1=n + 1, n_2=n - 2) in line, line
    assert out.rstrip().endswith("FAILED: check 9 (coverage adds up to the exercised counts)")


def test_verify_rejects_a_certificate_stripped_of_coverage(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("spread")
    edit_certificate(path, lambda c: c.pop("coverage"))
    rehash(path)
    assert failed_checks(path) == {"certificate matches its schema",
                                   "coverage adds up to the exercised counts"}
    code, out = verify(path, capsys=capsys)
    assert code == 1
    assert "9. FAIL  coverage adds up to the exercised counts: the certificate has no " \
           "'coverage' object" in out


def test_verify_rejects_a_bundle_whose_run_recorded_no_coverage(
        tmp_path: Path, reference_result: ConformanceResult,
        capsys: pytest.CaptureFixture[str]) -> None:
    bare = dataclasses.replace(reference_result, coverage={})
    path = reports.write_bundle(bare, tmp_path / "bare").path
    assert failed_checks(path) == {"coverage adds up to the exercised counts"}
    code, out = verify(path, capsys=capsys)
    assert code == 1
    n = sum(1 for r in bare.invariants.values() if r.exercised)
    assert f"every breakdown is empty, but {n} invariants were exercised (SAFE-1, SAFE-2, " \
           f"SAFE-3 and {n - 3} more): the run recorded no coverage" in out


def test_verify_accepts_the_coverage_of_an_unexercised_invariant(
        made: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cert = json.loads((made["faulty"] / "certificate.json").read_text())
    idle = [i for i, r in cert["invariants"].items() if r["exercised"] == 0]
    assert idle, "the one-example faulty run leaves some invariant unexercised"
    assert all(not any(counts.values()) for i in idle
               for counts in cert["coverage"][i].values())
    code, out = verify(made["faulty"], capsys=capsys)
    assert code == 0 and "  9. PASS  coverage adds up to the exercised counts:" in out


def _cells(html: str, inv_id: str) -> str:
    start = html.index(f'<tr id="cov-{inv_id}"')
    return html[start:html.index("</tr>", start)]


def test_html_coverage_table_shows_the_breakdown_and_marks_thin_cells(
        made: dict[str, Path]) -> None:
    html = (made["spread"] / "certificate.html").read_text()
    cert = json.loads((made["spread"] / "certificate.json").read_text())
    section = html[html.index('<h2 id="coverage">'):html.index('<h2 id="benchmark">')]
    assert section.count('<table class="cov" id="coverage-table"') == 1
    assert section.count('<tr id="cov-') == len(IDS)
    head = section[section.index("<thead>"):section.index("</thead>")]
    assert [p for p in PLATFORM_PROFILES if f">{p}</th>" in head] == list(PLATFORM_PROFILES)
    thin = expected_thin(cert)
    assert {"SAFE-12", "EFF-6"} <= set(thin)
    exercised = sum(1 for r in cert["invariants"].values() if r["exercised"])
    assert f"<b>{len(thin)} of {exercised}</b> exercised invariants are thinly covered" in section
    for inv_id in IDS:
        row = _cells(section, inv_id)
        entry, n = cert["coverage"][inv_id], cert["invariants"][inv_id]["exercised"]
        assert f'<td class="num">{n:,}</td>' in row, inv_id
        assert f'data-thin="{" ".join(thin.get(inv_id, []))}"' in row, inv_id
        for p in PLATFORM_PROFILES:
            k = entry["profile"].get(p, 0)
            mark = "" if k >= THIN else (" none" if k == 0 else " thin")
            assert f'<td class="num{mark}" data-profile="{p}"' in row, (inv_id, p)
            assert f">{k:,}</td>" in row.split(f'data-profile="{p}"')[1].split("\n")[0]
        top_op = next(iter(entry["operation"]))
        assert f'<span class="kind">{top_op} <b>{entry["operation"][top_op]:,}</b></span>' in row
        for scene, k in entry["scene"].items():  # every scene listed, some behind "+N more"
            assert f'<span class="kind">{scene} <b>{k:,}</b></span>' in row
    safe12 = _cells(section, "SAFE-12")
    assert ('<td class="num thin" data-profile="hostile" title="SAFE-12: 3 exercises under '
            'hostile">3</td>') in safe12
    eff6 = _cells(section, "EFF-6")
    assert '<td class="num none" data-profile="wcifs"' in eff6
    assert "+1 more" not in section  # a single leftover kind is shown, not hidden
    assert "<summary>+2 more</summary>" in _cells(section, "SAFE-1")
    assert cert["coverage"]["SAFE-1"]["operation"]["concurrent_opens"] == 0
    assert "concurrent_opens" not in section  # zero counts are not listed


def test_html_coverage_of_unexercised_invariants_and_of_an_even_spread(
        made: dict[str, Path]) -> None:
    html = (made["faulty"] / "certificate.html").read_text()
    cert = json.loads((made["faulty"] / "certificate.json").read_text())
    for inv_id, r in cert["invariants"].items():
        row = _cells(html, inv_id)
        if r["exercised"] == 0:
            assert 'not exercised</span>' in row and 'data-thin=""' in row
            assert row.count(">—</td>") == len(PLATFORM_PROFILES)
            assert " thin" not in row and " none" not in row
    page = render_html({**cert, "coverage": {
        i: {d: {"wcifs": 10, "no-registered-flag": 10, "hostile": 10} if r["exercised"] else {}
            for d in reports.COVERAGE_DIMENSIONS}
        for i, r in cert["invariants"].items()}}, {})
    assert "Every exercised invariant was exercised at least 10 times under each profile" in page
    assert 'class="num thin"' not in page and 'class="num none"' not in page


def test_summary_md_names_each_thin_invariant_on_one_line(made: dict[str, Path]) -> None:
    cert = json.loads((made["spread"] / "certificate.json").read_text())
    text = (made["spread"] / "summary.md").read_text()
    thin = expected_thin(cert)
    lines = [line for line in text.splitlines() if line.startswith("- ⚠️ **")]
    assert [line.split("**")[1] for line in lines] == list(thin)
    eff6 = next(line for line in lines if "**EFF-6**" in line)
    n = cert["invariants"]["EFF-6"]["exercised"]
    assert eff6 == f"- ⚠️ **EFF-6**: < 10 exercises under wcifs (0), hostile (0); {n:,} in all"
    assert "hostile (3);" in next(line for line in lines if "**SAFE-12**" in line)
    assert "| SAFE-1 |" not in text and "coverage-table" not in text  # not the whole table
    even = {**cert, "coverage": {
        i: {d: {"wcifs": 10, "no-registered-flag": 10, "hostile": 10} if r["exercised"] else {}
            for d in reports.COVERAGE_DIMENSIONS} for i, r in cert["invariants"].items()}}
    quiet = render_summary(even, "out")
    assert "⚠️ **" not in quiet
    assert quiet.count("Coverage: every exercised invariant was exercised at least 10 times "
                       "under each platform profile (wcifs, no-registered-flag, hostile).") == 1


# --- certificates that cannot overstate (format version 3) ---------------------------------
def check_line(out: str, number: int) -> str:
    return next(x.strip() for x in out.splitlines() if x.strip().startswith(f"{number}. "))


def test_a_reduced_budget_is_labelled_custom_and_verify_passes_it_as_custom(
        made: dict[str, Path], reference_result: ConformanceResult,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert reference_result.settings["max_examples"] != PROFILES["quick"].max_examples
    cert = json.loads((made["reference"] / "certificate.json").read_text())
    assert cert["run"]["profile"] == "custom"
    assert cert["run"]["settings"]["based_on"] == "quick"
    code, out = verify(made["reference"], capsys=capsys)
    assert code == 0, out
    assert check_line(out, 10) == ("10. PASS  profile budget: custom budget of 100 examples "
                                   "(based on quick), all run")
    html = (made["reference"] / "certificate.html").read_text()
    notes = html[html.index('id="run-notes"'):html.index('<section class="figures"')]
    assert "custom budget: 100 examples (based on quick)" in notes
    assert "stopped early" not in notes
    summary = (made["reference"] / "summary.md").read_text()
    assert "profile `custom`" in summary
    assert "⚠️ custom budget: 100 examples (based on quick)" in summary
    # A result that calls a reduced budget by its profile's name is labelled custom anyway.
    misnamed = dataclasses.replace(reference_result, profile="quick",
                                   settings={"max_examples": 100})
    relabelled = reports.build_certificate(misnamed, required=["conformant"], benchmark={},
                                           traces={})
    assert relabelled["run"]["profile"] == "custom"
    assert relabelled["run"]["settings"] == {"max_examples": 100, "based_on": "quick"}


@pytest.mark.parametrize("claim, message", [
    ({"profile": "certify", "max_examples": 50, "examples": 50},
     "claims profile certify but ran 50 of 10000 examples (a budget of 50: custom)"),
    ({"profile": "quick"}, "claims profile quick but ran 100 of 2000 examples (a budget of "
                           "100: custom)"),
    ({"profile": "certify", "max_examples": 10000},
     "claims profile certify but ran 100 of 10000 examples"),
    ({"examples": 40}, "custom budget of 100 examples (based on quick), but 40 ran and the run "
                       "did not stop early"),
    ({"stopped_early": True, "examples": 40},
     "stopped early, but no conformant invariant failed"),
], ids=["certify-50", "quick-100", "certify-short", "custom-short", "stopped-clean"])
def test_verify_rejects_a_certificate_that_claims_a_budget_it_did_not_run(
        claim: dict[str, Any], message: str, bundle: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("reference")

    def edit(cert: dict[str, Any]) -> None:
        run_ = cert["run"]
        if "profile" in claim:
            run_["profile"] = run_["settings"]["based_on"] = claim["profile"]
        if "max_examples" in claim:
            run_["settings"]["max_examples"] = claim["max_examples"]
        if "examples" in claim:
            cert["stats"]["examples"] = claim["examples"]
        if "stopped_early" in claim:
            run_["stopped_early"] = cert["stats"]["stopped_early"] = claim["stopped_early"]

    edit_certificate(path, edit)
    rehash(path)
    assert failed_checks(path) == {"profile budget"}
    code, out = verify(path, capsys=capsys)
    assert code == 1
    line = check_line(out, 10)
    assert line.startswith("10. FAIL  profile budget: ") and message in line, line
    assert out.rstrip().endswith("FAILED: check 10 (profile budget)")


def test_a_run_stopped_early_says_so_and_verifies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for profile, budget in (("quick", 50), ("certify", None)):
        result = run_conformance(load_adapter(FAULTY), profile, seed=1, spec=FAULTY,
                                 max_examples=budget, workloads=False)
        assert result.stopped_early, "the faulty adapter fails within its first examples"
        n = result.stats["examples"]
        path = reports.write_bundle(result, tmp_path / profile).path
        cert = json.loads((path / "certificate.json").read_text())
        assert cert["run"]["stopped_early"] is True
        assert cert["run"]["profile"] == ("custom" if budget else "certify")
        code, out = verify(path, capsys=capsys)
        assert code == 0, out
        what = ("custom budget of 50 examples (based on quick)" if budget
                else "profile certify, its budget of 10,000 examples")
        assert check_line(out, 10) == (
            f"10. PASS  profile budget: {what}; stopped early at a violation (SAFE-2) after "
            f"{n} example{'' if n == 1 else 's'}")
        stopped = f"stopped early at a violation after {n} example{'' if n == 1 else 's'}"
        assert stopped in (path / "certificate.html").read_text()
        summary = (path / "summary.md").read_text().splitlines()
        assert any(x.startswith("⚠️ ") and stopped in x for x in summary), summary
        # claiming the whole budget ran is caught
        edit_certificate(path, lambda c: (c["run"].update(stopped_early=False),
                                          c["stats"].update(stopped_early=False)))
        rehash(path)
        assert failed_checks(path) == {"profile budget"}


def _without(result: ConformanceResult, inv_id: str) -> ConformanceResult:
    """The result, with ``inv_id`` never exercised (and its coverage to match)."""
    invariants = dict(result.invariants)
    invariants[inv_id] = dataclasses.replace(invariants[inv_id], status="not-exercised",
                                             exercised=0, violation=None)
    coverage = {**plain_coverage(result),
                inv_id: {"operation": {}, "profile": {}, "scene": {}}}
    return dataclasses.replace(result, invariants=invariants, coverage=coverage)


def test_a_level_never_fully_exercised_is_not_established_on_every_face(
        tmp_path: Path, reference_result: ConformanceResult,
        capsys: pytest.CaptureFixture[str]) -> None:
    result = _without(reference_result, "EFF-6")
    path = reports.write_bundle(result, tmp_path / "b",
                                required=["conformant", "optimized"]).path
    cert = json.loads((path / "certificate.json").read_text())
    assert cert["levels"] == {"conformant": True, "signature-current": True,
                              "optimized": False}
    verdict = cert["verdict"]
    assert (verdict["met"], verdict["not_met"], verdict["unexercised"]) == (
        False, ["optimized"], ["EFF-6"])
    assert verdict["why"]["optimized"] == result.verdicts["optimized"].why()
    assert "not established: EFF-6 never exercised" in verdict["why"]["optimized"]

    html = (path / "certificate.html").read_text()
    badge = html[html.index('id="level-optimized"'):]
    badge = badge[:badge.index('<div class="badge-desc">')]
    assert 'data-met="false"' in badge and 'data-status="not-exercised"' in badge
    assert "✗ not established (EFF-6 never exercised)" in badge
    assert "✓ met" not in badge
    assert 'class="badge not-met not-established"' in html
    summary = (path / "summary.md").read_text()
    assert "| optimized (required) | ❌ not established (EFF-6 never exercised) |" in summary
    assert "| conformant (required) | ✅ met |" in summary

    cases = {c.get("name"): c for c in ET.parse(path / "junit.xml").getroot().iter("testcase")}
    assert {n for n, c in cases.items() if c.find("failure") is not None} == {
        "optimized", "EFF-6"}
    node = cases["EFF-6"].find("failure")
    assert node is not None and node.get("type") == "not-exercised"
    assert "required level optimized cannot be established" in node.get("message", "")

    code, out = verify(path, capsys=capsys)
    assert code == 0, out  # an honest certificate of a level not established
    # ... and one that claims the level anyway is caught
    edit_certificate(path, lambda c: c["levels"].update(optimized=True))
    rehash(path)
    assert failed_checks(path) == {"levels follow from the invariant results",
                                   "every invariant of a claimed level exercised"}

    # Not required: reported, but nothing fails.
    quiet = reports.write_bundle(result, tmp_path / "quiet").path
    cases = {c.get("name"): c for c in ET.parse(quiet / "junit.xml").getroot().iter("testcase")}
    assert not [n for n, c in cases.items() if c.find("failure") is not None]
    assert cases["optimized"].find("skipped") is not None
    assert cases["EFF-6"].find("skipped") is not None


@pytest.mark.parametrize("name", ["reference", "faulty", "spread"])
def test_junit_level_cases_fail_exactly_for_the_required_levels_not_met(
        name: str, made: dict[str, Path]) -> None:
    cert = json.loads((made[name] / "certificate.json").read_text())
    root = ET.parse(made[name] / "junit.xml").getroot()
    levels = {c.get("name"): c for c in root.iter("testcase")
              if c.get("classname") == "wcifs-conformance.levels"}
    assert list(levels) == list(LEVELS)
    failing = [lv for lv, c in levels.items() if c.find("failure") is not None]
    assert failing == cert["verdict"]["not_met"]
    # the CLI exits 1 exactly when the JUnit report has a failure
    assert bool(list(root.iter("failure"))) is (not cert["verdict"]["met"])


def test_a_ci_commit_is_recorded_as_the_adapters_never_the_suites(
        reference_result: ConformanceResult, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = "ab" * 20
    monkeypatch.delenv("CI_COMMIT_SHA", raising=False)
    monkeypatch.setenv("GITHUB_SHA", sha)
    monkeypatch.setenv("WCIFS_SUITE_COMMIT", sha)
    from conformance._version import suite_commit

    suite_commit.cache_clear()
    try:
        assert suite_commit() != sha
        cert = reports.build_certificate(reference_result, required=["conformant"],
                                         benchmark={}, traces={})
    finally:
        suite_commit.cache_clear()
    assert cert["adapter"]["ci_commit"] == {"commit": sha, "variable": "GITHUB_SHA"}
    assert cert["suite"]["commit"] != sha
    assert reports.schema_errors(cert) == []
    html = render_html(cert, {})
    assert f"{sha} (from GITHUB_SHA)" in html
    monkeypatch.delenv("GITHUB_SHA")
    monkeypatch.setenv("CI_COMMIT_SHA", sha)
    assert reports.ci_commit() == {"commit": sha, "variable": "CI_COMMIT_SHA"}
    monkeypatch.delenv("CI_COMMIT_SHA")
    assert "ci_commit" not in reports.build_certificate(
        reference_result, required=["conformant"], benchmark={}, traces={})["adapter"]


def test_verify_checks_a_format_version_2_bundle(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """A certificate as format 2 wrote it: a reduced budget named after its profile, no
    verdict.why, no stopped_early; still verified by what its format meant."""
    path = bundle("reference")

    def downgrade(cert: dict[str, Any]) -> None:
        cert["format_version"] = 2
        cert["verdict"].pop("why")
        cert["run"].pop("stopped_early")
        cert["run"].pop("isolation")
        cert["run"].pop("call_timeout")
        cert["run"].pop("workers")
        cert["run"]["profile"] = cert["run"]["settings"].pop("based_on")
        cert["stats"].pop("stopped_early")

    edit_certificate(path, downgrade)
    rehash(path)
    assert failed_checks(path) == {"profile budget"}
    code, out = verify(path, capsys=capsys)
    assert code == 1, out
    assert check_line(out, 10) == (
        "10. FAIL  profile budget: claims profile quick but its budget was 100 examples, not "
        "2000 (a format 2 certificate; format 3 calls such a run custom)")
    # with its profile's whole budget, a format 2 certificate verifies
    edit_certificate(path, lambda c: c["run"]["settings"].update(max_examples=2000))
    rehash(path)
    assert failed_checks(path) == set()
    # format 3's keys in a format 2 certificate are not
    edit_certificate(path, lambda c: c["run"].update(profile="custom"))
    assert "certificate matches its schema" in failed_checks(path)


def test_verify_catches_a_reason_that_hides_a_failure(
        bundle: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle("faulty")
    edit_certificate(path, lambda c: c["verdict"]["why"].update(
        conformant="conformant met: all invariants exercised, none failed"))
    rehash(path)
    assert failed_checks(path) == {"levels follow from the invariant results"}
    code, out = verify(path, capsys=capsys)
    assert code == 1 and "verdict.why of conformant is" in check_line(out, 5)
