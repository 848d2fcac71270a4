"""Fixtures for the PostgreSQL plugin's tests: a table per test, raw access, a storage.

Every table of a run lives in the run's own schema (``postgres_schema``), dropped with them
when the run ends, so the tests may share the machine's PostgreSQL with other users.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from sessionkit_postgres import PostgresStorage


@pytest.fixture(scope="session")
def raw(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain autocommit connection to the test server, for looking behind the storage."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def table() -> str:
    """A table name of this test's own (in the run's schema)."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def storage(postgres_url: str, postgres_schema: str, table: str) -> Iterator[PostgresStorage]:
    """A storage on this test's table, as ``open_storage`` would build it."""
    storage = PostgresStorage(postgres_url, schema=postgres_schema, table=table)
    yield storage
    storage.close()
