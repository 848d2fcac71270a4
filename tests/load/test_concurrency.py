"""Scenario 2: 200 and 500 concurrent clients on one uvicorn worker, default settings.

Every client keeps one request in flight at all times, so the worker holds up to 500
concurrent session calls. Issue 14, item 1: redis-py's default pool refused the 101st
connection, and 72 % of requests answered 503. The rule here is absolute: zero errors, every
acknowledged write read back, nobody logged out, no response slower than the 5 s storage
timeout + 1 s. starsessions and the bare app run the same load for the table.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.load._harness import AppServer, Plan, assert_held, run_load
from tests.load.conftest import FULL

SECONDS = 10.0 if FULL else 4.0

CASES = [
    ("sessionkit", 200, "redis"),
    ("sessionkit", 500, "redis"),
    ("sessionkit", 500, "memory"),
    ("sessionkit", 500, "sqlite"),
    # SecantusDB, the Mongo test server, serves a few hundred operations a second here: 500
    # clients would queue past the 5 s timeout whatever the library did. A real mongod belongs
    # in this row; the test server is held to what it can serve.
    ("sessionkit", 100, "mongo"),
    ("starsessions", 500, "redis"),
    ("starsessions", 500, "memory"),
    ("bare", 500, "memory"),
]
SHORT = {("sessionkit", 500, "redis")}


# Its own latency is the promise here (one worker, hundreds of clients, a 2 s wait for a
# connection by default): nox's short run takes it alone, after the scenarios that run four
# at a time, whose CPU would otherwise be this worker's (seen: a 503 one run in three).
@pytest.mark.alone
@pytest.mark.parametrize(
    ("layer", "clients", "backend"),
    [
        pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2]}")
        for case in CASES
        if FULL or case in SHORT
    ],
)
async def test_concurrent_clients_on_one_worker(
    launch: Callable[..., AppServer],
    storage_url: Callable[[str], str],
    record: Callable[..., None],
    layer: str,
    clients: int,
    backend: str,
) -> None:
    app = launch("uvicorn", storage_url(backend), 1, layer=layer)
    cookie = "session_id" if layer == "sessionkit" else "session"
    plan = Plan(clients=clients, seconds=SECONDS, cookie=cookie, check=layer != "bare")
    outcome = await run_load(app, plan)
    record(outcome, layer=layer, server=app.name, backend=backend)
    if layer == "sessionkit":  # the peers are measured, not held to sessionkit's rules
        assert_held(outcome, errors_allowed=False)
