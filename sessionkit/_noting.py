"""Remembering, on a session object, that a storage call failed in this request.

The middlewares (ASGI, WSGI, Django's) read it after the application has answered: a storage
failure must answer 503, even when an error layer of the application's own caught the
exception and turned it into a 500 page first. :class:`~sessionkit.Session` and the Django
engine's ``SessionStore`` both make their storage calls through these two methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._errors import StorageError

__all__ = ["FailureNoting"]

_T = TypeVar("_T")


class FailureNoting:
    """Mixin: ``_noting`` / ``_anoting`` run a storage call, keeping a StorageError in
    ``_broke`` before raising it on. The class provides ``_broke`` (a slot of its own, as
    :class:`~sessionkit.Session` has, or an attribute) and sets it to ``None`` when made: a
    slot here would clash with Django's ``SessionBase``, which has none."""

    __slots__ = ()

    _broke: StorageError | None

    def _noting(self, call: Callable[..., _T], *args: Any) -> _T:
        """Run a storage ``call`` on this session's behalf, remembering a StorageError."""
        try:
            return call(*args)
        except StorageError as exc:
            self._broke = exc  # type: ignore[misc]  # the class's own slot (see above)
            raise

    async def _anoting(self, call: Awaitable[_T]) -> _T:
        """Async twin of :meth:`_noting`."""
        try:
            return await call
        except StorageError as exc:
            self._broke = exc  # type: ignore[misc]  # the class's own slot (see above)
            raise
