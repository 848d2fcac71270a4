"""Issue 14, item 6: an event loop per request must not leave a storage client behind.

A Flask route reads the session through the async API inside ``asyncio.run`` (what an async
view served over WSGI does): each request runs on a loop of its own, and the storage's
per-loop async client (``PerLoop``) must be closed and dropped when that loop ends. Seen from
outside: the gunicorn worker's open file descriptors and the Redis server's ``CLIENT LIST``
stay flat over the requests (today one Redis connection leaks per request).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
import redis

from tests._servers import ServerProcess, start_redis
from tests.load._harness import AppServer
from tests.load._http import Connection
from tests.load.conftest import FULL

REQUESTS = 1000 if FULL else 300
WARMUP = 30
#: Growth allowed over the run: a few connections a pool may open under the first load.
SLACK = 10


@pytest.fixture
def private_redis() -> Iterator[ServerProcess]:
    server = start_redis()
    yield server
    server.close()


def _fds(app: AppServer) -> int:
    total = 0
    for pid in app.pids():
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


async def _drive(app: AppServer, cookie: str, user: str, count: int) -> list[str]:
    problems = []
    conn = Connection(app.port)
    try:
        for _ in range(count):
            response = await conn.get("/aread", cookie)
            if response.status != 200 or not response.body.startswith(user.encode()):
                problems.append(f"{response.status} {response.body[:80]!r}")
    finally:
        conn.close()
    return problems


@pytest.mark.parametrize("backend", [pytest.param("redis", marks=pytest.mark.redis),
                                     pytest.param("mongo", marks=pytest.mark.mongo)])  # fmt: skip
async def test_a_loop_per_request_leaks_nothing(
    launch: Callable[..., AppServer],
    request: pytest.FixtureRequest,
    storage_url: Callable[[str], str],
    backend: str,
) -> None:
    admin: redis.Redis | None = None
    if backend == "redis":
        server: ServerProcess = request.getfixturevalue("private_redis")
        url = server.url + "?prefix=load:"
        admin = redis.Redis.from_url(server.url)
    elif not FULL:
        pytest.skip("the Mongo variant runs with SESSIONKIT_LOAD=full")
    else:
        url = storage_url(backend)
    # One worker, one thread: every request's loop is made and ended in the same process.
    app = launch("gunicorn", url, 1, shape="flask", threads=1)
    conn = Connection(app.port)
    login = await conn.get("/login?user=ada")
    conn.close()
    assert login.status == 200, login.body
    cookie = next(c for c in login.set_cookies if c.startswith("session_id=")).split(";")[0]

    problems = await _drive(app, cookie, "ada", WARMUP)
    fds_before = _fds(app)
    clients_before = len(admin.client_list()) if admin is not None else 0
    problems += await _drive(app, cookie, "ada", REQUESTS)
    fds_after = _fds(app)
    clients_after = len(admin.client_list()) if admin is not None else 0
    if admin is not None:
        admin.close()

    found = []
    if problems:
        found.append(f"{len(problems)} of {REQUESTS} /aread requests failed: {problems[:3]}")
    if fds_after - fds_before > SLACK:
        found.append(f"the worker's open fds went from {fds_before} to {fds_after}")
    if clients_after - clients_before > SLACK:
        found.append(f"Redis CLIENT LIST went from {clients_before} to {clients_after}")
    assert not found, f"{REQUESTS} requests, each on an event loop of its own:\n" + "\n".join(found)
