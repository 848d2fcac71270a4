"""The promises a plugin breaks without any single call looking wrong.

The contract checks (``_contract``) call one method at a time on a healthy storage. Users feel
other failures: a dead server that makes the app answer 500 instead of 503, two requests that
both ``take`` one record, an async client reused in a second event loop, a typo'd URL option
accepted in silence, a TTL rounded down. Each check here provokes one of them, and its failure
message names the promise, so a plugin author knows what to fix without reading the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from .._discovery import open_storage
from .._errors import ConfigError, StorageError
from .._storage import AtomicStorage, ConditionalStorage, CreatingStorage, Storage
from ._base import SuiteBase
from ._clock import FakeClock
from ._harness import LONG_TTL, Harness, Mode, StorageHandle, new_namespace

__all__ = ["AsyncLoopChecks", "CleanupAndTtlChecks", "FaultChecks", "RaceChecks", "UrlChecks"]

#: An option no plugin has: each must refuse it, as it would a typo.
UNKNOWN_OPTION = "sk_no_such_option"

#: Calls a check makes on a storage: (method name, arguments).
Call = tuple[str, tuple[Any, ...]]


def _calls(storage: Storage, mode: Mode) -> list[Call]:
    """Every method the storage has, with harmless arguments: the core's and the optional
    abilities' (those are sync only)."""
    calls: list[Call] = [
        ("get", ("k",)),
        ("set", ("k", b"v", LONG_TTL)),
        ("delete", ("k",)),
        ("touch", ("k", LONG_TTL)),
        ("reset", ()),
    ]
    if isinstance(storage, ConditionalStorage):
        calls.append(("replace", ("k", b"v", LONG_TTL)))
    if isinstance(storage, CreatingStorage):
        calls.append(("create", ("k", b"v", LONG_TTL)))
    if isinstance(storage, AtomicStorage):
        calls += [("take", ("k",)), ("replace_if", ("k", b"v", b"w", LONG_TTL))]
    if mode == "sync":
        for ability in ("count", "scan", "purge_expired"):
            if callable(getattr(storage, ability, None)):
                calls.append((ability, ()))
    return calls


def _in_daemon(work: Callable[[], None], timeout: float) -> bool:
    """Run ``work`` in a daemon thread; False when it has not finished within ``timeout``
    (a hung call must fail the check, not hang the test run)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


class FaultChecks(SuiteBase):
    """Driver errors surface as ``StorageError``, chained, and quickly."""

    @pytest.mark.parametrize("mode", ["sync", "async"])
    def test_driver_errors_surface_as_storage_error(self, mode: Mode) -> None:
        """The middleware answers 503 for a ``StorageError`` and 500 for anything else: a
        driver exception that escapes turns an outage into a crash, and one without
        ``__cause__`` hides what the driver said from the operator's log."""
        if self.no_driver_faults:
            pytest.skip(f"no driver faults: {self.no_driver_faults}")
        storage = self.make_broken_storage(new_namespace())
        calls = _calls(storage, mode)
        outcomes: dict[str, tuple[float, BaseException | None, object]] = {}

        def invoke(name: str, args: tuple[Any, ...]) -> object:
            started = time.monotonic()
            try:
                result = getattr(storage, name)(*args)
                value = list(result) if name == "scan" else result
            except Exception as exc:
                outcomes[name] = (time.monotonic() - started, exc, None)
            else:
                outcomes[name] = (time.monotonic() - started, None, value)
            return None

        async def invoke_async(name: str, args: tuple[Any, ...]) -> None:
            started = time.monotonic()
            try:
                value = await getattr(storage, f"a{name}")(*args)
            except Exception as exc:
                outcomes[name] = (time.monotonic() - started, exc, None)
            else:
                outcomes[name] = (time.monotonic() - started, None, value)

        async def all_at_once() -> None:
            # At once, so a driver that waits out its timeouts costs one wait, not one a call.
            await asyncio.gather(*(invoke_async(name, args) for name, args in calls))
            # In the loop its clients belong to; a broken storage may fail to close, too.
            with contextlib.suppress(Exception):
                await storage.aclose()

        bound = self.fault_timeout + 5
        try:
            if mode == "async":
                finished = _in_daemon(lambda: asyncio.run(all_at_once()), bound)
            else:
                workers = [
                    threading.Thread(target=invoke, args=call, daemon=True) for call in calls
                ]
                for worker in workers:
                    worker.start()
                end = time.monotonic() + bound
                for worker in workers:
                    worker.join(max(0.0, end - time.monotonic()))
                finished = not any(worker.is_alive() for worker in workers)
        finally:
            with contextlib.suppress(Exception):  # a broken storage may fail to close, too
                storage.close()
        prefix = "" if mode == "sync" else "a"
        problems = []
        for name, (elapsed, exc, value) in sorted(outcomes.items()):
            call = f"{prefix}{name}()"
            if exc is None and name == "purge_expired" and value == 0:
                pass  # a server that expires keys itself has nothing to ask: no driver call
            elif exc is None:
                problems.append(f"{call} returned {value!r} instead of raising StorageError")
            elif not isinstance(exc, StorageError):
                problems.append(f"{call} let {type(exc).__module__}.{type(exc).__name__} escape")
            elif exc.__cause__ is None:
                problems.append(f"{call} raised StorageError without the driver error as cause")
            if elapsed > self.fault_timeout:
                problems.append(f"{call} took {elapsed:.1f} s (fault_timeout {self.fault_timeout})")
        if not finished:
            hung = [name for name, _ in calls if name not in outcomes]
            problems.append(f"{hung} had not returned after {bound} s")
        assert not problems, (
            "promise broken: driver errors surface as sessionkit.StorageError, with the "
            "driver's exception chained as __cause__ (raise StorageError(...) from exc), "
            "within fault_timeout:\n  " + "\n  ".join(problems)
        )


