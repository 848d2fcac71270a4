"""Fixtures of the load-and-fault suite (issue 14): app servers, storages, the results table.

``SESSIONKIT_LOAD=short`` (what ``nox -s load`` runs by default, and CI) runs a subset with
fewer clients and seconds, in at most two minutes; ``SESSIONKIT_LOAD=full`` (``nox -s load --
--full``) runs every scenario at full size. Every test here is marked ``load``; the ``tests``
session leaves this folder to the ``load`` session.

A failed test gets the tail of each of its servers' logs in its report. Each run's figures go
to the terminal summary and, with ``SESSIONKIT_LOAD_TABLE=path``, to a Markdown table there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests._servers import ServerProcess, start_mongo
from tests.load._harness import AppServer, Outcome, gunicorn_server, uvicorn_server

MODE = os.environ.get("SESSIONKIT_LOAD", "short").strip().lower() or "short"
if MODE not in ("short", "full"):
    raise ValueError(f"SESSIONKIT_LOAD={MODE!r}: short or full")
FULL = MODE == "full"

_SERVERS = pytest.StashKey[list[AppServer]]()
_RESULTS: list[dict[str, Any]] = []


#: Scenarios that take many seconds in a short run, by the name of their test function (most
#: run their load through a storage fault and its grace: ``test_faults``), with their seconds
#: on this 2-core machine, eight at once. ``_spread`` orders the short run by them.
LONG_SCENARIOS = {
    "test_postgres_frozen": 16,
    "test_mongo_frozen": 15,
    "test_mysql_frozen": 15,
    "test_sqlite_foreign_exclusive_lock": 15,
    "test_redis_paused": 15,
    "test_redis_killed_and_restarted_with_aof": 15,
    "test_sentinel_failover_under_load": 14,
    "test_regenerate_while_redis_refuses_writes": 12,
    "test_regenerate_while_sqlite_refuses_writes": 12,
    "test_a_loop_per_request_leaks_nothing": 6,
    "test_steady_mix": 5,
    "test_log_out_other_devices_while_they_save": 3,
    "test_merge_loses_no_acknowledged_change": 2,
}


def _spread(items: list[pytest.Item]) -> None:
    """Order the short run so that its eight workers (``nox -s load``) end together.

    pytest-xdist gives each worker two tests to start with, consecutive in this order, and
    keeps one more queued behind each running test. In file order, one worker took two fault
    scenarios back to back and the run lasted 42 s where its longest scenario takes 16. So:
    each long scenario (10 s or more), longest first, is followed by one of the shortest tests
    (a skipped one, or a check of the harness), and the rest follow shortest first, so that the
    test queued behind the longest scenario is the shortest left. Any order is correct; this
    one is only faster. Scenarios wait out fault windows more than they use the CPU: eight at
    once keep their promises (every answer within the timeout and a second).
    """

    def seconds(item: pytest.Item) -> int:
        if item.get_closest_marker("skip") is not None:
            return 0
        return LONG_SCENARIOS.get(getattr(item, "originalname", item.name), 0)

    ranked = sorted(items, key=seconds)  # stable: equal times keep the collected order
    long = [item for item in reversed(ranked) if seconds(item) >= 10]
    rest = [item for item in ranked if seconds(item) < 10]
    paired = [x for pair in zip(long, rest, strict=False) for x in pair]
    items[:] = paired + long[len(rest) :] + rest[len(long) :]


@pytest.hookimpl(trylast=True)  # after ``-m`` deselected: the order is of what runs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``load``; skip them unless asked for (``SESSIONKIT_LOAD`` set,
    or this folder named on the command line), so a bare ``pytest`` stays a unit run; order
    a run of this folder alone with ``_spread``."""
    here = Path(__file__).parent
    asked = "SESSIONKIT_LOAD" in os.environ or any(
        Path(arg.split("::")[0]).resolve().is_relative_to(here) for arg in config.args
    )
    skip = pytest.mark.skip(reason="load suite: run nox -s load (or set SESSIONKIT_LOAD=short)")
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.load)
            if not asked:
                item.add_marker(skip)
    if items and all(here in item.path.parents for item in items):  # a run of this suite alone
        _spread(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"server log: {server.name}", server.tail()))
    return report


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., AppServer]]:
    """``launch(kind, storage, workers=1, **options)``: start an app server, stopped (its whole
    process group) when the test ends, passed or failed.

    ``kind`` is ``uvicorn`` (``app_asgi``; options ``layer``, ``shape``) or ``gunicorn``
    (``app_wsgi``; options ``shape``, ``worker_class``, ``threads``).
    """
    started: list[AppServer] = []
    request.node.stash[_SERVERS] = started

    def start(kind: str, storage: str, workers: int = 1, **options: Any) -> AppServer:
        env = {"LOAD_STORAGE": storage}
        log = tmp_path / f"{kind}-{len(started)}.log"
        if kind == "uvicorn":
            env["LOAD_LAYER"] = options.pop("layer", "sessionkit")
            env["LOAD_SHAPE"] = options.pop("shape", "inner")
            server = uvicorn_server(log, env, workers)
        elif kind == "gunicorn":
            env["LOAD_SHAPE"] = options.pop("shape", "flask")
            server = gunicorn_server(log, env, workers, **options)
        else:
            raise ValueError(kind)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def load_mongo() -> Iterator[ServerProcess]:
    """A private SecantusDB for the runs that only load it (faults start their own)."""
    server = start_mongo()
    yield server
    server.close()


