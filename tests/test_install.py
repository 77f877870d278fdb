"""The README's install instructions, run as written on a Python that refuses global installs.

A fresh Debian or Ubuntu machine's ``python3`` is "externally managed" (PEP 668): ``pip
install`` outside a virtual environment stops with ``externally-managed-environment``. The
README's commands must work there, so these tests find such a Python and, with it as
``python3`` on a PATH holding no tox and no suite, run:

- the two commands of "The two commands" (the main job shortened by tox posargs; the test
  command only up to tox itself, not the whole test suite again);
- the "Install" block, each of its routes (a checkout, a Git URL, a wheel) into a virtual
  environment, checking the CLI it gives;
- the "Gating CI (GitHub Actions)" recipe's ``run:`` steps in order, against a vendor folder,
  with the suite installed from a ``git+file://localhost/...`` URL in ``WCIFS_SUITE``.

The commands are read from the README, never copied here. They run against a copy of this
working tree (tracked files and untracked ones git does not ignore) committed to a fresh
repository, so a Git URL works and what is tested is the tree, not HEAD. They need PyPI (or
the machine's pip configuration) and take a few minutes: ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
#: The README's placeholders for a checkout of the suite and for where it is hosted.
CHECKOUT = "/path/to/wcifs-av-conformance"
REPO_URL = "https://github.com/your-org/wcifs-av-conformance"
#: Long enough for a cold pip cache and a loaded machine; a hang must not wedge the run.
TIMEOUT = 1200

# A vendor's adapter, as in the README's first steps: it imports only from `conformance` and
# scans every open, which is conformant and signature-current (every skip is safe because
# there is none) but not optimized; the CI recipe requires the first two.
VENDOR_ADAPTER = '''\
from conformance import AdapterInfo, BaseAdapter, EcpRequest, Verdict


class ContosoAdapter(BaseAdapter):
    info = AdapterInfo(name="Contoso AV", version="5.2.1")

    def pre_create(self, create):
        return EcpRequest() if create.silo is not None else None   # ECP-1, ECP-3

    def post_create(self, create):
        return Verdict.SCAN
'''


# --- reading the README -------------------------------------------------------------------
def section(title: str) -> str:
    """The README's section under heading ``title`` (any level), up to the next heading
    (a line starting with ``#`` inside a fenced block is a comment, not a heading)."""
    lines: list[str] | None = None
    fence = False
    for line in README.read_text(encoding="utf-8").splitlines(keepends=True):
        heading = not fence and re.match(r"#+ (.*)$", line)
        if line.startswith("```"):
            fence = not fence
        if heading and lines is not None:
            break
        if lines is not None:
            lines.append(line)
        elif heading and heading.group(1).strip() == title:
            lines = []
    assert lines is not None, f"README.md has no section {title!r}"
    return "".join(lines)


def fenced(title: str, lang: str) -> str:
    """The first ```lang block of the README's section ``title``."""
    match = re.search(rf"^```{lang}\n(.*?)^```", section(title), re.M | re.S)
    assert match, f"README.md's section {title!r} has no ```{lang} block"
    return match.group(1)


def shell_lines(block: str) -> list[str]:
    """The commands of a sh block, one a line, without trailing comments."""
    lines = (re.sub(r"(^|\s+)#.*$", "", line).strip() for line in block.splitlines())
    return [line for line in lines if line]


def two_commands() -> tuple[str, str]:
    """The main job's command and the test command, from "The two commands"."""
    lines = shell_lines(fenced("The two commands", "sh"))
    assert len(lines) == 2, lines
    main, tests = sorted(lines, key=lambda line: "tox -e certify" not in line)
    assert main.endswith("tox -e certify"), main
    assert "tox -e" not in tests, tests
    return main, tests


# --- a Python that refuses global installs ------------------------------------------------
PROBE = """\
import json, os, sys, sysconfig
try:
    import ensurepip
    venv = True
except ImportError:
    venv = False
try:
    import pip
    has_pip = True
except ImportError:
    has_pip = False
stdlib = sysconfig.get_path("stdlib")
print(json.dumps({"managed": os.path.isfile(os.path.join(stdlib, "EXTERNALLY-MANAGED")),
                  "version": sys.version_info[:2], "venv": venv, "pip": has_pip}))
"""


def probe(python: Path) -> dict[str, object] | None:
    try:
        out = subprocess.run([str(python), "-I", "-c", PROBE], capture_output=True, text=True,
                             timeout=60, check=False, env=clean_env([]))
        return json.loads(out.stdout) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def candidates() -> Iterator[Path]:
    seen: set[Path] = set()
    dirs = [*os.get_exec_path(), "/usr/bin", "/usr/local/bin", "/bin"]
    for folder in dirs:
        for name in ("python3", "python3.11", "python3.12", "python3.13", "python3.14"):
            path = Path(folder) / name
            if not (path.is_file() and os.access(path, os.X_OK)):
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                yield path


@pytest.fixture(scope="module")
def pep668() -> tuple[Path, dict[str, object]]:
    """A Python >= 3.11 that is externally managed and can make virtual environments."""
    for python in candidates():
        facts = probe(python)
        if facts and facts["managed"] and tuple(facts["version"]) >= (3, 11) and facts["venv"]:
            return python, facts
    pytest.skip("no externally managed (PEP 668) Python >= 3.11 with venv found: looked for "
                "python3 and python3.1x on PATH, in /usr/bin, /usr/local/bin and /bin "
                "(Debian and Ubuntu: packages python3 and python3-venv)")


# --- running things as on a fresh machine -------------------------------------------------
DROPPED = ("PYTHON", "VIRTUAL_ENV", "CONDA_", "TOX_", "GIT_", "GITHUB_", "WCIFS_",
           "HYPOTHESIS_", "PIP_USER", "PIP_REQUIRE_VIRTUALENV", "PIP_BREAK_SYSTEM_PACKAGES",
           "PYENV_VERSION", "_OLD_VIRTUAL_")


def clean_env(first: list[Path], **extra: str) -> dict[str, str]:
    """This process's environment minus whatever points at an environment, a tox run or a
    repository, with ``first`` on the PATH and no virtual environment's folder on it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    keep = [d for d in os.get_exec_path() if d and not (Path(d).parent / "pyvenv.cfg").exists()]
    env["PATH"] = os.pathsep.join([*map(str, first), *keep])
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str],
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def shown(out: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {out.returncode}\n--- stdout\n{out.stdout[-6000:]}"
            f"\n--- stderr\n{out.stderr[-6000:]}")


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` as GitHub Actions runs a ``run:`` step (``bash -e {0}``)."""
    return run(["bash", "-e", "-c", script], cwd, env)


#: Stands in for a tox or a suite this machine may have on its PATH: a fresh one has neither.
ABSENT = """#!/bin/sh
echo "$(basename "$0"): not on a fresh machine's PATH (tests/test_install.py)" >&2
exit 127
"""


@pytest.fixture(scope="module")
def python3_dir(pep668: tuple[Path, dict[str, object]], tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """A folder for the front of the PATH: its ``python3`` is the externally managed
    Python, its ``tox`` and ``wcifs-conformance`` fail."""
    folder = tmp_path_factory.mktemp("bin")
    (folder / "python3").symlink_to(pep668[0].resolve())
    for name in ("tox", "wcifs-conformance"):
        (folder / name).write_text(ABSENT, encoding="ascii")
        (folder / name).chmod(0o755)
    return folder


# --- a copy of the working tree -----------------------------------------------------------
def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", "-c", "user.name=wcifs-test", "-c", "user.email=test@invalid",
                          "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
                          "-c", "core.hooksPath=/dev/null", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
                         env=clean_env([]))
    assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
    return out.stdout


def copy_tree(dest: Path) -> Path:
    """The working tree's files git tracks or would (``git ls-files -co
    --exclude-standard``), copied to ``dest``: no .venv, .tox, build output or bundles."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout (or git is missing): nothing to copy")
    listing = git("ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT)
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # tracked, deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


@pytest.fixture(scope="module")
def suite_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository holding one commit of the working tree, and that commit."""
    repo = copy_tree(tmp_path_factory.mktemp("suite"))
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "the working tree under test", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo).strip()


