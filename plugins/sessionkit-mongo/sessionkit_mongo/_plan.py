"""The calls a MongoDB plan yields (``sessionkit.storage.run_plan``): any driver method with
keyword arguments (:func:`call`), and a sync call that may wait on the network, made in a
worker thread from an event loop (:class:`Blocking`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sessionkit.storage import PlanCall

__all__ = ["BLOCKING", "Blocking", "call"]

T = TypeVar("T")

#: :class:`Blocking`'s call.
BLOCKING = ("call", "acall")


def call(target: Any, method: str | tuple[str, str], *args: Any, **kwargs: Any) -> PlanCall:
    """The call ``target.method(*args, **kwargs)``, for a plan to yield."""
    return target, method, args, kwargs


class Blocking:
    """A sync call that may wait on the network (``call(Blocking, BLOCKING, fn, *args)``): made
    at once from sync code, and in a worker thread from an event loop, whose other tasks it
    would stall."""

    @staticmethod
    def call(fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    @staticmethod
    async def acall(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)
