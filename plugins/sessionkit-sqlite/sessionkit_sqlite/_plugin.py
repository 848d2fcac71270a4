"""Entry point of the SQLite plugin: describes the backend; sqlite3 is imported only on open.

``storage=`` names the storage class as text: it is imported when a URL first asks for it.
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="sqlite",
            schemes=("sqlite",),
            storage="sessionkit_sqlite._storage:SQLiteStorage",
            options="sessionkit_sqlite._options:SQLiteOptions",
            description="SQLite file (or :memory:) through the standard library's sqlite3",
        )
    ]
