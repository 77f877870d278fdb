"""The adapter process protocol's JSON form of the contract types (docs/PROTOCOL.md).

Bytes travel as lowercase hex in ECP byte order, enums by name. The suite encodes events
and decodes answers; the Python worker does the reverse.
"""

from __future__ import annotations

import json
from typing import Any

from reference.contract import (
    ChangeKind,
    EcpRequest,
    FileChange,
    PostCreate,
    PreCreate,
    RedirectionEcp,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Verdict,
)

#: The key under which each hook's argument travels in a request.
ARGUMENT = {
    "pre_create": "create",
    "post_create": "create",
    "scan_completed": "result",
    "file_changed": "change",
    "signature_updated": "version",
    "proactive_scan_completed": "version",
    "proactive_scan_aborted": "version",
}


#: Compact JSON, as every line of the protocol is written.
dumps = json.JSONEncoder(separators=(",", ":")).encode

# --- request lines, written out by hand: this is the protocol's hot path -------------------
_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _silo(silo: int | None) -> str:
    return "null" if silo is None else str(int(silo))


def pre_create_line(n: int, p: PreCreate) -> bytes:
    return (f'{{"call":"pre_create","adapter":{n},"create":{{"create_id":{int(p.create_id)},'
            f'"volume_guid":"{p.volume_guid.hex()}","path":{_str(p.path)},'
            f'"silo":{_silo(p.silo)}}}}}').encode()


def post_create_line(n: int, p: PostCreate) -> bytes:
    ecp = p.ecp
    shown = "null" if ecp is None else (
        f'{{"raw":"{ecp.raw.hex()}","acknowledged":{"true" if ecp.acknowledged else "false"}}}')
    return (f'{{"call":"post_create","adapter":{n},"create":{{"create_id":{int(p.create_id)},'
            f'"volume_guid":"{p.volume_guid.hex()}","path":{_str(p.path)},'
            f'"silo":{_silo(p.silo)},"file_id":"{p.file_id.hex()}","ecp":{shown}}}}}').encode()


def scan_completed_line(n: int, r: ScanResult) -> bytes:
    create = "null" if r.create_id is None else str(int(r.create_id))
    return (f'{{"call":"scan_completed","adapter":{n},"result":{{"create_id":{create},'
            f'"volume_guid":"{r.volume_guid.hex()}","file_id":"{r.file_id.hex()}",'
            f'"signature_version":{int(r.signature_version)},"outcome":"{r.outcome.name}",'
            f'"origin":"{r.origin.name}"}}}}').encode()


def file_changed_line(n: int, c: FileChange) -> bytes:
    return (f'{{"call":"file_changed","adapter":{n},"change":{{'
            f'"volume_guid":"{c.volume_guid.hex()}","file_id":"{c.file_id.hex()}",'
            f'"path":{_str(c.path)},"kind":"{c.kind.name}","silo":{_silo(c.silo)}}}}}').encode()


def plain_line(n: int, call: str, version: int | None = None) -> bytes:
    if version is None:
        return f'{{"call":"{call}","adapter":{n}}}'.encode()
    return f'{{"call":"{call}","adapter":{n},"version":{int(version)}}}'.encode()


#: The answer lines nearly every call gets, and their "return" value, known without
#: parsing (:func:`decode_answer` still checks the value fits the call).
COMMON_ANSWERS: dict[bytes, Any] = {
    b'{"return":null}': None,
    b'{"return":"SCAN"}': "SCAN",
    b'{"return":"SKIP"}': "SKIP",
    b'{"return":true}': True,
    b'{"return":false}': False,
    b'{"return":{"size":36}}': {"size": 36},
}


def encode_argument(call: str, value: Any) -> Any:
    """A hook's argument in its JSON form, as a request carries it (a call's record in a
    trace's dialogue; not the hot path)."""
    if call in ("pre_create", "post_create", "scan_completed", "file_changed"):
        line = _LINES[call](0, value)
        return json.loads(line)[ARGUMENT[call]]
    return None if value is None else int(value)


_LINES: dict[str, Any] = {
    "pre_create": pre_create_line, "post_create": post_create_line,
    "scan_completed": scan_completed_line, "file_changed": file_changed_line,
}


# --- the worker's side: requests back into contract types ----------------------------------
def decode_argument(call: str, value: Any) -> Any:
    if call == "pre_create":
        return PreCreate(int(value["create_id"]), bytes.fromhex(value["volume_guid"]),
                         str(value["path"]), value["silo"])
    if call == "post_create":
        ecp = value["ecp"]
        return PostCreate(int(value["create_id"]), bytes.fromhex(value["volume_guid"]),
                          str(value["path"]), value["silo"], bytes.fromhex(value["file_id"]),
                          None if ecp is None else RedirectionEcp(
                              bytes.fromhex(ecp["raw"]), bool(ecp["acknowledged"])))
    if call == "scan_completed":
        return ScanResult(value["create_id"], bytes.fromhex(value["volume_guid"]),
                          bytes.fromhex(value["file_id"]), int(value["signature_version"]),
                          ScanOutcome[value["outcome"]], ScanOrigin[value["origin"]])
    if call == "file_changed":
        return FileChange(bytes.fromhex(value["volume_guid"]), bytes.fromhex(value["file_id"]),
                          str(value["path"]), ChangeKind[value["kind"]], value["silo"])
    return int(value)


def encode_answer(call: str, value: Any) -> Any:
    """The JSON form of a hook's return value; a value of the wrong type passes through
    as its ``repr`` so that the suite can say what came back."""
    if call == "pre_create":
        if value is None:
            return None
        if type(value) is EcpRequest and type(value.size) is int:
            return {"size": value.size}
    elif call == "post_create":
        if type(value) is Verdict:
            return value.name
    elif call == "signature_updated":
        if type(value) is bool:
            return value
    else:
        return None
    return {"unexpected": repr(value)}


# --- the suite's side: answers back into contract types ------------------------------------
class Unexpected:
    """An answer of the wrong type, shown as the adapter wrote it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_VERDICTS = {"SCAN": Verdict.SCAN, "SKIP": Verdict.SKIP}
_REQUESTS: dict[int, EcpRequest] = {}


def decode_answer(call: str, value: Any) -> Any:
    """A hook's answer as the in-process hook would have returned it; anything else comes
    back as :class:`Unexpected`, which the suite's type checks reject (SAFE-13)."""
    if call == "post_create":
        verdict = _VERDICTS.get(value) if type(value) is str else None
        if verdict is not None:
            return verdict
    elif call == "pre_create":
        if value is None:
            return None
        if type(value) is dict and len(value) == 1 and type(value.get("size")) is int:
            size = value["size"]
            request = _REQUESTS.get(size)
            if request is None and 0 <= size <= 0xFFFF:
                request = _REQUESTS[size] = EcpRequest(size)
            if request is not None:
                return request
    elif call == "signature_updated":
        if type(value) is bool:
            return value
    else:
        return None
    if type(value) is dict and set(value) == {"unexpected"}:
        return Unexpected(str(value["unexpected"]))
    return Unexpected(_short(value))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."
