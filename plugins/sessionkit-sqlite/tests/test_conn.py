"""Driver access (Fiber's ``Conn()``): a pooled sqlite3 connection for an operator's own
statements, on the file and table the storage uses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sessionkit_sqlite import SQLiteStorage


def test_conn_sees_the_storages_rows(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "s.db")
    try:
        storage.set("k", b"v", timedelta(minutes=1))
        with storage.conn() as connection:
            rows = connection.execute(f'SELECT key FROM "{storage.options.table}"').fetchall()
        assert rows == [("k",)]
        assert storage.get("k") == b"v"  # the connection went back; the storage works on
    finally:
        storage.close()
