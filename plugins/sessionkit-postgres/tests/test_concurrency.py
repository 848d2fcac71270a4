"""Workers of a pre-forking server start together, each storage making the table on first use.

PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is no guard against a concurrent creator: two
sessions both find the name free, both create, and the second fails on a unique index of the
catalog (``pg_type_typname_nsp_index``). Run without the storage's advisory lock, the race
below fails in most rounds on a two-core machine; with it, never.
"""

from __future__ import annotations

import multiprocessing
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

PROCESSES = 4
ROUNDS = 6


def _create_racer(
    url: str, schema: str, tables: list[str], barrier: Any, out: Any, guarded: bool
) -> None:
    """One process: for each table, wait for the others, then make it by a first call."""
    from sessionkit import StorageError
    from sessionkit_postgres import PostgresStorage, _sql

    if not guarded:  # the naive way, to show the race is real: no lock around the creation
        _sql._TEMPLATES["lock"] = "SELECT %(lock)s::bigint"
    for table in tables:
        storage = PostgresStorage(url, schema=schema, table=table)
        barrier.wait(timeout=30)
        try:
            storage.set("k", b"v", None)
            out.put((table, "ok"))
        except StorageError as exc:
            out.put((table, f"{exc} / {exc.__cause__!r}"))
        finally:
            storage.close()


def race_to_create(url: str, schema: str, *, guarded: bool = True) -> dict[str, list[str]]:
    """Race ``PROCESSES`` processes to make ``ROUNDS`` new tables; the failures, by table."""
    tables = [f"race_{uuid.uuid4().hex[:10]}" for _ in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")  # fork would copy the pools' threads
    barrier = context.Barrier(PROCESSES)
    out = context.Queue()
    racers = [
        context.Process(target=_create_racer, args=(url, schema, tables, barrier, out, guarded))
        for _ in range(PROCESSES)
    ]
    for racer in racers:
        racer.start()
    try:
        results = [out.get(timeout=60) for _ in range(PROCESSES * ROUNDS)]
    finally:
        for racer in racers:
            racer.join(30)
    assert [racer.exitcode for racer in racers] == [0] * PROCESSES
    failures: dict[str, list[str]] = {}
    for table, outcome in results:
        if outcome != "ok":
            failures.setdefault(table, []).append(outcome)
    return failures


def test_processes_creating_the_table_at_once_all_succeed(
    postgres_url: str, postgres_schema: str
) -> None:
    assert race_to_create(postgres_url, postgres_schema) == {}
