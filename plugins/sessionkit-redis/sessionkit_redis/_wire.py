"""Replies read by a protocol of the lane's own, for the asyncio lane's commands.

Why: redis-py's asyncio connection reads a reply through an ``asyncio.StreamReader`` and
bounds each read with ``asyncio.timeout``, a few frames and objects per reply. Handing the
transport's bytes straight to hiredis and each reply straight to the call waiting for it, a
storage's ``aget`` on loopback makes 112,000 instructions instead of 163,000 (callgrind), and
under load the session layer on Starlette costs about 20 µs less per request (about 114
against 134 µs; docs/performance.md, *The asyncio read path on Redis*).

How: redis-py still opens every connection and does its whole handshake (TLS, ``AUTH``,
``SELECT``, ``CLIENT SETNAME``), and connects again after a disconnect. Once a connection is
connected, and again after every reconnect, a :class:`Wire` takes the place of the transport's
protocol. It feeds what arrives to a ``hiredis.Reader`` (redis-py's own reply parser,
installed with ``redis[hiredis]``) built as redis-py builds it, so error replies become the
same exception classes (``NoScriptError``, ``ReadOnlyError``, ``OutOfMemoryError``, ...).
Everything else the transport reports (the connection lost, end of file, flow control) goes
on to redis-py's protocol, so redis-py's own ``disconnect`` and ``drain`` work as before.

What does not change: every reply is read within ``socket_timeout`` (one timer per command
instead of a timeout scope); a call that fails or is interrupted in any way (a timeout, the
server gone, a cancelled task) disconnects the connection, as redis-py's ``read_response``
does, so a connection back on the lane's free list has read every reply it was sent; a write
waits only when the transport's buffer is full, bounded by the same timeout.

Only plain connections take a Wire: TCP, TLS or a Unix socket, RESP2, no
``health_check_interval``, replies as bytes. Sentinel's connections (whose ``read_response``
turns a ``READONLY`` reply into a reconnect to the new primary), RESP3 (push messages) and
anything else keep redis-py's path.

The module also packs commands for both lanes (:func:`packed`): with hiredis's packer alone,
where the connection encodes text as hiredis does, instead of redis-py's, which re-encodes
every argument in Python first.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import redis
import redis.asyncio.connection
import redis.connection
import redis.exceptions

try:
    import hiredis
except ImportError:  # pragma: no cover - a dependency of sessionkit-redis (redis[hiredis])
    hiredis = None  # type: ignore[assignment]

__all__ = ["exchange", "exchange_many", "packed", "packs_plainly", "plain"]

#: Bytes queued in a transport above which a write waits for the server to read (asyncio's
#: own default high-water mark for a socket transport).
WRITE_BUFFER_HIGH = 64 * 1024

_PLAIN = (
    redis.asyncio.connection.Connection,
    redis.asyncio.connection.SSLConnection,
    redis.asyncio.connection.UnixDomainSocketConnection,
)
#: The sync connections whose ``send_command`` only packs and sends (exact classes: a subclass
#: may do more there, as redis-py's own client-side caching and Sentinel's connections do).
_SYNC_PLAIN = (
    redis.connection.Connection,
    redis.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection,
)
#: The connection's attributes: whether it takes a Wire (decided once), and its current one.
_PLAIN_ATTR = "_sessionkit_plain"
#: A sync connection's attribute: whether hiredis packs its commands (decided once).
_PACKS_ATTR = "_sessionkit_packs"
_WIRE_ATTR = "_sessionkit_wire"
_CLOSED = "Connection closed by server."


def plain(conn: Any) -> bool:
    """Whether ``conn`` takes a Wire (see the module), decided once per connection."""
    known: bool | None = conn.__dict__.get(_PLAIN_ATTR)
    if known is None:
        known = (
            hiredis is not None
            and type(conn) in _PLAIN
            and conn.protocol in (None, 2, "2")
            and not conn.health_check_interval
            and not conn.encoder.decode_responses
            and _encodes_as_hiredis(conn)
        )
        setattr(conn, _PLAIN_ATTR, known)
    return known


def _current(conn: Any) -> Wire | None:
    """The Wire of ``conn``'s transport when it is ready for a command, else None."""
    wire: Wire | None = conn.__dict__.get(_WIRE_ATTR)
    writer = conn._writer
    if wire is None or wire.lost or writer is None or writer.transport is not wire.transport:
        return None
    return wire


async def _ready(conn: Any) -> Wire:
    """``conn`` connected, with a Wire on its current transport."""
    wire: Wire | None = conn.__dict__.get(_WIRE_ATTR)
    writer = conn._writer
    if wire is not None and wire.lost and writer is not None and writer.transport is wire.transport:
        await conn.disconnect(nowait=True)  # the server left; redis-py has not seen it yet
    if not conn.is_connected:
        await conn.connect()  # every supported redis-py has it (connect_check_health: 6.0+)
    transport = conn._writer.transport
    if wire is None or wire.transport is not transport:
        wire = Wire(conn, transport)
        setattr(conn, _WIRE_ATTR, wire)
    return wire


