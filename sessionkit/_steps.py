"""One source of truth for storage work made of several calls, sync and async.

A save is not one storage call: it creates a record create-only (and draws another id when the
one it has names a live record), takes the record a ``regenerate()`` retired, and when that
record turns out to be gone, rewrites or removes the copy it just made; a failure halfway
undoes what it can. That logic is written once, as a generator that *yields* each storage
call it needs (a :class:`Call`) and is *sent* the call's result, or has the call's error
thrown into it. :func:`drive` makes the calls with the storage's sync methods, :func:`adrive`
with their async twins. The decisions between the calls exist once, so the sync and async
paths cannot drift apart, with no generated code to keep current (httpcore generates its sync
twin from the async source with unasync; a generator needs neither a build step nor a check
that the generated file is fresh).

Both drivers hold every storage call to one rule: a driver's exception becomes a
:class:`~sessionkit.StorageError` chained to it (``raise ... from``), and the library's own
errors pass through as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any, TypeVar

from ._errors import SessionKitError, StorageError

__all__ = [
    "CREATE",
    "DELETE",
    "GET",
    "PAUSE",
    "REPLACE",
    "REPLACE_IF",
    "SET",
    "TAKE",
    "TOUCH",
    "Call",
    "Steps",
    "adrive",
    "drive",
    "storage_error",
]

_T = TypeVar("_T")


#: One storage call a step needs: ``((sync method, async twin), arguments)``. A plain tuple,
#: not a class: a save makes one or two, and building a tuple is the cheapest way to say it.
Call = tuple[tuple[str, str], tuple[Any, ...]]

#: Storage work written once: a generator of the calls it makes, returning its result.
Steps = Generator[Call, Any, _T]

# The storage methods a step may call, each with its async twin: ``yield TAKE, (key,)``.
GET = ("get", "aget")
SET = ("set", "aset")
DELETE = ("delete", "adelete")
TOUCH = ("touch", "atouch")
CREATE = ("create", "acreate")
REPLACE = ("replace", "areplace")
TAKE = ("take", "atake")
REPLACE_IF = ("replace_if", "areplace_if")
#: Not a storage call: wait ``(seconds,)`` (``time.sleep``, or ``asyncio.sleep`` on a loop).
PAUSE = ("sleep", "sleep")


def storage_error(exc: Exception) -> StorageError:
    """What a driver's exception from a storage call becomes (raise it ``from exc``); the
    library's own errors (a plugin's ``StorageError``) pass through unchanged."""
    return StorageError(f"storage call failed: {exc!r}")


def _failure(exc: Exception) -> Exception:
    """The error a failed storage call throws into its step: ours as it is, a driver's
    wrapped, chained as ``raise StorageError(...) from exc`` would chain it."""
    if isinstance(exc, SessionKitError):
        return exc
    error = storage_error(exc)
    error.__cause__ = exc
    return error


def drive(storage: Any, steps: Steps[_T]) -> _T:
    """Run ``steps`` to the end with ``storage``'s sync methods; return their result."""
    try:
        step = next(steps)
        while True:
            if step[0] is PAUSE:
                time.sleep(step[1][0])
                step = steps.send(None)
                continue
            try:
                result = getattr(storage, step[0][0])(*step[1])
            except Exception as exc:  # handed to the step (see _failure)
                step = steps.throw(_failure(exc))
            else:
                step = steps.send(result)
    except StopIteration as stop:
        done: _T = stop.value
        return done


async def adrive(storage: Any, steps: Steps[_T], inline: bool = False) -> _T:
    """Async twin of :func:`drive`: each call awaits the storage's async twin.

    ``inline``: the storage's twins only call its sync methods on the loop (see
    :func:`sessionkit._syncstorage.runs_inline`); the sync methods are called here directly,
    with no coroutine made per call. A pause still sleeps on the loop.
    """
    which = 0 if inline else 1
    try:
        step = next(steps)
        while True:
            if step[0] is PAUSE:
                await asyncio.sleep(step[1][0])
                step = steps.send(None)
                continue
            try:
                result = getattr(storage, step[0][which])(*step[1])
                if not inline:
                    result = await result
            except Exception as exc:  # handed to the step (see _failure)
                step = steps.throw(_failure(exc))
            else:
                step = steps.send(result)
    except StopIteration as stop:
        done: _T = stop.value
        return done
