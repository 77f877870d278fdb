"""The ``wcifs-conformance`` command line (SPEC §8).

Exit codes: 0 every required level met; 1 a required level not met (or a replayed
violation recurs, or a bundle check failed); 2 usage error, unknown adapter spec, malformed
trace or bundle; 3 the adapter could not be loaded or started, or broke the protocol.
Errors are one line on stderr, never a traceback (``WCIFS_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from ._errors import ConformanceError, InternalError, TraceError
from ._faults import DEFAULT_CALL_TIMEOUT

if TYPE_CHECKING:
    from ._engine import ConformanceResult
    from ._session import AdapterSession

PROG = "wcifs-conformance"
EXIT_OK, EXIT_NOT_MET, EXIT_USAGE, EXIT_ADAPTER, EXIT_INTERNAL = 0, 1, 2, 3, 4
DEFAULT_OUT = Path("reports", "out")
PASSPHRASE_ENV = "WCIFS_SIGN_KEY_PASSPHRASE"
DEBUG_ENV = "WCIFS_DEBUG"
LEVEL_NAMES = ("conformant", "signature-current", "optimized")
PROFILE_NAMES = ("quick", "certify", "deep")


class CliError(Exception):
    """A failure the command line reports as one line, with the exit code it maps to."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --- argument parsing -----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}\n")


def _levels(text: str) -> list[str]:
    levels = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [lv for lv in levels if lv not in LEVEL_NAMES]
    if unknown or not levels:
        raise argparse.ArgumentTypeError(
            f"unknown level {', '.join(map(repr, unknown)) or '(none)'}; choose from "
            f"{', '.join(LEVEL_NAMES)}, comma-separated")
    return list(dict.fromkeys(levels))


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _shard(text: str) -> tuple[int, int]:
    index, _, of = text.partition("/")
    try:
        i, n = int(index), int(of)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give I/N, e.g. 2/4") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be from 1 to N")
    return i, n


