"""Driving an adapter through the model and judging every decision (SPEC §5–§6).

The adapter under test and two shadow reference adapters (one per safety level) receive
the same event stream in lockstep. After every create the oracle judges the adapter's
verdict against the model's truth; a violation that breaks ``conformant`` is raised at
once, the others (signature-current, efficiency, warnings) are recorded and the run goes on.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reference import ops as O
from reference.adapter import reference_factory
from reference.contract import (
    LAYER_ROOT_LOCATIONS_KEY,
    VALID_FLAG_COMBINATIONS,
    ZERO_ID,
    EcpRequest,
    FileChange,
    PostCreate,
    PreCreate,
    RedirectionEcp,
    ScanResult,
    Verdict,
)
from reference.model import REDIRECTED, CreateRecord, FileObj, Provenance, World

from ._errors import ConformanceError
from ._faults import AdapterFault
from ._invariants import (
    CONFORMANT,
    CREATE,
    IDS,
    INVARIANTS,
    PRE,
    SCAN,
    SIGNATURE_CURRENT,
    SKIP,
    Clause,
    clauses,
    counted_at,
    permits,
)
from ._loading import instantiate
from ._wire import ARGUMENT, encode_answer, encode_argument

SHADOW_LEVELS = (CONFORMANT, SIGNATURE_CURRENT)
_PRE_COUNTS = counted_at(PRE)
_PRE_CLAUSES = clauses(PRE)
_CREATE_COUNTS = counted_at(CREATE)
_SKIP_CLAUSES = clauses(SKIP)
_SCAN_CLAUSES = clauses(SCAN)
_PERMITS = permits()
_P = Provenance
_FRESH_GUID = bytes.fromhex("ee" * 16)
_FRESH_ID = bytes.fromhex("5a17" * 8)
#: More ids no file has: a hashed table can collide with one of them, not with all.
_MORE_FRESH = [(bytes.fromhex(i * 8), bytes.fromhex(g * 16)) for i, g in
               (("c3a5", "dd"), ("7e19", "bb"))]


class Violation(Exception):
    """One broken invariant: its ID, what was decided and the truth behind it."""

    def __init__(self, inv: str, summary: str, detail: dict[str, str] | None = None,
                 step: int = 0) -> None:
        super().__init__(f"{inv}: {summary}")
        self.id = inv
        self.summary = summary
        self.detail = detail or {}
        self.step = step
        self.level = INVARIANTS[inv].level
        #: The call the decision was made in, (hook, create_id); None: the last call made.
        self.at: tuple[str, int] | None = None
        #: The diagnosis probes asked while judging it (see :meth:`Checker._probe`).
        self.probes: list[dict[str, Any]] = []

    @property
    def rule(self) -> str:
        return INVARIANTS[self.id].rule


# One class per ID, so Hypothesis keeps each diagnosis apart while it shrinks.
_CLASSES: dict[str, type[Violation]] = {
    i: type(f"Violation_{i.replace('-', '_')}", (Violation,), {}) for i in IDS
}


def violation(inv: str, summary: str, detail: dict[str, str] | None = None,
              step: int = 0) -> Violation:
    return _CLASSES[inv](inv, summary, detail, step)


@dataclass(slots=True)
class Recorded:
    """The first occurrence of a non-fatal violation, with the ops that led to it."""

    violation: Violation
    setup: O.Setup
    ops: tuple[O.Op, ...]
    scope: str


@dataclass(slots=True)
class Tally:
    """What a whole run accumulates over all its examples."""

    exercised: Counter[str] = field(default_factory=Counter)
    #: (ID, operation kind, profile, scene) -> times exercised; sums to ``exercised``.
    coverage: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    #: (scope, ID) -> first occurrence. Scope is ``all`` or the shadow level for EFF-*.
    recorded: dict[tuple[str, str], Recorded] = field(default_factory=dict)
    examples: int = 0
    steps: int = 0
    creates: int = 0
    scans: int = 0
    #: SCAN verdicts in a container context (efficiency workloads).
    container_scans: int = 0
    #: Conformant IDs listed as known failures (``--expect``): recorded, not raised.
    tolerated: frozenset[str] = frozenset()

    def record(self, v: Violation, setup: O.Setup, ops: Sequence[O.Op], scope: str) -> None:
        """Keep ``v``'s first occurrence, with the operations up to it."""
        key = (scope, v.id)
        if key not in self.recorded:
            self.recorded[key] = Recorded(v, setup, tuple(ops[: v.step + 1]), scope)


