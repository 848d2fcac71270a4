"""The storage writes ``SessionStore`` makes beyond the store's own: one create-only try under
a given key, an update-only write, and taking the record ``cycle_key`` moves away from.

Each is the store's own write (``Store._create_once``, ``_replace_live``, ``_take_key``), the
ones a save is made of: through its storage key (``storage_key_secret``), its guards (a
driver's error becomes :class:`~sessionkit.StorageError`) and the storage's atomic operation
where it has one, with the same fallbacks where it has not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .._store import Store, _asuppressed, _Plan, _suppressed

__all__ = [
    "acreate_once",
    "aquietly",
    "aretire",
    "areplace_live",
    "create_once",
    "quietly",
    "retire",
    "replace_live",
]


def create_once(store: Store, key: str, plan: _Plan) -> bool:
    """Write ``plan`` under ``key`` only if no live record is there (one try)."""
    return store._create_once(key, plan)


async def acreate_once(store: Store, key: str, plan: _Plan) -> bool:
    return await store._acreate_once(key, plan)


def replace_live(store: Store, key: str, plan: _Plan) -> bool:
    """Replace the record under ``key`` only if it is still there (as a save does)."""
    return store._replace_live(key, plan)


async def areplace_live(store: Store, key: str, plan: _Plan) -> bool:
    return await store._areplace_live(key, plan)


def retire(store: Store, old: str, stored: bool) -> bool:
    """Remove the record of the key ``cycle_key`` moved away from; whether it was there.

    A key this object never loaded (its data was set without a load) is deleted as Django
    does, and counts as there: nothing was carried over from it.
    """
    if stored:
        return store._take_key(old)
    if store.is_valid_id(old):
        store._delete_key(old)
    return True


async def aretire(store: Store, old: str, stored: bool) -> bool:
    if stored:
        return await store._atake_key(old)
    if store.is_valid_id(old):
        await store._adelete_key(old)
    return True


def quietly(call: Callable[[str], None], key: str) -> None:
    """Undo a step of a failed ``cycle_key`` as far as the storage lets us: the record left
    behind is under a key no client has, and expires with its TTL."""
    _suppressed(call, key)


async def aquietly(call: Awaitable[None]) -> None:
    await _asuppressed(call)
