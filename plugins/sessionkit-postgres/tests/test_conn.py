"""Driver access (Fiber's ``Conn()``): a pooled psycopg connection for an operator's own
statements, on the server and table the storage uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg import sql

from sessionkit import StorageError
from sessionkit_postgres import PostgresStorage

pytestmark = pytest.mark.postgres


def test_conn_sees_the_storages_rows(storage: PostgresStorage) -> None:
    storage.set("k", b"v", timedelta(minutes=1))
    table = sql.Identifier(storage.options.schema or "public", storage.options.table)
    with storage.conn() as connection:
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    assert row == (1,)
    assert storage.get("k") == b"v"  # the connection went back; the storage works on


def test_conn_of_a_closed_storage_is_a_storage_error(storage: PostgresStorage) -> None:
    storage.close()
    with pytest.raises(StorageError), storage.conn():
        pass
