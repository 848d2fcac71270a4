"""Entry point of the SQLite plugin: describes the backend; sqlite3 is imported only on open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionkit import Backend, Storage, hookimpl


def _open(url: str, options: Mapping[str, Any]) -> Storage:
    from ._storage import SQLiteStorage

    return SQLiteStorage.from_url(url, options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="sqlite",
            schemes=("sqlite",),
            open=_open,
            description="SQLite file (or :memory:) through the standard library's sqlite3",
        )
    ]
