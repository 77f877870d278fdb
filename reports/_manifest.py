"""``MANIFEST.sha256``: one ``sha256sum`` line per bundle file, so ``sha256sum -c`` works too."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "MANIFEST.sha256"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ManifestError(ValueError):
    """A manifest line that is not ``<sha256>  <path>``, or a path that leaves the bundle."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_text(root: Path, names: Iterable[str]) -> str:
    """The manifest of ``names`` (POSIX paths relative to ``root``), sorted by path."""
    return "".join(f"{sha256_file(root / name)}  {name}\n" for name in sorted(set(names)))


def parse_manifest(text: str) -> dict[str, str]:
    """Path -> expected sha256. Raises :class:`ManifestError` on a malformed line."""
    entries: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            raise ManifestError(f"line {n} is not '<sha256>  <path>': {line[:80]!r}")
        digest, name = m.groups()
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
            raise ManifestError(f"line {n} names a path outside the bundle: {name!r}")
        if name in entries:
            raise ManifestError(f"line {n} lists {name!r} twice")
        entries[name] = digest
    return entries
