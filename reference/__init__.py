"""The reference model of a Windows container host and the reference adapter.

Pure Python, deterministic, and free of any test framework: ``strategies`` and
``conformance`` build on it; it imports nothing of theirs.
"""

from . import ops
from .adapter import ReferenceAdapter, reference_factory
from .model import CreateRecord, Provenance, World

__all__ = ["CreateRecord", "Provenance", "ReferenceAdapter", "World", "ops",
           "reference_factory"]
