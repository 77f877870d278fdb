"""The sample exec adapter, loaded by path for the faulty variants beside this file (the
sample is a script, not a module of the suite)."""

import importlib.util
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "conformance" / "samples" / "exec_adapter.py"

_spec = importlib.util.spec_from_file_location("exec_adapter", PATH)
assert _spec is not None and _spec.loader is not None
sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample)
