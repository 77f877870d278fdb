"""The PEP 517 build backend: setuptools', plus the commit the suite is built from, recorded
inside the package (``conformance/_build_commit.txt``) so that an installed suite knows its
commit without looking at the directory or the CI job it runs in.

An sdist carries the file, so a wheel built from an unpacked sdist keeps it. A file this
backend wrote into the source tree is removed again after the build.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (the rest of the PEP 517 interface)
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

ROOT = Path(__file__).resolve().parents[2]
# The one rule for "the commit of this source", shared with the installed package (the
# module needs only the standard library).
_VERSION: dict[str, Any] = runpy.run_path(str(ROOT / "conformance" / "_version.py"))
COMMIT_FILE = ROOT / "conformance" / _VERSION["BUILD_COMMIT_FILE"]


def _recording(build: Callable[..., str]) -> Callable[..., str]:
    def run(*args: Any, **kwargs: Any) -> str:
        commit = _VERSION["checkout_commit"](ROOT)
        written = commit is not None and not COMMIT_FILE.exists()
        if written:
            COMMIT_FILE.write_text(commit + "\n", encoding="ascii")
        try:
            return build(*args, **kwargs)
        finally:
            if written:
                COMMIT_FILE.unlink(missing_ok=True)

    return run


build_wheel = _recording(_setuptools.build_wheel)
build_sdist = _recording(_setuptools.build_sdist)
build_editable = _recording(_setuptools.build_editable)
