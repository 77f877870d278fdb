"""The suite's version and commit: what the installed package is, never what the directory
or the CI job it runs in happens to be (a vendor's pipeline sets ``GITHUB_SHA`` to the
vendor's commit; the certificate records that as the adapter's, see ``reports``).

The commit comes from, in order: the git checkout this source lives in (its work tree's root
must be this package's parent and must track this file), the file a wheel or sdist build
recorded (the build backend, ``conformance/_build/backend.py``, writes
:data:`BUILD_COMMIT_FILE`), or ``unknown``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("wcifs-av-conformance")
except metadata.PackageNotFoundError:  # a bare checkout on sys.path
    __version__ = "0.0.0+checkout"

#: Written beside this module by the build backend: the commit the package was built from.
BUILD_COMMIT_FILE = "_build_commit.txt"
_SHA = re.compile(r"[0-9a-f]{40}")
#: This module, relative to the root of a checkout of the suite.
_THIS = "conformance/_version.py"


def _sha(text: str) -> str | None:
    text = text.strip()
    return text if _SHA.fullmatch(text) else None


def _git(top: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    # GIT_DIR, GIT_WORK_TREE and friends would point git at whatever repository the caller
    # is in (a hook of a vendor's repository, say), not at ``top``.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        return subprocess.run(["git", "-C", str(top), *args], capture_output=True, text=True,
                              timeout=5, check=False, env=env)
    except (OSError, subprocess.SubprocessError):
        return None


def checkout_commit(top: Path) -> str | None:
    """HEAD of the git checkout of the suite rooted at ``top``, or None when ``top`` is not
    one: the root of its work tree must be ``top`` itself (an installed package inside a
    vendor's repository, say in its virtualenv, is not a checkout of the suite) and the
    checkout must track this module."""
    top = top.resolve()
    out = _git(top, "rev-parse", "--show-toplevel", "HEAD")
    if out is None or out.returncode != 0:
        return None
    lines = out.stdout.split("\n")
    if len(lines) < 2 or not lines[0] or Path(lines[0]).resolve() != top:
        return None
    commit = _sha(lines[1])
    if commit is None:
        return None
    tracked = _git(top, "ls-files", "--error-unmatch", "--", _THIS)
    return commit if tracked is not None and tracked.returncode == 0 else None


def recorded_commit(package_dir: Path | None = None) -> str | None:
    """The commit a build recorded in :data:`BUILD_COMMIT_FILE`, if any."""
    path = (package_dir or Path(__file__).resolve().parent) / BUILD_COMMIT_FILE
    try:
        return _sha(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None


@functools.cache
def suite_commit() -> str:
    """The git commit of the suite's own source, or ``unknown``."""
    here = Path(__file__).resolve().parent
    return checkout_commit(here.parent) or recorded_commit(here) or "unknown"
