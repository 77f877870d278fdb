"""Expectation files (``certify --expect FILE.toml``, SPEC §8): known failures are recorded
and the run goes on; the exit code reflects only what differs from the file; the levels
never change, and the certificate says expectations were used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance._cli import run
from conformance._expect import ExpectationsError, compare, load_expectations

ROOT = Path(__file__).parent.parent
MUTANT = "tests/gallery.py:StaleLayerMarker"
BASE = ["certify", "--adapter", MUTANT, "--max-examples", "60", "--seed", "1", "--no-bench",
        "--in-process", "-q"]


def _toml(path: Path, known: dict[str, str]) -> Path:
    path.write_text("".join(f'[{i}]\nreason = "{why}"\n\n' for i, why in known.items()))
    return path


def _certify(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = run([*BASE, "--out", str(out), *extra])
    return code, json.loads((out / "certificate.json").read_text())


@pytest.fixture(scope="module")
def without_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    code, cert = _certify(tmp_path_factory.mktemp("plain") / "b")
    assert code == 1 and cert["invariants"]["SAFE-3"]["status"] == "fail"
    return cert


@pytest.fixture(scope="module")
def all_known(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The vendor's loop: list what failed, run again, until the results match the file
    (each known failure lets the run go on to the next)."""
    tmp = tmp_path_factory.mktemp("known")
    listed = {"SAFE-3": "stale layer marker"}
    for attempt in range(6):
        path = _toml(tmp / f"e{attempt}.toml", listed)
        code, cert = _certify(tmp / f"b{attempt}", "--expect", str(path))
        new = cert["run"]["expectations"]["new_failures"]
        if not new:
            assert code == 0, cert["run"]["expectations"]
            return path, cert
        assert code == 1
        listed |= {i: f"seen on run {attempt + 1}" for i in new}
    raise AssertionError(f"still new failures after 6 runs: {listed}")


def test_matching_results_pass_the_gate_and_the_certificate_says_so(
        all_known: tuple[Path, dict[str, Any]], without_file: dict[str, Any]) -> None:
    path, cert = all_known
    expect = cert["run"]["expectations"]
    assert expect["matches"] and expect["file"] == str(path)
    assert expect["known_failures"] == list(expect["expected"])
    assert not expect["new_failures"] and not expect["unexpectedly_passing"]
    # The levels are judged as without the file.
    assert cert["levels"] == without_file["levels"] and not cert["levels"]["conformant"]
    assert cert["format_version"] >= 5
    schema = json.loads((ROOT / "reports" / "certificate.schema.json").read_text())
    jsonschema.validate(cert, schema)


def test_the_certificate_face_says_expectations_were_used(
        all_known: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = all_known
    out = tmp_path / "b"
    assert run([*BASE, "--out", str(out), "--expect", str(path)]) == 0
    html = (out / "certificate.html").read_text()
    assert f"expectations used ({path})" in html
    assert "known failure</span> listed in the expectation file: stale layer marker" in html
    assert f"expectations used ({path})" in (out / "summary.md").read_text()


def test_a_known_failure_does_not_hide_the_next(without_file: dict[str, Any],
                                                 all_known: tuple[Path, dict[str, Any]]
                                                 ) -> None:
    """Without the file the run stops at SAFE-3; with it, it goes on and finds more."""
    _, cert = all_known
    assert without_file["run"]["stopped_early"]
    assert not cert["run"]["stopped_early"]
    assert cert["stats"]["examples"] > without_file["stats"]["examples"]
    assert len(cert["run"]["expectations"]["known_failures"]) > 1
    # The known failure's trace is still shrunk and written.
    assert cert["invariants"]["SAFE-3"]["steps"] <= without_file["invariants"]["SAFE-3"]["steps"]


def test_a_new_failure_breaks_the_gate(all_known: tuple[Path, dict[str, Any]],
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    _path, cert = all_known
    expected = dict(cert["run"]["expectations"]["expected"])
    dropped = next(i for i in expected if i != "SAFE-3")
    del expected[dropped]
    code, cert = _certify(tmp_path / "b", "--expect", str(_toml(tmp_path / "e.toml", expected)))
    assert code == 1
    assert cert["run"]["expectations"]["new_failures"] == [dropped]
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith(f"Expectations: results differ from the file: new failure(s) "
                              f"{dropped}")
    assert out[-1] == f"Certificate: {(tmp_path / 'b' / 'certificate.html').as_uri()}"


def test_an_unexpected_pass_is_reported(all_known: tuple[Path, dict[str, Any]],
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    _path, cert = all_known
    passing = next(i for i, r in cert["invariants"].items() if r["status"] == "pass")
    expected = {**cert["run"]["expectations"]["expected"], passing: "fixed since?"}
    code, cert = _certify(tmp_path / "b", "--expect", str(_toml(tmp_path / "e.toml", expected)))
    assert code == 1
    assert cert["run"]["expectations"]["unexpectedly_passing"] == [passing]
    assert f"unexpectedly passing {passing}: remove them from the file" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "message"), [
    ('[SAFE-99]\nreason = "x"\n', "names no known invariant ('SAFE-99')"),
    ("[SAFE-3]\n", "[SAFE-3] needs a reason"),
    ('[SAFE-3]\nreason = ""\n', "[SAFE-3] needs a reason"),
    ('[SAFE-3]\nreason = "x"\nticket = 4\n', "unknown key(s) ticket"),
    ("SAFE-3 = 1\n", "[SAFE-3] needs a reason"),
    ("[SAFE-3\n", "is not TOML"),
])
def test_a_malformed_file_is_a_one_line_usage_error(
        text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError, match=None) as e:
        load_expectations(path)
    assert message in str(e.value)
    assert run([*BASE, "--out", str(tmp_path / "b"), "--expect", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("wcifs-conformance: error:")
    assert not (tmp_path / "b").exists()


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert run([*BASE, "--out", str(tmp_path / "b"), "--expect",
                str(tmp_path / "nope.toml")]) == 2


def test_compare_sorts_every_listed_and_failed_id() -> None:
    statuses = {"SAFE-1": "fail", "SAFE-2": "fail", "SAFE-3": "pass", "SAFE-4": "not-exercised",
                "SAFE-5": "pass"}
    c = compare({"SAFE-1": "a", "SAFE-3": "b", "SAFE-4": "c"}, statuses)
    assert (c.known, c.new, c.passing, c.unexercised) == (["SAFE-1"], ["SAFE-2"], ["SAFE-3"],
                                                         ["SAFE-4"])
    assert not c.matches
    assert compare({"SAFE-1": "a", "SAFE-2": "b"}, statuses).matches


def test_one_known_failure_passes_the_gate(tmp_path: Path) -> None:
    """The plainest case: an adapter with one defect (an ECP in every open, ECP-2) and a
    file listing it: exit 0, the level it breaks still not met, the file on the face."""
    path = _toml(tmp_path / "e.toml", {"ECP-2": "attaches an ECP outside containers"})
    out = tmp_path / "b"
    code = run(["certify", "--adapter", "tests/gallery.py:EcpEverywhere", "--max-examples",
                "200", "--seed", "1", "--no-bench", "--in-process", "-q", "--out", str(out),
                "--expect", str(path)])
    cert = json.loads((out / "certificate.json").read_text())
    assert code == 0, cert["run"]["expectations"]
    assert cert["run"]["expectations"]["known_failures"] == ["ECP-2"]
    assert cert["invariants"]["ECP-2"]["status"] == "fail"
    assert f"expectations used ({path})" in (out / "certificate.html").read_text()
