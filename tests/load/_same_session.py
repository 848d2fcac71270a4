"""The same-session scenario (issue 20): clients sharing ONE session cookie, each changing its own
key of it at the same time, through a real server. Used by ``test_same_session.py`` and by
``benchmarks/load/same_session.py``.

One request creates the session; then every client sends that cookie, ``/set?k=kNN&v=n`` for
n = 1, 2, ..., one request in flight each (``app_same_session``). A change is *acknowledged* by a
200. Two checks find every lost change:

* along the way: ``/set`` answers the value its key held when the request loaded the session,
  which must be the client's last acknowledged value (or one of its unacknowledged writes since,
  which may have landed): anything lower is an acknowledged change that another request's save
  wrote over (``lost_seen``);
* at the end: ``/dump`` reads the session once more, and each client's key must hold its last
  acknowledged value (or a later unacknowledged one) (``lost_final``, clients).

The servers are the load suite's (``uvicorn_server``, ``gunicorn_server``: the same settings,
process group and CPU accounting), serving ``app_same_session``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.load._harness import AppServer, _capped, gunicorn_server, uvicorn_server
from tests.load._http import Connection, HTTPError, Response

__all__ = ["SameSession", "run_same_session", "same_session_server"]

#: What serves this scenario, by server.
_APPS = {
    "uvicorn": "tests.load.app_same_session:asgi",
    "gunicorn": "tests.load.app_same_session:wsgi",
}
COOKIE = "session_id"
_NO_ANSWER = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HTTPError,
              TimeoutError)  # fmt: skip


def same_session_server(
    kind: str, log: Path, storage: str, conflict: str | None = None, workers: int = 1
) -> AppServer:
    """The load suite's ``kind`` server (``uvicorn`` or ``gunicorn`` gthread), not started,
    serving ``app_same_session`` on ``storage`` with ``Config(conflict=conflict)`` (``None``:
    the default configuration)."""
    env = {"LOAD_STORAGE": storage, "LOAD_CONFLICT": conflict or ""}
    if kind == "uvicorn":
        server = uvicorn_server(log, env, workers, app=_APPS[kind])
    elif kind == "gunicorn":
        server = gunicorn_server(log, env, workers, app=_APPS[kind])
    else:
        raise ValueError(f"{kind!r}: uvicorn or gunicorn")
    server.name = f"{server.name}-{conflict or 'default'}"
    return server


@dataclass
class SameSession:
    """What one run of the scenario saw."""

    clients: int
    requests: int  # per client
    shared: bool = True
    duration: float = 0.0
    server_cpu: float = 0.0
    #: Status of every ``/set`` answer (0: none at all) and how long each took.
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    #: Acknowledged changes another save wrote over, seen by the client's next request.
    lost_seen: int = 0
    #: Clients whose key does not hold their last acknowledged change at the end.
    lost_final: int = 0
    #: Everything else that must not happen (values never written, ids changed, no dump...).
    problems: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    @property
    def saves(self) -> int:
        return sum(self.statuses.values())

    @property
    def acked(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def refused(self) -> int:
        return self.statuses.get(503, 0)

    @property
    def rps(self) -> float:
        return self.saves / self.duration if self.duration else math.nan

    @property
    def cpu_per_save(self) -> float:
        """Server CPU seconds per ``/set`` answered."""
        return self.server_cpu / self.saves if self.saves else math.nan

    def latency(self, quantile: float) -> float:
        values = sorted(self.latencies)
        if not values:
            return math.nan
        return values[min(len(values) - 1, int(quantile * len(values)))]

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.clients} clients x {self.requests} saves on "
            f"{'one session' if self.shared else 'a session each'} in {self.duration:.2f}s "
            f"({self.rps:.0f}/s; {statuses}); lost: {self.lost_seen} acknowledged changes seen "
            f"overwritten, {self.lost_final} clients' final values; server CPU "
            f"{self.cpu_per_save * 1e6:.0f} µs/save; p99 {self.latency(0.99) * 1000:.0f} ms"
            + (f"; problems: {'; '.join(self.problems[:5])}" if self.problems else "")
            + (f"; e.g. {'; '.join(self.examples[:3])}" if self.examples else "")
        )


def _session_cookie(response: Response) -> str | None:
    for line in response.set_cookies:
        name, _, value = line.split(";")[0].partition("=")
        if name.strip() == COOKIE and value and "max-age=0" not in line.lower():
            return value.strip()
    return None


async def _create(port: int, result: SameSession) -> str | None:
    """A new stored session's id (``None``: the server would not make one)."""
    conn = Connection(port)
    try:
        for _ in range(5):
            try:
                response = await _capped(conn.get("/create"))
            except _NO_ANSWER as exc:
                conn.close()
                result.problems.append(f"/create: {type(exc).__name__} {exc}")
                await asyncio.sleep(0.2)
                continue
            sid = _session_cookie(response)
            if response.status == 200 and sid:
                return sid
            result.problems.append(f"/create → {response.status} {response.body[:60]!r}")
            await asyncio.sleep(0.2)
        return None
    finally:
        conn.close()


