"""The suite's version and, when run from a checkout, its commit."""

from __future__ import annotations

import functools
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
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else "unknown"
