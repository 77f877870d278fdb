"""The human-facing files of a bundle, all rendered from the certificate dict alone:
``certificate.html`` (jinja2, one offline file), ``summary.md`` and ``junit.xml``.

``texts`` maps a failed invariant's ID to its rendered violation (steps, decision, truth,
replay line), as :meth:`conformance.ViolationReport.render` writes it.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from conformance import (
    CUSTOM,
    INVARIANTS,
    LEVELS,
    PROFILES,
    LevelVerdict,
    _dialogue,
    exercise_advice,
    level_verdicts,
    rests_on,
)

from ._certificate import COVERAGE_DIMENSIONS, _names

if TYPE_CHECKING:
    import jinja2

LEVEL_TEXT = {
    "conformant": "every SKIP is covered by a clean scan under the current signatures, or "
                  "comes from a remote or registered layer; ECP hygiene and robustness",
    "signature-current": "as conformant, and remote or registered layers are trusted only "
                         "after a proactive scan completed under the current signatures",
    "optimized": "conformant, and never scans where the reference adapter skips",
}
#: The platform profiles of SPEC §3, in the order the coverage table shows them; a profile a
#: certificate names beyond these is shown after them. (``reports`` never imports the model,
#: so this is the spec's list, not ``reference.ops.PROFILES``.)
PLATFORM_PROFILES = ("wcifs", "no-registered-flag", "hostile")
#: An exercised invariant with fewer exercises than this under a platform profile is thinly
#: covered there.
THIN = 10
#: How many operation kinds and scenes a coverage row names before "+N more".
_TOP = 3
_GROUPS = (("conformant", "conformant: safety, ECP hygiene, robustness"),
           ("signature-current", "signature-current: the mitigated policy"),
           ("optimized", "optimized: no redundant scans"),
           ("warning", "warnings (break no level)"))


def _template_source(name: str) -> str:
    return resources.files("reports").joinpath("templates", name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # loads here, not with ``reports``

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, list):
        yield prefix, ", ".join(str(v) for v in value) or "—"
    elif value is None:
        yield prefix, "—"
    elif isinstance(value, float):
        yield prefix, f"{value:,.3f}".rstrip("0").rstrip(".")
    elif isinstance(value, int) and not isinstance(value, bool):
        yield prefix, f"{value:,}"
    else:
        yield prefix, str(value)


_HOT_PATH_ROWS = (("post_create_hit_ns", "post_create, local-layer cache hit (ns)"),
                  ("post_create_ratio", "post_create, ratio to dict.get"),
                  ("pre_create_ns", "pre_create, container context (ns)"),
                  ("pre_create_ratio", "pre_create, ratio to dict.get"))


def _hot_path_view(bench: Mapping[str, Any]) -> dict[str, Any] | None:
    """A side-by-side table and chart when the benchmark has adapter and reference figures."""
    from ._charts import ADAPTER_COLOUR, REFERENCE_COLOUR, hot_path_chart

    ours, ref = bench.get("adapter"), bench.get("reference")
    if not isinstance(ours, Mapping) or not isinstance(ref, Mapping):
        return None
    rows = [(label, _num(ours.get(key)), _num(ref.get(key))) for key, label in _HOT_PATH_ROWS
            if key in ours or key in ref]
    bars: list[tuple[str, float, str]] = []
    floor = bench.get("floor_dict_get_ns")
    if isinstance(floor, int | float):
        bars.append(("dict.get floor", float(floor), "#57606a"))
    for who, side, colour in (("adapter", ours, ADAPTER_COLOUR),
                              ("reference", ref, REFERENCE_COLOUR)):
        for key, what in (("post_create_hit_ns", "post_create hit"),
                          ("pre_create_ns", "pre_create")):
            value = side.get(key)
            if isinstance(value, int | float):
                bars.append((f"{who} {what}", float(value), colour))
    rest = {k: v for k, v in bench.items() if k not in ("adapter", "reference")}
    notes = [str(side["note"]) for side in (ours, ref) if side.get("note")]
    native = bench.get("native")
    if isinstance(native, Mapping):
        notes.append(
            f"Timed natively (a C library through ctypes measures ctypes): post_create "
            f"{_num(native.get('post_create_ns'))} ns beside a native hash-table floor of "
            f"{_num(native.get('floor_ns'))} ns, ratio {_num(native.get('ratio'))}."
            if native.get("measured") else f"Native hot path {native.get('note')}.")
    return {"rows": rows, "chart": hot_path_chart(bars) if bars else None,
            "rest": list(_flatten("", rest)), "notes": notes,
            "names": (ours.get("name", "adapter"), ref.get("name", "reference"))}


def _coverage(cert: Mapping[str, Any]) -> Mapping[str, Mapping[str, Mapping[str, int]]]:
    """The certificate's coverage, or nothing when it records no breakdown at all (format
    version 1, or a result that collected none)."""
    coverage = cert.get("coverage")
    if not isinstance(coverage, Mapping):
        return {}
    if not any(any(entry.get(dim) for dim in COVERAGE_DIMENSIONS)
               for entry in coverage.values()):
        return {}
    return coverage


def coverage_profiles(coverage: Mapping[str, Mapping[str, Mapping[str, int]]]) -> list[str]:
    """The platform profiles of SPEC §3, then any other the coverage names."""
    seen = {p for entry in coverage.values() for p in entry.get("profile", {})}
    return [*PLATFORM_PROFILES, *sorted(seen - set(PLATFORM_PROFILES))]


def thin_coverage(cert: Mapping[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """Exercised invariants with fewer than :data:`THIN` exercises under some platform
    profile: ID -> [(profile, count)], in catalogue and profile order. Empty when the
    certificate records no coverage."""
    coverage = _coverage(cert)
    if not coverage:
        return {}
    profiles = coverage_profiles(coverage)
    out: dict[str, list[tuple[str, int]]] = {}
    for inv_id, r in cert["invariants"].items():
        if int(r["exercised"]) <= 0:
            continue
        counts = coverage.get(inv_id, {}).get("profile", {})
        thin = [(p, int(counts.get(p, 0))) for p in profiles if int(counts.get(p, 0)) < THIN]
        if thin:
            out[inv_id] = thin
    return out


def _ranked(counts: Mapping[str, int]) -> dict[str, list[tuple[str, str]]]:
    """The names with a count, most first: the top few, and the rest (behind "+N more";
    a single one left over is shown too)."""
    items = sorted(((k, int(v)) for k, v in counts.items() if int(v) > 0),
                   key=lambda kv: (-kv[1], kv[0]))
    named = [(k, _num(v)) for k, v in items]
    top = _TOP if len(named) > _TOP + 1 else _TOP + 1
    return {"top": named[:top], "rest": named[top:]}


def _coverage_view(cert: Mapping[str, Any]) -> dict[str, Any] | None:
    """One row per invariant: exercised, a cell per platform profile (thin ones marked),
    the top operation kinds and scenes."""
    coverage = _coverage(cert)
    if not coverage:
        return None
    profiles = coverage_profiles(coverage)
    thin = thin_coverage(cert)
    rows = []
    for inv_id, r in cert["invariants"].items():
        entry = coverage.get(inv_id, {})
        n = int(r["exercised"])
        by_profile = entry.get("profile", {})
        cells = []
        for p in profiles:
            k = int(by_profile.get(p, 0))
            mark = "" if n == 0 or k >= THIN else ("none" if k == 0 else "thin")
            cells.append({"profile": p, "n": k, "text": _num(k) if n else "—", "mark": mark})
        rows.append({"id": inv_id, "status": r["status"], "exercised": _num(n), "n": n,
                     "profiles": cells, "thin": [p for p, _ in thin.get(inv_id, [])],
                     "operations": _ranked(entry.get("operation", {})),
                     "scenes": _ranked(entry.get("scene", {}))})
    exercised = sum(1 for r in cert["invariants"].values() if int(r["exercised"]) > 0)
    return {"profiles": profiles, "rows": rows, "thin": len(thin), "exercised": exercised,
            "threshold": THIN}


def _examples(n: object) -> str:
    return f"{_num(n) if isinstance(n, int | float) else n} example{'' if n == 1 else 's'}"


def verdicts_of(cert: Mapping[str, Any]) -> dict[str, LevelVerdict]:
    """Every level's verdict from the certificate's invariant statuses: the rule the
    certificate's ``levels`` follow (from format version 3; ``verify`` checks it)."""
    return level_verdicts({i: str(r["status"]) for i, r in cert["invariants"].items()
                           if i in INVARIANTS})


