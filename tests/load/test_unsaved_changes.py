"""A request that changes its session and fails before its response saves nothing, and leaves
nothing behind for the requests after it, through a real uvicorn worker and a gunicorn worker
whose 32 threads share one store.

Each read of an unchanged session is served from a record decoded once per process
(``sessionkit._decoded``): the session's values must be its own, or a change a failed request
made (and never saved) would show on the next request of the same session, in this worker
only, until the record changed. Many browsers log in, then each alternates failing requests
that change every value with reads that must find what was saved, all at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.load._harness import AppServer, _capped, gunicorn_server, uvicorn_server
from tests.load._http import Connection

COOKIE = "session_id"
BROWSERS = 20
ROUNDS = 25


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str, str], AppServer]]:
    started: list[AppServer] = []

    def start(kind: str, storage: str) -> AppServer:
        log, env = tmp_path / f"{kind}-{len(started)}.log", {"LOAD_STORAGE": storage}
        if kind == "uvicorn":
            server = uvicorn_server(log, env, app="tests.load.app_unsaved:asgi")
        else:
            server = gunicorn_server(log, env, app="tests.load.app_unsaved:wsgi")
        started.append(server)
        return server.start(timeout=60.0)

    yield start
    for server in started:
        server.stop()


async def _spoil(port: int, cookie: str) -> list[str]:
    """One failing request, on a connection of its own (the server closes it after the 500)."""
    conn = Connection(port)
    try:
        spoiled = await _capped(conn.get("/spoil", cookie))
    finally:
        conn.close()
    if spoiled.status != 500 or spoiled.set_cookies:
        return [f"/spoil: {spoiled.status} {spoiled.set_cookies}"]
    return []


async def _browser(port: int, name: str) -> list[str]:
    """One browser's run; returns what went wrong."""
    conn = Connection(port)
    wrong: list[str] = []
    try:
        login = await _capped(conn.get(f"/login?u={name}", None))
        sid = next(
            line.split(";")[0].partition("=")[2]
            for line in login.set_cookies
            if line.startswith(f"{COOKIE}=")
        )
        cookie = f"{COOKIE}={sid}"
        for _ in range(ROUNDS):
            wrong += await _spoil(port, cookie)
            read = await _capped(conn.get("/read", cookie))
            if read.status != 200 or read.body.decode() != f"{name} 1 None":
                wrong.append(f"/read: {read.status} {read.body.decode()!r}")
    finally:
        conn.close()
    return wrong


@pytest.mark.parametrize(
    ("kind", "backend"), [("uvicorn", "memory"), ("uvicorn", "redis"), ("gunicorn", "memory")]
)
async def test_a_failed_request_leaves_no_change_for_the_next(
    serve: Callable[[str, str], AppServer],
    storage_url: Callable[[str], str],
    kind: str,
    backend: str,
) -> None:
    server = serve(kind, storage_url(backend))
    results = await asyncio.gather(*(_browser(server.port, f"u{i}") for i in range(BROWSERS)))
    wrong = [problem for problems in results for problem in problems]
    assert wrong == [], wrong[:10]
