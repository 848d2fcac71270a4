"""The storage conformance suite: the one set of tests every storage plugin runs unchanged.

A storage plugin proves it keeps the contract of :class:`sessionkit.Storage` by subclassing
:class:`StorageConformance` in one of its test modules::

    from sessionkit.testing import StorageConformance

    class TestMyStorage(StorageConformance):
        clock_injectable = True          # make_storage honours `clock` for every TTL decision

        def make_storage(self, namespace, clock):
            return MyStorage(prefix=f"{namespace}:", clock=clock)

Every test runs twice, through the sync methods (``[sync]``) and through their async twins
(``[async]``). The async runs own a private event loop, in which the storage is created, used
and closed, so they neither depend on the consumer's pytest-asyncio mode nor hand a loop-bound
client (``redis.asyncio``, ``AsyncMongoClient``) to another loop.

This module imports pytest and Hypothesis at the top: it is meant for test code only, and the
core package never imports it.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, ClassVar, Literal, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from ._inspect import CountableStorage, PurgeableStorage, ScannableStorage
from ._storage import AtomicStorage, ConditionalStorage, CreatingStorage, Storage

__all__ = ["FakeClock", "Harness", "StorageConformance", "StorageHandle"]

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


@attrs.define
class FakeClock:
    """A clock that moves only when told to, so TTL tests run instantly and never flake.

    It starts at the current wall-clock second (a whole number): a backend that stores
    absolute expiry times next to its own server-side cleanup (a Mongo TTL index) then sees
    plausible dates, and expiry times built from whole-second steps stay exact floats.
    """

    now: float = attrs.field(factory=lambda: float(int(time.time())))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float | timedelta) -> float:
        """Move forward by ``seconds``; return the new time. A clock never runs backwards."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError(f"a clock never goes back; got advance({seconds!r})")
        self.now += step
        return self.now


