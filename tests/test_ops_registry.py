"""Every operation is whole: registered for traces, applied, described, generated.

An operation is a record in ``reference/ops.py`` (``@operation``), a handler and a
description on ``World`` (``@handles``, ``@describes``) and a strategy in
``strategies.OPERATIONS``. These tests check that the four agree for every registered kind,
and that a half-registered operation is refused rather than silently tolerated.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import strategies
from reference import model
from reference import ops as O
from reference.adapter import reference_factory
from reference.model import World

ROOT = Path(__file__).resolve().parent.parent
KINDS = sorted(O.OPS)
_SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])

#: What a description names: a layer, a container, a host volume, a path or a signature
#: version, as the world resolves the operation's indices.
_ENTITY = re.compile(r"\b[LCH]\d+\b|\\|\bv\d+\b")
#: What a description says when an index resolves to nothing.
_UNRESOLVED = re.compile(r"\((no (container|layer|host file)|none)\)")


def _populated() -> World:
    """A world where every index resolves to something: two local layers (one on each
    volume), a remote one, a process-isolated and a Hyper-V container, a host file."""
    world = World(O.Setup(("NTFS", "ReFS"), "hostile"), reference_factory()())
    for op in (O.InstallLayer(files=O.MAX_LAYER_FILES), O.InstallLayer(volume=1),
               O.InstallLayer(remote=True), O.StartContainer((0, 1)),
               O.StartContainer((0,), hyperv=True), O.HostCreate()):
        world.apply(op)
    return world


# --- the registries agree ------------------------------------------------------------------
def test_every_registered_kind_has_a_handler_a_description_and_a_strategy() -> None:
    model.check_registry()
    assert KINDS, "no operations registered"
    for kind, cls in O.OPS.items():
        assert cls.kind == kind
        assert cls in model.HANDLERS, kind
        assert cls in model.DESCRIBERS, kind
    assert set(model.HANDLERS) == set(model.DESCRIBERS) == set(O.OPS.values())
    kinds = strategies.op_kinds()
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == set(O.OPS)


def test_the_trace_schema_names_every_kind() -> None:
    """A trace of any operation validates: the schema's list of names is the registry's."""
    schema = json.loads((ROOT / "reports" / "trace.schema.json").read_text())
    assert schema["$defs"]["op"]["properties"]["op"]["enum"] == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_operations_can_produce_every_kind(kind: str) -> None:
    # The first one found will do: shrinking it would only spend time.
    op = find(strategies.operations(), lambda op: op.kind == kind,
              settings=settings(database=None, max_examples=2000, phases=(Phase.generate,)))
    assert type(op) is O.OPS[kind]


@_SETTINGS
@given(strategies.examples(max_fragments=12))
def test_scenes_produce_only_kinds_the_strategies_declare(
        example: tuple[O.Setup, list[O.Op], list[str]]) -> None:
    _, ops, _ = example
    assert {op.kind for op in ops} <= set(strategies.op_kinds())


# --- per kind: its strategy, its trace form, its description, its handler -------------------
@pytest.mark.parametrize("kind", KINDS)
@_SETTINGS
@given(data=st.data())
def test_generated_operation_round_trips_describes_and_applies(kind: str,
                                                                data: st.DataObject) -> None:
    cls = O.OPS[kind]
    op = data.draw(strategies.OPERATIONS[cls], label=kind)
    assert type(op) is cls

    # The trace format: plain JSON, and back, through the wrappers and the methods.
    assert O.op_from_json(json.loads(json.dumps(O.op_to_json(op)))) == op
    assert cls.from_json(json.loads(json.dumps(op.to_json()))) == op

    # The description names what the operation acts on, in a world where it resolves.
    world = _populated()
    text = world.describe(op)
    assert text.strip() and text != kind, text
    assert not _UNRESOLVED.search(text), text
    assert _ENTITY.search(text), f"{kind}: {text!r} names nothing it acts on"

    # ... and says something, without failing, where nothing exists yet.
    empty = World(O.Setup(), reference_factory()())
    assert empty.describe(op) not in ("", kind)

    world.apply(op)
    empty.apply(op)


def test_from_json_on_a_class_accepts_only_its_own_kind() -> None:
    assert O.OpenFile.from_json({"op": "open", "file": 2}) == O.OpenFile(file=2)
    with pytest.raises(ValueError, match="expected operation 'open'"):
        O.OpenFile.from_json({"op": "write"})


# --- half-registered operations are refused -------------------------------------------------
def test_an_operation_without_a_handler_or_a_description_is_rejected() -> None:
    @O.operation("throwaway_for_test")
    @dataclass(frozen=True, slots=True)
    class Throwaway(O.Op):
        container: int = 0

    try:
        with pytest.raises(TypeError) as missing_both:
            model.check_registry()
        text = str(missing_both.value)
        assert "'throwaway_for_test' (" in text
        assert "no handler" in text and "no description" in text

        model.handles(Throwaway)(lambda world, op: None)
        with pytest.raises(TypeError, match="throwaway_for_test") as missing_one:
            model.check_registry()
        assert "no description" in str(missing_one.value)
        assert "no handler" not in str(missing_one.value)

        # No fallback to the bare kind when a description is missing.
        world = World(O.Setup(), reference_factory()())
        with pytest.raises(TypeError, match="no description"):
            world.describe(Throwaway())
        with pytest.raises(TypeError, match="two handlers"):
            model.handles(Throwaway)(lambda world, op: None)
        assert "throwaway_for_test" not in strategies.op_kinds()
    finally:
        O.OPS.pop("throwaway_for_test", None)
        model.HANDLERS.pop(Throwaway, None)
        model.DESCRIBERS.pop(Throwaway, None)
    model.check_registry()
    world = World(O.Setup(), reference_factory()())
    with pytest.raises(TypeError, match="no handler"):
        world.apply(Throwaway())


def test_importing_the_model_fails_while_an_operation_lacks_its_handler() -> None:
    code = (
        "from dataclasses import dataclass\n"
        "from reference import ops as O\n"
        "@O.operation('orphan')\n"
        "@dataclass(frozen=True, slots=True)\n"
        "class Orphan(O.Op):\n"
        "    file: int = 0\n"
        "import reference.model\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode != 0
    assert "TypeError" in done.stderr and "'orphan' (Orphan) has no handler" in done.stderr


def test_handlers_and_descriptions_are_only_for_registered_operations() -> None:
    @dataclass(frozen=True, slots=True)
    class Unregistered(O.Op):
        file: int = 0

    for decorator in (model.handles, model.describes):
        with pytest.raises(TypeError, match="not a registered operation"):
            decorator(Unregistered)
    with pytest.raises(TypeError, match="two descriptions"):
        model.describes(O.OpenFile)(lambda world, op: "")


def test_operation_refuses_what_the_trace_format_cannot_carry() -> None:
    with pytest.raises(TypeError, match="name is taken"):
        @O.operation("open")
        @dataclass(frozen=True, slots=True)
        class Again(O.Op):
            file: int = 0

    with pytest.raises(TypeError, match="frozen dataclass"):
        @O.operation("mutable_for_test")
        @dataclass(slots=True)
        class Mutable(O.Op):
            file: int = 0

    with pytest.raises(TypeError, match="field 'path'"):
        @O.operation("stringly_for_test")
        @dataclass(frozen=True, slots=True)
        class Stringly(O.Op):
            path: str = "x"

    with pytest.raises(TypeError, match="field 'file'"):
        @O.operation("required_for_test")
        @dataclass(frozen=True, slots=True)
        class Required(O.Op):
            file: int

    assert not {"mutable_for_test", "stringly_for_test", "required_for_test"} & set(O.OPS)
    assert O.OPS["open"] is O.OpenFile
