"""Failover under a steady stream of writes, on a private Sentinel set (a primary, two replicas,
three Sentinels) per test: every write that returned without an error is there afterwards.

Writes wait for one replica (``wait_replicas=1``), sync and async at once: a sync thread
creates keys (``create``: ``SET NX``), an asyncio thread sets keys and renews them
(``aset``, then ``areplace_if``). Two faults:

* **the primary crashes with its replication link down**: its replicas are cut off (``CLIENT
  KILL TYPE replica``, and a password they do not know, so they cannot come back), it takes
  writes for a moment, then it is killed (``SIGKILL``) and the Sentinels promote a replica
  that never saw those writes. A storage without ``wait_replicas`` on the same set loses the
  writes it had acknowledged meanwhile: the check below sees them, which shows it would see a
  loss of the waiting writers too;
* **a planned failover**: writes paused on the primary (``CLIENT PAUSE ... WRITE``), then
  ``SENTINEL FAILOVER``, the procedure ``docs/backends/redis.md`` gives. A client that stays
  on the old primary (not following the Sentinels, not waiting for replicas) has its writes
  acknowledged there and lost. The old primary keeps serving reads for seconds (until the
  Sentinels turn it into a replica), so a storage that only reads (another worker) must move
  to the new primary by itself, within ``sentinel_check_interval``: its stale reads are
  counted and their window bounded.

Every error in the window is a ``StorageError``; the window (first to last error) is measured
and bounded by the Sentinels' timings plus the storage's timeouts. Each test prints its
figures (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import redis

from sessionkit import StorageError
from sessionkit_redis import RedisStorage
from tests._servers import (
    HOST,
    SENTINEL_DOWN_AFTER_MS,
    SENTINEL_FAILOVER_TIMEOUT_MS,
    SentinelSet,
)

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)
#: Short timeouts, so a call to a stalled primary fails within a second.
FAST = "socket_timeout=1&socket_connect_timeout=0.5&pool_timeout=0.5"
WAITING = f"{FAST}&wait_replicas=1&wait_timeout=0.2"
#: Every replica of the set (two): what rules out a crash's loss (docs/backends/redis.md,
#: "Failover: what is promised"); with one of two, Sentinel may promote the replica without
#: the last writes, judging by the offsets it last read.
WAITING_ALL = f"{FAST}&wait_replicas=2&wait_timeout=0.2"
#: After the failover, writes must succeed again for this long before the run ends.
TAIL = 0.5
#: ``sentinel_check_interval``'s default: how often a storage asks the Sentinels.
SENTINEL_CHECK = 1.0
#: The longest a failover may keep writes failing: the Sentinels' detection and election
#: (down-after, then at most a failover-timeout), the storage's timeouts (a call to a stalled
#: primary: 1 s; the Sentinel check: 1 s), and a second of slack for a busy machine.
WINDOW_BOUND = SENTINEL_DOWN_AFTER_MS / 1000 + SENTINEL_FAILOVER_TIMEOUT_MS / 1000 + 2 + 1


@dataclass
class Stream:
    """What one writer did: the values acknowledged per key, every value tried (a write that
    failed may still have landed), the errors with their times."""

    name: str
    acked: dict[str, bytes] = field(default_factory=dict)
    tried: dict[str, set[bytes]] = field(default_factory=dict)
    errors: list[tuple[float, float]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)
    calls: int = 0
    last_ok: float = 0.0

    def attempt(self, key: str, value: bytes) -> None:
        self.tried.setdefault(key, set()).add(value)
        self.calls += 1

    def lost(self, stored: Callable[[list[str]], list[bytes | None]]) -> list[str]:
        """The acknowledged keys whose stored value is neither the acknowledged one nor a
        later try (``stored``: the values now on the primary, for a list of keys)."""
        keys = sorted(self.acked)
        found = []
        for key, value in zip(keys, stored(keys), strict=True):
            later = self.tried[key] - {self.acked[key]}
            if value != self.acked[key] and value not in later:
                found.append(key)
        return found

    def window(self) -> float:
        """Seconds from the start of the first failed call to the end of the last one."""
        if not self.errors:
            return 0.0
        return max(end for _, end in self.errors) - min(start for start, _ in self.errors)


def _sync_writer(storage: RedisStorage, stream: Stream, stop: threading.Event) -> None:
    """``create`` a new key after another until ``stop``."""
    n = 0
    while not stop.is_set():
        n += 1
        key, value = f"s{n}", f"s{n}".encode()
        stream.attempt(key, value)
        began = time.monotonic()
        try:
            if storage.create(key, value, HOUR):
                stream.acked[key] = value
                stream.last_ok = time.monotonic()
        except StorageError as exc:
            stream.errors.append((began, time.monotonic()))
            stream.messages[-3:] = [*stream.messages[-2:], str(exc)]
            time.sleep(0.005)
        except BaseException as exc:
            stream.unexpected.append(exc)
            return


def _async_writer(storage: RedisStorage, stream: Stream, stop: threading.Event) -> None:
    """In an event loop of its own: ``aset`` a key, then renew it with ``areplace_if``."""

    async def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            key, first, second = f"a{n}", f"a{n}".encode(), f"a{n}+".encode()
            for value in (first, second):
                stream.attempt(key, value)
            began = time.monotonic()
            try:
                await storage.aset(key, first, HOUR)
                stream.acked[key] = first
                if await storage.areplace_if(key, first, second, HOUR):
                    stream.acked[key] = second
                stream.last_ok = time.monotonic()
            except StorageError as exc:
                stream.errors.append((began, time.monotonic()))
                stream.messages[-3:] = [*stream.messages[-2:], str(exc)]
                await asyncio.sleep(0.005)
            except BaseException as exc:
                stream.unexpected.append(exc)
                return
        await storage.aclose()

    asyncio.run(run())


@contextlib.contextmanager
def _writing(*writers: tuple[Callable[..., None], RedisStorage, object]) -> Iterator[None]:
    """Run each ``(target, storage, stream)`` in a thread of its own until the block ends
    (``stream``: a tuple is passed as several arguments)."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=target,
            args=(storage, *(stream if isinstance(stream, tuple) else (stream,)), stop),
            daemon=True,
        )
        for target, storage, stream in writers
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@dataclass
class Reads:
    """What a storage that only reads saw: when a read missed a write acknowledged before it
    began (it was served by the old primary)."""

    stale: list[float] = field(default_factory=list)
    calls: int = 0


