"""Flash messages for any app: a message set in one request, shown once in a later one.

Flask has its own (``flask.flash``); these are the same two calls for ASGI and WSGI apps,
over the session. They keep Flask's format, a list of ``(category, message)`` under
``"_flashes"``, so an app that mixes both (a Flask admin beside a Starlette API, sharing a
store) sees one queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._session import Session

__all__ = ["FLASH_KEY", "flash", "get_flashed_messages"]

#: Flask's key, so ``flask.get_flashed_messages()`` reads what :func:`flash` queued.
FLASH_KEY = "_flashes"


def flash(session: Session, message: Any, category: str = "message") -> None:
    """Queue ``message`` (any storable value, usually text) for a later request.

    The queue is written back whole, so the session knows it changed and saves it at the
    end of the request.
    """
    queued = list(session.get(FLASH_KEY, ()))
    queued.append((category, message))
    session[FLASH_KEY] = queued


def get_flashed_messages(
    session: Session, with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[Any]:
    """Take the queued messages out of the session and return them, oldest first (Flask's
    signature): ``(category, message)`` pairs with ``with_categories``, only those of
    ``category_filter``'s categories when it is given. Every queued message is removed,
    shown or filtered out, as in Flask; a session without any is not changed."""
    queued = session.get(FLASH_KEY)
    if queued is None:
        return []
    session.delete(FLASH_KEY)
    wanted = frozenset(category_filter)
    pairs = [(c, m) for c, m in queued if not wanted or c in wanted]
    return pairs if with_categories else [message for _, message in pairs]
