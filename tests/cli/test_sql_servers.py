"""``sessionkit check`` / ``stats`` / ``purge`` on a real PostgreSQL and a real MariaDB.

The operator's commands run as the operator runs them: the installed ``sessionkit`` script in
a process of its own (``.venv/bin/sessionkit ...``), on URLs of the test servers
(``tests._server_postgres``, ``tests._server_mysql``). What they print is checked, and what
they did is read back from the server with plain SQL, not through the plugin under test:
``purge --expired-only`` removed the expired rows and nothing else, ``stats`` counted what the
table holds, and ``check --reset-scratch`` left no ``skcheck_...`` table behind (it used to
leave one per run: ``reset`` empties a table, it does not drop it).

Each test works on a table of its own; on PostgreSQL in the run's own schema, dropped when the
run ends, on MariaDB dropped by the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from sessionkit import Store
from tests.cli.conftest import fill

SCRIPT = Path(sys.executable).with_name("sessionkit")
#: The check's steps, in the order it prints them.
STEPS = ["set", "get", "touch", "replace", "replace_if", "delete", "take", "expiry", "async"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``sessionkit ARGS`` in a process of its own (the entry point the package installs)."""
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@attrs.frozen
class Server:
    """A table of its own on one SQL server, and plain SQL on that server."""

    kind: str
    #: The storage URL, with the table (and the schema) in it.
    url: str
    #: Where ``check`` makes its scratch tables: the URL's schema, or database.
    schema: str
    table: str
    #: ``sql(statement) -> rows``, on a connection of the test's own (autocommit).
    sql: Callable[[str], list[tuple[Any, ...]]]

    def tables(self, like: str) -> set[str]:
        """Names of the tables in the URL's schema (or database) whose name is ``LIKE like``."""
        rows = self.sql(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{self.schema}' AND table_name LIKE '{like}'"
        )
        return {str(name) for (name,) in rows}

    def rows(self) -> int:
        """Rows in the table, expired or not (what the storage would call live or not)."""
        quoted = f'"{self.schema}"."{self.table}"' if self.kind == "postgres" else self.table
        ((count,),) = self.sql(f"SELECT count(*) FROM {quoted}")
        return int(count)


def _postgres(request: pytest.FixtureRequest, tag: str) -> Iterator[Server]:
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")  # dropped, tables and all, at the end
    with psycopg.connect(base, autocommit=True) as conn:

        def sql(statement: str) -> list[tuple[Any, ...]]:
            cursor = conn.execute(statement.encode())
            return list(cursor.fetchall()) if cursor.description else []

        url = f"{base}{'&' if '?' in base else '?'}schema={schema}&table={tag}"
        yield Server("postgres", url, schema, tag, sql)


def _mysql(request: pytest.FixtureRequest, tag: str) -> Iterator[Server]:
    from tests._server_mysql import _connect, run_sql

    base: str = request.getfixturevalue("mysql_url")
    conn = _connect(base)
    try:
        (database,) = run_sql(conn, "SELECT DATABASE()")[0]

        def sql(statement: str) -> list[tuple[Any, ...]]:
            return list(run_sql(conn, statement))

        yield Server("mysql", f"{base}{'&' if '?' in base else '?'}table={tag}", database, tag, sql)
        run_sql(conn, f"DROP TABLE IF EXISTS `{tag}`")
    finally:
        conn.close()


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh table on PostgreSQL, then on MariaDB."""
    tag = f"cli_{uuid.uuid4().hex[:12]}"
    opened = _postgres if request.param == "postgres" else _mysql
    yield from opened(request, tag)


@pytest.fixture
def store(server: Server) -> Iterator[Store]:
    """A store on the server's table (which its first write makes)."""
    store = Store(storage=server.url)
    yield store
    store.close()


def steps(out: str) -> dict[str, str]:
    """``{step: its line}`` of the check's output."""
    found = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in [*STEPS, "reset"]:
            found[words[0]] = line
    return found


def test_check_passes_every_step_and_leaves_no_scratch_table(server: Server, store: Store) -> None:
    (sid,) = fill(store, [50])
    scratch_before = server.tables("skcheck%")
    done = run("check", server.url, "--reset-scratch")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = steps(done.stdout)
    assert list(lines) == [*STEPS, "reset"]
    for name in STEPS:
        assert " ok " in lines[name] and lines[name].endswith(("ms", "TTL", "adelete")), lines
    assert " ok " in lines["reset"] and "table=" in lines["reset"], lines["reset"]
    assert done.stdout.rstrip().endswith("all checks passed")
    # The scratch table the reset step made is gone; the real one is there, as it was.
    assert server.tables("skcheck%") - scratch_before == set()
    assert server.tables(server.table) == {server.table}
    assert store.get_by_id(sid) is not None
    assert server.rows() == 1  # no scratch key left in the real table either


def test_check_without_reset_scratch_makes_no_table(server: Server, store: Store) -> None:
    fill(store, [5])
    before = server.tables("skcheck%")
    done = run("check", server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" in steps(done.stdout)["reset"]
    assert server.tables("skcheck%") - before == set()
    assert server.rows() == 1


def test_stats_counts_live_sessions_only(server: Server, store: Store) -> None:
    fill(store, [10, 2000, 30])
    store.storage.set("gone-soon", b"{}", timedelta(seconds=1))  # expired by the server's clock
    time.sleep(1.2)
    assert server.rows() == 4
    done = run("stats", "--json", server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["live"] == 3 and report["scanned"] is True and report["unreadable"] == 0
    assert 2000 < report["largest"] < 2200
    assert abs(report["oldest"] - time.time()) < 60
    text = run("stats", server.url)
    assert text.returncode == 0, text.stderr
    assert "live sessions  3" in text.stdout


def test_purge_expired_only_removes_the_expired_rows_and_nothing_else(
    server: Server, store: Store
) -> None:
    ids = fill(store, [10, 20])
    store.storage.set("lapsing-1", b"{}", timedelta(seconds=1))
    store.storage.set("lapsing-2", b"{}", timedelta(seconds=1))
    store.storage.set("lasting", b"{}", timedelta(hours=1))
    time.sleep(1.2)
    assert server.rows() == 5
    done = run("purge", "--expired-only", "--yes", server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted 2 expired session(s)" in done.stdout
    assert server.rows() == 3
    assert all(store.get_by_id(i) is not None for i in ids)
    assert store.storage.get("lasting") == b"{}"
    again = run("purge", "--expired-only", "--yes", server.url)
    assert "deleted 0 expired session(s)" in again.stdout


def test_purge_asks_then_deletes_every_session(server: Server, store: Store) -> None:
    ids = fill(store, [10, 20, 30])
    refused = run("purge", server.url, stdin="n\n")
    assert refused.returncode == 3
    assert "Delete all 3 sessions in" in refused.stderr
    assert server.rows() == 3
    done = run("purge", server.url, stdin="y\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted 3 session(s)" in done.stdout
    assert server.rows() == 0
    assert all(store.get_by_id(i) is None for i in ids)
