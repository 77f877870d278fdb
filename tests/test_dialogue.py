"""A trace's dialogue (trace format 3): every call the adapter received, as handed and
answered, stored in the trace, printed by ``replay --calls`` and rendered in the HTML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gallery
import jsonschema
import pytest

from conformance import TRACE_FORMAT_VERSION, BaseAdapter, replay, run_conformance
from conformance._wire import ARGUMENT, encode_answer, encode_argument
from reference.adapter import ReferenceAdapter

ROOT = Path(__file__).parent.parent
V2_TRACE = ROOT / "tests" / "data" / "safe3-stale-marker-v2.json"
SCHEMA = json.loads((ROOT / "reports" / "trace.schema.json").read_text())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env_path = f"{ROOT}{':'}{ROOT / 'tests'}"
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": env_path})


@pytest.fixture(scope="module")
def stale_marker_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    done = _cli("certify", "--adapter", "tests/gallery.py:StaleLayerMarker",
                "--max-examples", "300", "--seed", "1", "--no-bench", "--out", str(out))
    assert done.returncode == 1, done.stderr
    return out


def test_a_trace_stores_the_dialogue_with_the_failing_call_marked(
        stale_marker_bundle: Path) -> None:
    trace = json.loads((stale_marker_bundle / "traces" / "SAFE-3.json").read_text())
    assert trace["format_version"] == TRACE_FORMAT_VERSION == 3
    jsonschema.validate(trace, SCHEMA)
    calls = trace["calls"]
    failing = calls[trace["failing_call"]]
    # The decision the violation is about: a SKIP of the open at the last step.
    assert failing["call"] == "post_create" and failing["return"] == "SKIP"
    assert failing["step"] == len(trace["ops"])
    assert failing["create"]["path"].endswith(".dll")
    # The write that made the marker stale reached the adapter, and it is in the dialogue.
    changes = [c for c in calls if c["call"] == "file_changed" and c["step"] < failing["step"]]
    assert any(c["change"]["path"] == failing["create"]["path"] for c in changes)
    assert calls[0]["call"] == "start" and calls[0]["step"] == 0


def test_the_html_counterexample_shows_the_same_dialogue(stale_marker_bundle: Path) -> None:
    page = (stale_marker_bundle / "certificate.html").read_text()
    html = page.split('id="failure-SAFE-3"', 1)[1].split("</article>", 1)[0]
    trace = json.loads((stale_marker_bundle / "traces" / "SAFE-3.json").read_text())
    assert f"the dialogue: {len(trace['calls'])} calls to the adapter" in html
    assert html.count('<tr class="failing">') == 1
    failing = trace["calls"][trace["failing_call"]]
    assert failing["create"]["file_id"] in html


def test_replay_calls_prints_every_call_under_its_step() -> None:
    done = _cli("replay", str(V2_TRACE), "--adapter", "tests/gallery.py:StaleLayerMarker",
                "--calls", "--in-process")
    assert done.returncode == 1, done.stderr
    out = done.stdout
    lines = out.splitlines()
    marked = [ln for ln in lines if "<-- the violation" in ln]
    assert len(marked) == 1 and marked[0].strip().startswith("post_create(")
    assert marked[0].split(" -> ")[-1].startswith("SKIP")
    trace = json.loads(V2_TRACE.read_text())
    for n, step in enumerate(trace["steps"], 1):
        assert any(ln.strip().startswith(f"{n}. {step}") for ln in lines), step
    assert "file_changed(WRITE of \\Windows\\System32\\f0.dll" in out
    assert "Result: SAFE-3 recurs." in out
    # Without --calls: the steps, the failing call alone, and how to see the rest.
    plain = _cli("replay", str(V2_TRACE), "--adapter", "tests/gallery.py:StaleLayerMarker",
                 "--in-process")
    assert plain.returncode == 1
    assert "--calls shows each" in plain.stdout
    assert "the call it was found in (step 5):" in plain.stdout


class _Recording(ReferenceAdapter):
    """The reference adapter, writing down every call as it receives it."""

    log: list[tuple[str, Any, Any]]

    def __init__(self) -> None:
        super().__init__()
        self.log = []
        _Recording.last = self

    last: _Recording | None = None


def _recorded(name: str) -> Any:
    hook = getattr(ReferenceAdapter, name)

    def call(self: _Recording, *args: Any) -> Any:
        answer = hook(self, *args)
        arg = encode_argument(name, args[0]) if name in ARGUMENT else None
        self.log.append((name, arg, encode_answer(name, answer)))
        return answer

    return call


for _hook in ("pre_create", "post_create", "scan_completed", "file_changed",
              "signature_updated", "proactive_scan_completed", "proactive_scan_aborted"):
    setattr(_Recording, _hook, _recorded(_hook))


def test_the_dialogue_is_what_the_adapter_received(stale_marker_bundle: Path) -> None:
    """Replayed to an adapter that writes down its own calls, the dialogue is that log,
    call for call (the suite records what it hands over, not what it meant to)."""
    trace = json.loads((stale_marker_bundle / "traces" / "SAFE-3.json").read_text())
    outcome = replay(_Recording, trace, isolate=False)
    mine = _Recording.last
    assert mine is not None
    dialogue = [(c["call"], c.get(ARGUMENT.get(c["call"], ""), None), c.get("return"))
                for c in outcome.calls if c["call"] not in ("start", "stop")]
    assert dialogue == mine.log
    assert len(dialogue) > len(trace["ops"])


def test_a_probe_based_diagnosis_shows_the_probe_it_ran() -> None:
    """SAFE-6 for a cache that ignores the VolumeGuid: the trace shows the re-asked open
    with the changed VolumeGuid, and the answer that convicted it."""
    result = run_conformance(gallery.FileIdOnlyKey, max_examples=400, seed=1, isolate=False,
                             workloads=False)
    v = result.invariants["SAFE-6"].violation
    assert v is not None and v.failing_call is not None
    trace = v.trace()
    jsonschema.validate(trace, SCHEMA)
    probes = trace["calls"][trace["failing_call"]]["probes"]
    guid = [p for p in probes if p["probe"].startswith("the ECP's VolumeGuid changed to")]
    assert guid and guid[-1]["return"] == "SKIP"
    changed = guid[-1]["probe"].rsplit(" ", 1)[-1]
    assert guid[-1]["post_create"]["ecp"]["raw"].endswith(changed)
    assert f"VolumeGuid changed to {changed}: still SKIP" in v.summary
    assert "re-asked with the ECP's VolumeGuid changed" in v.render()


def test_older_traces_replay_and_stay_valid() -> None:
    trace = json.loads(V2_TRACE.read_text())
    assert trace["format_version"] == 2 and "calls" not in trace
    jsonschema.validate(trace, SCHEMA)
    outcome = replay(gallery.StaleLayerMarker, trace, isolate=False)
    assert outcome.recurs and outcome.calls
    assert replay(ReferenceAdapter, trace, isolate=False).passed
    # A format 2 trace cannot carry what format 3 added.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**trace, "calls": []}, SCHEMA)


def test_a_fault_is_recorded_in_the_call_that_failed() -> None:
    class Raises(BaseAdapter):
        def pre_create(self, create: Any) -> Any:
            return None

        def post_create(self, create: Any) -> Any:
            raise RuntimeError("lookup failed")

    result = run_conformance(Raises, max_examples=50, seed=1, isolate=False, workloads=False)
    v = result.invariants["SAFE-13"].violation
    assert v is not None and v.failing_call is not None
    failing = v.calls[v.failing_call]
    assert failing["call"] == "post_create"
    assert "RuntimeError: lookup failed" in failing["error"] and "return" not in failing
