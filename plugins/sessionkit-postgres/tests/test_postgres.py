"""The PostgreSQL storage on a real server: its table, its clock, its bulk work, its failures.

What the conformance suite cannot see from outside: the table's shape and where it goes, who
judges expiry, how purge and reset split their work, how odd names are quoted, a table made
by a migration for a role that may not create one, the lock the server cancels on, a
read-only server, a failover to the next host, and a forked worker.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sessionkit import StorageError
from sessionkit_postgres import PostgresStorage
from sessionkit_postgres import _storage as storage_module
from sessionkit_postgres._deadlines import WATCHER

pytestmark = pytest.mark.postgres

Raw = psycopg.Connection[tuple[Any, ...]]
HOUR = timedelta(hours=1)


def columns(raw: Raw, schema: str, table: str) -> list[tuple[str, str, str]]:
    rows = raw.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def relations(raw: Raw, schema: str) -> set[str]:
    rows = raw.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s",
        (schema,),
    ).fetchall()
    return {str(name) for (name,) in rows}


# -- the table ----------------------------------------------------------------------------------


def test_the_table_is_made_on_first_use_with_its_index(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    try:
        assert table not in relations(raw, postgres_schema), "nothing happens before a call"
        assert storage.get("k") is None
        assert columns(raw, postgres_schema, table) == [
            ("key", "bytea", "NO"),
            ("value", "bytea", "NO"),
            ("expires_at", "timestamp with time zone", "YES"),
        ]
        (indexdef,) = raw.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (postgres_schema, f"{table}_expires_at"),
        ).fetchone() or ("",)
        assert "(expires_at) WHERE (expires_at IS NOT NULL)" in indexdef
    finally:
        storage.close()


def test_keys_are_stored_as_their_utf8_bytes(raw: Raw, storage: PostgresStorage) -> None:
    storage.set("ключ-🔑", b"v", None)
    (key,) = raw.execute(
        sql.SQL("SELECT key FROM {}").format(sql.Identifier(storage.schema or "", storage.table))
    ).fetchone() or (b"",)
    assert bytes(key) == "ключ-🔑".encode()


@pytest.mark.parametrize(
    "name", ['we"ird tab;le', "'; DROP TABLE x; --", "Sessions", "сессии", "a.b", "x" * 63]
)
def test_odd_table_and_schema_names_are_quoted_never_run(
    raw: Raw, postgres_url: str, postgres_schema: str, name: str
) -> None:
    """Each name is a table of exactly that name; no statement ever runs from it."""
    schema = f"{postgres_schema}_{uuid.uuid4().hex[:6]}{name[:20]}"[:63]
    raw.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        before = relations(raw, postgres_schema)
        storage = PostgresStorage(postgres_url, schema=schema, table=name)
        bystander = PostgresStorage(postgres_url, schema=schema, table=f"{name[:50]}_other")
        try:
            storage.set("k", b"v", HOUR)
            bystander.set("k", b"other", None)
            assert storage.get("k") == b"v"
            assert storage.count() == 1
            storage.reset()
            assert storage.get("k") is None
            assert bystander.get("k") == b"other"
            assert name in relations(raw, schema)
        finally:
            storage.close()
            bystander.close()
        assert relations(raw, postgres_schema) == before
    finally:
        raw.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_long_table_names_get_distinct_indexes(
    raw: Raw, postgres_url: str, postgres_schema: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    first, second = f"{tag}{'a' * 54}1", f"{tag}{'a' * 54}2"  # 63 bytes each
    storages = [
        PostgresStorage(postgres_url, schema=postgres_schema, table=t) for t in (first, second)
    ]
    try:
        for storage in storages:
            storage.set("k", b"v", HOUR)
        indexes = raw.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s "
            "AND tablename = ANY(%s) AND indexdef LIKE '%%(expires_at)%%'",
            (postgres_schema, [first, second]),
        ).fetchall()
        assert len({index for _, index in indexes}) == 2
        assert {table for table, _ in indexes} == {first, second}
    finally:
        for storage in storages:
            storage.close()


def test_a_table_dropped_while_in_use_is_made_again(raw: Raw, storage: PostgresStorage) -> None:
    storage.set("k", b"v", HOUR)
    raw.execute(
        sql.SQL("DROP TABLE {}").format(sql.Identifier(storage.schema or "", storage.table))
    )
    assert storage.get("k") is None  # the table is back, empty
    storage.set("k", b"w", HOUR)
    assert storage.get("k") == b"w"

    async def again() -> bytes | None:
        raw.execute(
            sql.SQL("DROP TABLE {}").format(sql.Identifier(storage.schema or "", storage.table))
        )
        return await storage.aget("k")

    assert asyncio.run(again()) is None


def test_drop_removes_the_table_and_its_index_and_a_later_write_makes_it_again(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    """What ``sessionkit check --reset-scratch`` cleans up with: ``reset`` keeps the table."""
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    try:
        storage.drop()  # never made: nothing to drop, no error, and nothing made
        assert table not in relations(raw, postgres_schema)
        storage.set("k", b"v", HOUR)
        storage.reset()
        assert {table, f"{table}_expires_at"} <= relations(raw, postgres_schema)
        storage.drop()
        assert not {table, f"{table}_expires_at"} & relations(raw, postgres_schema)
        assert storage.get("k") is None  # the table is made again
        storage.set("k", b"w", HOUR)
        assert storage.get("k") == b"w"
    finally:
        storage.drop()
        storage.close()


def test_a_name_that_is_no_table_is_refused_clearly(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    raw.execute(
        sql.SQL("CREATE VIEW {} AS SELECT 1 AS one").format(sql.Identifier(postgres_schema, table))
    )
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    try:
        with pytest.raises(StorageError, match="not a table"):
            storage.get("k")
    finally:
        storage.close()


def test_a_missing_schema_is_a_storage_error_naming_it(postgres_url: str) -> None:
    storage = PostgresStorage(postgres_url, schema="sessionkit_no_such_schema", table="t")
    try:
        with pytest.raises(StorageError, match="sessionkit_no_such_schema") as caught:
            storage.set("k", b"v", None)
        assert isinstance(caught.value.__cause__, psycopg.Error)
    finally:
        storage.close()


def test_a_role_that_may_not_create_tables_uses_one_made_for_it(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    """Production: a migration made the table; the app's role may only read and write rows."""
    role = f"sk_app_{uuid.uuid4().hex[:8]}"
    made = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    made.get("k")  # made by the owner
    made.close()
    target = sql.Identifier(postgres_schema, table)
    raw.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        raw.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(postgres_schema), sql.Identifier(role)
            )
        )
        raw.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                target, sql.Identifier(role)
            )
        )
        app = PostgresStorage(postgres_url, user=role, schema=postgres_schema, table=table)
        try:
            app.set("k", b"v", HOUR)
            assert app.take("k") is True
            assert app.create("k", b"w", None) is True
            assert app.count() == 1
            app.reset()
            assert app.purge_expired() == 0
        finally:
            app.close()
        elsewhere = PostgresStorage(
            postgres_url, user=role, schema=postgres_schema, table=f"{table}_x"
        )
        try:
            with pytest.raises(StorageError, match="permission denied"):
                elsewhere.get("k")  # it may not create a table of its own: said so
        finally:
            elsewhere.close()
    finally:
        raw.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        raw.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# -- the clock ----------------------------------------------------------------------------------


