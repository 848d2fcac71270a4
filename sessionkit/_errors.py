"""The exception hierarchy.

Every error sessionkit raises derives from :class:`SessionKitError`, so one ``except`` clause
catches the library's failures without swallowing the application's own. Where an error also
has a natural built-in meaning (a bad value, a failed lookup), it derives from that built-in too,
so code written against the standard library keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "SessionGone",
    "SessionKitError",
    "SessionTooLarge",
    "StorageError",
    "StorageNotFound",
]


class SessionKitError(Exception):
    """Base class of every exception raised by sessionkit and its storage plugins."""


class ConfigError(SessionKitError, ValueError):
    """A configuration value is invalid.

    Raised at construction time, never per request, and the message names the field, so a
    misconfigured deployment fails when it starts rather than on its first visitor.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class StorageNotFound(SessionKitError, LookupError):
    """No installed storage plugin handles the requested URL scheme."""


class StorageError(SessionKitError):
    """The storage backend failed; the driver's exception is chained as ``__cause__``.

    Sessions are never silently replaced by fresh ones when storage is down: a user whose
    session cannot be read is not logged out, the request fails instead (the middleware answers 503).
    """


class SessionTooLarge(SessionKitError):
    """The encoded session exceeds ``Config.max_size``; nothing was written."""


class SessionGone(SessionKitError):
    """The session's record was destroyed or regenerated away by another request.

    Raised by ``save()`` instead of writing, so a slow request cannot resurrect a session that
    a logout (or a login's ``regenerate()``) already removed.
    """