@pytest.fixture
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``storage_url(backend)``: a fresh, empty storage URL of that backend for this test.

    Redis runs use the shared server under a prefix of their own (emptied afterwards); Mongo
    runs a collection of their own on the suite's private SecantusDB.
    """

    def make(backend: str) -> str:
        tag = uuid.uuid4().hex[:10]
        if backend == "memory":
            return "memory://"
        if backend == "sqlite":
            # A folder of its own: a fault may make it unwritable, the server logs stay writable.
            folder = tmp_path / f"sqlite-{tag}"
            folder.mkdir()
            return f"sqlite:///{folder / 'sessions.db'}"
        if backend == "redis":
            base: str = request.getfixturevalue("redis_url")
            url = f"{base}?prefix=sk-load:{tag}:"
            request.addfinalizer(lambda: _empty(url))
            return url
        if backend == "mongo":
            server: ServerProcess = request.getfixturevalue("load_mongo")
            return server.url.replace("/?", "/sessionkit_load?") + f"&collection=load_{tag}"
        if backend == "postgres":
            # In the run's own schema, which is dropped with its tables when the run ends.
            base = request.getfixturevalue("postgres_url")
            schema = request.getfixturevalue("postgres_schema")
            return f"{base}{'&' if '?' in base else '?'}schema={schema}&table=load_{tag}"
        if backend == "mysql":
            from tests._server_mysql import _drop_tables

            base = request.getfixturevalue("mysql_url")
            request.addfinalizer(lambda: _drop_tables(base, {f"load_{tag}"}))
            return f"{base}{'&' if '?' in base else '?'}table=load_{tag}"
        raise ValueError(backend)

    return make


def _empty(url: str) -> None:
    from sessionkit import open_storage

    storage = open_storage(url)
    try:
        storage.reset()
    finally:
        storage.close()


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(outcome, **columns)``: keep one run's figures for the summary table."""

    def keep(outcome: Outcome, **columns: Any) -> None:
        requests = max(outcome.requests, 1)
        _RESULTS.append(
            {
                "test": request.node.name,
                **columns,
                "clients": outcome.plan.clients,
                "seconds": round(outcome.duration, 1),
                "requests/s": round(outcome.rps),
                "p50 ms": round(outcome.latency(0.5) * 1000, 1),
                "p99 ms": round(outcome.latency(0.99) * 1000, 1),
                "max ms": round(outcome.latency(1.0) * 1000),
                "errors": outcome.requests - outcome.statuses.get(200, 0),
                "server CPU µs/req": round(outcome.server_cpu / requests * 1e6),
                "client CPU µs/req": round(outcome.client_cpu / requests * 1e6),
                "rules broken": len(outcome.violations(errors_allowed=bool(outcome.fault_window))),
            }
        )
        print(f"{request.node.name}: {outcome.summary()}")

    return keep


def _table(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = _table(_RESULTS)
    terminalreporter.write_sep("=", f"load runs ({MODE}, {stamp}, {os.cpu_count()} cores)")
    terminalreporter.write_line(table)
    target = os.environ.get("SESSIONKIT_LOAD_TABLE")
    if target:
        Path(target).write_text(f"<!-- {MODE} run, {stamp} -->\n{table}\n")
