"""The SQL of a PostgreSQL storage, for one table.

The table (and schema, and the index) names are the only names in a statement that come from
configuration, and they enter it as :class:`psycopg.sql.Identifier` (always quoted, so any
text is a name and never SQL); no statement is built with string formatting. Keys, values,
TTLs and limits are always bound parameters, so no client text becomes SQL either.

The table::

    key         bytea PRIMARY KEY      -- the key's UTF-8 bytes: compared byte for byte
    value       bytea NOT NULL
    expires_at  timestamptz            -- NULL: no expiry

Keys are ``bytea`` rather than ``text``: equality and order are then byte-wise, whatever the
database's encoding and collation (a ``text`` key would be compared through the collation,
refuse NUL, and fail for characters a non-UTF-8 database cannot hold).

**One clock: the server's.** Every expiry is written as ``now() + ttl`` and judged against
``now()``, in the statement, on the database server. The application servers' clocks never
enter: two app servers whose clocks disagree by a minute still agree on which sessions live.
(In autocommit, each statement is its own transaction, so ``now()`` is the statement's start.)
A TTL goes in as seconds (``float8``, microseconds kept): never rounded down to whole seconds.
``LIVE`` is the test every read and conditional write applies, so a record is absent the
moment it expires, whatever clean-up has run.

Every operation is one statement:

========================  ===========================================================================
``get``                   ``SELECT value ... WHERE key = $1 AND <live>``
``set``                   ``INSERT ... ON CONFLICT (key) DO UPDATE`` (an upsert)
``create``                the same upsert, its update guarded by ``WHERE <the stored row expired>``:
                          one row changed (inserted, or an expired one overwritten) or none (a live
                          row holds the key, and is left alone)
``replace``               ``UPDATE ... WHERE key = $1 AND <live>``
``replace_if``            ``UPDATE ... WHERE key = $1 AND value = $2 AND <live>``
``touch``                 ``UPDATE ... SET expires_at = ... WHERE key = $1 AND <live>``
``take``                  ``DELETE ... WHERE key = $1 RETURNING <was it live>``
``delete``                ``DELETE ... WHERE key = $1``
``reset``                 ``DELETE`` of at most ``purge_batch`` rows, repeated until none is left
``purge_expired``         ``DELETE`` of at most ``purge_batch`` expired rows (locked with
                          ``SKIP LOCKED``, found through the index), repeated
``count`` / ``scan``      ``SELECT`` of the live rows (a page of keys at a time for ``scan``)
========================  ===========================================================================

The conditional writes are atomic under PostgreSQL's own row locking: two ``UPDATE`` (or
``DELETE``) statements on one row run one after the other, and the second re-checks its
``WHERE`` on the row the first left (READ COMMITTED), so of racing ``replace_if`` calls over
the same bytes one writes, and of racing ``take`` calls one finds the row. Racing ``create``
calls on an absent key meet in the primary key's unique index: one inserts, the others see its
(live) row and update nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
from psycopg import sql

__all__ = ["Names", "Statements", "index_name", "lock_id"]

#: A row that has not expired, by the server's clock.
LIVE = "(expires_at IS NULL OR expires_at > now())"
#: The expiry of a write: ``%(ttl)s`` seconds from now, or NULL (no expiry) when it is NULL.
EXPIRES = "now() + %(ttl)s::float8 * interval '1 second'"

_TEMPLATES: dict[str, str] = {
    "create_table": (
        "CREATE TABLE IF NOT EXISTS {table} ("
        "key bytea PRIMARY KEY, value bytea NOT NULL, expires_at timestamptz)"
    ),
    # Partial: rows without expiry never need purging, so they stay out of the index.
    "create_index": (
        "CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at) WHERE expires_at IS NOT NULL"
    ),
    "get": "SELECT value FROM {table} WHERE key = %(key)b AND {live}",
    "set": (
        "INSERT INTO {table} (key, value, expires_at) VALUES (%(key)b, %(value)b, {expires}) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at"
    ),
    "create": (
        "INSERT INTO {table} AS stored (key, value, expires_at) "
        "VALUES (%(key)b, %(value)b, {expires}) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at "
        "WHERE stored.expires_at IS NOT NULL AND stored.expires_at <= now()"
    ),
    "touch": "UPDATE {table} SET expires_at = {expires} WHERE key = %(key)b AND {live}",
    "replace": (
        "UPDATE {table} SET value = %(value)b, expires_at = {expires} "
        "WHERE key = %(key)b AND {live}"
    ),
    "replace_if": (
        "UPDATE {table} SET value = %(value)b, expires_at = {expires} "
        "WHERE key = %(key)b AND value = %(expected)b AND {live}"
    ),
    # The row goes whether live or not (an expired remnant too); RETURNING says which it was.
    "take": "DELETE FROM {table} WHERE key = %(key)b RETURNING {live}",
    "delete": "DELETE FROM {table} WHERE key = %(key)b",
    "reset": "DELETE FROM {table} WHERE key IN (SELECT key FROM {table} LIMIT %(limit)s)",
    # FOR UPDATE re-checks the expiry on the newest version of a row a request renewed
    # meanwhile (so a session touched a moment ago is not purged); SKIP LOCKED lets purges
    # from several processes share the work instead of queueing on each other's rows.
    "purge": (
        "DELETE FROM {table} WHERE key IN (SELECT key FROM {table} "
        "WHERE expires_at <= now() LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    ),
    "count": "SELECT count(*) FROM {table} WHERE {live}",
    "scan": (
        "SELECT key, value FROM {table} WHERE key >= %(start)b AND {live} "
        "ORDER BY key LIMIT %(limit)s"
    ),
    # What is the name, if anything? ('r' a table, 'p' a partitioned one; NULL: nothing.)
    "relkind": (
        "SELECT c.relkind::text FROM pg_catalog.pg_class AS c "
        "WHERE c.oid = pg_catalog.to_regclass(%(name)s)"
    ),
    # One creator at a time, across processes: concurrent CREATE TABLE IF NOT EXISTS can fail
    # with a unique violation in pg_type (both pass the "not exists" check, one commits first).
    "lock": "SELECT pg_catalog.pg_advisory_xact_lock(%(lock)s)",
    # drop(): the table, with its index, for a tool that made a table of its own.
    "drop_table": "DROP TABLE IF EXISTS {table}",
    # count() may walk a large table: it gets a longer server-side limit than a request.
    "count_timeout": "SELECT pg_catalog.set_config('statement_timeout', %(ms)s, true)",
}


def index_name(table: str) -> str:
    """The name of the expiry index of ``table``: ``<table>_expires_at``, or (when that would
    pass PostgreSQL's 63 bytes and be truncated) the table's name cut short plus a hash of it,
    so two long table names never share an index name."""
    name = f"{table}_expires_at"
    if len(name.encode("utf-8")) <= 63:
        return name
    digest = hashlib.blake2b(table.encode("utf-8"), digest_size=5).hexdigest()
    suffix = f"_{digest}_exp"
    head = table.encode("utf-8")[: 63 - len(suffix)].decode("utf-8", "ignore")
    return head + suffix


def lock_id(schema: str | None, table: str) -> int:
    """The advisory lock (a signed 64-bit number) that serialises creating ``table``."""
    text = f"sessionkit\x00{schema or ''}\x00{table}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


@attrs.frozen
class Names:
    """Where a storage's rows live: ``schema`` (``None``: the search path decides) and
    ``table``, and the table's expiry index."""

    table: str
    schema: str | None = None

    @property
    def index(self) -> str:
        return index_name(self.table)

    def qualified(self) -> sql.Identifier:
        return (
            sql.Identifier(self.table)
            if self.schema is None
            else sql.Identifier(self.schema, self.table)
        )


@attrs.frozen
class Statements:
    """Every statement a storage runs, rendered once for its table (on its first connection,
    whose quoting rules and encoding they are rendered with)."""

    create_table: str
    create_index: str
    get: str
    set: str
    create: str
    touch: str
    replace: str
    replace_if: str
    take: str
    delete: str
    reset: str
    purge: str
    count: str
    scan: str
    relkind: str
    lock: str
    count_timeout: str
    drop_table: str
    #: The quoted, qualified name (``"schema"."table"``), as ``to_regclass`` reads it.
    qualified: str

    @classmethod
    def render(cls, names: Names, context: Any) -> Statements:
        """Render every statement for ``names``, quoting with ``context`` (a connection)."""
        table = names.qualified()
        parts = {
            "table": table,
            "index": sql.Identifier(names.index),
            "live": sql.SQL(LIVE),
            "expires": sql.SQL(EXPIRES),
        }
        rendered = {
            name: sql.SQL(template).format(**parts).as_string(context)
            for name, template in _TEMPLATES.items()
        }
        return cls(**rendered, qualified=table.as_string(context))
