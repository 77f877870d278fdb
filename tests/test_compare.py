"""``wcifs-conformance compare OLD_BUNDLE NEW_BUNDLE``: what changed between two bundles.

Two real bundles are certified once for the module, with the ``certify`` command itself: a
mutant of the gallery (``NoInvalidation``, the reference with SAFE-9 broken) and its fix (the
reference adapter), same seed and budget. What the comparison must say is read from their
certificates, never written down here. Rules the real bundles cannot show (a workload that
costs more scans, hot-path timings, every status transition, older and partial
certificates) are checked on modified copies of the real certificate.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gallery import MUTANTS, NoInvalidation
from markdown_it import MarkdownIt
from test_cli import one_error_line

from conformance import LEVELS
from conformance._bench import hot_path
from conformance._cli import run
from conformance._compare import compare, diff
from reference.adapter import reference_factory

GALLERY = Path(__file__).resolve().with_name("gallery.py")
V1_BUNDLE = Path(__file__).resolve().with_name("data") / "v1-bundle"
MUTANT = f"{GALLERY}:{NoInvalidation.__name__}"
FIX = "reference"
#: The invariant the gallery says this mutant breaks.
BROKEN_ID = next(i for i, adapters in MUTANTS.items() if NoInvalidation in adapters)
#: Small, and the same for both: the mutant stops at its first violation anyway.
RUN = ("--max-examples", "300", "--seed", "1", "--no-bench", "--in-process")


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "CI": "true"})


def certificate(bundle: Path) -> dict[str, Any]:
    cert: dict[str, Any] = json.loads((bundle / "certificate.json").read_text("utf-8"))
    return cert


def statuses(bundle: Path) -> dict[str, str]:
    return {i: r["status"] for i, r in certificate(bundle)["invariants"].items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compare")


@pytest.fixture(scope="module")
def mutant(workdir: Path) -> Path:
    out = workdir / "mutant"
    proc = cli("certify", "--adapter", MUTANT, *RUN, "--out", out, cwd=workdir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert statuses(out)[BROKEN_ID] == "fail"
    return out


@pytest.fixture(scope="module")
def fixed(workdir: Path) -> Path:
    out = workdir / "fixed"
    proc = cli("certify", "--adapter", FIX, *RUN, "--require", ",".join(LEVELS), "--out", out,
               cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def compared(old: Path, new: Path, capsys: pytest.CaptureFixture[str],
             *extra: str) -> tuple[int, list[str]]:
    """``compare`` through the command line's own entry point: (exit code, stdout lines)."""
    code = run(["compare", str(old), str(new), *extra])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out.splitlines()


def level_line(lines: list[str], level: str) -> str:
    return next(ln for ln in lines if re.match(rf"\s+{re.escape(level)}\s", ln))


def invariant_lines(lines: list[str], kind: str) -> dict[str, str]:
    """Invariant ID -> its line, for the lines of one kind of change."""
    found = {}
    for ln in lines:
        m = re.match(rf"\s+{re.escape(kind)}\s+([A-Z]+-[0-9]+)\s", ln)
        if m:
            found[m.group(1)] = ln
    return found