def _race_in_threads(
    handle: StorageHandle, keys: list[str], threads: int, op: Callable[[str, int], bool]
) -> list[list[int]]:
    """Call ``op(key, worker)`` from ``threads`` threads at once, key after key (a barrier
    lines them up each time); return, per key, the workers whose call returned True."""
    winners: list[list[int]] = [[] for _ in keys]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            for index, key in enumerate(keys):
                barrier.wait(timeout=30)
                if op(key, worker):
                    with lock:
                        winners[index].append(worker)
        except BaseException as exc:  # surfaced in the test's own thread below
            errors.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return winners


def _race_in_tasks(
    harness: Harness, keys: list[str], tasks: int, op: Callable[[str, int], Any]
) -> list[list[int]]:
    """Like :func:`_race_in_threads`, with ``tasks`` coroutines on the harness's loop."""

    async def one_key(key: str) -> list[int]:
        results = await asyncio.gather(*(op(key, worker) for worker in range(tasks)))
        return [worker for worker, won in enumerate(results) if won]

    async def every_key() -> list[list[int]]:
        return [await one_key(key) for key in keys]

    return harness.run(every_key())


def _race_child(
    url: str, races: list[tuple[str, str]], barrier: Any, out: Any, worker: int
) -> None:
    """One process of the two-process race: open the storage by URL, then make each
    ``(method, key)`` call of ``races`` at the same moment as the other process."""
    storage: Any = open_storage(url)
    try:
        for method, key in races:
            barrier.wait(timeout=30)
            won = getattr(storage, method)(key, *_race_args(method, worker))
            out.put((key, worker, bool(won)))
    finally:
        storage.close()


def _exactly_one(promise: str, keys: list[str], winners: list[list[int]]) -> None:
    bad = {key: won for key, won in zip(keys, winners, strict=False) if len(won) != 1}
    assert not bad, (
        f"promise broken: {promise}. Racing callers that each returned True, by key "
        f"(each key must have exactly one): {bad}"
    )