_HIVE = re.compile(r"^(?:computer\\)?(?:hklm|hkey_local_machine|registry\\machine)(?=\\|$)")
_FORBIDDEN = LAYER_ROOT_LOCATIONS_KEY.casefold()


def registry_path(key: object) -> str:
    """A registry path in one spelling: case folded, ``/`` as ``\\``, no empty
    components, and ``HKEY_LOCAL_MACHINE`` or ``\\Registry\\Machine`` written ``hklm``."""
    parts = [p for p in str(key).replace("/", "\\").casefold().split("\\") if p.strip()]
    return _HIVE.sub("hklm", "\\".join(p.strip() for p in parts))


def reads_layer_roots(key: object) -> bool:
    """SAFE-12: ``key`` is LayerRootLocations, or a subkey or value beneath it."""
    path = registry_path(key)
    return path == _FORBIDDEN or path.startswith(_FORBIDDEN + "\\")


class _GuardedServices:
    __slots__ = ("_inner", "asked", "forbidden", "reads")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.forbidden = False
        self.reads: list[str] = []
        #: When the dialogue is recorded: the service requests of the call in progress.
        self.asked: list[dict[str, Any]] | None = None

    def read_registry(self, key: str) -> object | None:
        self.reads.append(str(key))
        value: object | None = None
        if reads_layer_roots(key):
            self.forbidden = True
        else:
            value = self._inner.read_registry(key)
        if self.asked is not None:
            self.asked.append({"service": "read_registry", "key": str(key),
                               "return": None if value is None else repr(value)})
        return value

    def signature_version(self) -> int:
        version = int(self._inner.signature_version())
        if self.asked is not None:
            self.asked.append({"service": "signature_version", "return": version})
        return version