def local(requirement: str, repo: Path) -> str:
    """``requirement`` with the README's placeholders pointing at ``repo``; a ref after the
    Git URL's last ``@`` is made a tag of ``repo``'s commit. The URL names the host,
    ``file://localhost/...``: the pip a Debian 12 venv starts with (23.0) rejects a PEP 508
    URL with no host, ``git+file:///...``, as invalid; git takes both."""
    url = "file://localhost" + repo.as_uri().removeprefix("file://")
    requirement = requirement.replace(REPO_URL, url).replace(CHECKOUT, str(repo))
    ref = re.search(rf"git\+{re.escape(url)}@([^\s\"'#]+)", requirement)
    if ref:
        git("tag", "-f", ref.group(1), cwd=repo)
    return requirement


# --- the tests ----------------------------------------------------------------------------
def test_ci_run_runs_the_readme_test_command() -> None:
    _, tests = two_commands()
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert tests in lines, f".ci/run does not run the README's test command: {tests}"
    assert "set -euo pipefail" in lines
    after = [line for line in lines[lines.index(tests) + 1:] if line and line[0] != "#"]
    assert not after, "the test command must be .ci/run's last command: its status is the run's"


@pytest.mark.slow
def test_pep668_python_refuses_a_global_install(pep668: tuple[Path, dict[str, object]],
                                                tmp_path: Path) -> None:
    """The premise: on this Python the README's old ``python3 -m pip install tox`` stops.
    (``--no-index`` with an empty link folder: were it not refused, nothing is installed.)"""
    python, facts = pep668
    if not facts["pip"]:
        pytest.skip(f"{python} has no pip: `python3 -m pip` fails before PEP 668 is reached")
    out = run([str(python), "-m", "pip", "install", "--no-index", "--find-links", str(tmp_path),
               "tox"], tmp_path, clean_env([]), timeout=120)
    assert out.returncode != 0, shown(out)
    assert "externally-managed-environment" in out.stdout + out.stderr, shown(out)


