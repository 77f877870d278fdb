"""``compare``: what changed between two certification bundles (SPEC §8), and whether it is
a regression.

A regression is a level lost (met, now not met), an invariant that now fails and did not
before (it passed, was not exercised, or was not recorded at all), or a standard workload
(SPEC §9) costing more scans per container than before. Nothing else gates: in particular
the hot-path figures are shown but never judged, because timings are noisy.

Certificates of every format version compare: a key one of them does not have is "not
recorded", never an error. Bundles of different adapters, profiles, seeds, budgets, suite
versions or format versions compare too, under a notice saying what differs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ._errors import ConformanceError
from ._invariants import IDS, INVARIANTS, LEVELS

__all__ = [
    "Comparison",
    "HotPathRow",
    "InvariantChange",
    "LevelChange",
    "NotABundle",
    "WorkloadChange",
    "compare",
    "diff",
    "load_certificate",
    "render_markdown",
    "render_text",
]

CERTIFICATE = "certificate.json"
#: The ``format`` of a certificate (``reports._certificate.FORMAT``; not imported, so that
#: ``compare`` loads neither ``reports`` nor its dependencies).
CERTIFICATE_FORMAT = "wcifs-conformance-certificate"
#: The first format version whose ``levels`` need every invariant exercised
#: (``reports._certificate.VERDICTS_SINCE``).
VERDICTS_SINCE = 3
EXIT_OK, EXIT_REGRESSION = 0, 1

PASS, FAIL, NOT_EXERCISED = "pass", "fail", "not-exercised"

# Level changes.
LOST, GAINED, UNCHANGED, UNRECORDED = "lost", "gained", "unchanged", "not recorded"
# Invariant changes, in the order they are listed.
BROKEN = "broken"
FIXED = "fixed"
STILL_FAILING = "still failing"
NO_LONGER_EXERCISED = "no longer exercised"
NEWLY_EXERCISED = "newly exercised"
ONLY_NEW = "recorded only in NEW"
ONLY_OLD = "recorded only in OLD"
CHANGED = "changed"
INVARIANT_KINDS = (BROKEN, FIXED, STILL_FAILING, NO_LONGER_EXERCISED, NEWLY_EXERCISED,
                   ONLY_NEW, ONLY_OLD, CHANGED)
# Workload changes.
MORE_SCANS, FEWER_SCANS, NOT_COMPARABLE = "more scans", "fewer scans", "not comparable"
#: Scans per container are ratios of whole numbers: anything closer is the same figure.
_EPSILON = 1e-9

_HOT_PATH_ROWS = (
    ("adapter", "post_create_hit_ns", "post_create, local-layer cache hit", "ns"),
    ("adapter", "post_create_ratio", "post_create, ratio to the dict.get floor", "x"),
    ("adapter", "pre_create_ns", "pre_create, container context", "ns"),
    ("adapter", "pre_create_ratio", "pre_create, ratio to the dict.get floor", "x"),
    ("", "floor_dict_get_ns", "dict.get floor", "ns"),
    ("native", "post_create_ns", "native post_create (lib: adapters)", "ns"),
    ("native", "ratio", "native post_create, ratio to the native floor", "x"),
)
NOISE = "timings are noisy: shown, never gating"


class NotABundle(ConformanceError):
    """A folder that is missing, or holds no readable certificate (exit 2)."""


# --- reading --------------------------------------------------------------------------------
def load_certificate(path: Path, role: str = "bundle") -> dict[str, Any]:
    """The certificate of the bundle at ``path``; :class:`NotABundle` if there is none.

    Only ``certificate.json`` is read: the other files are views of it (``verify`` checks
    that they agree)."""
    where = f"{role} {str(path)!r}"
    if not path.exists():
        raise NotABundle(f"{where} is not a bundle: it does not exist")
    if not path.is_dir():
        raise NotABundle(f"{where} is not a bundle: it is not a directory")
    cert_path = path / CERTIFICATE
    try:
        text = cert_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotABundle(f"{where} is not a bundle: it has no {CERTIFICATE}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NotABundle(f"{where}: cannot read {CERTIFICATE}: {_one_line(e)}") from None
    try:
        cert = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotABundle(f"{where} is not a bundle: its {CERTIFICATE} is not JSON: "
                         f"{_one_line(e)}") from None
    if not isinstance(cert, dict):
        raise NotABundle(f"{where} is not a bundle: its {CERTIFICATE} is not a certificate "
                         "(not a JSON object)")
    fmt = cert.get("format")
    looks_like_one = isinstance(cert.get("levels"), dict) or isinstance(
        cert.get("invariants"), dict)
    if fmt != CERTIFICATE_FORMAT and (fmt is not None or not looks_like_one):
        what = f"its format is {json.dumps(fmt)}" if fmt is not None else (
            "it has neither levels nor invariants")
        raise NotABundle(f"{where} is not a bundle: its {CERTIFICATE} is not a certificate "
                         f"({what})")
    return cert


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _at(cert: Mapping[str, Any], *keys: str) -> object:
    value: object = cert
    for key in keys:
        value = _obj(value).get(key)
    return value


# --- the comparison -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LevelChange:
    level: str
    old: bool | None
    new: bool | None
    #: The new certificate's reason (``verdict.why``), when it gives one.
    why: str | None = None

    @property
    def kind(self) -> str:
        if self.old is None or self.new is None:
            return UNRECORDED
        if self.old == self.new:
            return UNCHANGED
        return GAINED if self.new else LOST


@dataclass(frozen=True, slots=True)
class InvariantChange:
    id: str
    level: str
    old: str | None
    new: str | None
    old_exercised: int | None = None
    new_exercised: int | None = None

    @property
    def kind(self) -> str:
        old, new = self.old, self.new
        if new == FAIL:
            return STILL_FAILING if old == FAIL else BROKEN
        if old == new:
            return UNCHANGED
        if old is None:
            return ONLY_NEW
        if new is None:
            return ONLY_OLD
        if old == FAIL:
            return FIXED if new == PASS else (
                NO_LONGER_EXERCISED if new == NOT_EXERCISED else CHANGED)
        if new == PASS:
            return NEWLY_EXERCISED if old == NOT_EXERCISED else CHANGED
        if new == NOT_EXERCISED:
            return NO_LONGER_EXERCISED if old == PASS else CHANGED
        return CHANGED


@dataclass(frozen=True, slots=True)
class WorkloadChange:
    name: str
    title: str
    #: Scans per container; ``None`` when a violation stopped the workload.
    old: float | None
    new: float | None
    #: The reference adapter's figure in each bundle (``None``: not recorded).
    old_reference: float | None
    new_reference: float | None
    #: Whether each bundle recorded this workload at all.
    in_old: bool = True
    in_new: bool = True

    @property
    def kind(self) -> str:
        if self.old is None or self.new is None:
            return UNCHANGED if (self.old, self.in_old) == (self.new, self.in_new) else (
                NOT_COMPARABLE)
        if self.new > self.old + _EPSILON:
            return MORE_SCANS
        if self.new < self.old - _EPSILON:
            return FEWER_SCANS
        return UNCHANGED

    def why_not_comparable(self) -> str:
        if not self.in_old or not self.in_new:
            return f"recorded only in {'NEW' if self.in_new else 'OLD'}"
        side = "OLD" if self.old is None else "NEW"
        return f"stopped by a violation in {side}"


@dataclass(frozen=True, slots=True)
class HotPathRow:
    label: str
    unit: str
    old: float | None
    new: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    old_label: str
    new_label: str
    notices: tuple[str, ...]
    levels: tuple[LevelChange, ...]
    invariants: tuple[InvariantChange, ...]
    workloads: tuple[WorkloadChange, ...]
    hot_path: tuple[HotPathRow, ...]
    #: Why a bundle has no hot-path figures, by side ("old", "new").
    hot_path_missing: Mapping[str, str] = field(default_factory=dict)

    @property
    def regressions(self) -> list[str]:
        """Each regression in a few words, levels first: empty when there is none."""
        out = []
        lost = [lv.level for lv in self.levels if lv.kind == LOST]
        if lost:
            out.append(f"{_plural(len(lost), 'level')} lost: {', '.join(lost)}")
        broken = [i.id for i in self.invariants if i.kind == BROKEN]
        if broken:
            out.append(f"{_plural(len(broken), 'invariant')} broken: {', '.join(broken)}")
        costlier = [w for w in self.workloads if w.kind == MORE_SCANS]
        if costlier:
            out.append("more scans per container: " + ", ".join(
                f"{w.name} ({_fig(w.old)} -> {_fig(w.new)})" for w in costlier))
        return out

    @property
    def improvements(self) -> list[str]:
        out = []
        gained = [lv.level for lv in self.levels if lv.kind == GAINED]
        if gained:
            out.append(f"{_plural(len(gained), 'level')} gained: {', '.join(gained)}")
        fixed = [i.id for i in self.invariants if i.kind == FIXED]
        if fixed:
            out.append(f"{_plural(len(fixed), 'invariant')} fixed: {', '.join(fixed)}")
        cheaper = [w.name for w in self.workloads if w.kind == FEWER_SCANS]
        if cheaper:
            out.append(f"fewer scans per container: {', '.join(cheaper)}")
        return out

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def verdict(self) -> str:
        if self.regressed:
            return "REGRESSION: " + "; ".join(self.regressions)
        better = self.improvements
        return "no regression" + (f": {'; '.join(better)}" if better else "")

    def unchanged(self) -> str:
        """One line for every invariant that did not change, by status."""
        same = [i for i in self.invariants if i.kind == UNCHANGED]
        by_status: dict[str, int] = {}
        for i in same:
            status = (i.new or "not recorded").replace("-", " ")
            by_status[status] = by_status.get(status, 0) + 1
        detail = ", ".join(f"{n} {s}" for s, n in by_status.items())
        every = "all " if len(same) == len(self.invariants) and same else ""
        return f"{every}{len(same)} unchanged" + (f" ({detail})" if detail else "")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


def _status(record: object) -> tuple[str | None, int | None]:
    if not isinstance(record, Mapping):
        return None, None
    exercised = record.get("exercised")
    n = exercised if isinstance(exercised, int) and not isinstance(exercised, bool) else None
    return _text(record.get("status")), n


def _ordered(keys: Iterable[str], known: Sequence[str]) -> list[str]:
    present = set(keys)
    return [k for k in known if k in present] + sorted(present - set(known))


def _levels(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[LevelChange, ...]:
    old_levels, new_levels = _obj(old.get("levels")), _obj(new.get("levels"))
    why = _obj(_at(new, "verdict", "why"))

    def met(levels: Mapping[str, Any], level: str) -> bool | None:
        value = levels.get(level)
        return value if isinstance(value, bool) else None

    return tuple(LevelChange(lv, met(old_levels, lv), met(new_levels, lv), _text(why.get(lv)))
                 for lv in _ordered([*LEVELS, *old_levels, *new_levels], LEVELS))


def _invariants(old: Mapping[str, Any], new: Mapping[str, Any]
                ) -> tuple[InvariantChange, ...]:
    old_inv, new_inv = _obj(old.get("invariants")), _obj(new.get("invariants"))
    changes = []
    for inv_id in _ordered([*old_inv, *new_inv], IDS):
        (o, on), (n, nn) = _status(old_inv.get(inv_id)), _status(new_inv.get(inv_id))
        level = (_text(_obj(new_inv.get(inv_id)).get("level"))
                 or _text(_obj(old_inv.get(inv_id)).get("level"))
                 or (INVARIANTS[inv_id].level if inv_id in INVARIANTS else "?"))
        changes.append(InvariantChange(inv_id, level, o, n, on, nn))
    return tuple(changes)


def _workloads(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[WorkloadChange, ...]:
    def by_name(cert: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        listed = _at(cert, "efficiency", "workloads")
        rows = listed if isinstance(listed, list) else []
        return {str(w["name"]): w for w in rows if isinstance(w, Mapping) and "name" in w}

    old_w, new_w = by_name(old), by_name(new)
    changes = []
    for name in dict.fromkeys([*new_w, *old_w]):
        o, n = old_w.get(name, {}), new_w.get(name, {})
        changes.append(WorkloadChange(
            name=name, title=_text(n.get("title") or o.get("title")) or name,
            old=_num(o.get("scans_per_container")), new=_num(n.get("scans_per_container")),
            old_reference=_num(o.get("reference_scans_per_container")),
            new_reference=_num(n.get("reference_scans_per_container")),
            in_old=name in old_w, in_new=name in new_w))
    return tuple(changes)


def _hot_path_missing(cert: Mapping[str, Any]) -> str | None:
    """Why the certificate has no hot-path figures (``None`` when it has them)."""
    bench = cert.get("benchmark")
    if isinstance(bench, Mapping) and isinstance(bench.get("adapter"), Mapping):
        return None
    if not isinstance(bench, Mapping):
        return "not recorded"
    if bench.get("error"):
        return f"the benchmark failed ({' '.join(str(bench['error']).split())})"
    if "hot_path" in bench:
        return "not measured (certify --no-bench)"
    return "not recorded"


def _hot_path(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[HotPathRow, ...]:
    def figure(cert: Mapping[str, Any], side: str, key: str) -> float | None:
        bench = _obj(cert.get("benchmark"))
        return _num((_obj(bench.get(side)) if side else bench).get(key))

    rows = []
    for side, key, label, unit in _HOT_PATH_ROWS:
        o, n = figure(old, side, key), figure(new, side, key)
        if o is not None or n is not None:
            rows.append(HotPathRow(label, unit, o, n))
    return tuple(rows)


def _adapter(cert: Mapping[str, Any]) -> str:
    info = _obj(_at(cert, "adapter", "info"))
    name = _text(_at(cert, "adapter", "name")) or _text(info.get("name"))
    version = _text(_at(cert, "adapter", "version")) or _text(info.get("version"))
    return " ".join(x for x in (name, version) if x) or "unnamed adapter"


def _shown(value: object) -> str:
    return "not recorded" if value is None else str(value)


def _examples(n: object) -> str | None:
    if isinstance(n, int) and not isinstance(n, bool):
        return f"{n:,} example{'' if n == 1 else 's'}"
    return None if n is None else str(n)


def _suite(cert: Mapping[str, Any]) -> str | None:
    version, commit = _text(_at(cert, "suite", "version")), _text(_at(cert, "suite", "commit"))
    if version is None and commit is None:
        return None
    return f"{version or 'version not recorded'}" + (
        f" (commit {commit[:12]})" if commit and commit != "unknown" else "")


def _format(cert: Mapping[str, Any]) -> int | None:
    v = cert.get("format_version")
    return v if isinstance(v, int) and not isinstance(v, bool) else None


#: What a notice compares: (what, how to read it from a certificate).
_NOTICED: tuple[tuple[str, Callable[[Mapping[str, Any]], object]], ...] = (
    ("adapter spec", lambda c: _text(_at(c, "adapter", "spec"))),
    ("adapter", _adapter),
    ("suite", _suite),
    ("certificate format", _format),
    ("profile", lambda c: _text(_at(c, "run", "profile"))),
    ("seed", lambda c: _at(c, "run", "seed")),
    ("budget", lambda c: _examples(_at(c, "run", "settings", "max_examples"))),
    ("isolation", lambda c: _text(_at(c, "run", "isolation"))),
    ("Hypothesis", lambda c: _text(_at(c, "run", "versions", "hypothesis"))),
)


def _notices(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    differ = []
    for what, read in _NOTICED:
        o, n = read(old), read(new)
        if o != n and not (what == "isolation" and None in (o, n)):
            differ.append(f"{what} {_shown(o)} -> {_shown(n)}")
    if not differ:
        return ()
    notices = [f"notice: the bundles differ in {'; '.join(differ)}"]
    fo, fn = _format(old), _format(new)
    if fo is not None and fn is not None and min(fo, fn) < VERDICTS_SINCE <= max(fo, fn):
        notices.append(f"notice: before certificate format {VERDICTS_SINCE} a level counted "
                       "as met when nothing it rests on failed, exercised or not")
    return tuple(notices)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], *, old_label: str = "OLD",
         new_label: str = "NEW") -> Comparison:
    """Compare two certificates (``certificate.json`` objects of any format version)."""
    missing = {side: why for side, cert in (("old", old), ("new", new))
               if (why := _hot_path_missing(cert)) is not None}
    return Comparison(
        old_label=old_label, new_label=new_label, notices=_notices(old, new),
        levels=_levels(old, new), invariants=_invariants(old, new),
        workloads=_workloads(old, new), hot_path=_hot_path(old, new),
        hot_path_missing=missing)


# --- rendering ------------------------------------------------------------------------------
def _fig(value: float | None, none: str = "-") -> str:
    """A figure as the reports show it: whole numbers without a point, ``none`` when
    missing."""
    if value is None:
        return none
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _met(value: bool | None) -> str:
    return "not recorded" if value is None else ("met" if value else "NOT met")


def _status_text(status: str | None) -> str:
    return "not recorded" if status is None else status


def _count(n: int | None, none: str = "-") -> str:
    return none if n is None else f"{n:,}"


def _hot(value: float | None, unit: str, none: str = "-") -> str:
    if value is None:
        return none
    return f"{_fig(value)}{' ns' if unit == 'ns' else 'x'}"


def _bundle_line(label: str, cert: Mapping[str, Any]) -> str:
    spec = _text(_at(cert, "adapter", "spec"))
    fmt = _format(cert)
    return (f"{label}  {_adapter(cert)}" + (f" ({spec})" if spec else "")
            + f", format {fmt if fmt is not None else 'not recorded'}")


def render_text(c: Comparison, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    lines = [c.verdict(),
             _bundle_line(f"old: {c.old_label}", old),
             _bundle_line(f"new: {c.new_label}", new),
             *c.notices, "", "Levels (old -> new)"]
    for lv in c.levels:
        why = f"  ({lv.why})" if lv.kind == LOST and lv.why else ""
        lines.append(f"  {lv.level:<18} {_met(lv.old):<12} -> {_met(lv.new):<12} "
                     f"{lv.kind}{why}".rstrip())
    lines += ["", "Invariants (old -> new)"]
    listed = [i for kind in INVARIANT_KINDS for i in c.invariants if i.kind == kind]
    width = max((len(i.kind) for i in listed), default=0)
    for i in listed:
        lines.append(f"  {i.kind:<{width}}  {i.id:<8} {i.level:<17} "
                     f"{_status_text(i.old)} -> {_status_text(i.new)}  (exercised "
                     f"{_count(i.old_exercised)} -> {_count(i.new_exercised)})")
    lines.append(f"  {c.unchanged()}")
    lines += ["", "Efficiency: scans per container (old -> new; reference)"]
    if not c.workloads:
        lines.append("  no workloads recorded")
    name_width = max((len(w.name) for w in c.workloads), default=0)
    figures = [f"{_fig(w.old)} -> {_fig(w.new)}" for w in c.workloads]
    fig_width = max(map(len, figures), default=0)
    ref_width = max((len(_reference(w)) for w in c.workloads), default=0)
    for w, fig in zip(c.workloads, figures, strict=True):
        lines.append(f"  {w.name:<{name_width}}  {fig:<{fig_width}}  reference "
                     f"{_reference(w):<{ref_width}}  {_workload_kind(w)}".rstrip())
    lines += ["", f"Hot path: ns per call and ratio to the floor (old -> new; {NOISE})"]
    for side, why in c.hot_path_missing.items():
        lines.append(f"  {side}: {why}")
    label_width = max((len(r.label) for r in c.hot_path), default=0)
    for r in c.hot_path:
        lines.append(f"  {r.label:<{label_width}}  {_hot(r.old, r.unit)} -> "
                     f"{_hot(r.new, r.unit)}")
    return "\n".join(lines) + "\n"


def _reference(w: WorkloadChange, none: str = "-") -> str:
    """The reference's figure: the new bundle's, both when the bundles disagree."""
    if w.old_reference == w.new_reference or w.old_reference is None or not w.in_old:
        return _fig(w.new_reference if w.in_new else w.old_reference, none)
    if w.new_reference is None or not w.in_new:
        return _fig(w.old_reference, none)
    return f"{_fig(w.old_reference, none)} -> {_fig(w.new_reference, none)}"


def _workload_kind(w: WorkloadChange) -> str:
    kind = w.kind
    if kind == NOT_COMPARABLE:
        return f"{kind}: {w.why_not_comparable()}"
    if kind == UNCHANGED and w.new is None and w.in_new:
        return "stopped by a violation in both"
    return kind


DASH = "—"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("->", "→")


def _md_met(value: bool | None) -> str:
    return "not recorded" if value is None else ("✅ met" if value else "❌ not met")


def render_markdown(c: Comparison, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The comparison as Markdown for a pull-request comment: the same facts as the text."""
    head = "❌ regression" if c.regressed else "✅ no regression"
    lines = [f"### WCIFS conformance: compare: {head}", "",
             f"**{_md(c.verdict())}**", "",
             "| bundle | adapter | spec | format |", "|---|---|---|---|"]
    for label, path, cert in (("old", c.old_label, old), ("new", c.new_label, new)):
        fmt = _format(cert)
        lines.append(f"| {label}: `{_md(path)}` | {_md(_adapter(cert))} | "
                     f"`{_md(_text(_at(cert, 'adapter', 'spec')) or 'not recorded')}` | "
                     f"{fmt if fmt is not None else 'not recorded'} |")
    if c.notices:
        lines.append("")
        lines += [f"> ⚠️ {_md(n)}  " for n in c.notices]
    lines += ["", "| level | old | new | change |", "|---|---|---|---|"]
    for lv in c.levels:
        change = f"**{lv.kind}**" if lv.kind in (LOST, GAINED) else lv.kind
        why = f" ({_md(lv.why)})" if lv.kind == LOST and lv.why else ""
        lines.append(f"| {lv.level} | {_md_met(lv.old)} | {_md_met(lv.new)} | {change}{why} |")
    listed = [i for kind in INVARIANT_KINDS for i in c.invariants if i.kind == kind]
    lines.append("")
    if listed:
        lines += ["| invariant | level | old | new | exercised | change |",
                  "|---|---|---|---|---:|---|"]
        for i in listed:
            change = f"**{i.kind}**" if i.kind in (BROKEN, FIXED) else i.kind
            lines.append(f"| {i.id} | {i.level} | {_status_text(i.old)} | "
                         f"{_status_text(i.new)} | {_count(i.old_exercised, DASH)} → "
                         f"{_count(i.new_exercised, DASH)} | {change} |")
        lines.append("")
    lines.append(f"Invariants: {c.unchanged()}.")
    if c.workloads:
        lines += ["", "| workload (scans per container) | old | new | reference | change |",
                  "|---|---:|---:|---:|---|"]
        for w in c.workloads:
            kind = _workload_kind(w)
            change = f"**{kind}**" if kind == MORE_SCANS else _md(kind)
            lines.append(f"| {w.name} | {_fig(w.old, DASH)} | {_fig(w.new, DASH)} | "
                         f"{_md(_reference(w, DASH))} | {change} |")
    lines += ["", f"Hot path, ns per call and ratio to the floor ({NOISE}):", ""]
    lines += [f"- {side}: {_md(why)}" for side, why in c.hot_path_missing.items()]
    if c.hot_path:
        if c.hot_path_missing:
            lines.append("")
        lines += ["| figure | old | new |", "|---|---:|---:|"]
        lines += [f"| {r.label} | {_hot(r.old, r.unit, DASH)} | {_hot(r.new, r.unit, DASH)} |"
                  for r in c.hot_path]
    return "\n".join(lines) + "\n"


# --- the verb -------------------------------------------------------------------------------
def compare(old: Path, new: Path, *, markdown: Path | None = None,
            out: TextIO | None = None) -> int:
    """Print what changed from the bundle ``old`` to the bundle ``new`` (and write it as
    Markdown to ``markdown``); 1 on a regression, 0 otherwise. Raises :class:`NotABundle`
    (exit 2) when either folder is not a bundle."""
    stream = out if out is not None else sys.stdout
    old_cert = load_certificate(old, "OLD_BUNDLE")
    new_cert = load_certificate(new, "NEW_BUNDLE")
    comparison = diff(old_cert, new_cert, old_label=str(old), new_label=str(new))
    if markdown is not None:
        markdown.write_text(render_markdown(comparison, old_cert, new_cert), encoding="utf-8")
    stream.write(render_text(comparison, old_cert, new_cert))
    if markdown is not None:
        stream.write(f"\nMarkdown: {markdown}\n")
    return EXIT_REGRESSION if comparison.regressed else EXIT_OK
