"""``sessionkit check``: one round trip of every storage operation, on scratch keys only.

An operator runs this against a production URL to learn whether the storage answers, keeps
the contract, and how fast. So it must never touch real data: it writes random scratch keys,
deletes them whatever happens, and checks ``reset`` only when asked to and only on a scratch
namespace (a ``reset`` of the real namespace would log every user out).

Nor may it leave anything behind. ``reset`` empties a namespace, but on a backend whose
namespace is a thing of its own (a PostgreSQL or MySQL table) the scratch namespace itself
would stay, one ``skcheck_<hex>`` table per run, so the scratch storage is dropped afterwards
when it can be: a storage with a ``drop()`` method (the SQL plugins') drops its namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs

from .._errors import ConfigError
from .._storage import AtomicStorage, ConditionalStorage, Storage
from .text import describe

__all__ = ["NAMESPACE_OPTIONS", "Step", "format_step", "run_check"]

#: Option names through which first-party backends take their namespace (Redis and the
#: memory-like ones a prefix, SQLite a table, MongoDB a collection). ``check --reset-scratch``
#: tries each until the backend accepts one; a backend that accepts none is not reset.
NAMESPACE_OPTIONS = ("prefix", "table", "collection", "namespace")

#: How long the scratch keys live if the check dies before it deletes them.
SCRATCH_TTL = timedelta(minutes=5)
#: The short TTL of the expiry step, and how long to wait for it to lapse (a whole second
#: tolerates backends that round TTLs to seconds).
SHORT_TTL = timedelta(seconds=1)
EXPIRY_WAIT = 1.2

Opener = Callable[..., Storage]


@attrs.frozen
class Step:
    """The outcome of one operation: ``ok`` is ``None`` when it was skipped."""

    name: str
    ok: bool | None
    ms: float | None = None
    detail: str = ""


class CheckFailed(Exception):
    """An operation answered, but not what the contract says."""


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1000


def _expect(what: str, got: object, wanted: object) -> None:
    if got != wanted:
        raise CheckFailed(f"{what} returned {got!r}, expected {wanted!r}")


class _Check:
    """The steps, in order; each does one timed operation and verifies what it can."""

    def __init__(self, storage: Storage, opener: Opener, sleep: Callable[[float], None]) -> None:
        self.storage = storage
        self.opener = opener
        self.sleep = sleep
        token = secrets.token_urlsafe(9)
        self.key = f"sessionkit-check-{token}"
        self.short_key = f"{self.key}-ttl"
        self.value = b"sessionkit check \x00\xff " + token.encode()

    def set(self) -> Step:
        _, ms = _timed(self.storage.set, self.key, self.value, SCRATCH_TTL)
        return Step("set", True, ms)

    def get(self) -> Step:
        got, ms = _timed(self.storage.get, self.key)
        _expect("get", got, self.value)
        return Step("get", True, ms)

    def touch(self) -> Step:
        renewed, ms = _timed(self.storage.touch, self.key, SCRATCH_TTL)
        _expect("touch of a present key", renewed, True)
        return Step("touch", True, ms)

    def replace(self) -> Step:
        storage = self.storage
        if not isinstance(storage, ConditionalStorage):
            return Step("replace", None, detail="no replace(): saves fall back to touch + set")
        new = self.value + b" replaced"
        written, ms = _timed(storage.replace, self.key, new, SCRATCH_TTL)
        _expect("replace of a present key", written, True)
        _expect("get after replace", storage.get(self.key), new)
        return Step("replace", True, ms)

    def replace_if(self) -> Step:
        storage = self.storage
        if not isinstance(storage, AtomicStorage):
            return Step("replace_if", None, detail="no replace_if(): renewals read, then write")
        current = storage.get(self.key)
        assert current is not None  # replace() just wrote it
        stale = current + b" stale"
        _expect(
            "replace_if over other bytes",
            storage.replace_if(self.key, stale, b"x", SCRATCH_TTL),
            False,
        )
        new = current + b" renewed"
        written, ms = _timed(storage.replace_if, self.key, current, new, SCRATCH_TTL)
        _expect("replace_if over the stored bytes", written, True)
        _expect("get after replace_if", storage.get(self.key), new)
        return Step("replace_if", True, ms)

    def take(self) -> Step:
        storage = self.storage
        if not isinstance(storage, AtomicStorage):
            return Step("take", None, detail="no take(): regenerate reads, then deletes")
        storage.set(self.key, self.value, SCRATCH_TTL)
        taken, ms = _timed(storage.take, self.key)
        _expect("take of a present key", taken, True)
        _expect("get after take", storage.get(self.key), None)
        _expect("take of an absent key", storage.take(self.key), False)
        return Step("take", True, ms)

    def delete(self) -> Step:
        _, ms = _timed(self.storage.delete, self.key)
        _expect("get after delete", self.storage.get(self.key), None)
        _expect("touch after delete", self.storage.touch(self.key, SCRATCH_TTL), False)
        return Step("delete", True, ms)

    def expiry(self) -> Step:
        self.storage.set(self.short_key, self.value, SHORT_TTL)
        _expect("get before the TTL lapsed", self.storage.get(self.short_key), self.value)
        self.sleep(EXPIRY_WAIT)
        got, ms = _timed(self.storage.get, self.short_key)
        _expect(f"get {EXPIRY_WAIT} s after a {SHORT_TTL.seconds} s TTL", got, None)
        return Step("expiry", True, ms, f"gone {EXPIRY_WAIT} s after a 1 s TTL")

    def async_round_trip(self) -> Step:
        """The async twins, on a second storage opened and closed inside one event loop
        (async clients are bound to the loop that made them)."""

        async def trip() -> float:
            storage = self.opener()
            try:
                start = time.perf_counter()
                await storage.aset(self.key, self.value, SCRATCH_TTL)
                got = await storage.aget(self.key)
                await storage.adelete(self.key)
                elapsed = (time.perf_counter() - start) * 1000
                _expect("aget", got, self.value)
                _expect("aget after adelete", await storage.aget(self.key), None)
                return elapsed
            finally:
                await storage.aclose()

        ms = asyncio.run(trip())
        return Step("async", True, ms, "aset + aget + adelete")

    def reset(self) -> Step:
        scratch, option, name = self._open_scratch()
        if scratch is None:
            return Step(
                "reset",
                None,
                detail=f"the backend takes none of {', '.join(NAMESPACE_OPTIONS)}, "
                "so a reset could reach real data",
            )
        try:
            scratch.set(self.key, self.value, SCRATCH_TTL)
            self.storage.set(self.key, self.value, SCRATCH_TTL)  # a canary in the real namespace
            _, ms = _timed(scratch.reset)
            _expect("get after reset", scratch.get(self.key), None)
            _expect(
                "get of another namespace's key after reset", self.storage.get(self.key), self.value
            )
        finally:
            try:
                self.storage.delete(self.key)
            finally:
                _discard(scratch, f"{option}={name}")
        return Step("reset", True, ms, f"on a scratch namespace ({option}=...)")

    def _open_scratch(self) -> tuple[Storage | None, str, str]:
        name = f"skcheck_{secrets.token_hex(4)}"
        for option in NAMESPACE_OPTIONS:
            try:
                return self.opener(**{option: name}), option, name
            except ConfigError:
                continue
        return None, "", name

    def cleanup(self) -> None:
        for key in (self.key, self.short_key):
            with contextlib.suppress(Exception):  # best effort: the scratch keys expire anyway
                self.storage.delete(key)


def _discard(scratch: Storage, where: str) -> None:
    """Drop the scratch namespace where the storage can (``drop()``), then close it.

    A drop that fails fails the step, naming what is left to drop by hand: an operator must
    learn that the check left something on the server.
    """
    try:
        drop = getattr(scratch, "drop", None)
        if callable(drop):
            try:
                drop()
            except Exception as exc:
                raise CheckFailed(
                    f"the scratch namespace {where} could not be dropped, drop it by hand: "
                    f"{describe(exc)}"
                ) from exc
    finally:
        scratch.close()


def run_check(
    storage: Storage,
    opener: Opener,
    *,
    reset_scratch: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Step]:
    """Run the round trip on ``storage``, yielding each step as it completes.

    ``opener(**options)`` opens another storage on the same URL (for the async step, and with a
    namespace option for the reset step). The first failing step is yielded with ``ok=False``
    and ends the check; the scratch keys are deleted in every case.
    """
    check = _Check(storage, opener, sleep)
    steps = [
        check.set,
        check.get,
        check.touch,
        check.replace,
        check.replace_if,
        check.delete,
        check.take,
        check.expiry,
        check.async_round_trip,
    ]
    try:
        for step in steps:
            try:
                yield step()
            except Exception as exc:
                yield Step(step.__name__.replace("_round_trip", ""), False, detail=_describe(exc))
                return
        if not reset_scratch:
            yield Step("reset", None, detail="pass --reset-scratch to check it")
            return
        try:
            yield check.reset()
        except Exception as exc:
            yield Step("reset", False, detail=_describe(exc))
    finally:
        check.cleanup()


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CheckFailed) else describe(exc)


def format_step(step: Step) -> str:
    """``  get      ok        0.08 ms`` -- one aligned line per step."""
    status = {True: "ok", False: "FAILED", None: "skipped"}[step.ok]
    ms = "" if step.ms is None else f"{step.ms:.2f} ms"
    return f"  {step.name:<10} {status:<8} {ms:>10}  {step.detail}".rstrip()