class Lockstep:
    """The adapter the model drives: the vendor's adapter, guarded, plus the shadows."""

    def __init__(self, vendor: Any, checker: Checker) -> None:
        self.vendor = vendor
        self.checker = checker
        self.shadows = [reference_factory(level)() for level in SHADOW_LEVELS]
        self.shadow_verdicts: list[Verdict] = []
        self.services: _GuardedServices | None = None

    def _fault(self, method: str, what: str, tb: str = "") -> Violation:
        detail = {"call": method}
        if tb:
            detail["traceback"] = tb
        return violation("SAFE-13", f"{method} {what}", detail, self.checker.index)

    def _adapter_fault(self, f: AdapterFault) -> Violation:
        return violation("SAFE-13", str(f), {"call": f.call, **f.detail}, self.checker.index)

    def _call(self, method: str, *args: Any) -> Any:
        self.checker.ex["SAFE-13"] += 1
        try:
            result = getattr(self.vendor, method)(*args)
        except AdapterFault as f:
            # A hang, crash or broken answer; or, sent ahead in a batch, an earlier call's.
            raise self._adapter_fault(f) from None
        except Exception as e:
            raise self._fault(method, f"raised {type(e).__name__}: {e}",
                              traceback.format_exc(limit=-6)) from None
        if self.services is not None and self.services.forbidden:
            raise violation("SAFE-12", f"the adapter read {LAYER_ROOT_LOCATIONS_KEY} "
                            f"(during {method})", {"registry reads": ", ".join(
                                self.services.reads)}, self.checker.index)
        return result

    def _handed(self, method: str, mine: Any, theirs: Any) -> None:
        """SAFE-13: the adapter got a copy; it must come back as it went out."""
        if mine == theirs and (type(theirs) is not PostCreate or _same_ecp(mine.ecp,
                                                                          theirs.ecp)):
            return
        raise self._fault(method, f"changed what it was handed: {_changes(mine, theirs)}")

    def start(self, services: Any) -> None:
        self.services = _GuardedServices(services)
        self.checker.ex["SAFE-12"] += 1
        self._call("start", self.services)
        for s in self.shadows:
            s.start(services)

    def pre_create(self, pre: PreCreate) -> EcpRequest | None:
        mine = PreCreate(pre.create_id, pre.volume_guid, pre.path, pre.silo)
        req = self._call("pre_create", mine)
        self._handed("pre_create", mine, pre)
        if req is not None and not (type(req) is EcpRequest and type(req.size) is int
                                    and 0 <= req.size <= 0xFFFF):
            raise self._fault("pre_create", f"returned {req!r}, not an EcpRequest "
                              "(size 0..65535) or None")
        for s in self.shadows:
            s.pre_create(pre)
        self.checker.judge_pre(pre, req)
        return req

    def post_create(self, post: PostCreate) -> Verdict:
        ecp = post.ecp
        mine = PostCreate(post.create_id, post.volume_guid, post.path, post.silo, post.file_id,
                          None if ecp is None else RedirectionEcp(ecp.raw, ecp.acknowledged))
        verdict = self._call("post_create", mine)
        self._handed("post_create", mine, post)
        if type(verdict) is not Verdict:
            raise self._fault("post_create", f"returned {verdict!r}, not a Verdict")
        self.shadow_verdicts = [s.post_create(post) for s in self.shadows]
        return verdict  # type: ignore[no-any-return]

    def scan_completed(self, result: ScanResult) -> None:
        mine = ScanResult(result.create_id, result.volume_guid, result.file_id,
                          result.signature_version, result.outcome, result.origin)
        self._call("scan_completed", mine)
        self._handed("scan_completed", mine, result)
        for s in self.shadows:
            s.scan_completed(result)

    def file_changed(self, change: FileChange) -> None:
        mine = FileChange(change.volume_guid, change.file_id, change.path, change.kind,
                          change.silo)
        self._call("file_changed", mine)
        self._handed("file_changed", mine, change)
        for s in self.shadows:
            s.file_changed(change)

    def signature_updated(self, version: int) -> bool:
        answer = self._call("signature_updated", version)
        if type(answer) is not bool:
            raise self._fault("signature_updated", f"returned {answer!r}, not a bool")
        for s in self.shadows:
            s.signature_updated(version)
        return answer  # type: ignore[no-any-return]

    def proactive_scan_completed(self, version: int) -> None:
        self._call("proactive_scan_completed", version)
        for s in self.shadows:
            s.proactive_scan_completed(version)

    def proactive_scan_aborted(self, version: int) -> None:
        self._call("proactive_scan_aborted", version)
        for s in self.shadows:
            s.proactive_scan_aborted(version)

    def stop(self) -> None:
        self._call("stop")


class _Recording(Lockstep):
    """A :class:`Lockstep` that writes down the dialogue (:mod:`._dialogue`): each call,
    what the adapter was handed (before the call: an adapter may change it), its service
    requests and its answer. Only replays record, so the run's own path stays as it was."""

    def __init__(self, vendor: Any, checker: Checker, dialogue: list[dict[str, Any]]
                 ) -> None:
        super().__init__(vendor, checker)
        self.dialogue = dialogue

    def _call(self, method: str, *args: Any) -> Any:
        entry: dict[str, Any] = {"step": self.checker.step_number, "call": method}
        if method in ARGUMENT:
            entry[ARGUMENT[method]] = encode_argument(method, args[0])
        self.dialogue.append(entry)
        services = self.services
        if services is not None:
            services.asked = []
        try:
            result = super()._call(method, *args)
            # Held-back calls go now, so each service request is credited to its call.
            settle = getattr(self.vendor, "settle", None)
            if settle is not None:
                try:
                    settle()
                except AdapterFault as f:
                    raise self._adapter_fault(f) from None
        except Violation as v:
            entry["error"] = v.summary
            raise
        finally:
            if services is not None:
                if services.asked:
                    entry["services"] = services.asked
                services.asked = None
        entry["return"] = encode_answer(method, result)
        return result