def test_expiry_is_computed_and_judged_by_the_server(
    raw: Raw, storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app server's clock never enters: moved a day ahead, nothing changes."""
    storage.set("k", b"v", timedelta(seconds=90.25))
    target = sql.Identifier(storage.schema or "", storage.table)
    (left,) = raw.execute(
        sql.SQL("SELECT extract(epoch FROM expires_at - now()) FROM {}").format(target)
    ).fetchone() or (0,)
    assert 89 < float(left) <= 90.25
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86_400)
    assert storage.get("k") == b"v"
    assert storage.touch("k", HOUR) is True
    assert storage.count() == 1
    assert storage.purge_expired() == 0


def test_a_row_expired_by_the_servers_clock_is_gone_at_once(
    raw: Raw, storage: PostgresStorage
) -> None:
    storage.set("k", b"v", HOUR)
    storage.set("forever", b"f", None)
    target = sql.Identifier(storage.schema or "", storage.table)
    raw.execute(
        sql.SQL("UPDATE {} SET expires_at = now() - interval '1 ms' WHERE key = 'k'").format(target)
    )
    assert storage.get("k") is None
    assert storage.touch("k", HOUR) is False
    assert storage.replace("k", b"w", HOUR) is False
    assert storage.replace_if("k", b"v", b"w", HOUR) is False
    assert storage.take("k") is False
    assert storage.get("forever") == b"f"


