"""The reference model of a Windows container host and the reference adapter.

Pure Python, deterministic, and free of any test framework: ``strategies`` and
``conformance`` build on it; it imports nothing of theirs. The adapter contract
(``reference.contract``) loads on its own; the model only when a name of it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import ops
    from .adapter import ReferenceAdapter, reference_factory
    from .model import CreateRecord, Provenance, World

_LAZY = {"ops": ".ops", "ReferenceAdapter": ".adapter", "reference_factory": ".adapter",
         "CreateRecord": ".model", "Provenance": ".model", "World": ".model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reference' has no attribute {name!r}")
    loaded = importlib.import_module(module, __name__)
    value = loaded if name == "ops" else getattr(loaded, name)
    globals()[name] = value
    return value


__all__ = ["CreateRecord", "Provenance", "ReferenceAdapter", "World", "ops",
           "reference_factory"]
