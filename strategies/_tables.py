"""Compact tables: a record drawn as one fixed-size byte string.

Hypothesis' cost is per choice and per strategy, not per bit: an operation built from five
field strategies costs seven draws and five choices, and generating used to take most of a
run. Here a whole record (an operation, a scene's arguments, an opening) is one
``st.binary`` choice of fixed size, decoded field by field from tables of values.

Each field reads its own bytes, scaled onto its table (``byte * n >> 8``), so the
shrinker, which lowers the bytes of a choice one at a time toward zero, moves each field
toward the first entry of its table (list the simplest value first) independently of the
others; and Hypothesis' mutator, which copies choices between spans of like label, still
repeats whole operations and scenes. A value listed twice is drawn twice as often.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

__all__ = ["Choice", "Const", "Field", "Record", "Seq", "Values", "strategy"]


class Field:
    """A part of a record: how many bytes it reads and how it reads them."""

    __slots__ = ()
    width: int

    def decode(self, buf: bytes, pos: int) -> Any:
        raise NotImplementedError


class Values(Field):
    """One of a table of values, the table being the parts one after another. One byte
    when the table's size divides 256, else two (the bias is then at most n/65536)."""

    __slots__ = ("n", "values", "width")

    def __init__(self, *parts: Iterable[Any]) -> None:
        self.values = tuple(itertools.chain.from_iterable(parts))
        self.n = len(self.values)
        if not 0 < self.n <= 1 << 16:
            raise ValueError(f"a table has 1 to 65536 entries, not {self.n}")
        self.width = 1 if 256 % self.n == 0 else 2

    def decode(self, buf: bytes, pos: int) -> Any:
        if self.width == 1:
            return self.values[buf[pos] * self.n >> 8]
        return self.values[(buf[pos] << 8 | buf[pos + 1]) * self.n >> 16]


class Const(Field):
    """A value that takes no bytes."""

    __slots__ = ("value",)
    width = 0

    def __init__(self, value: Any) -> None:
        self.value = value

    def decode(self, buf: bytes, pos: int) -> Any:
        return self.value


class Record(Field):
    """``make(*fields)``, the fields read one after another."""

    __slots__ = ("fields", "make", "width")

    def __init__(self, make: Callable[..., Any], fields: Sequence[Field]) -> None:
        self.make = make
        self.fields = tuple(fields)
        self.width = sum(f.width for f in self.fields)

    @classmethod
    def of(cls, kind: Callable[..., Any], **fields: Field) -> Record:
        """``kind(name=value, ...)``: an operation from its named fields."""
        names = tuple(fields)

        def make(*values: Any) -> Any:
            return kind(**dict(zip(names, values, strict=True)))

        return cls(make, tuple(fields.values()))

    def decode(self, buf: bytes, pos: int) -> Any:
        values = []
        for f in self.fields:
            values.append(f.decode(buf, pos))
            pos += f.width
        return self.make(*values)


class Choice(Field):
    """One of several fields, each equally likely (list one twice to double it); the
    alternatives share the bytes after the selector."""

    __slots__ = ("options", "selector", "width")

    def __init__(self, *options: Field) -> None:
        self.options = options
        self.selector = Values(range(len(options)))
        self.width = self.selector.width + max(o.width for o in options)

    def decode(self, buf: bytes, pos: int) -> Any:
        return self.options[self.selector.decode(buf, pos)].decode(
            buf, pos + self.selector.width)


class Seq(Field):
    """A tuple of ``low`` to ``high`` elements, every length equally likely; shrinking
    the length drops elements from the end."""

    __slots__ = ("element", "high", "length", "width")

    def __init__(self, element: Field, low: int, high: int) -> None:
        self.element = element
        self.length = Values(range(low, high + 1))
        self.high = high
        self.width = self.length.width + high * element.width

    def decode(self, buf: bytes, pos: int) -> tuple[Any, ...]:
        count = self.length.decode(buf, pos)
        pos += self.length.width
        step = self.element.width
        return tuple(self.element.decode(buf, pos + i * step) for i in range(count))


def strategy(field: Field, width: int = 0) -> st.SearchStrategy[Any]:
    """The field drawn as one choice of ``width`` bytes (at least its own; the rest
    unread).

    Give every record of a sequence the same width: when Hypothesis replays a mutated
    sequence, a choice of another size where a record stands is misaligned and replaced by
    the simplest one (all zero bytes), which skews generation toward each table's first
    value."""
    width = max(width, field.width)
    if width == 0:
        return st.just(field.decode(b"", 0))
    return st.binary(min_size=width, max_size=width).map(lambda buf: field.decode(buf, 0))
