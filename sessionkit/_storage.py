"""The storage contract: bytes in, bytes out, a TTL per key (as gofiber/storage).

A storage knows nothing about sessions. It namespaces its keys (a prefix, a table, a
collection), enforces expiry on read, and reports driver failures as :class:`StorageError`.
Everything session-shaped (ids, envelopes, lifetimes) lives in the core, so a plugin is small
and the conformance suite in :mod:`sessionkit.testing` can check all of it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

from ._syncstorage import SyncStorage

__all__ = [
    "AsyncFromSyncMixin",
    "AtomicStorage",
    "ConditionalStorage",
    "CreatingStorage",
    "Storage",
    "ttl_seconds",
]


@runtime_checkable
class Storage(Protocol):
    """What every storage backend provides, sync and async.

    ``ttl=None`` means no expiry. ``get`` returns ``None`` for a key that is absent *or* expired,
    even if the backend's own cleanup has not run yet. ``reset`` drops this storage's namespace
    and nothing else.
    """

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None: ...
    def delete(self, key: str) -> None: ...
    def touch(self, key: str, ttl: timedelta | None) -> bool: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...
    async def aget(self, key: str) -> bytes | None: ...
    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None: ...
    async def adelete(self, key: str) -> None: ...
    async def atouch(self, key: str, ttl: timedelta | None) -> bool: ...
    async def areset(self) -> None: ...
    async def aclose(self) -> None: ...


@runtime_checkable
class ConditionalStorage(Storage, Protocol):
    """A storage that can write a key only if it still exists (and has not expired).

    The core saves an existing session with ``replace`` so a save racing a ``destroy()`` or
    ``regenerate()`` in another request cannot bring the deleted record back. Backends without
    it get a ``touch``-then-``set`` fallback, which narrows the race but cannot close it.
    """

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool: ...
    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool: ...


@runtime_checkable
class AtomicStorage(ConditionalStorage, Protocol):
    """A conditional storage that can also delete, or write, depending on what it holds, in
    one atomic step.

    ``take`` deletes a key and says whether a live record was there, so a ``regenerate()``
    can tell that another request destroyed or regenerated the session first, and must not
    bring its data back under a new id. ``replace_if`` writes only over the exact bytes the
    caller read, so a read-only request renewing its session cannot undo a save another
    request made meanwhile (a logout, say). Backends without them get a read-then-write
    fallback from the core, which narrows those races to the gap between two calls.
    """

    def take(self, key: str) -> bool: ...
    async def atake(self, key: str) -> bool: ...
    def replace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool: ...
    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool: ...


@runtime_checkable
class CreatingStorage(Storage, Protocol):
    """A storage that can write a key only if no live record holds it, in one atomic step.

    The core writes every new session with ``create``: a new id that collides with a live
    one (a weak custom ``key_generator``, or two workers drawing the same id) must never
    overwrite another visitor's session, so the write fails, and the core draws a new id
    and tries again. An expired record counts as absent. Backends without it get a
    read-then-write fallback from the core, which narrows the race to the gap between.
    Redis ``SET NX``, SQL ``INSERT`` without a conflict update, Mongo ``insert_one``.
    """

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool: ...
    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool: ...


def ttl_seconds(ttl: timedelta | None) -> float | None:
    """Return ``ttl`` in seconds, or ``None`` for no expiry.

    A zero or negative TTL is a programming error in the caller, not an instruction to store
    an already-expired value, so it is rejected here for every backend alike.
    """
    if ttl is None:
        return None
    seconds = ttl.total_seconds()
    if seconds <= 0:
        raise ValueError(f"ttl must be positive or None, got {ttl!r}")
    return seconds


class AsyncFromSyncMixin(SyncStorage):
    """Async twins for a storage whose driver is synchronous, each run in a worker thread.

    The name from before :class:`SyncStorage` existed, kept so that plugins written against
    it keep working: it is a :class:`SyncStorage` with ``async_calls = "thread"``.
    """

    async_calls = "thread"
