"""``merge``: the shards of a run (``certify --shard I/N``) joined into its result, the one
``certify -j N`` with the same seed would have reached (SPEC §8).

Each shard's bundle holds its slice (``slice.json``): the counts, its violations' first
occurrences, and every violation it minimized, by scope, with where it was found (its own
slice, or shard 1's workloads). The merge adds the counts in shard order and takes each
violation from the lowest shard that found it in its slice, then from the workloads, as a
``-j N`` run does with its workers' slices; no adapter is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reference import ops as O
from reference.contract import AdapterInfo

from . import _slices as slices
from ._engine import ConformanceResult, ViolationReport, WorkloadResult, _conclude
from ._invariants import INVARIANTS
from ._profiles import PROFILES


class ShardError(ValueError):
    """The shards do not make one run: another suite, adapter, seed or split, a shard
    missing or given twice."""


#: What every shard of one run shares, as (name, where in the certificate).
SAME = (
    ("suite version", ("suite", "version")),
    ("suite commit", ("suite", "commit")),
    ("adapter", ("adapter", "spec")),
    ("seed", ("run", "seed")),
    ("profile", ("run", "settings", "based_on")),
    ("budget", ("run", "settings", "max_examples")),
    ("isolation", ("run", "isolation")),
    ("call timeout", ("run", "call_timeout")),
    ("number of shards", ("run", "shard", "of")),
    ("expectation file", ("run", "expectations", "sha256")),
    ("required levels", ("verdict", "required")),
)


def _at(cert: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = cert
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def check_shards(shards: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
    """``shards``: (name, certificate). Their order by index, or :class:`ShardError`."""
    if not shards:
        raise ShardError("no shards given")
    for name, cert in shards:
        if not isinstance(_at(cert, ("run", "shard")), Mapping):
            raise ShardError(f"{name} is not a shard's bundle (certify --shard I/N makes one)")
    first_name, first = shards[0]
    for what, path in SAME:
        for name, cert in shards[1:]:
            if _at(cert, path) != _at(first, path):
                raise ShardError(f"{name} and {first_name} are not shards of one run: their "
                                 f"{what} differs ({_at(cert, path)!r} against "
                                 f"{_at(first, path)!r})")
    of = int(first["run"]["shard"]["of"])
    seen: dict[int, str] = {}
    for name, cert in shards:
        index = int(cert["run"]["shard"]["index"])
        if index in seen:
            raise ShardError(f"shard {index} of {of} is given twice ({seen[index]} and {name})")
        seen[index] = name
    missing = [i for i in range(1, of + 1) if i not in seen]
    if missing:
        raise ShardError(f"shard{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(str, missing))} of {of} missing: every slice of the "
                         "budget must be merged, once")
    return sorted(seen)


def report_from_trace(trace: Mapping[str, Any]) -> ViolationReport:
    inv = str(trace["invariant"])
    return ViolationReport(
        inv, INVARIANTS[inv].level, str(trace.get("scope") or "all"), str(trace["summary"]),
        dict(trace.get("detail") or {}), O.setup_from_json(trace["setup"]),
        tuple(O.op_from_json(o) for o in trace["ops"]), list(trace.get("steps") or []),
        bool(trace.get("nondeterministic")), list(trace.get("calls") or []),
        trace.get("failing_call"))


def merge_shards(shards: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
                 ) -> ConformanceResult:
    """``shards``: (certificate, slice.json) of every shard of one run, checked by
    :func:`check_shards`, in any order."""
    ordered = sorted(shards, key=lambda s: int(s[0]["run"]["shard"]["index"]))
    cert = ordered[0][0]
    run, settings = cert["run"], cert["run"]["settings"]
    expected = (run.get("expectations") or {}).get("expected")
    tolerated = frozenset(expected or ())
    parts = [slices.slice_from_json(dict(s), tolerated) for _, s in ordered]
    merged = slices.merge(parts, tolerated)
    tally = merged.tally
    first_slice = ordered[0][1]
    slices.absorb(tally, slices.tally_from_json(first_slice["workloads"], tolerated))

    reports: dict[tuple[str, str], ViolationReport] = {}
    fatal = merged.fatal
    if fatal is not None:
        holder = next(s for p, (_, s) in zip(parts, ordered, strict=True)
                      if p.fatal is not None)
        reports[("all", fatal.id)] = _report(holder, ("all", fatal.id), "slice")
    for _, payload in ordered:  # each violation from the lowest shard's own slice
        for r in payload["reports"]:
            key = (str(r["scope"]), str(r["trace"]["invariant"]))
            if r["origin"] == "slice" and key in tally.recorded and key not in reports:
                reports[key] = report_from_trace(r["trace"])
    for r in first_slice["reports"]:  # then what shard 1's workloads found
        key = (str(r["scope"]), str(r["trace"]["invariant"]))
        if r["origin"] == "workloads" and key not in reports:
            reports[key] = report_from_trace(r["trace"])

    info_fields = dict(cert["adapter"].get("info") or {})
    known = {f.name for f in dataclasses.fields(AdapterInfo)}
    info = AdapterInfo(**{k: v for k, v in info_fields.items() if k in known})
    profile = str(settings["based_on"])
    return _conclude(
        spec=str(cert["adapter"]["spec"]), info=info, profile=profile,
        prof=PROFILES[profile], seed=int(run["seed"]), examples=int(settings["max_examples"]),
        tally=tally, reports=reports, fatal=fatal, generated=merged.generated,
        efficiency=[WorkloadResult(**w) for w in first_slice["efficiency"]],
        seconds=sum(float(c["run"].get("seconds", 0.0)) for c, _ in ordered),
        timeouts=sum(int(c["stats"].get("timeouts", 0)) for c, _ in ordered),
        mode=str(run["isolation"]), call_timeout=float(run["call_timeout"]),
        workers=int(run["shard"]["of"]),
        started=min(datetime.fromisoformat(c["run"]["started"]) for c, _ in ordered),
        run_versions={
            "suite": cert["suite"]["version"], "suite_commit": cert["suite"]["commit"],
            "protocol": str(cert["suite"]["protocol_version"]),
            "hypothesis": run["versions"]["hypothesis"], "python": run["versions"]["python"],
            "platform": run["platform"]["platform"]},
        expected=None if expected is None else dict(expected), shard=None, payload=None)


def _report(payload: Mapping[str, Any], key: tuple[str, str], origin: str
            ) -> ViolationReport:
    for r in payload["reports"]:
        if (r["scope"], r["trace"]["invariant"]) == key and r["origin"] == origin:
            return report_from_trace(r["trace"])
    raise ShardError(f"a shard's slice.json lacks the report of its {key[1]}")
