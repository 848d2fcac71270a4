"""The floor: a session's round trips made by the handler itself through the raw driver.

No session library, no envelope, no expiry of its own, no ``Vary``: a cookie ``sid`` carrying
a random token, a JSON record ``{"user": ..., "n": ...}`` under that token, and the storage
commands a server-side session needs, each one statement or command:

=========  ==========================================  ==========================================
route      Redis                                       PostgreSQL / MySQL
=========  ==========================================  ==========================================
``read``   ``GET``                                     ``SELECT value WHERE key AND <live>``
``write``  ``GET``, ``SET … EX … XX``                  the ``SELECT``, ``UPDATE … WHERE key AND <live>``
``login``  ``SET … EX`` of a new token                 ``INSERT`` of a new token
=========  ==========================================  ==========================================

which are the round trips sessionkit makes for the same requests (its ``replace_if`` compares
the stored bytes as well), on the statements of sessionkit's SQL plugins (expiry on the server's
clock). A request takes a connection from a list of idle ones (a new one when the list is
empty and fewer than sessionkit's default pool size are open, else it waits for one) and puts
it back: a pool with no other bookkeeping. No session layer built on these drivers makes fewer
round trips or less work per request, so this is the lowest a request can cost there.

On ``memory``, the same Redis commands run on a dictionary in the worker (:class:`DictStore`):
a record and its expiry per token, no cap, no purge, no lock (one event loop, or the GIL's
atomic dictionary operations). This is the least any server-side session kept in memory can
do per request: find the record by the cookie's token, check its expiry, decode it, and on a
write encode and store it.

``LOAD_DUTIES=1`` (``compare.py``'s row "floor (a dict), with the spec's duties"): the same floor
doing, by hand and no more, what sessionkit's spec (``security.md`` in the project's brief) and
Fiber's ``Save`` ask of any session library: a token outside the id alphabet or length never
reaches the store (security 3); every response of a route that reads a session carries
``Vary: Cookie`` (9); the record is kept in an envelope of its times, created, saved and its
own lifetime, and the server refuses a record its times say expired (10 to 12); a save is at
most 64 KiB (17); the memory store purges expired entries a few at a time, without a scan
(18); a save sends the cookie again, with ``Max-Age`` and ``Expires`` from now (Fiber's
``Save`` sets the cookie; starsessions sends it on every response), its date formatted once a
second. Not done: sessionkit's compare-and-swap (the spec asks last-writer-wins, and
sessionkit merges parallel saves instead), typed values, the checks that a stored envelope is
well formed, and the records decoded once. It answers what the least of a library held to
that spec costs, where the plain floor answers what a session costs.

Configured by the environment of the app module: ``LOAD_BACKEND`` (``memory``, ``redis``,
``postgres``, ``mysql``), ``LOAD_URL`` (the server, e.g. ``redis://127.0.0.1:6379/15``,
``postgresql://postgres@127.0.0.1:5432/test``, ``mysql://root@127.0.0.1:3306/db``) and
``LOAD_NS`` (the key prefix, or the table, made beforehand by ``compare.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

TTL = 86400
COOKIE = "sid"
#: Connections at most, per process (per event loop): sessionkit's defaults for each backend
#: (Redis ``max_connections``, PostgreSQL ``pool_max_size``, MySQL ``max_connections``).
POOL_MAX = {"memory": 1, "redis": 64, "redis-cached": 64, "postgres": 10, "mysql": 16}
#: ``LOAD_TIMEOUT=3``: a Redis floor whose connections bound each call as sessionkit's do by
#: default (``socket_timeout`` 3 s, ``socket_connect_timeout`` 2 s); unset, redis-py's default:
#: no bound at all, and none of the cost of one.
TIMEOUT = float(os.environ.get("LOAD_TIMEOUT") or 0) or None
CONNECT_TIMEOUT = 2.0 if TIMEOUT else None

PG_LIVE = "(expires_at IS NULL OR expires_at > now())"
PG_EXPIRES = f"now() + interval '{TTL} seconds'"
MY_LIVE = "(`expires_at` IS NULL OR `expires_at` > UTC_TIMESTAMP(6))"
MY_EXPIRES = f"UTC_TIMESTAMP(6) + INTERVAL {TTL} SECOND"


#: The backends spoken to in Redis's commands (the memory floor runs them on a dictionary),
#: and those that are Redis servers.
KEYED = ("memory", "redis", "redis-cached")
REDIS = ("redis", "redis-cached")
#: ``LOAD_DUTIES=1``: the floor with the spec's duties (see the module's docstring).
DUTIES = os.environ.get("LOAD_DUTIES") == "1"
#: A token of :func:`new_token`'s alphabet and length, as sessionkit checks its ids.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}").fullmatch
#: The headers of a response that read a session (``LOAD_DUTIES``).
_VARY = {"vary": "Cookie"}
#: A save's cookie after its token, and the second it was formatted in (see :func:`answer`).
_saved_tail: tuple[int, str] = (-1, "")
#: What a route of the floor answers: the user, the count, and the headers (``None``: none).
Answer = tuple[str, int, "dict[str, str] | None"]


#: Every cookie's attributes after its lifetime.
_ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax"


def set_cookie(token: str) -> str:
    return f"{COOKIE}={token}; Max-Age={TTL}; {_ATTRIBUTES}"


def usable(token: str) -> bool:
    """Whether a cookie's ``token`` goes to the store: any, or with the duties only one of the
    ids' alphabet and length."""
    return not DUTIES or _TOKEN(token) is not None


