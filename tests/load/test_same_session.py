"""Issue 20: many requests of ONE session saving at once lose none of each other's changes.

20 clients share one session cookie and each sets its own key a few times, one request in
flight each, through a real uvicorn (Starlette) and gunicorn (Flask, gthread) server on SQLite
and Redis (``_same_session.py``). With the default ``Config(conflict="merge")``, every change
the server acknowledged with a 200 must still be there at the client's next request and at the
end; with ``conflict="overwrite"`` (last writer wins) most are lost on these servers.

``benchmarks/load/same_session.py`` runs the same scenario at length, on every backend, for the
figures of ``docs/performance.md``. No timing is asserted here: a loaded 2-core CI machine may
be slow, not wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.load._harness import AppServer
from tests.load._same_session import SameSession, run_same_session, same_session_server

CLIENTS = 20
REQUESTS = 5  # saves per client
#: Whole-run cap, far above what a run takes (well under a second here): a hang, not slowness.
SECONDS = 60.0

Serve = Callable[[str, str, str | None], AppServer]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(kind, storage, conflict)``: a started same-session server (``conflict=None``:
    the default configuration), stopped at the end."""
    started: list[AppServer] = []

    def start(kind: str, storage: str, conflict: str | None) -> AppServer:
        log = tmp_path / f"{kind}-{conflict or 'default'}-{len(started)}.log"
        server = same_session_server(kind, log, storage, conflict)
        started.append(server)
        return server.start(timeout=60.0)

    yield start
    for server in started:
        server.stop()


def _report(result: SameSession, server: AppServer) -> str:
    return f"{server.name}: {result.summary()}\nserver log:\n{server.tail(30)}"


#: Where requests of one session really interleave (memory and SQLite under uvicorn load and
#: save without yielding to the event loop: they never conflict there, and could not fail):
#: overwrite loses most changes on each of these (benchmarks/load/same_session.md).
SERVED = [("uvicorn", "redis"), ("gunicorn", "redis"), ("gunicorn", "sqlite")]


@pytest.mark.parametrize(("kind", "backend"), SERVED)
async def test_merge_loses_no_acknowledged_change(
    serve: Serve, storage_url: Callable[[str], str], kind: str, backend: str
) -> None:
    server = serve(kind, storage_url(backend), None)  # the default: conflict="merge"
    result = await run_same_session(server, CLIENTS, REQUESTS, seconds=SECONDS)
    print(_report(result, server))
    assert not result.problems, _report(result, server)
    assert result.saves == CLIENTS * REQUESTS, _report(result, server)
    # Only a 503 (the 5 s merge budget spent) may refuse a save; nothing else.
    assert set(result.statuses) <= {200, 503}, _report(result, server)
    assert result.acked > 0, _report(result, server)
    assert result.lost_seen == 0, _report(result, server)
    assert result.lost_final == 0, _report(result, server)
