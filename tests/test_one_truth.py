"""One source of truth: the catalogue's table drives the oracle and the docs, every face
presents the engine's verdict, imports go one way, and errors exit as SPEC §8 says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from test_cli import error_after_progress

from conformance import BaseAdapter, EcpRequest, InternalError, Verdict, run_conformance
from conformance._check import Checker, Tally, probe_verdict
from conformance._cli import run
from conformance._invariants import (
    CALL,
    IDS,
    INVARIANTS,
    LEVELS,
    PRE,
    SCAN,
    SKIP,
    clauses,
    markdown,
)
from conformance._loading import load_adapter
from conformance.plugin import ADAPTER_OPTION, MAX_EXAMPLES_OPTION, REQUIRE_OPTION
from reference import ops as O
from reference.adapter import reference_factory
from reference.contract import PostCreate

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
GALLERY = Path(__file__).parent / "gallery.py"


# --- the table -------------------------------------------------------------------------------
def test_diagnosis_order_is_explicit_in_the_table() -> None:
    """Most specific first: ECP hygiene, context, the key, probes, scratch, then the file's
    own history, and the general rule last (SPEC §6)."""
    assert [i for i, _ in clauses(SKIP)] == [
        "SIG-2", "SIG-1", "SAFE-4", "SAFE-5", "SAFE-8", "SAFE-6", "SAFE-6", "SAFE-10",
        "SAFE-14", "SAFE-2", "SAFE-3", "SAFE-9", "SAFE-2", "SAFE-1", "SAFE-11", "SAFE-10",
        "SAFE-7", "SAFE-9", "SAFE-1"]
    assert [i for i, _ in clauses(SCAN)] == ["EFF-6", "EFF-5", "EFF-4", "EFF-1", "EFF-3",
                                             "EFF-2"]
    assert [i for i, _ in clauses(PRE)] == ["ECP-1", "ECP-2", "ECP-3"]
    ranks = [c.rank for _, c in clauses(SKIP)]
    assert len(set(ranks)) == len(ranks), "two clauses share a rank: the order is ambiguous"


@pytest.mark.parametrize("inv", IDS)
def test_every_entry_says_when_it_is_exercised_and_violated(inv: str) -> None:
    entry = INVARIANTS[inv]
    assert entry.rule and entry.blames and entry.exercised_text
    if entry.event == CALL:
        return  # judged by the harness around every call (SAFE-12, SAFE-13)
    assert entry.clauses, f"{inv} has no violation clause"
    assert all(c.text for c in entry.clauses)
    if inv != "SAFE-14":  # counted by the model as it delivers scan results
        assert entry.exercised is not None


def test_docs_catalogue_is_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "INVARIANTS.md").read_text(encoding="utf-8") == markdown(), (
        "regenerate: wcifs-conformance invariants --markdown > docs/INVARIANTS.md")


def test_invariants_json_carries_the_clauses(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["invariants", "--json"]) == 0
    entries = {e["id"]: e for e in json.loads(capsys.readouterr().out)}
    assert [w["when"] for w in entries["SAFE-3"]["violated"]] == [
        c.text for c in INVARIANTS["SAFE-3"].clauses]


# --- one verdict, every face -----------------------------------------------------------------
GRID = [
    ("reference", 3, 3), ("reference", 3, 40), ("reference", 11, 3), ("reference", 11, 40),
    ("reference:conformant", 3, 40), (f"{GALLERY}:SkipsScratch", 3, 40),
    (f"{GALLERY}:ScansEverything", 11, 40),
]


@pytest.mark.parametrize(("spec", "seed", "budget"), GRID)
def test_cli_plugin_run_conformance_and_junit_agree_on_every_level(
        spec: str, seed: int, budget: int, tmp_path: Path, pytester: pytest.Pytester,
        capsys: pytest.CaptureFixture[str]) -> None:
    every = ",".join(LEVELS)
    result = run_conformance(load_adapter(spec), seed=seed, max_examples=budget, spec=spec)
    levels = result.levels

    out = tmp_path / "bundle"
    code = run(["certify", "--adapter", spec, "--seed", str(seed), "--max-examples",
                str(budget), "--no-bench", "--require", every, "--out", str(out)])
    capsys.readouterr()
    assert code == (0 if all(levels.values()) else 1)
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["levels"] == levels

    junit = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in junit.iter("testcase")
             if c.get("classname") == "wcifs-conformance.levels"}
    assert {lv: cases[lv].find("failure") is None for lv in LEVELS} == levels

    plugin = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rA", "--pyargs", "conformance", ADAPTER_OPTION, spec,
        MAX_EXAMPLES_OPTION, str(budget), "--conformance-seed", str(seed),
        REQUIRE_OPTION, every)
    assert plugin.ret == (0 if all(levels.values()) else 1)
    text = plugin.stdout.str()
    for level, met in levels.items():
        assert f"{'PASSED' if met else 'FAILED'} " in text and (
            f"test_level[{level}]" in text)
        line = next(ln for ln in text.splitlines() if f"test_level[{level}]" in ln
                    and ln.startswith(("PASSED", "FAILED")))
        assert line.startswith("PASSED" if met else "FAILED"), (level, line)


def test_require_raises_the_rendered_counterexample() -> None:
    result = run_conformance(load_adapter(f"{GALLERY}:SkipsScratch"), seed=3, max_examples=40)
    with pytest.raises(AssertionError) as info:
        result.require("conformant")
    text = str(info.value)
    assert "SAFE-2 violated" in text and "Steps:" in text and "Replay: " in text
    assert "conformant not met: SAFE-2 failed" in text
    passing = run_conformance(reference_factory("signature-current"), seed=3, max_examples=40)
    assert passing.require("conformant", "signature-current", "optimized") is passing


def test_require_says_what_was_never_exercised() -> None:
    result = run_conformance(reference_factory("signature-current"), seed=3, max_examples=2)
    with pytest.raises(AssertionError, match=r"not established: .* never exercised"):
        result.require()


def test_plugin_writes_traces(pytester: pytest.Pytester, tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", ADAPTER_OPTION,
        f"{GALLERY}:SkipsScratch", MAX_EXAMPLES_OPTION, "40", "--conformance-seed", "3",
        "--conformance-traces", str(traces))
    assert result.ret == 1
    trace = json.loads((traces / "SAFE-2.json").read_text())
    assert trace["invariant"] == "SAFE-2"
    assert run(["replay", str(traces / "SAFE-2.json"), "--adapter",
                f"{GALLERY}:SkipsScratch"]) == 1


def test_examples_count_generated_examples_only() -> None:
    result = run_conformance(reference_factory("signature-current"), seed=4, max_examples=40)
    assert result.stats["examples"] == 40 and not result.stopped_early
    assert result.profile == "custom" and result.settings["based_on"] == "quick"
    failing = run_conformance(load_adapter(f"{GALLERY}:SkipsScratch"), seed=3,
                              max_examples=400)
    assert failing.stopped_early and failing.stats["examples"] < 400


# --- imports only downward, and cheap ---------------------------------------------------------
#: The layers of docs/ARCHITECTURE.md: a module may load, when imported, only modules of a
#: lower layer (and its own package's).
LAYERS = {
    "reference": 0, "reference.contract": 0, "reference.ops": 1, "reference.model": 2,
    "reference.adapter": 2,
    "conformance": 1, "conformance._invariants": 1, "conformance._profiles": 1,
    "conformance._errors": 1, "conformance._version": 1, "conformance._formats": 1,
    "conformance._faults": 1, "conformance._wire": 1, "conformance._watchdog": 1,
    "conformance._dialogue": 1, "conformance._expect": 1, "conformance._compare": 1,
    "conformance._remote": 2,
    "strategies": 3, "strategies._tables": 3,
    "conformance._loading": 4, "conformance._workloads": 4, "conformance._check": 4,
    "conformance._bench": 4, "conformance._native": 4, "conformance._native_bench": 4,
    "conformance._session": 4, "conformance._worker": 4,
    "conformance._slices": 4, "conformance._parallel": 4, "conformance._merge": 5,
    "conformance._cluster": 4,
    "conformance._engine": 5,
    "reports": 2,
    "conformance._cli": 6, "conformance.plugin": 6, "conformance.test_adapter": 6,
}
#: Modules that must load nothing heavy: the faces and reports stay cheap to import.
LIGHT = ("conformance", "conformance.plugin", "conformance._cli", "conformance.test_adapter",
         "reports", "reference.contract")
HEAVY = ("hypothesis", "strategies", "reference.model", "conformance._engine",
         "conformance._check", "jinja2", "jsonschema", "cryptography", "rich")


def _loaded_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def _layer(name: str) -> int | None:
    while name:
        if name in LAYERS:
            return LAYERS[name]
        name = name.rpartition(".")[0]
    return None


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_go_only_downward(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    own = LAYERS[module]
    package = module.split(".")[0]
    upward = sorted(m for m in loaded if (lv := _layer(m)) is not None and lv > own
                    and not (m.split(".")[0] == package and lv <= own))
    assert not upward, f"importing {module} (layer {own}) loaded {upward}"
    if module in LIGHT:
        heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
        assert not heavy, f"importing {module} loaded {heavy}"


def test_a_run_never_loads_reports_and_the_model_never_loads_the_suite() -> None:
    loaded = _loaded_after(
        "from conformance import run_conformance\n"
        "from reference.adapter import reference_factory\n"
        "run_conformance(reference_factory('signature-current'), max_examples=3, seed=1)")
    assert "reports" not in loaded and "pytest" not in loaded
    loaded = _loaded_after(
        "from reference import ops as O\nfrom reference.model import World\n"
        "from reference.adapter import reference_factory\n"
        "World(O.Setup(), reference_factory()()).run([O.InstallLayer(), O.StartContainer(),"
        " O.OpenFile()])")
    assert not {m for m in loaded if m.split(".")[0] in (
        "conformance", "strategies", "reports", "pytest", "hypothesis")}


# --- exit codes and messages ----------------------------------------------------------------
def test_an_internal_error_exits_4_and_names_its_trace(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    real = Checker.judge
    calls = [0]

    def broken(self: Checker, r: Any) -> None:
        calls[0] += 1
        if calls[0] == 30:
            raise RuntimeError("oracle bug")
        real(self, r)

    monkeypatch.setattr(Checker, "judge", broken)
    code = run(["certify", "--adapter", "reference", "--max-examples", "20", "--seed", "1",
                "--no-bench", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "internal error of the suite: RuntimeError: oracle bug" in err
    assert "please report it with" in error_after_progress(err)
    path = Path(err.split("report it with ")[1].split(",")[0])
    trace = json.loads((tmp_path / path).read_text())
    assert trace["ops"] and "oracle bug" in trace["internal_error"]


def test_direct_run_turns_a_suite_bug_into_internal_error(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(Checker, "judge", lambda self, r: 1 / 0)
    with pytest.raises(InternalError, match="ZeroDivisionError") as info:
        run_conformance(reference_factory("signature-current"), seed=1, max_examples=5)
    assert info.value.exit_code == 4 and info.value.trace is not None


MISSPELT = """
from conformance import BaseAdapter, Verdict

