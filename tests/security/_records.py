"""What a storage holds, seen from outside the store, for the security tests.

``stored_records(storage, request)`` lists every ``(key, value)`` of one test storage, the way an
operator (or an attacker holding a dump) would see it:

* memory and SQLite through their own ``scan()`` (``sessionkit.ScannableStorage``);
* Redis straight from the server: every key under the storage's prefix, by ``SCAN`` on a
  separate connection (expired keys are already gone there: Redis expires on its own clock);
  on a Redis Cluster every primary is scanned, behind Sentinel the primary they name
  (``tests._backends.raw_redis``);
* MongoDB straight from the server: every document of the storage's collection, expired ones
  included (the TTL sweeper runs on real time, far behind the tests' records).

Redis and Mongo are read raw on purpose: the proof must not depend on the plugin under test
reporting on itself. ``plant`` writes a raw payload under a session's storage key, and
``envelope`` builds a record by hand, the way a tampered or legacy storage would hold one.

``handler_client`` mounts one ``handler(session, query) -> body`` under whichever middleware the
``make_client`` fixture stands for, for tests whose app must do more than ``tests/web``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sessionkit import ScannableStorage, Session, Storage, Store
from tests.web._support import Client, MakeClient, asgi_client, wsgi_client

__all__ = [
    "Handler",
    "envelope",
    "handler_client",
    "plant",
    "raw_storage",
    "stored_keys",
    "stored_records",
]


def raw_storage(storage: Any) -> Storage:
    """The real storage under a test wrapper (``CountingStorage.inner``), else ``storage``."""
    inner: Storage = getattr(storage, "inner", storage)
    return inner


def _redis_records(inner: Any, request: pytest.FixtureRequest) -> list[tuple[str, bytes]]:
    from tests._backends import backend_of, raw_redis

    prefix: str = inner.prefix
    pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"
    out: list[tuple[str, bytes]] = []
    with raw_redis(request, backend_of(request)) as client:
        for name in client.scan_iter(match=pattern, count=500):
            key = name.decode()
            assert key.startswith(prefix), key
            value = client.get(name)
            if value is not None:
                out.append((key[len(prefix) :], bytes(value)))
    return out


def _mongo_records(inner: Any, request: pytest.FixtureRequest) -> list[tuple[str, bytes]]:
    import pymongo

    url: str = request.getfixturevalue("mongo_url")
    client: Any = pymongo.MongoClient(url)
    try:
        docs = client[inner.database][inner.collection].find({})
        return [(str(doc["_id"]), bytes(doc["v"])) for doc in docs]
    finally:
        client.close()


def stored_records(storage: Any, request: pytest.FixtureRequest) -> list[tuple[str, bytes]]:
    """Every ``(key, value)`` the storage holds in its namespace, keys without the namespace."""
    inner = raw_storage(storage)
    kind = type(inner).__name__
    if kind == "RedisStorage":
        return _redis_records(inner, request)
    if kind == "MongoStorage":
        return _mongo_records(inner, request)
    if isinstance(inner, ScannableStorage):
        return list(inner.scan())
    raise TypeError(f"cannot list the records of {inner!r}")


def stored_keys(storage: Any, request: pytest.FixtureRequest) -> list[str]:
    """Every key the storage holds in its namespace (without the namespace), sorted."""
    return sorted(key for key, _ in stored_records(storage, request))


def envelope(
    data: dict[str, Any] | None = None,
    *,
    created: float,
    saved: float,
    lifetime: float | None = None,
    version: Any = 1,
) -> bytes:
    """A stored record written by hand: the versioned envelope of ``sessionkit._envelope``."""
    env = {"v": version, "c": created, "t": saved, "l": lifetime, "d": data or {}}
    return json.dumps(env, separators=(",", ":")).encode()


def plant(
    store: Store, session_id: str, payload: bytes, ttl: timedelta | None = timedelta(days=30)
) -> str:
    """Write ``payload`` raw under ``session_id``'s storage key (bypassing the store and any
    call counting), with a backend TTL long enough to outlive the test; return that key."""
    key = store.storage_key(session_id)
    raw_storage(store.storage).set(key, payload, ttl)
    return key


Handler = Callable[[Session, dict[str, str]], str]


def handler_client(make_client: MakeClient, store: Store, handler: Handler) -> Client:
    """``handler(session, query) -> body`` mounted under the middleware ``make_client`` uses."""
    if make_client is asgi_client:

        async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            query = dict(parse_qsl(scope["query_string"].decode()))
            body = handler(scope["session"], query)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body.encode()})

        app: Callable[..., Awaitable[None]] = asgi_app
        return asgi_client(store, app)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        body = handler(environ["sessionkit.session"], query)
        start_response("200 OK", [("content-type", "text/plain")])
        return [body.encode()]

    return wsgi_client(store, wsgi_app)
