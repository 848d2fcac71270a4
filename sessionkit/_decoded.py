"""Records decoded once per process, by their bytes: a read of an unchanged session skips
the decode.

Most reads of a session find the record the request before it read: the same bytes. Decoding
them (a JSON parse, the envelope's checks, the values' types) is the largest single part of a
memory-backed read, and it gives the same :class:`~sessionkit._envelope.Record` every time,
since it depends on nothing but the bytes (and the store's type registry, whose decodes of
values kept here never change: see below). So a store keeps the last records it decoded, by
their bytes, and a read whose bytes it holds copies the record instead.

What keeps this invisible:

* **Only records of immutable values are kept** (str, int, float, bool, None, bytes, the
  date and time types, ``Decimal``, ``UUID``, and tuples and frozensets of those). A hit hands
  the session a new dict of the same values, which it may change freely; a value that could
  be changed in place (a list, a dict, a registered object) would be shared with the next
  request, so such a record is decoded on every read, as before. Registering a type later
  changes no kept record: every value of one has a built-in type.
* **Expiry is judged on every read** from the kept times, by the caller, as for a record just
  decoded: nothing is served past its lifetime.
* **Bounded**: at most :data:`MAX_ENTRIES` records of at most :data:`MAX_BYTES` bytes each
  (emptied when full); a larger record is never kept.
* **Not with encryption**: a store with ``encryption_keys`` keeps no plaintext beyond the
  request that opened it.

The storage's bytes are the key, so a record changed by anyone (this process, another one, a
tool) is a different key, and a record destroyed is never read to reach its entry again.

**A save keeps what it wrote** (:meth:`DecodedRecords.keep_written`), so the read that follows
it in this process finds it too: when every value is of a type JSON carries as itself (str,
int, float, bool, None), the record its bytes decode to is known without decoding them
(:func:`~sessionkit._envelope.written_record`, checked against a real decode with Hypothesis).
What is kept is a copy of the session's data made before the encoding, so a change the app
makes afterwards, or while an async save waits for its storage, is in neither.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ._envelope import Record, decode_record
from ._values import TypeRegistry

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "DecodedRecords"]

#: Records kept per store.
MAX_ENTRIES = 512
#: Bytes above which a record is not kept (sessions are mostly a few hundred).
MAX_BYTES = 1024

#: Value types that cannot change in place (exact types: a subclass may add state).
_IMMUTABLE = frozenset(
    (str, int, float, bool, type(None), bytes, datetime, date, time, timedelta, Decimal, UUID)
)


def _immutable(value: Any) -> bool:
    kind = type(value)
    if kind in _IMMUTABLE:
        return True
    if kind is tuple or kind is frozenset:
        return all(_immutable(item) for item in value)
    return False


def _all_immutable(data: dict[str, Any]) -> bool:
    values = data.values()
    # The usual record holds only flat values: one pass in C; else each value looked into.
    return _IMMUTABLE.issuperset(map(type, values)) or all(map(_immutable, values))


class DecodedRecords:
    """One store's decoded records, by their bytes (see the module's note).

    Thread-safe without a lock: a read, a fill and the emptying are one dict operation each.
    Full, it is emptied at once rather than one entry at a time: most entries are then the
    records that saves have since replaced (each save makes new bytes, and the old ones are
    never read again), there is no order to keep on every hit, and the live ones come back on
    their next read.
    """

    __slots__ = ("_entries", "_types", "keeps")

    def __init__(self, types: TypeRegistry, *, keep: bool = True) -> None:
        """``keep=False``: decode every time and keep nothing (a store with encryption)."""
        self._types = types
        #: Whether records are kept at all.
        self.keeps = keep
        #: Each kept record's data is never handed out: each read gets a copy.
        self._entries: dict[bytes, Record] = {}

    def decode(self, payload: bytes) -> Record:
        """The record ``payload`` holds, with a data dict of its own;
        :class:`~sessionkit._values.DecodeError` when it holds none."""
        kept = self._entries.get(payload)
        if kept is not None:
            return kept.copied()
        record = decode_record(self._types, payload)
        if self.keeps and len(payload) <= MAX_BYTES and _all_immutable(record.data):
            self._put(payload, record.copied())
        return record

    def keep_written(self, payload: bytes, record: Record | None) -> None:
        """Keep ``record`` as what ``payload`` holds: the record of a save, told without
        decoding by :func:`~sessionkit._envelope.written_record` (``None``: it could not be,
        and nothing is kept). The read that follows the save then finds it. Its data must
        be a copy of the session's, made before the encoding and held by nothing else, so
        that nothing can change it between the two.

        The bytes are the key, so keeping them is right whether or not the write lands.
        """
        if record is not None and self.keeps and len(payload) <= MAX_BYTES:
            self._put(payload, record)

    def _put(self, payload: bytes, record: Record) -> None:
        entries = self._entries
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[payload] = record

    def __len__(self) -> int:
        return len(self._entries)
