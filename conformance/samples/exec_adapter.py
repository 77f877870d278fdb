"""A sample out-of-process adapter for the WCIFS anti-virus conformance suite.

It speaks the adapter process protocol (docs/PROTOCOL.md: JSON lines on stdin and stdout)
and decides like the suite's reference adapter at level signature-current, asking for a
proactive scan after every signature update. Certified, it reaches all three levels:

    wcifs-conformance certify --adapter "exec:python conformance/samples/exec_adapter.py" \\
        --require conformant,signature-current,optimized

Use it as a template for an adapter in another language: the protocol half (``Channel``,
``Services``, ``Server``) stays as it is; the decision half (``Adapter``) is yours.
Standard library only, and nothing from the suite: a vendor's adapter sees nothing else.
"""

import json
import sys
from typing import Any, BinaryIO

PROTOCOL = 1
INFO = {"name": "WCIFS sample exec adapter", "version": "1.0"}

#: A JSON object as it came off the wire.
Json = dict[str, Any]

# WCIFS_REDIRECTION_ECP_CONTEXT, little-endian: USHORT Size, USHORT Flags,
# FILE_ID_128 FileId, GUID VolumeGuid (Windows layout).
ECP_SIZE = 36
LAYER = 0x1  # WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_LAYER
REGISTERED = 0x4  # ..._SERVICED_FROM_REGISTERED_LAYER
REMOTE = 0x8  # ..._SERVICED_FROM_REMOTE_LAYER
ZERO_ID = bytes(16)  # an id wcifs left unset


def identity(file_id: bytes, volume_guid: bytes) -> bytes:
    """The cache key: FileId + VolumeGuid, all 32 bytes (exactly bytes 4..36 of the ECP)."""
    return file_id + volume_guid


# --- the decision half ---------------------------------------------------------------------
class Adapter:
    """One adapter: the suite makes a fresh one (``new``) for every generated history.

    One cache, keyed by the backing file's complete identity, holds the signature version
    of the file's last clean scan; an entry counts only under the current version. Every
    scan feeds it (install-time, on-access, proactive); a write or delete drops it.
    Registered and remote layers are trusted only after a proactive scan completed under
    the current signature version. Arguments are the request's JSON objects as they came.
    """

    def __init__(self) -> None:
        self.cache: dict[bytes, int] = {}  # identity -> signature version of its last clean scan
        self.infected: set[bytes] = set()  # identities a scan found infected: never skipped
        # create_id -> identity of an on-access scan in flight; b"" once the file was
        # written meanwhile (the result then says nothing about the new content).
        self.pending: dict[int, bytes] = {}
        self.version = 0
        self.trusted = False  # registered and remote layers may be trusted right now

    def start(self, services: "Services") -> None:
        self.version = services.signature_version()

    def pre_create(self, create: Json) -> Json | None:
        # Attach the redirection ECP to every create in a container context, and only there.
        return {"size": ECP_SIZE} if create["silo"] is not None else None

    def post_create(self, create: Json) -> str:
        create_id = create["create_id"]
        own = identity(bytes.fromhex(create["file_id"]), bytes.fromhex(create["volume_guid"]))
        ecp = create["ecp"]
        if ecp is None:
            if create["silo"] is None:
                # An ordinary open: remember the result under the file's own identity,
                # which later ECPs name as the backing identity if this is a layer file.
                self.pending[create_id] = own
            return "SCAN"
        raw = bytes.fromhex(ecp["raw"])
        if not ecp["acknowledged"] or len(raw) < ECP_SIZE:
            return "SCAN"  # never acknowledged, or truncated: it tells nothing
        flags = int.from_bytes(raw[2:4], "little")
        ids = identity(raw[4:20], raw[20:36])
        if flags == LAYER:
            # A plain local-layer open: the cache alone decides.
            if self.cache.get(ids) == self.version:
                return "SKIP"
            self.pending[create_id] = ids
            return "SCAN"
        if flags == LAYER | REGISTERED:
            # Trust needs ids (else an infected file could not be recognised); a finding
            # may also stand under the id the container sees.
            if (self.trusted and ids[:16] != ZERO_ID
                    and ids not in self.infected and own not in self.infected):
                return "SKIP"
            if self.cache.get(ids) == self.version:
                return "SKIP"
            self.pending[create_id] = ids
            return "SCAN"
        if flags in (LAYER | REMOTE, LAYER | REMOTE | REGISTERED):
            return "SKIP" if self.trusted else "SCAN"
        return "SCAN"  # scratch, user mode, unknown bits, contradictions

    def scan_completed(self, result: Json) -> None:
        own = identity(bytes.fromhex(result["file_id"]), bytes.fromhex(result["volume_guid"]))
        if result["create_id"] is None:
            key = own  # a proactive or install-time scan names the host file
        else:
            # Credit the identity the create was decided on: the result names the opened
            # file, which for a layer placeholder is its container-side id.
            key = self.pending.pop(result["create_id"], b"")
            if result["outcome"] == "INFECTED":
                self.infected.add(own)
            if not key:
                return
        if key[:16] == ZERO_ID or key[16:] == ZERO_ID:
            return  # unset ids name nothing
        if result["outcome"] == "CLEAN":
            # Credited to the version the scan started under; never lowered.
            cached = self.cache.get(key)
            if cached is None or cached < result["signature_version"]:
                self.cache[key] = result["signature_version"]
        elif result["outcome"] == "INFECTED":
            self.infected.add(key)
            self.cache.pop(key, None)
        # ERROR: nothing learned.

    def file_changed(self, change: Json) -> None:
        key = identity(bytes.fromhex(change["file_id"]), bytes.fromhex(change["volume_guid"]))
        self.cache.pop(key, None)
        self.infected.discard(key)
        for create_id, pending in self.pending.items():
            if pending == key:
                self.pending[create_id] = b""  # its scan in flight covers the old content

    def signature_updated(self, version: int) -> bool:
        self.version = version
        self.trusted = False
        return True  # run a proactive scan now

    def proactive_scan_completed(self, version: int) -> None:
        if version == self.version:
            self.trusted = True

    def proactive_scan_aborted(self, version: int) -> None:
        pass  # an aborted scan proves nothing

    def stop(self) -> None:
        pass


