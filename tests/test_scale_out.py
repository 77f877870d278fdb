"""Runs that scale out (SPEC §8): ``-j N`` worker processes, ``--shard I/N`` partial
bundles, and ``merge``, which must claim exactly what ``-j N`` claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import replay, run_conformance
from conformance._slices import derived_seed, plan

ROOT = Path(__file__).parent.parent
#: Passes conformant, with efficiency findings recorded (so traces travel through merge).
EFFICIENCY_MUTANT = "tests/gallery.py:IgnoresInstallScans"
BUDGET = ("--max-examples", "240", "--seed", "7", "--no-bench", "-q")
#: What differs between two runs of one result: when and how long, and on what machine.
VOLATILE = {"run": ("started", "finished", "seconds", "platform", "merged"),
            "stats": ("seconds", "steps_per_second")}


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def certificate(bundle: Path) -> dict[str, Any]:
    cert: dict[str, Any] = json.loads((bundle / "certificate.json").read_text())
    for part, keys in VOLATILE.items():
        for key in keys:
            cert[part].pop(key, None)
    cert.pop("benchmark")
    return cert


def traces(bundle: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((bundle / "traces").glob("*.json"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The efficiency mutant as -j 4, as four shards (given to merge out of order), merged."""
    tmp = tmp_path_factory.mktemp("scale")
    made = {"j4": tmp / "j4"}
    done = cli("certify", "--adapter", EFFICIENCY_MUTANT, *BUDGET, "-j", "4",
               "--out", made["j4"])
    assert done.returncode == 0, done.stderr
    for i in (1, 2, 3, 4):
        made[f"s{i}"] = tmp / f"s{i}"
        done = cli("certify", "--adapter", EFFICIENCY_MUTANT, *BUDGET, "--shard", f"{i}/4",
                   "--out", made[f"s{i}"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Shard {i} of 4 (partial"), done.stdout
    made["merged"] = tmp / "merged"
    done = cli("merge", made["s3"], made["s1"], made["s4"], made["s2"], "--out",
               made["merged"])
    assert done.returncode == 0, done.stdout + done.stderr
    return made


def test_the_slices_cover_the_budget_once_with_derived_seeds() -> None:
    slices = plan(7, 10_002, 4)
    assert [s.examples for s in slices] == [2501, 2501, 2500, 2500]
    assert len({s.seed for s in slices}) == 4 and all(s.seed != 7 for s in slices)
    assert plan(7, 100, 1)[0].seed == 7 == derived_seed(7, 1, 1)


def test_merged_shards_claim_exactly_what_j4_claims(runs: dict[str, Path]) -> None:
    j4, merged = certificate(runs["j4"]), certificate(runs["merged"])
    assert j4 == merged
    assert j4["run"]["workers"] == 4
    assert [i for i, r in j4["invariants"].items() if r["status"] == "fail"]
    assert traces(runs["j4"]) == traces(runs["merged"]) != {}
    full = json.loads((runs["merged"] / "certificate.json").read_text())
    assert full["run"]["merged"]["shards"] == 4


def test_a_shard_is_partial_and_verify_says_so(runs: dict[str, Path]) -> None:
    cert = json.loads((runs["s2"] / "certificate.json").read_text())
    assert cert["run"]["shard"] == {"index": 2, "of": 4}
    assert cert["stats"]["examples"] == 60
    done = cli("verify", runs["s2"])
    assert done.returncode == 0, done.stdout
    assert "PARTIAL: shard 2 of 4" in done.stdout
    assert "PARTIAL: shard 2 of 4 of a run" in (runs["s2"] / "certificate.html").read_text()
    merged = cli("verify", runs["merged"])
    assert merged.returncode == 0 and "PARTIAL" not in merged.stdout
    assert "merged from 4 shards" in merged.stdout


@pytest.mark.parametrize(("shards", "said"), [
    (("s1", "s2", "s4"), "shard 3 of 4 missing"),
    (("s1", "s2", "s2", "s3", "s4"), "shard 2 of 4 is given twice"),
    (("s1", "s2", "s3", "j4"), "is not a shard's bundle"),
])
def test_merge_refuses_a_missing_or_repeated_shard(runs: dict[str, Path], tmp_path: Path,
                                                   shards: tuple[str, ...], said: str) -> None:
    done = cli("merge", *(runs[s] for s in shards), "--out", tmp_path / "m")
    assert done.returncode == 2, done.stdout
    assert said in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_a_changed_byte_in_a_shard_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "s3"
    shutil.copytree(runs["s3"], copy)
    sliced = copy / "slice.json"
    text = sliced.read_text()
    sliced.write_text(text.replace('"generated": 60', '"generated": 61', 1))
    assert sliced.read_text() != text
    assert cli("verify", copy).returncode == 1
    done = cli("merge", runs["s1"], runs["s2"], copy, runs["s4"], "--out", tmp_path / "m")
    assert done.returncode == 2 and "hashes match" in done.stderr


def test_shards_of_different_runs_do_not_merge(runs: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    done = cli("certify", "--adapter", EFFICIENCY_MUTANT, "--max-examples", "240", "--seed",
               "8", "--no-bench", "-q", "--shard", "4/4", "--out", other)
    assert done.returncode == 0, done.stderr
    done = cli("merge", runs["s1"], runs["s2"], runs["s3"], other, "--out", tmp_path / "m")
    assert done.returncode == 2 and "their seed differs" in done.stderr


def _stable(result: Any) -> tuple[Any, ...]:
    return ({i: (r.status, r.exercised) for i, r in result.invariants.items()},
            result.coverage, [v.trace() for v in result.violations],
            {k: v for k, v in result.stats.items() if k not in ("seconds", "steps_per_second")})


def test_j2_twice_with_one_seed_gives_one_result() -> None:
    first, second = (run_conformance("reference", max_examples=160, seed=11, isolate=False,
                                     workers=2) for _ in range(2))
    assert _stable(first) == _stable(second)
    assert first.stats["examples"] == 160 and first.settings["workers"] == 2
    # One worker is the single run of old: the same seed, the same examples.
    single = run_conformance("reference", max_examples=160, seed=11, isolate=False)
    alone = run_conformance("reference", max_examples=160, seed=11, isolate=False, workers=1)
    assert _stable(single) == _stable(alone)


def test_a_violation_in_one_worker_stops_them_all_and_replays() -> None:
    result = run_conformance("tests/gallery.py:StaleLayerMarker", max_examples=2000, seed=3,
                             workers=2, workloads=False)
    assert "SAFE-3" in result.failed
    assert result.stopped_early and result.stats["examples"] < 2000
    trace = result.invariants["SAFE-3"].violation
    assert trace is not None
    assert replay("tests/gallery.py:StaleLayerMarker", trace.trace()).recurs


def test_a_factory_that_does_not_pickle_is_a_clear_error() -> None:
    from conformance import BaseAdapter, ConformanceError, EcpRequest, Verdict

    class Local(BaseAdapter):
        def pre_create(self, create: Any) -> EcpRequest | None:
            return EcpRequest() if create.silo is not None else None

        def post_create(self, create: Any) -> Verdict:
            return Verdict.SCAN

    with pytest.raises(ConformanceError, match="-j needs an adapter another process can"):
        run_conformance(Local, max_examples=10, seed=1, workers=2)


def test_shard_and_jobs_do_not_mix(tmp_path: Path) -> None:
    done = cli("certify", "--adapter", "reference", "--shard", "1/2", "-j", "2", "--out",
               tmp_path / "b")
    assert done.returncode == 2 and "give no -j" in done.stderr
    done = cli("certify", "--adapter", "reference", "--shard", "3/2", "--out", tmp_path / "b")
    assert done.returncode == 2 and "I must be from 1 to N" in done.stderr


def test_shards_of_an_adapter_that_fails_at_start_still_merge(tmp_path: Path) -> None:
    spec = "tests/gallery.py:ReadsLayerRoots"  # SAFE-12 in start(), before any example
    for i in (1, 2):
        done = cli("certify", "--adapter", spec, "--max-examples", "40", "--seed", "3",
                   "--no-bench", "-q", "--shard", f"{i}/2", "--out", tmp_path / f"s{i}")
        assert done.returncode == 1, done.stderr
    done = cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    assert done.returncode == 1, done.stderr
    assert certificate(tmp_path / "m")["invariants"]["SAFE-12"]["status"] == "fail"
    assert cli("verify", tmp_path / "m").returncode == 0


def test_a_shard_gates_on_new_failures_only_and_merge_on_the_whole_file(
        tmp_path: Path) -> None:
    """A slice can show a new failure, not that a known one is gone: with --expect, a shard
    fails only on a failure the file does not list; merge judges the file as a whole."""
    spec = "tests/gallery.py:StaleLayerMarker"
    known = tmp_path / "known.toml"
    listed = ["SAFE-3", "SAFE-5", "SAFE-9", "SAFE-12", "EFF-2", "EFF-3", "EFF-4"]
    known.write_text("".join(f'[{i}]\nreason = "known"\n' for i in listed))
    for i in (1, 2):
        done = cli("certify", "--adapter", spec, "--max-examples", "60", "--seed", "3",
                   "--no-bench", "-q", "--expect", known, "--shard", f"{i}/2", "--out",
                   tmp_path / f"s{i}")
        new = certificate(tmp_path / f"s{i}")["run"]["expectations"]["new_failures"]
        assert done.returncode == (1 if new else 0), done.stdout + done.stderr
    done = cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    expect = certificate(tmp_path / "m")["run"]["expectations"]
    assert "SAFE-12" in expect["unexpectedly_passing"]  # it never fails for this adapter
    assert done.returncode == 1
