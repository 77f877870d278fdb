"""``verify``: numbered checks of a bundle's integrity, signature and internal consistency."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conformance._invariants import INVARIANTS, LEVELS

from ._bundle import BENCHMARK, BUNDLE_FILES, CERTIFICATE, UNLISTED
from ._certificate import (
    COVERAGE_DIMENSIONS,
    COVERAGE_SINCE,
    coverage_problems,
    levels_from,
    schema_errors,
    unexercised,
)
from ._manifest import MANIFEST, ManifestError, parse_manifest, sha256_file
from ._signing import (
    PUBLIC_KEY,
    SIGNATURE,
    SigningKeyError,
    fingerprint,
    public_key_from_pem,
    signature_valid,
)

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
TRACE_FORMAT = "wcifs-conformance-trace"


class NotABundle(ValueError):
    """The directory is missing, or its certificate cannot be read at all."""


@dataclass(frozen=True, slots=True)
class Check:
    number: int
    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


class _Verifier:
    def __init__(self, root: Path, public_key: Ed25519PublicKey | None) -> None:
        self.root = root
        self.public_key = public_key
        try:
            text = (root / CERTIFICATE).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotABundle(f"{str(root)!r} is not a bundle: it has no {CERTIFICATE}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise NotABundle(f"cannot read {str(root / CERTIFICATE)!r}: {e}") from None
        try:
            cert = json.loads(text)
        except json.JSONDecodeError as e:
            raise NotABundle(f"{str(root / CERTIFICATE)!r} is not JSON: {e}") from None
        if not isinstance(cert, dict):
            raise NotABundle(f"{str(root / CERTIFICATE)!r} is not a certificate (not an object)")
        self.cert: dict[str, Any] = cert
        self.manifest: dict[str, str] | None = None
        self.manifest_problem = ""
        try:
            self.manifest_bytes: bytes | None = (root / MANIFEST).read_bytes()
            self.manifest = parse_manifest(self.manifest_bytes.decode("utf-8"))
        except FileNotFoundError:
            self.manifest_bytes = None
            self.manifest_problem = f"{MANIFEST} is missing"
        except (ManifestError, UnicodeDecodeError) as e:
            self.manifest_problem = f"{MANIFEST} is malformed: {e}"

    # --- helpers ------------------------------------------------------------------------
    def _invariants(self) -> Mapping[str, Mapping[str, Any]]:
        inv = self.cert.get("invariants")
        if not isinstance(inv, dict) or not all(isinstance(r, dict) for r in inv.values()):
            raise ValueError("certificate has no 'invariants' object")
        return inv

    def _files_on_disk(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    # --- checks -------------------------------------------------------------------------
    def files_present(self) -> tuple[str, str]:
        problems: list[str] = []
        on_disk = self._files_on_disk()
        problems += [f"{name} is missing" for name in BUNDLE_FILES if name not in on_disk]
        if self.manifest is None:
            problems.append(self.manifest_problem)
        else:
            problems += [f"{name} is listed in {MANIFEST} but missing"
                         for name in self.manifest if name not in on_disk
                         and name not in BUNDLE_FILES]
            problems += [f"{name} is not listed in {MANIFEST}" for name in BUNDLE_FILES
                         if name in on_disk and name not in self.manifest]
            problems += [f"{name} is not covered by {MANIFEST}" for name in sorted(on_disk)
                         if name not in self.manifest and name not in UNLISTED]
        try:
            for inv_id, r in self._invariants().items():
                trace = r.get("first_counterexample")
                if isinstance(trace, str) and trace not in on_disk:
                    problems.append(f"{trace} (counterexample of {inv_id}) is missing")
        except ValueError:
            pass  # the schema check names it
        if problems:
            return FAIL, _few(problems)
        traces = sum(1 for n in on_disk if n.startswith("traces/"))
        return PASS, (f"{len(BUNDLE_FILES)} report files, {traces} trace"
                      f"{'' if traces == 1 else 's'}, all listed in {MANIFEST}")

    def hashes(self) -> tuple[str, str]:
        if self.manifest is None:
            return FAIL, self.manifest_problem
        changed, checked = [], 0
        for name, digest in self.manifest.items():
            path = self.root / name
            if not path.is_file():
                continue
            checked += 1
            if sha256_file(path) != digest:
                changed.append(name)
        if changed:
            return FAIL, f"content differs from {MANIFEST}: {_few(changed)}"
        missing = len(self.manifest) - checked
        note = f" ({missing} listed file{'s' if missing > 1 else ''} missing)" if missing else ""
        return PASS, f"{checked} file{'' if checked == 1 else 's'} match their sha256{note}"

    def signature(self) -> tuple[str, str]:
        recorded = self.cert.get("signing")
        named = recorded.get("public_key_fingerprint") if isinstance(recorded, dict) else None
        sig_path = self.root / SIGNATURE
        if not sig_path.is_file():
            if named:
                return FAIL, (f"{SIGNATURE} is missing, but the certificate says the bundle was "
                              f"signed by {named}")
            if self.public_key is not None:
                return FAIL, "the bundle is not signed, but a public key was given to check it"
            return SKIP, "the bundle is not signed (certify --sign-key signs it)"
        if self.manifest_bytes is None:
            return FAIL, f"{MANIFEST} is missing: nothing to check the signature against"
        if self.public_key is not None:
            key, whose = self.public_key, "the given public key"
        else:
            try:
                key = public_key_from_pem((self.root / PUBLIC_KEY).read_bytes(), PUBLIC_KEY)
            except FileNotFoundError:
                return FAIL, f"no key to check it with: pass --public-key (no {PUBLIC_KEY})"
            except SigningKeyError as e:
                return FAIL, str(e)
            whose = (f"the bundled {PUBLIC_KEY}; this shows integrity, not who signed: pass "
                     "--public-key to check the signer")
        if not signature_valid(key, sig_path.read_bytes(), self.manifest_bytes):
            return FAIL, (f"{SIGNATURE} is not a valid signature of {MANIFEST} by "
                          f"{fingerprint(key)} ({whose.split(';')[0]}): signed by another key, "
                          "or the manifest changed")
        if named and named != fingerprint(key):
            return FAIL, (f"signature valid for {fingerprint(key)}, but the certificate names "
                          f"the signing key {named}")
        return PASS, f"valid Ed25519 signature by {fingerprint(key)} ({whose})"

    def schema(self) -> tuple[str, str]:
        errors = schema_errors(self.cert)
        if errors:
            return FAIL, _few(errors, 3)
        return PASS, "certificate.json matches certificate.schema.json"

    def levels(self) -> tuple[str, str]:
        invariants = self._invariants()
        problems = []
        mislabelled = [i for i, r in invariants.items()
                       if i in INVARIANTS and r.get("level") != INVARIANTS[i].level]
        if mislabelled:
            problems.append(f"level of {_few(mislabelled)} differs from the catalogue")
        expected = levels_from(invariants)
        claimed = self.cert.get("levels", {})
        for level in LEVELS:
            if claimed.get(level) != expected[level]:
                problems.append(f"{level} is {json.dumps(claimed.get(level))} but the "
                                f"invariant results say {json.dumps(expected[level])}")
        verdict = self.cert.get("verdict", {})
        required = [lv for lv in verdict.get("required", []) if lv in LEVELS]
        not_met = [lv for lv in required if not claimed.get(lv)]
        missing = unexercised(invariants, required)
        want = {"not_met": not_met, "unexercised": missing, "met": not not_met and not missing}
        problems += [f"verdict.{k} is {json.dumps(verdict.get(k))}, expected {json.dumps(v)}"
                     for k, v in want.items() if verdict.get(k) != v]
        if problems:
            return FAIL, _few(problems)
        met = [lv for lv in LEVELS if expected[lv]]
        return PASS, f"levels met: {', '.join(met) or 'none'}; the verdict agrees"

    def counterexamples(self) -> tuple[str, str]:
        problems = []
        failed = 0
        on_disk = self._files_on_disk()
        for inv_id, r in self._invariants().items():
            status, n, trace = r.get("status"), r.get("exercised"), r.get("first_counterexample")
            if status == "pass" and not (isinstance(n, int) and n > 0):
                problems.append(f"{inv_id} passes but was exercised {n} times")
            if status == "not-exercised" and n != 0:
                problems.append(f"{inv_id} is not-exercised but has a count of {n}")
            if status == "fail":
                failed += 1
                if not trace:
                    problems.append(f"{inv_id} failed but names no counterexample")
            elif trace:
                problems.append(f"{inv_id} is {status} but names a counterexample")
            if isinstance(trace, str) and trace in on_disk:  # never a path outside the bundle
                try:
                    data = json.loads((self.root / trace).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    data = None
                if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
                    problems.append(f"{trace} is not a trace")
                elif data.get("invariant") != inv_id:
                    problems.append(f"{trace} is a trace of {data.get('invariant')}, not {inv_id}")
        try:
            bench = json.loads((self.root / BENCHMARK).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            bench = None
        if bench is not None and bench != self.cert.get("benchmark"):
            problems.append(f"{BENCHMARK} differs from the certificate's benchmark")
        if problems:
            return FAIL, _few(problems)
        return PASS, (f"statuses agree with exercised counts; {failed} failure"
                      f"{'' if failed == 1 else 's'}, each with its trace")

    def exercised(self) -> tuple[str, str]:
        invariants = self._invariants()
        claimed = [lv for lv in LEVELS if self.cert.get("levels", {}).get(lv) is True]
        problems = [f"{level} claimed but {', '.join(missing)} never exercised"
                    for level in claimed if (missing := unexercised(invariants, [level]))]
        if problems:
            return FAIL, "; ".join(problems)
        if not claimed:
            return PASS, "no level claimed"
        return PASS, f"every invariant of {', '.join(claimed)} was exercised"

    def versions(self) -> tuple[str, str]:
        suite = self.cert.get("suite") or {}
        run = self.cert.get("run") or {}
        hyp = (run.get("versions") or {}).get("hypothesis")
        fields = {"suite version": suite.get("version"), "suite commit": suite.get("commit"),
                  "protocol version": suite.get("protocol_version"), "Hypothesis version": hyp}
        missing = [k for k, v in fields.items() if v in (None, "", "unknown", 0)
                   and k != "suite commit"]
        if suite.get("commit") in (None, ""):
            missing.append("suite commit")
        if missing:
            return FAIL, f"not recorded: {', '.join(missing)}"
        commit = str(suite.get("commit"))
        commit = f"commit {commit[:12]}" if commit != "unknown" else (
            "commit unknown: an installed wheel")
        detail = (f"suite {suite.get('version')} ({commit}), protocol "
                  f"{suite.get('protocol_version')}, Hypothesis {hyp}")
        import hypothesis

        from conformance._version import __version__

        if (__version__, hypothesis.__version__) != (suite.get("version"), hyp):
            detail += (f"; this installation has suite {__version__} and Hypothesis "
                       f"{hypothesis.__version__}, so a fresh run may differ")
        return PASS, detail

    def coverage(self) -> tuple[str, str]:
        version = self.cert.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) \
                and version < COVERAGE_SINCE:
            return SKIP, (f"a format_version {version} certificate records no coverage "
                          f"(recorded from version {COVERAGE_SINCE})")
        invariants = self._invariants()
        problems = coverage_problems(invariants, self.cert.get("coverage"))
        if problems:
            return FAIL, _few(problems, 3)
        exercised = sum(1 for r in invariants.values() if r.get("exercised"))
        return PASS, (f"the {', '.join(COVERAGE_DIMENSIONS)} breakdowns of each invariant add "
                      f"up to its exercised count ({exercised} of {len(invariants)} exercised)")

    def run(self) -> list[Check]:
        plan: list[tuple[str, Callable[[], tuple[str, str]]]] = [
            ("files present", self.files_present),
            ("hashes match", self.hashes),
            ("signature", self.signature),
            ("certificate matches its schema", self.schema),
            ("levels follow from the invariant results", self.levels),
            ("invariant results consistent", self.counterexamples),
            ("every invariant of a claimed level exercised", self.exercised),
            ("suite and Hypothesis versions recorded", self.versions),
            # New checks go last: the numbers of the ones above are public (README, CI logs).
            ("coverage adds up to the exercised counts", self.coverage),
        ]
        checks = []
        for n, (name, check) in enumerate(plan, 1):
            try:
                status, detail = check()
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                status, detail = FAIL, f"cannot check: {type(e).__name__}: {e}"
            checks.append(Check(n, name, status, detail))
        return checks


def verify_bundle(path: Path, public_key: Ed25519PublicKey | None = None) -> list[Check]:
    """Run every check on the bundle at ``path``; raise :class:`NotABundle` if there is none."""
    if not path.is_dir():
        raise NotABundle(f"{str(path)!r} is not a directory")
    return _Verifier(path, public_key).run()