def test_a_ttl_beyond_timestamps_is_kept_as_ten_thousand_years(storage: PostgresStorage) -> None:
    storage.set("k", b"v", timedelta.max)
    assert storage.get("k") == b"v"
    assert storage.touch("k", timedelta(days=10**8)) is True


# -- bulk work ----------------------------------------------------------------------------------


def expire_all(raw: Raw, storage: PostgresStorage, keys: list[str]) -> None:
    target = sql.Identifier(storage.schema or "", storage.table)
    raw.execute(
        sql.SQL("UPDATE {} SET expires_at = now() - interval '1 s' WHERE key = ANY(%s)").format(
            target
        ),
        ([k.encode() for k in keys],),
    )


def statements_run(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, int]]:
    """Record (statement, rows it changed) for each statement the storage runs."""
    seen: list[tuple[str, int]] = []
    original = storage._exec

    def recording(op: str, name: str, params: Any, fetch: Any) -> Any:
        result = original(op, name, params, fetch)
        seen.append((name, result if isinstance(result, int) else -1))
        return result

    monkeypatch.setattr(storage, "_exec", recording)
    return seen


def test_purge_deletes_in_bounded_batches(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table, purge_batch=3)
    try:
        expired = [f"old{i}" for i in range(10)]
        for key in [*expired, "live", "forever"]:
            storage.set(key, b"v", HOUR if key != "forever" else None)
        expire_all(raw, storage, expired)
        seen = statements_run(storage, monkeypatch)
        assert storage.purge_expired() == 10
        assert seen == [("purge", 3), ("purge", 3), ("purge", 3), ("purge", 1)]
        assert storage.count() == 2
        assert storage.get("live") == b"v"
    finally:
        storage.close()


def test_purge_skips_rows_a_request_holds_and_waits_for_none(
    raw: Raw, postgres_url: str, storage: PostgresStorage
) -> None:
    expired = ["held", "free1", "free2"]
    for key in expired:
        storage.set(key, b"v", HOUR)
    expire_all(raw, storage, expired)
    target = sql.Identifier(storage.schema or "", storage.table)
    with psycopg.connect(postgres_url) as holder:  # a transaction holding one row
        holder.execute(sql.SQL("SELECT 1 FROM {} WHERE key = 'held' FOR UPDATE").format(target))
        began = time.monotonic()
        assert storage.purge_expired() == 2
        assert time.monotonic() - began < 1.0
    assert storage.purge_expired() == 1  # released: purged the next time


def test_a_purge_never_deletes_a_row_renewed_meanwhile(
    raw: Raw, postgres_url: str, storage: PostgresStorage
) -> None:
    """A request renews an expired-looking row while a purge is about to take it: the purge
    re-checks the expiry on the row the request left, and leaves it alone."""
    storage.set("k", b"v", HOUR)
    expire_all(raw, storage, ["k"])
    target = sql.Identifier(storage.schema or "", storage.table)
    with psycopg.connect(postgres_url) as renewer:
        renewer.execute(
            sql.SQL("UPDATE {} SET expires_at = now() + interval '1 hour' WHERE key = 'k'").format(
                target
            )
        )
        # The renewal is not committed yet: the purge finds the row locked and skips it.
        assert storage.purge_expired() == 0
    assert storage.get("k") == b"v"
    assert storage.purge_expired() == 0