def _seed(text: str) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return n


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Property-based conformance suite for AV filters on Windows container hosts.",
        epilog="Exit codes: 0 required levels met; 1 not met; 2 usage error, unknown adapter "
               "spec, malformed trace or bundle; 3 the adapter could not be loaded or started.",
    )
    p.add_argument("--version", action="store_true", help="print the suite, protocol and "
                   "Hypothesis versions and exit")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    adapter_help = ("the adapter: reference, module.path:attr, path/to/file.py:attr, "
                    "\"exec:COMMAND [ARGS]\" (a process speaking docs/PROTOCOL.md) or lib:PATH "
                    "(a C library, conformance/include/wcifs_adapter.h)")

    c = sub.add_parser("certify", help="run the conformance checks and write a certification "
                       "bundle", description="Check an adapter against every invariant and "
                       "write the certification bundle (SPEC §8).")
    c.add_argument("--adapter", required=True, metavar="SPEC", help=adapter_help)
    c.add_argument("--profile", choices=PROFILE_NAMES, default="quick",
                   help="run profile (default: quick; certify is derandomized)")
    c.add_argument("--seed", type=_seed, metavar="N",
                   help="seed (default: random for quick and deep, fixed for certify)")
    c.add_argument("--require", type=_levels, default=["conformant"], metavar="LEVEL[,LEVEL...]",
                   help="levels that must be met for exit status 0 (default: conformant)")
    c.add_argument("--out", type=Path, metavar="DIR",
                   help="bundle directory (default: reports/out/<adapter>-<UTC timestamp>/)")
    c.add_argument("--sign-key", type=Path, metavar="PATH",
                   help=f"Ed25519 private key (PEM) to sign the bundle with; an encrypted key "
                        f"takes its passphrase from ${PASSPHRASE_ENV}")
    c.add_argument("--max-examples", type=_count, metavar="N",
                   help="override the profile's number of generated examples (quick local "
                        "runs and tests; not for certification)")
    c.add_argument("--no-bench", action="store_true",
                   help="skip the hot-path benchmark; the certificate records the run's own "
                        "figures instead")
    c.add_argument("-j", "--jobs", type=_count, default=1, metavar="N",
                   help="split the budget across N worker processes (seeds derived from the "
                        "run's: a passing run's results depend on the seed and N)")
    c.add_argument("--shard", type=_shard, metavar="I/N",
                   help="run only what worker I of -j N runs (1-based), into a partial "
                        "bundle; shard 1 also runs the workloads and the benchmark. Join "
                        "the shards with merge")
    c.add_argument("--cluster", metavar="ADDRESS",
                   help="run the -j N slices as tasks of the dask.distributed scheduler at "
                        "ADDRESS (tcp://host:8786), or of a LocalCluster with 'local' "
                        "(optional extra: pip install 'wcifs-av-conformance[cluster]')")
    c.add_argument("--expect", type=Path, metavar="FILE.toml",
                   help="known failures, one [ID] table with a reason each (docs/"
                        "ADAPTER_GUIDE.md): they are recorded and the run goes on; the exit "
                        "code then reflects only results that differ from the file (the "
                        "levels do not change)")
    _isolation_options(c)
    talk = c.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="print only the verdict line and the certificate's path")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="print every violation in full")
    c.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the verdicts (default: auto, on a terminal unless NO_COLOR "
                        "is set)")
    c.set_defaults(func=_certify)

    r = sub.add_parser("replay", help="re-run a counterexample trace deterministically",
                       description="Replay a trace written by certify (traces/<ID>.json) "
                       "against an adapter; exit 1 if its violation, or any violation at a "
                       "required level, recurs; 0 otherwise.")
    r.add_argument("trace", type=Path, metavar="TRACE.json")
    r.add_argument("--adapter", required=True, metavar="SPEC", help=adapter_help)
    r.add_argument("--require", type=_levels, default=["conformant"], metavar="LEVEL[,LEVEL...]",
                   help="levels whose violations count against the replay (default: "
                        "conformant; every level rests on it)")
    r.add_argument("--calls", action="store_true",
                   help="show the whole dialogue: every call the adapter received, what it "
                        "was handed and what it answered, under the step that caused it")
    _isolation_options(r)
    r.set_defaults(func=_replay)

    b = sub.add_parser("bench", help="benchmark the adapter's cache hot path (SPEC §9)")
    b.add_argument("--adapter", required=True, metavar="SPEC", help=adapter_help)
    b.add_argument("--out", type=Path, metavar="DIR",
                   help="where benchmark.json goes (default: reports/out/<adapter>-bench-"
                        "<UTC timestamp>/)")
    b.add_argument("--call-timeout", type=_seconds, default=DEFAULT_CALL_TIMEOUT,
                   metavar="SECONDS", help="the longest an adapter call may take (default: "
                   f"{DEFAULT_CALL_TIMEOUT:g})")
    b.set_defaults(func=_bench)

    m = sub.add_parser("compare", help="what changed between two certification bundles",
                       description="Compare two bundles per level, invariant, workload and "
                       "hot-path figure; exit 1 on a regression (a level lost, an invariant "
                       "from pass to fail, a workload costing more scans), 0 otherwise, 2 when "
                       "either folder is not a bundle. Hot-path changes never gate.")
    m.add_argument("old", type=Path, metavar="OLD_BUNDLE")
    m.add_argument("new", type=Path, metavar="NEW_BUNDLE")
    m.add_argument("--markdown", type=Path, metavar="FILE",
                   help="also write the comparison as Markdown (for a pull-request comment)")
    m.set_defaults(func=_compare)

    g = sub.add_parser("merge", help="join the shards of a run (certify --shard I/N) into its "
                       "certification bundle", description="Check that the shards come from "
                       "one run (suite, adapter, seed, N) and cover its budget once, and write "
                       "the bundle certify -j N would have written. Exit 0 when the required "
                       "levels are met, 1 when not, 2 when the shards do not make one run.")
    g.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR")
    g.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="the merged bundle's directory")
    g.add_argument("--sign-key", type=Path, metavar="PATH",
                   help="Ed25519 private key (PEM) to sign the merged bundle with")
    g.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the verdicts (default: auto)")
    g.set_defaults(func=_merge)

    v = sub.add_parser("verify", help="check a bundle's manifest, signature and consistency",
                       description="Run numbered checks on a certification bundle; exit 0 if "
                       "all pass, 1 if one fails, 2 if DIR is not a bundle.")
    v.add_argument("bundle", type=Path, metavar="DIR")
    v.add_argument("--public-key", type=Path, metavar="PATH",
                   help="the signer's Ed25519 public key (PEM); the signature must be by it")
    v.set_defaults(func=_verify)

    i = sub.add_parser("invariants", help="print the invariant catalogue (SPEC §6)")
    fmt = i.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="as JSON, with each entry's "
                     "exercise and violation clauses")
    fmt.add_argument("--markdown", action="store_true",
                     help="as Markdown (docs/INVARIANTS.md is this output)")
    i.set_defaults(func=_invariants)

    k = sub.add_parser("keygen", help="make an Ed25519 key pair for signing bundles",
                       description="Write NAME.pem (private, mode 0600) and NAME.pub (public) "
                       f"into DIR. With ${PASSPHRASE_ENV} set, the private key is encrypted.")
    k.add_argument("--out-dir", type=Path, default=Path("."), metavar="DIR",
                   help="directory for the key files (default: the current one)")
    k.add_argument("--name", default="wcifs-signing-key", metavar="NAME",
                   help="file name stem (default: wcifs-signing-key)")
    k.add_argument("--force", action="store_true", help="overwrite existing key files")
    k.set_defaults(func=_keygen)
    return p