# --- the protocol half ---------------------------------------------------------------------
class Channel:
    """One JSON object per line: requests in on stdin, answers out on stdout."""

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.stdin = stdin
        self.stdout = stdout

    def read(self) -> Any:
        """The next object the suite wrote, or None once it closed our stdin."""
        line = self.stdin.readline()
        return json.loads(line) if line else None

    def write(self, message: Json) -> None:
        # ASCII-only JSON on one line, flushed at once: the suite is waiting for it.
        self.stdout.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.stdout.flush()


class Services:
    """What ``start`` is handed: each call is a service request written in place of the
    answer; the suite's one-line reply completes it, and the call goes on."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def ask(self, request: Json) -> Any:
        self.channel.write(request)
        reply = self.channel.read()
        if reply is None:
            raise SystemExit(0)  # the suite hung up mid-call: nobody is left to answer
        return reply["value"]

    def read_registry(self, key: str) -> str | int | None:
        value: str | int | None = self.ask({"service": "read_registry", "key": key})
        return value

    def signature_version(self) -> int:
        return int(self.ask({"service": "signature_version"}))


#: The hooks that take an argument, and the request key that holds it.
ARGUMENT = {
    "pre_create": "create",
    "post_create": "create",
    "scan_completed": "result",
    "file_changed": "change",
    "signature_updated": "version",
    "proactive_scan_completed": "version",
    "proactive_scan_aborted": "version",
}


class Server:
    """Serves any number of live adapters, numbered by the suite."""

    def __init__(self, channel: Channel, factory: type[Adapter] = Adapter,
                 info: dict[str, str] = INFO) -> None:
        self.channel = channel
        self.factory = factory
        self.info = info
        self.adapters: dict[int, Adapter] = {}

    def serve(self) -> int:
        while True:
            request = self.channel.read()
            if request is None:
                return 0  # stdin closed: the run is over
            if "call" not in request and isinstance(request.get("batch"), list):
                # One answer line per request, in order, each written as soon as it is
                # known (a later request's service request must come after it).
                for one in request["batch"]:
                    self.channel.write(self.answer(one))
            else:
                self.channel.write(self.answer(request))

    def answer(self, request: Json) -> Json:
        try:
            return {"return": self.call(request)}
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}", "traceback": where(e)}

    def call(self, request: Json) -> Any:
        call = request["call"]
        if call == "hello":
            # Always our own version: on a mismatch the suite stops, saying both.
            return {"protocol": PROTOCOL, "info": self.info, "batch": True}
        n = request["adapter"]
        if call == "new":
            self.adapters[n] = self.factory()
            return None
        if call == "drop":
            self.adapters.pop(n, None)
            return None
        adapter = self.adapters.get(n)
        if adapter is None:
            raise LookupError(f"no adapter {n}: it was never made with new, or was dropped")
        if call == "start":
            return adapter.start(Services(self.channel))
        if call == "stop":
            return adapter.stop()
        if call not in ARGUMENT:
            raise ValueError(f"unknown call {call!r}")
        return getattr(adapter, call)(request[ARGUMENT[call]])


def where(e: BaseException) -> str:
    """file:line of each frame the exception passed through, innermost last."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return "\n".join(frames)


def main(factory: type[Adapter] = Adapter, info: dict[str, str] = INFO) -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout belongs to the protocol: a stray print() goes to stderr
    return Server(Channel(sys.stdin.buffer, out), factory, info).serve()


if __name__ == "__main__":
    sys.exit(main())