class Checker:
    """Runs one example: a setup and a sequence of operations, judged step by step."""

    def __init__(self, factory: Callable[[], Any], setup: O.Setup, tally: Tally,
                 probe: bool = True, dialogue: list[dict[str, Any]] | None = None) -> None:
        self.factory = factory
        self.setup = setup
        self.tally = tally
        self.probe_enabled = probe
        #: With a list: every call the adapter receives is written down (a trace's
        #: dialogue); the probes asked while judging a create go to ``probe_log``.
        self.dialogue = dialogue
        self.probe_log: list[dict[str, Any]] = []
        #: The operation in progress, numbered as the steps are (0: start, n + 1: stop).
        self.step_number = 0
        self.index = 0
        self.ops: Sequence[O.Op] = ()
        #: Exercise counts of the operation in progress (drained into the tally per op).
        self.ex: Counter[str] = Counter()
        try:
            vendor = instantiate(factory)
        except ConformanceError:
            raise
        except AdapterFault as f:
            raise violation("SAFE-13", f"the adapter could not be made: {f}",
                            {"call": f.call, **f.detail}) from None
        except Exception as e:
            raise violation("SAFE-13", f"the adapter factory raised {type(e).__name__}: {e}",
                            {"traceback": traceback.format_exc(limit=-6)}) from None
        self.lockstep = (Lockstep(vendor, self) if dialogue is None
                         else _Recording(vendor, self, dialogue))
        self.world = World(setup, self.lockstep, self.judge)
        self.world.ex = self.ex
        self._flush("start", "start")

    def run(self, ops: Sequence[O.Op], describe: list[str] | None = None,
            scenes: Sequence[str] | None = None) -> None:
        """Apply ``ops``; with ``describe``, append a readable line per step to it.
        ``scenes`` names the generator's scene each op belongs to (for coverage)."""
        self.ops = ops
        world = self.world
        self.tally.examples += 1
        for i, op in enumerate(ops):
            self.index = i
            self.step_number = i + 1
            if describe is not None:
                describe.append(world.describe(op))
            try:
                world.apply(op)
            finally:
                # Also when the op raised a violation: what it broke, it exercised.
                if self.ex:
                    self._flush(op.kind, scenes[i] if scenes is not None else "replay")
        self.index = len(ops)
        self.step_number = len(ops) + 1
        self.tally.steps += len(ops)
        self.tally.scans += world.scans
        world.stop()
        self._flush("stop", "stop")

    def _flush(self, kind: str, scene: str) -> None:
        ex = self.ex
        if not ex:
            return
        coverage = self.tally.coverage
        total = self.tally.exercised
        profile = self.setup.profile
        for inv, n in ex.items():
            coverage[(inv, kind, profile, scene)] += n
            total[inv] += n
        ex.clear()

    # --- recording -----------------------------------------------------------------
    def _record(self, v: Violation, scope: str = "all") -> None:
        self.tally.record(v, self.setup, self.ops, scope)

    # --- judging: the catalogue's rules, applied ---------------------------------------
    def judge_pre(self, pre: PreCreate, req: EcpRequest | None) -> None:
        """ECP hygiene: every PRE rule is checked; a conformant one raises."""
        case = _PreCase(pre, req)
        ex = self.ex
        for inv, exercised in _PRE_COUNTS:
            if exercised(case):
                ex[inv] += 1
        for inv, clause in _PRE_CLAUSES:
            if clause.when(case):
                v = violation(inv, clause.describe(case), _pre_detail(pre, req), self.index)
                v.at = ("pre_create", pre.create_id)
                if v.level == CONFORMANT and inv not in self.tally.tolerated:
                    raise v
                self._record(v)

    def judge(self, r: CreateRecord) -> None:
        """The oracle: count what this create exercises, then judge its verdict."""
        self.tally.creates += 1
        if self.dialogue is not None:
            self.probe_log = []
        case = Case(self, r)
        ex = self.ex
        for inv, exercised in _CREATE_COUNTS:
            if exercised(case):
                ex[inv] += 1
        if r.verdict is Verdict.SKIP:
            if not case.covered and not any(permits(case) for permits in _PERMITS):
                self._judge_clauses(_SKIP_CLAUSES, case, "all")
        else:
            if r.pre.silo is not None:
                self.tally.container_scans += 1
            if case.shadow_skips:
                for level, shadow in zip(SHADOW_LEVELS, self.lockstep.shadow_verdicts,
                                         strict=True):
                    if shadow is Verdict.SKIP:
                        case.shadow = level
                        self._judge_clauses(_SCAN_CLAUSES, case, level)

    def _judge_clauses(self, table: tuple[tuple[str, Clause], ...], case: Case,
                       scope: str) -> None:
        """The first matching clause names the violation (the table's diagnosis order):
        raised if it breaks ``conformant``, recorded otherwise."""
        for inv, clause in table:
            if clause.when(case):
                v = self._violation(inv, case.r, clause.describe(case))
                if v.level == CONFORMANT and inv not in self.tally.tolerated:
                    raise v
                self._record(v, scope)
                return

    # --- probing: which input did the skip depend on? -----------------------------------
    def _renamed_scans(self, r: CreateRecord, ident: FileObj) -> bool:
        """With this file's ids (and its name on its volume) replaced, everywhere the
        adapter saw them, by ones no other file has, does the adapter scan? The renaming
        is a bijection: a key that tells every file apart cannot notice it."""
        if not self.probe_enabled or ident.file_id == ZERO_ID:
            return False
        old = ident.key
        for salt in (b"1", b"2"):
            digest = hashlib.sha256(salt + old).digest()
            rename = _Rename(old, digest[:16] + old[16:], ident.volume_guid, ident.path,
                             f"{ident.path}.{digest[16:20].hex()}")
            label = (f"this file's FileId renamed everywhere to {rename.new[:16].hex()}, "
                     f"and its name to {rename.new_path}")
            if self._probe(r, r.post, label, rename=rename) is Verdict.SCAN:
                return True
        return False

    def _trusted_abort(self, r: CreateRecord) -> bool:
        """Does the SKIP go away when the adapter is never told of an aborted scan?"""
        return self.probe_enabled and self._probe(
            r, r.post, "never told of the aborted proactive scan", hide_aborts=True
        ) is Verdict.SCAN

    def _credited_elsewhere(self, r: CreateRecord, ident: FileObj) -> bool:
        """Did the SKIP rest on another file's scan? It did if spoiling every other file's
        clean results makes the adapter scan, while spoiling this file's own does not (a
        table that merely grew, or an error cached clean, fails one of the two). A copied-
        on-write file's old backing file counts as its own: relying on it is SAFE-3."""
        if not self.probe_enabled:
            return False
        own = frozenset({ident.key} | ({r.old_backing.key} if r.old_backing else set()))
        return (self._probe(r, r.post, "every other file's clean scans shown as infected",
                            spoil=(own, True)) is Verdict.SCAN
                and self._probe(r, r.post, "this file's own clean scans shown as infected",
                                spoil=(own, False)) is Verdict.SKIP)

    def _probe_key(self, r: CreateRecord) -> str | None:
        """Which part of the ids the skip depended on: a SAFE-6 reason, ``""`` when the key
        was complete, or None when the skip did not depend on any id at all."""
        ecp = r.post.ecp
        if not self.probe_enabled or ecp is None or not ecp.acknowledged or not ecp.complete:
            return ""
        fid, vol = ecp.file_id, ecp.volume_guid

        def with_ids(f: bytes, v: bytes, own: bytes | None = None) -> PostCreate:
            raw = RedirectionEcp.pack(ecp.size, int(ecp.flags), f, v)
            return replace(r.post, ecp=RedirectionEcp(raw, True),
                           file_id=r.post.file_id if own is None else own,
                           path=r.post.path if own is None else "\\probe\\fresh.bin")

        def asked(f: bytes, g: bytes, own: bytes | None = None) -> Verdict | None:
            label = (f"the ECP's FileId changed to {f.hex()} and VolumeGuid to {g.hex()}"
                     if f != fid and g != vol else
                     f"the ECP's VolumeGuid changed to {g.hex()}" if g != vol else
                     f"the ECP's FileId changed to {f.hex()}")
            if own is not None:
                label += ", and the file's own id and path to ones no scan named"
            return self._probe(r, with_ids(f, g, own), label)

        if asked(_FRESH_ID, _FRESH_GUID, own=_FRESH_ID) is Verdict.SKIP:
            if all(asked(f, g, own=f) is Verdict.SKIP for f, g in _MORE_FRESH):
                return None
            return ("re-asked with ids no scan ever named: still SKIP, but not for others: "
                    "its key confuses different files (hashed or truncated, without the full "
                    "ids)")
        own_id = ("re-asked with the ECP's ids changed to ones no scan named: still SKIP; the "
                  "skip followed the container-side file id, not the backing ids")
        if fid == ZERO_ID:
            if asked(_FRESH_ID, _FRESH_GUID) is Verdict.SCAN:
                return ("re-asked with real ids in place of the unset (zero) ones: SCAN; it "
                        "skipped on unset ids, which name no file")
            return "" if r.provenance is _P.SCRATCH else own_id
        if asked(fid, _FRESH_GUID) is Verdict.SKIP:
            return (f"re-asked with the VolumeGuid changed to {_FRESH_GUID.hex()}: still "
                    "SKIP; the cache key ignores the VolumeGuid")
        flipped = fid[:8] + bytes(b ^ 0xA5 for b in fid[8:])
        if asked(flipped, vol) is Verdict.SKIP:
            return (f"re-asked with the upper 64 bits of the FileId changed ({flipped.hex()}): "
                    "still SKIP; the key is truncated")
        if asked(_FRESH_ID, _FRESH_GUID) is Verdict.SKIP:
            return own_id
        return ""

    def _probe(self, r: CreateRecord, post: PostCreate, label: str,
               **shown: Any) -> Verdict | None:
        """Replay this example with a fresh adapter and ask it about ``post`` instead;
        ``shown`` changes what the replay shows it (see :func:`probe_verdict`), ``label``
        says how, for the dialogue."""
        if getattr(self.factory, "out_of_time", False):
            return None  # a hanging adapter has had its timeouts: a probe would add more
        answer = probe_verdict(getattr(self.factory, "probes", self.factory), self.setup,
                               self.ops[: self.index + 1], r.post.create_id, post, **shown)
        if self.dialogue is not None:
            self.probe_log.append({
                "probe": label, "post_create": encode_argument("post_create", post),
                "return": None if answer is None else answer.name})
        return answer

    def _violation(self, inv: str, r: CreateRecord, summary: str) -> Violation:
        v = violation(inv, summary, self.explain(r), self.index)
        v.at = ("post_create", r.post.create_id)
        v.probes = list(self.probe_log)
        return v

    def explain(self, r: CreateRecord) -> dict[str, str]:
        c = r.content
        scans = ", ".join(f"clean under v{v}" for v in sorted(c.clean)) or "never scanned clean"
        if c.infected:
            scans += "; found infected"
        if c.errors:
            scans += f"; {c.errors} scan(s) ended in ERROR"
        where = r.container.name if r.container is not None else "host"
        last = self.world.last_completed
        return {
            "decision": f"post_create({r.post.path} on {where}, silo={r.post.silo}, "
                        f"file_id={r.post.file_id.hex()}) -> {r.verdict.value}",
            "ecp": _ecp_text(r.request, r.post.ecp),
            "provenance": r.provenance.value + (
                f" ({r.layer.name})" if r.layer is not None else ""),
            "content": c.describe(),
            "scan history": scans,
            "signatures": f"current v{r.version}; last completed proactive scan: "
                          f"{'none' if last is None else f'v{last}'}",
        }


