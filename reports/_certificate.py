"""``certificate.json``: what a run established, as the stable keys of SPEC §8.

Built from a :class:`conformance.ConformanceResult` and checked against the JSON Schema
shipped beside this module before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from conformance import CUSTOM, LEVELS, PROFILES

if TYPE_CHECKING:
    from conformance import ConformanceResult

FORMAT = "wcifs-conformance-certificate"
#: 2 added ``coverage``; 3 made a level met only when every invariant it rests on was
#: exercised (``conformance.level_verdicts``), added ``verdict.why``, the ``custom`` profile
#: (a budget other than the profile's), ``run.stopped_early`` and ``adapter.ci_commit``.
#: 4 added ``run.isolation`` (the adapter ran in its own process, or ``in-process``) and
#: ``run.call_timeout``. 5 added ``run.expectations`` (``--expect``). 6 added
#: ``run.workers`` (``-j N``), ``run.shard`` (a partial bundle of ``--shard I/N``) and
#: ``run.merged`` (a bundle ``merge`` made of shards). ``verify`` still accepts
#: certificates of every earlier version.
FORMAT_VERSION = 6
#: The first format version whose certificates record ``coverage``.
COVERAGE_SINCE = 2
#: The first format version whose ``levels`` are the level verdicts (met: nothing failed and
#: everything exercised), whose reduced budgets are labelled ``custom`` and whose
#: ``stats.examples`` counts generated examples only.
VERDICTS_SINCE = 3
#: The breakdowns of an invariant's ``exercised`` count, each summing to it.
COVERAGE_DIMENSIONS = ("operation", "profile", "scene")
SUITE_NAME = "wcifs-av-conformance"
SCHEMA_FILE = "certificate.schema.json"
#: CI variables that name the commit being built: in a vendor's pipeline, the adapter's.
CI_COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA")


class CertificateError(ValueError):
    """A certificate that does not validate against the schema."""


def ci_commit(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The commit the CI job running the suite builds (``GITHUB_SHA``, ``CI_COMMIT_SHA``),
    and which variable named it: the adapter's commit, never the suite's."""
    env = os.environ if environ is None else environ
    for var in CI_COMMIT_VARIABLES:
        value = env.get(var, "").strip()
        if value:
            return {"commit": value[:200], "variable": var}
    return None


def run_label(profile: str, settings: Mapping[str, Any]) -> tuple[str, str | None]:
    """(what a run may be called, the profile it was based on): a run of a budget other than
    its profile's is ``custom``, whatever the result calls it."""
    if profile in PROFILES:
        return (profile if settings.get("max_examples") == PROFILES[profile].max_examples
                else CUSTOM), profile
    based_on = settings.get("based_on")
    return profile, based_on if isinstance(based_on, str) and based_on in PROFILES else None


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
    expectations_file: Mapping[str, str] | None = None,
    merged_from: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The certificate of ``result``; ``traces`` maps IDs to trace paths in the bundle;
    ``expectations_file`` (``file`` and ``sha256``) names the expectation file the run
    was given, if any; ``merged_from``, the manifests' SHA-256 of the shards a merged
    bundle was made of.

    ``levels`` and ``verdict`` are the result's level verdicts: a level is met when nothing
    it rests on failed and everything it rests on was exercised."""
    unknown = [lv for lv in required if lv not in LEVELS]
    if unknown or not required:
        raise ValueError(f"required levels must be among {', '.join(LEVELS)}, not "
                         f"{', '.join(unknown) or 'none'}")
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
    verdicts = result.verdicts
    levels = {level: verdicts[level].met for level in LEVELS}
    not_met = [level for level in required if not levels[level]]
    missing = {i for level in required for i in verdicts[level].unexercised}
    profile, based_on = run_label(result.profile, result.settings)
    settings = {**result.settings, "based_on": based_on}
    versions = result.versions
    info = result.adapter_info
    info_fields = (dataclasses.asdict(info) if dataclasses.is_dataclass(info)
                   else {"name": info.name, "version": info.version})
    adapter: dict[str, Any] = {
        "spec": result.adapter_spec,
        "name": info.name,
        "version": info.version,
        "info": info_fields,
    }
    ci = ci_commit()
    if ci is not None:
        adapter["ci_commit"] = ci
    cert: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "levels": levels,
        "verdict": {
            "required": list(required),
            "met": not not_met,
            "not_met": not_met,
            "unexercised": [i for i in result.invariants if i in missing],
            "why": {level: verdicts[level].why() for level in LEVELS},
        },
        "invariants": invariants,
        "coverage": coverage_of(result),
        "suite": {
            "name": SUITE_NAME,
            "version": versions.get("suite", "unknown"),
            "commit": versions.get("suite_commit", "unknown"),
            "protocol_version": int(versions.get("protocol", "0") or 0),
        },
        "adapter": adapter,
        "run": {
            "profile": profile,
            "seed": result.seed,
            "settings": settings,
            "stopped_early": bool(result.stopped_early),
            "isolation": str(result.settings.get("isolation", "in-process")),
            "workers": int(result.settings.get("workers", 1)),
            "call_timeout": float(result.settings.get("call_timeout", 0.0)),
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
            "reference": result.efficiency_reference,
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
    compared = result.expectations
    if compared is not None:
        named = dict(expectations_file or {})
        named.setdefault("file", "(given to run_conformance)")
        named.setdefault("sha256", hashlib.sha256(
            json.dumps(compared.expected, sort_keys=True).encode()).hexdigest())
        cert["run"]["expectations"] = {**named, **compared.as_json()}
    if result.shard is not None:
        cert["run"]["shard"] = {"index": result.shard[0], "of": result.shard[1]}
    if merged_from is not None:
        cert["run"]["merged"] = {"shards": len(merged_from), "manifests": list(merged_from)}
    return cert


@functools.cache
def schema() -> dict[str, Any]:
    """The certificate's JSON Schema, read from the installed package."""
    text = resources.files("reports").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_errors(certificate: object) -> list[str]:
    """Every way ``certificate`` breaks the schema, as ``path: message`` lines."""
    import jsonschema  # loads here, not with ``reports``

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