def _isolation_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--isolate", dest="in_process", action="store_false",
                       help="run the adapter in its own process (the default, SPEC §10)")
    where.add_argument("--in-process", dest="in_process", action="store_true",
                       help="load a Python or lib: adapter into the suite's own process: "
                            "faster local iteration; written on the certificate")
    p.set_defaults(in_process=False)
    p.add_argument("--call-timeout", type=_seconds, default=DEFAULT_CALL_TIMEOUT,
                   metavar="SECONDS", help="the longest an adapter call may take before it "
                   f"counts as a hang, SAFE-13 (default: {DEFAULT_CALL_TIMEOUT:g})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, "
                                         "at most 3600")
    return value


# --- entry point ----------------------------------------------------------------------------
def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def run(argv: Sequence[str]) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    p = parser()
    try:
        args = p.parse_args(list(argv))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.version:
        from ._engine import versions

        v = versions()
        print(f"{PROG} {v['suite']} (commit {v['suite_commit'][:12]}), protocol "
              f"{v['protocol']}, Hypothesis {v['hypothesis']}, Python {v['python']}")
        return EXIT_OK
    if args.verb is None:
        p.print_help(sys.stderr)
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as e:
        _error(e.message)
        return e.exit_code
    except InternalError as e:
        _debug_traceback()
        where = _save_internal_trace(e.trace)
        example = f" with {where}, the example that triggered it" if where else ""
        _error(f"internal error of the suite: {e}; this is a bug in the suite, not in the "
               f"adapter: please report it{example} (set {DEBUG_ENV}=1 for the traceback)")
        return EXIT_INTERNAL
    except ConformanceError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, as a shell's SIGPIPE would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        _debug_traceback()
        where = f" {e.filename!r}" if e.filename else ""
        _error(f"{e.strerror or e}{':' if where else ''}{where}")
        return EXIT_USAGE
    except Exception as e:
        _debug_traceback()
        _error(f"internal error of the suite: {type(e).__name__}: {e}; this is a bug in the "
               f"suite: please report it with the command line (set {DEBUG_ENV}=1 for the "
               "traceback)")
        return EXIT_INTERNAL


