"""Optional storage abilities for operators: counting, scanning and purging expired keys.

The storage contract (:class:`~sessionkit.Storage`) is what a *request* needs. An operator
also wants to know how many sessions are live, how old and how big they are, and to clear out
what has expired. Not every backend can answer cheaply, so each of these is a separate,
optional protocol: a plugin implements the ones its backend can do well, and the command line
(``sessionkit stats``, ``sessionkit purge``) uses them when present and says "not supported by
this backend" otherwise. Nothing in the request path calls them.

All three are synchronous (they serve command-line tools, not requests) and, like every other
storage method, cover this storage's namespace only and raise :class:`~sessionkit.StorageError`
on driver failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

__all__ = ["CountableStorage", "PurgeableStorage", "ScannableStorage"]


@runtime_checkable
class CountableStorage(Protocol):
    """A storage that can count its live keys without reading their values."""

    def count(self) -> int:
        """Return the number of live (unexpired) keys in this storage's namespace.

        An expired key that the backend has not cleaned up yet is not counted, just as
        ``get`` would not return it.
        """
        ...


@runtime_checkable
class ScannableStorage(Protocol):
    """A storage that can walk its live keys and values."""

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(key, value)`` for each live key of this storage's namespace.

        Keys are given without the namespace (as ``get`` takes them). The walk need not be a
        snapshot, but it must tolerate the caller deleting keys it has already yielded, and
        it should not hold the whole namespace in memory at once.
        """
        ...


@runtime_checkable
class PurgeableStorage(Protocol):
    """A storage that can delete its expired keys in bulk."""

    def purge_expired(self) -> int:
        """Delete every expired key of this storage's namespace; return how many were deleted.

        A backend whose server expires keys by itself (Redis, a Mongo TTL index) may
        implement this as ``return 0``: there is nothing left for a client to purge.
        """
        ...
