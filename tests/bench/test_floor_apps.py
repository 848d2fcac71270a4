"""The load benchmark's floors (``benchmarks/load/apps/_floor.py``) do a session's work right.

A floor row is the least a session layer can cost only if it does what the layer does: keeps
each session's counter, keeps two users apart, finds nothing without a cookie or with an
unknown one, and, with the spec's duties, sends ``Vary`` and the cookie again on a save. Its
client-side cache (``redis-cached``) must see a change made behind its back. These run the
floors in-process against the test Redis server, so a change to a floor that breaks them fails
here and not halfway through a 20-minute benchmark run.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from benchmarks.load.apps import _floor

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
CACHED = pytest.param("redis-cached", marks=pytest.mark.redis)


@pytest.fixture(params=[False, True], ids=["plain", "duties"])
def duties(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(_floor, "DUTIES", request.param)
    return bool(request.param)


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    ns = f"sessionkit-test:floor:{secrets.token_hex(4)}:"
    yield ns
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        for key in client.scan_iter(match=f"{ns}*"):
            client.delete(key)
        client.close()


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    return "" if backend == "memory" else str(request.getfixturevalue("redis_url"))


def _check_sessions(read: Any, write: Any, login: Any, duties: bool) -> str:
    """The load suite's session, through a floor's three calls; the first user's token."""
    token = login("ann")
    assert read(token)[:2] == ("ann", 0)
    for n in (1, 2, 3):
        user, got, headers = write(token)
        assert (user, got) == ("ann", n)
        if duties:
            assert headers["vary"] == "Cookie"
            assert headers["set-cookie"].startswith(f"{_floor.COOKIE}={token}; Max-Age=")
            assert "Expires=" in headers["set-cookie"]
        else:
            assert headers is None
    other = login("bob")
    assert read(other)[:2] == ("bob", 0)
    assert read(token)[:2] == ("ann", 3)
    assert read(None)[:2] == ("-", 0)
    assert read(_floor.new_token())[:2] == ("-", 0)  # well formed, unknown
    assert read("not an id")[:2] == ("-", 0)
    assert write(None)[:2] == ("-", 0)
    if duties:
        assert read(token)[2] == {"vary": "Cookie"}
    return str(token)


def _change_behind_its_back(url: str, key: str) -> None:
    client = redis.Redis.from_url(url)
    raw = client.get(key)
    assert raw is not None
    record = json.loads(raw)
    record.get("d", record)["n"] = 41  # in its envelope with the duties
    client.set(key, json.dumps(record).encode(), keepttl=True)
    client.close()


def _sees_the_change(read: Any, url: str, namespace: str, token: str) -> None:
    """A record changed behind the cache's back is read as changed within a second (the
    server's message about it is on its way meanwhile)."""
    assert read(token)[:2] == ("ann", 3)  # served from the cache now
    _change_behind_its_back(url, namespace + token)
    deadline = time.monotonic() + 1.0
    while read(token)[:2] != ("ann", 41):
        assert time.monotonic() < deadline, "the cache kept serving a changed record"
        time.sleep(0.005)


@pytest.mark.parametrize("backend", [*BACKENDS, CACHED])
def test_the_sync_floor_keeps_sessions(
    request: pytest.FixtureRequest, backend: str, duties: bool, namespace: str
) -> None:
    url = _url(request, backend)
    floor = _floor.SyncFloor(backend, url, namespace)
    try:
        token = _check_sessions(floor.read, floor.write, floor.login, duties)
        if floor.cache is not None:
            _sees_the_change(floor.read, url, namespace, token)
    finally:
        for conn in floor.idle:
            conn.disconnect()
        if floor.cache is not None:
            floor.cache.sock.close()


@pytest.mark.parametrize("backend", [*BACKENDS, CACHED])
def test_the_async_floor_keeps_sessions(
    request: pytest.FixtureRequest, backend: str, duties: bool, namespace: str
) -> None:
    url = _url(request, backend)
    loop = asyncio.new_event_loop()
    floor = _floor.AsyncFloor(backend, url, namespace)

    def awaited(call: Any) -> Any:
        return lambda *args: loop.run_until_complete(call(*args))

    read, write, login = awaited(floor.read), awaited(floor.write), awaited(floor.login)
    try:
        token = _check_sessions(read, write, login, duties)
        if floor.cache is not None:
            _sees_the_change(read, url, namespace, token)
    finally:
        for conn in floor.idle:
            loop.run_until_complete(conn.disconnect())
        if floor.cache is not None:
            floor.cache.sock.close()
        loop.close()


@pytest.mark.redis
def test_a_broken_redis_connection_is_disconnected(redis_url: str) -> None:
    """A floor drops a connection whose call failed; redis-py's connections have no
    ``close``, so dropping one must ``disconnect`` it, or its socket stays open."""
    loop = asyncio.new_event_loop()
    try:
        floor = _floor.AsyncFloor("redis", redis_url, "sessionkit-test:floor:")
        conn = loop.run_until_complete(floor._connect())
        assert conn.is_connected
        loop.run_until_complete(_floor._aclose(conn))
        assert not conn.is_connected
    finally:
        loop.close()
    sync = _floor.SyncFloor("redis", redis_url, "sessionkit-test:floor:")._connect()
    assert sync._sock is not None
    _floor._closer(sync)()
    assert sync._sock is None
