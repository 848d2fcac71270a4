"""What the SQLite storage promises beyond the shared suite: URLs, options, WAL, purging,
errors and threads."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionkit import ConfigError, StorageError, open_storage
from sessionkit.testing import FakeClock
from sessionkit_sqlite import SQLiteStorage
from sessionkit_sqlite._options import MAX_BUSY_TIMEOUT, MAX_PURGE_BATCH
from sessionkit_sqlite._storage import HAS_RETURNING

HOUR = timedelta(hours=1)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def opened() -> Iterator[Callable[..., Any]]:
    """Open storages (by URL or by constructor) and close them all at teardown."""
    storages: list[Any] = []

    def open_(target: str | Path, **options: Any) -> Any:
        if isinstance(target, str) and target.startswith("sqlite:"):
            storage = open_storage(target, **options)
        else:
            storage = SQLiteStorage(target, **options)
        storages.append(storage)
        return storage

    yield open_
    for storage in storages:
        storage.close()


def raw_rows(path: Path, table: str = "sessions") -> int:
    """Count the rows in ``table``, expired ones included, through a connection of our own."""
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(count)


# -- URLs and options ----------------------------------------------------------------------


def test_relative_url_opens_a_file_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: Callable[..., Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = opened("sqlite:///sub%20dir.db")
    storage.set("k", b"v", None)
    assert (tmp_path / "sub dir.db").exists()


def test_absolute_url_takes_four_slashes(database: Path, opened: Callable[..., Any]) -> None:
    storage = opened(f"sqlite:///{database}")  # database is absolute: "sqlite:////tmp/..."
    storage.set("k", b"v", None)
    assert storage.options.path == str(database)
    assert raw_rows(database) == 1


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:"])
def test_memory_urls(url: str, opened: Callable[..., Any]) -> None:
    storage = opened(url)
    assert storage.options.in_memory
    storage.set("k", b"v", None)
    assert storage.get("k") == b"v"


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:", "sqlite:///?table=x"])
def test_a_url_without_a_file_is_refused_not_a_private_memory_database(url: str) -> None:
    """An empty path would open a throw-away in-memory database: every session lost silently
    at a restart, none shared between workers. Only ``:memory:`` asks for that."""
    with pytest.raises(ConfigError, match="sqlite://:memory:") as info:
        open_storage(url)
    assert info.value.field == "storage"
    assert "name a file" in str(info.value)


def test_memory_database_is_shared_by_threads(opened: Callable[..., Any]) -> None:
    storage = opened("sqlite://:memory:")
    storage.set("k", b"v", None)
    seen: list[bytes | None] = []
    thread = threading.Thread(target=lambda: seen.append(storage.get("k")))
    thread.start()
    thread.join()
    assert seen == [b"v"]
    assert asyncio.run(storage.aget("k")) == b"v"  # the async twin runs in a worker thread


def test_query_options_are_applied_and_keywords_win(
    database: Path, opened: Callable[..., Any]
) -> None:
    storage = opened(f"sqlite:///{database}?table=app_one&purge_batch=7&busy_timeout=0.5")
    assert (storage.options.table, storage.options.purge_batch) == ("app_one", 7)
    assert storage.options.busy_timeout == 0.5
    other = opened(f"sqlite:///{database}?table=app_one", table="app_two")
    assert other.options.table == "app_two"


@pytest.mark.parametrize(
    "table", ["1sessions", "", "sessions; DROP TABLE x", 'a"b', "s" * 64, "séance"]
)
def test_table_must_be_an_identifier(table: str, database: Path) -> None:
    with pytest.raises(ConfigError, match="table") as info:
        SQLiteStorage(database, table=table)
    assert info.value.field == "table"
    assert not database.exists(), "nothing is opened before the options are valid"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("purge_batch=0", "purge_batch"),
        ("purge_batch=many", "purge_batch"),
        ("busy_timeout=-1", "busy_timeout"),
        ("busy_timeout=nan", "busy_timeout"),
        ("clock=now", "clock"),
        ("tabel=x", "storage"),
    ],
)
def test_bad_option_raises_config_error_naming_the_field(query: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_storage(f"sqlite://:memory:?{query}")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"busy_timeout": "1e308"}, "busy_timeout"),  # OverflowError at the first connection
        ({"busy_timeout": 1e308}, "busy_timeout"),
        ({"busy_timeout": "inf"}, "busy_timeout"),
        ({"busy_timeout": MAX_BUSY_TIMEOUT + 1}, "busy_timeout"),
        ({"purge_batch": str(10**30)}, "purge_batch"),  # OverflowError at the first purge
        ({"purge_batch": 2**63}, "purge_batch"),
        ({"purge_batch": MAX_PURGE_BATCH + 1}, "purge_batch"),
    ],
)
def test_numeric_options_out_of_range_are_refused_at_open(
    options: dict[str, Any], field: str, database: Path
) -> None:
    """A value that would only fail later (at the first connection, the first purge) is a
    ConfigError naming the option, before any file is touched; by URL and by keyword."""
    query = "&".join(f"{name}={value}" for name, value in options.items())
    with pytest.raises(ConfigError) as info:
        open_storage(f"sqlite:///{database}?{query}")
    assert info.value.field == field
    with pytest.raises(ConfigError) as info:
        SQLiteStorage(database, **options)
    assert info.value.field == field
    assert not database.exists()


def test_numeric_options_at_their_limits_work(
    database: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SQLiteStorage, "purge_every", 1)  # every write purges a batch
    storage = opened(
        f"sqlite:///{database}?busy_timeout={MAX_BUSY_TIMEOUT}&purge_batch={MAX_PURGE_BATCH}"
    )
    storage.set("k", b"v", HOUR)
    assert storage.purge_expired() == 0
    assert storage.get("k") == b"v"
    assert opened(database, busy_timeout=0, purge_batch=1).get("k") == b"v"


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite:x.db"])
def test_malformed_url_raises_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_storage(url)


def test_entry_point_does_not_import_sqlite3() -> None:
    code = (
        "import sys, sessionkit\n"
        "names = [b.backend.name for b in sessionkit.available_backends()]\n"
        "assert 'sqlite' in names, names\n"
        "assert 'sqlite3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the file ------------------------------------------------------------------------------


def test_file_database_uses_wal(database: Path, opened: Callable[..., Any]) -> None:
    opened(database)
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_new_database_files_are_private(
    database: Path, opened: Callable[..., Any], permissive_umask: None
) -> None:
    """They hold live session ids: the database, its WAL and its shared-memory file are
    0600 even under a umask of 0 (SQLite alone makes them 0644: readable by every user)."""
    storage = opened(database)
    storage.set("k", b"v", HOUR)  # the WAL and -shm exist once something is written
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == {
        path.name: "0o600" for path in files
    }


def test_an_existing_database_keeps_its_mode_with_a_warning(
    database: Path,
    opened: Callable[..., Any],
    permissive_umask: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner's choice (a group sharing it, a backup user) is left alone, but a file that
    other users may read is reported at every open."""
    sqlite3.connect(database).close()
    database.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sessionkit.sqlite"):
        storage = opened(database)
    storage.set("k", b"v", HOUR)
    assert stat.S_IMODE(database.stat().st_mode) == 0o644
    assert [r.getMessage() for r in caplog.records] == [
        f"{database} is readable by other users (mode 644) and holds live session ids; "
        "restrict it (chmod 600) if no other user needs it"
    ]
    storage.close()  # the last connection removes the -wal and -shm files
    caplog.clear()
    database.chmod(0o660)  # shared with a group on purpose: nothing to say
    with caplog.at_level(logging.WARNING, logger="sessionkit.sqlite"):
        opened(database)
    assert caplog.records == []


