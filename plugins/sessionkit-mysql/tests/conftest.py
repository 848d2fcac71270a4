"""Fixtures for the MySQL plugin's tests: raw access, tables of this run, a storage per test.

The tests may share a server with other users (the machine's MariaDB), so every table they make
is named with a prefix unique to this run, and every such table is dropped when the run ends.
Tests that need a fresh table get one; the others reuse a table emptied for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessionkit_mysql import MySQLStorage
from tests._server_mysql import _connect
from tests._server_mysql import run_sql as sql

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="session")
def raw(mysql_url: str) -> Iterator[Any]:
    """A plain PyMySQL connection to the test database, for looking behind the storage's back."""
    conn = _connect(mysql_url)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def table_root(raw: Any) -> Iterator[str]:
    """The prefix of every table this run makes; they are all dropped at the end."""
    root = f"skt{uuid.uuid4().hex[:8]}_"
    yield root
    for (name,) in sql(raw, f"SHOW TABLES LIKE '{root}%'"):
        sql(raw, f"DROP TABLE IF EXISTS `{name}`")


@pytest.fixture
def new_table(table_root: str) -> Callable[[], str]:
    """Names for tables of this run (``new_table()`` gives another each time)."""
    return lambda: f"{table_root}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def shared_table(mysql_url: str, table_root: str) -> str:
    """One table made once for the run: tests that need an empty table, not a new one, get it
    emptied (``storage``)."""
    name = f"{table_root}shared"
    storage = MySQLStorage(mysql_url, table=name)
    storage.reset()  # makes it
    storage.close()
    return name


@pytest.fixture
def storage(mysql_url: str, shared_table: str) -> Iterator[MySQLStorage]:
    """A storage built from the URL, as ``open_storage`` builds it, on the emptied shared table."""
    storage = MySQLStorage(mysql_url, table=shared_table)
    storage.reset()
    yield storage
    storage.close()