class _PreCase:
    """A pre-create as the PRE rules see it."""

    __slots__ = ("path", "request", "silo")

    def __init__(self, pre: PreCreate, req: EcpRequest | None) -> None:
        self.silo = pre.silo
        self.path = pre.path
        self.request = req


class Case:
    """One create as the catalogue's rules see it: the model's truth, the decision, and the
    diagnosis probes, run only when a rule asks (they replay the example)."""

    # One per create: slots keep building it cheap.
    __slots__ = ("_key", "bad_ecp", "checker", "content", "covered", "ecp", "identity",
                 "infected", "layer", "no_registered_flag", "prov_name", "r", "redirected",
                 "registered", "remote", "scratch", "shadow", "shadow_skips", "sig_ok",
                 "version", "world")

    def __init__(self, checker: Checker, r: CreateRecord) -> None:
        self.checker = checker
        self.r = r
        self.world = world = checker.world
        prov = r.provenance
        self.prov_name = prov.value
        self.layer = prov is _P.LAYER
        self.registered = prov is _P.REGISTERED
        self.remote = prov is _P.REMOTE
        self.scratch = prov is _P.SCRATCH
        self.redirected = prov in REDIRECTED
        self.content = r.content
        self.version = r.version
        self.covered = r.version in r.content.clean
        self.identity = r.identity
        self.ecp = ecp = r.post.ecp
        self.bad_ecp = ecp is not None and ecp.acknowledged and (
            ecp.flags not in VALID_FLAG_COMBINATIONS or not ecp.complete)
        self.sig_ok = world.last_completed == r.version
        self.infected = world.found_infected(r.finding_key, r.content)
        self.no_registered_flag = checker.setup.profile == "no-registered-flag"
        self.shadow_skips = self.redirected and Verdict.SKIP in checker.lockstep.shadow_verdicts
        #: The shadow level a needless scan is judged against (SCAN rules).
        self.shadow = ""
        self._key: str | bool | None = False

    @property
    def clean_before(self) -> bool:
        """Some earlier content of this file was scanned clean under the current version
        (rules read it only for uncovered content: not paid on every create)."""
        ident = self.identity
        return ident is not None and any(self.version in p.clean for p in ident.past)

    @property
    def clean_since_cow(self) -> bool:
        """Some content this scratch file has had since copy-on-write was scanned clean."""
        ident = self.identity
        return ident is None or any(self.version in p.clean for p in ident.past[1:])

    @property
    def _probed_key(self) -> str | None:
        """Which part of the ids the skip depended on (see :meth:`Checker._probe_key`):
        a SAFE-6 reason, ``""`` for a complete key, None for no key at all."""
        if self._key is False:
            self._key = (self.checker._probe_key(self.r) if self.keyed_open else "")
        return self._key  # type: ignore[return-value]

    @property
    def keyed_open(self) -> bool:
        """An open whose ECP names ids a cache could be keyed by."""
        return (self.layer or self.registered or self.scratch) and self.ecp is not None

    @property
    def key_defect(self) -> str:
        return self._probed_key or ""

    @property
    def key_blind(self) -> bool:
        """The skip held for ids no scan ever named: it did not depend on the key."""
        return self._probed_key is None

    @property
    def renamed_scans(self) -> bool:
        return (self.keyed_open and self._probed_key is not None and self.identity is not None
                and self.checker._renamed_scans(self.r, self.identity))

    @property
    def trusted_abort(self) -> bool:
        return self.world.aborted_at is not None and self.checker._trusted_abort(self.r)

    @property
    def credited_elsewhere(self) -> bool:
        return (self._probed_key is not None and self.identity is not None
                and self.checker._credited_elsewhere(self.r, self.identity))