def answer(user: str, n: int, token: str | None = None) -> Answer:
    """A route's answer: with the duties, ``Vary`` on every one, and the cookie again on a
    save (``token``: the session saved)."""
    if not DUTIES:
        return user, n, None
    if token is None:
        return user, n, _VARY
    global _saved_tail
    now = int(time.time())
    second, tail = _saved_tail
    if second != now:
        expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + TTL))
        tail = f"; Max-Age={TTL}; Expires={expires}; {_ATTRIBUTES}"
        _saved_tail = (now, tail)
    return user, n, {"vary": "Cookie", "set-cookie": f"{COOKIE}={token}{tail}"}


def new_token() -> str:
    return secrets.token_urlsafe(32)


#: ``LOAD_DUTIES``: the largest record stored, as sessionkit's default ``max_size``.
MAX_SIZE = 65536


class _Held(dict[str, Any]):
    """A record's data, with the time its session was created (``LOAD_DUTIES``: read from
    its envelope, and written back into it by the next save)."""

    created: float


def encode(record: dict[str, Any]) -> bytes:
    """The record's bytes; with the duties, in an envelope of its times (created, saved, and
    a lifetime of its own: ``null``, the default) and at most :data:`MAX_SIZE`."""
    if not DUTIES:
        return json.dumps(record).encode()
    now = time.time()
    created = getattr(record, "created", now)
    raw = f'{{"c":{created!r},"t":{now!r},"l":null,"d":{json.dumps(record)}}}'.encode()
    if len(raw) > MAX_SIZE:
        raise ValueError(f"session of {len(raw)} bytes, above {MAX_SIZE}")
    return raw


def decode(raw: bytes | None) -> dict[str, Any] | None:
    """The record's data; with the duties, none once its envelope's times say it expired
    (the server's own check, whatever the storage's TTL did)."""
    if raw is None:
        return None
    if not DUTIES:
        return json.loads(raw)
    envelope = json.loads(raw)
    lifetime = TTL if envelope["l"] is None else envelope["l"]
    if time.time() >= envelope["t"] + lifetime:
        return None
    held = _Held(envelope["d"])
    held.created = envelope["c"]
    return held


