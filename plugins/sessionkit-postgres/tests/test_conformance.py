"""The PostgreSQL storage against the shared conformance suite (the server's clock, atomic)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from sessionkit import Storage
from sessionkit.testing import StorageConformance, closed_port
from sessionkit_postgres import PostgresStorage

pytestmark = pytest.mark.postgres


class TestPostgresStorage(StorageConformance):
    # Expiry is judged by the database server's clock (now() in every statement): the suite
    # cannot move it, and waits in real time.
    clock_injectable = False
    conditional = True
    atomic = True
    creating = True
    processes_share_storage = True
    bad_urls = (
        "postgresql://127.0.0.1:1/db?tabel=sessions",  # misspelt
        "postgresql://127.0.0.1:1/db?table=",
        "postgresql://127.0.0.1:1/db?table=" + "x" * 64,  # PostgreSQL would truncate it
        "postgresql://127.0.0.1:1/db?table=a%00b",
        "postgresql://127.0.0.1:1/db?schema=",
        "postgresql://127.0.0.1:1/db?statement_timeout=-1",
        "postgresql://127.0.0.1:1/db?pool_timeout=0",
        "postgresql://127.0.0.1:1/db?connect_timeout=0",  # libpq: wait for ever
        "postgresql://127.0.0.1:1/db?pool_min_size=4&pool_max_size=2",
        "postgresql://127.0.0.1:1/db?purge_batch=0",
        "postgresql://127.0.0.1:1/db?sslmode=requir",
        "postgresql://127.0.0.1:1/db?replication=database",
        "postgres://127.0.0.1:99999/db",
        "postgresql://127.0.0.1:1/db?table=a&table=b",
    )

    @pytest.fixture(autouse=True)
    def _server(
        self, postgres_url: str, postgres_schema: str, raw: psycopg.Connection[tuple[object, ...]]
    ) -> None:
        self.url = postgres_url
        self.schema = postgres_schema
        self.raw = raw

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is None
        return PostgresStorage(self.url, schema=self.schema, table=namespace)

    def make_broken_storage(self, namespace: str) -> Storage:
        url = f"postgresql://postgres@127.0.0.1:{closed_port()}/db?pool_timeout=0.5"
        return PostgresStorage(url, table=namespace)

    def storage_url(self, namespace: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}schema={quote(self.schema)}&table={quote(namespace)}"

    def drop_namespace(self, namespace: str) -> None:
        name = sql.Identifier(self.schema, namespace)
        self.raw.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
