"""What the MySQL storage promises beyond the conformance suite, on a real server.

Each test here was written to fail against the naive version of what it checks: a
case-insensitive or space-padding key column, an affected-row count read without a revision to
bump, assignments of ``create`` in the wrong order, a table made in two statements, a pool that
hands out connections the server has closed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pymysql
import pytest

from sessionkit import StorageError
from sessionkit_mysql import MySQLStorage
from sessionkit_mysql._sql import KEY_BYTES, Statements
from tests._server_mysql import run_sql as sql

pytestmark = pytest.mark.mysql

HOUR = timedelta(hours=1)


def row(raw: Any, table: str, key: str) -> tuple[Any, ...] | None:
    """The stored row of ``key``: (value, expires_at, rev), or None."""
    found = sql(
        raw, f"SELECT `v`, `expires_at`, `rev` FROM `{table}` WHERE `k` = X'{key.encode().hex()}'"
    )
    return found[0] if found else None


def put_expired(raw: Any, table: str, key: str, value: bytes = b"old", rev: int = 7) -> None:
    """A row of ``key`` that expired a second ago, written behind the storage's back."""
    sql(
        raw,
        f"INSERT INTO `{table}` (`k`, `v`, `expires_at`, `rev`) VALUES "
        f"(X'{key.encode().hex()}', X'{value.hex()}', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, {rev})",
    )


# -- keys are bytes: case, spaces and accents matter -----------------------------------------


#: Keys a case- or accent-insensitive collation would take for one another, and keys that
#: differ only in trailing spaces, which MySQL's PAD SPACE collations (utf8mb4_bin among them)
#: compare as equal.
LOOK_ALIKES = (
    "Session",
    "session",
    "SESSION",
    "a",
    "a ",
    "a  ",
    "ss",
    "ß",
    "e",
    "é",
    "É",
    "\u0131",  # dotless i
    "i",
)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_keys_that_differ_in_case_spaces_or_accents_are_distinct(
    storage: MySQLStorage, mode: str
) -> None:
    if mode == "sync":
        for key in LOOK_ALIKES:
            assert storage.create(key, key.encode(), HOUR) is True, key
        got = {key: storage.get(key) for key in LOOK_ALIKES}
    else:

        async def run() -> dict[str, bytes | None]:
            for key in LOOK_ALIKES:
                assert await storage.acreate(key, key.encode(), HOUR) is True, key
            return {key: await storage.aget(key) for key in LOOK_ALIKES}

        got = asyncio.run(run())
    assert got == {key: key.encode() for key in LOOK_ALIKES}
    assert storage.count() == len(LOOK_ALIKES)
    assert storage.take("a ") is True
    assert storage.get("a") == b"a" and storage.get("a  ") == b"a  "
    assert sorted(key for key, _ in storage.scan()) == sorted(set(LOOK_ALIKES) - {"a "})


def test_drop_removes_the_table_and_a_later_write_makes_it_again(
    mysql_url: str, new_table: Callable[[], str], raw: Any
) -> None:
    """What ``sessionkit check --reset-scratch`` cleans up with: ``reset`` keeps the table."""
    table = new_table()
    storage = MySQLStorage(mysql_url, table=table)
    try:
        storage.drop()  # never made: nothing to drop, no error, and nothing made
        assert sql(raw, f"SHOW TABLES LIKE '{table}'") == ()
        storage.set("k", b"v", timedelta(hours=1))
        storage.reset()
        assert sql(raw, f"SHOW TABLES LIKE '{table}'") == ((table,),)
        storage.drop()
        assert sql(raw, f"SHOW TABLES LIKE '{table}'") == ()
        assert storage.get("k") is None  # the table is made again
        storage.set("k", b"w", timedelta(hours=1))
        assert storage.get("k") == b"w"
    finally:
        storage.close()


def test_values_are_compared_byte_for_byte(storage: MySQLStorage) -> None:
    storage.set("k", b"v", HOUR)
    assert storage.replace_if("k", b"v ", b"x", HOUR) is False  # no padding
    assert storage.replace_if("k", b"V", b"x", HOUR) is False
    assert storage.replace_if("k", b"v", b"x ", HOUR) is True
    assert storage.get("k") == b"x "


