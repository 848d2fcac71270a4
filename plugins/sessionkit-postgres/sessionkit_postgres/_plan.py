"""What a PostgreSQL plan yields beside psycopg's own calls (``sessionkit.storage.run_plan``):
a caller's work function (:func:`called`). psycopg's sync and asyncio classes keep the same
method names (``execute``, ``fetchone``, ``close``), so most of a plan's calls are plain names;
the pools do too, as far as a plan calls them (``getconn``, ``putconn``:
:class:`~sessionkit_postgres._loop_pool.LoopPool` speaks ``ConnectionPool``'s words).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessionkit.storage import Plan

__all__ = ["called"]


def called(work: Callable[..., Any], *args: Any) -> Plan[Any]:
    """``work(*args)`` as a plan: called from sync code, awaited from an event loop (an
    operator's or a test's function of a connection, sync or async as its caller is)."""
    return (yield work, "__call__", args)