class RaceChecks(SuiteBase):
    """The atomic writes stay atomic when callers really race: threads, tasks, processes."""

    def _race(
        self, harness: Harness, storage: StorageHandle, method: str, keys: list[str], **kw: Any
    ) -> list[list[int]]:
        raw: Any = storage.storage
        if harness.mode == "sync":

            def call(key: str, worker: int) -> bool:
                return bool(getattr(raw, method)(key, *_race_args(method, worker)))

            return _race_in_threads(storage, keys, self.race_threads, call)

        def acall(key: str, worker: int) -> Any:
            return getattr(raw, f"a{method}")(key, *_race_args(method, worker))

        return _race_in_tasks(harness, keys, self.race_threads, acall)

    def test_take_is_atomic_under_concurrent_callers(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """Two requests must never both take one record: a read-then-delete ``take`` lets a
        regenerate() copy a session that a logout destroyed."""
        self._require_atomic()
        keys = [f"race{n}" for n in range(self.race_rounds)]
        for key in keys:
            storage.set(key, b"v0", None)
        winners = self._race(harness, storage, "take", keys)
        _exactly_one(
            "take is atomic: of concurrent take(key) calls exactly one wins", keys, winners
        )
        assert all(storage.get(key) is None for key in keys), "a taken record must be gone"

    def test_replace_if_is_atomic_under_concurrent_callers(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """Of callers that all read ``v0``, one may write over it; the rest see it changed."""
        self._require_atomic()
        keys = [f"race{n}" for n in range(self.race_rounds)]
        for key in keys:
            storage.set(key, b"v0", None)
        winners = self._race(harness, storage, "replace_if", keys)
        _exactly_one("replace_if is atomic: one writer over the expected bytes", keys, winners)
        for key, won in zip(keys, winners, strict=False):
            got = storage.get(key)
            assert got == f"w{won[0]}".encode(), f"{key}: the winner's write was lost: {got!r}"

    def test_create_is_atomic_under_concurrent_callers(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """Two new sessions drawing one id: exactly one create() may write it."""
        self._require_creating()
        keys = [f"race{n}" for n in range(self.race_rounds)]
        winners = self._race(harness, storage, "create", keys)
        _exactly_one("create is atomic: one writer of an absent key", keys, winners)
        for key, won in zip(keys, winners, strict=False):
            got = storage.get(key)
            assert got == f"w{won[0]}".encode(), f"{key}: another create overwrote it: {got!r}"

    def test_atomic_writes_hold_across_two_processes(self, sync_harness: Harness) -> None:
        """Workers of a pre-forking server are processes: a lock in one process is no lock.
        Two processes open :meth:`storage_url` and race ``take``, ``replace_if`` and (for a
        creating storage) ``create``: two workers drawing one new id must not both write it."""
        self._require_atomic()
        if not self.processes_share_storage:
            pytest.skip("processes_share_storage = False: one process sees these records")
        url = self.storage_url(sync_harness.namespace)
        assert url is not None, "processes_share_storage = True needs storage_url()"
        storage = sync_harness.open()
        methods = ("take", "replace_if", "create") if self.creating else ("take", "replace_if")
        races = [(method, f"{method}{n}") for method in methods for n in range(self.race_rounds)]
        for method, key in races:
            if method != "create":  # create races for a key nobody holds yet
                storage.set(key, b"v0", None)
        context = multiprocessing.get_context("spawn")  # fork would copy driver threads' locks
        barrier = context.Barrier(2)
        out = context.Queue()
        children = [
            context.Process(target=_race_child, args=(url, races, barrier, out, w))
            for w in range(2)
        ]
        for child in children:
            child.start()
        try:
            results = [out.get(timeout=60) for _ in range(2 * len(races))]
        finally:
            for child in children:
                child.join(30)
        assert [child.exitcode for child in children] == [0, 0], "a racing process failed"
        for method in methods:
            keys = [key for m, key in races if m == method]
            winners = [[w for k, w, won in results if k == key and won] for key in keys]
            _exactly_one(f"{method} is atomic across processes", keys, winners)
        for key, winner in ((k, w) for k, w, won in results if won and k.startswith("create")):
            got = storage.get(key)
            assert got == f"w{winner}".encode(), (
                f"{key}: the created record was overwritten: {got!r}"
            )


def _race_args(method: str, worker: int) -> tuple[Any, ...]:
    if method == "take":
        return ()
    if method == "replace_if":
        return (b"v0", f"w{worker}".encode(), None)
    return (f"w{worker}".encode(), None)  # create


def _open_sockets() -> int | None:
    """How many sockets this process holds open, or None where /proc cannot tell."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    count = 0
    for name in names:
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


@contextlib.contextmanager
def _unclosed_reports() -> Iterator[list[str]]:
    """The first lines of what reported itself unclosed (``ResourceWarning``) inside the
    block, in the list it yields, filled as the block ends; other warnings go on as raised."""
    unclosed: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield unclosed
    for w in caught:
        if w.category is ResourceWarning:
            unclosed.append(str(w.message).splitlines()[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class AsyncLoopChecks(SuiteBase):
    """An async client belongs to one event loop; closing the storage releases every one."""

    #: Event loops the check runs one after another, each closed before the next starts.
    loops = 3

    def test_async_calls_work_in_successive_event_loops_and_close_releases(self) -> None:
        """A storage opened at import time serves every loop the process runs (tests, CLI
        commands, ``asyncio.run`` per job); a client cached from a closed loop fails in the
        next. ``aclose()``/``close()`` must release what every loop opened."""
        namespace = new_namespace()
        clock = FakeClock() if self.clock_injectable else None
        gc.collect()  # what earlier tests left is not this storage's
        before = _open_sockets()
        with _unclosed_reports() as unclosed:
            after = self._use_in_successive_loops(namespace, clock, before)
        assert not unclosed, (
            "promise broken: aclose() and close() release every connection, and leave nothing "
            "that reports itself unclosed when collected (a ResourceWarning, an error under "
            "-W error):\n  " + "\n  ".join(unclosed)
        )
        if before is None or after is None:
            return
        assert after <= before, (
            f"promise broken: aclose() and close() release every connection; the process "
            f"held {before} sockets before the storage was made and {after} after it closed"
        )

    def test_a_storage_dropped_unclosed_after_its_loop_ended_is_collected_quietly(self) -> None:
        """A script's ``asyncio.run(main())``, a test client's loop: the loop ends, and the
        storage is dropped without ``close()``. Its clients of that loop must be released when
        it is collected (``PerLoop`` does it, given a ``release``), not left to report
        themselves unclosed; and nothing it made per loop may hold the storage itself, or
        ``PerLoop``'s finalizer keeps it alive for good."""
        namespace = new_namespace()
        clock = FakeClock() if self.clock_injectable else None
        gc.collect()
        before = _open_sockets()
        storage = self.make_storage(namespace, clock)
        try:

            async def use(storage: Storage) -> None:
                await storage.aset("k", b"v", LONG_TTL)
                assert await storage.aget("k") == b"v"
                await storage.areset()

            with _unclosed_reports() as unclosed:
                asyncio.run(use(storage))
                dropped = weakref.ref(storage)
                del storage
                gc.collect()
                gc.collect()  # what the first pass's finalizers released
            after = _open_sockets()
        finally:
            self.drop_namespace(namespace)
        assert dropped() is None, (
            "promise broken: a storage nobody holds is collected; something it made per event "
            "loop (a PerLoop client) holds the storage itself, so PerLoop's finalizer keeps it "
            "alive: give the client what it needs (settings, a connect function), not the storage"
        )
        assert not unclosed, (
            "promise broken: a storage dropped without close() after its event loop ended "
            "leaves nothing that reports itself unclosed (give PerLoop a release that closes "
            "a dead loop's connections):\n  " + "\n  ".join(unclosed)
        )
        if before is not None and after is not None:
            assert after <= before, (
                f"promise broken: a storage dropped after its event loop ended releases its "
                f"connections; the process held {before} sockets before and {after} after"
            )

    def _use_in_successive_loops(
        self, namespace: str, clock: FakeClock | None, before: int | None
    ) -> int | None:
        """Use a new storage in ``self.loops`` successive loops, close it, and return how many
        sockets the process then holds (waiting up to a second, for the collector, to see
        them back to ``before``)."""
        storage = self.make_storage(namespace, clock)
        failures: list[str] = []
        try:
            for index in range(self.loops):

                async def use(index: int = index) -> None:
                    await storage.aset(f"k{index}", f"v{index}".encode(), LONG_TTL)
                    for earlier in range(index + 1):
                        got = await storage.aget(f"k{earlier}")
                        assert got == f"v{earlier}".encode(), f"k{earlier} read back {got!r}"
                    assert await storage.atouch(f"k{index}", LONG_TTL) is True

                try:
                    asyncio.run(use())
                except Exception as exc:
                    failures.append(f"loop {index + 1} of {self.loops}: {exc!r}")
                    break

            async def finish() -> None:
                await storage.areset()
                await storage.aclose()

            asyncio.run(finish())
        finally:
            storage.close()
            self.drop_namespace(namespace)
        assert not failures, (
            "promise broken: an async client belongs to the event loop that made it; each "
            "loop gets its own (sessionkit.PerLoop), never one cached from a closed loop:\n  "
            + "\n  ".join(failures)
        )
        if before is None:
            return None
        deadline = time.monotonic() + 1.0
        while True:
            gc.collect()
            after = _open_sockets()
            if after is None or after <= before or time.monotonic() > deadline:
                return after
            time.sleep(0.05)


class UrlChecks(SuiteBase):
    """A URL the plugin cannot honour fails at start-up with ``ConfigError``."""

    def test_bad_urls_are_refused_with_config_error(self) -> None:
        """A typo'd option accepted in silence (``prefx=``) puts every key in the default
        namespace, shared with another app: the deployment must fail when it starts."""
        if not self.bad_urls:
            assert self.takes_no_options, (
                f"{type(self).__name__} declares no bad_urls: list URLs the plugin must refuse "
                "(a misspelt option, a value out of range), or set takes_no_options = True"
            )
            return
        problems = []
        for url in self.bad_urls:
            try:
                storage = open_storage(url)
            except ConfigError:
                continue
            except Exception as exc:
                problems.append(f"{url!r} raised {type(exc).__name__}: {exc}")
            else:
                storage.close()
                problems.append(f"{url!r} was accepted")
        assert not problems, (
            "promise broken: a URL the storage cannot honour is refused with "
            "sessionkit.ConfigError when opened:\n  " + "\n  ".join(problems)
        )

    def test_unknown_url_option_is_refused(self) -> None:
        namespace = new_namespace()
        url = self.storage_url(namespace)
        if url is None:
            pytest.skip("storage_url() is not declared")
        storage = open_storage(url)
        try:
            storage.set("k", b"v", LONG_TTL)
            assert storage.get("k") == b"v", f"storage_url() {url!r} does not open a storage"
            storage.reset()
        finally:
            storage.close()
            self.drop_namespace(namespace)
        bad = f"{url}{'&' if '?' in url else '?'}{UNKNOWN_OPTION}=1"
        try:
            storage = open_storage(bad)
        except ConfigError:
            return
        storage.close()
        pytest.fail(
            f"promise broken: an unknown URL option is refused with sessionkit.ConfigError; "
            f"{bad!r} was accepted"
        )


class CleanupAndTtlChecks(SuiteBase):
    """TTLs are kept as given: never shortened by rounding, never lost when long."""

    @pytest.fixture
    def sync_storage(self, sync_harness: Harness) -> StorageHandle:
        return sync_harness.open()

    def test_ttl_is_not_rounded_down(
        self, sync_harness: Harness, sync_storage: StorageHandle
    ) -> None:
        """A TTL rounded down to whole seconds (or to ``int``) logs users out early."""
        ttl = timedelta(seconds=1.5)
        sync_storage.set("set", b"v", ttl)
        sync_storage.set("touched", b"v", None)
        assert sync_storage.touch("touched", ttl) is True
        sync_harness.wait(1.2)
        alive = {key: sync_storage.get(key) is not None for key in ("set", "touched")}
        assert alive == {"set": True, "touched": True}, (
            "promise broken: a record lives at least its TTL; after 1.2 s of a 1.5 s TTL "
            f"these were gone: {[k for k, v in alive.items() if not v]}"
        )

    def test_a_long_ttl_is_kept(self, storage: StorageHandle) -> None:
        """ "Remember me" for years must not overflow into an error or an instant expiry."""
        ttl = timedelta(days=365 * 100)
        storage.set("k", b"v", ttl)
        assert storage.get("k") == b"v", "promise broken: a 100-year TTL keeps the record"
        assert storage.touch("k", ttl) is True
        assert storage.get("k") == b"v"
