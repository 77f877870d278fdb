"""The WCIFS anti-virus conformance suite: the public API vendors import (SPEC §4).

Everything here is re-exported from private modules; what sits behind may move freely.
"""

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

from ._engine import (
    PROFILES,
    ConformanceResult,
    InvariantResult,
    ViolationReport,
    replay,
    run_conformance,
)
from ._errors import (
    AdapterLoadError,
    AdapterStartError,
    ConformanceError,
    ProtocolError,
    TraceError,
)
from ._invariants import INVARIANTS, LEVELS
from ._loading import load_adapter
from ._version import __version__

__all__ = [
    "ECP_SIZE",
    "GUID_ECP_CREATE_REDIRECTION",
    "INVARIANTS",
    "LAYER_ROOT_LOCATIONS_KEY",
    "LEVELS",
    "PROFILES",
    "PROTOCOL_VERSION",
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
    "InvariantResult",
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
    "load_adapter",
    "replay",
    "run_conformance",
]
