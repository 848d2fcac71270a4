"""The opt-in client-side cache (``client_cache=true``): reads of unchanged sessions make no
round trip, because the server tells this process when a cached one changes.

How the server tells: one connection of the cache's own (the *listener*) turns on Redis's
client tracking in broadcast mode for the storage's prefix and redirects the messages to
itself, then subscribes to ``__redis__:invalidate``::

    CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <prefix>
    SUBSCRIBE __redis__:invalidate

From then on, every change of a key under the prefix, whoever made it (a ``SET``, ``DEL``,
``UNLINK``, ``PEXPIRE``, a script, an expiry or an eviction by the server), sends the key's
name to the listener, and ``FLUSHDB``/``FLUSHALL`` send "everything". Why broadcast and not
the default mode, where the server remembers which connection read which key: in the default
mode the keys are tracked per reading connection, and a reading connection that dies (a
timeout, ``CLIENT KILL``, a proxy's idle limit) silently takes the tracking of every key it
read with it, so no message would ever come for them. In broadcast mode the listener is the
one connection whose life the cache's correctness rests on, and it watches that one.

Why not redis-py's own cache (``cache_config=CacheConfig()``, redis-py 5.1 and later): it is
for the sync client only (``redis.asyncio`` has none, and the storage serves both), it needs
``protocol=3`` and Redis 7.4 or newer (it refuses older servers when it connects, and this
plugin supports 6.2), it works through the pool's checkout on every command (which the
storage's lane skips, 25 µs a command), it tracks per connection (so an idle connection's
invalidations wait until that connection is used again, and the cache reads them then), and
it knows nothing of TTLs.

What a read does (:meth:`ClientCache.get`), under one lock, with no round trip: it *drains*
the listener's socket without blocking (a ``poll`` with no wait; only when bytes are there
are they read, by this module on a non-blocking socket, and applied), so every message that
reached this machine before the read began is applied before the read looks; then it serves
the entry if the listener is alive, its last ``PING`` answered within :data:`LIVE_WINDOW`, no
message is cut in two (its rest not read yet), no burst is being caught up with (see
:meth:`ClientCache._drain`), and the entry has not reached the TTL it was read with. Anything
else is a miss, which reads through with ``GET`` and ``PTTL`` in one round trip and fills the
entry.

The race every such cache must close: a read misses, sends ``GET``, gets the old value, and
a change made just after that ``GET`` ran sends its message, which another thread's read
drains before this read stores its value; stored then, the old value would be served until
the key changed again. So a fill takes a *ticket* before it sends (:meth:`ClientCache.begin`),
every message about the key (and every flush) voids the key's ticket, and a value is stored
only if its ticket is still the key's (:meth:`ClientCache.fill`). A message that arrives after
the value was stored removes it at the next read's drain.

When the listener breaks (the server closed it, ``CLIENT KILL``, an error reading it, a
``PING`` unanswered for :data:`LIVE_WINDOW`), the cache is emptied, every ticket voided, and
reads go to the server without filling until a new listener is subscribed; a thread of its
own connects it (so an asyncio read never blocks on a connect), at once and then at most
every :data:`RETRY_EVERY` seconds while it fails. Entries are only filled while a listener
is subscribed, so none can outlive a gap in the messages.

The window that remains, and why it cannot be closed without a round trip: a change
acknowledged to another process is missed by a read here only if its message has not yet
reached this machine's socket when the read drains it. The server queues the message in the
same event-loop turn as the writer's reply and writes both within microseconds, while the
writer still has to read its reply and tell someone; measured on one machine
(``tests/test_client_cache_processes.py``): see ``docs/backends/redis.md``. A read that made
no round trip cannot know about a message still on the wire; that is the price of the
option, and why it is off by default.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import hiredis
import redis
import redis.backoff
import redis.retry

from ._options import CacheSettings

__all__ = ["LIVE_WINDOW", "PING_EVERY", "RETRY_EVERY", "ClientCache"]

logger = logging.getLogger("sessionkit_redis")

#: The channel the server sends redirected invalidations to, for a RESP2 listener.
CHANNEL = "__redis__:invalidate"
#: Seconds between two ``PING``\\ s on the listener, sent by reads (nothing is sent while
#: nothing reads).
PING_EVERY = 0.25
#: Seconds: a hit is served only while the listener's last ``PING`` was answered (drained)
#: at most this long ago. It bounds how long a listener cut off without a word (a network
#: partition, no ``RST``) can go unnoticed by a process that keeps reading.
LIVE_WINDOW = 1.0
#: Seconds between two attempts to connect a listener while they fail.
RETRY_EVERY = 1.0
#: Bytes counted per entry on top of its name and value (the dict slot, the tuple, the
#: objects' headers), so the byte bound holds for small sessions too.
ENTRY_OVERHEAD = 200
#: Bytes asked of the listener's socket per ``recv``.
CHUNK = 65536
#: Bytes read by one drain from which the listener may be behind (see :meth:`ClientCache._drain`).
BEHIND_AT = 65536
_PING = b"*1\r\n$4\r\nPING\r\n"
#: A ``recv`` on the non-blocking listener with nothing to read (plain or TLS).
_NOTHING_YET = (BlockingIOError, ssl.SSLWantReadError)


def _never() -> bool:
    return False


_CACHES: weakref.WeakSet[ClientCache] = weakref.WeakSet()


def _forget_all() -> None:
    """In a forked child: drop every cache's listener (its socket is the parent's: reading
    it would steal the parent's messages) and entries; the child subscribes its own."""
    for cache in list(_CACHES):
        cache.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all)


