"""The invariant catalogue (SPEC §6): one entry per ID holds its rule, its level, when it is
exercised, how it is violated (in diagnosis order) and what it blames. The oracle, the
diagnosis, the ``invariants`` verb, the certificate and docs/INVARIANTS.md all read it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reference.contract import ECP_SIZE

CONFORMANT = "conformant"
SIGNATURE_CURRENT = "signature-current"
OPTIMIZED = "optimized"
WARNING = "warning"
LEVELS = (CONFORMANT, SIGNATURE_CURRENT, OPTIMIZED)


#: The events a rule is judged at.
CREATE = "create"          # every post-create decision: the exercise counts
PRE = "pre"                # every pre-create answer (ECP hygiene); every clause is checked
SKIP = "skip"              # a SKIP of content without a clean scan: the first clause names it
SCAN = "scan"              # a SCAN that a shadow reference skips: the first clause names it
CALL = "call"              # every call into the adapter (judged by the harness around it)

#: A rule's view of one decision. The checker builds it (``conformance._check.Case``); the
#: table reads its attributes and never imports the model.
Case = Any
Predicate = Callable[[Case], object]


@dataclass(frozen=True, slots=True)
class Clause:
    """One way an invariant is violated: ``when`` holds of the case; ``summary`` says so."""

    #: Diagnosis order within the event: the lowest matching rank names the violation, so
    #: more specific clauses come first (SPEC §6).
    rank: int
    when: Predicate
    summary: str | Callable[[Case], str]
    #: When it blames, in words (the catalogue and docs/INVARIANTS.md print it).
    text: str

    def describe(self, case: Case) -> str:
        return self.summary if isinstance(self.summary, str) else self.summary(case)


@dataclass(frozen=True, slots=True)
class Invariant:
    id: str
    #: The level a violation breaks (``warning`` breaks none).
    level: str
    rule: str
    #: What the invariant holds the adapter to account for.
    blames: str = ""
    #: The event it is judged at.
    event: str = CREATE
    #: When a create exercises it (None: the harness counts it, see ``exercised_text``).
    exercised: Predicate | None = None
    exercised_text: str = ""
    #: How it is violated, in diagnosis order.
    clauses: tuple[Clause, ...] = ()
    #: A SKIP without a clean scan that this rule allows (SIG-*: a completed proactive scan).
    permits: Predicate | None = None


def _sig_gap(c: Case) -> str:
    """Why a redirected skip lacks the proactive scan SIG-1/SIG-2 demand."""
    world = c.world
    if world.aborted_at == c.version:
        return ("the proactive scan under the current version was aborted, and an aborted scan "
                "does not count as completed")
    if world.completed_across_update and world.last_completed == c.version - 1:
        return (f"the last proactive scan completed under v{world.last_completed} (a signature "
                "update landed while it ran; it is credited to the version it started under)")
    return "no proactive scan has completed under the current version"


def _needless(c: Case) -> str:
    return f"scanned a {c.prov_name} open that the {c.shadow} reference skips"


_CATALOGUE = [
    Invariant(
        "SAFE-1", CONFORMANT,
        "no SKIP exposes content without the coverage its level requires (general case)",
        blames="the decision to skip", exercised=lambda c: True,
        exercised_text="every create",
        clauses=(
            Clause(110, lambda c: c.layer and c.key_blind,
                   "skipped without regard to the backing ids: the same answer came for ids no "
                   "scan ever named",
                   "a layer open skipped whatever ids the ECP names (probed with fresh ids)"),
            Clause(1000, lambda c: True,
                   "skipped content that has no clean scan under the current version",
                   "any other SKIP of content without a clean scan under the current version"),
        )),
    Invariant(
        "SAFE-2", CONFORMANT,
        "a new or modified (scratch) file whose content is not covered is scanned",
        blames="the handling of scratch files",
        exercised=lambda c: c.scratch and not c.covered,
        exercised_text="a scratch open whose content has no clean scan under the current version",
        clauses=(
            Clause(70, lambda c: c.scratch and c.key_blind,
                   "skipped a scratch file without regard to which file it was",
                   "a scratch open skipped whatever ids it carries"),
            Clause(100, lambda c: c.scratch,
                   "skipped a new or modified scratch file that was never scanned",
                   "any other unscanned scratch file skipped"),
        )),
    Invariant(
        "SAFE-3", CONFORMANT,
        "no stale \"serviced from layer\" marker: after copy-on-write, a later open of the "
        "same file is not skipped on the strength of its earlier layer provenance",
        blames="a provenance marker kept past copy-on-write",
        exercised=lambda c: c.scratch and c.r.cow_from_layer,
        exercised_text="an open of a scratch file that was copied on write from a placeholder",
        clauses=(
            Clause(80, lambda c: c.scratch and c.r.cow_from_layer and not c.clean_since_cow,
                   "skipped a file that was copied on write, on the strength of what was "
                   "remembered about it while it was a placeholder",
                   "a copied-on-write file skipped, and none of its own scratch content was "
                   "ever scanned clean"),
        )),
    Invariant(
        "SAFE-4", CONFORMANT,
        "flags of an ECP that was not acknowledged are never used to skip",
        blames="trust in an unacknowledged ECP",
        exercised=lambda c: c.ecp is not None and not c.ecp.acknowledged,
        exercised_text="a create whose ECP was not acknowledged",
        clauses=(
            Clause(10, lambda c: c.ecp is not None and not c.ecp.acknowledged and (
                       c.ecp.flags or c.ecp.ids != bytes(32)),
                   lambda c: f"skipped on an ECP that was never acknowledged (it carried flags "
                             f"{int(c.ecp.flags):#x} and ids left over)",
                   "a skip on an unacknowledged ECP that carried flags or ids"),
        )),
    Invariant(
        "SAFE-5", CONFORMANT,
        "only exact valid flag combinations (LAYER, LAYER|REGISTERED, LAYER|REMOTE, "
        "LAYER|REMOTE|REGISTERED, SCRATCH) are honoured; USER_MODE, unknown bits and "
        "contradictions mean \"unknown provenance\"",
        blames="the reading of ECP flags",
        exercised=lambda c: c.bad_ecp,
        exercised_text="an acknowledged ECP with an invalid flag combination or truncated",
        clauses=(
            Clause(20, lambda c: c.bad_ecp,
                   lambda c: "skipped on " + (f"flags {int(c.ecp.flags):#x}" if c.ecp.complete
                                              else f"a truncated {len(c.ecp.raw)}-byte ECP")
                   + ", which mean unknown provenance",
                   "a skip on an acknowledged ECP with invalid flags or truncated"),
        )),
    Invariant(
        "SAFE-6", CONFORMANT,
        "the cache key is the complete backing (VolumeGuid, FileId): no FileId-only keys, "
        "no 64-bit truncation, no container-side ids, no unset (zero) ids of remote or "
        "scratch opens",
        blames="the cache key",
        exercised=lambda c: (c.redirected and not c.remote and c.identity is not None
                             and c.world.id_shared(c.identity)) or (
                                 not c.redirected and c.ecp is not None and c.ecp.acknowledged
                                 and c.ecp.ids[:16] == bytes(16)),
        exercised_text="a layer open whose FileId another file shares, or an acknowledged ECP "
                       "with unset (zero) ids",
        clauses=(
            Clause(40, lambda c: c.key_defect, lambda c: str(c.key_defect),
                   "the skip held with the VolumeGuid or the upper 64 bits of the FileId "
                   "changed, on zero ids, for some ids no scan named but not others, or "
                   "followed the container-side id (probed)"),
            Clause(41, lambda c: c.renamed_scans,
                   "the skip held only for this file's exact ids and name: with them renamed "
                   "wherever the adapter saw them, it scanned; its key confuses this file with "
                   "another (a folded, hashed, truncated or otherwise lossy key)",
                   "with this file's ids and name renamed everywhere, the adapter scanned "
                   "(probed)"),
        )),
    Invariant(
        "SAFE-7", CONFORMANT,
        "cache hits count only for scans under the current signature version, credited "
        "to the version the scan started under",
        blames="the signature version of cache entries",
        exercised=lambda c: not c.covered and c.content.clean,
        exercised_text="content scanned clean, but not under the current version",
        clauses=(
            Clause(140, lambda c: c.content.clean,
                   lambda c: "skipped content scanned clean only under "
                             + ", ".join(f"v{v}" for v in sorted(c.content.clean))
                             + f"; the current version is v{c.version}",
                   "a skip of content scanned clean only under older versions"),
        )),
    Invariant(
        "SAFE-8", CONFORMANT,
        "container context is decided per create; a stopped container's volume gets "
        "ordinary scanning",
        blames="the container context",
        exercised=lambda c: c.r.pre.silo is None and c.r.container is not None,
        exercised_text="an ordinary (non-container) open on a container's volume",
        clauses=(
            Clause(30, lambda c: c.r.pre.silo is None and c.r.container is not None,
                   lambda c: "skipped an ordinary (non-container) open on the volume of "
                             f"container {c.r.container.name} without a clean scan",
                   "an ordinary open on a container's volume skipped"),
        )),
    Invariant(
        "SAFE-9", CONFORMANT,
        "a write to or delete of a file invalidates any cache entry for it: a local layer "
        "file tampered with on the host, a FileId reused after a layer is uninstalled",
        blames="the invalidation of cache entries",
        exercised=lambda c: not c.covered and c.clean_before,
        exercised_text="a file whose earlier content was scanned clean, since written, "
                       "deleted or its id reused",
        clauses=(
            Clause(90, lambda c: c.scratch and c.clean_before,
                   "skipped a scratch file whose earlier content was scanned clean; it has "
                   "been written since (the change was missed)",
                   "a rewritten scratch file skipped"),
            Clause(150, lambda c: c.clean_before,
                   "skipped a file whose earlier content was scanned clean; it has since "
                   "been written, deleted or its id reused",
                   "any other file skipped after a change to what was scanned clean"),
        )),
    Invariant(
        "SAFE-10", CONFORMANT,
        "a scan that ended in ERROR is never cached clean; an aborted proactive scan does "
        "not count as completed",
        blames="trust in failed or aborted scans",
        exercised=lambda c: (not c.covered and c.content.errors) or (
            c.remote and c.world.aborted_at == c.version and not c.sig_ok),
        exercised_text="content whose scan ended in ERROR, or a remote open after the "
                       "current version's proactive scan was aborted",
        clauses=(
            Clause(50, lambda c: c.trusted_abort,
                   "skipped on the strength of an aborted proactive scan: with the abort "
                   "notices withheld it scanned; an aborted scan does not count as completed",
                   "with the abort notices withheld, the adapter scanned (probed)"),
            Clause(130, lambda c: c.content.errors,
                   "skipped content whose only scan ended in ERROR",
                   "a skip of content whose scans ended in ERROR"),
        )),
    Invariant(
        "SAFE-11", CONFORMANT,
        "a file whose current content a scan of this product found infected is never "
        "exposed by a SKIP, whatever its provenance (judged by the file's identity: its "
        "backing ids for layer opens, its own ids otherwise; remote-layer opens carry no "
        "identity and are exempt)",
        blames="exposure of a known detection",
        exercised=lambda c: c.infected, exercised_text="an open of a file found infected",
        clauses=(
            Clause(120, lambda c: c.infected, "a file this product found infected was skipped",
                   "a file found infected skipped, for any other reason"),
        )),
    Invariant(
        "SAFE-12", CONFORMANT,
        "the LayerRootLocations registry key is never read, under any spelling (HKLM\\, "
        "HKEY_LOCAL_MACHINE\\, \\Registry\\Machine\\, any case, extra separators, a "
        "subkey or value beneath it)",
        blames="a registry read", event=CALL,
        exercised_text="every adapter start (registry reads are watched on every call)"),
    Invariant(
        "SAFE-13", CONFORMANT,
        "the adapter never raises, hangs, crashes, answers with an invalid value or "
        "changes what it was handed, on any input (hostile profile included); an adapter "
        "whose answers are not a function of the events it received (a failure that does "
        "not recur on replay) is reported here too, with the unshrunk trace",
        blames="the adapter's robustness", event=CALL,
        exercised_text="every call into the adapter"),
    Invariant(
        "SAFE-14", CONFORMANT,
        "a scan result is credited only to the file it names and the signature version it "
        "ran under: never to another open in flight, the previous file, or the ids an ECP "
        "claimed",
        blames="the crediting of scan results",
        exercised_text="a scan result delivered while other scans were in flight, or for ids "
                       "an ECP claimed (the model counts it as it delivers, see World.ex)",
        clauses=(
            Clause(60, lambda c: c.credited_elsewhere,
                   "the skip rested on another file's scan: with every clean result about "
                   "other files turned to ERROR it scanned, and with this file's own turned "
                   "to ERROR it still skipped; a result was credited to an open in flight, "
                   "the previous file or the ids an ECP claimed, not to the file it named",
                   "with other files' clean results spoiled the adapter scanned, with this "
                   "file's own spoiled it still skipped (probed)"),
        )),
    Invariant(
        "SIG-1", SIGNATURE_CURRENT,
        "registered-layer skips need a proactive scan completed under the current version",
        blames="registered-layer skips", event=SKIP,
        exercised=lambda c: c.registered and not c.sig_ok,
        exercised_text="a registered-layer open with no proactive scan completed under the "
                       "current version",
        permits=lambda c: c.registered and not c.infected and c.sig_ok,
        clauses=(
            Clause(1, lambda c: c.registered and not c.infected,
                   lambda c: f"{c.prov_name} open skipped but {_sig_gap(c)}",
                   "a registered-layer open skipped without that proactive scan"),
        )),
    Invariant(
        "SIG-2", SIGNATURE_CURRENT,
        "remote-layer skips need a proactive scan completed under the current version",
        blames="remote-layer skips", event=SKIP,
        exercised=lambda c: c.remote and not c.sig_ok,
        exercised_text="a remote-layer open with no proactive scan completed under the "
                       "current version",
        permits=lambda c: c.remote and c.sig_ok,
        clauses=(
            Clause(0, lambda c: c.remote,
                   lambda c: f"{c.prov_name} open skipped but {_sig_gap(c)}",
                   "a remote-layer open skipped without that proactive scan"),
        )),
    Invariant(
        "ECP-1", CONFORMANT, "an ECP is attached to every create that has a container context",
        blames="the ECP request", event=PRE,
        exercised=lambda c: c.silo is not None, exercised_text="a create in a container context",
        clauses=(
            Clause(0, lambda c: c.silo is not None and c.request is None,
                   lambda c: f"no ECP attached to a create in container context (silo "
                             f"{c.silo}, {c.path})",
                   "no ECP requested for a container create"),
        )),
    Invariant(
        "ECP-2", WARNING,
        "no ECP is attached outside a container context (warning, not a level breaker)",
        blames="the ECP request", event=PRE,
        exercised=lambda c: c.silo is None, exercised_text="a create outside any container",
        clauses=(
            Clause(1, lambda c: c.silo is None and c.request is not None,
                   lambda c: f"an ECP was attached outside a container context ({c.path})",
                   "an ECP requested for a host create"),
        )),
    Invariant(
        "ECP-3", CONFORMANT, "the ECP Size is 36", blames="the ECP request", event=PRE,
        exercised=lambda c: c.request is not None, exercised_text="an ECP request",
        clauses=(
            Clause(2, lambda c: c.request is not None and c.request.size != ECP_SIZE,
                   lambda c: f"ECP Size {c.request.size}, not {ECP_SIZE}",
                   "an ECP requested with another Size"),
        )),
    Invariant(
        "EFF-1", OPTIMIZED,
        "a local-layer file is scanned at most once per signature version across all "
        "containers, and not at all when install or proactive scans already covered it",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.layer and c.shadow_skips,
        exercised_text="a local-layer open that a reference adapter skips",
        clauses=(Clause(30, lambda c: c.layer, _needless, "a local-layer open scanned"),)),
    Invariant(
        "EFF-2", OPTIMIZED,
        "remote-layer opens are not scanned (beyond what signature-current requires)",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.remote and c.shadow_skips,
        exercised_text="a remote-layer open that a reference adapter skips",
        clauses=(Clause(32, lambda c: c.remote, _needless, "a remote-layer open scanned"),)),
    Invariant(
        "EFF-3", OPTIMIZED,
        "registered-layer opens are not scanned (beyond what signature-current requires)",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.registered and c.shadow_skips and not c.no_registered_flag,
        exercised_text="a registered-layer open that a reference adapter skips",
        clauses=(Clause(31, lambda c: c.registered, _needless,
                        "a registered-layer open scanned"),)),
    Invariant(
        "EFF-4", OPTIMIZED, "the first container on freshly installed layers costs zero scans",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.redirected and c.r.container is not None
        and c.r.container.first_on_fresh,
        exercised_text="an open in the first container on freshly installed layers",
        clauses=(Clause(20, lambda c: c.r.container is not None
                        and c.r.container.first_on_fresh and not c.remote, _needless,
                        "the first container on fresh layers scanned a layer file"),)),
    Invariant(
        "EFF-5", OPTIMIZED,
        "after a proactive scan completes under the current version, redirected opens "
        "cost zero scans again",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.redirected and c.sig_ok,
        exercised_text="a redirected open after a proactive scan completed under the "
                       "current version",
        clauses=(Clause(10, lambda c: c.sig_ok and c.shadow == SIGNATURE_CURRENT, _needless,
                        "a redirected open scanned after a completed proactive scan"),)),
    Invariant(
        "EFF-6", OPTIMIZED,
        "with the no-registered-flag profile, registered-layer files are served from the "
        "cache, not rescanned",
        blames="needless scans", event=SCAN,
        exercised=lambda c: c.registered and c.shadow_skips and c.no_registered_flag,
        exercised_text="a registered-layer open (no-registered-flag profile) that a "
                       "reference adapter skips",
        clauses=(Clause(0, lambda c: c.registered and c.no_registered_flag, _needless,
                        "a registered-layer open scanned under the no-registered-flag "
                        "profile"),)),
]

INVARIANTS: dict[str, Invariant] = {inv.id: inv for inv in _CATALOGUE}
IDS: tuple[str, ...] = tuple(INVARIANTS)


def clauses(event: str) -> tuple[tuple[str, Clause], ...]:
    """Every (ID, clause) judged at ``event``, in diagnosis order."""
    found = [(inv.id, c) for inv in _CATALOGUE for c in inv.clauses
             if (SKIP if inv.event in (CREATE, SKIP) else inv.event) == event]
    return tuple(sorted(found, key=lambda ic: ic[1].rank))


def counted_at(event: str) -> tuple[tuple[str, Predicate], ...]:
    """Every (ID, exercised predicate) counted at ``event`` (creates count SKIP and SCAN
    rules too: they judge every redirected create)."""
    events = (CREATE, SKIP, SCAN) if event == CREATE else (event,)
    return tuple((inv.id, inv.exercised) for inv in _CATALOGUE
                 if inv.event in events and inv.exercised is not None)


def describe(inv: Invariant) -> dict[str, object]:
    """One entry as data (``invariants --json``)."""
    return {"id": inv.id, "level": inv.level, "rule": inv.rule, "blames": inv.blames,
            "judged at": inv.event, "exercised": inv.exercised_text,
            "violated": [{"rank": c.rank, "when": c.text} for c in inv.clauses]}


def markdown() -> str:
    """docs/INVARIANTS.md: the catalogue, then the diagnosis order of an unsafe SKIP."""
    lines = ["# Invariant catalogue", "",
             "Generated from `conformance/_invariants.py` by `wcifs-conformance invariants "
             "--markdown`; edit the table, not this file.", ""]
    for inv in _CATALOGUE:
        lines += [f"## {inv.id} ({inv.level})", "", inv.rule, "",
                  f"- **Blames:** {inv.blames}", f"- **Judged at:** {inv.event}",
                  f"- **Exercised by:** {inv.exercised_text}"]
        lines += [f"- **Violated ({c.rank}):** {c.text}" for c in inv.clauses]
        lines.append("")
    for event, title in ((SKIP, "an unsafe SKIP"), (SCAN, "a needless SCAN"),
                         (PRE, "a pre-create answer")):
        lines += [f"## Diagnosis order: {title}", "",
                  "The first clause that holds names the violation." if event != PRE else
                  "Every clause is checked.", ""]
        lines += [f"{n}. {i}: {c.text}" for n, (i, c) in enumerate(clauses(event), 1)]
        lines.append("")
    return "\n".join(lines)


def permits() -> tuple[Predicate, ...]:
    return tuple(inv.permits for inv in _CATALOGUE if inv.permits is not None)


def rests_on(level: str) -> tuple[str, ...]:
    """The invariants a level rests on: its own, and those of ``conformant`` beneath it."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    own = {CONFORMANT, level}
    return tuple(i for i in IDS if INVARIANTS[i].level in own)