def level_state(v: LevelVerdict) -> str:
    """How a face names a level's verdict: ``met``, ``not met`` (something failed) or
    ``not established (X, Y never exercised)``."""
    if v.met:
        return "met"
    if v.failed:
        return "not met"
    return f"not established ({_names(v.unexercised, 4)} never exercised)"


def run_notes(cert: Mapping[str, Any]) -> list[str]:
    """What the face of a certificate must say about how much of its profile ran: a custom
    budget, a budget smaller than the profile named (certificates before format version 3),
    a run stopped early at a violation."""
    run, stats = cert["run"], cert.get("stats") or {}
    settings = run.get("settings") or {}
    budget, profile = settings.get("max_examples"), run["profile"]
    notes = []
    if profile == CUSTOM:
        based_on = settings.get("based_on")
        notes.append(f"custom budget: {_examples(budget)}"
                     + (f" (based on {based_on})" if based_on else ""))
    elif profile in PROFILES and budget != PROFILES[profile].max_examples:
        notes.append(f"reduced budget: {_examples(budget)}, not the "
                     f"{_num(PROFILES[profile].max_examples)} of {profile} (format version "
                     f"{cert.get('format_version')} named the profile all the same)")
    if run.get("stopped_early", stats.get("stopped_early")):
        notes.append(f"stopped early at a violation after {_examples(stats.get('examples'))}")
    shard = run.get("shard")
    if shard:
        notes.append(f"PARTIAL: shard {shard['index']} of {shard['of']} of a run, not a "
                     "certificate of the whole run (wcifs-conformance merge joins the shards)")
    merged = run.get("merged")
    if merged:
        notes.append(f"merged from {merged['shards']} shards (certify --shard), as "
                     f"-j {merged['shards']} would have run it")
    expect = run.get("expectations")
    if expect:
        differ = [f"{len(ids)} {what}" for what, ids in (
            ("new failure(s)", expect["new_failures"]),
            ("unexpectedly passing", expect["unexpectedly_passing"])) if ids]
        notes.append(f"expectations used ({expect['file']}): {len(expect['expected'])} known "
                     f"failure(s) listed; the levels are judged as always, the exit code on "
                     f"what differs from the file: "
                     f"{', '.join(differ) if differ else 'nothing'}")
    if run.get("isolation") == "in-process":
        notes.append("in-process: the adapter shared the suite's process (--in-process), "
                     "so this result holds only if the adapter is trusted not to have "
                     "touched the suite")
    return notes