class DictStore:
    """The memory floor's storage: Redis's ``GET`` and ``SET key value EX ttl [XX]`` on a
    dictionary, each record kept with its deadline on the monotonic clock.

    With ``LOAD_DUTIES``, what security.md 18 asks of a memory storage as well: expired
    entries purged a few at a time, without a scan, from a lane of (deadline, key) in the
    order written (one TTL: deadlines in order)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[float, bytes]] = {}
        self.lane: deque[tuple[float, str]] = deque()

    def command(self, name: str, key: str, *args: Any) -> bytes | bool | None:
        now = time.monotonic()
        entry = self.data.get(key)
        live = entry is not None and entry[0] > now
        if name == "GET":
            return entry[1] if entry is not None and live else None
        value, _, ttl, *only_live = args  # SET key value EX ttl [XX]
        if only_live and not live:
            return None
        deadline = now + ttl
        self.data[key] = (deadline, value)
        if DUTIES:
            lane = self.lane
            lane.append((deadline, key))
            for _ in range(16):
                if not lane or lane[0][0] > now:
                    break
                due, old = lane.popleft()
                stored = self.data.get(old)
                if stored is not None and stored[0] == due:  # not written again since
                    del self.data[old]
        return True


def sql_statements(backend: str, table: str) -> dict[str, str]:
    """The floor's statements (psycopg and PyMySQL both take ``%s`` placeholders)."""
    if backend == "postgres":
        return {
            "get": f"SELECT value FROM {table} WHERE key = %s AND {PG_LIVE}",
            "update": (
                f"UPDATE {table} SET value = %s, expires_at = {PG_EXPIRES} "
                f"WHERE key = %s AND {PG_LIVE}"
            ),
            "insert": f"INSERT INTO {table} (key, value, expires_at) VALUES (%s, %s, {PG_EXPIRES})",
        }
    # MySQL's take their values as hexadecimal literals, as sessionkit-mysql writes them
    # (aiomysql 0.3 cannot escape bytes with PyMySQL 1.2): ``mysql_sql`` fills them in.
    return {
        "get": f"SELECT `v` FROM `{table}` WHERE `k` = {{}} AND {MY_LIVE}",
        "update": (
            f"UPDATE `{table}` SET `v` = {{}}, `expires_at` = {MY_EXPIRES} "
            f"WHERE `k` = {{}} AND {MY_LIVE}"
        ),
        "insert": f"INSERT INTO `{table}` (`k`, `v`, `expires_at`) VALUES ({{}}, {{}}, {MY_EXPIRES})",
    }


def mysql_sql(template: str, params: tuple[bytes, ...]) -> str:
    return template.format(*(f"X'{p.hex()}'" for p in params))


def create_table_sql(backend: str, table: str) -> str:
    if backend == "postgres":
        return (
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(key bytea PRIMARY KEY, value bytea NOT NULL, expires_at timestamptz)"
        )
    return (
        f"CREATE TABLE IF NOT EXISTS `{table}` (`k` VARBINARY(255) NOT NULL PRIMARY KEY, "
        "`v` LONGBLOB NOT NULL, `expires_at` DATETIME(6) NULL) ENGINE=InnoDB"
    )


def _mysql_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
        "autocommit": True,
        "charset": "utf8mb4",
    } | {"db": parts.path.lstrip("/")}


# -- the client-side cache (``LOAD_BACKEND=redis-cached``) ------------------------------------------