def _reader(storage: RedisStorage, writes: Stream, reads: Reads, stop: threading.Event) -> None:
    """Read back, again and again, the newest key ``writes`` had acknowledged."""
    while not stop.is_set():
        if not writes.acked:
            time.sleep(0.001)
            continue
        key = next(reversed(writes.acked))  # acknowledged before this read began
        expected = writes.acked[key]
        reads.calls += 1
        with contextlib.suppress(StorageError):
            if storage.get(key) != expected:
                reads.stale.append(time.monotonic())


def _recovered(streams: list[Stream], since: float, timeout: float = 20.0) -> float:
    """Wait until every stream has had a success after ``since``, then ``TAIL`` more seconds;
    return when the last of them first succeeded again."""
    deadline = time.monotonic() + timeout
    while any(stream.last_ok <= since for stream in streams):
        if time.monotonic() > deadline:
            messages = {stream.name: stream.messages for stream in streams}
            pytest.fail(
                f"writes did not succeed again within {timeout:.0f}s of the failover: {messages}"
            )
        time.sleep(0.01)
    back = max(stream.last_ok for stream in streams)
    time.sleep(TAIL)
    return back


def _stored(port: int, prefix: str) -> Callable[[list[str]], list[bytes | None]]:
    def read(keys: list[str]) -> list[bytes | None]:
        with redis.Redis(host=HOST, port=port) as client:
            values: list[bytes | None] = client.mget([prefix + key for key in keys])
            return values

    return read


def _check(
    streams: list[Stream],
    stored: Callable[[list[str]], list[bytes | None]],
    bound: float = WINDOW_BOUND,
) -> None:
    """No acknowledged write lost, and every failed call within ``bound`` seconds of the first."""
    for stream in streams:
        assert not stream.unexpected, f"{stream.name}: {stream.unexpected[0]!r}"
        assert stream.acked, f"{stream.name} never had a write acknowledged"
        lost = stream.lost(stored)
        assert not lost, f"{stream.name}: {len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
        assert stream.errors, f"{stream.name} never saw the fault"
        assert stream.window() < bound, (stream.name, stream.window(), bound)


def _report(title: str, streams: list[Stream], stored: Callable[..., list[bytes | None]]) -> str:
    lines = [title]
    for stream in streams:
        lines.append(
            f"  {stream.name}: {stream.calls} calls, {len(stream.acked)} acknowledged, "
            f"{len(stream.errors)} StorageErrors over {stream.window() * 1000:.0f} ms, "
            f"{len(stream.lost(stored))} acknowledged writes lost"
        )
    return "\n".join(lines)


