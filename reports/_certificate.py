"""``certificate.json``: what a run established, as the stable keys of SPEC §8.

Built from a :class:`conformance.ConformanceResult` and checked against the JSON Schema
shipped beside this module before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from conformance._invariants import (
    CONFORMANT,
    IDS,
    INVARIANTS,
    LEVELS,
    OPTIMIZED,
    SIGNATURE_CURRENT,
)

if TYPE_CHECKING:
    from conformance._engine import ConformanceResult

FORMAT = "wcifs-conformance-certificate"
#: 2 added ``coverage``; ``verify`` still accepts version 1 certificates (no coverage).
FORMAT_VERSION = 2
#: The first format version whose certificates record ``coverage``.
COVERAGE_SINCE = 2
#: The breakdowns of an invariant's ``exercised`` count, each summing to it.
COVERAGE_DIMENSIONS = ("operation", "profile", "scene")
SUITE_NAME = "wcifs-av-conformance"
SCHEMA_FILE = "certificate.schema.json"
#: What the efficiency workloads compare against (the engine runs them on this reference).
EFFICIENCY_REFERENCE = "WCIFS reference adapter (signature-current)"


class CertificateError(ValueError):
    """A certificate that does not validate against the schema."""


def level_invariants(level: str) -> tuple[str, ...]:
    """The invariants a level rests on: its own, and those of ``conformant`` beneath it."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    own = {CONFORMANT} if level == CONFORMANT else {CONFORMANT, level}
    return tuple(i for i in IDS if INVARIANTS[i].level in own)


def levels_from(invariants: Mapping[str, Mapping[str, Any]]) -> dict[str, bool]:
    """The levels the invariant results imply (SPEC §5), from their catalogue levels."""
    failed = {i for i, r in invariants.items() if r.get("status") == "fail"}

    def clean(level: str) -> bool:
        return not any(INVARIANTS[i].level == level for i in failed if i in INVARIANTS)

    conformant = clean(CONFORMANT)
    return {CONFORMANT: conformant,
            SIGNATURE_CURRENT: conformant and clean(SIGNATURE_CURRENT),
            OPTIMIZED: conformant and clean(OPTIMIZED)}


def unexercised(invariants: Mapping[str, Mapping[str, Any]], levels: Sequence[str]) -> list[str]:
    """IDs that the given levels rest on and that the run never exercised, in catalogue order.

    An ID that ``invariants`` does not name at all is left out: a certificate written before
    the catalogue gained it did not judge it (the schema requires every ID of the catalogue
    from format version 2)."""
    wanted = {i for level in levels for i in level_invariants(level)}
    return [i for i in IDS if i in wanted and i in invariants
            and int(invariants[i].get("exercised", 0)) <= 0]


