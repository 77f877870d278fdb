"""``verify``: numbered checks of a bundle's integrity, signature and internal consistency."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance import (
    CUSTOM,
    INVARIANTS,
    LEVELS,
    PROFILES,
    TRACE_FORMAT,
    LevelVerdict,
    level_verdicts,
    slice_examples,
)
from conformance import __version__ as suite_version

from ._bundle import BENCHMARK, BUNDLE_FILES, CERTIFICATE, SLICE, UNLISTED
from ._certificate import (
    COVERAGE_DIMENSIONS,
    COVERAGE_SINCE,
    VERDICTS_SINCE,
    coverage_problems,
    schema_errors,
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

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
_ID = re.compile(r"\b[A-Z]+-[0-9]+\b")


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


def _few(items: Sequence[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _count(n: object) -> int | None:
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _examples(n: int) -> str:
    return f"{n:,} example{'' if n == 1 else 's'}"


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

    def _format(self) -> int:
        """The certificate's format version (the current one when it names none: the schema
        check says so)."""
        version = _count(self.cert.get("format_version"))
        return version if version is not None else VERDICTS_SINCE

    def _verdicts(self) -> dict[str, LevelVerdict]:
        """Every level's verdict, recomputed from the invariant statuses."""
        return level_verdicts({i: str(r.get("status")) for i, r in self._invariants().items()
                               if i in INVARIANTS})

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
        verdicts = self._verdicts()
        # From format 3 a level is met when nothing it rests on failed and all of it was
        # exercised; before, ``levels`` said only that nothing failed (check 7 asks the rest).
        current = self._format() >= VERDICTS_SINCE
        expected = {lv: v.met if current else not v.failed for lv, v in verdicts.items()}
        claimed = self.cert.get("levels", {})
        for level in LEVELS:
            if claimed.get(level) != expected[level]:
                problems.append(f"{level} is {json.dumps(claimed.get(level))} but the "
                                f"invariant results say {json.dumps(expected[level])}"
                                + (f" ({verdicts[level].why()})" if current else ""))
        verdict = self.cert.get("verdict", {})
        required = [lv for lv in verdict.get("required", []) if lv in LEVELS]
        not_met = [lv for lv in required if not expected[lv]]
        missing = {i for lv in required for i in verdicts[lv].unexercised}
        want: dict[str, Any] = {
            "not_met": not_met,
            "unexercised": [i for i in invariants if i in missing],
            "met": not not_met and not missing}
        problems += [f"verdict.{k} is {json.dumps(verdict.get(k))}, expected {json.dumps(v)}"
                     for k, v in want.items() if verdict.get(k) != v]
        if current:
            problems += self._why_problems(verdict.get("why"), verdicts)
        if problems:
            return FAIL, _few(problems)
        met = [lv for lv in LEVELS if expected[lv]]
        return PASS, f"levels met: {', '.join(met) or 'none'}; the verdict agrees"

    @staticmethod
    def _why_problems(why: object, verdicts: Mapping[str, LevelVerdict]) -> list[str]:
        """``verdict.why`` gives every level a reason that names what failed (or, when nothing
        did, what was never exercised) and nothing else (the wording may change between suite
        versions; those facts may not)."""
        if not isinstance(why, Mapping) or set(why) != set(LEVELS):
            return [f"verdict.why does not give a reason for each of {', '.join(LEVELS)}"]
        problems = []
        for level, v in verdicts.items():
            named = set(_ID.findall(str(why[level])))
            if not set(v.failed or v.unexercised) <= named <= {*v.failed, *v.unexercised}:
                problems.append(f"verdict.why of {level} is {json.dumps(why[level])}, "
                                f"expected {json.dumps(v.why())}")
        return problems

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
        verdicts = self._verdicts()
        claimed = [lv for lv in LEVELS if self.cert.get("levels", {}).get(lv) is True]
        problems = [f"{level} claimed but {', '.join(missing)} never exercised"
                    for level in claimed if (missing := verdicts[level].unexercised)]
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
        try:  # its metadata, not the package: verify never loads Hypothesis
            installed = metadata.version("hypothesis")
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if (suite_version, installed) != (suite.get("version"), hyp):
            detail += (f"; this installation has suite {suite_version} and Hypothesis "
                       f"{installed}, so a fresh run may differ")
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

    def budget(self) -> tuple[str, str]:
        """A run that names a profile ran that profile's whole budget (or stopped early at a
        violation); a run of any other budget is ``custom``."""
        run = self.cert.get("run") or {}
        settings = run.get("settings") or {}
        stats = self.cert.get("stats") or {}
        profile, based_on = run.get("profile"), settings.get("based_on")
        budget = _count(settings.get("max_examples"))
        if budget is None:
            return FAIL, f"settings.max_examples is {json.dumps(settings.get('max_examples'))}"
        version = self._format()
        if version < VERDICTS_SINCE:
            # Before format 3 a reduced budget kept its profile's name, and stats.examples
            # counted shrink replays and workloads too: only the budget can be compared.
            want = PROFILES[profile].max_examples if profile in PROFILES else None
            if budget == want:
                return PASS, (f"profile {profile}, its budget of {_examples(budget)} (format "
                              f"{version} does not count the examples run)")
            # It claims a profile it did not run: the overstatement format 3 ends.
            return FAIL, (f"claims profile {profile} but its budget was {_examples(budget)}"
                          + (f", not {want}" if want is not None else "")
                          + f" (a format {version} certificate; format {VERDICTS_SINCE} "
                          f"calls such a run {CUSTOM})")
        examples = _count(stats.get("examples"))
        if examples is None:
            return FAIL, f"stats.examples is {json.dumps(stats.get('examples'))}"
        shard = run.get("shard")
        if isinstance(shard, dict):
            # A shard runs its slice of the budget (conformance._slices.plan).
            index, of = int(shard["index"]), int(shard["of"])
            share = slice_examples(budget, of, index)
            if examples > share or (not run.get("stopped_early") and examples != share):
                return FAIL, (f"shard {index} of {of}: ran {examples} examples of its slice "
                              f"of {share}")
            return PASS, (f"shard {index} of {of}: its slice of {_examples(share)} of the "
                          f"{_examples(budget)}"
                          + (", stopped early at a violation" if run.get("stopped_early")
                             else ", all run"))
        stopped = run.get("stopped_early")
        if not isinstance(stopped, bool):
            return FAIL, f"run.stopped_early is {json.dumps(stopped)}"
        if stats.get("stopped_early", stopped) != stopped:
            return FAIL, (f"run.stopped_early is {json.dumps(stopped)} but stats.stopped_early "
                          f"is {json.dumps(stats['stopped_early'])}")
        if profile in PROFILES:
            want = PROFILES[profile].max_examples
            if budget != want or (not stopped and examples != want):
                return FAIL, (f"claims profile {profile} but ran {examples} of {want} examples"
                              + (f" (a budget of {budget}: {CUSTOM})" if budget != want else ""))
            if based_on != profile:
                return FAIL, (f"claims profile {profile} but settings.based_on is "
                              f"{json.dumps(based_on)}")
            what = f"profile {profile}, its budget of {_examples(want)}"
        elif profile == CUSTOM:
            what = f"custom budget of {_examples(budget)} (based on {based_on})"
            if not stopped and examples != budget:
                return FAIL, f"{what}, but {examples} ran and the run did not stop early"
        else:
            return FAIL, f"names no known profile: {json.dumps(profile)}"
        if not stopped:
            return PASS, f"{what}, all run"
        if examples >= budget:
            return FAIL, f"{what}: stopped early, yet {examples} ran"
        breakers = [i for i, r in self._invariants().items()
                    if r.get("status") == "fail" and r.get("level") == LEVELS[0]]
        if not breakers:
            return FAIL, (f"{what}: stopped early, but no {LEVELS[0]} invariant failed (only "
                          "such a violation ends a run early)")
        return PASS, (f"{what}; stopped early at a violation ({_few(breakers, 3)}) after "
                      f"{_examples(examples)}")

    def whole(self) -> tuple[str, str]:
        """A whole run's certificate, not one shard's: a shard is accepted as partial only."""
        run = self.cert.get("run") or {}
        shard, merged = run.get("shard"), run.get("merged")
        if isinstance(shard, dict):
            if SLICE not in self._files_on_disk():
                return FAIL, f"a shard's bundle without its {SLICE}: merge cannot use it"
            return SKIP, (f"PARTIAL: shard {shard['index']} of {shard['of']} of a run, not a "
                          "certificate of the whole run; merge the shards for one")
        if isinstance(merged, dict):
            return PASS, f"merged from {merged['shards']} shards (their manifests recorded)"
        workers = run.get("workers", 1)
        return PASS, ("one run" + (f" in {workers} workers" if workers != 1 else ""))

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
            ("profile budget", self.budget),
            ("a whole run, not a shard", self.whole),
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