def _poller(fd: int) -> Callable[[], object]:
    """A check, without waiting, of whether ``fd`` has bytes (or an end) to read."""
    if hasattr(select, "poll"):
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        return lambda: poll.poll(0)
    return lambda: select.select([fd], (), (), 0)[0]  # Windows: no poll()


def _reply(sock: Any, reader: Any) -> Any:
    """The next reply on the listener while it subscribes (the socket still blocks, within
    its ``socket_timeout``); an error reply is raised."""
    while (reply := reader.gets()) is False:
        data = sock.recv(CHUNK)
        if not data:
            raise ConnectionError("the server closed the connection")
        reader.feed(data)
    if isinstance(reply, Exception):
        raise reply
    return reply


class ClientCache:
    """The cached values of one storage, bounded, kept right by the server's messages.

    Thread-safe (one lock, never held across a round trip), and usable from any event loop:
    nothing in it awaits, and its socket work never blocks (the connect is a thread's).
    """

    __slots__ = (
        "__weakref__",
        "_barrier",
        "_bytes",
        "_closed",
        "_connecting",
        "_entries",
        "_listener",
        "_lock",
        "_make_listener",
        "_next_try",
        "_pending",
        "_ping_due",
        "_ping_sent",
        "_ping_timeout",
        "_pings",
        "_poll",
        "_pong_at",
        "_pongs",
        "_prefix",
        "_reader",
        "_settings",
        "_sock",
        "_tickets",
        "_tls",
        "listener_id",
        "stats",
    )

    def __init__(self, pool: Any, prefix: str, settings: CacheSettings) -> None:
        """``pool``: the storage's sync connection pool, whose connection class and keywords
        (address, credentials, TLS, database, timeouts) the listener is made with."""
        self._prefix = prefix
        self._settings = settings
        kwargs = {
            # redis-py's maintenance notifications are a RESP3 feature of pooled connections
            **{k: v for k, v in pool.connection_kwargs.items() if "maint_notif" not in k},
            "protocol": 2,  # pub/sub messages; the data connections may speak either
            "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),
            "health_check_interval": 0,  # its own PINGs tell
        }
        connection_class = pool.connection_class
        self._make_listener: Callable[[], Any] = lambda: connection_class(**kwargs)
        self._lock = threading.Lock()
        #: name -> (value, monotonic deadline), least recently read first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        #: name -> the ticket of the fill in flight (see the module's note).
        self._pending: dict[str, int] = {}
        self._tickets = itertools.count(1)
        self._listener: Any = None
        #: The listener's socket (non-blocking once subscribed; see :meth:`_drain`), whether
        #: it is TLS, and the parser its bytes are fed to.
        self._sock: Any = None
        self._tls = False
        self._reader: Any = None
        self._poll: Callable[[], object] = _never
        #: The listener's client id (for operators, and tests that kill it); 0: none.
        self.listener_id = 0
        self._pong_at = 0.0
        self._ping_due = 0.0
        self._ping_sent = 0.0
        #: ``PING``s sent and answered on the listener (answers come in order), and how many
        #: must be answered before hits are served again (see :meth:`_drain`).
        self._pings = self._pongs = self._barrier = 0
        #: Seconds an unanswered PING breaks the listener after: the reply timeout of any
        #: command (``socket_timeout``), at least :data:`LIVE_WINDOW`.
        self._ping_timeout = max(LIVE_WINDOW, kwargs.get("socket_timeout") or LIVE_WINDOW)
        self._connecting = False
        self._next_try = 0.0
        self._closed = False
        #: Counters: hits, misses, fills, invalidated (keys), breaks (listener lost).
        self.stats = dict.fromkeys(("hits", "misses", "fills", "invalidated", "breaks"), 0)
        _CACHES.add(self)

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        """The cached value of ``name``, or ``None``: not cached, expired, or the cache cannot
        vouch for anything right now (then the caller reads from the server)."""
        with self._lock:
            now = time.monotonic()
            if not self._serving(now):
                return None
            entry = self._entries.get(name)
            if entry is None:
                self.stats["misses"] += 1
                return None
            if now >= entry[1]:
                self._drop(name)
                self.stats["misses"] += 1
                return None
            self._entries.move_to_end(name)
            self.stats["hits"] += 1
            return entry[0]

    def begin(self, name: str) -> int | None:
        """A ticket for filling ``name`` (take it before sending the read), or ``None``: no
        listener is subscribed, so whatever is read now must not be kept."""
        with self._lock:
            if self._listener is None:
                self._start_connect(time.monotonic())
                return None
            ticket = next(self._tickets)
            self._pending[name] = ticket
            return ticket

    def fill(self, name: str, ticket: int, sent: float, value: bytes | None, pttl: object) -> None:
        """Keep ``value``, read with ``ticket`` (the read was sent at monotonic ``sent``, the
        key's TTL then was ``pttl`` ms), unless a message or a flush voided the ticket since.

        The deadline counts from the send, before the server read the TTL, so it comes no
        later than the server's own expiry: an entry is never served past its TTL.
        """
        with self._lock:
            if self._pending.get(name) != ticket:
                return  # changed (or the listener lost) while the read was in flight
            del self._pending[name]
            if value is None or not isinstance(pttl, int) or pttl == -2:
                return
            deadline = float("inf") if pttl < 0 else sent + pttl / 1000
            size = len(name) + len(value) + ENTRY_OVERHEAD
            if size > self._settings.max_bytes:
                return
            self._drop(name)
            self._entries[name] = (value, deadline)
            self._bytes += size
            self.stats["fills"] += 1
            entries, settings = self._entries, self._settings
            while len(entries) > settings.max_entries or self._bytes > settings.max_bytes:
                self._drop(next(iter(entries)))

    def abandon(self, name: str, ticket: int) -> None:
        """Give up the fill of ``name`` with ``ticket`` (its read failed)."""
        with self._lock:
            if self._pending.get(name) == ticket:
                del self._pending[name]

    # -- this process's own writes -----------------------------------------------------------

    def invalidate(self, name: str | None) -> None:
        """Forget ``name`` (``None``: everything), after this process changed it.

        Called once the write's reply is in (or it failed: it may have been made), so a read
        that starts after the write returned never sees the old value, whether or not the
        server's message about it has arrived yet; a fill in flight across the write is
        voided too.
        """
        with self._lock:
            if name is None:
                self._flush()
            else:
                self._drop(name)
                self._pending.pop(name, None)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes the entries are counted as (names, values and :data:`ENTRY_OVERHEAD` each)."""
        return self._bytes

    @property
    def live(self) -> bool:
        """Whether a listener is subscribed (hits may be served)."""
        return self._listener is not None

    # -- inside the lock ---------------------------------------------------------------------

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self._bytes -= len(name) + len(entry[0]) + ENTRY_OVERHEAD

    def _flush(self) -> None:
        self._entries.clear()
        self._pending.clear()
        self._bytes = 0

    def _serving(self, now: float) -> bool:
        """Apply what the listener has received; whether hits may be served now."""
        if self._listener is None:
            self._start_connect(now)
            return False
        if self._poll() or self._ssl_pending():
            self._drain(now)
            if self._listener is None:
                return False
        if self._pongs < self._pings:
            if now - self._ping_sent > self._ping_timeout:  # as any command would fail
                self._break(now, "its PING went unanswered")
                return False
        elif now >= self._ping_due:
            self._ping(now)
        # A message partly read names keys not known yet: nothing is served until its rest
        # is here (reads go to the server meanwhile, which knows).
        return (
            now - self._pong_at <= LIVE_WINDOW
            and self._pongs >= self._barrier
            and not self._reader.has_data()
        )

    def _ssl_pending(self) -> bool:
        """Bytes TLS has decrypted and buffered, which ``poll`` does not see."""
        return self._tls and bool(self._sock.pending())

    def _drain(self, now: float) -> None:
        """Read what the listener's socket holds, without waiting, and apply every whole
        message in it. A message cut across reads (a burst of changes larger than the socket's
        buffer arrives in parts) waits in the parser for its rest, and until then the cache
        serves nothing (:meth:`_serving`).

        The socket is read here, not through redis-py's ``read_response``: that cost more
        than the rest of a cached read, once per change anywhere under the prefix, and it
        waited for the rest of a cut message, holding the lock, for up to the socket's
        timeout.
        """
        sock, reader = self._sock, self._reader
        read = 0
        try:
            while True:
                try:
                    data = sock.recv(CHUNK)
                except _NOTHING_YET:
                    break
                if not data:
                    raise ConnectionError("the server closed it")
                reader.feed(data)
                read += len(data)
                # A plain socket gave everything it had unless it filled the chunk; TLS
                # hands out one record at a time, so it is read until it has nothing.
                if len(data) < CHUNK and not self._tls:
                    break
            while (message := reader.gets()) is not False:
                if isinstance(message, Exception):  # an error reply
                    raise message
                self._apply(message, now)
        except (hiredis.HiredisError, redis.RedisError, OSError, ValueError, TypeError) as exc:
            self._break(now, f"reading it failed: {exc}")
            return
        if read >= BEHIND_AT:
            # So much came at once that the socket's buffer may have filled, and the server
            # may hold more messages for it, of changes already acknowledged. A PING sent
            # now is answered after all of them: nothing is served until its answer is in.
            self._barrier = self._pings + 1
            self._ping(now)

    def _apply(self, message: Any, now: float) -> None:
        kind = message[0] if isinstance(message, list) and message else None
        if kind == b"message":
            names = message[2]
            if names is None:  # FLUSHDB, FLUSHALL: every key may have changed
                self._flush()
                return
            for raw in names:
                name = raw.decode("utf-8", "surrogateescape")
                self._drop(name)
                self._pending.pop(name, None)
            self.stats["invalidated"] += len(names)
        elif kind == b"pong":
            self._pongs += 1
            self._pong_at = now
            if self._pongs == self._pings:
                self._ping_due = now + PING_EVERY

    def _ping(self, now: float) -> None:
        try:
            sent = self._sock.send(_PING)
        except OSError as exc:
            self._break(now, f"sending it a PING failed: {exc}")
            return
        if sent != len(_PING):  # a send buffer full with 14 bytes' room: it is not read
            self._break(now, "sending it a PING failed: its send buffer is full")
            return
        self._pings += 1
        self._ping_sent = now

    def _break(self, now: float, reason: str) -> None:
        """The listener is lost: empty the cache and void every fill, close it, and let the
        next read start a new one."""
        logger.warning(
            "redis client cache for prefix %r: listener lost (%s); reads go to the server "
            "until it is back",
            self._prefix,
            reason,
        )
        self.stats["breaks"] += 1
        self._flush()
        listener = self._drop_listener()
        self._next_try = now  # at once: a killed connection comes back in one round trip
        with contextlib.suppress(redis.RedisError, OSError):
            listener.disconnect()

    def _drop_listener(self) -> Any:
        """Take the listener out of service (it serves no more hits) and return it to close."""
        listener, self._listener, self._poll = self._listener, None, _never
        self._sock = self._reader = None
        self.listener_id = 0
        return listener

    def _start_connect(self, now: float) -> None:
        if self._connecting or self._closed or now < self._next_try:
            return
        self._connecting = True
        self._next_try = now + RETRY_EVERY
        thread = threading.Thread(
            target=self._connect, name="sessionkit-redis-cache-listener", daemon=True
        )
        thread.start()

    # -- the listener's own thread -----------------------------------------------------------

    def _connect(self) -> None:
        """Connect, track the prefix and subscribe (three commands, one round trip), then put
        the listener in place. Runs in a thread of its own; a failure is retried by a later
        read, :data:`RETRY_EVERY` seconds on."""
        listener = None
        try:
            listener = self._make_listener()
            listener.connect()  # redis-py's handshake (AUTH, SELECT, ...): all its replies read
            # From here the socket is read only by this cache's own parser, which keeps any
            # message that comes in behind the subscription's reply for the first drain.
            sock, reader = listener._sock, hiredis.Reader()
            listener.send_command("CLIENT", "ID")
            client_id = int(_reply(sock, reader))
            tracking: tuple[Any, ...] = ("CLIENT", "TRACKING", "ON", "REDIRECT", client_id)
            tracking += ("BCAST", "PREFIX", self._prefix)
            listener.send_packed_command(listener.pack_commands((tracking, ("SUBSCRIBE", CHANNEL))))
            _reply(sock, reader)  # OK, or an error reply (raised)
            _reply(sock, reader)  # [subscribe, channel, 1]
            sock.setblocking(False)  # reads drain it without waiting (see _drain)
        except (redis.RedisError, hiredis.HiredisError, OSError, ValueError) as exc:
            logger.warning(
                "redis client cache for prefix %r: cannot subscribe a listener (%s); reads "
                "go to the server",
                self._prefix,
                exc,
            )
            with self._lock:
                self._connecting = False
            if listener is not None:
                listener.disconnect()
            return
        with self._lock:
            self._connecting = False
            if self._closed or listener.pid != os.getpid():  # closed, or forked, meanwhile
                listener.disconnect()
                return
            self._flush()  # nothing was filled without a listener; make sure of it
            self._listener, self._poll = listener, _poller(sock.fileno())
            self._sock, self._reader, self._tls = sock, reader, isinstance(sock, ssl.SSLSocket)
            self.listener_id = client_id
            now = time.monotonic()
            self._pong_at = now
            self._pings = self._pongs = self._barrier = 0
            self._ping_due = now + PING_EVERY

    # -- ends --------------------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe (close the listener) and empty the cache; it serves nothing after."""
        with self._lock:
            self._closed = True
            self._flush()
            listener = self._drop_listener()
        if listener is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                listener.disconnect()

    def forget(self) -> None:
        """In a forked child: drop the parent's listener without touching its socket's
        connection (closing only the child's descriptor), and every entry."""
        self._lock = threading.Lock()  # a lock held at fork stays held in the child
        listener = self._drop_listener()
        self._flush()
        self._connecting = False
        self._next_try = 0.0
        if listener is not None:
            listener.disconnect()  # redis-py shuts the socket down only in its own process