class TrackedCache:
    """What a client-side cache of Redis must do to be right, by hand: sessionkit-redis's
    ``client_cache`` duties, with nothing else of its.

    One listener connection of its own turns on broadcast tracking of the prefix, redirected
    to itself, and subscribes to the invalidations (``CLIENT TRACKING ON REDIRECT <id> BCAST
    PREFIX <ns>``, ``SUBSCRIBE __redis__:invalidate``). Before every lookup its socket is
    polled without waiting and every message in it applied, so a change acknowledged before
    the read began is never missed. A miss reads ``GET`` and ``PTTL`` in one round trip and
    keeps the value, unless a message about the key came while the read was out (a ticket);
    an entry is not served past the TTL read with it. A write forgets its key once its reply
    is in. A ``PING`` every 0.25 s while reads come, and nothing is served while the last
    answer is older than a second (a listener cut off without a word). No reconnection, no
    size bound, no TLS: a benchmark's run never needs them.

    Its calls take one lock, as sessionkit's cache's do: gunicorn's threads share it under
    Flask; under an event loop it is never contended.
    """

    def __init__(self, url: str, prefix: str) -> None:
        import select
        import socket

        import hiredis

        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
        reader = hiredis.Reader()

        def ask(*command: str) -> Any:
            sock.sendall(hiredis.pack_command(command))
            while (reply := reader.gets()) is False:
                reader.feed(sock.recv(65536))
            return reply

        db = parts.path.lstrip("/") or "0"
        ask("SELECT", db)
        listener_id = ask("CLIENT", "ID")
        ask("CLIENT", "TRACKING", "ON", "REDIRECT", str(listener_id), "BCAST", "PREFIX", prefix)
        ask("SUBSCRIBE", "__redis__:invalidate")
        sock.setblocking(False)
        self.sock, self.reader = sock, reader
        self.ping = hiredis.pack_command(("PING",))
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        self.poll = poll.poll
        self.entries: dict[str, tuple[bytes, float]] = {}
        self.tickets: dict[str, int] = {}
        self.next_ticket = 0
        self.lock = threading.Lock()
        now = time.monotonic()
        self.pong_at = self.ping_at = now  # subscribed just now: as good as a PONG

    def lookup(self, key: str, now: float) -> tuple[bytes | None, int]:
        """``(the cached value, 0)`` on a hit; on a miss ``(None, the ticket to fill with)``."""
        with self.lock:
            found = self._get(key, now)
            if found is not None:
                return found, 0
            self.next_ticket += 1
            self.tickets[key] = self.next_ticket
            return None, self.next_ticket

    def _get(self, key: str, now: float) -> bytes | None:
        if self.poll(0):
            self._drain(now)
        if now - self.ping_at >= 0.25 and self.ping_at <= self.pong_at:
            self.sock.send(self.ping)
            self.ping_at = now
        if now - self.pong_at > 1.0 or self.reader.has_data():
            return None
        entry = self.entries.get(key)
        if entry is None or now >= entry[1]:
            return None
        return entry[0]

    def _drain(self, now: float) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            if not data:
                raise ConnectionError("the listener was closed")
            self.reader.feed(data)
            if len(data) < 65536:
                break
        while (message := self.reader.gets()) is not False:
            if message[0] == b"message":
                if message[2] is None:  # FLUSHDB, FLUSHALL
                    self.entries.clear()
                    self.tickets.clear()
                    continue
                for name in message[2]:
                    key = name.decode()
                    self.entries.pop(key, None)
                    self.tickets.pop(key, None)
            elif message[0] == b"pong":
                self.pong_at = now

    def fill(self, key: str, ticket: int, sent: float, value: bytes | None, pttl: int) -> None:
        with self.lock:
            if self.tickets.get(key) != ticket:
                return
            del self.tickets[key]
            if value is not None and pttl != -2:
                self.entries[key] = (value, float("inf") if pttl < 0 else sent + pttl / 1000)

    def forget(self, key: str) -> None:
        with self.lock:
            self.entries.pop(key, None)
            self.tickets.pop(key, None)


# -- async (Starlette, Litestar) -----------------------------------------------------------------


