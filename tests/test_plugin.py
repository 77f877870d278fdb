"""The pytest plugin, run as a vendor would: ``pytest --pyargs conformance ...``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.plugin import ADAPTER_OPTION, MAX_EXAMPLES_OPTION, REQUIRE_OPTION

pytest_plugins = ["pytester"]
GALLERY = Path(__file__).parent / "gallery.py"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfs", "--pyargs",
                                         "conformance",
                                         MAX_EXAMPLES_OPTION, "80", "--conformance-seed", "5",
                                         *args)


def test_reference_passes_every_invariant(pytester: pytest.Pytester) -> None:
    result = run(pytester, ADAPTER_OPTION, "reference",
                 REQUIRE_OPTION, "conformant,signature-current,optimized")
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 20
    result.stdout.fnmatch_lines(["*wcifs conformance*", "*conformant: met*"])


def test_faulty_adapter_fails_with_its_id_and_replay_line(pytester: pytest.Pytester) -> None:
    result = run(pytester, ADAPTER_OPTION, f"{GALLERY}:SkipsScratch")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_invariant?SAFE-2? *", "*SAFE-2 violated*",
                                 "*Replay: wcifs-conformance replay *SkipsScratch*"])
    result.stdout.fnmatch_lines(["*FAILED*test_level?conformant?*"])


def test_levels_not_required_do_not_fail_the_run(pytester: pytest.Pytester) -> None:
    spec = (ADAPTER_OPTION, "reference:conformant")
    relaxed = run(pytester, *spec, REQUIRE_OPTION, "conformant")
    assert relaxed.ret == 0
    assert relaxed.parseoutcomes().get("failed", 0) == 0
    relaxed.stdout.fnmatch_lines(["*SIG-1 failed, but level signature-current is not required*"])
    strict = run(pytester, *spec, REQUIRE_OPTION, "conformant,signature-current")
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["*SIG-1 violated*"])


def test_without_an_adapter_everything_skips(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    assert result.ret == 0
    assert result.parseoutcomes().get("skipped", 0) >= 20


def test_unknown_adapter_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, ADAPTER_OPTION, "no_such_pkg.mod.Cls")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*did you mean no_such_pkg.mod:Cls?*"])


def test_unknown_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, ADAPTER_OPTION, "reference", REQUIRE_OPTION, "gold")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown level(s) gold*"])


def test_the_plugin_isolates_by_default_and_runs_in_process_on_request(
        pytester: pytest.Pytester) -> None:
    """The tamperer patches the judge of whichever process loads it: only in-process does
    that process run the judging, and the run then passes."""
    spec = f"{Path(__file__).parent / 'faults' / 'tamper.py'}:Tamperer"
    isolated = run(pytester, ADAPTER_OPTION, spec, "--conformance-call-timeout", "2")
    assert isolated.ret == 1
    isolated.stdout.fnmatch_lines(["*FAILED*test_level?conformant?*"])
    in_process = run(pytester, ADAPTER_OPTION, spec, "--conformance-in-process")
    assert in_process.ret == 0


def test_a_bad_call_timeout_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, ADAPTER_OPTION, "reference", "--conformance-call-timeout", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-call-timeout: give a number of seconds*"])
