"""Issue 20 through real servers: "log out my other devices" (``Config(principal_key=...)``,
``destroy_all``) while the user's other devices keep saving.

Many browsers of one user log in at once (the index is written by compare-and-swap; under
gunicorn from two worker processes), a few of another user's too; then every browser keeps
saving its session while one of the first user's calls ``destroy_all(keep=<its own>)``. Every
other session of that user must end, none may come back through a save that was in flight,
nothing but the user's own sessions is touched, and no request fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.load._harness import AppServer, _capped, gunicorn_server, uvicorn_server
from tests.load._http import Connection

COOKIE = "session_id"
ADA, BOB = 16, 4
TOUCHES = 6

#: (server, workers, storage): two gunicorn workers race each other's index writes.
SERVED = [("uvicorn", 1, "redis"), ("gunicorn", 2, "sqlite")]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str, int, str], AppServer]]:
    started: list[AppServer] = []

    def start(kind: str, workers: int, storage: str) -> AppServer:
        env, log = {"LOAD_STORAGE": storage}, tmp_path / f"{kind}-{len(started)}.log"
        if kind == "uvicorn":
            server = uvicorn_server(log, env, workers, app="tests.load.app_principals:asgi")
        else:
            server = gunicorn_server(log, env, workers, app="tests.load.app_principals:wsgi")
        started.append(server)
        return server.start(timeout=60.0)

    yield start
    for server in started:
        server.stop()


async def _get(port: int, path: str, sid: str | None = None) -> tuple[int, str, str | None]:
    """``(status, body, the session cookie set)`` of one request on a connection of its own."""
    conn = Connection(port)
    try:
        response = await _capped(conn.get(path, None if sid is None else f"{COOKIE}={sid}"))
    finally:
        conn.close()
    cookie = None
    for line in response.set_cookies:
        name, _, value = line.split(";")[0].partition("=")
        if name.strip() == COOKIE and value:
            cookie = value.strip()
    return response.status, response.body.decode(), cookie


@pytest.mark.parametrize(("kind", "workers", "backend"), SERVED)
async def test_log_out_other_devices_while_they_save(
    serve: Callable[[str, int, str], AppServer],
    storage_url: Callable[[str], str],
    kind: str,
    workers: int,
    backend: str,
) -> None:
    server = serve(kind, workers, storage_url(backend))
    port = server.port
    logins = await asyncio.gather(
        *(_get(port, "/login?u=ada") for _ in range(ADA)),
        *(_get(port, "/login?u=bob") for _ in range(BOB)),
    )
    assert all(status == 200 and sid for status, _, sid in logins), logins
    sids = [sid for _, _, sid in logins]
    ada, bob = sids[:ADA], sids[ADA:]
    assert len(set(sids)) == ADA + BOB
    ended: asyncio.Future[tuple[int, str, str | None]] = asyncio.get_running_loop().create_future()
    after: list[tuple[int, str, str]] = []  # touches that began once destroy_all had answered

    async def browse(sid: str | None) -> None:
        for round_ in range(TOUCHES):
            began_after = ended.done()
            status, body, _ = await _get(port, "/touch", sid)
            assert status == 200, (status, body, server.tail(30))
            if began_after:
                after.append((status, body, str(sid)))
            if round_ == 1 and sid == ada[0] and not ended.done():
                ended.set_result(await _get(port, "/everywhere", sid))

    await asyncio.gather(*(browse(sid) for sid in sids))
    status, body, _ = ended.result()
    assert status == 200 and int(body) == ADA - 1, (status, body, server.tail(30))
    others = set(ada[1:])
    assert all(body == "anon" for _, body, sid in after if sid in others), after
    for sid in ada[1:]:  # no save in flight during destroy_all brought one back
        assert (await _get(port, "/who", sid))[1] == "anon"
    assert (await _get(port, "/who", ada[0]))[1] == "ada"
    for sid in bob:
        assert (await _get(port, "/who", sid))[1] == "bob"
