"""docs/ADAPTER_GUIDE.md: every ```python block runs, each step of the walk is certified and
its ``Result:`` line (the claim the reader sees, parsed from the text) is what the suite
measures, and the reference tables name everything the contract has.

Each block runs in a fresh namespace (every block of the guide is a complete file). The walk
runs ``run_conformance(Step, profile="quick", seed=N, isolate=False)`` with the seed the guide
itself names.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance import (
    IDS,
    INVARIANTS,
    LEVELS,
    AdapterInfo,
    BaseAdapter,
    ChangeKind,
    EcpRequest,
    FileChange,
    Flags,
    PostCreate,
    PreCreate,
    RedirectionEcp,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Services,
    Verdict,
    run_conformance,
)
from reference import ops as O

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "ADAPTER_GUIDE.md"
TEXT = GUIDE.read_text(encoding="utf-8")
LINES = TEXT.splitlines()

_CLAIM = re.compile(r"^(?P<level>[a-z-]+) (?P<mark>[✓✗])(?: \((?P<ids>[A-Z0-9, -]+)\))?$")
_WALK_CALL = re.compile(
    r'run_conformance\(Adapter, profile="quick", seed=(\d+), isolate=False\)')


@dataclass(frozen=True)
class Block:
    #: 1-based line of the opening ```python fence.
    line: int
    code: str
    #: The ``Result:`` line right after the block (blank lines skipped), if any.
    result: str | None


def _blocks() -> list[Block]:
    blocks = []
    i = 0
    while i < len(LINES):
        if LINES[i].strip() != "```python":
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(LINES) and LINES[i].strip() != "```":
            body.append(LINES[i])
            i += 1
        assert i < len(LINES), f"docs/ADAPTER_GUIDE.md:{start + 1}: unclosed ```python block"
        i += 1
        after = i
        while after < len(LINES) and not LINES[after].strip():
            after += 1
        result = LINES[after].strip() if after < len(LINES) else ""
        blocks.append(Block(start + 1, "\n".join(body) + "\n",
                            result if result.startswith("Result:") else None))
    return blocks


BLOCKS = _blocks()
WALK = [b for b in BLOCKS if b.result is not None]


def _run_block(block: Block) -> dict[str, Any]:
    """Execute ``block`` in a fresh namespace, its line numbers those of the guide; fail
    naming the block's line on any error."""
    namespace: dict[str, Any] = {"__name__": f"adapter_guide_line{block.line}"}
    # Pad so a traceback's line numbers are the guide's own.
    source = "\n" * block.line + block.code
    try:
        exec(compile(source, str(GUIDE), "exec"), namespace)
    except Exception as e:
        pytest.fail(f"docs/ADAPTER_GUIDE.md: the ```python block at line {block.line} failed: "
                    f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
    return namespace


@dataclass(frozen=True)
class Claim:
    level: str
    met: bool
    #: Everything that failed at that level, when the line names it.
    failed: frozenset[str] | None


def _claims(block: Block) -> list[Claim]:
    assert block.result is not None
    text = block.result.removeprefix("Result:").strip()
    claims = []
    for part in text.split("·"):
        m = _CLAIM.match(part.strip())
        assert m, (f"docs/ADAPTER_GUIDE.md:{block.line}: cannot read {part.strip()!r} in "
                   f"{block.result!r}; write 'level ✓' or 'level ✗ (ID, ...)'")
        ids = None
        if m["ids"]:
            ids = frozenset(i.strip() for i in m["ids"].split(","))
            unknown = sorted(ids - set(IDS))
            assert not unknown, f"docs/ADAPTER_GUIDE.md:{block.line}: unknown IDs {unknown}"
        claims.append(Claim(m["level"], m["mark"] == "✓", ids))
    assert [c.level for c in claims] == list(LEVELS), (
        f"docs/ADAPTER_GUIDE.md:{block.line}: a Result line names every level, in order "
        f"{', '.join(LEVELS)}: {block.result!r}")
    for c in claims:
        assert not (c.met and c.failed), f"line {block.line}: {c.level} met with failures?"
    return claims


def _walk_seed() -> int:
    found = _WALK_CALL.findall(TEXT)
    assert found, "the guide must say how the walk's results were measured"
    assert len(set(found)) == 1, f"the guide names several seeds for the walk: {found}"
    return int(found[0])


def _section(title: str) -> str:
    """The text of the ``## ...`` section whose heading contains ``title``."""
    m = re.search(rf"^## [^\n]*{re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", TEXT,
                  re.MULTILINE | re.DOTALL)
    assert m, f"the guide has no section titled {title!r}"
    return m.group(1)


# --- every block runs --------------------------------------------------------------------
def test_the_guide_has_blocks_and_a_walk() -> None:
    assert len(BLOCKS) >= len(WALK) + 2
    assert len(WALK) >= 4
    # The walk ends at an adapter that meets every level.
    assert all(c.met for c in _claims(WALK[-1]))


def _adapters(namespace: dict[str, Any]) -> list[type[BaseAdapter]]:
    """The adapter classes a block defined (not those it imported)."""
    return [v for v in namespace.values() if isinstance(v, type)
            and issubclass(v, BaseAdapter) and v.__module__ == namespace["__name__"]]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_python_block_runs(block: Block) -> None:
    namespace = _run_block(block)
    for cls in _adapters(namespace):
        # Every adapter the guide shows can be made the way the suite makes it.
        assert isinstance(cls().info, AdapterInfo)
        if block.result is None:
            # Not in the walk: still driven through a short run, so its hooks run too;
            # whatever it is meant to teach, it is never unsafe.
            result = run_conformance(cls, profile="quick", seed=_walk_seed(), max_examples=50,
                                     workloads=False, isolate=False)
            unsafe = [i for i in result.failed
                      if INVARIANTS[i].level in ("conformant", "signature-current")]
            assert not unsafe, (f"docs/ADAPTER_GUIDE.md:{block.line}: {cls.__name__} is "
                                f"unsafe:\n{result.summary()}")


# --- the walk: each Result line is what the suite measures ----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("block", WALK, ids=[f"line{b.line}" for b in WALK])
def test_walk_step_result(block: Block) -> None:
    claims = _claims(block)
    adapters = _adapters(_run_block(block))
    assert len(adapters) == 1, (f"docs/ADAPTER_GUIDE.md:{block.line}: a walk step defines "
                                f"exactly one adapter class, not {adapters}")
    result = run_conformance(adapters[0], profile="quick", seed=_walk_seed(), isolate=False)
    where = f"docs/ADAPTER_GUIDE.md:{block.line} claims {block.result!r}, but:\n"
    verdicts = result.verdicts
    for claim in claims:
        verdict = verdicts[claim.level]
        assert verdict.met is claim.met, where + result.summary()
        if claim.failed is not None:
            assert set(verdict.failed) == claim.failed, where + verdict.why()
    conformant = claims[0]
    if conformant.failed:
        # A caught step: the run stopped at the one violation the text names.
        assert [v.id for v in result.violations if v.level == "conformant"] == sorted(
            conformant.failed), where + result.summary()


# --- the reference tables name everything the contract has ---------------------------------
def test_every_invariant_has_a_row_with_its_level() -> None:
    table = _section("The invariants")
    rows = dict(re.findall(r"^\| ([A-Z]+-\d+) \| ([a-z-]+) \|", table, re.MULTILINE))
    assert list(rows) == list(IDS)
    assert rows == {i: INVARIANTS[i].level for i in IDS}


def test_every_hook_and_field_is_described() -> None:
    hooks = [n for n, v in vars(BaseAdapter).items()
             if callable(v) and not n.startswith("_")]
    assert {"start", "pre_create", "post_create", "scan_completed", "file_changed",
            "signature_updated", "proactive_scan_completed", "proactive_scan_aborted",
            "stop"} <= set(hooks)
    hook_table = _section("The hooks")
    missing = [h for h in hooks if f"`{h}(" not in hook_table]
    assert not missing, f"hooks missing from the hook table: {missing}"
    services = [n for n in vars(Services) if not n.startswith("_")]
    missing = [m for m in services if f"`{m}(" not in hook_table]
    assert not missing, f"Services methods not described: {missing}"

    types = _section("What the hooks are handed")
    for record in (PreCreate, EcpRequest, PostCreate, RedirectionEcp, ScanResult, FileChange,
                   AdapterInfo):
        fields = [f.name for f in dataclasses.fields(record)]
        if record is RedirectionEcp:
            fields += ["parse", "pack"]
        missing = [f for f in fields if f"`{f}`" not in types and f"`{f}(" not in types]
        assert not missing, f"{record.__name__} fields not described: {missing}"
    enums: list[type[enum.Enum]] = [Verdict, ScanOutcome, ScanOrigin, ChangeKind, Flags]
    for e in enums:
        missing = [m.name for m in e if m.name not in TEXT]
        assert not missing, f"{e.__name__} members not mentioned: {missing}"


def test_every_operation_says_what_the_adapter_receives() -> None:
    table = _section("When each hook is called")
    named = set(re.findall(r"^\| `([a-z_]+)`", table, re.MULTILINE))
    named |= {n for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)+)", table, re.MULTILINE)
              for n in re.findall(r"`([a-z_]+)`", row)}
    missing = sorted(set(O.OPS) - named)
    assert not missing, f"operations missing from the operation table: {missing}"
