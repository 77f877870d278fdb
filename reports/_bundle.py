"""Writing a certification bundle (SPEC §8) from a conformance result."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._certificate import build_certificate, validate_certificate
from ._manifest import MANIFEST, manifest_text
from ._render import render_html, render_junit, render_summary
from ._signing import PUBLIC_KEY, SIGNATURE, fingerprint, public_pem, sign

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from conformance import ConformanceResult

CERTIFICATE = "certificate.json"
HTML = "certificate.html"
SUMMARY = "summary.md"
JUNIT = "junit.xml"
BENCHMARK = "benchmark.json"
TRACES = "traces"
#: A shard's own slice of a -j N run (--shard I/N), for merge.
SLICE = "slice.json"
#: The files every bundle has, besides ``traces/*.json`` and the manifest.
BUNDLE_FILES = (CERTIFICATE, HTML, SUMMARY, JUNIT, BENCHMARK)
#: Files a bundle may hold outside its manifest.
UNLISTED = (MANIFEST, SIGNATURE, PUBLIC_KEY)


class BundleError(ValueError):
    """The output directory cannot take a bundle."""


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    certificate: dict[str, Any]
    #: Paths covered by the manifest, relative to ``path``.
    files: tuple[str, ...]
    signed: bool

    @property
    def traces(self) -> dict[str, Path]:
        return {i: self.path / r["first_counterexample"]
                for i, r in self.certificate["invariants"].items() if r["first_counterexample"]}


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def check_out_dir(path: Path) -> None:
    """Refuse a directory that holds anything but an earlier bundle (which is replaced)."""
    if path.exists() and not path.is_dir():
        raise BundleError(f"--out {str(path)!r} exists and is not a directory")
    if not path.is_dir():
        return
    entries = {p.name for p in path.iterdir()}
    if not entries:
        return
    if not entries & {CERTIFICATE, MANIFEST}:
        raise BundleError(f"--out {str(path)!r} is not empty and holds no earlier bundle; "
                          "choose a new or empty directory")
    strangers = entries - {*BUNDLE_FILES, *UNLISTED, TRACES}
    trace_dir = path / TRACES
    if trace_dir.is_dir():
        strangers |= {f"{TRACES}/{p.name}" for p in trace_dir.iterdir()
                      if p.suffix != ".json" or not p.is_file()}
    if strangers:
        raise BundleError(f"--out {str(path)!r} holds an earlier bundle and other files "
                          f"({', '.join(sorted(strangers)[:3])}); choose a new directory")


def _clear(path: Path) -> None:
    for name in (*BUNDLE_FILES, *UNLISTED):
        (path / name).unlink(missing_ok=True)
    trace_dir = path / TRACES
    if trace_dir.is_dir():
        for p in trace_dir.glob("*.json"):
            p.unlink()


def write_bundle(
    result: ConformanceResult,
    out_dir: Path,
    *,
    required: Sequence[str] = ("conformant",),
    benchmark: Mapping[str, Any] | None = None,
    signing_key: Ed25519PrivateKey | None = None,
    display_dir: str | None = None,
    expectations_file: Mapping[str, str] | None = None,
    merged_from: Sequence[str] | None = None,
) -> Bundle:
    """Write every file of the bundle into ``out_dir`` and return what was written.

    ``display_dir`` is how replay commands in the texts name the bundle (default: the path
    as given); the certificate is validated against its schema before anything is written.
    """
    check_out_dir(out_dir)
    shown = (display_dir or str(out_dir)).rstrip("/") or "."
    spec = result.adapter_spec
    bench = dict(benchmark) if benchmark is not None else {"hot_path": None,
                                                          "run": dict(result.stats)}
    reports = {i: r.violation for i, r in result.invariants.items()
               if r.status == "fail" and r.violation is not None}
    traces = {i: f"{TRACES}/{i}.json" for i in reports}
    texts = {i: v.render(spec, f"{shown}/{traces[i]}") for i, v in reports.items()}
    trace_docs = {i: v.trace(spec) for i, v in reports.items()}
    cert = build_certificate(
        result, required=required, benchmark=bench, traces=traces,
        signing_fingerprint=None if signing_key is None else fingerprint(
            signing_key.public_key()), expectations_file=expectations_file,
        merged_from=merged_from)
    validate_certificate(cert)

    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    files: dict[str, str] = {
        CERTIFICATE: _json(cert),
        HTML: render_html(cert, texts, shown, trace_docs),
        SUMMARY: render_summary(cert, shown),
        JUNIT: render_junit(cert, texts),
        BENCHMARK: _json(bench),
    }
    files.update({traces[i]: _json(doc) for i, doc in trace_docs.items()})
    if result.slice is not None:
        # A shard's own slice, which merge reads back (in the manifest like the rest).
        files[SLICE] = _json(result.slice)
    if reports:
        (out_dir / TRACES).mkdir(exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8", newline="\n")
    manifest = manifest_text(out_dir, files)
    (out_dir / MANIFEST).write_text(manifest, encoding="utf-8", newline="\n")
    if signing_key is not None:
        (out_dir / SIGNATURE).write_bytes(sign(signing_key, manifest.encode("utf-8")))
        (out_dir / PUBLIC_KEY).write_bytes(public_pem(signing_key.public_key()))
    return Bundle(out_dir, cert, tuple(sorted(files)), signing_key is not None)
