"""Scenario 1: 50 clients, 80 % reads and 20 % writes, on 1 and 2 workers of uvicorn and gunicorn.

No fault: every request must answer 200, within the storage timeout + 1 s, every acknowledged
write must be read back by the client that made it, and nobody is logged out. The same runs on
starsessions and on the bare app (no session layer) give the comparison table of
``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.load._harness import AppServer, Plan, assert_held, run_load
from tests.load.conftest import FULL

SECONDS = 10.0 if FULL else 2.5
CLIENTS = 50

# (server, workers, backend). The memory backend lives in one process: one worker only.
CASES = [
    ("uvicorn", 1, "memory"),
    ("uvicorn", 1, "sqlite"),
    ("uvicorn", 1, "redis"),
    ("uvicorn", 1, "mongo"),
    ("uvicorn", 2, "sqlite"),
    ("uvicorn", 2, "redis"),
    ("uvicorn", 2, "mongo"),
    ("gunicorn", 1, "memory"),
    ("gunicorn", 1, "sqlite"),
    ("gunicorn", 1, "redis"),
    ("gunicorn", 1, "mongo"),
    ("gunicorn", 2, "sqlite"),
    ("gunicorn", 2, "redis"),
    ("gunicorn", 2, "mongo"),
    ("gunicorn-sync", 2, "redis"),  # gunicorn's default worker: no keep-alive, one at a time
    ("uvicorn", 1, "postgres"),
    ("uvicorn", 2, "postgres"),
    ("gunicorn", 2, "postgres"),
    ("uvicorn", 1, "mysql"),
    ("uvicorn", 2, "mysql"),
    ("gunicorn", 2, "mysql"),
]
SHORT = {
    ("uvicorn", 2, "sqlite"),
    ("gunicorn", 2, "redis"),
    ("uvicorn", 2, "postgres"),
    ("gunicorn", 2, "mysql"),
}


def _params() -> list[object]:
    return [
        pytest.param(*case, id=f"{case[0]}-{case[1]}w-{case[2]}")
        for case in CASES
        if FULL or case in SHORT
    ]


@pytest.mark.parametrize(("server", "workers", "backend"), _params())
async def test_steady_mix(
    launch: Callable[..., AppServer],
    storage_url: Callable[[str], str],
    record: Callable[..., None],
    server: str,
    workers: int,
    backend: str,
) -> None:
    if server == "gunicorn-sync":
        app = launch("gunicorn", storage_url(backend), workers, worker_class="sync", threads=1)
    else:
        app = launch(server, storage_url(backend), workers)
    outcome = await run_load(app, Plan(clients=CLIENTS, seconds=SECONDS))
    record(outcome, layer="sessionkit", server=app.name, backend=backend)
    assert_held(outcome, errors_allowed=False)


# -- the same runs on starsessions and on the bare app, for the table ---------------------------

PEERS = [
    ("starsessions", 1, "memory"),
    ("starsessions", 1, "redis"),
    ("starsessions", 2, "redis"),
    ("bare", 1, "memory"),
    ("bare", 2, "memory"),
]


@pytest.mark.skipif(not FULL, reason="comparison runs: SESSIONKIT_LOAD=full")
@pytest.mark.parametrize(
    ("layer", "workers", "backend"),
    [pytest.param(*p, id=f"{p[0]}-{p[1]}w-{p[2]}") for p in PEERS],
)
async def test_steady_mix_peers(
    launch: Callable[..., AppServer],
    storage_url: Callable[[str], str],
    record: Callable[..., None],
    layer: str,
    workers: int,
    backend: str,
) -> None:
    app = launch("uvicorn", storage_url(backend), workers, layer=layer)
    plan = Plan(clients=CLIENTS, seconds=SECONDS, cookie="session", check=layer != "bare")
    outcome = await run_load(app, plan)
    record(outcome, layer=layer, server=app.name, backend=backend)  # measured, not held
