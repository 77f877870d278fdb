"""Errors named after the lifecycle step that failed, each with the exit code it maps to."""

from __future__ import annotations


class ConformanceError(Exception):
    """Base of the suite's own errors. ``hint`` says how to fix it; ``exit_code`` is the
    CLI status (SPEC §8): 2 usage, 3 adapter could not be loaded or started, 4 internal."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class AdapterLoadError(ConformanceError):
    """The adapter SPEC does not name a loadable adapter."""


class AdapterStartError(ConformanceError):
    """The adapter factory or ``start`` failed before any event."""

    exit_code = 3


class ProtocolError(ConformanceError):
    """An out-of-process or shared-library adapter broke the protocol."""

    exit_code = 3


class TraceError(ConformanceError):
    """A trace file is missing or malformed."""


class InternalError(ConformanceError):
    """The suite itself failed (SPEC §8, exit 4): a bug to report, never the adapter's fault
    or the user's. ``trace`` is the example that triggered it, when there was one."""

    exit_code = 4

    def __init__(self, message: str, trace: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.trace = trace
