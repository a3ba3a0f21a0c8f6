"""The exceptions sessionstore raises.

Every error derives from one root, so ``except SessionError`` catches all of
them::

    SessionError
    ├── InvalidParameterError   (also ValueError)  bad input; nothing written
    ├── NotFoundError           (also LookupError) a call had to find something
    ├── ConflictError                              a stale ``expected_revision``; nothing written
    ├── StoreError                                 the backend failed
    │   └── StoreUnavailableError                  cannot reach it / timed out
    └── MissingDependencyError  (also ImportError) an extra is not installed

Driver exceptions never escape a backend: each backend translates them once,
at its edge, with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "InvalidParameterError",
    "MissingDependencyError",
    "NotFoundError",
    "SessionError",
    "StoreError",
    "StoreUnavailableError",
]


class SessionError(Exception):
    """Root of every exception raised by sessionstore."""


class InvalidParameterError(SessionError, ValueError):
    """An argument broke a rule; nothing was written."""


class NotFoundError(SessionError, LookupError):
    """A call that must find something did not."""


class ConflictError(SessionError):
    """A write named an ``expected_revision`` the state no longer has; nothing was written.

    Attributes:
        expected: the revision the caller expected.
        actual: the revision the state had.

    """

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the state is at revision {actual}, not the expected {expected}; "
            "read it again and retry"
        )


class StoreError(SessionError):
    """The backend failed, or the store was used after ``close()``."""


class StoreUnavailableError(StoreError):
    """The backend could not be reached or did not answer in time."""


class MissingDependencyError(SessionError, ImportError):
    """An optional extra needed by a backend is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        self.command = f"pip install 'sessionstore[{extra}]'"
        """The command that installs what is missing."""
        super().__init__(f"the {package!r} package is needed for this: {self.command}")
