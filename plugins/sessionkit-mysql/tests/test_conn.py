"""Driver access (Fiber's ``Conn()``): a pooled PyMySQL connection for an operator's own
statements, on the server and table the storage uses."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from sessionkit import StorageError
from sessionkit_mysql import MySQLStorage

pytestmark = pytest.mark.mysql


def test_conn_sees_the_storages_rows(storage: MySQLStorage) -> None:
    key = uuid.uuid4().hex
    storage.set(key, b"v", timedelta(minutes=1))
    with storage.conn() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM `{storage.options.table}` WHERE k = %s", (key,))
        assert cursor.fetchone() == (1,)
    assert storage.get(key) == b"v"  # the connection went back; the storage works on


def test_conn_of_a_closed_storage_is_a_storage_error(storage: MySQLStorage) -> None:
    storage.close()
    with pytest.raises(StorageError), storage.conn():
        pass
