"""The SQL of a MySQL storage, for one table, and the literals it is written with.

**No driver escaping.** Keys and values go into statements as hexadecimal literals
(``X'6b6579'``), built here from the bytes: a literal made of ``0-9a-f`` alone cannot end early,
whatever the server's SQL mode (``NO_BACKSLASH_ESCAPES``) or the connection's character set, and
the server reads it as a binary string, compared byte for byte. TTLs are whole numbers formatted
by Python. The table name, checked as an identifier when the storage is opened, is the only
other text in a statement, always between backquotes. So both clients (PyMySQL and aiomysql)
send the very same statement text and escape nothing: aiomysql's escaping of ``bytes`` broke
with PyMySQL 1.2.3 (aio-libs/aiomysql#1080), and nothing here depends on it.

**One clock: the server's.** Every expiry is written as ``UTC_TIMESTAMP(6) + INTERVAL n
MICROSECOND`` and judged against ``UTC_TIMESTAMP(6)``, in the statement itself, so the
application servers' clocks (which may disagree by seconds) never enter into it, and neither
does any session's time zone. A row is live while ``expires_at IS NULL OR expires_at >
UTC_TIMESTAMP(6)``; the purge deletes exactly the others. ``UTC_TIMESTAMP(6)`` is fixed for the
duration of one statement.

**Affected rows.** Connections use the server's default count (no ``CLIENT_FOUND_ROWS``): an
``UPDATE`` counts the rows it *changed*, and an ``INSERT ... ON DUPLICATE KEY UPDATE`` counts 1
for an insert, 2 for an update that changed the row, 0 for one that left it as it was. So that
an ``UPDATE`` that matched a row always changes it (a ``touch`` with no TTL of a row without
one, a ``replace_if`` writing the value it expected), each write also bumps the row's revision
``rev``; a row counts 1 exactly when it matched. ``create`` relies on the 0: its conflict branch
assigns every column its own value unless the stored row has expired.

**Order of assignments.** MySQL evaluates the assignments of an ``UPDATE`` (and of ``ON
DUPLICATE KEY UPDATE``) left to right, each seeing the columns already assigned. ``create``
tests ``expires_at`` in each of its ``IF``\\ s, so ``expires_at`` is assigned last: every test
sees the stored expiry, not the new one.
"""

# Statements are text built here, and ruff's S608 flags every one: the only text they take in
# is the table name (checked as an identifier, and backquoted), hexadecimal literals made from
# bytes, and numbers formatted by Python. See the module's documentation.
# ruff: noqa: S608

from __future__ import annotations

from datetime import timedelta

import attrs

__all__ = [
    "KEY_BYTES",
    "MAX_TTL",
    "Statements",
    "binary",
    "expiry",
]

#: The longest key, in bytes of UTF-8: the key column's width. Session ids are 43 characters
#: (so are keys hashed by ``storage_key_secret``); 255 bytes keep the primary key within the
#: index limit of every InnoDB row format.
KEY_BYTES = 255

#: The longest TTL written as such; a longer one is stored as this (a thousand years). A
#: ``DATETIME`` ends at the year 9999, past which the server's date arithmetic gives NULL,
#: which would read as "no expiry" by accident rather than by choice.
MAX_TTL = timedelta(days=365_000)
_MAX_TTL_US = MAX_TTL // timedelta(microseconds=1)
_ONE_US = timedelta(microseconds=1)

#: A row that has not expired.
LIVE = "(`expires_at` IS NULL OR `expires_at` > UTC_TIMESTAMP(6))"
#: A row that has expired (never one without an expiry).
EXPIRED = "`expires_at` <= UTC_TIMESTAMP(6)"

#: The columns, their types, as ``SHOW COLUMNS`` reports them (type prefix), for the check of
#: a table that already existed.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("k", ("varbinary(",)),
    ("v", ("longblob", "mediumblob")),
    ("expires_at", ("datetime",)),
    ("rev", ("bigint",)),
)


def binary(data: bytes) -> str:
    """``data`` as a hexadecimal literal: a binary string, whatever the session's settings."""
    return f"X'{data.hex()}'"