def _counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Most exercised first, then by name, so the same run writes the same JSON."""
    items = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    return dict(items)


def coverage_of(result: ConformanceResult) -> dict[str, dict[str, dict[str, int]]]:
    """Every invariant's breakdowns (SPEC §6 "exercised") by operation kind, platform profile
    and scene; empty breakdowns where the result recorded none (older engines, hand-made
    results)."""
    recorded: Mapping[str, Mapping[str, Mapping[str, int]]] = (
        getattr(result, "coverage", None) or {})
    out: dict[str, dict[str, dict[str, int]]] = {}
    for inv_id in result.invariants:
        entry = recorded.get(inv_id) or {}
        out[inv_id] = {dim: _counts(entry.get(dim) or {}) for dim in COVERAGE_DIMENSIONS}
    return out


def _positive(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


def _names(ids: Sequence[str], n: int = 3) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def coverage_problems(invariants: Mapping[str, Mapping[str, Any]],
                      coverage: object) -> list[str]:
    """How ``coverage`` disagrees with the invariants' ``exercised`` counts: every invariant
    needs an entry whose breakdowns each sum to its count, and one that was exercised at all
    needs a non-empty operation breakdown."""
    if not isinstance(coverage, Mapping):
        return ["the certificate has no 'coverage' object"]
    problems = [f"coverage names {i}, which is not among the invariants"
                for i in coverage if i not in invariants]
    exercised = [i for i, r in invariants.items() if _positive(r.get("exercised"))]
    if exercised and not any(isinstance(e, Mapping) and any(e.get(d) for d in COVERAGE_DIMENSIONS)
                             for e in coverage.values()):
        were = "invariants were" if len(exercised) > 1 else "invariant was"
        return [*problems, f"every breakdown is empty, but {len(exercised)} {were} exercised "
                f"({_names(exercised)}): the run recorded no coverage"]
    for inv_id, r in invariants.items():
        n = r.get("exercised")
        entry = coverage.get(inv_id)
        if not isinstance(entry, Mapping):
            problems.append(f"{inv_id} has no coverage entry")
            continue
        if not isinstance(n, int) or isinstance(n, bool):
            problems.append(f"{inv_id} has no integer exercised count ({n!r})")
            continue
        if n > 0 and not entry.get("operation"):
            problems.append(f"{inv_id} was exercised {n} times but its operation breakdown "
                            "is empty")
            continue
        for dim in COVERAGE_DIMENSIONS:
            counts = entry.get(dim)
            if not isinstance(counts, Mapping) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0
                    for v in counts.values()):
                problems.append(f"{inv_id}'s {dim} breakdown is not a map of counts")
                continue
            total = sum(counts.values())
            if total != n:
                problems.append(f"{inv_id}'s {dim} breakdown sums to {total}, but it was "
                                f"exercised {n} times")
    return problems


def build_certificate(
    result: ConformanceResult,
    *,
    required: Sequence[str],
    benchmark: Mapping[str, Any],
    traces: Mapping[str, str],
    signing_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The certificate of ``result``; ``traces`` maps IDs to trace paths in the bundle."""
    invariants: dict[str, dict[str, Any]] = {}
    for inv_id, r in result.invariants.items():
        v = r.violation
        invariants[inv_id] = {
            "status": r.status,
            "exercised": r.exercised,
            "level": r.level,
            "rule": r.rule,
            "first_counterexample": traces.get(inv_id),
            "summary": v.summary if v is not None else None,
            "steps": len(v.steps) if v is not None else None,
            "scope": v.scope if v is not None else None,
        }
    levels = {level: bool(result.levels[level]) for level in LEVELS}
    missing = unexercised(invariants, required)
    not_met = [level for level in required if not levels[level]]
    versions = result.versions
    info = result.adapter_info
    info_fields = (dataclasses.asdict(info) if dataclasses.is_dataclass(info)
                   else {"name": info.name, "version": info.version})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "levels": levels,
        "verdict": {
            "required": list(required),
            "met": not not_met and not missing,
            "not_met": not_met,
            "unexercised": missing,
        },
        "invariants": invariants,
        "coverage": coverage_of(result),
        "suite": {
            "name": SUITE_NAME,
            "version": versions.get("suite", "unknown"),
            "commit": versions.get("suite_commit", "unknown"),
            "protocol_version": int(versions.get("protocol", "0") or 0),
        },
        "adapter": {
            "spec": result.adapter_spec,
            "name": info.name,
            "version": info.version,
            "info": info_fields,
        },
        "run": {
            "profile": result.profile,
            "seed": result.seed,
            "settings": dict(result.settings),
            "started": result.started,
            "finished": result.finished,
            "seconds": float(result.stats.get("seconds", 0.0)),
            "versions": {
                "hypothesis": versions.get("hypothesis", "unknown"),
                "python": versions.get("python", platform.python_version()),
            },
            "platform": {
                "platform": versions.get("platform", platform.platform()),
                "system": platform.system(),
                "machine": platform.machine(),
            },
        },
        "efficiency": {
            "reference": EFFICIENCY_REFERENCE,
            "shadow": result.stats.get("efficiency_shadow"),
            "workloads": [
                {
                    "name": w.name,
                    "title": w.title,
                    "containers": w.containers,
                    "invariant": w.invariant,
                    "scans_per_container": w.scans_per_container,
                    "reference_scans_per_container": w.reference_scans_per_container,
                }
                for w in result.efficiency
            ],
        },
        "benchmark": dict(benchmark),
        "stats": dict(result.stats),
        "signing": None if signing_fingerprint is None else {
            "algorithm": "Ed25519", "public_key_fingerprint": signing_fingerprint},
    }


@functools.cache
def schema() -> dict[str, Any]:
    """The certificate's JSON Schema, read from the installed package."""
    text = resources.files("reports").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_errors(certificate: object) -> list[str]:
    """Every way ``certificate`` breaks the schema, as ``path: message`` lines."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(certificate), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in errors]


def validate_certificate(certificate: object) -> None:
    """Raise :class:`CertificateError` naming the first problems if the schema rejects it."""
    errors = schema_errors(certificate)
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise CertificateError("certificate does not match its schema: "
                               + "; ".join(errors[:3]) + more)
