"""The SQL of a SQLite storage, for one table.

The table name is the only text ever formatted into a statement, and it reaches here already
validated as ``[A-Za-z_][A-Za-z0-9_]{0,62}`` (and quoted besides). Keys, values and times are
always bound parameters, so no client text becomes SQL.

``expires_at`` is wall-clock seconds or NULL (no expiry). Every read, touch, replace, create,
take and replace_if treats a row with ``expires_at <= now`` as absent, so expiry holds before any clean-up
has run; the clean-up (``purge``) deletes a bounded batch through the index on ``expires_at``.

``take`` is one ``DELETE ... RETURNING`` (SQLite 3.35+): it removes the row, expired or not, and
the storage judges the returned expiry by its clock. ``take_live`` (delete the live row only,
its ``rowcount`` says whether there was one) followed by ``delete`` (an expired remnant), in one
transaction, is the same for an older SQLite. ``replace_if`` is ``replace`` that also requires
the stored value to be exactly the expected bytes (BLOB equality: same length, same bytes).

``create`` is one upsert whose conflict branch updates only an *expired* row: a new key is
inserted, an expired remnant is overwritten, a live row is left alone, and the change count (1
or 0) says which happened. It is one statement, so nothing comes between the check and the
write, whichever connection or process writes next.
"""

from __future__ import annotations

import attrs

__all__ = ["Statements"]

_TEMPLATES = {
    "create_table": (
        "CREATE TABLE IF NOT EXISTS {table} "
        "(key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at REAL)"
    ),
    "create_index": "CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)",
    "get": "SELECT value FROM {table} WHERE key = :key AND (expires_at IS NULL OR expires_at > :now)",
    "set": (
        "INSERT INTO {table} (key, value, expires_at) VALUES (:key, :value, :expires_at) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
    ),
    "create": (
        "INSERT INTO {table} (key, value, expires_at) VALUES (:key, :value, :expires_at) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
        "WHERE {table}.expires_at IS NOT NULL AND {table}.expires_at <= :now"
    ),
    "touch": (
        "UPDATE {table} SET expires_at = :expires_at "
        "WHERE key = :key AND (expires_at IS NULL OR expires_at > :now)"
    ),
    "replace": (
        "UPDATE {table} SET value = :value, expires_at = :expires_at "
        "WHERE key = :key AND (expires_at IS NULL OR expires_at > :now)"
    ),
    "replace_if": (
        "UPDATE {table} SET value = :value, expires_at = :expires_at "
        "WHERE key = :key AND value = :expected AND (expires_at IS NULL OR expires_at > :now)"
    ),
    "take": "DELETE FROM {table} WHERE key = :key RETURNING expires_at",
    "take_live": (
        "DELETE FROM {table} WHERE key = :key AND (expires_at IS NULL OR expires_at > :now)"
    ),
    "delete": "DELETE FROM {table} WHERE key = :key",
    "reset": "DELETE FROM {table}",
    "drop_table": "DROP TABLE IF EXISTS {table}",
    "purge": (
        "DELETE FROM {table} WHERE rowid IN "
        "(SELECT rowid FROM {table} WHERE expires_at <= :now LIMIT :limit)"
    ),
    "count": "SELECT count(*) FROM {table} WHERE (expires_at IS NULL OR expires_at > :now)",
    "scan": (
        "SELECT key, value FROM {table} "
        "WHERE key >= :start AND (expires_at IS NULL OR expires_at > :now) "
        "ORDER BY key LIMIT :limit"
    ),
}


@attrs.frozen
class Statements:
    """Every statement a storage runs, built once for its table."""

    create_table: str
    create_index: str
    get: str
    set: str
    create: str
    touch: str
    replace: str
    replace_if: str
    take: str
    take_live: str
    delete: str
    reset: str
    drop_table: str
    purge: str
    count: str
    scan: str

    @classmethod
    def for_table(cls, table: str) -> Statements:
        """Build the statements for ``table``, a name already checked to be an identifier."""
        names = {"table": f'"{table}"', "index": f'"{table}_expires_at"'}
        return cls(**{name: sql.format(**names) for name, sql in _TEMPLATES.items()})