def test_a_crashed_primary_loses_no_acknowledged_write(redis_sentinel_set: SentinelSet) -> None:
    group = redis_sentinel_set
    prefix = f"fo:{uuid.uuid4().hex[:8]}:"
    url = f"{group.url}?prefix={prefix}"
    waiting, awaiting = RedisStorage(f"{url}&{WAITING_ALL}"), RedisStorage(f"{url}&{WAITING_ALL}")
    bare = RedisStorage(f"{url}&{FAST}", prefix=f"{prefix}bare:")
    streams = [Stream("sync, waiting"), Stream("async, waiting"), Stream("sync, not waiting")]
    old = group.primary()
    try:
        with _writing(
            (_sync_writer, waiting, streams[0]),
            (_async_writer, awaiting, streams[1]),
            (_sync_writer, bare, streams[2]),
        ):
            time.sleep(0.3)
            with redis.Redis(host=HOST, port=old.port) as primary:
                primary.config_set("requirepass", "the-replicas-do-not-know-it")
                primary.execute_command("CLIENT", "KILL", "TYPE", "replica")
                time.sleep(0.3)  # writes go on: unreplicated, WAIT sees no replica
            crashed = time.monotonic()
            old.kill()
            new = group.wait_for_failover(old.port)
            failover = time.monotonic() - crashed
            # One replica is left: the waiting writers answer 503 until the old primary is
            # back as the second (the cost of waiting for every replica).
            group.rejoin(old)
            rejoined = time.monotonic() - crashed
            _recovered(streams, since=time.monotonic())
    finally:
        for storage in (waiting, awaiting, bare):
            storage.close()
    stored = _stored(new, prefix)
    bare_stored = _stored(new, f"{prefix}bare:")
    print(
        _report(
            f"primary crashed: every Sentinel names the new one {failover * 1000:.0f} ms later, "
            f"and the old one follows it {rejoined * 1000:.0f} ms after the crash",
            streams[:2],
            stored,
        )
    )
    print(_report("", streams[2:], bare_stored))
    # The waiting writers fail from the cut (0.3 s before the crash) until the old primary
    # follows the new one, then at most the storage's timeouts (as in WINDOW_BOUND), and a
    # second of slack for a busy machine.
    _check(streams[:2], stored, bound=0.3 + rejoined + 2 + 1)
    assert streams[2].lost(bare_stored), (
        "without wait_replicas, writes acknowledged by a primary cut off from its replicas "
        "are lost when it crashes: the check must see them"
    )


def test_a_planned_failover_loses_no_acknowledged_write(redis_sentinel_set: SentinelSet) -> None:
    group = redis_sentinel_set
    prefix = f"fo:{uuid.uuid4().hex[:8]}:"
    url = f"{group.url}?prefix={prefix}&{WAITING}"
    waiting, awaiting, reading = RedisStorage(url), RedisStorage(url), RedisStorage(url)
    old = group.primary()
    stuck = RedisStorage(f"redis://{HOST}:{old.port}/0?{FAST}", prefix=f"{prefix}stuck:")
    streams = [Stream("sync, waiting"), Stream("async, waiting"), Stream("old primary only")]
    reads = Reads()
    try:
        with _writing(
            (_sync_writer, waiting, streams[0]),
            (_async_writer, awaiting, streams[1]),
            (_sync_writer, stuck, streams[2]),
            (_reader, reading, (streams[0], reads)),
        ):
            time.sleep(0.3)
            began = time.monotonic()
            with redis.Redis(host=HOST, port=old.port) as primary:
                primary.execute_command("CLIENT", "PAUSE", 2000, "WRITE")
            with redis.Redis(host=HOST, port=group.sentinels[0].port) as sentinel:
                sentinel.execute_command("SENTINEL", "FAILOVER", group.service)
            new = group.wait_for_failover(old.port)
            switched = time.monotonic()
            failover = switched - began
            _recovered(streams[:2], since=time.monotonic())
            # Until the pause is over, and long enough for a reader that stayed behind to
            # show it.
            end = max(began + 2.5, switched + SENTINEL_CHECK + 1.5)
            time.sleep(max(0.0, end - time.monotonic()))
    finally:
        for storage in (waiting, awaiting, reading, stuck):
            storage.close()
    stored = _stored(new, prefix)
    stuck_stored = _stored(new, f"{prefix}stuck:")
    title = f"SENTINEL FAILOVER after CLIENT PAUSE: done in {failover * 1000:.0f} ms"
    print(_report(title, streams[:2], stored))
    print(_report("", streams[2:], stuck_stored))
    stale_for = max(reads.stale, default=switched) - switched
    print(
        f"  a storage that only reads: {reads.calls} reads, {len(reads.stale)} stale, the "
        f"last {stale_for * 1000:.0f} ms after the Sentinels switched"
    )
    _check(streams[:2], stored)
    assert reads.calls and stale_for < SENTINEL_CHECK + 0.5, (
        "a storage that only reads must leave the old primary within sentinel_check_interval"
    )
    assert streams[2].lost(stuck_stored), (
        "the old primary stays writable for seconds after SENTINEL FAILOVER: writes it "
        "acknowledged to a client that does not follow the Sentinels are lost"
    )