def _save_internal_trace(trace: dict[str, object] | None) -> str:
    """Write the example behind an internal error where a report can pick it up."""
    if not trace:
        return ""
    path = _default_dir("internal-error").with_suffix(".json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(trace, indent=2) + "\n", encoding="utf-8")
    except OSError:
        return ""
    return str(path)


def _debug_traceback() -> None:
    if os.environ.get(DEBUG_ENV):
        traceback.print_exc()


def _adapter_failure(e: Exception, doing: str) -> CliError:
    """An exception that escaped the harness while it ran adapter code: exit 3."""
    _debug_traceback()
    return CliError(f"{doing} stopped on {type(e).__name__}: {e} (set {DEBUG_ENV}=1 for the "
                    "traceback)", EXIT_ADAPTER)


def _reports() -> ModuleType:
    """The suite's ``reports`` package (a ``reports/`` directory in the current directory
    can shadow it when the suite is installed in editable mode)."""
    import reports

    if not hasattr(reports, "write_bundle"):
        where = ", ".join(getattr(reports, "__path__", [])) or "?"
        raise CliError(f"the suite's reports package is shadowed by {where}; run from another "
                       f"directory or use the {PROG} script")
    return reports


def _open(args: argparse.Namespace) -> AdapterSession:
    """The adapter named by ``--adapter``, isolated unless ``--in-process``."""
    from ._session import open_adapter

    return open_adapter(args.adapter, isolate=not getattr(args, "in_process", False),
                        call_timeout=args.call_timeout)


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "adapter"


def _default_dir(name: str, suffix: str = "") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = DEFAULT_OUT / f"{_slug(name)}{suffix}-{stamp}"
    path, n = base, 2
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


# --- certify --------------------------------------------------------------------------------
class _Progress:
    """Progress of a run on stderr: a live rich display on a terminal, a plain line at
    each phase and every ``PLAIN_EVERY`` seconds elsewhere (CI logs), nothing with
    ``--quiet``."""

    PLAIN_EVERY = 10.0

    def __init__(self, verbose: bool, total: int, *, quiet: bool = False,
                 color: bool = True) -> None:
        tty = sys.stderr.isatty()
        self.mode = "off" if quiet else (
            "rich" if tty and (verbose or not os.environ.get("CI")) else "plain")
        self.color = color
        self.total = total
        self.phase = ""
        self.last = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description:<11}"), BarColumn(),
                TextColumn("{task.fields[examples]:>7,} examples"),
                TextColumn("[{task.fields[style]}]{task.fields[violations]} violation(s)"),
                TimeElapsedColumn(), console=Console(stderr=True, no_color=not self.color),
                transient=True)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total, examples=0,
                                                 violations=0, style="green")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, phase: str, examples: int, violations: int) -> None:
        if self.mode == "rich":
            done = min(examples, self.total) if phase == "generating" else self.total
            # Red only while a conformant-breaking violation is shrunk; others may not
            # matter to the levels required.
            style = "red" if phase == "shrinking" else ("yellow" if violations else "green")
            self._progress.update(self._task, description=phase, completed=done,
                                  examples=examples, violations=violations, style=style)
        elif self.mode == "plain":
            now = time.monotonic()
            if phase != self.phase or now - self.last >= self.PLAIN_EVERY:
                of = f" of {self.total:,}" if phase == "generating" else ""
                print(f"{PROG}: {phase}: {examples:,}{of} examples, {violations} "
                      "violation(s)", file=sys.stderr, flush=True)
                self.phase, self.last = phase, now

    def note(self, text: str) -> None:
        if self.mode != "off":
            print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def _benchmark(session: AdapterSession, result: ConformanceResult, skip: bool,
               progress: _Progress) -> dict[str, Any]:
    fallback: dict[str, Any] = {"hot_path": None, "run": dict(result.stats)}
    if skip:
        return fallback
    from ._bench import hot_path_for

    progress("benchmark", result.stats.get("examples", 0), len(result.violations))
    try:
        return hot_path_for(session)
    except Exception as e:  # a failing measurement must not cost the certificate
        progress.note(f"hot-path benchmark failed: {type(e).__name__}: {e}")
        return {**fallback, "error": f"hot_path: {type(e).__name__}: {e}"}


def _sign_key(path: Path | None) -> Any:
    if path is None:
        return None
    reports = _reports()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        return reports.load_private_key(path, passphrase.encode() if passphrase else None)
    except reports.SigningKeyError as e:
        raise CliError(f"--sign-key: {e}") from None


def _certify(args: argparse.Namespace) -> int:
    reports = _reports()
    from ._engine import run_conformance
    from ._profiles import PROFILES, default_seed, slice_examples

    required: list[str] = args.require
    if args.out is not None:
        try:
            reports.check_out_dir(args.out)
        except reports.BundleError as e:
            raise CliError(str(e)) from None
    if args.shard is not None and args.jobs != 1:
        raise CliError("--shard I/N runs one worker's slice in this process: give no -j")
    if args.shard is not None and args.cluster is not None:
        raise CliError("--shard I/N runs one slice in this process: give no --cluster")
    workers, shard = (args.jobs, None) if args.shard is None else (args.shard[1],
                                                                     args.shard[0])
    key = _sign_key(args.sign_key)
    expected, expect_file = _expectations(args.expect)
    profile = PROFILES[args.profile]
    seed = args.seed if args.seed is not None else default_seed(profile)
    examples = args.max_examples or profile.max_examples
    share = examples if shard is None else slice_examples(examples, workers, shard)
    paint = _Paint.choose(args.color, sys.stdout)
    progress = _Progress(args.verbose, share, quiet=args.quiet,
                         color=_Paint.choose(args.color, sys.stderr).on)
    # The adapter's own faults are SAFE-13 violations inside the run; anything else that
    # escapes it is the suite's (exit 4).
    with _open(args) as session, progress:
        split = (f", {workers} slices on the cluster {args.cluster}" if args.cluster else
                 f", {workers} workers" if shard is None and workers > 1 else
                 f", shard {shard} of {workers} ({_n(share, 'example')})" if shard else "")
        progress.note(f"certifying {args.adapter} ({session.mode}): profile {args.profile}, "
                      f"seed {seed}, {_n(examples, 'example')}{split}, requiring "
                      f"{', '.join(required)}")
        result = run_conformance(session, args.profile, seed=seed, spec=args.adapter,
                                 max_examples=args.max_examples, progress=progress,
                                 expected=expected, workers=workers, shard=shard,
                                 cluster=args.cluster)
        benchmark = _benchmark(session, result, args.no_bench or shard not in (None, 1),
                               progress)
    out = args.out or _default_dir(result.adapter_info.name)
    try:
        bundle = reports.write_bundle(result, out, required=required, benchmark=benchmark,
                                      signing_key=key, display_dir=str(out),
                                      expectations_file=expect_file)
    except reports.BundleError as e:
        raise CliError(str(e)) from None
    return _finish(result, bundle, out, required, paint, quiet=args.quiet,
                   verbose=args.verbose)


