"""Entry point of the PostgreSQL plugin: describes the backend; psycopg is imported only on open.

``storage=`` names a loader that imports the storage class when a URL first asks for it, and
says what to install when psycopg cannot load libpq (see ``_driver``).
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl

from ._driver import load_storage_class


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="postgres",
            schemes=("postgresql", "postgres"),
            storage=load_storage_class,
            options="sessionkit_postgres._options:PostgresOptions",
            description="PostgreSQL table; expiry judged by the database server's clock",
        )
    ]