async def _dump(port: int, sid: str, result: SameSession) -> dict[str, int] | None:
    conn = Connection(port)
    try:
        for _ in range(10):
            try:
                response = await _capped(conn.get("/dump", f"{COOKIE}={sid}"))
            except _NO_ANSWER:
                conn.close()
                await asyncio.sleep(0.25)
                continue
            if response.status == 200:
                pairs = response.body.decode("latin-1").split()
                return {k: int(v) for k, _, v in (p.partition("=") for p in pairs)}
            await asyncio.sleep(0.25)
        result.problems.append("the session could not be read at the end")
        return None
    finally:
        conn.close()


async def run_same_session(
    server: AppServer, clients: int = 20, requests: int = 50, *, shared: bool = True,
    seconds: float = 120.0,
) -> SameSession:  # fmt: skip
    """Drive ``clients`` clients, ``requests`` saves each (for at most ``seconds``), all on one
    session (``shared``) or each on a session of its own (the uncontended control), and check
    that no acknowledged change was lost."""
    port = server.port
    result = SameSession(clients, requests, shared)
    sids: list[str | None]
    if shared:
        sids = [await _create(port, result)] * clients
    else:
        sids = list(await asyncio.gather(*(_create(port, result) for _ in range(clients))))
    if None in sids:
        result.problems.append("no session to share" if shared else "sessions not created")
        return result

    async def client(index: int, sid: str) -> None:
        key = f"k{index:02d}"
        conn = Connection(port)
        acked = 0
        pending: set[int] = set()  # values written since, not acknowledged: they may land
        try:
            for n in range(1, requests + 1):
                if time.monotonic() > until:
                    result.problems.append(f"{key}: out of time after {n - 1} saves")
                    break
                began = time.monotonic()
                try:
                    response = await _capped(conn.get(f"/set?k={key}&v={n}", f"{COOKIE}={sid}"))
                except _NO_ANSWER:
                    conn.close()
                    result.statuses[0] += 1
                    pending.add(n)
                    continue
                result.latencies.append(time.monotonic() - began)
                result.statuses[response.status] += 1
                if response.status != 200:
                    pending.add(n)
                    continue
                if response.set_cookies and _session_cookie(response) != sid:
                    result.problems.append(f"{key}: the session's id changed at save {n}")
                try:
                    previous = int(response.body)
                except ValueError:
                    result.problems.append(f"{key}: unreadable answer {response.body[:60]!r}")
                    previous = acked
                if previous < acked:
                    result.lost_seen += 1
                    result.examples.append(f"{key} found {previous} after {acked} was acknowledged")
                elif previous != acked and previous not in pending:
                    result.problems.append(f"{key}: found {previous}, never written")
                acked = n
                pending.clear()
        finally:
            conn.close()
        finals[index] = (acked, pending)

    finals: dict[int, tuple[int, set[int]]] = {}
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(client(i, sid) for i, sid in enumerate(sids) if sid is not None))
    result.duration = time.monotonic() - started
    result.server_cpu = server.cpu_seconds() - cpu_before

    stored: dict[str, dict[str, int] | None] = {}
    for sid in dict.fromkeys(s for s in sids if s is not None):
        stored[sid] = await _dump(port, sid, result)
    for index, (acked, pending) in sorted(finals.items()):
        key, values = f"k{index:02d}", stored.get(sids[index] or "")
        if values is None:
            continue
        value = values.get(key, 0)
        if value < acked:
            result.lost_final += 1
            result.examples.append(f"{key} holds {value} at the end, {acked} acknowledged")
        elif value != acked and value not in pending:
            result.problems.append(f"{key}: holds {value} at the end, never written")
    return result