@pytest.mark.slow
def test_the_two_commands_on_a_pep668_python(python3_dir: Path, tmp_path: Path) -> None:
    main, tests = two_commands()
    env = clean_env([python3_dir])

    # The test command, from a fresh copy, up to tox itself: `tox list` names the
    # environments plain `tox` runs (running them here would run this test again).
    checkout = copy_tree(tmp_path / "test-command")
    out = run(["bash", "-c", f"{tests} list"], checkout, env)
    assert out.returncode == 0, shown(out)
    assert re.search(r"^py311\b", out.stdout, re.M) and re.search(r"^lint\b", out.stdout, re.M), \
        shown(out)

    # The main job, shortened: a later --require overrides the one in tox.ini.
    checkout = copy_tree(tmp_path / "main-job")
    out = run(["bash", "-c", f"{main} -- --max-examples 300 --no-bench --require conformant"],
              checkout, env)
    bundles = sorted((checkout / "reports" / "out").glob("*/certificate.json"))
    assert len(bundles) == 1, shown(out)
    certificate = json.loads(bundles[0].read_text(encoding="utf-8"))
    assert certificate["verdict"]["required"] == ["conformant"], certificate["verdict"]
    met = all(certificate["levels"][level] for level in certificate["verdict"]["required"])
    assert (out.returncode == 0) == met, shown(out)