def _when(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def failures(cert: Mapping[str, Any], texts: Mapping[str, str],
             traces: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Failed invariants, level breakers first, each with its text, trace path and the
    dialogue its trace records (rows of :func:`dialogue_rows`) and, if the run's expectation
    file lists it, the reason it is known to fail."""
    known = (cert["run"].get("expectations") or {}).get("expected", {})
    out = []
    for inv_id, r in cert["invariants"].items():
        if r["status"] != "fail":
            continue
        out.append({"id": inv_id, "level": r["level"], "rule": r["rule"],
                    "summary": r["summary"] or "", "steps": r["steps"] or 0,
                    "trace": r["first_counterexample"], "text": texts.get(inv_id, ""),
                    "calls": dialogue_rows((traces or {}).get(inv_id)),
                    "known": known.get(inv_id)})
    out.sort(key=lambda f: f["level"] == "warning")
    return out


def dialogue_rows(trace: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A trace's dialogue as table rows: step, hook, what it was handed, its answer, its
    service requests and probes, and whether the violation was found in it."""
    if not trace:
        return []
    calls = trace.get("calls") or []
    steps = trace.get("steps") or []
    failing = trace.get("failing_call")
    rows = []
    for i, c in enumerate(calls):
        step = int(c.get("step", 0))
        call = str(c.get("call"))
        rows.append({
            "step": "start" if step == 0 else "stop" if step > len(steps) else str(step),
            "doing": steps[step - 1] if 0 < step <= len(steps) else "",
            "call": call, "handed": _dialogue.argument_text(call, c),
            "answer": _dialogue.answer_text(call, c), "failing": i == failing,
            "services": [_dialogue.service_text(s) for s in c.get("services") or ()],
            "probes": c.get("probes") or [],
        })
    return rows


def render_html(cert: Mapping[str, Any], texts: Mapping[str, str], bundle_dir: str = ".",
                traces: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """``bundle_dir`` is how replay commands name the bundle (as in ``summary.md``)."""
    from ._charts import efficiency_chart, exercised_chart

    invariants: Mapping[str, Mapping[str, Any]] = cert["invariants"]
    counts = {"pass": 0, "fail": 0, "not-exercised": 0}
    for r in invariants.values():
        counts[r["status"]] += 1
    groups = [(title, [(i, r) for i, r in invariants.items() if r["level"] == level])
              for level, title in _GROUPS]
    workloads = []
    for w in cert["efficiency"]["workloads"]:
        ours, ref = w["scans_per_container"], w["reference_scans_per_container"]
        diff = None if ours is None else ours - ref
        workloads.append({
            **w,
            "ours": "stopped by a violation" if ours is None else _num(ours),
            "ref": _num(ref),
            "diff": "—" if diff is None else ("±0" if diff == 0 else f"{diff:+,.2f}"),
            "trend": "worse" if diff is None or diff > 0 else ("better" if diff < 0 else "same"),
        })
    stats = cert["stats"]
    figures = [
        ("examples", _num(stats.get("examples"))),
        ("operations", _num(stats.get("steps"))),
        ("creates", _num(stats.get("creates"))),
        ("scans", _num(stats.get("scans"))),
        ("invariants passed", f"{counts['pass']} / {len(invariants)}"),
        ("failed", str(counts["fail"])),
    ]
    run, suite = cert["run"], cert["suite"]
    provenance = [
        ("suite", f"{suite['name']} {suite['version']}"),
        ("suite commit", suite["commit"]),
        ("protocol version", str(suite["protocol_version"])),
        ("Hypothesis", run["versions"]["hypothesis"]),
        ("Python", run["versions"]["python"]),
        ("platform", run["platform"]["platform"]),
        ("adapter spec", cert["adapter"]["spec"]),
        *[(f"adapter {k}", str(v)) for k, v in cert["adapter"]["info"].items()],
        *([("adapter CI commit", f"{ci['commit']} (from {ci['variable']})")]
          if (ci := cert["adapter"].get("ci_commit")) else []),
        ("profile", run["profile"]),
        ("seed", str(run["seed"])),
        *([("stopped early", "yes: at a violation" if run["stopped_early"] else "no")]
          if "stopped_early" in run else []),
        *([("adapter ran", "in its own process (isolated)" if run["isolation"] == "isolated"
            else "in the suite's process (--in-process)")] if "isolation" in run else []),
        *([("call timeout", f"{run['call_timeout']:g} s")] if "call_timeout" in run else []),
        *[(f"setting {k}", "—" if v is None else str(v)) for k, v in run["settings"].items()],
        ("started", run["started"]),
        ("finished", run["finished"]),
        ("efficiency judged against", f"{cert['efficiency']['shadow']} reference"),
    ]
    bench = cert["benchmark"]
    reference = str(cert["efficiency"]["reference"])
    return _environment().get_template("certificate.html.j2").render(
        c=cert,
        levels=[{"level": level, "met": v.met, "status": v.status, "state": level_state(v),
                 "why": v.why(), "required": level in cert["verdict"]["required"]}
                for level, v in verdicts_of(cert).items()],
        run_notes=run_notes(cert),
        reference_spec=reference if reference.startswith("reference:") else None,
        bundle_dir=bundle_dir.rstrip("/") or ".",
        started=_when(run["started"]),
        level_text=LEVEL_TEXT,
        figures=figures,
        failures=failures(cert, texts, traces),
        counts=counts,
        invariant_groups=[(t, rows) for t, rows in groups if rows],
        workloads=workloads,
        efficiency_chart=efficiency_chart(cert["efficiency"]["workloads"]),
        exercised_chart=exercised_chart(invariants),
        coverage=_coverage_view(cert),
        coverage_recorded="coverage" in cert,
        hot_path_missing=bench.get("hot_path", True) is None,
        hot_path=_hot_path_view(bench),
        benchmark_rows=list(_flatten("", bench)),
        provenance=provenance,
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary(cert: Mapping[str, Any], bundle_dir: str) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: levels, failed IDs, how to replay."""
    verdict, adapter, run, stats = cert["verdict"], cert["adapter"], cert["run"], cert["stats"]
    head = "✅ required levels met" if verdict["met"] else "❌ required levels not met"
    lines = [
        f"### WCIFS conformance: {head}",
        "",
        f"**{_md(adapter['name'])} {_md(adapter['version'])}** (`{adapter['spec']}`) · "
        f"profile `{run['profile']}` · seed `{run['seed']}` · "
        f"{_examples(stats.get('examples'))} · {run['seconds']:.1f} s",
        *(["", "⚠️ " + " · ".join(notes)] if (notes := run_notes(cert)) else []),
        "",
        "| level | result |",
        "|---|---|",
    ]
    for level, v in verdicts_of(cert).items():
        req = " (required)" if level in verdict["required"] else ""
        lines.append(f"| {level}{req} | {'✅' if v.met else '❌'} {_md(level_state(v))} |")
    fails = failures(cert, {})
    if fails:
        lines += ["", "#### Failed invariants", "", "| ID | level | what happened | steps |",
                  "|---|---|---|---|"]
        lines += [f"| **{f['id']}** | {f['level']} | {_md(f['summary'])} | {f['steps']} |"
                  for f in fails]
        lines += ["", "Replay a counterexample (deterministic, no Hypothesis database):", "",
                  "```sh"]
        lines += [f"wcifs-conformance replay {bundle_dir.rstrip('/')}/{f['trace']} "
                  f"--adapter {adapter['spec']}" for f in fails if f["trace"]]
        lines += ["```"]
    if verdict["unexercised"]:
        advice = exercise_advice(run["profile"], bool(run.get("stopped_early")))
        lines += ["", f"⚠️ Not exercised, so the required levels cannot be certified: "
                  f"{', '.join(verdict['unexercised'])}: {_md(advice)}."]
    lines += _coverage_lines(cert)
    workloads = cert["efficiency"]["workloads"]
    if workloads:
        lines += ["", "<details><summary>Efficiency: scans per container</summary>", "",
                  "| workload | adapter | reference |", "|---|---:|---:|"]
        lines += [f"| {w['name']} | {_num(w['scans_per_container'])} | "
                  f"{_num(w['reference_scans_per_container'])} |" for w in workloads]
        lines += ["", "</details>"]
    lines += ["", f"Bundle: `{bundle_dir}` (certificate.html, certificate.json, junit.xml, "
              f"traces). Check it with `wcifs-conformance verify {bundle_dir}`.", ""]
    return "\n".join(lines)


def _coverage_lines(cert: Mapping[str, Any]) -> list[str]:
    """At most one line per thinly covered invariant, or one line saying there is none."""
    if not _coverage(cert):
        return ["", "Coverage: this certificate records no breakdown by profile, operation "
                "or scene."]
    thin = thin_coverage(cert)
    profiles = ", ".join(coverage_profiles(cert["coverage"]))
    if not thin:
        return ["", f"Coverage: every exercised invariant was exercised at least {THIN} times "
                f"under each platform profile ({profiles})."]
    lines = [""]
    for inv_id, cells in thin.items():
        n = cert["invariants"][inv_id]["exercised"]
        lines.append(f"- ⚠️ **{inv_id}**: < {THIN} exercises under "
                     + ", ".join(f"{p} ({_num(k)})" for p, k in cells) + f"; {_num(n)} in all")
    return lines


def render_junit(cert: Mapping[str, Any], texts: Mapping[str, str]) -> str:
    """One test case per level, failing exactly when a required level is not met (as the CLI's
    exit code and the pytest plugin's level tests do), and one per invariant: a failure when
    a required level rests on it and it failed or was never exercised, skipped for a warning,
    an invariant no required level rests on, or one never exercised that none needs."""
    required = [lv for lv in cert["verdict"]["required"] if lv in LEVELS]
    needed = {i for lv in required for i in rests_on(lv)}
    verdicts = verdicts_of(cert)
    invariants: Mapping[str, Mapping[str, Any]] = cert["invariants"]
    run = cert["run"]
    suites = ET.Element("testsuites", name="wcifs-conformance")
    suite = ET.SubElement(suites, "testsuite", name="wcifs-conformance",
                          timestamp=run["started"], time=f"{run['seconds']:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("adapter", cert["adapter"]["spec"]),
                        ("adapter_name", cert["adapter"]["name"]),
                        ("adapter_version", cert["adapter"]["version"]),
                        ("profile", run["profile"]),
                        ("max_examples", (run.get("settings") or {}).get("max_examples")),
                        ("examples", cert["stats"].get("examples")),
                        ("seed", run["seed"]),
                        ("suite_version", cert["suite"]["version"]),
                        ("hypothesis_version", run["versions"]["hypothesis"]),
                        *((f"level_{k}", level_state(v)) for k, v in verdicts.items())):
        ET.SubElement(props, "property", name=name, value=str(value))
    failed = skipped = 0
    notes = "; ".join(run_notes(cert))
    for level, v in verdicts.items():
        case = ET.SubElement(suite, "testcase", classname="wcifs-conformance.levels",
                             name=level, time="0")
        why = v.why() + (f" ({notes})" if notes else "")
        if v.met:
            ET.SubElement(case, "system-out").text = why
        elif level in required:
            failed += 1
            node = ET.SubElement(case, "failure", type=f"level-{v.status}",
                                 message=f"required level {level} {level_state(v)}")
            node.text = why
        else:
            skipped += 1
            ET.SubElement(case, "skipped", message=f"level {level} is not required: {why}")
    for inv_id, r in invariants.items():
        case = ET.SubElement(suite, "testcase", classname=f"wcifs-conformance.{r['level']}",
                             name=inv_id, time="0")
        text = texts.get(inv_id) or str(r["summary"] or "")
        if r["status"] == "fail" and inv_id in needed:
            failed += 1
            node = ET.SubElement(case, "failure", type=inv_id,
                                 message=f"{inv_id}: {r['summary'] or r['rule']}")
            node.text = text
        elif r["status"] == "fail":
            skipped += 1
            why = ("warning" if r["level"] == "warning"
                   else f"failed, but level {r['level']} is not required")
            node = ET.SubElement(case, "skipped", message=f"{why}: {r['summary'] or ''}")
            node.text = text
        elif r["status"] == "not-exercised" and inv_id in needed:
            failed += 1
            levels = [lv for lv in required if inv_id in verdicts[lv].unexercised]
            node = ET.SubElement(case, "failure", type="not-exercised",
                                 message=f"{inv_id} was never exercised, so required "
                                 f"level{'s' if len(levels) > 1 else ''} {', '.join(levels)} "
                                 "cannot be established")
            advice = exercise_advice(run["profile"], bool(run.get("stopped_early")))
            node.text = f"{r['rule']}\n{advice[:1].upper()}{advice[1:]}."
        elif r["status"] == "not-exercised":
            skipped += 1
            ET.SubElement(case, "skipped", message=f"{inv_id} was not exercised in this run "
                          "(no required level rests on it)")
        else:
            ET.SubElement(case, "system-out").text = (
                f"{r['rule']}\nexercised {r['exercised']} times")
    for element in (suites, suite):
        element.set("tests", str(len(invariants) + len(verdicts)))
        element.set("failures", str(failed))
        element.set("errors", "0")
        element.set("skipped", str(skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        suites, encoding="unicode") + "\n"
