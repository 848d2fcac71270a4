"""How the core writes through what a storage can do, chosen once per store.

Beyond ``get``/``set``/``delete``/``touch`` a storage may offer ``replace``
(:class:`~sessionkit.ConditionalStorage`), ``take`` and ``replace_if``
(:class:`~sessionkit.AtomicStorage`, a conditional storage too) and ``create``
(:class:`~sessionkit.CreatingStorage`, independent of the other two). Each write the core needs
is written here as steps (see :mod:`sessionkit._steps`): with the storage's own atomic call
where it has one, else with a fallback of two calls, which narrows a race to the gap between
them but cannot close it. :class:`~sessionkit.Store` picks the strategy when it is made
(:func:`strategy_for`); the save, renewal and take steps call its methods and never ask what
the storage can do.

The abilities form a ladder (plain, conditional, atomic) and ``create`` beside it, so a
strategy is one rung of :class:`Strategy`, :class:`Conditional` and :class:`Atomic`, with or
without :class:`Creating`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

import attrs

from ._steps import CREATE, DELETE, GET, REPLACE, REPLACE_IF, SET, TAKE, TOUCH, Steps
from ._storage import AtomicStorage, ConditionalStorage, CreatingStorage, Storage

if TYPE_CHECKING:
    from ._session import Session
    from ._store import Store, _Plan

__all__ = ["Atomic", "Conditional", "Creating", "Strategy", "strategy_for"]


@attrs.frozen
class Strategy:
    """A storage with none of the optional abilities: every conditional write is a read or a
    touch, then a write."""

    #: Whether ``replace_if`` is the storage's own: a merge (``conflict="merge"``) needs it,
    #: since it writes only over the exact bytes it last saw.
    compares: ClassVar[bool] = False

    def create(self, key: str, value: bytes, ttl: timedelta) -> Steps[bool]:
        """Write ``value`` under ``key`` only if no live record holds it; whether it did."""
        if (yield GET, (key,)) is not None:
            return False
        yield SET, (key, value, ttl)
        return True

    def replace(self, key: str, value: bytes, ttl: timedelta) -> Steps[bool]:
        """Write ``value`` under ``key`` only if a live record holds it; whether it did."""
        if not (yield TOUCH, (key, ttl)):
            return False
        yield SET, (key, value, ttl)
        return True

    def take(self, key: str) -> Steps[bool]:
        """Delete the record under ``key``; whether a live one was there."""
        existed = (yield GET, (key,)) is not None
        yield DELETE, (key,)
        return existed

    def swap(self, key: str, current: bytes | None, value: bytes, ttl: timedelta) -> Steps[bool]:
        """Write ``value`` under ``key`` over exactly ``current`` (``None``: over no record)
        where the storage can compare, else in any case; whether it was written. For the
        principal index, which then may lose an entry to a race of two log-ins (see
        docs/principals.md)."""
        yield SET, (key, value, ttl)
        return True

    def renew(
        self, store: Store, session: Session, plan: _Plan, key: str, raw: bytes
    ) -> Steps[bool]:
        """Rewrite ``session``'s record under ``key`` with ``plan`` only if it still holds the
        bytes it was loaded from (``raw``); ``False`` when it no longer does. Here: compare,
        then save."""
        if (yield GET, (key,)) != raw:
            return False
        yield from store._save_steps(session, plan)
        return True


@attrs.frozen
class Conditional(Strategy):
    """A storage with ``replace``: a save of a loaded session cannot bring back a record
    another request destroyed meanwhile."""

    def replace(self, key: str, value: bytes, ttl: timedelta) -> Steps[bool]:
        return bool((yield REPLACE, (key, value, ttl)))


@attrs.frozen
class Atomic(Conditional):
    """A storage with ``take`` and ``replace_if`` as well: a ``regenerate()`` tells a record
    taken by another request first, and a renewal cannot undo another request's save."""

    compares: ClassVar[bool] = True

    def take(self, key: str) -> Steps[bool]:
        return bool((yield TAKE, (key,)))

    def swap(self, key: str, current: bytes | None, value: bytes, ttl: timedelta) -> Steps[bool]:
        if current is None:
            return (yield from super().swap(key, current, value, ttl))
        return bool((yield REPLACE_IF, (key, current, value, ttl)))

    def renew(
        self, store: Store, session: Session, plan: _Plan, key: str, raw: bytes
    ) -> Steps[bool]:
        yield from store._index_steps(session._id, plan)
        if not (yield REPLACE_IF, (key, raw, store._sealed(key, plan), plan.ttl)):
            return False
        store._saved(session, True, plan)
        return True


@attrs.frozen
class Creating(Strategy):
    """``create`` on top of a rung of the ladder (listed before it in the bases): a new
    record never overwrites a live one, whatever else the storage can do."""

    def create(self, key: str, value: bytes, ttl: timedelta) -> Steps[bool]:
        return bool((yield CREATE, (key, value, ttl)))

    def swap(self, key: str, current: bytes | None, value: bytes, ttl: timedelta) -> Steps[bool]:
        if current is None:
            return bool((yield CREATE, (key, value, ttl)))
        return (yield from super().swap(key, current, value, ttl))


@attrs.frozen
class _CreatingConditional(Creating, Conditional):
    pass


@attrs.frozen
class _CreatingAtomic(Creating, Atomic):
    pass


#: One strategy per rung of the ladder, without ``create`` and with it.
_LADDER = (Strategy(), Conditional(), Atomic())
_CREATING_LADDER = (Creating(), _CreatingConditional(), _CreatingAtomic())


def strategy_for(storage: Storage) -> Strategy:
    """The strategy that writes through what ``storage`` can do."""
    rung = (
        2
        if isinstance(storage, AtomicStorage)
        else 1
        if isinstance(storage, ConditionalStorage)
        else 0
    )
    ladder = _CREATING_LADDER if isinstance(storage, CreatingStorage) else _LADDER
    return ladder[rung]