# --- the real bundles -----------------------------------------------------------------------
def test_the_fix_exits_0_with_the_invariant_fixed_and_the_level_gained(
        mutant: Path, fixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = compared(mutant, fixed, capsys)
    assert code == 0
    assert lines[0].startswith("no regression")
    old, new = statuses(mutant), statuses(fixed)
    want_fixed = {i for i in old if old[i] == "fail" and new[i] == "pass"}
    assert BROKEN_ID in want_fixed
    assert set(invariant_lines(lines, "fixed")) == want_fixed
    assert "fail -> pass" in invariant_lines(lines, "fixed")[BROKEN_ID]
    assert BROKEN_ID in lines[0]
    old_levels, new_levels = certificate(mutant)["levels"], certificate(fixed)["levels"]
    gained = [lv for lv in LEVELS if not old_levels[lv] and new_levels[lv]]
    assert "conformant" in gained
    for lv in LEVELS:
        line = level_line(lines, lv)
        assert line.split()[-1] == ("gained" if lv in gained else "unchanged"), line
    assert not invariant_lines(lines, "broken")


def test_the_mutant_after_its_fix_exits_1_naming_the_broken_invariant_and_lost_level(
        mutant: Path, fixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = compared(fixed, mutant, capsys)
    assert code == 1
    verdict = lines[0]
    assert verdict.startswith("REGRESSION: ")
    assert BROKEN_ID in verdict and "conformant" in verdict
    old, new = statuses(fixed), statuses(mutant)
    want_broken = {i for i in new if new[i] == "fail" and old[i] != "fail"}
    assert set(invariant_lines(lines, "broken")) == want_broken
    assert "pass -> fail" in invariant_lines(lines, "broken")[BROKEN_ID]
    conformant = level_line(lines, "conformant")
    assert re.search(r"met\s+->\s+NOT met\s+lost", conformant), conformant
    assert BROKEN_ID in conformant, "a lost level says why (the new verdict.why)"
    # every invariant is accounted for: listed once, or in the single "unchanged" line
    listed = [ln for ln in lines if re.match(r"\s+[a-z][a-z ]+\s+[A-Z]+-[0-9]+\s", ln)]
    unchanged = next(ln for ln in lines if re.match(r"\s+(all )?\d+ unchanged", ln))
    n_unchanged = int(re.search(r"(\d+) unchanged", unchanged).group(1))  # type: ignore[union-attr]
    assert len(listed) + n_unchanged == len(old)
    assert n_unchanged == sum(old[i] == new[i] for i in old)


def test_the_command_line_program_compares_and_writes_markdown(
        mutant: Path, fixed: Path, workdir: Path) -> None:
    md = workdir / "comment.md"
    proc = cli("compare", fixed, mutant, "--markdown", md, cwd=workdir)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("REGRESSION: ")
    assert md.is_file()


def test_adapters_that_differ_get_a_notice_and_identical_ones_none(
        mutant: Path, fixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, lines = compared(mutant, fixed, capsys)
    notices = [ln for ln in lines[:6] if ln.startswith("notice:")]
    assert len(notices) == 1
    assert "adapter spec" in notices[0]
    assert MUTANT in notices[0] and FIX in notices[0]
    code, lines = compared(fixed, fixed, capsys)
    assert code == 0
    assert lines[0] == "no regression"
    assert not any(ln.startswith("notice:") for ln in lines)
    n = len(statuses(fixed))
    assert any(ln.strip().startswith(f"all {n} unchanged") for ln in lines)


def _tables(text: str) -> list[list[list[str]]]:
    """Every table a CommonMark + GFM-tables parser finds: rows of cell sources."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables: list[list[list[str]]] = []
    row: list[str] = []
    for tok in tokens:
        if tok.type == "table_open":
            tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and tables and tok.level > 0 and row is not None:
            row.append(tok.content)
        elif tok.type == "tr_close":
            tables[-1].append(row)
    return tables


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_markdown_holds_the_same_facts_as_valid_tables(
        mutant: Path, fixed: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = workdir / "regression.md"
    code, lines = compared(fixed, mutant, capsys, "--markdown", str(md))
    assert code == 1
    text = md.read_text("utf-8")
    # every table row has as many cells as its header, and a delimiter row follows it
    blocks = re.findall(r"(?:^\|.*\n)+", text, flags=re.M)
    assert len(blocks) >= 3
    for block in blocks:
        rows = block.splitlines()
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rows[1]), rows[1]
        assert {_cells(r) for r in rows} == {_cells(rows[0])}, block
    tables = _tables(text)
    assert len(tables) == len(blocks)
    by_header = {tuple(t[0]): t[1:] for t in tables}
    levels = by_header[("level", "old", "new", "change")]
    assert {r[0] for r in levels} == set(LEVELS)
    old_levels, new_levels = certificate(fixed)["levels"], certificate(mutant)["levels"]
    for r in levels:
        lost = old_levels[r[0]] and not new_levels[r[0]]
        assert ("**lost**" in r[3]) == lost, r
    invariants = by_header[("invariant", "level", "old", "new", "exercised", "change")]
    rows = {r[0]: r for r in invariants}
    broken = invariant_lines(lines, "broken")
    assert {i for i, r in rows.items() if r[5] == "**broken**"} == set(broken)
    assert rows[BROKEN_ID][2:4] == ["pass", "fail"]
    for kind in ("no longer exercised", "newly exercised", "still failing", "fixed"):
        assert {i for i, r in rows.items() if r[5].strip("*") == kind} == set(
            invariant_lines(lines, kind))
    unchanged = next(ln.strip() for ln in lines if re.match(r"\s+(all )?\d+ unchanged", ln))
    assert f"Invariants: {unchanged}." in text
    workloads = by_header[("workload (scans per container)", "old", "new", "reference",
                           "change")]
    assert [r[0] for r in workloads] == [
        w["name"] for w in certificate(mutant)["efficiency"]["workloads"]]
    assert "never gating" in text
    assert lines[0].replace("->", "→") in text


# --- not a bundle ---------------------------------------------------------------------------
def _not_bundles(root: Path, mutant: Path) -> Iterator[tuple[str, Path]]:
    yield "missing", root / "no-such-dir"
    (root / "empty").mkdir()
    yield "empty", root / "empty"
    (root / "a-file").write_text("hello\n")
    yield "a file", root / "a-file"
    for name, content in (("garbled", "{not json"), ("a-list", "[1, 2]"),
                          ("latin1", "\xff\xfe".encode("latin-1").decode("latin-1"))):
        (root / name).mkdir()
        (root / name / "certificate.json").write_text(content, encoding="latin-1")
        yield name, root / name
    (root / "a-trace").mkdir()
    shutil.copy(mutant / "traces" / f"{BROKEN_ID}.json", root / "a-trace" / "certificate.json")
    yield "a trace, not a certificate", root / "a-trace"


def test_a_folder_that_is_not_a_bundle_exits_2_with_one_line(
        mutant: Path, fixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for what, path in _not_bundles(tmp_path, mutant):
        for old, new, role in ((path, fixed, "OLD_BUNDLE"), (fixed, path, "NEW_BUNDLE")):
            md = tmp_path / "never.md"
            assert run(["compare", str(old), str(new), "--markdown", str(md)]) == 2, what
            captured = capsys.readouterr()
            line = one_error_line(captured.err)
            assert role in line and str(path) in line, (what, line)
            assert captured.out == "", what
            assert not md.exists(), what


def test_not_a_bundle_from_the_command_line_program(fixed: Path, tmp_path: Path) -> None:
    proc = cli("compare", tmp_path / "gone", fixed, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "is not a bundle" in one_error_line(proc.stderr)


# --- rules shown on modified copies of a real certificate -------------------------------------
def bundle_of(root: Path, name: str, cert: dict[str, Any]) -> Path:
    """A folder with just the certificate: all ``compare`` reads."""
    path = root / name
    path.mkdir()
    (path / "certificate.json").write_text(json.dumps(cert), encoding="utf-8")
    return path


def run_compare(root: Path, old: dict[str, Any], new: dict[str, Any]) -> tuple[int, str]:
    out = io.StringIO()
    n = len(list(root.iterdir()))
    code = compare(bundle_of(root, f"old{n}", old), bundle_of(root, f"new{n}", new), out=out)
    return code, out.getvalue()


def test_a_workload_costing_more_scans_is_a_regression_and_fewer_is_not(
        fixed: Path, tmp_path: Path) -> None:
    cert = certificate(fixed)
    costlier = copy.deepcopy(cert)
    w = next(w for w in costlier["efficiency"]["workloads"]
             if isinstance(w["scans_per_container"], int | float))
    before = w["scans_per_container"]
    w["scans_per_container"] = before + 0.05
    code, text = run_compare(tmp_path, cert, costlier)
    assert code == 1
    verdict = text.splitlines()[0]
    assert verdict.startswith("REGRESSION: ") and w["name"] in verdict
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(w["name"] + " "))
    assert line.rstrip().endswith("more scans")
    assert not re.search(r"levels? lost|broken", verdict)
    code, text = run_compare(tmp_path, costlier, cert)
    assert code == 0
    assert text.startswith("no regression") and "fewer scans" in text


def test_a_workload_stopped_by_a_violation_does_not_gate_by_itself(
        fixed: Path, tmp_path: Path) -> None:
    cert = certificate(fixed)
    stopped = copy.deepcopy(cert)
    w = stopped["efficiency"]["workloads"][-1]
    w["scans_per_container"] = None
    for old, new, side in ((cert, stopped, "NEW"), (stopped, cert, "OLD")):
        code, text = run_compare(tmp_path, old, new)
        assert code == 0
        assert f"stopped by a violation in {side}" in text


@pytest.fixture(scope="module")
def hot_path_figures() -> dict[str, Any]:
    """Real hot-path figures, measured briefly (their shape is what matters here)."""
    return hot_path(reference_factory(), seconds=0.02)


def test_hot_path_figures_are_shown_and_never_gate(
        fixed: Path, tmp_path: Path, hot_path_figures: dict[str, Any]) -> None:
    fast = copy.deepcopy(certificate(fixed))
    fast["benchmark"] = hot_path_figures
    slow = copy.deepcopy(fast)
    for side in ("adapter", "reference"):
        for key, value in slow["benchmark"][side].items():
            if key.endswith(("_ns", "_ratio")) and isinstance(value, float):
                slow["benchmark"][side][key] = round(value * 10, 2)
    for old, new in ((fast, slow), (slow, fast)):
        code, text = run_compare(tmp_path, old, new)
        assert code == 0, text
        assert text.splitlines()[0] == "no regression"
        assert "never gating" in text
        for key in ("post_create_hit_ns", "pre_create_ns", "post_create_ratio"):
            o, n = old["benchmark"]["adapter"][key], new["benchmark"]["adapter"][key]
            assert re.search(rf"{o:g}( ns|x) -> {n:g}( ns|x)", text), (key, text)
    no_bench = certificate(fixed)
    code, text = run_compare(tmp_path, no_bench, fast)
    assert code == 0
    assert "old: not measured (certify --no-bench)" in text


@pytest.mark.parametrize(("old_status", "new_status", "kind", "regression"), [
    ("pass", "fail", "broken", True),
    ("not-exercised", "fail", "broken", True),
    (None, "fail", "broken", True),
    ("fail", "fail", "still failing", False),
    ("fail", "pass", "fixed", False),
    ("pass", "not-exercised", "no longer exercised", False),
    ("not-exercised", "pass", "newly exercised", False),
    ("pass", None, "recorded only in OLD", False),
    ("pass", "pass", "unchanged", False),
])
def test_every_status_transition(fixed: Path, old_status: str | None, new_status: str | None,
                                 kind: str, regression: bool) -> None:
    base = certificate(fixed)
    inv_id = next(iter(base["invariants"]))
    old, new = copy.deepcopy(base), copy.deepcopy(base)
    for cert, status in ((old, old_status), (new, new_status)):
        if status is None:
            del cert["invariants"][inv_id]
        else:
            cert["invariants"][inv_id]["status"] = status
    c = diff(old, new)
    assert next(i for i in c.invariants if i.id == inv_id).kind == kind
    assert c.regressed is regression
    assert [i.kind for i in c.invariants if i.id != inv_id] == ["unchanged"] * (
        len(base["invariants"]) - 1)


# --- across certificate formats and what they do not record --------------------------------
def test_a_format_1_bundle_compares_with_a_current_one(
        fixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports import FORMAT_VERSION

    v1 = certificate(V1_BUNDLE)
    assert v1["format_version"] == 1
    current = certificate(fixed)
    assert all(current["levels"].values())
    code, lines = compared(V1_BUNDLE, fixed, capsys)
    assert code == 0
    notices = [ln for ln in lines if ln.startswith("notice:")]
    assert f"certificate format 1 -> {FORMAT_VERSION}" in notices[0]
    assert any("level counted as met" in n for n in notices[1:])
    only_new = set(current["invariants"]) - set(v1["invariants"])
    assert only_new  # format 1 predates SAFE-14
    assert set(invariant_lines(lines, "recorded only in NEW")) == only_new
    code, lines = compared(fixed, V1_BUNDLE, capsys)
    assert code == 0
    assert set(invariant_lines(lines, "recorded only in OLD")) == only_new


@pytest.mark.parametrize("key", ["levels", "verdict", "invariants", "suite", "adapter", "run",
                                 "efficiency", "benchmark", "stats", "coverage",
                                 "format_version"])
def test_a_missing_key_is_not_recorded_never_a_crash(fixed: Path, tmp_path: Path,
                                                     key: str) -> None:
    full = certificate(fixed)
    partial = copy.deepcopy(full)
    del partial[key]
    for old, new in ((full, partial), (partial, full)):
        code, text = run_compare(tmp_path, old, new)
        assert code == 0, text
        if key in ("levels", "invariants", "adapter", "run", "format_version"):
            assert "not recorded" in text


def test_a_bare_certificate_compares(fixed: Path, tmp_path: Path) -> None:
    bare = {"format": certificate(fixed)["format"]}
    code, text = run_compare(tmp_path, bare, bare)
    assert code == 0
    assert text.startswith("no regression")
    code, text = run_compare(tmp_path, bare, certificate(fixed))
    assert code == 0