@pytest.mark.slow
def test_install_routes_give_the_cli(python3_dir: Path, suite_repo: tuple[Path, str],
                                     tmp_path: Path) -> None:
    """Each route of "Install" (a checkout, a Git URL, a wheel), in turn into one virtual
    environment, gives a ``wcifs-conformance`` built from the copy's commit."""
    repo, commit = suite_repo
    lines = shell_lines(fenced("Install", "sh"))
    setup, check, middle = lines[0], lines[-1], lines[1:-1]
    assert "-m venv" in setup and "activate" in setup, setup
    routes: list[list[str]] = []
    for line in middle:
        if routes and routes[-1][-1].startswith("pip wheel"):
            routes[-1].append(line)
        else:
            routes.append([line])
    kinds = sorted("wheel" if route[0].startswith("pip wheel") else
                   "git" if "git+" in route[0] else "checkout" for route in routes)
    assert kinds == ["checkout", "git", "wheel"], routes

    env = clean_env([python3_dir])
    venv_cli = tmp_path / ".venv" / "bin" / "wcifs-conformance"
    for route in routes:
        assert any(CHECKOUT in line or REPO_URL in line for line in route), route
        script = "\n".join([setup, *(local(line, repo) for line in route), check])
        out = bash(script, tmp_path, env)
        assert out.returncode == 0, f"{route}\n{shown(out)}"
        assert commit[:12] in out.stdout, f"{route}: not built from {commit}\n{shown(out)}"
        assert venv_cli.exists(), route
        out = run([str(tmp_path / ".venv" / "bin" / "python"), "-m", "pip", "uninstall", "-y",
                   "wcifs-av-conformance"], tmp_path, env)
        assert out.returncode == 0 and not venv_cli.exists(), shown(out)


@pytest.mark.slow
def test_the_ci_recipe(pep668: tuple[Path, dict[str, object]], python3_dir: Path,
                       suite_repo: tuple[Path, str], tmp_path: Path) -> None:
    """The "Gating CI" recipe's ``run:`` steps, in order, in a vendor's checkout, on a
    Python like the one actions/setup-python gives (a virtual environment of the PEP 668
    Python: its ``python`` and ``pip`` first on the PATH)."""
    yaml = pytest.importorskip("yaml")
    repo, commit = suite_repo
    recipe = yaml.safe_load(fenced("Gating CI (GitHub Actions)", "yaml"))
    (job,) = recipe["jobs"].values()
    steps = job["steps"]
    scripts = [step["run"] for step in steps if "run" in step]
    uploads = [step["with"]["path"] for step in steps
               if str(step.get("uses", "")).startswith("actions/upload-artifact")]
    assert scripts and len(uploads) == 1, steps

    vendor = tmp_path / "contoso"
    (vendor / "contoso_av").mkdir(parents=True)
    (vendor / "contoso_av" / "adapter.py").write_text(VENDOR_ADAPTER, encoding="utf-8")
    hosted = tmp_path / "hosted-python"
    out = run([str(pep668[0]), "-m", "venv", str(hosted)], tmp_path, clean_env([]))
    assert out.returncode == 0, shown(out)
    summary = tmp_path / "step-summary.md"
    summary.touch()
    env = clean_env([hosted / "bin", python3_dir], **{
        k: str(v) for k, v in job.get("env", {}).items()}, GITHUB_STEP_SUMMARY=str(summary))
    assert REPO_URL in env.get("WCIFS_SUITE", ""), "the recipe's WCIFS_SUITE names no Git URL"
    env["WCIFS_SUITE"] = local(env["WCIFS_SUITE"], repo)

    # The certify profile takes about four minutes isolated on a 2-core machine; quick runs
    # the same code paths in a fraction of it.
    shortened = [script.replace("--profile certify", "--profile quick") for script in scripts]
    assert sum(a != b for a, b in zip(scripts, shortened, strict=True)) == 1, scripts
    for script in shortened:
        out = bash(script, vendor, env)
        assert out.returncode == 0, f"{script}\n{shown(out)}"

    bundle = vendor / uploads[0]
    assert (bundle / "certificate.json").is_file(), list(vendor.rglob("*"))
    certificate = json.loads((bundle / "certificate.json").read_text(encoding="utf-8"))
    assert certificate["suite"]["commit"] == commit, certificate["suite"]
    assert certificate["verdict"]["met"] is True, certificate["verdict"]
    out = run(["wcifs-conformance", "verify", str(bundle)], vendor, env)
    assert out.returncode == 0, shown(out)
    assert shutil.which("wcifs-conformance", path=env["PATH"]) == str(
        hosted / "bin" / "wcifs-conformance")
    text = (bundle / "summary.md").read_text(encoding="utf-8")
    assert text.strip() and text in summary.read_text(encoding="utf-8")