def test_reset_deletes_in_batches_and_only_its_table(
    postgres_url: str, postgres_schema: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table, purge_batch=4)
    neighbour = PostgresStorage(postgres_url, schema=postgres_schema, table=f"{table}_n")
    try:
        for i in range(9):
            storage.set(f"k{i}", b"v", None)
        neighbour.set("k0", b"n", None)
        seen = statements_run(storage, monkeypatch)
        storage.reset()
        assert seen == [("reset", 4), ("reset", 4), ("reset", 1)]
        assert storage.count() == 0
        assert neighbour.get("k0") == b"n"

        async def areset() -> None:
            await storage.aset("a", b"1", None)
            await storage.areset()

        asyncio.run(areset())
        assert storage.count() == 0
    finally:
        storage.close()
        neighbour.close()


def test_scan_pages_through_keys_in_byte_order(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_module, "SCAN_PAGE", 3)
    keys = ["", "a", "a\x00", "a\x00b", "ab", "b", "é", "🔑"]
    for key in keys:
        storage.set(key, key.encode() or b"-", HOUR)
    storage.set("gone", b"x", HOUR)
    storage.delete("gone")
    assert [k for k, _ in storage.scan()] == sorted(keys, key=lambda k: k.encode())
    assert dict(storage.scan())["a\x00"] == b"a\x00"


def test_count_gets_more_time_on_the_server_than_a_request(
    postgres_url: str, postgres_schema: str, table: str
) -> None:
    storage = PostgresStorage(
        postgres_url, schema=postgres_schema, table=table, statement_timeout=0.2
    )
    try:
        storage.set("k", b"v", None)
        settings: list[str] = []

        def spy(conn: psycopg.Connection[Any], statements: Any) -> int:
            with conn.transaction():
                conn.execute(statements.count_timeout, {"ms": "60000"})
                settings.append(str((conn.execute("SHOW statement_timeout").fetchone() or [""])[0]))
            settings.append(str((conn.execute("SHOW statement_timeout").fetchone() or [""])[0]))
            return 0

        storage._run("count", spy)
        assert settings == ["1min", "200ms"], "the longer limit holds for count's transaction only"
        assert storage.count() == 1
    finally:
        storage.close()


# -- failures the server reports ------------------------------------------------------------------


def test_a_statement_waiting_on_a_lock_is_cancelled_by_the_server(
    postgres_url: str, postgres_schema: str, table: str
) -> None:
    """A migration holds the table: the server cancels the statement at statement_timeout,
    the connection stays usable, and the next call after the lock goes works."""
    storage = PostgresStorage(
        postgres_url, schema=postgres_schema, table=table, statement_timeout=1.0
    )
    try:
        storage.set("k", b"v", HOUR)
        with psycopg.connect(postgres_url) as migration:
            target = sql.Identifier(postgres_schema, table)
            migration.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(target))
            began = time.monotonic()
            with pytest.raises(StorageError, match=r"cancelled it after 1 s") as caught:
                storage.get("k")
            # The server's doing, before the client's own cut at 1.5 s (with room for a busy CI).
            assert 0.95 < time.monotonic() - began < 1.45
            assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
        assert storage.get("k") == b"v"
        stats = storage._sync_pool().get_stats()
        assert stats.get("connections_lost", 0) == 0, "a cancelled statement keeps its connection"
    finally:
        storage.close()


def test_a_read_only_server_refuses_writes_and_serves_reads(
    postgres_url: str, postgres_schema: str, table: str
) -> None:
    """A replica, or a primary put read-only: writes fail with StorageError (503), reads work."""
    writer = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    writer.set("k", b"v", HOUR)
    writer.close()
    replica = PostgresStorage(
        postgres_url,
        schema=postgres_schema,
        table=table,
        options="-c default_transaction_read_only=on",
    )
    try:
        assert replica.get("k") == b"v"
        for write in (
            lambda: replica.set("k", b"w", HOUR),
            lambda: replica.take("k"),
            lambda: replica.replace_if("k", b"v", b"w", HOUR),
        ):
            with pytest.raises(StorageError, match="read-only") as caught:
                write()
            assert isinstance(caught.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)
        assert replica.get("k") == b"v"
    finally:
        replica.close()


