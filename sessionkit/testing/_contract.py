"""The storage contract, test by test: what get/set/delete/touch/reset, the conditional,
creating and atomic writes, namespaces, odd keys and values, and the operator abilities promise."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from .._abilities import CountableStorage, PurgeableStorage, ScannableStorage
from .._storage import AtomicStorage, ConditionalStorage, CreatingStorage, Storage
from ._base import SuiteBase
from ._harness import (
    BINARY_VALUES,
    BYSTANDER_KEYS,
    LONG_TTL,
    ODD_KEYS,
    PAST_SHORT_TTL,
    SHORT_TTL,
    Harness,
    StorageHandle,
    new_namespace,
)
from ._machine import _StorageMachine


class ContractChecks(SuiteBase):
    """The contract of :class:`~sessionkit.Storage` and its optional protocols, one promise a
    test, each run through the sync methods and their async twins."""

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
        first, second = harness.open(), harness.open(new_namespace())
        first.set("k", b"first", None)
        assert second.get("k") is None
        second.set("k", b"second", None)
        assert first.get("k") == b"first"
        second.delete("k")
        assert first.get("k") == b"first"

    def test_reset_drops_only_its_own_namespace(self, harness: Harness) -> None:
        mine, theirs = harness.open(), harness.open(new_namespace())
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

    # -- optional abilities for operators (sessionkit._abilities) ---------------------------------
    #
    # Each runs only for a storage that has the method (the command line decides the same way),
    # and in sync mode only, as the abilities are synchronous. The tests fill a neighbouring
    # namespace too, so a walk that strays outside its own is caught.

    def test_count_counts_the_live_keys_of_its_namespace(self, sync_harness: Harness) -> None:
        storage = sync_harness.open().storage
        if not isinstance(storage, CountableStorage):
            pytest.skip(f"{_OPTIONAL}: no count()")
        assert storage.count() == 0
        filled_by = time.monotonic() + SHORT_TTL.total_seconds()
        _fill(sync_harness, storage)
        counted = storage.count()
        if time.monotonic() < filled_by:
            assert counted == len(FILLED)
        else:  # a loaded machine took longer than "short" lives: on a real clock it may be gone
            assert counted in (len(FILLED), len(FILLED) - 1)
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

    def test_scan_during_concurrent_writes_yields_every_untouched_key_once(
        self, sync_harness: Harness
    ) -> None:
        """``sessionkit stats`` and ``purge`` walk a store that requests keep writing: a key
        that lives through the whole walk, untouched, is yielded exactly once (not missed,
        not twice), whatever is created, rewritten and deleted around it meanwhile."""
        storage = sync_harness.open().storage
        if not isinstance(storage, ScannableStorage):
            pytest.skip(f"{_OPTIONAL}: no scan()")
        stable = {f"s{index:04}": f"s{index}".encode() for index in range(SCAN_KEYS)}
        churn = [f"c{index:04}" for index in range(SCAN_KEYS)]
        for key, value in stable.items():
            storage.set(key, value, LONG_TTL)
        for key in churn:
            storage.set(key, b"old", LONG_TTL)
        stop = threading.Event()
        failures: list[BaseException] = []

        def write() -> None:
            # Through the same object: a storage serves a threaded server's requests at once.
            writer = storage
            turn = 0
            try:
                # Paced, so the writes go on through the whole walk, and bounded, so a walk
                # that restarts or follows the new keys still ends.
                while not stop.wait(0.001) and turn < 20 * SCAN_KEYS:
                    key = churn[turn % len(churn)]
                    if turn % 3 == 0:
                        writer.delete(key)
                    else:
                        writer.set(key, b"x" * (turn % 512), LONG_TTL)
                    writer.set(f"n{turn:05}", b"new", LONG_TTL)
                    turn += 1
            except BaseException as exc:  # reported below, not lost in the thread
                failures.append(exc)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        try:
            yielded = [key for key, _ in storage.scan() if key.startswith("s")]
        finally:
            stop.set()
            thread.join(30)
        assert not failures, f"a concurrent writer failed: {failures[0]!r}"
        repeated = sorted({key for key in yielded if yielded.count(key) > 1})
        missed = sorted(set(stable) - set(yielded))
        assert not repeated and not missed, (
            "scan during concurrent writes must yield each untouched live key once: "
            f"{len(missed)} missed (e.g. {missed[:3]}), {len(repeated)} repeated "
            f"(e.g. {repeated[:3]})"
        )

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


_OPTIONAL = "an optional ability of sessionkit._abilities"

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
    neighbour = harness.open(new_namespace()).storage
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