class Misspelt:
    def pre_create(self, create):
        return None

    def post_creat(self, create):
        return Verdict.SCAN
"""


def test_a_missing_required_hook_is_exit_3_at_load_with_the_closest_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "misspelt.py").write_text(MISSPELT)
    spec = f"{tmp_path / 'misspelt.py'}:Misspelt"
    assert run(["certify", "--adapter", spec, "--max-examples", "5", "--no-bench"]) == 3
    err = capsys.readouterr().err
    assert "has no post_create hook" in err and "'post_creat': did you mean 'post_create'" in err
    assert err.count("\n") == 1


class Minimal:
    """Not derived from BaseAdapter; only the required hooks (SPEC §4: the rest optional)."""

    def pre_create(self, create: Any) -> EcpRequest | None:
        return EcpRequest() if create.silo is not None else None

    def post_create(self, create: Any) -> Verdict:
        return Verdict.SCAN


def test_optional_hooks_are_optional_for_any_class() -> None:
    result = run_conformance(Minimal, seed=2, max_examples=100)
    assert result.invariants["SAFE-13"].status == "pass"
    assert result.levels["conformant"] and not result.levels["optimized"]


def test_bench_that_cannot_create_its_folder_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run(["bench", "--adapter", "reference", "--out", str(blocker / "sub")]) == 2
    assert "cannot create the output directory" in capsys.readouterr().err


class _RaisesInProbe(BaseAdapter):
    def post_create(self, create: PostCreate) -> Verdict:
        raise RuntimeError("adapter fault")


def test_probes_tell_adapter_faults_from_suite_faults() -> None:
    setup = O.Setup()
    ops = [O.InstallLayer(), O.StartContainer(), O.OpenFile()]
    Checker(reference_factory(), setup, Tally(), probe=False).run(ops)
    post = PostCreate(1, bytes(16), "\\x", 1, bytes(16), None)
    # The adapter failing on the counterfactual history: the probe shows nothing.
    assert probe_verdict(_RaisesInProbe, setup, ops, 1, post) is None
    # The suite failing inside a probe is not swallowed (it would turn into a diagnosis).
    with pytest.raises(AttributeError):
        probe_verdict(reference_factory(), setup, ops, 1, post,
                      rename=object())  # type: ignore[arg-type]


def test_hypothesis_shrinks_below_the_fragment_floor() -> None:
    """Generation keeps at least half the maximum of fragments, but shrinking can drop them
    all: the example Hypothesis hands back ends soon after the failing step, leaving little
    for the engine's own minimizer."""
    from conformance._engine import _hypothesis_run
    from conformance._profiles import PROFILES
    from conformance._session import InProcess

    spec = f"{GALLERY}:SkipsScratch"
    found, example, _ = _hypothesis_run(InProcess(load_adapter(spec), spec),
                                        PROFILES["quick"], 2000, 1, Tally(),
                                        lambda *a: None)
    assert found is not None and example is not None
    assert len(example[1]) - (found.step + 1) <= 5, example[1]


def test_a_seed_generates_the_same_examples_installed_or_from_a_checkout(tmp_path: Path
                                                                          ) -> None:
    """Hypothesis mixes literals of local (not installed) modules into its draws; the engine
    pins them to the adapter's module, so a checkout (whose suite modules are local) and an
    installed wheel generate the same examples for a seed."""
    import conformance

    code = ("import json; from conformance import run_conformance; "
            "from reference.adapter import reference_factory; "
            "r = run_conformance(reference_factory('signature-current'), seed=2, "
            "max_examples=60, workloads=False); "
            "print(json.dumps([r.stats['steps'], {i: x.exercised for i, x in "
            "r.invariants.items()}]))")
    installed = Path(conformance.__file__).resolve().parent.parent
    runs = []
    for where in {installed, ROOT}:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(where)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300, check=True)
        runs.append(done.stdout)
    assert len(set(runs)) == 1, runs