def test_sessions_outlive_the_storage_object(database: Path, opened: Callable[..., Any]) -> None:
    first = opened(database)
    first.set("k", b"v", HOUR)
    first.close()
    assert opened(database).get("k") == b"v"


def test_reset_leaves_other_tables_of_the_file(database: Path, opened: Callable[..., Any]) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE app_data (x)")
        conn.execute("INSERT INTO app_data VALUES (1)")
    storage = opened(database)
    storage.set("k", b"v", None)
    storage.reset()
    assert raw_rows(database) == 0
    assert raw_rows(database, "app_data") == 1


# -- expiry and purging --------------------------------------------------------------------


def test_write_purges_one_bounded_batch_of_expired_rows(
    database: Path, opened: Callable[..., Any]
) -> None:
    clock = FakeClock()
    storage = opened(database, purge_batch=10, clock=clock)
    every = SQLiteStorage.purge_every
    for i in range(50):
        storage.set(f"old{i}", b"x", timedelta(seconds=1))
    clock.advance(2)
    for i in range(every - 51):  # up to the write just before the purge
        storage.set(f"live{i}", b"y", HOUR)
    assert raw_rows(database) == 50 + every - 51, "no purge before purge_every writes"
    storage.set("trigger", b"y", HOUR)
    assert raw_rows(database) == 50 + every - 50 - 10, "one purge deletes at most purge_batch"
    assert storage.count() == every - 50