class _ProbeDone(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Rename:
    """One file's ``FileId + VolumeGuid`` and its path on its volume, and their stand-ins."""

    old: bytes
    new: bytes
    volume: bytes
    path: str
    new_path: str


class _Renamer:
    """Shows an adapter the same history with one file renamed (ids and path): a
    bijection, so an adapter that tells every file apart cannot notice."""

    def __init__(self, vendor: Any, rename: _Rename) -> None:
        self.vendor = vendor
        self.r = rename

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vendor, name)

    def _id(self, volume: bytes, fid: bytes) -> bytes:
        return self.r.new[:16] if fid + volume == self.r.old else fid

    def _path(self, volume: bytes, path: str) -> str:
        return self.r.new_path if volume == self.r.volume and path == self.r.path else path

    def pre_create(self, pre: PreCreate) -> EcpRequest | None:
        return self.vendor.pre_create(  # type: ignore[no-any-return]
            replace(pre, path=self._path(pre.volume_guid, pre.path)))

    def post_create(self, post: PostCreate) -> Verdict:
        ecp = post.ecp
        if ecp is not None and ecp.complete and ecp.ids == self.r.old:
            ecp = RedirectionEcp(ecp.raw[:4] + self.r.new + ecp.raw[36:], ecp.acknowledged)
        post = replace(post, file_id=self._id(post.volume_guid, post.file_id), ecp=ecp,
                       path=self._path(post.volume_guid, post.path))
        return self.vendor.post_create(post)  # type: ignore[no-any-return]

    def scan_completed(self, result: ScanResult) -> None:
        self.vendor.scan_completed(
            replace(result, file_id=self._id(result.volume_guid, result.file_id)))

    def file_changed(self, change: FileChange) -> None:
        self.vendor.file_changed(
            replace(change, file_id=self._id(change.volume_guid, change.file_id),
                    path=self._path(change.volume_guid, change.path)))


