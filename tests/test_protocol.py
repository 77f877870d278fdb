"""The adapter process protocol (docs/PROTOCOL.md): the schema, the page that explains it,
and the sample exec adapter and its faulty variants driven over a pipe by a small driver
written here (not the suite's client, so the two are checked against each other)."""

from __future__ import annotations

import functools
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "PROTOCOL.md"
EXEC = Path(__file__).resolve().parent / "exec"


def _shipped(*parts: str) -> Path:
    """A file of the installed package: the schema and the sample ship with it (SPEC §11)."""
    path = Path(str(resources.files("conformance").joinpath(*parts)))
    if not path.is_file():
        raise FileNotFoundError(f"conformance/{'/'.join(parts)} is not in the installed "
                                "package: list it in [tool.setuptools.package-data]")
    return path


SCHEMA = json.loads(_shipped("protocol.schema.json").read_text(encoding="utf-8"))
SAMPLE = _shipped("samples", "exec_adapter.py")

REQUESTS = ("hello", "new", "drop", "start", "pre_create", "post_create", "scan_completed",
            "file_changed", "signature_updated", "proactive_scan_completed",
            "proactive_scan_aborted", "stop")
#: Each call's answer entry; the others answer ``return_null``.
RETURNS = {"hello": "return_hello", "pre_create": "return_pre_create",
           "post_create": "return_post_create", "signature_updated": "return_signature_updated"}


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """Validates against ``$defs/name`` of the schema file."""
    return jsonschema.Draft202012Validator(
        {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"})


def check(message: Any, name: str) -> None:
    errors = [e.message for e in validator(name).iter_errors(message)]
    assert not errors, f"{json.dumps(message)} is not a valid {name}: {errors}"


# --- the schema and the page -----------------------------------------------------------------
def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    defs = SCHEMA["$defs"]
    refs = set(re.findall(r'"#/\$defs/(\w+)"', json.dumps(SCHEMA)))
    assert refs <= set(defs), f"dangling $refs: {sorted(refs - set(defs))}"
    wanted = {*REQUESTS, "batch", "return_null", *RETURNS.values(), "error",
              "service_read_registry", "service_signature_version", "service_answer",
              "hex_id", "ecp_raw", "PreCreate", "PostCreate", "ScanResult", "FileChange",
              "request", "adapter_line", "suite_line"}
    assert wanted <= set(defs), f"missing $defs: {sorted(wanted - set(defs))}"


#: A marker line, then a fenced block: ``<!-- schema: NAME -->``, ``<!-- example: NAME ... -->``
#: (each line valid against one of the NAMEs) or ``<!-- transcript -->``.
_BLOCK = re.compile(r"^<!-- (schema|example|transcript)(?:: ([\w ]+))? -->\n```\w*\n(.*?)\n```$",
                    re.M | re.S)


def doc_blocks(kind: str) -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    assert text.count("<!-- ") == len(_BLOCK.findall(text)), "a marker not followed by a block"
    return [(names or "", body) for k, names, body in _BLOCK.findall(text) if k == kind]


def test_doc_shows_each_schema_entry_once_and_equal_to_the_file() -> None:
    shown = doc_blocks("schema")
    names = [name for name, _ in shown]
    assert sorted(names) == sorted(SCHEMA["$defs"]), "each $defs entry, once"
    for name, body in shown:
        assert json.loads(body) == SCHEMA["$defs"][name], (
            f"docs/PROTOCOL.md shows $defs/{name} differently; the file says:\n"
            + json.dumps(SCHEMA["$defs"][name], indent=2))


def test_every_example_line_in_the_doc_validates() -> None:
    named: set[str] = set()
    for names, body in doc_blocks("example"):
        candidates = names.split()
        named.update(candidates)
        for line in body.splitlines():
            message = json.loads(line)
            assert any(validator(n).is_valid(message) for n in candidates), (
                f"{line} is none of {candidates}")
            side = "suite_line" if validator("suite_line").is_valid(message) else "adapter_line"
            check(message, side)
    assert {*REQUESTS, "batch", "return_null", *RETURNS.values(), "error",
            "service_read_registry", "service_signature_version", "service_answer"} <= named


def transcript() -> list[tuple[str, Any]]:
    (_, body), = doc_blocks("transcript")
    lines = []
    for line in body.splitlines():
        arrow, _, text = line.partition(" ")
        assert arrow in ("->", "<-"), line
        lines.append((arrow, json.loads(text)))
    return lines


def test_the_doc_transcript_is_what_the_sample_says() -> None:
    lines = transcript()
    with Driver([sys.executable, str(SAMPLE)]) as d:
        for arrow, message in lines:
            if arrow == "->":
                d.send(message)
            else:
                assert d.read() == message
        assert d.close() == 0


def test_doc_states_the_clients_timeouts() -> None:
    from conformance._remote import EXIT_GRACE, HELLO_TIMEOUT, MAX_LINE
    from conformance._watchdog import DEFAULT_CALL_TIMEOUT

    text = " ".join(DOC.read_text(encoding="utf-8").split())
    assert f"{DEFAULT_CALL_TIMEOUT:g} s by default" in text
    assert f"hello gets at least {HELLO_TIMEOUT:g} s" in text
    assert f"grace period ({EXIT_GRACE:g} s)" in text
    assert MAX_LINE == 1 << 20 and "longer than 1 MiB" in text


@pytest.mark.parametrize("message, name", [
    ({"call": "post_create", "adapter": 1, "create": {"create_id": 1, "volume_guid": "AB" * 16,
      "path": "p", "silo": None, "file_id": "00" * 16, "ecp": None}}, "request"),
    ({"call": "pre_create", "adapter": 0, "create": {"create_id": 1, "volume_guid": "00" * 16,
      "path": "p", "silo": 1}}, "request"),
    ({"batch": [{"call": "hello", "protocol": 1}]}, "request"),
    ({"batch": []}, "request"),
    ({"call": "stop"}, "request"),
    ({"return": None, "error": "both"}, "adapter_line"),
    ({"return": "skip"}, "return_post_create"),
    ({"return": {"size": 70000}}, "return_pre_create"),
    ({"service": "read_registry"}, "adapter_line"),
    ({"value": 1.5}, "service_answer"),
    ("00" * 15 + "0", "ecp_raw"),
])
def test_schema_rejects(message: Any, name: str) -> None:
    assert not validator(name).is_valid(message)


# --- a driver: the suite's side of the pipe, by hand ------------------------------------------
class Driver:
    """Writes requests to an adapter process and reads its lines, validating every line
    in either direction; a process that stops answering is killed after a few seconds."""

    def __init__(self, argv: list[str], signature_version: int = 7) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.watchdog = threading.Timer(20, self.proc.kill)
        self.watchdog.start()
        self.services = {"signature_version": signature_version}
        #: Service requests seen, in order.
        self.asked: list[dict[str, Any]] = []

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def send(self, message: Any, *, valid: bool = True) -> None:
        if valid:
            check(message, "suite_line")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.proc.stdin.flush()

    def read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.endswith(b"\n"), f"no answer; stderr: {self.stderr_text()}"
        message = json.loads(line)
        check(message, "adapter_line")
        return message

    def answer(self, call: str) -> dict[str, Any]:
        """Read the answer to ``call``, serving its service requests on the way."""
        while True:
            message = self.read()
            if "service" not in message:
                break
            self.asked.append(message)
            self.send({"value": self.services.get(message["service"])})
        check(message, "error" if "error" in message else RETURNS.get(call, "return_null"))
        return message

    def call(self, request: dict[str, Any]) -> Any:
        """Send one request; its ``return`` value (an ``error`` fails the test)."""
        self.send(request)
        answer = self.answer(request["call"])
        assert "return" in answer, answer
        return answer["return"]

    def batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.send({"batch": requests})
        return [self.answer(r["call"]) for r in requests]

    def close(self) -> int:
        """Close stdin, as the suite does at the end; the exit status."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.stdout.read() == b"", "wrote after its stdin closed"
        return self.proc.wait(10)

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]


# --- the sample, spoken to ---------------------------------------------------------------
HOST_VOLUME = uuid.UUID("b7e0c9a2-5d34-4f6e-8a21-6c9f0d3e2b48").bytes_le
CONTAINER_VOLUME = uuid.UUID("3f8d2c61-7a4e-4b1d-9c55-0e6a2b7d4f10").bytes_le
BACKING_ID = (0x0123_4567_89AB_CDEF).to_bytes(16, "little")
PLACEHOLDER_ID = (0x1F2A).to_bytes(16, "little")
LAYER = 0x1
PATH = "\\Windows\\System32\\kernel32.dll"


def ecp(file_id: bytes = BACKING_ID, flags: int = LAYER) -> dict[str, Any]:
    """An acknowledged WCIFS_REDIRECTION_ECP_CONTEXT naming a backing file."""
    return {"raw": struct.pack("<HH16s16s", 36, flags, file_id, HOST_VOLUME).hex(),
            "acknowledged": True}


def pre(create_id: int, n: int = 1, silo: int | None = 3) -> dict[str, Any]:
    return {"call": "pre_create", "adapter": n,
            "create": {"create_id": create_id, "volume_guid": CONTAINER_VOLUME.hex(),
                       "path": PATH, "silo": silo}}


def post(create_id: int, n: int = 1, backing: bytes = BACKING_ID) -> dict[str, Any]:
    return {"call": "post_create", "adapter": n,
            "create": {"create_id": create_id, "volume_guid": CONTAINER_VOLUME.hex(),
                       "path": PATH, "silo": 3, "file_id": PLACEHOLDER_ID.hex(),
                       "ecp": ecp(backing)}}


def clean(create_id: int, n: int = 1, version: int = 7) -> dict[str, Any]:
    return {"call": "scan_completed", "adapter": n,
            "result": {"create_id": create_id, "volume_guid": CONTAINER_VOLUME.hex(),
                       "file_id": PLACEHOLDER_ID.hex(), "signature_version": version,
                       "outcome": "CLEAN", "origin": "ON_ACCESS"}}


def written(n: int = 1) -> dict[str, Any]:
    """A host-side write to the backing file."""
    return {"call": "file_changed", "adapter": n,
            "change": {"volume_guid": HOST_VOLUME.hex(), "file_id": BACKING_ID.hex(),
                       "path": "\\ProgramData\\layers\\L1\\Files" + PATH, "kind": "WRITE",
                       "silo": None}}


def started(d: Driver, *adapters: int) -> None:
    hello = d.call({"call": "hello", "protocol": 1})
    assert hello["protocol"] == 1 and hello["batch"] is True
    for n in adapters:
        assert d.call({"call": "new", "adapter": n}) is None
        assert d.call({"call": "start", "adapter": n}) is None


def test_sample_scans_a_layer_file_once_then_skips_it() -> None:
    with Driver([sys.executable, str(SAMPLE)]) as d:
        started(d, 1)
        assert d.asked == [{"service": "signature_version"}]  # asked during start
        assert d.call(pre(1)) == {"size": 36}
        assert d.call(pre(2, silo=None)) is None
        assert d.call(post(1)) == "SCAN"
        assert d.call(clean(1)) is None
        assert d.call(post(3)) == "SKIP"
        assert d.call({"call": "stop", "adapter": 1}) is None
        assert d.close() == 0


def test_a_batch_gets_one_answer_per_request_and_adapters_keep_apart() -> None:
    with Driver([sys.executable, str(SAMPLE)]) as d:
        started(d)
        answers = d.batch([{"call": "new", "adapter": 1}, {"call": "new", "adapter": 2},
                           {"call": "start", "adapter": 1}, {"call": "start", "adapter": 2},
                           post(1, 1), clean(1, 1), post(2, 1), post(3, 2),
                           {"call": "signature_updated", "adapter": 1, "version": 8},
                           post(4, 1), {"call": "drop", "adapter": 2}])
        assert [a.get("return") for a in answers] == [
            None, None, None, None, "SCAN", None, "SKIP",
            "SCAN",  # adapter 2 learned nothing from adapter 1's scan
            True,
            "SCAN",  # a clean scan under version 7 no longer counts under 8
            None]
        assert len(d.asked) == 2
        assert "error" in d.batch([post(5, 2)])[0]  # dropped
        assert d.close() == 0


def test_unknown_calls_adapters_and_keys() -> None:
    with Driver([sys.executable, str(SAMPLE)]) as d:
        started(d, 1)
        d.send({"call": "rename", "adapter": 1}, valid=False)
        assert "unknown call" in d.answer("rename")["error"]
        d.send(post(1, n=9))
        assert "no adapter 9" in d.answer("post_create")["error"]
        # Unknown keys are ignored, at any depth.
        request = post(2)
        request["priority"] = "high"
        request["create"]["ecp"]["note"] = 1
        assert d.call(request) == "SCAN"
        assert d.close() == 0


def test_hello_answers_with_the_adapters_own_version() -> None:
    with Driver([sys.executable, str(SAMPLE)]) as d:
        d.send({"call": "hello", "protocol": 2}, valid=False)
        assert d.answer("hello")["return"]["protocol"] == 1
        assert d.close() == 0


# --- the faulty variants: each differs from the sample where its defect says --------------
@pytest.mark.parametrize("variant, events, then, sample_says, variant_says", [
    # Written on the host after its clean scan: the entry must go.
    ("stale_marker.py", [written()], post(3), "SCAN", "SKIP"),
    # Another file whose FileId shares its low 64 bits.
    ("truncated_key.py", [], post(3, backing=BACKING_ID[:8] + b"\x01" + bytes(7)),
     "SCAN", "SKIP"),
])
def test_faulty_variant(variant: str, events: list[dict[str, Any]], then: dict[str, Any],
                        sample_says: str, variant_says: str) -> None:
    for argv, expected in (([sys.executable, str(SAMPLE)], sample_says),
                           ([sys.executable, str(EXEC / variant)], variant_says)):
        with Driver(argv) as d:
            started(d, 1)
            assert d.call(post(1)) == "SCAN"
            assert d.call(clean(1)) is None
            for event in events:
                assert d.call(event) is None
            assert d.call(then) == expected, argv[-1]
            assert d.close() == 0


def test_the_exec_sample_certifies_at_every_level_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "certify", "--adapter",
         f"exec:{sys.executable} {SAMPLE}", "--require",
         "conformant,signature-current,optimized", "--seed", "1", "--max-examples", "300",
         "--out", str(out)], capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0, done.stdout + done.stderr
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["adapter"]["info"]["name"] and cert["run"]["isolation"] == "isolated"
    assert cert["benchmark"]["isolation"] == "exec"  # timed through the protocol


@pytest.mark.parametrize("spec", ["reference", f"exec:{sys.executable} {SAMPLE}",
                                  "tests/gallery.py:ReadsLayerRootsNative"])
def test_every_line_of_a_real_run_follows_the_schema(spec: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """What the suite itself writes and reads in a run (batches, services and all), not only
    what a test driver does."""
    from conformance import _remote, run_conformance

    written: list[bytes] = []
    read: list[bytes] = []
    write, readline = _remote.Child.write, _remote.Child.readline

    def spy_write(self: Any, call: str, data: bytes) -> None:
        written.extend(data.splitlines())
        write(self, call, data)

    def spy_readline(self: Any, call: str, timeout: float) -> bytes:
        line = readline(self, call, timeout)
        read.append(line)
        return line

    monkeypatch.setattr(_remote.Child, "write", spy_write)
    monkeypatch.setattr(_remote.Child, "readline", spy_readline)
    run_conformance(spec, seed=4, max_examples=10, workloads=False)
    requests = [json.loads(line) for line in written]
    assert any("batch" in r for r in requests)
    # Every line, each distinct one validated once (most answers repeat word for word).
    for message in {line: m for line, m in zip(written, requests, strict=True)}.values():
        check(message, "suite_line")
    for line in set(read):
        check(json.loads(line), "adapter_line")
    if "ReadsLayerRoots" in spec:
        assert any(b'"service":"read_registry"' in line for line in read)
