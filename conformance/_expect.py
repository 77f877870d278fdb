"""Expectation files (``certify --expect FILE.toml``, SPEC §8): the failures a vendor
already knows of, each with a reason, so that a run gates only on what differs.

The format, read with the standard library's :mod:`tomllib`::

    # contoso-expectations.toml: known failures of Contoso AV 5.2.1
    [SAFE-6]
    reason = "the cache key folds the FileId to 64 bits; fixed in 5.3 (CONTOSO-1234)"

    [EFF-4]
    reason = "install scans are not remembered yet"

One table per invariant ID, each with a non-empty ``reason``; nothing else.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ConformanceError
from ._invariants import IDS, INVARIANTS


class ExpectationsError(ConformanceError):
    """The expectation file is missing or malformed (exit 2)."""


def load_expectations(path: Path) -> dict[str, str]:
    """ID -> reason, in the catalogue's order."""
    shown = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectationsError(f"expectation file {shown!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExpectationsError(f"cannot read expectation file {shown!r}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ExpectationsError(f"expectation file {shown!r} is not TOML: {e}") from None
    expected: dict[str, str] = {}
    for key, value in data.items():
        if key not in INVARIANTS:
            raise ExpectationsError(
                f"expectation file {shown!r} names no known invariant ({key!r})",
                hint="one [ID] table per known failure; wcifs-conformance invariants lists "
                     "the IDs")
        reason = value.get("reason") if isinstance(value, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            raise ExpectationsError(
                f"expectation file {shown!r}: [{key}] needs a reason = \"...\" (why it is "
                "known to fail)")
        other = sorted(set(value) - {"reason"})
        if other:
            raise ExpectationsError(f"expectation file {shown!r}: [{key}] has unknown "
                                    f"key(s) {', '.join(other)}; only reason is read")
        expected[key] = reason.strip()
    return {i: expected[i] for i in IDS if i in expected}


@dataclass(frozen=True, slots=True)
class Comparison:
    """A run's results against its expectation file."""

    expected: Mapping[str, str]
    #: Listed, and failed: as the file says.
    known: list[str] = field(default_factory=list)
    #: Failed, and not listed.
    new: list[str] = field(default_factory=list)
    #: Listed, and passed: the file should lose them.
    passing: list[str] = field(default_factory=list)
    #: Listed, and never exercised: the run cannot tell.
    unexercised: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Exit status 0 under ``--expect``: no new failure, no listed failure passing."""
        return not self.new and not self.passing

    def as_json(self) -> dict[str, object]:
        return {"expected": dict(self.expected), "known_failures": self.known,
                "new_failures": self.new, "unexpectedly_passing": self.passing,
                "not_exercised": self.unexercised, "matches": self.matches}


def compare(expected: Mapping[str, str], statuses: Mapping[str, str]) -> Comparison:
    """``statuses``: ID -> ``pass`` | ``fail`` | ``not-exercised``."""
    def where(status: str, listed: bool) -> list[str]:
        return [i for i in IDS if statuses.get(i) == status and (i in expected) == listed]

    return Comparison(expected, known=where("fail", True), new=where("fail", False),
                      passing=where("pass", True), unexercised=where("not-exercised", True))