class AsyncFloor:
    """``read(token)``, ``write(token)``, ``login(user)`` on one storage, for an event loop."""

    def __init__(self, backend: str, url: str, namespace: str) -> None:
        self.backend = backend
        self.url = url
        self.ns = namespace
        self.idle: list[Any] = []
        self.open = 0
        self.max = POOL_MAX[backend]
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.keyed = backend in KEYED
        self.dict = DictStore()
        self.cache = TrackedCache(url, namespace) if backend == "redis-cached" else None
        if not self.keyed:
            self.sql = sql_statements(backend, namespace)

    async def _take(self) -> Any:
        if self.idle:
            return self.idle.pop()
        if self.open >= self.max:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            conn = await waiter
            if conn is not None:
                return conn
        self.open += 1  # a slot of its own, or one a broken connection left (None)
        try:
            return await self._connect()
        except BaseException:
            self._give(None)
            raise

    def _give(self, conn: Any) -> None:
        """Hand ``conn`` to the next waiter, or keep it idle; ``None``: a slot freed."""
        if conn is None:
            self.open -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # given None, the waiter connects in the freed slot
                waiter.set_result(conn)
                return
        if conn is not None:
            self.idle.append(conn)

    async def _connect(self) -> Any:
        if self.backend in REDIS:
            import redis.asyncio as aredis

            parts = urlsplit(self.url)
            conn = aredis.Connection(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 6379,
                db=int(parts.path.lstrip("/") or 0),
                socket_timeout=TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
            )
            await conn.connect()
            return conn
        if self.backend == "postgres":
            import psycopg

            return await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        import aiomysql

        args = _mysql_args(self.url)
        return await aiomysql.connect(**args)

    async def _run(self, op: str, *params: Any) -> Any:
        """One command or statement on an idle connection; the value read, if any."""
        if self.backend == "memory":
            return self.dict.command(*params)
        conn = await self._take()
        try:
            if op == "get+pttl":  # a cache's miss: the value and its TTL in one round trip
                await conn.send_packed_command(
                    conn.pack_commands([("GET", params[0]), ("PTTL", params[0])])
                )
                result = (await conn.read_response(), await conn.read_response())
            elif self.keyed:
                await conn.send_command(*params)
                result = await conn.read_response()
            elif self.backend == "postgres":
                cursor = await conn.execute(self.sql[op], params, binary=True)
                result = (await cursor.fetchone()) if op == "get" else None
                result = None if result is None else bytes(result[0])
            else:
                async with conn.cursor() as cursor:
                    await cursor.execute(mysql_sql(self.sql[op], params))
                    row = (await cursor.fetchone()) if op == "get" else None
                result = None if row is None else row[0]
        except BaseException:
            await _aclose(conn)
            self._give(None)
            raise
        self._give(conn)
        return result

    async def _get(self, token: str) -> dict[str, Any] | None:
        if self.cache is not None:
            return decode(await self._cached(self.ns + token))
        if self.keyed:
            return decode(await self._run("get", "GET", self.ns + token))
        return decode(await self._run("get", token.encode()))

    async def _cached(self, key: str) -> bytes | None:
        """``GET key`` through the client-side cache: no round trip on a hit."""
        cache = self.cache
        assert cache is not None
        now = time.monotonic()
        found, ticket = cache.lookup(key, now)
        if found is not None:
            return found
        value, pttl = await self._run("get+pttl", key)
        cache.fill(key, ticket, now, value, pttl)
        return value

    async def read(self, token: str | None) -> Answer:
        record = await self._get(token) if token and usable(token) else None
        return answer("-", 0) if record is None else answer(record["user"], record["n"])

    async def write(self, token: str | None) -> Answer:
        record = await self._get(token) if token and usable(token) else None
        if record is None or token is None:
            return answer("-", 0)
        record["n"] += 1
        data = encode(record)
        if self.keyed:
            await self._run("set", "SET", self.ns + token, data, "EX", TTL, "XX")
            if self.cache is not None:  # the reply is in: no read of this process finds it
                self.cache.forget(self.ns + token)
        else:
            await self._run("update", data, token.encode())
        return answer(record["user"], record["n"], token)

    async def login(self, user: str) -> str:
        """A new session for ``user``; its token."""
        token = new_token()
        data = encode({"user": user, "n": 0})
        if self.keyed:
            await self._run("set", "SET", self.ns + token, data, "EX", TTL)
        else:
            await self._run("insert", token.encode(), data)
        return token


def _closer(conn: Any) -> Any:
    """How ``conn`` is closed: redis-py's connections ``disconnect``, the SQL drivers' close."""
    return getattr(conn, "disconnect", None) or conn.close


