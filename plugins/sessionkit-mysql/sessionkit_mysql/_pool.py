"""What MySQL's connections need of sessionkit's pools (``sessionkit.storage``'s): a bounded
pool of PyMySQL connections for the sync methods (:class:`~sessionkit.storage.SyncPool`), and
one of aiomysql connections per event loop for the async methods
(:class:`~sessionkit.storage.AsyncPool`); ``_storage`` gives them the clients' callables.

Why pools of sessionkit's own. PyMySQL has none. aiomysql's waits for a free connection
without a time limit, and its connections wait for the server's replies without one too. Both
pools hold at most ``max_connections`` connections, hand out the most recently used idle one
first (so the surplus of a burst goes idle and stays few), and make a caller wait at most
``pool_timeout`` for one when all are busy. A connection is opened only when none is idle. A
forked child never uses its parent's connections (the sync pool starts afresh in it).

**A connection the server has closed is never handed out.** When the server restarts (or kills
idle connections after ``wait_timeout``), every idle connection in the pool is dead, and the
first statement on each would fail. Before handing out an idle connection, the pool asks its
socket, without waiting, whether the server sent anything (:func:`socket_has_news`): an idle
connection of a healthy server has nothing to say, while a closed one reads as end-of-file (or
holds the error packet MySQL sends before it closes). Such a connection is closed and the next
one tried, or a new one opened. The check costs a few microseconds and no round trip, so a
restarted server costs no failed request.

**A connection whose call failed on the connection itself** (a timeout, a lost connection, a
cancelled task mid-statement) is given back broken, and closed, never put back: the server may
still be working on its statement, and its reply would be read as the next caller's.
"""

from __future__ import annotations

import asyncio
import select
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["bounded", "socket_has_news"]

T = TypeVar("T")


if sys.version_info >= (3, 11):

    async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, cancelled after ``seconds`` (``TimeoutError``)."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, cancelled after ``seconds`` (``asyncio.TimeoutError``)."""
        return await asyncio.wait_for(awaitable, seconds)


def socket_has_news(sock: Any) -> bool:
    """Whether an idle connection's socket has anything to read, or is gone: either way the
    server has closed the connection (or is closing it: MySQL may send an error packet first),
    so it must not be used. Asked without waiting, of plain and TLS sockets alike (an idle TLS
    connection has nothing to read either); nothing is read."""
    try:
        fd = sock.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    if fd < 0:
        return True
    try:
        if _poll is not None:
            poller = _poll()
            poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        readable, _, broken = select.select([fd], [], [fd], 0)
        return bool(readable or broken)
    except (OSError, ValueError):
        return True


_poll = getattr(select, "poll", None)  # not on Windows, where select() has no descriptor limit
