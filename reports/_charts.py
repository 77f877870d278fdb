"""Inline SVG charts for ``certificate.html``: no scripts, no external files."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

ADAPTER_COLOUR = "#2f6fdb"
REFERENCE_COLOUR = "#a7b1bd"
STATUS_COLOUR = {"pass": "#1f883d", "fail": "#cf222e", "not-exercised": "#a7b1bd",
                 "warning": "#bf8700"}

_LABEL_W = 210
_BAR_W = 420
_VALUE_W = 90
_WIDTH = _LABEL_W + _BAR_W + _VALUE_W


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _svg(height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {_WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>")


def efficiency_chart(workloads: Sequence[Mapping[str, Any]]) -> Markup:
    """Grouped horizontal bars: scans per container, the adapter beside the reference."""
    bar, gap, group_gap, top = 13, 3, 16, 30
    values = [float(w["reference_scans_per_container"]) for w in workloads]
    values += [float(w["scans_per_container"]) for w in workloads
               if w["scans_per_container"] is not None]
    scale = _BAR_W / max(1.0, *values) if values else 0.0
    body = [
        f'<rect x="{_LABEL_W}" y="6" width="12" height="12" rx="2" fill="{ADAPTER_COLOUR}"/>',
        f'<text x="{_LABEL_W + 18}" y="16" class="legend">adapter under test</text>',
        f'<rect x="{_LABEL_W + 170}" y="6" width="12" height="12" rx="2" '
        f'fill="{REFERENCE_COLOUR}"/>',
        f'<text x="{_LABEL_W + 188}" y="16" class="legend">reference adapter</text>',
    ]
    y = top
    for w in workloads:
        group_h = 2 * bar + gap
        body.append(f'<g><title>{escape(w["title"])}</title>'
                    f'<text x="{_LABEL_W - 10}" y="{y + group_h / 2 + 4}" text-anchor="end" '
                    f'class="label">{escape(w["name"])}</text></g>')
        rows = ((w["scans_per_container"], ADAPTER_COLOUR, "adapter"),
                (w["reference_scans_per_container"], REFERENCE_COLOUR, "reference"))
        for i, (value, colour, who) in enumerate(rows):
            by = y + i * (bar + gap)
            if value is None:
                body.append(f'<text x="{_LABEL_W + 4}" y="{by + bar - 2}" class="value bad">'
                            "stopped by a violation</text>")
                continue
            width = max(1.5, float(value) * scale)
            body.append(f'<rect x="{_LABEL_W}" y="{by}" width="{width:.1f}" height="{bar}" '
                        f'rx="2" fill="{colour}"><title>{who}: {_fmt(float(value))} scans per '
                        f'container</title></rect>')
            body.append(f'<text x="{_LABEL_W + width + 6:.1f}" y="{by + bar - 2}" '
                        f'class="value">{_fmt(float(value))}</text>')
        y += group_h + group_gap
    body.append(f'<line x1="{_LABEL_W}" y1="{top - 6}" x2="{_LABEL_W}" y2="{y - group_gap + 4}" '
                'class="axis"/>')
    return _svg(y, body, "scans per container, adapter beside reference")


def exercised_chart(invariants: Mapping[str, Mapping[str, Any]]) -> Markup:
    """One bar per invariant: how often it was exercised (log scale), coloured by status."""
    bar, gap, top = 14, 5, 8
    counts = [int(r["exercised"]) for r in invariants.values()]
    top_log = math.log10(max(counts, default=1) + 1) or 1.0
    body: list[str] = []
    y = top
    for inv_id, r in invariants.items():
        n = int(r["exercised"])
        status = str(r["status"])
        key = "warning" if status == "fail" and r.get("level") == "warning" else status
        width = _BAR_W * math.log10(n + 1) / top_log
        body.append(f'<text x="{_LABEL_W - 10}" y="{y + bar - 3}" text-anchor="end" '
                    f'class="label mono">{escape(inv_id)}</text>')
        if n:
            body.append(f'<rect x="{_LABEL_W}" y="{y}" width="{max(1.5, width):.1f}" '
                        f'height="{bar}" rx="2" fill="{STATUS_COLOUR[key]}"><title>{inv_id}: '
                        f'exercised {n:,} times ({status})</title></rect>')
        body.append(f'<text x="{_LABEL_W + max(1.5, width) + 6:.1f}" y="{y + bar - 3}" '
                    f'class="value">{n:,}{"" if n else " (not exercised)"}</text>')
        y += bar + gap
    # decade grid lines
    decade = 1
    while decade <= 10 ** top_log:
        x = _LABEL_W + _BAR_W * math.log10(decade + 1) / top_log
        if x <= _LABEL_W + _BAR_W:
            body.insert(0, f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{y}" '
                        'class="grid"/>'
                        f'<text x="{x:.1f}" y="{y + 12}" text-anchor="middle" class="tick">'
                        f'{decade:,}</text>')
        decade *= 10
    return _svg(y + 18, body, "how often each invariant was exercised, log scale")


def hot_path_chart(rows: Sequence[tuple[str, float, str]], unit: str = "ns") -> Markup:
    """Horizontal bars of per-call times: (label, value, colour) each."""
    bar, gap, top = 16, 6, 6
    scale = _BAR_W / max([1.0, *(v for _, v, _ in rows)])
    body: list[str] = []
    y = top
    for label, value, colour in rows:
        width = max(1.5, value * scale)
        body.append(f'<text x="{_LABEL_W - 10}" y="{y + bar - 4}" text-anchor="end" '
                    f'class="label">{escape(label)}</text>')
        body.append(f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="{bar}" rx="2" '
                    f'fill="{colour}"/>')
        body.append(f'<text x="{_LABEL_W + width + 6:.1f}" y="{y + bar - 4}" class="value">'
                    f'{_fmt(value)} {escape(unit)}</text>')
        y += bar + gap
    return _svg(y + 4, body, f"hot path, {unit} per call")
