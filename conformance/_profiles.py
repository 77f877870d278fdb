"""Run profiles (SPEC §7): each a budget of generated examples and a seed policy."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from ._version import __version__


@dataclass(frozen=True, slots=True)
class RunProfile:
    name: str
    max_examples: int
    max_fragments: int
    #: Fixed seed per suite version (``certify``); otherwise random unless given.
    fixed_seed: bool
    #: Hypothesis ``target()`` toward long histories (slower examples; swarm selection
    #: and bulk operations reach them in every profile anyway).
    targeting: bool = False


PROFILES: dict[str, RunProfile] = {
    "quick": RunProfile("quick", 2000, 18, False),
    "certify": RunProfile("certify", 10000, 18, True),
    "deep": RunProfile("deep", 100000, 32, False, True),
}
#: The profile name a run reports when ``max_examples`` overrode its profile's budget.
CUSTOM = "custom"


def exercise_advice(profile: str, stopped_early: bool = False) -> str:
    """How to exercise what a run of ``profile`` never did: advice that fits the run (every
    face gives the same)."""
    if stopped_early:
        return "fix the violation that stopped the run first; it ended before its budget"
    if profile == CUSTOM:
        return "run the whole profile (drop --max-examples)"
    if profile == "quick":
        return "run more examples (--profile certify)"
    return f"the {profile} profile should reach them: please report it, with the seed"


def default_seed(profile: RunProfile) -> int:
    if profile.fixed_seed:
        digest = hashlib.sha256(f"wcifs-conformance {__version__}".encode()).digest()
        return int.from_bytes(digest[:4], "big")
    return int.from_bytes(hashlib.sha256(str(time.time_ns()).encode()).digest()[:4], "big")


def slice_examples(examples: int, of: int, index: int) -> int:
    """Slice ``index`` (1-based) of ``of``'s share of a budget (``-j N``, ``--shard I/N``):
    the budget's Nth, one more for each of the first ``examples % of`` slices."""
    return examples // of + (1 if index <= examples % of else 0)