def _finish(result: ConformanceResult, bundle: Any, out: Path, required: Sequence[str],
            paint: _Paint, *, quiet: bool = False, verbose: bool = False) -> int:
    """The end of a run's output (certify, merge) and its exit status: the summary unless
    ``quiet``, the verdict line, and the certificate's URL last."""
    compared = result.expectations
    if result.shard is not None:
        # A slice can show a new failure, not that a known one is gone: merge tells that.
        ok = not compared.new if compared is not None else _slice_clean(result, required)
        index, of = result.shard
        verdict = (f"Shard {index} of {of} (partial: merge the shards for a certificate): "
                   f"its slice is {'clean' if ok else paint('NOT clean', 'red')}")
    else:
        ok = (compared.matches if compared is not None
              else bool(bundle.certificate["verdict"]["met"]))
        verdict = _verdict_line(result, required, paint)
    if not quiet:
        _print_certify_summary(result, bundle, out, verbose, paint)
    print(verdict)
    print(f"Certificate: {(out / 'certificate.html').resolve().as_uri()}")
    return EXIT_OK if ok else EXIT_NOT_MET


def _slice_clean(result: ConformanceResult, required: Sequence[str]) -> bool:
    """A shard's exit status: nothing its required levels rest on failed in its slice
    (whether everything was exercised, only the merged run can tell)."""
    from ._invariants import rests_on

    resting = {i for level in required for i in rests_on(level)}
    return not any(i in resting for i in result.failed)


