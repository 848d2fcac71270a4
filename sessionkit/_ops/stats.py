"""``sessionkit stats``: how many sessions a storage holds, the oldest, the largest.

Each figure comes from an optional ability of the storage (see :mod:`sessionkit._abilities`):
``count()`` for the number, ``scan()`` for age and size. A figure the backend cannot give is
``None`` and is reported as "not supported by this backend", never guessed.

Ages are read from the stored envelope's creation time with plain :func:`json.loads`: the
session data itself is never decoded, so no registered type is needed and nothing in a
record can run code.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .._abilities import CountableStorage, ScannableStorage
from .._crypto import is_sealed
from .._envelope import VERSION
from .._principals import is_index
from .._storage import Storage
from .._values import check_nesting
from .text import human_age, human_bytes

__all__ = ["UNSUPPORTED", "Stats", "collect_stats", "format_stats"]

UNSUPPORTED = "not supported by this backend"


@attrs.frozen
class Stats:
    """What a storage could tell; ``None`` where it cannot."""

    live: int | None
    #: Creation time (Unix seconds) of the oldest live session.
    oldest: float | None
    #: Size in bytes of the largest stored record.
    largest: int | None
    #: Whether the storage could be scanned (so ``None`` above means "no session").
    scanned: bool = False
    #: Records that are not sessionkit envelopes of a known version (counted in ``live``).
    unreadable: int = 0
    #: Encrypted records (``encryption_keys``): sessions, whose age only the keys can read.
    encrypted: int = 0
    #: Users' session indexes (``Config.principal_key``): not sessions, not counted in ``live``.
    indexes: int = 0


def created_at(payload: bytes) -> float | None:
    """The creation time stored in a session envelope, or ``None`` if it is not one."""
    try:
        check_nesting(payload)  # no RecursionError stops the count (sessionkit._values._text)
        envelope: Any = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if type(envelope) is not dict or envelope.get("v") != VERSION:
        return None
    created: Any = envelope.get("c")
    return float(created) if type(created) in (int, float) else None


def collect_stats(storage: Storage) -> Stats:
    """Gather what ``storage`` can tell: one ``count()`` and/or one ``scan()`` pass."""
    live = storage.count() if isinstance(storage, CountableStorage) else None
    if not isinstance(storage, ScannableStorage):
        return Stats(live, None, None)
    seen = unreadable = encrypted = indexes = 0
    oldest: float | None = None
    largest: int | None = None
    for _, value in storage.scan():
        seen += 1
        largest = len(value) if largest is None else max(largest, len(value))
        if is_sealed(value):
            encrypted += 1
            continue
        if is_index(value):
            indexes += 1
            continue
        created = created_at(value)
        if created is None:
            unreadable += 1
        elif oldest is None or created < oldest:
            oldest = created
    live = (seen if live is None else live) - indexes
    return Stats(live, oldest, largest, True, unreadable, encrypted, indexes)


def format_stats(url: str, stats: Stats, now: float) -> list[str]:
    """The report, one ``label  value`` line per figure."""
    absent = "-" if stats.scanned else UNSUPPORTED
    rows = [
        ("storage", url),
        ("live sessions", UNSUPPORTED if stats.live is None else str(stats.live)),
        ("oldest", absent if stats.oldest is None else human_age(stats.oldest, now)),
        ("largest", absent if stats.largest is None else human_bytes(stats.largest)),
    ]
    if stats.encrypted:
        rows.append(("encrypted", f"{stats.encrypted} records (not counted in oldest)"))
    if stats.indexes:
        rows.append(("user indexes", f"{stats.indexes} (principal_key), not counted as sessions"))
    if stats.unreadable:
        rows.append(("not sessions", f"{stats.unreadable} records are not sessionkit envelopes"))
    return [f"{label:<14} {value}" for label, value in rows]