def test_purge_uses_the_expiry_index(database: Path, opened: Callable[..., Any]) -> None:
    """A purge is a range scan of the index, never a scan of every session."""
    storage = opened(database)
    with sqlite3.connect(database) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + storage._sql.purge, {"now": 0.0, "limit": 1}
        ).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING COVERING INDEX sessions_expires_at (expires_at<?)" in details, details


def test_purge_expired_deletes_every_expired_row_and_nothing_else(
    database: Path, opened: Callable[..., Any]
) -> None:
    clock = FakeClock()
    storage = opened(database, purge_batch=7, clock=clock)
    for i in range(30):
        storage.set(f"old{i}", b"x", timedelta(seconds=1))
    storage.set("forever", b"y", None)
    storage.set("later", b"y", HOUR)
    clock.advance(2)
    assert storage.purge_expired() == 30  # five batches, the last one short
    assert storage.purge_expired() == 0
    assert raw_rows(database) == 2
    assert storage.count() == 2
    assert asyncio.run(storage.apurge_expired()) == 0
    assert asyncio.run(storage.acount()) == 2


# -- take and replace_if -------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param(True, marks=pytest.mark.skipif(not HAS_RETURNING, reason="SQLite < 3.35")),
        False,
    ],
    ids=["returning", "transaction"],
)
def returning(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """``take`` with ``DELETE ... RETURNING`` (where this SQLite has it), then without."""
    way: bool = request.param
    monkeypatch.setattr(SQLiteStorage, "take_returning", way)
    return way


def test_take_removes_an_expired_remnant_too(
    database: Path,
    opened: Callable[..., Any],
    returning: bool,
) -> None:
    clock = FakeClock()
    storage = opened(database, clock=clock)
    storage.set("expired", b"x", timedelta(seconds=1))
    storage.set("live", b"y", HOUR)
    clock.advance(2)
    assert storage.take("expired") is False
    assert raw_rows(database) == 1, "the expired row is gone, not left for the purge"
    assert storage.take("live") is True
    assert raw_rows(database) == 0


def test_take_statements(
    database: Path,
    opened: Callable[..., Any],
    returning: bool,
) -> None:
    """One ``DELETE ... RETURNING``, or one short write transaction on an older SQLite."""
    storage = opened(database)
    storage.set("k", b"v", HOUR)
    statements: list[str] = []
    with storage._connection() as conn:
        conn.set_trace_callback(statements.append)
    assert storage.take("k") is True
    with storage._connection() as conn:
        conn.set_trace_callback(None)
    if returning:
        assert len(statements) == 1
        assert "RETURNING" in statements[0]
    else:
        assert statements[0] == "BEGIN IMMEDIATE"
        assert statements[-1] == "COMMIT"
        assert len(statements) == 4


async def test_async_take_on_a_database_locked_elsewhere_waits_in_a_thread(
    database: Path,
    opened: Callable[..., Any],
    returning: bool,
) -> None:
    """The inline attempt fails on the lock having deleted nothing, so the retry in a
    thread still finds the live record and says so."""
    storage = opened(database, busy_timeout=5.0)
    await storage.aset("k", b"v", HOUR)
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
    assert await storage.atake("k") is True
    other.close()
    assert await storage.aget("k") is None
    assert raw_rows(database) == 0


def test_create_is_one_statement(database: Path, opened: Callable[..., Any]) -> None:
    """No read-then-write gap: one ``INSERT ... ON CONFLICT ... WHERE`` whose change count is
    the answer, whether the key is new, live or expired."""
    clock = FakeClock()
    storage = opened(database, clock=clock)
    storage.set("live", b"someone's", HOUR)
    storage.set("expired", b"old", timedelta(seconds=1))
    clock.advance(2)
    statements: list[str] = []
    with storage._connection() as conn:
        conn.set_trace_callback(statements.append)
    assert storage.create("new", b"mine", HOUR) is True
    assert storage.create("live", b"mine", HOUR) is False
    assert storage.create("expired", b"mine", HOUR) is True
    with storage._connection() as conn:
        conn.set_trace_callback(None)
    assert len(statements) == 3
    assert all(sql.startswith('INSERT INTO "sessions"') for sql in statements), statements
    assert [storage.get(k) for k in ("new", "live", "expired")] == [b"mine", b"someone's", b"mine"]
    assert raw_rows(database) == 3


def test_create_races_have_one_winner(database: Path, opened: Callable[..., Any]) -> None:
    """Threads on two storages of one file (two connections, as two worker processes) create
    the same keys at once: exactly one create per key succeeds, and its value stays."""
    storages = [opened(database, busy_timeout=10), opened(database, busy_timeout=10)]
    wins: list[tuple[str, int]] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(40):
            if storages[worker % 2].create(f"id{i}", f"{worker}".encode(), HOUR):
                wins.append((f"id{i}", worker))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(key for key, _ in wins) == sorted(f"id{i}" for i in range(40))
    for key, worker in wins:
        assert storages[0].get(key) == f"{worker}".encode()


def test_replace_if_compares_the_whole_blob(opened: Callable[..., Any]) -> None:
    storage = opened(":memory:")
    storage.set("k", b"\x00ab", HOUR)
    assert storage.replace_if("k", b"\x00a", b"x", HOUR) is False
    assert storage.replace_if("k", b"\x00ab\x00", b"x", HOUR) is False
    assert storage.replace_if("k", b"\x00AB", b"x", HOUR) is False
    assert storage.replace_if("k", b"\x00ab", b"", None) is True
    assert storage.replace_if("k", b"", b"y", HOUR) is True
    assert storage.get("k") == b"y"


def test_count_ignores_expired_rows(opened: Callable[..., Any]) -> None:
    clock = FakeClock()
    storage = opened(":memory:", clock=clock)
    storage.set("short", b"x", timedelta(seconds=1))
    storage.set("long", b"x", HOUR)
    assert storage.count() == 2
    clock.advance(2)
    assert storage.count() == 1


def test_scan_walks_live_keys_across_pages_while_the_caller_deletes(
    opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SQLiteStorage, "scan_page", 3)
    clock = FakeClock()
    storage = opened(":memory:", clock=clock)
    live = ["", "a", "a\x00", "a\x00b", "ab", "b", "ключ", "z*", "zz", "zzz"]
    for key in live:
        storage.set(key, key.encode(), HOUR)
    storage.set("expired", b"x", timedelta(seconds=1))
    clock.advance(2)
    assert [key for key, _ in storage.scan()] == sorted(live)  # no repeats, no gaps
    seen = []
    for key, value in storage.scan():
        assert value == key.encode()
        seen.append(key)
        storage.delete(key)  # the walk must survive this
    assert seen == sorted(live)
    assert storage.count() == 0


def test_storage_offers_the_operator_abilities() -> None:
    """``sessionkit stats`` and ``sessionkit purge`` find these by isinstance."""
    from sessionkit._abilities import CountableStorage, PurgeableStorage, ScannableStorage

    storage = SQLiteStorage()
    try:
        for ability in (CountableStorage, PurgeableStorage, ScannableStorage):
            assert isinstance(storage, ability), ability.__name__
    finally:
        storage.close()


# -- errors --------------------------------------------------------------------------------


def test_read_only_database_raises_storage_error(
    database: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = opened(database)
    first.set("k", b"v", None)
    first.close()
    database.chmod(0o444)
    if os.access(database, os.W_OK):  # root ignores file modes: have SQLite enforce it
        connect = sqlite3.connect

        def read_only(path: str, **kwargs: Any) -> sqlite3.Connection:
            return connect(f"file:{path}?mode=ro", uri=True, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", read_only)
    storage = opened(database)
    assert storage.get("k") == b"v"
    with pytest.raises(StorageError, match="readonly") as info:
        storage.set("k", b"w", None)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_missing_directory_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open") as info:
        SQLiteStorage(tmp_path / "missing" / "sessions.db")
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_driver_errors_are_chained_and_never_name_the_key(
    database: Path, opened: Callable[..., Any]
) -> None:
    storage = opened(database)
    with sqlite3.connect(database) as conn:
        conn.execute("DROP TABLE sessions")
    for call in (
        lambda: storage.get("secret-id"),
        lambda: storage.set("secret-id", b"v", None),
        lambda: storage.touch("secret-id", HOUR),
        lambda: asyncio.run(storage.areplace("secret-id", b"v", HOUR)),
        lambda: storage.replace_if("secret-id", b"v", b"w", HOUR),
        lambda: storage.take("secret-id"),
        lambda: asyncio.run(storage.atake("secret-id")),
    ):
        with pytest.raises(StorageError, match="no such table") as info:
            call()
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert "secret-id" not in str(info.value)


def test_calls_after_close_raise_storage_error(opened: Callable[..., Any]) -> None:
    storage = opened(":memory:")
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        storage.get("k")


# -- threads -------------------------------------------------------------------------------


def test_threads_hammering_two_storages_on_one_file(
    database: Path, opened: Callable[..., Any]
) -> None:
    """Threads share one storage; a second storage (another connection, as another process
    would hold) writes the same file at the same time; nothing fails or gets lost."""
    storages = [opened(database, busy_timeout=10), opened(database, busy_timeout=10)]
    errors: list[BaseException] = []
    rounds = 150

    def work(worker: int) -> None:
        storage = storages[worker % 2]
        key = f"worker{worker}"
        try:
            for i in range(rounds):
                value = f"{worker}:{i}".encode()
                storage.set(key, value, HOUR)
                assert storage.get(key) == value
                assert storage.touch(key, HOUR)
                assert storage.replace(key, value + b"!", HOUR)
                storage.set("shared", value, HOUR)
                if i % 10 == 0:
                    storage.delete(f"{key}-gone")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for worker in range(16):
        assert storages[0].get(f"worker{worker}") == f"{worker}:{rounds - 1}!".encode()
    assert storages[1].get("shared") is not None


def test_threads_use_connections_of_their_own_and_few_stay_idle(
    database: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent calls each get a connection (a read never waits for another call), and
    after a burst no more than ``max_idle`` connections stay open."""
    from sessionkit_sqlite._storage import _Pool

    monkeypatch.setattr(_Pool, "max_idle", 3)
    storage = opened(database)
    storage.set("k", b"v", HOUR)
    barrier = threading.Barrier(8)
    inside = threading.Barrier(8, timeout=5)

    results: list[object] = []

    def read(conn: Any, key: str) -> Any:
        inside.wait()  # all eight calls hold a connection at once
        return storage._get(conn, key)

    def work() -> None:
        barrier.wait()
        try:
            results.append(storage._sync(read, "k", write=False))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"v"] * 8
    assert len(storage._pool._idle) == 3


async def test_async_twins_run_inline_when_nothing_waits(
    database: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker thread for an uncontended call: the hop would cost more than the statement."""
    storage = opened(database)
    hops: list[Any] = []
    real = asyncio.to_thread

    async def counting(fn: Any, *args: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    await storage.aset("k", b"v", HOUR)
    assert await storage.areplace("k", b"w", HOUR) is True
    assert await storage.aget("k") == b"w"
    assert await storage.atouch("k", HOUR) is True
    assert await storage.areplace_if("k", b"w", b"x", HOUR) is True
    assert await storage.atake("k") is True
    assert await storage.atake("k") is False
    await storage.adelete("k")
    assert await storage.aget("k") is None
    assert hops == []


async def test_async_write_to_a_database_locked_elsewhere_waits_in_a_thread(
    database: Path, opened: Callable[..., Any]
) -> None:
    """Another process holds the write lock: the inline attempt fails at once, the call waits
    in a worker thread (the event loop keeps running) and succeeds when the lock is gone."""
    storage = opened(database, busy_timeout=5.0)
    await storage.aset("k", b"before", HOUR)
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as another process would hold it
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
    await storage.aset("k", b"after", HOUR)
    beat.cancel()
    assert await storage.aget("k") == b"after"
    assert ticks >= 10  # the loop ran while the write waited for the lock
    # The inline attempts left their connection at a busy timeout of 0; a sync call after
    # them waits for the lock again rather than failing at once.
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, other.execute, ("COMMIT",))
    timer.start()
    storage.set("k", b"sync", HOUR)
    timer.join()
    other.close()
    assert storage.get("k") == b"sync"


async def test_async_call_while_a_thread_holds_the_storage_goes_to_a_thread(
    database: Path, opened: Callable[..., Any]
) -> None:
    storage = opened(database)
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with storage._connection():
            held.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    held.wait(5)
    asyncio.get_running_loop().call_later(0.1, release.set)
    await storage.aset("k", b"v", HOUR)  # would deadlock the loop if it waited inline
    worker.join()
    assert storage.get("k") == b"v"
