"""The suite's version and, when run from a checkout, its commit."""

from __future__ import annotations

import functools
import os
import subprocess
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("wcifs-av-conformance")
except metadata.PackageNotFoundError:  # a bare checkout on sys.path
    __version__ = "0.0.0+checkout"


@functools.cache
def suite_commit() -> str:
    """The git commit of the suite's source, or ``unknown`` for an installed wheel."""
    for var in ("WCIFS_SUITE_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"):
        value = os.environ.get(var, "")
        if len(value) == 40:
            return value
    # A checkout holding this source, or the current directory when it is one (tox runs
    # the installed wheel from the project's root).
    for top in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if not (top / "conformance" / "_version.py").is_file():
            continue
        try:
            out = subprocess.run(["git", "-C", str(top), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        commit = out.stdout.strip()
        if out.returncode == 0 and len(commit) == 40:
            return commit
    return "unknown"