def expiry(ttl: timedelta | None) -> str:
    """The expiry of a row written now with ``ttl`` (already checked positive), on the server's
    clock; ``NULL`` for no expiry. Microseconds, rounded up, so no TTL is shortened."""
    if ttl is None:
        return "NULL"
    micros = min(-(-ttl // _ONE_US), _MAX_TTL_US)
    return f"UTC_TIMESTAMP(6) + INTERVAL {int(micros)} MICROSECOND"


@attrs.frozen
class Statements:
    """Every statement of a storage, for its table (a name already checked)."""

    table: str

    @property
    def quoted(self) -> str:
        return f"`{self.table}`"

    # -- the table ------------------------------------------------------------------------------

    @property
    def create_table(self) -> str:
        """The table and its expiry index, in one statement, so that processes racing to make
        it cannot fail on each other (``CREATE INDEX`` has no ``IF NOT EXISTS`` on MySQL).

        ``k`` is ``VARBINARY``: compared byte for byte, so ``Session`` and ``session``, ``a`` and
        ``a ``, ``ß`` and ``ss`` are different keys (a ``_ci`` collation would merge them, and
        MySQL's ``PAD SPACE`` collations ignore trailing spaces, even ``utf8mb4_bin``).
        """
        return (
            f"CREATE TABLE IF NOT EXISTS {self.quoted} ("
            f"`k` VARBINARY({KEY_BYTES}) NOT NULL, "
            "`v` LONGBLOB NOT NULL, "
            "`expires_at` DATETIME(6) NULL, "
            "`rev` BIGINT UNSIGNED NOT NULL DEFAULT 0, "
            "PRIMARY KEY (`k`), "
            "KEY `expires_at` (`expires_at`)"
            ") ENGINE=InnoDB COMMENT='sessionkit sessions'"
        )

    @property
    def drop_table(self) -> str:
        return f"DROP TABLE IF EXISTS {self.quoted}"

    @property
    def show_columns(self) -> str:
        return f"SHOW COLUMNS FROM {self.quoted}"

    # -- the request path -------------------------------------------------------------------------

    def get(self, key: bytes) -> str:
        return f"SELECT `v` FROM {self.quoted} WHERE `k` = {binary(key)} AND {LIVE}"

    def set(self, key: bytes, value: bytes, ttl: timedelta | None) -> str:
        return (
            f"INSERT INTO {self.quoted} (`k`, `v`, `expires_at`) "
            f"VALUES ({binary(key)}, {binary(value)}, {expiry(ttl)}) "
            "ON DUPLICATE KEY UPDATE `v` = VALUES(`v`), `rev` = `rev` + 1, "
            "`expires_at` = VALUES(`expires_at`)"
        )

    def create(self, key: bytes, value: bytes, ttl: timedelta | None) -> str:
        """Affected rows: 1 inserted, 2 an expired row overwritten, 0 a live row left alone."""
        return (
            f"INSERT INTO {self.quoted} (`k`, `v`, `expires_at`) "
            f"VALUES ({binary(key)}, {binary(value)}, {expiry(ttl)}) "
            f"ON DUPLICATE KEY UPDATE `v` = IF({EXPIRED}, VALUES(`v`), `v`), "
            f"`rev` = IF({EXPIRED}, `rev` + 1, `rev`), "
            f"`expires_at` = IF({EXPIRED}, VALUES(`expires_at`), `expires_at`)"
        )

    def replace(self, key: bytes, value: bytes, ttl: timedelta | None) -> str:
        return (
            f"UPDATE {self.quoted} SET `v` = {binary(value)}, `rev` = `rev` + 1, "
            f"`expires_at` = {expiry(ttl)} WHERE `k` = {binary(key)} AND {LIVE}"
        )

    def replace_if(self, key: bytes, expected: bytes, value: bytes, ttl: timedelta | None) -> str:
        return (
            f"UPDATE {self.quoted} SET `v` = {binary(value)}, `rev` = `rev` + 1, "
            f"`expires_at` = {expiry(ttl)} "
            f"WHERE `k` = {binary(key)} AND `v` = {binary(expected)} AND {LIVE}"
        )

    def touch(self, key: bytes, ttl: timedelta | None) -> str:
        return (
            f"UPDATE {self.quoted} SET `rev` = `rev` + 1, `expires_at` = {expiry(ttl)} "
            f"WHERE `k` = {binary(key)} AND {LIVE}"
        )

    def take(self, key: bytes) -> str:
        """Deletes the live row only: one affected row means a live record was taken. An
        expired remnant stays for the purge (it is invisible already)."""
        return f"DELETE FROM {self.quoted} WHERE `k` = {binary(key)} AND {LIVE}"

    def delete(self, key: bytes) -> str:
        return f"DELETE FROM {self.quoted} WHERE `k` = {binary(key)}"

    # -- whole-table work, in bounded batches ------------------------------------------------------

    def reset(self, limit: int) -> str:
        return f"DELETE FROM {self.quoted} LIMIT {int(limit)}"

    def purge(self, limit: int) -> str:
        return f"DELETE FROM {self.quoted} WHERE {EXPIRED} LIMIT {int(limit)}"

    @property
    def count(self) -> str:
        return f"SELECT COUNT(*) FROM {self.quoted} WHERE {LIVE}"

    def scan(self, after: bytes | None, limit: int) -> str:
        """A page of live rows in key order, after the key ``after`` (keyset pagination)."""
        start = "" if after is None else f"`k` > {binary(after)} AND "
        return (
            f"SELECT `k`, `v` FROM {self.quoted} WHERE {start}{LIVE} "
            f"ORDER BY `k` LIMIT {int(limit)}"
        )
