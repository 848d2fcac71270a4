"""The SQLite storage against the shared conformance suite: a WAL file and ``:memory:``, and
``take`` the way it runs on a SQLite older than 3.35 (no ``RETURNING``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_sqlite import SQLiteStorage


class TestSQLiteFileStorage(StorageConformance):
    """Namespaces are tables of one database file, as several apps sharing a file would be."""

    clock_injectable = True
    atomic = True
    creating = True

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.database = tmp_path / "sessions.db"

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return SQLiteStorage(self.database, table=namespace, clock=clock)


class TestSQLiteMemoryStorage(StorageConformance):
    """Each ``:memory:`` storage is its own database, shared by the threads that use it."""

    clock_injectable = True
    atomic = True
    creating = True

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return SQLiteStorage(":memory:", table=namespace, clock=clock)


class _SQLiteWithoutReturning(SQLiteStorage):
    take_returning = False


class TestSQLiteWithoutReturning(TestSQLiteFileStorage):
    """``take`` as a transaction of two ``DELETE`` statements, as on SQLite < 3.35."""

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return _SQLiteWithoutReturning(self.database, table=namespace, clock=clock)