class _ProbeAdapter:
    """Forwards everything to a fresh vendor adapter, but answers one create counterfactually."""

    def __init__(self, vendor: Any, target: int, post: PostCreate) -> None:
        self.vendor = vendor
        self.target = target
        self.post = post
        self.answer: Verdict | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vendor, name)

    def post_create(self, post: PostCreate) -> Verdict:
        if post.create_id == self.target:
            self.answer = self.vendor.post_create(self.post)
            raise _ProbeDone
        return self.vendor.post_create(post)  # type: ignore[no-any-return]

    def signature_updated(self, version: int) -> bool:
        return bool(self.vendor.signature_updated(version))


def probe_verdict(factory: Callable[[], Any], setup: O.Setup, ops: Sequence[O.Op],
                  target: int, post: PostCreate, *,
                  spoil: tuple[frozenset[bytes], bool] | None = None,
                  rename: _Rename | None = None, hide_aborts: bool = False
                  ) -> Verdict | None:
    """Replay ``ops`` with a fresh adapter and return its answer to ``post`` in place of
    create ``target``; ``spoil`` and ``rename`` change what the replay shows it (see
    :class:`~reference.model.World` and :class:`_Renamer`)."""
    try:
        vendor: Any = _Guarded(instantiate(factory))
    except Exception:
        return None
    if rename is not None:
        vendor = _Renamer(vendor, rename)
    adapter = _ProbeAdapter(vendor, target, post)
    try:
        World(setup, adapter, spoil=spoil, hide_aborts=hide_aborts).run(ops)
    except _ProbeDone:
        return adapter.answer
    except _AdapterFault:
        # The adapter failed on the counterfactual history: the probe shows nothing. Any
        # other exception is the suite's own and propagates (exit 4).
        return None
    return None


