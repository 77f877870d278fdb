"""``certificate.html`` as a browser shows it: headless Chromium renders the file offline and
its DOM carries the level badges and every invariant of the catalogue."""

from __future__ import annotations

import dataclasses
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import reports
from conformance import load_adapter, run_conformance
from conformance._invariants import IDS, LEVELS

CHROMIUM = Path("/usr/bin/chromium")
GALLERY = Path(__file__).resolve().with_name("gallery.py")
FAULTY = f"{GALLERY}:SkipsScratch"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="headless Chromium is not installed (/usr/bin/chromium; Debian "
                              "package 'chromium')"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120)


class Elements(HTMLParser):
    """Every element with an ``id``: its attributes and the text inside it."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "rect", "line"})

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        a = {k: v or "" for k, v in attrs}
        ident = a.get("id")
        if ident:
            self.by_id[ident] = a
            self.text[ident] = ""
        self._open.append(ident)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            if ident:
                self.text[ident] += data


def test_certificate_renders_its_badges_and_every_invariant(tmp_path: Path) -> None:
    result = run_conformance(load_adapter(FAULTY), "quick", seed=1, spec=FAULTY, max_examples=1)
    if not result.coverage:  # an engine that records none: all under wcifs, so others are thin
        result = dataclasses.replace(result, coverage={
            i: {"operation": {"open": r.exercised} if r.exercised else {},
                "profile": {"wcifs": r.exercised} if r.exercised else {},
                "scene": {"single": r.exercised} if r.exercised else {}}
            for i, r in result.invariants.items()})
    bundle = reports.write_bundle(result, tmp_path / "bundle")
    page = (bundle.path / "certificate.html").resolve()

    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Elements()
    dom.feed(proc.stdout)

    for level in LEVELS:
        badge = dom.by_id[f"level-{level}"]
        met = bundle.certificate["levels"][level]
        assert "badge" in badge["class"]
        assert badge["data-met"] == ("true" if met else "false")
        assert ("met" if met else "not met") in dom.text[f"level-{level}"]
        assert level in dom.text[f"level-{level}"]
    assert "required" in dom.text["level-conformant"]
    assert dom.by_id["verdict"]["data-met"] == "false"
    assert "Required levels not met" in dom.text["verdict"]

    for inv_id in IDS:
        row = dom.by_id[f"inv-{inv_id}"]
        status = bundle.certificate["invariants"][inv_id]["status"]
        assert row["data-status"] == status
        assert inv_id in dom.text[f"inv-{inv_id}"]
    assert "SAFE-2.json" in dom.text["inv-SAFE-2"]
    assert "Steps:" in dom.text["failure-SAFE-2"]
    for w in bundle.certificate["efficiency"]["workloads"]:
        assert w["name"] in dom.text[f"workload-{w['name']}"]
    assert proc.stdout.count("<svg") >= 2

    assert "coverage-table" in dom.by_id
    coverage = bundle.certificate["coverage"]
    for inv_id in IDS:
        n = bundle.certificate["invariants"][inv_id]["exercised"]
        text = dom.text[f"cov-{inv_id}"]
        assert inv_id in text and f"{n:,}" in text
        if n:
            top = next(iter(coverage[inv_id]["operation"]))
            assert top in text
            profiles = coverage[inv_id]["profile"]
            thin = [p for p in ("wcifs", "no-registered-flag", "hostile")
                    if profiles.get(p, 0) < 10]
            assert dom.by_id[f"cov-{inv_id}"]["data-thin"] == " ".join(thin)
        else:
            assert "not exercised" in text
