"""What every check stands on: the shared test data, one opened storage spoken to in sync or
async mode (:class:`StorageHandle`), and the per-test :class:`Harness` that opens storages and
cleans up after them, so a suite run leaves no keys, tables or loops behind."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from .._storage import Storage
from ._clock import FakeClock

if TYPE_CHECKING:
    from ._base import SuiteBase

_T = TypeVar("_T")
Mode = Literal["sync", "async"]

#: Keys a careless backend would read as a pattern, an operator, a path or SQL. Each must be
#: stored under exactly its own text (security requirement 5).
ODD_KEYS: tuple[str, ...] = (
    "*",
    "?",
    "[a]",
    "a*",
    "$gt",
    '{"$ne": 1}',
    "'; DROP TABLE x; --",
    '"; DROP TABLE x; --',
    "../../etc/passwd",
    "a b",
    " leading and trailing ",
    "ключ-🔑",
    "%",
    "_",
    "a%",
    "a_",
    "\\",
    "line\nbreak\ttab",
    "other:namespace",
)

#: Innocent keys set next to an odd key: a pattern, a LIKE or a regex built from the odd key
#: would match some of them.
BYSTANDER_KEYS: tuple[str, ...] = ("a", "b", "ab", "abc", "sessions")


#: Values that trip up text-minded backends: every byte, nothing, NULs, invalid UTF-8, a MiB.
#: Built on demand, so importing the suite stays cheap.
BINARY_VALUES: dict[str, Callable[[], bytes]] = {
    "every_byte_value": lambda: bytes(range(256)),
    "empty": lambda: b"",
    "nul_bytes": lambda: b"\x00" * 16,
    "invalid_utf8": lambda: b"\xff\xfe\x80\x00\xc3",
    "one_mib": lambda: random.Random(1).randbytes(1 << 20),
}

#: The TTL the expiry tests use, and how long they wait for it to lapse. With real time these
#: are the only sleeps in the suite; a whole second tolerates backends that round TTLs to seconds.
SHORT_TTL = timedelta(seconds=1)
PAST_SHORT_TTL = 1.2
LONG_TTL = timedelta(hours=1)


def new_namespace() -> str:
    """A short, unique namespace: a letter first, then letters and digits (a valid SQL name)."""
    return f"sk{secrets.token_hex(5)}"


@attrs.define
class StorageHandle:
    """One opened storage, called through its sync methods or (in async mode) their twins.

    The tests speak to this handle only, so each test is written once and runs in both modes.
    ``storage`` is the object ``make_storage`` returned.
    """

    storage: Storage
    harness: Harness
    namespace: str = ""
    closed: bool = False

    def _call(self, name: str, *args: Any) -> Any:
        if self.harness.mode == "sync":
            return getattr(self.storage, name)(*args)
        return self.harness.run(getattr(self.storage, f"a{name}")(*args))

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._call("get", key)
        return value

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self._call("set", key, value, ttl)

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        renewed: bool = self._call("touch", key, ttl)
        return renewed

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        written: bool = self._call("replace", key, value, ttl)
        return written

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        written: bool = self._call("create", key, value, ttl)
        return written

    def take(self, key: str) -> bool:
        taken: bool = self._call("take", key)
        return taken

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        written: bool = self._call("replace_if", key, expected, value, ttl)
        return written

    def reset(self) -> None:
        self._call("reset")

    def close(self) -> None:
        self.closed = True
        self._call("close")


class Harness:
    """What one test needs: its mode, its clock, its namespace, and the storages it opened.

    In async mode it owns an event loop for the whole test; :meth:`close` closes every storage
    still open (inside that loop) and then the loop, so nothing leaks from a failed test.
    """

    def __init__(self, suite: SuiteBase, mode: Mode, namespace: str) -> None:
        self.suite = suite
        self.mode: Mode = mode
        self.namespace = namespace
        self.clock = FakeClock() if suite.clock_injectable else None
        self._loop = asyncio.new_event_loop() if mode == "async" else None
        self._opened: list[StorageHandle] = []

    def run(self, awaitable: Coroutine[Any, Any, _T]) -> _T:
        """Run ``awaitable`` to completion on this test's own loop (async mode only)."""
        assert self._loop is not None, "run() is for async mode"
        return self._loop.run_until_complete(awaitable)

    def open(self, namespace: str | None = None) -> StorageHandle:
        """Open a storage on ``namespace`` (default: this test's), to be closed at teardown."""
        namespace = namespace or self.namespace
        if self._loop is None:
            storage = self.suite.make_storage(namespace, self.clock)
        else:

            async def make() -> Storage:
                return self.suite.make_storage(namespace, self.clock)

            storage = self.run(make())
        handle = StorageHandle(storage, self, namespace)
        self._opened.append(handle)
        return handle

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: move the fake clock, or really sleep when there is none."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        """Reset and close every storage this test opened, drop its namespaces, then close
        the loop; re-raise the first failure.

        A suite that leaves its records behind fills a shared server run after run (one
        plugin's run left 128 tables and 456 Redis keys), so each namespace is emptied
        through a storage still open on it, or through a fresh one when the test closed
        them all, and then handed to the suite's ``drop_namespace``.
        """
        errors: list[BaseException] = []
        namespaces = list(dict.fromkeys(handle.namespace for handle in self._opened))
        for namespace in namespaces:
            handles = [h for h in self._opened if h.namespace == namespace]
            try:
                live = next((h for h in handles if not h.closed), None)
                if live is not None:
                    live.reset()
                else:
                    fresh = self.suite.make_storage(namespace, self.clock)
                    try:
                        fresh.reset()
                    finally:
                        fresh.close()
            except Exception as exc:
                errors.append(exc)
            for handle in handles:
                if not handle.closed:
                    try:
                        handle.close()
                    except Exception as exc:
                        errors.append(exc)
            try:
                self.suite.drop_namespace(namespace)
            except Exception as exc:
                errors.append(exc)
        if self._loop is not None:
            try:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
            finally:
                self._loop.close()
        if errors:
            raise errors[0]