async def _aclose(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection is dropped either way
        result = _closer(conn)()
        if hasattr(result, "__await__"):
            await result


# -- sync (Flask under gunicorn's threads) -------------------------------------------------------


class SyncFloor:
    """The same, for WSGI's threads."""

    def __init__(self, backend: str, url: str, namespace: str) -> None:
        self.backend = backend
        self.url = url
        self.ns = namespace
        self.idle: list[Any] = []  # list.pop and list.append are atomic
        self.slots = threading.BoundedSemaphore(POOL_MAX[backend])
        self.keyed = backend in KEYED
        self.dict = DictStore()
        self.cache = TrackedCache(url, namespace) if backend == "redis-cached" else None
        if not self.keyed:
            self.sql = sql_statements(backend, namespace)

    def _take(self) -> Any:
        self.slots.acquire()
        try:
            return self.idle.pop()
        except IndexError:
            pass
        try:
            return self._connect()
        except BaseException:
            self.slots.release()
            raise

    def _connect(self) -> Any:
        if self.backend in REDIS:
            import redis

            parts = urlsplit(self.url)
            conn = redis.Connection(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 6379,
                db=int(parts.path.lstrip("/") or 0),
                socket_timeout=TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
            )
            conn.connect()
        elif self.backend == "postgres":
            import psycopg

            conn = psycopg.connect(self.url, autocommit=True)
        else:
            import pymysql

            conn = pymysql.connect(**_mysql_args(self.url))
        return conn

    def _run(self, op: str, *params: Any) -> Any:
        if self.backend == "memory":
            return self.dict.command(*params)
        conn = self._take()
        try:
            if op == "get+pttl":  # a cache's miss: the value and its TTL in one round trip
                conn.send_packed_command(
                    conn.pack_commands([("GET", params[0]), ("PTTL", params[0])])
                )
                result = (conn.read_response(), conn.read_response())
            elif self.keyed:
                conn.send_command(*params)
                result = conn.read_response()
            elif self.backend == "postgres":
                cursor = conn.execute(self.sql[op], params, binary=True)
                row = cursor.fetchone() if op == "get" else None
                result = None if row is None else bytes(row[0])
            else:
                with conn.cursor() as cursor:
                    cursor.execute(mysql_sql(self.sql[op], params))
                    row = cursor.fetchone() if op == "get" else None
                result = None if row is None else row[0]
        except BaseException:
            with contextlib.suppress(Exception):
                _closer(conn)()
            self.slots.release()
            raise
        self.idle.append(conn)
        self.slots.release()
        return result

    def _get(self, token: str) -> dict[str, Any] | None:
        if self.cache is not None:
            return decode(self._cached(self.ns + token))
        if self.keyed:
            return decode(self._run("get", "GET", self.ns + token))
        return decode(self._run("get", token.encode()))

    def _cached(self, key: str) -> bytes | None:
        """``GET key`` through the client-side cache: no round trip on a hit."""
        cache = self.cache
        assert cache is not None
        now = time.monotonic()
        found, ticket = cache.lookup(key, now)
        if found is not None:
            return found
        value, pttl = self._run("get+pttl", key)
        cache.fill(key, ticket, now, value, pttl)
        return value

    def read(self, token: str | None) -> Answer:
        record = self._get(token) if token and usable(token) else None
        return answer("-", 0) if record is None else answer(record["user"], record["n"])

    def write(self, token: str | None) -> Answer:
        record = self._get(token) if token and usable(token) else None
        if record is None or token is None:
            return answer("-", 0)
        record["n"] += 1
        data = encode(record)
        if self.keyed:
            self._run("set", "SET", self.ns + token, data, "EX", TTL, "XX")
            if self.cache is not None:  # the reply is in: no read of this process finds it
                self.cache.forget(self.ns + token)
        else:
            self._run("update", data, token.encode())
        return answer(record["user"], record["n"], token)

    def login(self, user: str) -> str:
        token = new_token()
        data = encode({"user": user, "n": 0})
        if self.keyed:
            self._run("set", "SET", self.ns + token, data, "EX", TTL)
        else:
            self._run("insert", token.encode(), data)
        return token
