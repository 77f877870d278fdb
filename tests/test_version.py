"""The suite's commit (``conformance._version``, the build backend): what the suite was
built from or checked out at, never the CI job or the directory it runs in."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import conformance
from conformance._version import BUILD_COMMIT_FILE, checkout_commit, recorded_commit

ROOT = Path(__file__).resolve().parents[1]
FAKE = "f" * 40
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, timeout=60, env=env).stdout.strip()


def commit_all(repo: Path) -> str:
    if not (repo / ".git").exists():
        git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "c", "--no-gpg-sign")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """A vendor's repository: its own commits, a virtualenv-like tree inside it."""
    repo = tmp_path / "vendor"
    (repo / "venv" / "site-packages" / "conformance").mkdir(parents=True)
    (repo / "venv" / "site-packages" / "conformance" / "_version.py").write_text("")
    (repo / "adapter.py").write_text("x = 1\n")
    commit_all(repo)
    return repo


@pytest.fixture
def suite_checkout(tmp_path: Path) -> tuple[Path, str]:
    """A checkout of the suite (this module tracked at conformance/_version.py)."""
    repo = tmp_path / "suite"
    (repo / "conformance").mkdir(parents=True)
    shutil.copy(ROOT / "conformance" / "_version.py", repo / "conformance" / "_version.py")
    return repo, commit_all(repo)


def test_a_checkout_of_the_suite_gives_its_head(suite_checkout: tuple[Path, str]) -> None:
    repo, head = suite_checkout
    assert checkout_commit(repo) == head


def test_a_vendors_repository_is_not_the_suites_checkout(vendor: Path) -> None:
    # the package installed inside the vendor's repository: not the root of a work tree
    assert checkout_commit(vendor / "venv" / "site-packages") is None
    # the vendor's repository root: it does not track the suite's source
    assert checkout_commit(vendor) is None
    assert checkout_commit(vendor / "nowhere") is None


def test_git_variables_of_the_caller_do_not_redirect_the_lookup(
        suite_checkout: tuple[Path, str], vendor: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    repo, head = suite_checkout
    monkeypatch.setenv("GIT_DIR", str(vendor / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(vendor))
    assert checkout_commit(repo) == head


def test_the_recorded_commit_is_read_only_when_it_is_a_commit(tmp_path: Path) -> None:
    assert recorded_commit(tmp_path) is None
    (tmp_path / BUILD_COMMIT_FILE).write_text(f"{FAKE}\n")
    assert recorded_commit(tmp_path) == FAKE
    (tmp_path / BUILD_COMMIT_FILE).write_text("main\n")
    assert recorded_commit(tmp_path) is None


def test_suite_commit_ignores_ci_variables_and_the_working_directory(vendor: Path) -> None:
    """Run where a vendor's CI runs it: in the vendor's repository, with the CI's commit
    variables set. The suite's commit is its own (or unknown), never theirs."""
    package_root = Path(conformance.__file__).resolve().parents[1]
    env = {**os.environ, "GITHUB_SHA": FAKE, "CI_COMMIT_SHA": FAKE, "WCIFS_SUITE_COMMIT": FAKE,
           "PYTHONPATH": str(package_root)}
    proc = subprocess.run(
        [sys.executable, "-c", "from conformance._version import suite_commit\n"
         "print(suite_commit())"],
        cwd=vendor, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    commit = proc.stdout.strip()
    assert commit not in (FAKE, git(vendor, "rev-parse", "HEAD"))
    expected = (checkout_commit(package_root) or recorded_commit(package_root / "conformance")
                or "unknown")
    assert commit == expected


def _project_copy(dest: Path) -> Path:
    """The suite's sources (as the build sees them) in a fresh repository of their own."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    for package in ("conformance", "reference", "strategies", "reports"):
        shutil.copytree(ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", BUILD_COMMIT_FILE))
    return dest


def _wheel_commit(source: Path, out: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        cwd=out.parent, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.read(f"conformance/{BUILD_COMMIT_FILE}").decode().strip()


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None,
                    reason="needs setuptools to build")
def test_a_wheel_records_the_commit_it_was_built_from(tmp_path: Path) -> None:
    project = _project_copy(tmp_path / "project")
    head = commit_all(project)
    assert _wheel_commit(project, tmp_path / "direct") == head
    # through an sdist unpacked outside any repository (as ``python -m build`` does)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\nsys.path.insert(0, 'conformance/_build')\n"
         "import backend\nprint(backend.build_sdist(sys.argv[1]))", str(tmp_path / "sdist")],
        cwd=project, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(tmp_path / "sdist" / proc.stdout.split()[-1]) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert (unpacked / "conformance" / BUILD_COMMIT_FILE).read_text().strip() == head
    assert _wheel_commit(unpacked, tmp_path / "from-sdist") == head
    assert not (project / "conformance" / BUILD_COMMIT_FILE).exists()
