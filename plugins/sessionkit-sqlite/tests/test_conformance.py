"""The SQLite storage against the shared conformance suite: a WAL file and ``:memory:``, and
``take`` the way it runs on a SQLite older than 3.35 (no ``RETURNING``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_sqlite import SQLiteStorage

#: URLs the plugin must refuse: a misspelt option, values out of range, a name that is no table.
BAD_URLS = (
    "sqlite://:memory:?tabel=sessions",
    "sqlite://:memory:?purge_batch=0",
    "sqlite://:memory:?busy_timeout=-1",
    "sqlite://:memory:?table=no;such",
)


def _dropped(storage: SQLiteStorage) -> SQLiteStorage:
    """``storage`` with its table dropped behind its back: every statement then fails in the
    driver (``no such table``), as it would after a bad migration or a deleted schema."""
    with storage._connection() as conn:
        conn.execute(f"DROP TABLE {storage.options.table}")
    return storage


class TestSQLiteFileStorage(StorageConformance):
    """Namespaces are tables of one database file, as several apps sharing a file would be."""

    clock_injectable = True
    atomic = True
    creating = True
    bad_urls = BAD_URLS
    processes_share_storage = True

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.database = tmp_path / "sessions.db"

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return SQLiteStorage(self.database, table=namespace, clock=clock)

    def make_broken_storage(self, namespace: str) -> Storage:
        return _dropped(SQLiteStorage(self.database, table=namespace))

    def storage_url(self, namespace: str) -> str:
        return f"sqlite:///{self.database.resolve()}?table={namespace}"

    def drop_namespace(self, namespace: str) -> None:
        with SQLiteStorage(self.database, table=namespace)._connection() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {namespace}")


class TestSQLiteMemoryStorage(StorageConformance):
    """Each ``:memory:`` storage is its own database, shared by the threads that use it."""

    clock_injectable = True
    atomic = True
    creating = True
    bad_urls = BAD_URLS

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return SQLiteStorage(":memory:", table=namespace, clock=clock)

    def make_broken_storage(self, namespace: str) -> Storage:
        return _dropped(SQLiteStorage(":memory:", table=namespace))

    def storage_url(self, namespace: str) -> str:
        return f"sqlite://:memory:?table={namespace}"


class _SQLiteWithoutReturning(SQLiteStorage):
    take_returning = False


class TestSQLiteWithoutReturning(TestSQLiteFileStorage):
    """``take`` as a transaction of two ``DELETE`` statements, as on SQLite < 3.35."""

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return _SQLiteWithoutReturning(self.database, table=namespace, clock=clock)

    def storage_url(self, namespace: str) -> str | None:
        return None  # a URL opens the plain class; this one races in threads only

    processes_share_storage = False
