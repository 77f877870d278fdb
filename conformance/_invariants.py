"""The invariant catalogue (SPEC §6): stable IDs, their rules, and the level each guards."""

from __future__ import annotations

from dataclasses import dataclass

CONFORMANT = "conformant"
SIGNATURE_CURRENT = "signature-current"
OPTIMIZED = "optimized"
WARNING = "warning"
LEVELS = (CONFORMANT, SIGNATURE_CURRENT, OPTIMIZED)


@dataclass(frozen=True, slots=True)
class Invariant:
    id: str
    #: The level a violation breaks (``warning`` breaks none).
    level: str
    rule: str


_CATALOGUE = [
    Invariant("SAFE-1", CONFORMANT,
              "no SKIP exposes content without the coverage its level requires (general case)"),
    Invariant("SAFE-2", CONFORMANT,
              "a new or modified (scratch) file whose content is not covered is scanned"),
    Invariant("SAFE-3", CONFORMANT,
              "no stale \"serviced from layer\" marker: after copy-on-write, a later open of the "
              "same file is not skipped on the strength of its earlier layer provenance"),
    Invariant("SAFE-4", CONFORMANT,
              "flags of an ECP that was not acknowledged are never used to skip"),
    Invariant("SAFE-5", CONFORMANT,
              "only exact valid flag combinations (LAYER, LAYER|REGISTERED, LAYER|REMOTE, "
              "LAYER|REMOTE|REGISTERED, SCRATCH) are honoured; USER_MODE, unknown bits and "
              "contradictions mean \"unknown provenance\""),
    Invariant("SAFE-6", CONFORMANT,
              "the cache key is the complete backing (VolumeGuid, FileId): no FileId-only keys, "
              "no 64-bit truncation, no container-side ids, no unset (zero) ids of remote or "
              "scratch opens"),
    Invariant("SAFE-7", CONFORMANT,
              "cache hits count only for scans under the current signature version, credited "
              "to the version the scan started under"),
    Invariant("SAFE-8", CONFORMANT,
              "container context is decided per create; a stopped container's volume gets "
              "ordinary scanning"),
    Invariant("SAFE-9", CONFORMANT,
              "a write to or delete of a file invalidates any cache entry for it: a local layer "
              "file tampered with on the host, a FileId reused after a layer is uninstalled"),
    Invariant("SAFE-10", CONFORMANT,
              "a scan that ended in ERROR is never cached clean; an aborted proactive scan does "
              "not count as completed"),
    Invariant("SAFE-11", CONFORMANT,
              "a file whose current content a scan of this product found infected is never "
              "exposed by a SKIP, whatever its provenance (judged by the file's identity: its "
              "backing ids for layer opens, its own ids otherwise; remote-layer opens carry no "
              "identity and are exempt)"),
    Invariant("SAFE-12", CONFORMANT,
              "the LayerRootLocations registry key is never read, under any spelling (HKLM\\, "
              "HKEY_LOCAL_MACHINE\\, \\Registry\\Machine\\, any case, extra separators, a "
              "subkey or value beneath it)"),
    Invariant("SAFE-13", CONFORMANT,
              "the adapter never raises, hangs, crashes, answers with an invalid value or "
              "changes what it was handed, on any input (hostile profile included); an adapter "
              "whose answers are not a function of the events it received (a failure that does "
              "not recur on replay) is reported here too, with the unshrunk trace"),
    Invariant("SAFE-14", CONFORMANT,
              "a scan result is credited only to the file it names and the signature version it "
              "ran under: never to another open in flight, the previous file, or the ids an ECP "
              "claimed"),
    Invariant("SIG-1", SIGNATURE_CURRENT,
              "registered-layer skips need a proactive scan completed under the current version"),
    Invariant("SIG-2", SIGNATURE_CURRENT,
              "remote-layer skips need a proactive scan completed under the current version"),
    Invariant("ECP-1", CONFORMANT,
              "an ECP is attached to every create that has a container context"),
    Invariant("ECP-2", WARNING,
              "no ECP is attached outside a container context (warning, not a level breaker)"),
    Invariant("ECP-3", CONFORMANT, "the ECP Size is 36"),
    Invariant("EFF-1", OPTIMIZED,
              "a local-layer file is scanned at most once per signature version across all "
              "containers, and not at all when install or proactive scans already covered it"),
    Invariant("EFF-2", OPTIMIZED,
              "remote-layer opens are not scanned (beyond what signature-current requires)"),
    Invariant("EFF-3", OPTIMIZED,
              "registered-layer opens are not scanned (beyond what signature-current requires)"),
    Invariant("EFF-4", OPTIMIZED,
              "the first container on freshly installed layers costs zero scans"),
    Invariant("EFF-5", OPTIMIZED,
              "after a proactive scan completes under the current version, redirected opens "
              "cost zero scans again"),
    Invariant("EFF-6", OPTIMIZED,
              "with the no-registered-flag profile, registered-layer files are served from the "
              "cache, not rescanned"),
]

INVARIANTS: dict[str, Invariant] = {inv.id: inv for inv in _CATALOGUE}
IDS: tuple[str, ...] = tuple(INVARIANTS)

#: Violations that end a run at once: they break ``conformant`` and so every level.
FATAL = frozenset(i for i, inv in INVARIANTS.items() if inv.level == CONFORMANT)


def levels_met(failed: set[str]) -> dict[str, bool]:
    """Levels follow from the failed invariants exactly as SPEC §5 says."""
    conformant = not any(INVARIANTS[i].level == CONFORMANT for i in failed)
    sig = conformant and not any(INVARIANTS[i].level == SIGNATURE_CURRENT for i in failed)
    optimized = conformant and not any(INVARIANTS[i].level == OPTIMIZED for i in failed)
    return {CONFORMANT: conformant, SIGNATURE_CURRENT: sig, OPTIMIZED: optimized}