class _AdapterFault(Exception):
    pass


class _Guarded:
    """A probe's adapter: its exceptions become :class:`_AdapterFault`, so the probe can tell
    them from the suite's own."""

    def __init__(self, vendor: Any) -> None:
        self.vendor = vendor

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.vendor, name)

        def call(*args: Any) -> Any:
            try:
                return method(*args)
            except Exception as e:
                raise _AdapterFault from e

        return call


def _pre_detail(pre: PreCreate, req: EcpRequest | None) -> dict[str, str]:
    return {"decision": f"pre_create({pre.path}, silo={pre.silo}) -> {req!r}"}


def _ecp_text(req: EcpRequest | None, ecp: RedirectionEcp | None) -> str:
    if req is None:
        return "none attached"
    if ecp is None:
        return f"requested Size {req.size}; none delivered"
    return (f"Size {ecp.size}, {'acknowledged' if ecp.acknowledged else 'NOT acknowledged'}, "
            f"flags {int(ecp.flags):#x}, FileId {ecp.file_id.hex()}, "
            f"VolumeGuid {ecp.volume_guid.hex()}, {len(ecp.raw)} bytes")


def _same_ecp(mine: RedirectionEcp | None, theirs: RedirectionEcp | None) -> bool:
    """Equal raw bytes (``==``) are not enough: the parsed fields can be rewritten too."""
    return theirs is None or (
        mine is not None and mine.flags == theirs.flags and mine.ids == theirs.ids
        and mine.layer_key == theirs.layer_key and mine.size == theirs.size
        and mine.complete == theirs.complete)


def _changes(mine: Any, theirs: Any) -> str:
    """What differs between the copy an adapter was handed and the suite's own record."""
    out = []
    for name in type(theirs).__slots__:
        a, b = getattr(mine, name, None), getattr(theirs, name, None)
        if isinstance(b, RedirectionEcp) and isinstance(a, RedirectionEcp):
            inner = _changes(a, b)
            if inner:
                out.append(f"ecp: {inner}")
        elif a != b or type(a) is not type(b):
            out.append(f"{name} {b!r} -> {a!r}")
    return "; ".join(out)
