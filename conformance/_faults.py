"""An adapter call that failed in a way the adapter's own code did not report (SPEC §10)."""

from __future__ import annotations

#: Seconds a single adapter call may take before it counts as a hang (SAFE-13): far above
#: any real decision, short enough that a hanging adapter is found in a bounded time.
DEFAULT_CALL_TIMEOUT = 5.0

#: What can go wrong in a call besides the hook raising.
FAULT_KINDS = ("raised", "timeout", "crash", "garbage", "exited", "protocol")


class AdapterFault(Exception):
    """Call ``call`` failed: ``kind`` is one of :data:`FAULT_KINDS`, ``what`` completes the
    sentence "<call> <what>", ``detail`` carries the traceback or the child's stderr tail.
    It becomes SAFE-13 during a run, and exit 3 when the adapter is being started."""

    def __init__(self, call: str, kind: str, what: str,
                 detail: dict[str, str] | None = None) -> None:
        super().__init__(f"{call} {what}")
        self.call = call
        self.kind = kind
        self.what = what
        self.detail = dict(detail or {})