@dataclass(frozen=True, slots=True)
class LevelVerdict:
    """Whether a level is met, and why not: the one rule every face presents (SPEC §5).

    A level is met when no invariant it rests on failed and every one of them was exercised:
    a run that never tried an invariant cannot vouch for it."""

    level: str
    failed: tuple[str, ...]
    unexercised: tuple[str, ...]

    @property
    def met(self) -> bool:
        return not self.failed and not self.unexercised

    @property
    def status(self) -> str:
        return "met" if self.met else ("failed" if self.failed else "not-exercised")

    def why(self) -> str:
        if self.failed:
            return f"{self.level} not met: {', '.join(self.failed)} failed"
        if self.unexercised:
            return (f"{self.level} not established: {', '.join(self.unexercised)} never "
                    "exercised (run more examples)")
        n = len(rests_on(self.level))
        return f"{self.level} met: all {n} invariants it rests on exercised, none failed"


def level_verdicts(statuses: Mapping[str, str]) -> dict[str, LevelVerdict]:
    """Every level's verdict from per-invariant statuses (``pass``, ``fail``,
    ``not-exercised``). An ID absent from ``statuses`` is left out: a certificate written
    before the catalogue gained it did not judge it."""
    out = {}
    for level in LEVELS:
        ids = [i for i in rests_on(level) if i in statuses]
        out[level] = LevelVerdict(
            level,
            tuple(i for i in ids if statuses[i] == "fail"),
            tuple(i for i in ids if statuses[i] == "not-exercised"))
    return out