class Wire(asyncio.Protocol):
    """The protocol of one transport of a connection, from when the lane first uses it until
    it closes (a reconnect makes a new transport, and a new Wire)."""

    __slots__ = ("_conn", "_inner", "_reader", "_waiters", "lost", "transport")

    def __init__(self, conn: Any, transport: Any) -> None:
        self._conn = conn
        self.transport = transport
        self._inner = transport.get_protocol()
        self._reader = hiredis.Reader(
            protocolError=redis.exceptions.InvalidResponse, replyError=conn._parser.parse_error
        )
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.lost = transport.is_closing()
        transport.set_protocol(self)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiters = self._waiters
        try:
            while (reply := reader.gets()) is not False:
                if not waiters:  # a reply nobody asked for: out of step
                    raise redis.exceptions.InvalidResponse("a reply with no command waiting")
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(reply)
        except Exception as exc:  # hiredis's protocol error, or the one above
            self.lost = True
            self._fail_all(exc)
            self.transport.abort()

    def eof_received(self) -> bool:
        self.lost = True
        self._fail_all(redis.ConnectionError(_CLOSED))
        self._inner.eof_received()
        return False  # close the transport: nothing more can be read

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail_all(redis.ConnectionError(_CLOSED))
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _fail_all(self, exc: Exception) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    # -- calls ----------------------------------------------------------------------------

    async def replies(self, packed: list[bytes], count: int) -> list[Any]:
        """Send ``packed`` (``count`` commands) and return their replies in order, error
        replies in place. Any failure or interruption disconnects the connection."""
        conn = self._conn
        waiters: list[asyncio.Future[Any]] = []
        try:
            transport = self.transport
            if self.lost or transport.is_closing():
                raise redis.ConnectionError(_CLOSED)
            loop = asyncio.get_running_loop()
            waiters = [loop.create_future() for _ in range(count)]
            self._waiters.extend(waiters)
            transport.writelines(packed)
            timeout = conn.socket_timeout
            if transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                try:
                    await asyncio.wait_for(conn._writer.drain(), timeout)
                except asyncio.TimeoutError:
                    raise redis.TimeoutError(f"Timeout writing to {conn._host_error()}") from None
            expiry = None
            if timeout is not None:
                expiry = loop.call_at(loop.time() + timeout, self._expire, waiters[-1])
            try:
                return [await waiter for waiter in waiters]
            finally:
                if expiry is not None:
                    expiry.cancel()
        except BaseException:
            self.lost = True
            _settle(waiters)
            await conn.disconnect(nowait=True)
            raise

    def _expire(self, last: asyncio.Future[Any]) -> None:
        """``socket_timeout`` passed before the last reply came: fail every reply still due."""
        if not last.done():
            self.lost = True
            self._fail_all(redis.TimeoutError(f"Timeout reading from {self._conn._host_error()}"))


def _settle(waiters: list[asyncio.Future[Any]]) -> None:
    """The replies of a failed call that it will not await: cancelled if still due (so the
    connection's end cannot fail them later), their error read if already failed, so that
    asyncio never reports "Future exception was never retrieved"."""
    for waiter in waiters:
        if not waiter.done():
            waiter.cancel()
        elif not waiter.cancelled():
            waiter.exception()


async def exchange(conn: Any, args: tuple[Any, ...]) -> Any:
    """One command and its reply on a :func:`plain` connection; an error reply raises."""
    wire = _current(conn) or await _ready(conn)
    (reply,) = await wire.replies([_pack(conn, args)], 1)
    if isinstance(reply, redis.ConnectionError):
        await _unusable(conn, reply)
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


async def exchange_many(conn: Any, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    """Commands sent together on a :func:`plain` connection, and their replies in order: an
    error reply in its place, but one that says the connection is unusable raises."""
    wire = _current(conn) or await _ready(conn)
    replies = await wire.replies([_pack(conn, args) for args in commands], len(commands))
    for reply in replies:
        if isinstance(reply, redis.ConnectionError):
            await _unusable(conn, reply)
    return replies


def packs_plainly(conn: Any) -> bool:
    """Whether a sync connection's commands may be packed by :func:`packed` and sent with
    ``send_packed_command``, byte for byte what its own ``send_command`` would send: a plain
    connection (see :data:`_SYNC_PLAIN`) whose encoder writes ``str`` as UTF-8, strictly, as
    hiredis does. Decided once per connection.

    Why: redis-py's packer, even with hiredis, re-encodes every argument in Python first
    (about 3 µs for a ``GET`` and 7 for the compare-and-swap's ``EVALSHA`` on this project's
    VM, against 0.3 and 1 for hiredis alone), on every command of the sync lane.
    """
    known: bool | None = conn.__dict__.get(_PACKS_ATTR)
    if known is None:
        known = hiredis is not None and type(conn) in _SYNC_PLAIN and _encodes_as_hiredis(conn)
        setattr(conn, _PACKS_ATTR, known)
    return known


def _encodes_as_hiredis(conn: Any) -> bool:
    """hiredis packs ``str`` as UTF-8, strictly: redis-py's default encoding."""
    encoder = conn.encoder
    return bool(
        encoder.encoding.lower().replace("-", "") == "utf8" and encoder.encoding_errors == "strict"
    )


def packed(conn: Any, commands: tuple[tuple[Any, ...], ...]) -> bytes:
    """``commands`` in the protocol, for a connection :func:`packs_plainly` vouches for (or a
    :func:`plain` one)."""
    if len(commands) == 1:
        return _pack(conn, commands[0])
    return b"".join([_pack(conn, args) for args in commands])


def _pack(conn: Any, args: tuple[Any, ...]) -> bytes:
    """One command in the protocol: hiredis's packer, as redis-py's own with hiredis, but
    without redis-py's per-argument encoding (``plain`` connections encode as hiredis does).
    A command name of two words (``"SCRIPT LOAD"``) is split as redis-py splits it."""
    name = args[0]
    if isinstance(name, str) and " " in name:
        return b"".join(conn.pack_command(*args))
    packed: bytes = hiredis.pack_command(args)
    return packed


async def _unusable(conn: Any, reply: redis.ConnectionError) -> None:
    """An error reply that says the connection is unusable (such as ``LOADING``): redis-py's
    ``read_response`` disconnects and raises it, and so does the lane."""
    await conn.disconnect(nowait=True)
    raise reply