def test_a_table_with_a_case_insensitive_key_column_is_refused(
    mysql_url: str, raw: Any, new_table: Callable[[], str]
) -> None:
    """A table made beforehand by hand, with a text key: ``Session`` and ``session`` would be
    one row. The storage refuses it rather than merge two visitors' sessions, and refuses to
    empty a table that is not its own."""
    table = new_table()
    sql(
        raw,
        f"CREATE TABLE `{table}` (`k` VARCHAR(255) COLLATE utf8mb4_general_ci PRIMARY KEY, "
        "`v` LONGBLOB NOT NULL, `expires_at` DATETIME(6) NULL, `rev` BIGINT NOT NULL DEFAULT 0)",
    )
    sql(raw, f"INSERT INTO `{table}` VALUES ('keep', X'01', NULL, 0)")
    storage = MySQLStorage(mysql_url, table=table)
    try:
        with pytest.raises(StorageError, match="not a sessionkit table: its column `k` is varchar"):
            storage.get("k")
        with pytest.raises(StorageError, match="not a sessionkit table"):
            asyncio.run(storage.areset())
        with pytest.raises(StorageError, match="not a sessionkit table"):
            storage.reset()
    finally:
        storage.close()
    assert sql(raw, f"SELECT COUNT(*) FROM `{table}`") == ((1,),)


def test_another_applications_table_of_the_same_name_is_left_alone(
    mysql_url: str, raw: Any, new_table: Callable[[], str]
) -> None:
    table = new_table()
    sql(raw, f"CREATE TABLE `{table}` (`id` INT PRIMARY KEY, `data` TEXT)")
    sql(raw, f"INSERT INTO `{table}` VALUES (1, 'theirs')")
    storage = MySQLStorage(mysql_url, table=table)
    try:
        with pytest.raises(StorageError, match="it has no column `k`"):
            storage.reset()
    finally:
        storage.close()
    assert sql(raw, f"SELECT `data` FROM `{table}`") == (("theirs",),)


# -- affected rows: a write that matched counts, even when it changed nothing else ----------


def test_writes_that_leave_the_value_as_it_was_still_report_the_match(
    storage: MySQLStorage, raw: Any
) -> None:
    """Without ``CLIENT_FOUND_ROWS`` the server counts *changed* rows: an ``UPDATE`` writing a
    row's own value and expiry back would count 0, and the core would take a renewal for a
    session destroyed meanwhile. The revision each write bumps makes every match a change."""
    storage.set("k", b"same", None)
    assert storage.touch("k", None) is True  # no expiry before, none after
    assert storage.replace("k", b"same", None) is True
    assert storage.replace_if("k", b"same", b"same", None) is True

    async def run() -> list[bool]:
        return [
            await storage.atouch("k", None),
            await storage.areplace("k", b"same", None),
            await storage.areplace_if("k", b"same", b"same", None),
        ]

    assert asyncio.run(run()) == [True, True, True]
    stored = row(raw, storage.table, "k")
    assert stored is not None and stored[0] == b"same" and stored[1] is None
    assert stored[2] == 6  # one bump per write after the insert


def test_create_overwrites_an_expired_row_whole(storage: MySQLStorage, raw: Any) -> None:
    """The conflict branch tests the stored expiry in each assignment; were ``expires_at``
    assigned first, the later tests would see the new expiry and keep the old value."""
    put_expired(raw, storage.table, "k", b"old", rev=7)
    assert storage.get("k") is None
    assert storage.create("k", b"new", HOUR) is True
    stored = row(raw, storage.table, "k")
    assert stored is not None
    assert (stored[0], stored[2]) == (b"new", 8)
    assert storage.get("k") == b"new"

    put_expired(raw, storage.table, "a", b"old", rev=0)
    assert asyncio.run(storage.acreate("a", b"new", None)) is True
    assert row(raw, storage.table, "a") == (b"new", None, 1)


