"""One source of truth for a storage's own work of several driver calls, sync and async.

A storage operation often decides between calls: Redis's ``replace_if`` sends its script by
SHA, in full when the server lost it, and as a ``WATCH`` transaction when the server refuses
scripts; MongoDB's first write makes the TTL index under a lock. Written twice, once with
``await``, those decisions drift apart. So a plugin writes such work once, as a generator (a
*plan*) that yields each driver call it needs as ``(target, method, args)`` or ``(target,
method, args, kwargs)`` and is sent the call's result, or has the call's error thrown in, so
an ``except NoScriptError`` around a ``yield`` works as it would around the call.
:func:`run_plan` makes the calls as they are; :func:`arun_plan` awaits them.

A method is one name where the asyncio twin keeps the sync name (``"watch"``), or a pair
``(sync, async)`` where it does not (:data:`ENTER`, :data:`EXIT`). Calls that never wait are
made by the plan itself, not yielded.

This differs from the core's own steps (``sessionkit._steps``, which drive a save through the
storage's methods) in two ways: a plan names its target (a connection, a pipeline, a
collection, not only the storage), and the error thrown in is the driver's own, unwrapped (the
plan wraps it in :class:`~sessionkit.StorageError` where it would wrap a direct call). Every
exception is thrown in, a cancelled task's too, so a plan's ``finally`` and ``except
BaseException`` run at once, as they would around an ``await``: a connection goes back to its
pool, a half-done transaction is closed.

Two calls every driver's plans need are here: :func:`blocking` (a sync call that may wait, made
in a worker thread from an event loop) and :func:`within` (a ``with`` block around a plan).

A call that decides nothing (one ``GET``) needs no plan: a generator and its driver would
only add their cost to every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any, TypeAlias, TypeVar

__all__ = ["ENTER", "EXIT", "Plan", "PlanCall", "arun_plan", "blocking", "run_plan", "within"]

T = TypeVar("T")

#: A call a plan needs: ``(target, method, args)`` or ``(target, method, args, kwargs)``; the
#: method a name, or a pair of names ``(sync, async)``.
PlanCall: TypeAlias = (
    "tuple[Any, str | tuple[str, str], tuple[Any, ...]]"
    " | tuple[Any, str | tuple[str, str], tuple[Any, ...], dict[str, Any]]"
)
#: Work written once: a generator of the calls it makes, returning its result.
Plan: TypeAlias = Generator[PlanCall, Any, T]

#: A context manager's way in and out (``with`` / ``async with``), for a call a plan makes:
#: ``pipe = yield manager, ENTER, ()`` ... ``yield manager, EXIT, (None, None, None)``.
ENTER = ("__enter__", "__aenter__")
EXIT = ("__exit__", "__aexit__")


def run_plan(plan: Plan[T]) -> T:
    """Run ``plan`` to the end, making each of its calls; return its result."""
    try:
        step = next(plan)
        while True:
            method = step[1]
            try:
                bound = getattr(step[0], method if method.__class__ is str else method[0])
                result = bound(*step[2]) if len(step) == 3 else bound(*step[2], **step[3])
            except BaseException as exc:  # the plan's to handle (see the module's note)
                step = plan.throw(exc)
            else:
                step = plan.send(result)
    except StopIteration as stop:
        done: T = stop.value
        return done


async def arun_plan(plan: Plan[T]) -> T:
    """Async twin of :func:`run_plan`: each call is awaited."""
    try:
        step = next(plan)
        while True:
            method = step[1]
            try:
                bound = getattr(step[0], method if method.__class__ is str else method[1])
                result = await (bound(*step[2]) if len(step) == 3 else bound(*step[2], **step[3]))
            except BaseException as exc:  # a cancelled task's too: see the module's note
                step = plan.throw(exc)
            else:
                step = plan.send(result)
    except StopIteration as stop:
        done: T = stop.value
        return done


class _Blocking:
    """The target of :func:`blocking`'s call."""

    @staticmethod
    def call(fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    @staticmethod
    async def acall(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)


def blocking(fn: Callable[..., Any], *args: Any) -> PlanCall:
    """The call ``fn(*args)``, a sync call that may wait (closing a sync pool joins its
    threads), for a plan to yield: made at once from sync code, and in a worker thread from an
    event loop, whose other tasks it would stall."""
    return _Blocking, ("call", "acall"), (fn, *args)


def within(manager: Any, body: Plan[T]) -> Plan[T | None]:
    """``body`` run as ``with manager:`` (or ``async with``) would run it: ``manager`` entered
    first, and left with the error that ends ``body``, if any, which it may swallow (then the
    result is ``None``). A transaction commits when ``body`` returns, rolls back when it fails."""
    yield manager, ENTER, ()
    try:
        result = yield from body
    except BaseException as exc:  # a cancelled task's too: the transaction is rolled back
        if not (yield manager, EXIT, (type(exc), exc, exc.__traceback__)):
            raise
        return None
    yield manager, EXIT, (None, None, None)
    return result