def _new_namespace() -> str:
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

    def __init__(self, suite: StorageConformance, mode: Mode, namespace: str) -> None:
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
        handle = StorageHandle(storage, self)
        self._opened.append(handle)
        return handle

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: move the fake clock, or really sleep when there is none."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        """Close every storage left open, then the loop; re-raise the first failure."""
        errors: list[BaseException] = []
        for handle in self._opened:
            if not handle.closed:
                try:
                    handle.close()
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


class StorageConformance:
    """Subclass in a test module as ``class TestMyStorage(StorageConformance)`` and implement
    :meth:`make_storage`.

    The subclass inherits every test of the contract. Set :attr:`clock_injectable` when the
    storage takes every TTL decision from the ``clock`` it is given: the suite then moves a
    :class:`FakeClock` instead of sleeping, and its state machine exercises expiry. Set
    :attr:`conditional` to ``False`` when the storage has no ``replace``/``areplace``, and
    :attr:`atomic` to ``True`` when it has ``take`` and ``replace_if`` (an
    :class:`~sessionkit.AtomicStorage`), and :attr:`creating` to ``True`` when it has
    ``create`` (a :class:`~sessionkit.CreatingStorage`): the suite then checks those too.
    """

    clock_injectable: ClassVar[bool] = False
    conditional: ClassVar[bool] = True
    #: Off by default, so a plugin written before ``AtomicStorage`` existed still conforms.
    atomic: ClassVar[bool] = False
    #: Off by default for the same reason: ``CreatingStorage`` came later still.
    creating: ClassVar[bool] = False

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        """Open a storage whose keys live in ``namespace`` (a prefix, a table, a collection).

        ``namespace`` is unique per test: a letter, then letters, digits and underscores. Two
        storages made with different namespaces must not see each other's keys, and ``reset``
        of one must leave the other intact, even when both share a server or a file.
        ``clock`` (seconds, a :class:`FakeClock`) is given when :attr:`clock_injectable`;
        otherwise it is ``None`` and the storage keeps its own time.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_storage()")

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture(params=["sync", "async"])
    def harness(self, request: pytest.FixtureRequest) -> Iterator[Harness]:
        """A :class:`Harness` in sync or async mode; every test using it runs in both."""
        harness = Harness(self, request.param, _new_namespace())
        yield harness
        harness.close()

    @pytest.fixture
    def storage(self, harness: Harness) -> StorageHandle:
        """A storage on this test's namespace, closed at teardown."""
        return harness.open()

    def _require_conditional(self) -> None:
        if not self.conditional:
            pytest.skip("storage declares conditional = False (no replace/areplace)")

    def _require_atomic(self) -> None:
        if not self.atomic:
            pytest.skip("storage declares atomic = False (no take/replace_if)")

    def _require_creating(self) -> None:
        if not self.creating:
            pytest.skip("storage declares creating = False (no create)")

    # -- shape ----------------------------------------------------------------------------

    def test_storage_satisfies_the_protocol(self, storage: StorageHandle) -> None:
        assert isinstance(storage.storage, Storage)

    def test_conditional_flag_matches_what_the_core_sees(self, storage: StorageHandle) -> None:
        """The core calls ``replace`` exactly when the storage looks like a ConditionalStorage."""
        looks_conditional = isinstance(storage.storage, ConditionalStorage)
        assert looks_conditional == self.conditional, (
            f"conditional = {self.conditional}, but isinstance(storage, ConditionalStorage) is "
            f"{looks_conditional}; the core decides whether to call replace() by that isinstance"
        )

    def test_atomic_flag_matches_what_the_core_sees(self, storage: StorageHandle) -> None:
        """The core calls ``take``/``replace_if`` exactly when the storage looks atomic."""
        looks_atomic = isinstance(storage.storage, AtomicStorage)
        assert looks_atomic == self.atomic, (
            f"atomic = {self.atomic}, but isinstance(storage, AtomicStorage) is {looks_atomic}"
        )

    # -- get / set / delete ----------------------------------------------------------------

    def test_get_absent_key_returns_none(self, storage: StorageHandle) -> None:
        assert storage.get("absent") is None

    def test_set_then_get_returns_the_same_bytes(self, storage: StorageHandle) -> None:
        storage.set("k", b"value", None)
        got = storage.get("k")
        assert got == b"value"
        assert type(got) is bytes

    def test_set_overwrites_the_value(self, storage: StorageHandle) -> None:
        storage.set("k", b"first", None)
        storage.set("k", b"second", LONG_TTL)
        assert storage.get("k") == b"second"

    def test_delete_removes_the_key(self, storage: StorageHandle) -> None:
        storage.set("k", b"v", None)
        storage.set("other", b"o", None)
        storage.delete("k")
        assert storage.get("k") is None
        assert storage.touch("k", LONG_TTL) is False
        assert storage.get("other") == b"o"

    def test_delete_absent_key_is_no_error(self, storage: StorageHandle) -> None:
        storage.delete("absent")
        assert storage.get("absent") is None

    # -- TTL --------------------------------------------------------------------------------

    def test_ttl_none_means_no_expiry(self, harness: Harness, storage: StorageHandle) -> None:
        storage.set("k", b"v", None)
        if harness.clock is not None:  # with real time, the expiry test covers the long wait
            harness.clock.advance(timedelta(days=3650))
        assert storage.get("k") == b"v"

    def test_ttl_is_honoured_on_read(self, harness: Harness, storage: StorageHandle) -> None:
        """An expired key is absent at once, whatever the backend's own cleanup has done."""
        storage.set("short", b"s", SHORT_TTL)
        storage.set("forever", b"f", None)
        storage.set("short_then_forever", b"1", SHORT_TTL)
        storage.set("short_then_forever", b"2", None)  # a new set replaces the TTL ...
        storage.set("forever_then_short", b"1", None)
        storage.set("forever_then_short", b"2", SHORT_TTL)  # ... in both directions
        assert storage.get("short") == b"s"
        harness.wait(PAST_SHORT_TTL)
        assert storage.get("short") is None
        assert storage.get("forever") == b"f"
        assert storage.get("short_then_forever") == b"2"
        assert storage.get("forever_then_short") is None

    def test_non_positive_ttl_is_rejected(self, storage: StorageHandle) -> None:
        """A zero or negative TTL is a caller's bug (see ``ttl_seconds``), not a no-op write."""
        storage.set("present", b"v", None)
        for ttl in (timedelta(0), timedelta(seconds=-5)):
            with pytest.raises(ValueError, match="ttl"):
                storage.set("k", b"v", ttl)
            with pytest.raises(ValueError, match="ttl"):
                storage.touch("present", ttl)
        assert storage.get("k") is None
        assert storage.get("present") == b"v"

    # -- touch ------------------------------------------------------------------------------

    def test_touch_renews_the_ttl(self, harness: Harness, storage: StorageHandle) -> None:
        for key in ("renewed", "made_permanent", "untouched"):
            storage.set(key, key.encode(), SHORT_TTL)
        harness.wait(0.7)
        assert storage.touch("renewed", LONG_TTL) is True
        assert storage.touch("made_permanent", None) is True
        harness.wait(0.7)  # past the original expiry of all three
        assert storage.get("renewed") == b"renewed"
        assert storage.get("made_permanent") == b"made_permanent"
        assert storage.get("untouched") is None

    def test_touch_keeps_the_value(self, storage: StorageHandle) -> None:
        storage.set("k", b"v", LONG_TTL)
        assert storage.touch("k", LONG_TTL) is True
        assert storage.get("k") == b"v"

    def test_touch_absent_key_returns_false(self, storage: StorageHandle) -> None:
        assert storage.touch("absent", LONG_TTL) is False
        assert storage.get("absent") is None

    def test_touch_expired_key_returns_false(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        storage.set("k", b"v", SHORT_TTL)
        harness.wait(PAST_SHORT_TTL)
        assert storage.touch("k", LONG_TTL) is False
        assert storage.get("k") is None, "touch must not revive an expired key"

    # -- replace (ConditionalStorage) -------------------------------------------------------

    def test_replace_absent_key_returns_false_and_writes_nothing(
        self, storage: StorageHandle
    ) -> None:
        self._require_conditional()
        assert storage.replace("absent", b"v", LONG_TTL) is False
        assert storage.get("absent") is None

    def test_replace_present_key_overwrites_the_value(self, storage: StorageHandle) -> None:
        self._require_conditional()
        storage.set("k", b"old", LONG_TTL)
        assert storage.replace("k", b"new", LONG_TTL) is True
        assert storage.get("k") == b"new"

    def test_replace_deleted_key_returns_false(self, storage: StorageHandle) -> None:
        """The race ``replace`` exists for: a save after another request's destroy()."""
        self._require_conditional()
        storage.set("k", b"v", LONG_TTL)
        storage.delete("k")
        assert storage.replace("k", b"resurrected", LONG_TTL) is False
        assert storage.get("k") is None

    def test_replace_expired_key_returns_false_and_sets_the_new_ttl_otherwise(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        self._require_conditional()
        storage.set("expiring", b"v", SHORT_TTL)
        storage.set("kept", b"v", SHORT_TTL)
        assert storage.replace("kept", b"w", None) is True  # the replace's TTL wins
        harness.wait(PAST_SHORT_TTL)
        assert storage.replace("expiring", b"w", LONG_TTL) is False
        assert storage.get("expiring") is None, "replace must not revive an expired key"
        assert storage.get("kept") == b"w"

    def test_replace_rejects_non_positive_ttl(self, storage: StorageHandle) -> None:
        self._require_conditional()
        storage.set("k", b"v", None)
        with pytest.raises(ValueError, match="ttl"):
            storage.replace("k", b"w", timedelta(0))
        assert storage.get("k") == b"v"

    def test_creating_flag_matches_what_the_core_sees(self, storage: StorageHandle) -> None:
        """The core writes new sessions with ``create`` exactly when the storage has it."""
        looks_creating = isinstance(storage.storage, CreatingStorage)
        assert looks_creating == self.creating, (
            f"creating = {self.creating}, but isinstance(storage, CreatingStorage) is "
            f"{looks_creating}"
        )

    # -- create (CreatingStorage) ---------------------------------------------------------------

    def test_create_writes_an_absent_key(self, harness: Harness, storage: StorageHandle) -> None:
        self._require_creating()
        assert storage.create("k", b"v", SHORT_TTL) is True
        assert storage.get("k") == b"v"
        harness.wait(PAST_SHORT_TTL)
        assert storage.get("k") is None, "create must honour its TTL"

    def test_create_never_overwrites_a_live_key(self, storage: StorageHandle) -> None:
        """The promise it exists for: a colliding new id must not overwrite someone's session."""
        self._require_creating()
        storage.set("k", b"someone else's", LONG_TTL)
        assert storage.create("k", b"mine", LONG_TTL) is False
        assert storage.get("k") == b"someone else's"
        assert storage.create("k", b"mine", None) is False
        assert storage.get("k") == b"someone else's"

    def test_create_takes_an_expired_or_deleted_key(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        self._require_creating()
        storage.set("expiring", b"old", SHORT_TTL)
        harness.wait(PAST_SHORT_TTL)
        assert storage.create("expiring", b"new", LONG_TTL) is True, "an expired record is none"
        assert storage.get("expiring") == b"new"
        storage.set("deleted", b"old", LONG_TTL)
        storage.delete("deleted")
        assert storage.create("deleted", b"new", None) is True
        assert storage.get("deleted") == b"new"

    def test_create_rejects_non_positive_ttl(self, storage: StorageHandle) -> None:
        self._require_creating()
        with pytest.raises(ValueError, match="ttl"):
            storage.create("k", b"v", timedelta(0))
        assert storage.get("k") is None

    # -- take and replace_if (AtomicStorage) --------------------------------------------------

    def test_take_deletes_a_live_key_and_says_so(self, storage: StorageHandle) -> None:
        self._require_atomic()
        storage.set("k", b"v", LONG_TTL)
        storage.set("other", b"o", None)
        assert storage.take("k") is True
        assert storage.get("k") is None
        assert storage.take("k") is False, "a second take finds nothing"
        assert storage.get("other") == b"o"

    def test_take_absent_or_expired_key_returns_false(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        self._require_atomic()
        assert storage.take("absent") is False
        storage.set("expiring", b"v", SHORT_TTL)
        harness.wait(PAST_SHORT_TTL)
        assert storage.take("expiring") is False, "an expired record is no record"
        assert storage.get("expiring") is None

    def test_replace_if_writes_only_over_the_expected_bytes(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """The race it exists for: a renewal must not undo another request's save."""
        self._require_atomic()
        storage.set("k", b"loaded", SHORT_TTL)
        assert storage.replace_if("k", b"loaded", b"renewed", LONG_TTL) is True
        assert storage.replace_if("k", b"loaded", b"stale", LONG_TTL) is False
        assert storage.replace_if("k", b"renewe", b"prefix", LONG_TTL) is False
        harness.wait(PAST_SHORT_TTL)  # the new TTL replaced the short one
        assert storage.get("k") == b"renewed"

    def test_replace_if_absent_deleted_or_expired_key_returns_false(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        self._require_atomic()
        assert storage.replace_if("absent", b"", b"v", LONG_TTL) is False
        assert storage.get("absent") is None
        storage.set("deleted", b"v", LONG_TTL)
        storage.delete("deleted")
        assert storage.replace_if("deleted", b"v", b"w", LONG_TTL) is False
        assert storage.get("deleted") is None
        storage.set("expiring", b"v", SHORT_TTL)
        harness.wait(PAST_SHORT_TTL)
        assert storage.replace_if("expiring", b"v", b"w", LONG_TTL) is False
        assert storage.get("expiring") is None, "replace_if must not revive an expired key"

    @pytest.mark.parametrize("kind", list(BINARY_VALUES))
    def test_replace_if_compares_binary_values_exactly(
        self, storage: StorageHandle, kind: str
    ) -> None:
        self._require_atomic()
        value = BINARY_VALUES[kind]()
        storage.set("k", value, LONG_TTL)
        assert storage.replace_if("k", value + b"\x00", b"x", LONG_TTL) is False
        assert storage.replace_if("k", value, b"x", None) is True
        assert storage.get("k") == b"x"

    def test_replace_if_rejects_non_positive_ttl(self, storage: StorageHandle) -> None:
        self._require_atomic()
        storage.set("k", b"v", None)
        with pytest.raises(ValueError, match="ttl"):
            storage.replace_if("k", b"v", b"w", timedelta(0))
        assert storage.get("k") == b"v"

    # -- reset and namespaces ---------------------------------------------------------------

    def test_reset_drops_every_key(self, storage: StorageHandle) -> None:
        storage.set("a", b"1", None)
        storage.set("b", b"2", LONG_TTL)
        storage.reset()
        assert storage.get("a") is None
        assert storage.get("b") is None
        storage.set("a", b"3", None)  # still usable afterwards
        assert storage.get("a") == b"3"

    def test_namespaces_do_not_share_keys(self, harness: Harness) -> None:
        first, second = harness.open(), harness.open(_new_namespace())
        first.set("k", b"first", None)
        assert second.get("k") is None
        second.set("k", b"second", None)
        assert first.get("k") == b"first"
        second.delete("k")
        assert first.get("k") == b"first"

    def test_reset_drops_only_its_own_namespace(self, harness: Harness) -> None:
        mine, theirs = harness.open(), harness.open(_new_namespace())
        for key in ("k", "only_theirs"):
            theirs.set(key, b"theirs", None)
        mine.set("k", b"mine", None)
        mine.reset()
        assert mine.get("k") is None
        assert theirs.get("k") == b"theirs"
        assert theirs.get("only_theirs") == b"theirs"

    # -- values and keys --------------------------------------------------------------------

    @pytest.mark.parametrize("kind", list(BINARY_VALUES))
    def test_binary_values_round_trip(self, storage: StorageHandle, kind: str) -> None:
        value = BINARY_VALUES[kind]()
        storage.set("k", value, LONG_TTL)
        got = storage.get("k")
        assert got is not None, "a stored value (even b'') must not read as absent"
        assert type(got) is bytes
        assert got == value
        assert storage.touch("k", LONG_TTL) is True

    def test_odd_keys_are_stored_literally(self, storage: StorageHandle) -> None:
        for index, key in enumerate(ODD_KEYS):
            storage.set(key, f"value {index}".encode(), LONG_TTL)
        for index, key in enumerate(ODD_KEYS):
            assert storage.get(key) == f"value {index}".encode(), key
        storage.delete("*")
        assert storage.get("*") is None
        assert storage.get("a*") == f"value {ODD_KEYS.index('a*')}".encode()

    @pytest.mark.parametrize("key", ODD_KEYS)
    def test_odd_key_never_matches_other_keys(self, storage: StorageHandle, key: str) -> None:
        """Security requirement 5: client text never becomes an operator or a pattern."""
        for bystander in BYSTANDER_KEYS:
            storage.set(bystander, bystander.encode(), LONG_TTL)
        assert storage.get(key) is None
        assert storage.touch(key, LONG_TTL) is False
        if self.conditional:
            assert storage.replace(key, b"x", LONG_TTL) is False
        if self.atomic:
            assert storage.take(key) is False
            assert storage.replace_if(key, b"", b"x", LONG_TTL) is False
        storage.delete(key)
        storage.set(key, b"odd", LONG_TTL)
        storage.delete(key)
        for bystander in BYSTANDER_KEYS:
            assert storage.get(bystander) == bystander.encode(), bystander

    # -- close and concurrency --------------------------------------------------------------

    def test_close_is_idempotent(self, storage: StorageHandle) -> None:
        storage.set("k", b"v", None)
        storage.close()
        storage.close()

    def test_concurrent_calls_do_not_interfere(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """Many writers at once (threads, or tasks on one loop) each read back their own keys."""
        keys = [f"worker{w}_key{i}" for w in range(8) for i in range(8)]
        if harness.mode == "async":
            raw = storage.storage

            async def one(key: str) -> bytes | None:
                await raw.aset(key, key.encode(), LONG_TTL)
                return await raw.aget(key)

            async def all_at_once() -> list[bytes | None]:
                return list(await asyncio.gather(*(one(k) for k in keys)))

            results = harness.run(all_at_once())
        else:
            results = _in_threads(keys, storage)
        assert results == [key.encode() for key in keys]

    # -- optional abilities for operators (sessionkit._inspect) ---------------------------------
    #
    # Each runs only for a storage that has the method (the command line decides the same way),
    # and in sync mode only, as the abilities are synchronous. The tests fill a neighbouring
    # namespace too, so a walk that strays outside its own is caught.

    @pytest.fixture
    def sync_harness(self) -> Iterator[Harness]:
        """A :class:`Harness` in sync mode only, for the optional abilities."""
        harness = Harness(self, "sync", _new_namespace())
        yield harness
        harness.close()

    def test_count_counts_the_live_keys_of_its_namespace(self, sync_harness: Harness) -> None:
        storage = sync_harness.open().storage
        if not isinstance(storage, CountableStorage):
            pytest.skip(f"{_OPTIONAL}: no count()")
        assert storage.count() == 0
        _fill(sync_harness, storage)
        assert storage.count() == len(FILLED)
        sync_harness.wait(PAST_SHORT_TTL)  # "short" expires
        assert storage.count() == len(FILLED) - 1
        storage.delete("forever")
        assert storage.count() == len(FILLED) - 2
        storage.reset()
        assert storage.count() == 0

    def test_scan_yields_exactly_the_live_pairs_of_its_namespace(
        self, sync_harness: Harness
    ) -> None:
        storage = sync_harness.open().storage
        if not isinstance(storage, ScannableStorage):
            pytest.skip(f"{_OPTIONAL}: no scan()")
        assert list(storage.scan()) == []
        expected = _fill(sync_harness, storage)
        for key in ODD_KEYS:
            storage.set(key, key.encode(), LONG_TTL)
            expected[key] = key.encode()
        sync_harness.wait(PAST_SHORT_TTL)
        del expected["short"]
        yielded = list(storage.scan())
        assert all(type(key) is str and type(value) is bytes for key, value in yielded)
        assert sorted(yielded) == sorted(expected.items())  # each key once, its value exact

    def test_scan_tolerates_deleting_the_keys_it_yielded(self, sync_harness: Harness) -> None:
        """What ``sessionkit purge`` does, over more keys than one page of a paged walk."""
        storage = sync_harness.open().storage
        if not isinstance(storage, ScannableStorage):
            pytest.skip(f"{_OPTIONAL}: no scan()")
        keys = [f"k{index:04}" for index in range(SCAN_KEYS)]
        for key in keys:
            storage.set(key, key.encode(), LONG_TTL)
        seen = []
        for key, value in storage.scan():
            assert value == key.encode()
            storage.delete(key)
            seen.append(key)
        assert sorted(seen) == keys
        assert list(storage.scan()) == []

    def test_purge_expired_leaves_live_keys_alone(self, sync_harness: Harness) -> None:
        """It returns how many it deleted: every expired key of its namespace, or 0 for a
        backend whose server deletes expired keys itself."""
        storage = sync_harness.open().storage
        if not isinstance(storage, PurgeableStorage):
            pytest.skip(f"{_OPTIONAL}: no purge_expired()")
        expected = _fill(sync_harness, storage)
        storage.set("short_too", b"s", SHORT_TTL)
        sync_harness.wait(PAST_SHORT_TTL)
        assert storage.purge_expired() in (0, 2)
        assert storage.purge_expired() == 0
        del expected["short"]
        for key, value in expected.items():
            assert storage.get(key) == value, key

    # -- the model ----------------------------------------------------------------------------

    def test_state_machine_matches_a_dict_model(self, harness: Harness) -> None:
        """Random sequences of every operation agree with a dict that knows about expiry."""
        suite, mode, namespace = self, harness.mode, harness.namespace

        class Machine(_StorageMachine):
            def __init__(self) -> None:
                super().__init__(suite, mode, namespace)

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=20,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


_OPTIONAL = "an optional ability of sessionkit._inspect"

#: What :func:`_fill` writes: key -> (value, TTL). One key expires after ``PAST_SHORT_TTL``.
FILLED: dict[str, tuple[bytes, timedelta | None]] = {
    "short": (b"s", SHORT_TTL),
    "long": (b"l", LONG_TTL),
    "forever": (b"f", None),
    "empty": (b"", LONG_TTL),
}

#: Keys the scan-and-delete check writes: more than one page of a paged walk (SQLite reads
#: 256 rows a statement).
SCAN_KEYS = 300


def _fill(harness: Harness, storage: Storage) -> dict[str, bytes]:
    """Write :data:`FILLED` to ``storage``, and look-alikes to a neighbouring namespace (which
    the test must never see); return the values written, by key."""
    neighbour = harness.open(_new_namespace()).storage
    for key, (value, ttl) in FILLED.items():
        storage.set(key, value, ttl)
        neighbour.set(key, b"neighbour", None)
    neighbour.set("only_the_neighbours", b"neighbour", None)
    return {key: value for key, (value, _) in FILLED.items()}


def _in_threads(keys: list[str], storage: StorageHandle) -> list[bytes | None]:
    results: dict[str, bytes | None] = {}
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for key in chunk:
                storage.set(key, key.encode(), LONG_TTL)
                results[key] = storage.get(key)
        except BaseException as exc:  # surfaced in the test's own thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(keys[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[key] for key in keys]


#: Few keys, so that operations in a random sequence often meet the same key.
MACHINE_KEYS: tuple[str, ...] = ("a", "b", "a*", "[a]", "ключ")
_KEYS = st.sampled_from(MACHINE_KEYS)
_VALUES = st.binary(max_size=32)
_TTLS = st.one_of(st.none(), st.integers(1, 8))


class _StorageMachine(RuleBasedStateMachine):
    """A storage against a model: key -> (value, absolute expiry or None) on the same clock.

    A rule's ``ttl`` is ``None`` (no expiry) or a whole number ``n``. With a fake clock it
    means ``n + 0.5`` seconds while the clock only moves by whole seconds, so no read lands
    exactly on an expiry instant, where backends may fairly disagree (``<`` versus ``<=``).
    With real time it means an hour, which no run outlasts.
    """

    def __init__(self, suite: StorageConformance, mode: Mode, namespace: str) -> None:
        super().__init__()
        self.suite = suite
        self.harness = Harness(suite, mode, namespace)
        try:
            self.storage = self.harness.open()
            self.storage.reset()  # the namespace is shared by this test's examples
        except BaseException:
            self.harness.close()
            raise
        self.model: dict[str, tuple[bytes, float | None]] = {}

    def _ttl(self, choice: int | None) -> timedelta | None:
        if choice is None:
            return None
        return timedelta(seconds=choice + 0.5) if self.harness.clock is not None else LONG_TTL

    def _now(self) -> float:
        clock = self.harness.clock
        return clock() if clock is not None else time.time()

    def _remember(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self.model[key] = (value, None if ttl is None else self._now() + ttl.total_seconds())

    def _live(self, key: str) -> bytes | None:
        entry = self.model.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self._now()):
            return None
        return entry[0]

    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self.storage.set(key, value, self._ttl(ttl))
        self._remember(key, value, self._ttl(ttl))

    @rule(key=_KEYS)
    def get(self, key: str) -> None:
        got, expected = self.storage.get(key), self._live(key)
        assert got == expected, f"get({key!r}) returned {got!r}; the model holds {expected!r}"

    @rule(key=_KEYS)
    def delete(self, key: str) -> None:
        self.storage.delete(key)
        self.model.pop(key, None)

    @rule(key=_KEYS, ttl=_TTLS)
    def touch(self, key: str, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.touch(key, self._ttl(ttl)) is (live is not None)
        if live is not None:
            self._remember(key, live, self._ttl(ttl))

    @precondition(lambda self: self.suite.conditional)
    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def replace(self, key: str, value: bytes, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.replace(key, value, self._ttl(ttl)) is (live is not None)
        if live is not None:
            self._remember(key, value, self._ttl(ttl))

    @precondition(lambda self: self.suite.creating)
    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def create(self, key: str, value: bytes, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.create(key, value, self._ttl(ttl)) is (live is None)
        if live is None:
            self._remember(key, value, self._ttl(ttl))

    @precondition(lambda self: self.suite.atomic)
    @rule(key=_KEYS)
    def take(self, key: str) -> None:
        live = self._live(key)
        assert self.storage.take(key) is (live is not None)
        self.model.pop(key, None)

    @precondition(lambda self: self.suite.atomic)
    @rule(key=_KEYS, guess=st.one_of(st.none(), _VALUES), value=_VALUES, ttl=_TTLS)
    def replace_if(self, key: str, guess: bytes | None, value: bytes, ttl: int | None) -> None:
        """``guess=None`` expects the live value (the usual renewal); bytes, whatever it is."""
        live = self._live(key)
        expected = (live or b"") if guess is None else guess
        matches = live is not None and live == expected
        assert self.storage.replace_if(key, expected, value, self._ttl(ttl)) is matches
        if matches:
            self._remember(key, value, self._ttl(ttl))

    @rule()
    def reset(self) -> None:
        self.storage.reset()
        self.model.clear()

    @precondition(lambda self: self.harness.clock is not None)
    @rule(seconds=st.integers(1, 8))
    def advance_clock_then_read_every_key(self, seconds: int) -> None:
        """Expiry is checked where it happens: right after time passes."""
        assert self.harness.clock is not None
        self.harness.clock.advance(seconds)
        self.read_every_key()

    @rule()
    def read_every_key(self) -> None:
        for key in MACHINE_KEYS:
            self.get(key)

    def teardown(self) -> None:
        try:
            self.storage.reset()
        finally:
            self.harness.close()