def test_create_leaves_a_live_row_exactly_as_it_was(storage: MySQLStorage, raw: Any) -> None:
    storage.set("k", b"mine", HOUR)
    before = row(raw, storage.table, "k")
    assert storage.create("k", b"theirs", None) is False
    assert asyncio.run(storage.acreate("k", b"theirs", HOUR)) is False
    assert row(raw, storage.table, "k") == before


def test_take_of_an_expired_row_says_false_and_the_purge_removes_it(
    storage: MySQLStorage, raw: Any
) -> None:
    put_expired(raw, storage.table, "k")
    assert storage.take("k") is False
    assert asyncio.run(storage.atake("k")) is False
    assert storage.purge_expired() == 1
    assert row(raw, storage.table, "k") is None


# -- one clock: the server's ------------------------------------------------------------------


def test_expiry_is_the_servers_clock_plus_the_ttl(
    storage: MySQLStorage, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application's clock plays no part: a worker whose clock runs a day ahead writes
    and reads sessions exactly as one on time."""
    monkeypatch.setattr(time, "time", lambda: 1e10)  # year 2286
    storage.set("k", b"v", timedelta(hours=1, microseconds=1))
    ((left,),) = sql(
        raw,
        f"SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), `expires_at`) "
        f"FROM `{storage.table}` WHERE `k` = X'6b'",
    )
    assert 3_600_000_001 - 2_000_000 < left <= 3_600_000_001
    assert storage.get("k") == b"v"


def test_a_ttl_beyond_a_thousand_years_is_kept_as_a_thousand(
    storage: MySQLStorage, raw: Any
) -> None:
    """The server's date arithmetic gives NULL (no expiry) past the year 9999: such TTLs are
    capped rather than left to overflow."""
    storage.set("k", b"v", timedelta(days=999_999_999))  # timedelta.max
    ((year,),) = sql(raw, f"SELECT YEAR(`expires_at`) FROM `{storage.table}`")
    assert 3000 < year < 3100
    assert storage.touch("k", timedelta(days=10**6)) is True
    assert storage.get("k") == b"v"


def test_a_microsecond_ttl_is_not_rounded_to_zero(storage: MySQLStorage) -> None:
    storage.set("k", b"v", timedelta(microseconds=1))
    time.sleep(0.01)
    assert storage.get("k") is None  # expired, not kept forever nor refused


# -- keys too long for the column -------------------------------------------------------------


def test_keys_are_at_most_255_bytes_of_utf8(storage: MySQLStorage) -> None:
    longest = "ключ" * (KEY_BYTES // 8) + "k" * (KEY_BYTES % 8)
    assert len(longest.encode()) == KEY_BYTES
    storage.set(longest, b"v", HOUR)
    assert storage.get(longest) == b"v"
    too_long = longest + "k"
    with pytest.raises(ValueError, match="255 bytes"):
        storage.set(too_long, b"v", HOUR)
    with pytest.raises(ValueError, match="255 bytes"):
        storage.create(too_long, b"v", HOUR)
    # No row can hold it, so nothing is asked of the server.
    assert storage.get(too_long) is None
    assert storage.touch(too_long, HOUR) is False
    assert storage.replace(too_long, b"v", HOUR) is False
    assert storage.replace_if(too_long, b"v", b"w", HOUR) is False
    assert storage.take(too_long) is False
    storage.delete(too_long)
    with pytest.raises(TypeError):
        storage.get(b"bytes")  # type: ignore[arg-type]


# -- the table: made on first use, once, by whoever comes first --------------------------------


def _make_and_write(url: str, table: str, barrier: Any, worker: int, out: Any) -> None:
    storage = MySQLStorage(url, table=table)
    try:
        barrier.wait(timeout=30)
        storage.set(f"w{worker}", b"v", None)
        out.put((worker, "ok"))
    except BaseException as exc:
        out.put((worker, repr(exc)))
    finally:
        storage.close()


def test_processes_racing_to_make_the_table_all_succeed(
    mysql_url: str, raw: Any, new_table: Callable[[], str]
) -> None:
    """Four workers of a new deployment start at once on an empty database. A table made in
    two statements (``CREATE TABLE``, then ``CREATE INDEX``, which MySQL cannot ask ``IF NOT
    EXISTS``) fails all but one of them."""
    table = new_table()
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_make_and_write, args=(mysql_url, table, barrier, w, out))
        for w in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        results = sorted(out.get(timeout=60) for _ in workers)
    finally:
        for worker in workers:
            worker.join(30)
    assert results == [(w, "ok") for w in range(4)]
    assert sql(raw, f"SELECT COUNT(*) FROM `{table}`") == ((4,),)
    indexes = {name for _, _, name, *_ in sql(raw, f"SHOW INDEX FROM `{table}`")}
    assert indexes == {"PRIMARY", "expires_at"}


def test_a_table_dropped_behind_the_storages_back_is_made_again(
    mysql_url: str, raw: Any, new_table: Callable[[], str]
) -> None:
    """A restored (empty) database, or an operator's DROP: the next call makes the table
    again and succeeds, in either mode."""
    table = new_table()
    storage = MySQLStorage(mysql_url, table=table)
    try:
        storage.set("k", b"v", HOUR)
        sql(raw, f"DROP TABLE `{table}`")
        assert storage.get("k") is None
        storage.set("k", b"again", HOUR)
        sql(raw, f"DROP TABLE `{table}`")

        async def run() -> bytes | None:
            await storage.aset("k", b"async", HOUR)
            return await storage.aget("k")

        assert asyncio.run(run()) == b"async"
    finally:
        storage.close()


def test_the_table_matches_the_documented_schema(storage: MySQLStorage, raw: Any) -> None:
    columns = {name: kind for name, kind, *_ in sql(raw, f"SHOW COLUMNS FROM `{storage.table}`")}
    assert list(columns) == ["k", "v", "expires_at", "rev"]
    assert (columns["k"], columns["v"], columns["expires_at"]) == (
        "varbinary(255)",
        "longblob",
        "datetime(6)",
    )
    assert columns["rev"].startswith("bigint") and columns["rev"].endswith("unsigned")
    ((_, create),) = sql(raw, f"SHOW CREATE TABLE `{storage.table}`")
    assert "ENGINE=InnoDB" in create and "PRIMARY KEY (`k`)" in create


# -- batches ------------------------------------------------------------------------------------


class Recording(MySQLStorage):
    """A storage that records each statement it runs (sync and async)."""

    statements: list[str]

    def _execute(self, op: str, sql: str, **kw: Any) -> Any:
        self.statements.append(sql)
        return super()._execute(op, sql, **kw)

    async def _aexecute(self, op: str, sql: str, **kw: Any) -> Any:
        self.statements.append(sql)
        return await super()._aexecute(op, sql, **kw)


@pytest.fixture
def recording(mysql_url: str, shared_table: str) -> Iterator[Recording]:
    storage = Recording(mysql_url, table=shared_table, purge_batch=7)
    storage.statements = []
    storage.reset()
    storage.statements.clear()
    yield storage
    storage.close()


def test_purge_expired_deletes_in_batches_and_keeps_the_live(
    recording: Recording, raw: Any
) -> None:
    for n in range(30):
        put_expired(raw, recording.table, f"old{n:02}")
    recording.set("live", b"v", HOUR)
    recording.set("forever", b"f", None)
    recording.statements.clear()
    assert recording.purge_expired() == 30
    purges = [s for s in recording.statements if s.startswith("DELETE")]
    assert len(purges) == 5  # 7 + 7 + 7 + 7 + 2
    assert all(s.endswith("LIMIT 7") for s in purges)
    assert recording.count() == 2
    assert recording.purge_expired() == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_nth_write_purges_one_batch(
    recording: Recording, raw: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(Recording, "purge_every", 3)
    for n in range(10):
        put_expired(raw, recording.table, f"old{n}")

    def expired_left() -> int:
        ((left,),) = sql(raw, f"SELECT COUNT(*) FROM `{recording.table}` WHERE `k` LIKE 'old%'")
        return int(left)

    async def awrite(n: int) -> None:
        await recording.aset(f"k{n}", b"v", HOUR)

    for n in range(3):
        if mode == "sync":
            recording.set(f"k{n}", b"v", HOUR)
        else:
            asyncio.run(awrite(n))
    assert expired_left() == 10 - 7
    assert recording.count() == 3


def test_reset_empties_the_table_in_batches_and_nothing_else(
    mysql_url: str, shared_table: str, new_table: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Recording, "reset_batch", 4)
    mine = Recording(mysql_url, table=shared_table)
    other = MySQLStorage(mysql_url, table=new_table())
    mine.statements = []
    try:
        mine.reset()
        for n in range(10):
            mine.set(f"k{n}", b"v", None)
        other.set("k0", b"theirs", None)
        mine.statements.clear()
        mine.reset()
        assert mine.statements == [mine._sql.reset(4)] * 3  # 4 + 4 + 2
        assert mine.count() == 0
        assert other.get("k0") == b"theirs"
    finally:
        mine.close()
        other.close()


def test_scan_and_count_cover_every_live_row_over_several_pages(
    storage: MySQLStorage, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MySQLStorage, "scan_page", 4)
    keys = [f"k{n:02}" for n in range(9)] + ["é", "ключ", "a\x00b", "\U0001f511"]
    for key in keys:
        storage.set(key, key.encode(), HOUR)
    for n in range(3):
        put_expired(raw, storage.table, f"gone{n}")
    assert storage.count() == len(keys)
    scanned = list(storage.scan())
    assert [key for key, _ in scanned] == sorted(keys, key=lambda k: k.encode())
    assert all(value == key.encode() for key, value in scanned)


# -- connections ---------------------------------------------------------------------------------


def _connection_id(storage: MySQLStorage) -> int:
    ((ident,),) = storage._execute("test", "SELECT CONNECTION_ID()", rows=True)
    return int(ident)


async def _aconnection_id(storage: MySQLStorage) -> int:
    ((ident,),) = await storage._aexecute("test", "SELECT CONNECTION_ID()", rows=True)
    return int(ident)


def _kill_and_wait(raw: Any, ident: int) -> None:
    """Kill a connection on the server, and wait until its socket has been closed."""
    sql(raw, f"KILL CONNECTION {ident}")
    deadline = time.monotonic() + 5
    while sql(raw, f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {ident}"):
        assert time.monotonic() < deadline, "the server did not end the killed connection"
        time.sleep(0.01)
    time.sleep(0.05)  # its FIN on the way to our socket


def test_a_connection_the_server_closed_is_never_handed_out(
    storage: MySQLStorage, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server restarted, or dropped idle connections (``wait_timeout``): the next call
    opens a new connection instead of failing on the dead one."""
    storage.set("k", b"v", HOUR)
    first = _connection_id(storage)
    _kill_and_wait(raw, first)
    assert storage.get("k") == b"v"
    assert _connection_id(storage) != first

    # The same without the check fails: this is what the check is for.
    import sessionkit_mysql._storage as module

    monkeypatch.setattr(module, "socket_has_news", lambda sock: False)
    _kill_and_wait(raw, _connection_id(storage))
    with pytest.raises(StorageError):
        storage.get("k")


def test_an_async_connection_the_server_closed_is_never_handed_out(
    storage: MySQLStorage, raw: Any
) -> None:
    async def run() -> None:
        await storage.aset("k", b"v", HOUR)
        first = await _aconnection_id(storage)
        await asyncio.to_thread(_kill_and_wait, raw, first)
        assert await storage.aget("k") == b"v"
        assert await _aconnection_id(storage) != first
        await storage.aclose()

    asyncio.run(run())


def test_connections_are_reused(mysql_url: str, shared_table: str) -> None:
    opened: list[int] = []

    class Counting(MySQLStorage):
        def _connect(self) -> Any:
            opened.append(1)
            return super()._connect()

    storage = Counting(mysql_url, table=shared_table)
    try:
        for n in range(20):
            storage.set(f"k{n}", b"v", HOUR)
            assert storage.get(f"k{n}") == b"v"
        assert len(opened) == 1
    finally:
        storage.reset()
        storage.close()


def test_a_full_pool_fails_a_call_after_pool_timeout(mysql_url: str, shared_table: str) -> None:
    """One connection, held by a slow statement: a second call waits ``pool_timeout`` for it,
    then fails, in either mode."""
    options = {"table": shared_table, "max_connections": 1, "pool_timeout": 0.2}

    async def run(storage: MySQLStorage) -> float:
        await storage.aget("warm")  # the table is checked: the slow statement is alone
        slow = asyncio.ensure_future(storage._aexecute("test", "SELECT SLEEP(0.6)", rows=True))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        with pytest.raises(StorageError, match="busy for pool_timeout"):
            await storage.aget("k")
        took = time.monotonic() - began
        await slow
        await storage.aclose()
        return took

    assert asyncio.run(run(MySQLStorage(mysql_url, **options))) < 0.2 + 0.5

    storage = MySQLStorage(mysql_url, **options)
    try:
        storage.get("warm")
        slow = threading.Thread(target=storage._execute, args=("test", "SELECT SLEEP(0.6)"))
        slow.start()
        time.sleep(0.1)
        began = time.monotonic()
        with pytest.raises(StorageError, match="busy for pool_timeout") as caught:
            storage.get("k")
        assert time.monotonic() - began < 0.2 + 0.5
        assert caught.value.__cause__ is not None
        slow.join()
        assert storage.get("k") is None  # the connection is free again
    finally:
        storage.close()


def test_a_deadlock_victim_is_run_again_and_other_errors_are_not(storage: MySQLStorage) -> None:
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
    assert storage._again(deadlock, 0) and storage._again(deadlock, 1)
    assert not storage._again(deadlock, 2)
    lock_wait = pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
    assert not storage._again(lock_wait, 0)
    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    assert not storage._again(lost, 0)


def test_a_server_error_is_chained_and_keeps_the_connection(
    storage: MySQLStorage,
) -> None:
    storage.set("k", b"v", HOUR)
    ident = _connection_id(storage)
    with pytest.raises(StorageError) as caught:
        storage._execute("test", "SELECT * FROM `no_such_table_here`", rows=True)
    assert isinstance(caught.value.__cause__, pymysql.err.ProgrammingError)
    assert _connection_id(storage) == ident


def test_statements_are_the_same_text_for_both_clients() -> None:
    """Keys and values reach the server as hexadecimal literals: no quote, backslash or
    character-set trick can end one early."""
    statements = Statements("t")
    text = statements.replace_if(b"'; DROP TABLE t; --\\", b"\x00\xff'", b"", HOUR)
    assert "X'273b2044524f50205441424c4520743b202d2d5c'" in text
    assert "X'00ff27'" in text and "X''" in text
    assert "INTERVAL 3600000000 MICROSECOND" in text


def _in_forked_child(storage: MySQLStorage, out: Any) -> None:
    try:
        first = _connection_id(storage)  # the child's first call: on which connection?
        storage.set("child", b"c", HOUR)
        out.put((first, storage.get("parent")))
    except BaseException as exc:
        out.put((0, repr(exc)))


def test_a_forked_worker_opens_connections_of_its_own(storage: MySQLStorage) -> None:
    """``gunicorn --preload``: the app (and its storage, with an open connection) is made in
    the parent, and each worker is forked from it. Two processes writing on one socket would
    read each other's replies."""
    storage.set("parent", b"p", HOUR)
    parent = _connection_id(storage)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_in_forked_child, args=(storage, out))
    child.start()
    try:
        child_connection, seen = out.get(timeout=30)
    finally:
        child.join(30)
    assert child.exitcode == 0
    assert seen == b"p"
    assert child_connection not in (0, parent)
    assert _connection_id(storage) == parent  # the parent's connection is intact
    assert storage.get("child") == b"c"