def test_a_refused_first_host_fails_over_to_the_next(
    postgres_url: str, postgres_schema: str, table: str
) -> None:
    """libpq's multi-host URL (a failover set-up): the first host is down, the next serves."""
    real = psycopg.conninfo.conninfo_to_dict(postgres_url)
    host, port = str(real.get("host", "127.0.0.1")), str(real.get("port", "5432"))
    url = f"postgresql://{real.get('user', 'postgres')}@127.0.0.1:1,{host}:{port}/{real['dbname']}"
    storage = PostgresStorage(
        url, schema=postgres_schema, table=table, target_session_attrs="read-write"
    )
    try:
        storage.set("k", b"v", HOUR)
        assert storage.get("k") == b"v"
    finally:
        storage.close()


def test_the_servers_statement_timeout_is_set_on_each_connection(storage: PostgresStorage) -> None:
    def show(conn: psycopg.Connection[Any], statements: Any) -> str:
        return str((conn.execute("SHOW statement_timeout").fetchone() or [""])[0])

    assert storage._run("show", show) == "2500ms"

    async def ashow() -> str:
        async def work(conn: psycopg.AsyncConnection[Any], statements: Any) -> str:
            cursor = await conn.execute("SHOW statement_timeout")
            return str((await cursor.fetchone() or [""])[0])

        result = await storage._arun("show", work)
        await storage.aclose()
        return result

    assert asyncio.run(ashow()) == "2500ms"


# -- processes and threads -------------------------------------------------------------------


def test_a_forked_worker_makes_its_own_pool_and_leaves_the_parents_alone(
    storage: PostgresStorage,
) -> None:
    """A pre-forking server opened the storage (and used it) before forking its workers."""
    storage.set("parent", b"p", HOUR)
    parents_pool = storage._sync_pool()
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's connections
        code = 1
        try:
            storage.set("child", b"c", HOUR)
            ok = storage.get("parent") == b"p" and storage._sync_pool() is not parents_pool
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage._sync_pool() is parents_pool
    assert storage.get("child") == b"c"  # the parent's connections still work
    assert storage.get("parent") == b"p"


def test_many_threads_share_the_pool_up_to_its_size(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    storage = PostgresStorage(
        postgres_url, schema=postgres_schema, table=table, pool_max_size=3, pool_timeout=5
    )
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                storage.set(f"w{worker}-{i}", b"v", HOUR)
                assert storage.get(f"w{worker}-{i}") == b"v"
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(w,)) for w in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[0]
        assert storage.count() == 240
        assert storage._sync_pool().get_stats()["pool_size"] <= 3
    finally:
        storage.close()


def test_the_deadline_watcher_does_not_pile_up(storage: PostgresStorage) -> None:
    for _ in range(200):
        storage.get("k")
    time.sleep(0.05)
    assert len(WATCHER) <= 1


def test_closed_storage_raises_and_closing_again_is_quiet(storage: PostgresStorage) -> None:
    storage.set("k", b"v", None)
    storage.close()
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        storage.get("k")

    async def aclosed() -> None:
        with pytest.raises(StorageError, match="closed"):
            await storage.aget("k")
        await storage.aclose()

    asyncio.run(aclosed())


def test_an_event_loop_that_ended_without_aclose_has_its_connections_closed(
    raw: Raw, postgres_url: str, postgres_schema: str, table: str
) -> None:
    name = f"sk-loops-{uuid.uuid4().hex[:8]}"
    storage = PostgresStorage(
        postgres_url, schema=postgres_schema, table=table, application_name=name
    )

    def backends() -> int:
        row = raw.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
        return int(row[0]) if row else -1

    try:
        for _ in range(3):
            asyncio.run(storage.aset("k", b"v", HOUR))  # each loop ends without aclose()
        asyncio.run(storage.aget("k"))  # a new loop sweeps the ended ones
        deadline = time.monotonic() + 5
        while backends() > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert backends() <= 1, "only the last loop's connection may remain"
    finally:
        storage.close()
