"""A storage written once, synchronously, whose async twins the core derives.

Most storages have one driver: a dict (memory), ``sqlite3``, a blocking network client. Their
authors used to write each async twin by hand, nine of them, each a one-line call of the sync
method, and each a chance to forget one (or to run a blocking call on the event loop). A
:class:`SyncStorage` subclass writes the sync methods only; when the class is created, the
twins are made for the methods it has, run the way its :attr:`~SyncStorage.async_calls` says:

``"inline"``
    on the event loop, directly: for a call that is cheap and never waits (a dict under a lock
    held for microseconds). A hop to a worker thread would cost more than the call.
``"thread"``
    in a worker thread (:func:`asyncio.to_thread`): for a driver that blocks on I/O.
``"inline_first"``
    on the event loop if nothing is in the way, else in a worker thread. The sync method asks
    :func:`current_async_call` whether it runs as the loop's attempt; if so it must wait for
    nothing, and raise :class:`WouldBlock` (having changed nothing) where it would wait. The
    call is then repeated in a worker thread. SQLite does this: its statements take
    microseconds, but another process may hold the database's lock.

Twins are made only for the sync methods the class has: without ``take`` there is no
``atake``, so ``isinstance(storage, AtomicStorage)`` stays honest. A twin the class writes
itself is kept. The operator abilities (``count``, ``scan``, ``purge_expired``) always run in a
worker thread, whatever the mode: they walk the whole namespace, which would stall the loop
even for a dict.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, ClassVar, Literal

import attrs

from ._errors import SessionKitError

__all__ = [
    "AsyncCall",
    "AsyncCalls",
    "SyncStorage",
    "WouldBlock",
    "current_async_call",
    "runs_inline",
]

AsyncCalls = Literal["inline", "thread", "inline_first"]
_MODES: tuple[AsyncCalls, ...] = ("inline", "thread", "inline_first")

#: The request-path methods: their twins follow ``async_calls``. Optional ones (no twin is
#: made when the class lacks the sync method) are marked False.
_REQUEST: dict[str, bool] = {
    "get": True,
    "set": True,
    "delete": True,
    "touch": True,
    "reset": True,
    "create": False,
    "replace": False,
    "replace_if": False,
    "take": False,
}
#: The operator abilities: always in a worker thread, made only when the sync method exists.
_TOOLS = ("count", "purge_expired")
#: How many items of ``scan`` one worker-thread hop fetches.
_SCAN_BATCH = 256
#: The marker on a derived twin, so a subclass can tell it from one written by hand.
_DERIVED = "__sessionkit_derived__"


class WouldBlock(SessionKitError):
    """Raised by a sync method in the loop's attempt (``"inline_first"``) where it would wait.

    It must have changed nothing: the call is repeated in a worker thread. (A SessionKitError
    like every exception of the library, so the store's guards pass it on untouched: it is a
    signal to the derived twin, never a driver's failure to wrap as a StorageError.)
    """


@attrs.frozen
class AsyncCall:
    """The async call a sync method is running for (see :func:`current_async_call`).

    ``started`` is :func:`time.monotonic` when the coroutine began: a deadline counted from it
    includes any wait for a worker thread. ``inline`` is true for the event loop's attempt,
    which must wait for nothing.
    """

    started: float
    inline: bool


_CALL: contextvars.ContextVar[AsyncCall | None] = contextvars.ContextVar(
    "sessionkit_async_call", default=None
)


def current_async_call() -> AsyncCall | None:
    """The derived async twin this sync call runs for, or ``None`` for a plain sync call."""
    return _CALL.get()


class _Absent:
    """Stands where a twin would be, for a class without its sync method: ``hasattr`` says
    False, so the runtime protocol checks do not see an ability the storage lacks."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        raise AttributeError(self.name)


def _mark(twin: Callable[..., Any], name: str) -> Callable[..., Any]:
    twin.__name__ = twin.__qualname__ = f"a{name}"
    twin.__doc__ = f"The async twin of ``{name}`` (derived from it by SyncStorage)."
    setattr(twin, _DERIVED, True)
    return twin


def _inline(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def twin(self: Any, *args: Any) -> Any:
        return getattr(self, name)(*args)

    return _mark(twin, name)


def _thread(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def twin(self: Any, *args: Any) -> Any:
        token = _CALL.set(AsyncCall(time.monotonic(), inline=False))
        try:  # to_thread copies this context, so the worker sees the call too
            return await asyncio.to_thread(getattr(self, name), *args)
        finally:
            _CALL.reset(token)

    return _mark(twin, name)


def _inline_first(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def twin(self: Any, *args: Any) -> Any:
        method = getattr(self, name)
        started = time.monotonic()
        token = _CALL.set(AsyncCall(started, inline=True))
        try:
            return method(*args)
        except WouldBlock:
            pass
        finally:
            _CALL.reset(token)
        token = _CALL.set(AsyncCall(started, inline=False))
        try:
            return await asyncio.to_thread(method, *args)
        finally:
            _CALL.reset(token)

    return _mark(twin, name)


def _plain_thread(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """A twin for a tool or ``close``: a plain sync call in a worker thread (no
    :class:`AsyncCall`, so a tool that makes many calls gives each its own deadline)."""

    async def twin(self: Any, *args: Any) -> Any:
        return await asyncio.to_thread(getattr(self, name), *args)

    return _mark(twin, name)


def _ascan() -> Callable[..., AsyncIterator[tuple[str, bytes]]]:
    async def ascan(self: Any) -> AsyncIterator[tuple[str, bytes]]:
        items: Iterator[tuple[str, bytes]] = await asyncio.to_thread(lambda: iter(self.scan()))
        while True:
            batch = await asyncio.to_thread(lambda: list(itertools.islice(items, _SCAN_BATCH)))
            for item in batch:
                yield item
            if len(batch) < _SCAN_BATCH:
                return

    return _mark(ascan, "scan")


_FACTORIES: dict[AsyncCalls, Callable[[str], Callable[..., Any]]] = {
    "inline": _inline,
    "thread": _thread,
    "inline_first": _inline_first,
}


class SyncStorage:
    """Write the sync methods of the storage contract; the async twins are derived.

    Set :attr:`async_calls` to say how a twin runs its sync method (see the module's
    documentation): ``"inline"`` for a call that never waits, ``"thread"`` (the default) for
    a blocking driver, ``"inline_first"`` for one that usually does not wait and can tell
    when it would. Twins are made for ``get set delete touch reset close`` and, when the
    class has them, ``create replace replace_if take count scan purge_expired``
    (``ascan`` is an async iterator). A twin written in the class (or a parent that is not
    derived) is kept.
    """

    #: How the derived twins run their sync method.
    async_calls: ClassVar[AsyncCalls] = "thread"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mode = cls.async_calls
        if mode not in _MODES:
            raise TypeError(f"{cls.__name__}.async_calls must be one of {_MODES}, got {mode!r}")
        for name, required in _REQUEST.items():
            _derive(cls, name, _FACTORIES[mode], required)
        _derive(cls, "close", _inline if mode == "inline" else _plain_thread, True)
        for name in _TOOLS:
            _derive(cls, name, _plain_thread, False)
        _derive(cls, "scan", lambda _: _ascan(), False)

    # The sync contract, for the subclass to write.

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # What the derived twins look like to a type checker; each subclass gets its own.

    async def aget(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        raise NotImplementedError

    async def adelete(self, key: str) -> None:
        raise NotImplementedError

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        raise NotImplementedError

    async def areset(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        raise NotImplementedError

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        raise NotImplementedError

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        raise NotImplementedError

    async def atake(self, key: str) -> bool:
        raise NotImplementedError

    async def acount(self) -> int:
        raise NotImplementedError

    async def apurge_expired(self) -> int:
        raise NotImplementedError

    def ascan(self) -> AsyncIterator[tuple[str, bytes]]:
        raise NotImplementedError


def _derive(
    cls: type, name: str, factory: Callable[[str], Callable[..., Any]], required: bool
) -> None:
    """Give ``cls`` the twin of ``name``, unless it has one written by hand; an optional
    twin whose sync method ``cls`` lacks is made absent."""
    twin_name = f"a{name}"
    current = getattr(cls, twin_name, None)
    if current is not None and not getattr(current, _DERIVED, False) and not _declared(current):
        return  # written by hand, here or in a parent
    has_sync = required or callable(getattr(cls, name, None))
    setattr(cls, twin_name, factory(name) if has_sync else _Absent(twin_name))


def runs_inline(storage: object) -> bool:
    """Whether every request-path twin of ``storage`` only calls its sync method on the event
    loop: a :class:`SyncStorage` with ``async_calls = "inline"`` and no twin written by hand
    (in its class or on the instance).

    Then the core's async paths call the sync methods themselves (no coroutine per call; see
    :func:`sessionkit._steps.adrive`), and know that a save on such a storage never suspends
    its task between its storage calls.
    """
    if not isinstance(storage, SyncStorage) or storage.async_calls != "inline":
        return False
    cls = type(storage)
    own = getattr(storage, "__dict__", {})
    for name in _REQUEST:
        twin_name = f"a{name}"
        twin = getattr(cls, twin_name, None)  # None: an optional twin made absent
        if twin_name in own or (twin is not None and not getattr(twin, _DERIVED, False)):
            return False
    return True


def _declared(twin: object) -> bool:
    """Whether ``twin`` is one of :class:`SyncStorage`'s own declarations (not a real twin)."""
    return any(SyncStorage.__dict__.get(name) is twin for name in SyncStorage.__dict__)