def _expectations(path: Path | None) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """The known failures of ``--expect``, and how the certificate names the file."""
    if path is None:
        return None, None
    import hashlib

    from ._expect import load_expectations

    expected = load_expectations(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return expected, {"file": str(path), "sha256": digest}


_ANSI = {"green": "32", "red": "31", "yellow": "33", "bold": "1"}


class _Paint:
    """ANSI colour for the verdicts: ``--color always`` or ``never``, else on a terminal
    unless ``NO_COLOR`` is set (no-color.org: the flag wins over the variable)."""

    def __init__(self, on: bool) -> None:
        self.on = on

    @classmethod
    def choose(cls, mode: str, stream: Any) -> _Paint:
        if mode != "auto":
            return cls(mode == "always")
        return cls(not os.environ.get("NO_COLOR") and bool(getattr(stream, "isatty",
                                                                       lambda: False)()))

    def __call__(self, text: str, style: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if self.on else text


def _verdict_line(result: ConformanceResult, required: Sequence[str], paint: _Paint) -> str:
    """The line a run ends its verdict with: the expectations' when the run had a file
    (they decide the exit code), the required levels' otherwise."""
    compared = result.expectations
    if compared is not None:
        known = f"{_n(len(compared.known), 'known failure')}"
        if compared.matches:
            return paint(f"Expectations: results match the file ({known})", "green")
        differ = [f"new failure(s) {', '.join(compared.new)}" if compared.new else "",
                  f"unexpectedly passing {', '.join(compared.passing)}: remove them from "
                  "the file" if compared.passing else ""]
        return paint(f"Expectations: results differ from the file: "
                     f"{'; '.join(d for d in differ if d)}", "red")
    unmet = result.unmet(required)
    why = f" ({'; '.join(lv.why() for lv in unmet)})" if unmet else ""
    state = paint("NOT met", "red") if unmet else paint("met", "green")
    return f"Required levels ({', '.join(required)}): {state}{why}"


def _print_certify_summary(result: ConformanceResult, bundle: Any, out: Path,
                           verbose: bool, paint: _Paint) -> None:
    from ._profiles import exercise_advice

    cert = bundle.certificate
    required = cert["verdict"]["required"]
    stats = result.stats
    info = result.adapter_info
    budget = result.settings.get("max_examples", 0)
    profile = result.profile if result.profile != "custom" else (
        f"custom ({_n(budget, 'example')}, based on {result.settings.get('based_on')})")
    print(f"{info.name} {info.version} ({result.adapter_spec})")
    print(f"profile {profile}, seed {result.seed}, "
          f"{_n(stats.get('examples', 0), 'example')}, "
          f"{_n(stats.get('steps', 0), 'operation')}, {stats.get('seconds', 0):.1f} s")
    if result.stopped_early:
        print(f"stopped early at a conformant-breaking violation, after "
              f"{_n(stats.get('examples', 0), 'example')} of {budget:,}")
    print()
    verdicts = result.verdicts
    for level, lv in verdicts.items():
        req = "   (required)" if level in required else ""
        state = "met" if lv.met else ("NOT met" if lv.failed else "not established")
        shown = paint(f"{state:<16}", "green" if lv.met else "red" if lv.failed else "yellow")
        print(f"  {level:<18} {shown}{req}".rstrip())
    failed = [(i, r) for i, r in cert["invariants"].items() if r["status"] == "fail"]
    if failed:
        print()
        print(f"Failed: {', '.join(i for i, _ in failed)}")
        for inv_id, r in failed:
            print(f"  {inv_id:<8} {r['level']:<17} {r['summary']} [{r['steps']} steps]")
        first = failed[0][1]["first_counterexample"]
        if first:
            print(f"Replay: {PROG} replay {out / first} --adapter {result.adapter_spec}")
    unexercised = list(dict.fromkeys(i for lv in required for i in verdicts[lv].unexercised))
    if unexercised and not result.stopped_early:
        print()
        print(f"Not exercised: {', '.join(unexercised)}: the required levels cannot be "
              f"established without them; {exercise_advice(result.profile)}")
    if verbose:
        for v in result.violations:
            print()
            print(v.render(result.adapter_spec, str(out / "traces" / f"{v.id}.json")))
    compared = result.expectations
    if compared is not None:
        expect = cert["run"]["expectations"]
        print()
        print(f"Expectations ({expect['file']}): {_n(len(compared.expected), 'known failure')}"
              " listed")
        for inv_id in compared.known:
            print(f"  {inv_id:<8} failed, as expected: {compared.expected[inv_id]}")
        for inv_id in compared.new:
            print(f"  {inv_id:<8} {paint('NEW failure', 'red')}: not in the file")
        for inv_id in compared.passing:
            print(f"  {inv_id:<8} {paint('unexpectedly passing', 'red')}: remove it from the "
                  "file")
        for inv_id in compared.unexercised:
            print(f"  {inv_id:<8} not exercised: the run cannot tell")
    print()
    signed = f"; signed by {cert['signing']['public_key_fingerprint']}" if bundle.signed else ""
    print(f"Bundle: {out}{os.sep} (certificate.html, summary.md, junit.xml"
          f"{f', {len(failed)} trace(s)' if failed else ''}{signed})")
    if compared is not None:
        unmet = result.unmet(required)
        print(f"Required levels ({', '.join(required)}): {'NOT met' if unmet else 'met'} "
              "(not gating: --expect decides the exit code)")


# --- replay ---------------------------------------------------------------------------------
def _read_trace(path: Path) -> dict[str, Any]:
    from ._formats import TRACE_FORMAT
    from ._invariants import INVARIANTS

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"trace {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"cannot read trace {str(path)!r}: {e}") from None
    try:
        trace = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceError(f"trace {str(path)!r} is not JSON: {e}") from None
    if not isinstance(trace, dict) or trace.get("format") != TRACE_FORMAT:
        raise TraceError(f"{str(path)!r} is not a {TRACE_FORMAT} file",
                         hint="certify writes them as traces/<ID>.json in the bundle")
    if trace.get("invariant") not in INVARIANTS:
        raise TraceError(f"trace {str(path)!r} names no known invariant "
                         f"({trace.get('invariant')!r})")
    return trace


def _replay(args: argparse.Namespace) -> int:
    from . import _dialogue
    from ._engine import _smoke, replay
    from ._invariants import INVARIANTS

    trace = _read_trace(args.trace)
    inv = str(trace["invariant"])
    with _open(args) as session:
        _smoke(session)
        try:
            outcome = replay(session, trace, args.require)
        except (ValueError, KeyError, TypeError) as e:
            raise TraceError(f"trace {str(args.trace)!r} is malformed: {e}") from None

    print(f"Replaying {args.trace} ({inv}: {INVARIANTS[inv].rule})")
    print(f"against {args.adapter}: {len(outcome.ops)} operation(s), platform profile "
          f"{outcome.setup.profile}")
    print()
    first = outcome.found_in.get(outcome.ids[0]) if outcome.violations else None
    if args.calls:
        print("Every call the adapter received, under the step that caused it:")
        for line in _dialogue.render(outcome.calls, outcome.steps, first):
            print(line)
    else:
        print("Steps:")
        for n, step in enumerate(outcome.steps, 1):
            print(f"  {n}. {step}")
    if not outcome.steps:
        print("  (no steps: the violation happens when the adapter starts)")
    for v in outcome.violations:
        print()
        step = f" at step {v.step + 1}" if outcome.steps else ""
        print(f"{v.id} ({v.level}) violated{step}: {v.rule}")
        print(f"  {v.summary}")
        for k, val in v.detail.items():
            if k != "traceback":
                print(f"  {k}: {val}")
        if "traceback" in v.detail:
            print(textwrap.indent(v.detail["traceback"].rstrip(), "  "))
        at = outcome.found_in.get(v.id)
        if at is not None and args.calls and at == first:
            print(f"  the call it was found in: marked above, at step "
                  f"{outcome.calls[at].get('step')}")
        elif at is not None:
            print(f"  the call it was found in (step {outcome.calls[at].get('step')}):")
            for line in _dialogue.call_lines(outcome.calls[at]):
                print(f"    {line}")
    if not args.calls and outcome.calls:
        print()
        print(f"({len(outcome.calls)} call(s) to the adapter in all: --calls shows each, with "
              "what it was handed and what it answered)")
    print()
    print(outcome.result())
    return EXIT_OK if outcome.passed else EXIT_NOT_MET


# --- bench ----------------------------------------------------------------------------------
def _bench(args: argparse.Namespace) -> int:
    from ._bench import run_bench
    from ._loading import check_module_exists, parse_spec

    parsed = parse_spec(args.adapter)
    if parsed.kind == "module":
        check_module_exists(parsed.target)
    out: Path = args.out or _default_dir(parsed.attr or parsed.target, "-bench")
    try:
        path = run_bench(args.adapter, out, extra_args=["--conformance-call-timeout",
                                                        str(args.call_timeout)])
    except ConformanceError:
        raise
    except OSError:
        raise
    except Exception as e:
        raise _adapter_failure(e, "the benchmark") from None
    print(f"Benchmark: {path}")
    return EXIT_OK


# --- verify ---------------------------------------------------------------------------------
def _merge(args: argparse.Namespace) -> int:
    import hashlib

    reports = _reports()
    from ._merge import ShardError, check_shards, merge_shards

    try:
        reports.check_out_dir(args.out)
    except reports.BundleError as e:
        raise CliError(str(e)) from None
    key = _sign_key(args.sign_key)
    loaded: list[tuple[str, dict[str, Any], dict[str, Any], Path]] = []
    for path in args.shards:
        try:
            checks = reports.verify_bundle(path)
        except reports.NotABundle as e:
            raise CliError(f"{path}: {e}") from None
        failed = [c for c in checks if c.failed]
        if failed:
            raise CliError(f"{path}: check {failed[0].number} ({failed[0].name}) fails: "
                           f"{failed[0].detail}; a shard must pass verify to be merged")
        cert = json.loads((path / reports.CERTIFICATE).read_text(encoding="utf-8"))
        part = path / reports.SLICE
        payload = json.loads(part.read_text(encoding="utf-8")) if part.is_file() else {}
        loaded.append((str(path), cert, payload, path))
    try:
        order = check_shards([(name, cert) for name, cert, _, _ in loaded])
        by_index = {int(c["run"]["shard"]["index"]): (c, p, d) for _, c, p, d in loaded}
        result = merge_shards([(by_index[i][0], by_index[i][1]) for i in order])
    except (ShardError, KeyError, TypeError, ValueError) as e:
        raise CliError(f"cannot merge: {e}") from None
    first_cert, _, first_dir = by_index[order[0]]
    required = list(first_cert["verdict"]["required"])
    benchmark = json.loads((first_dir / reports.BENCHMARK).read_text(encoding="utf-8"))
    manifests = [hashlib.sha256((by_index[i][2] / reports.MANIFEST).read_bytes()).hexdigest()
                 for i in order]
    expect = first_cert["run"].get("expectations")
    try:
        bundle = reports.write_bundle(
            result, args.out, required=required, benchmark=benchmark, signing_key=key,
            display_dir=str(args.out), merged_from=manifests,
            expectations_file=None if expect is None else {"file": expect["file"],
                                                           "sha256": expect["sha256"]})
    except reports.BundleError as e:
        raise CliError(str(e)) from None
    paint = _Paint.choose(args.color, sys.stdout)
    print(f"Merged {_n(len(order), 'shard')} of one run")
    return _finish(result, bundle, args.out, required, paint)


def _compare(args: argparse.Namespace) -> int:
    from ._compare import compare

    return compare(args.old, args.new, markdown=args.markdown, out=sys.stdout)


def _verify(args: argparse.Namespace) -> int:
    reports = _reports()
    key = None
    if args.public_key is not None:
        try:
            key = reports.load_public_key(args.public_key)
        except reports.SigningKeyError as e:
            raise CliError(f"--public-key: {e}") from None
    try:
        checks = reports.verify_bundle(args.bundle, key)
    except reports.NotABundle as e:
        raise CliError(str(e)) from None
    print(f"Verifying {args.bundle}")
    for c in checks:
        print(f"  {c.number}. {c.status}  {c.name}: {c.detail}")
    failed = [c for c in checks if c.failed]
    print()
    if failed:
        names = ", ".join(f"{c.number} ({c.name})" for c in failed)
        print(f"FAILED: check{'s' if len(failed) > 1 else ''} {names}")
        return EXIT_NOT_MET
    print(f"OK: all {len(checks)} checks passed"
          f"{'' if all(c.status == reports.PASS for c in checks) else ' or do not apply'}")
    shard = (json.loads((args.bundle / reports.CERTIFICATE).read_text(encoding="utf-8"))
             .get("run", {}).get("shard"))
    if shard:
        print(f"PARTIAL: shard {shard['index']} of {shard['of']}; it certifies nothing alone: "
              f"{PROG} merge SHARD_DIR... --out DIR makes the run's certificate")
    return EXIT_OK


# --- invariants -----------------------------------------------------------------------------
def _invariants(args: argparse.Namespace) -> int:
    from ._invariants import IDS, INVARIANTS, describe, markdown

    if args.json:
        print(json.dumps([describe(INVARIANTS[i]) for i in IDS], indent=2))
        return EXIT_OK
    if args.markdown:
        print(markdown(), end="")
        return EXIT_OK
    width = max(len(i) for i in IDS)
    for i in IDS:
        inv = INVARIANTS[i]
        lead = f"{i:<{width}}  {inv.level:<17}  "
        body = textwrap.wrap(inv.rule, width=max(40, 100 - len(lead)))
        print(lead + body[0])
        for line in body[1:]:
            print(" " * len(lead) + line)
    return EXIT_OK


# --- keygen ---------------------------------------------------------------------------------
def _keygen(args: argparse.Namespace) -> int:
    reports = _reports()
    if not re.fullmatch(r"[A-Za-z0-9._-]+", args.name):
        raise CliError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-' only")
    private_path = args.out_dir / f"{args.name}.pem"
    public_path = args.out_dir / f"{args.name}.pub"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not args.force:
        raise CliError(f"{', '.join(existing)} already exist(s); pass --force to replace")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    private, public = reports.generate_key_pair(passphrase.encode() if passphrase else None)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    public_path.write_bytes(public)
    print(f"Private key: {private_path}{' (encrypted)' if passphrase else ''}: keep it secret")
    fp = reports.fingerprint(reports.load_public_key(public_path))
    print(f"Public key:  {public_path}  ({fp})")
    print(f"Sign:   {PROG} certify --adapter SPEC --sign-key {private_path}")
    print(f"Verify: {PROG} verify DIR --public-key {public_path}")
    return EXIT_OK
