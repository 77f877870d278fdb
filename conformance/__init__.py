"""The WCIFS anti-virus conformance suite: the public API vendors import (SPEC §4).

Everything here is re-exported from private modules; what sits behind may move freely.
Importing the package is cheap: the catalogue, the contract and the errors load at once; the
engine (Hypothesis, the model, the strategies) only when one of its names is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reference.contract import (
    ECP_SIZE,
    GUID_ECP_CREATE_REDIRECTION,
    LAYER_ROOT_LOCATIONS_KEY,
    PROTOCOL_VERSION,
    VALID_FLAG_COMBINATIONS,
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
)

from ._errors import (
    AdapterLoadError,
    AdapterStartError,
    ConformanceError,
    InternalError,
    ProtocolError,
    TraceError,
)
from ._formats import TRACE_FORMAT, TRACE_FORMAT_VERSION
from ._invariants import IDS, INVARIANTS, LEVELS, LevelVerdict, level_verdicts, rests_on
from ._profiles import CUSTOM, PROFILES, exercise_advice, slice_examples
from ._version import __version__

if TYPE_CHECKING:
    from ._engine import (
        ConformanceResult,
        InvariantResult,
        ViolationReport,
        replay,
        run_conformance,
    )
    from ._loading import load_adapter

#: Names whose modules load on first use (they pull in Hypothesis and the model).
_LAZY = {
    "ConformanceResult": "._engine",
    "InvariantResult": "._engine",
    "ViolationReport": "._engine",
    "replay": "._engine",
    "run_conformance": "._engine",
    "load_adapter": "._loading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CUSTOM",
    "ECP_SIZE",
    "GUID_ECP_CREATE_REDIRECTION",
    "IDS",
    "INVARIANTS",
    "LAYER_ROOT_LOCATIONS_KEY",
    "LEVELS",
    "PROFILES",
    "PROTOCOL_VERSION",
    "TRACE_FORMAT",
    "TRACE_FORMAT_VERSION",
    "VALID_FLAG_COMBINATIONS",
    "AdapterInfo",
    "AdapterLoadError",
    "AdapterStartError",
    "BaseAdapter",
    "ChangeKind",
    "ConformanceError",
    "ConformanceResult",
    "EcpRequest",
    "FileChange",
    "Flags",
    "InternalError",
    "InvariantResult",
    "LevelVerdict",
    "PostCreate",
    "PreCreate",
    "ProtocolError",
    "RedirectionEcp",
    "ScanOrigin",
    "ScanOutcome",
    "ScanResult",
    "Services",
    "TraceError",
    "Verdict",
    "ViolationReport",
    "__version__",
    "exercise_advice",
    "level_verdicts",
    "load_adapter",
    "replay",
    "rests_on",
    "run_conformance",
    "slice_examples",
]
