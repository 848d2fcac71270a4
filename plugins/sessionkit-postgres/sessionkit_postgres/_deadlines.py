"""A client-side bound on every statement: past its deadline, the connection's socket is shut.

The server cancels a statement after its ``statement_timeout``, but a server that cannot answer
at all (its processes stopped, its host gone, a network black hole) cancels nothing: the
kernel keeps acknowledging (or the network swallows) what the client sends, and libpq waits
for an answer that never comes, for ever. psycopg offers no per-statement client timeout on
every version this plugin supports (``Connection.wait(timeout=)`` came with 3.3, and
cancelling a query makes psycopg wait up to ten seconds more for the server's word).

So each statement is watched: when its deadline passes first, the connection's socket is
shut down (``shutdown(2)``, both ways). The wait inside libpq then sees the socket end at
once and fails with an ``OperationalError``; the connection is dead and is discarded, never
returned to the pool. Shutting a socket down works the same for TCP, TLS (the TLS layer sees
its socket end) and Unix-domain sockets, from any thread, and affects nothing but that socket.

Synchronous calls share one watcher thread per process (:data:`WATCHER`): a heap of
deadlines, the thread asleep until the earliest. Watching a call costs two lock acquisitions
and a heap push, a few microseconds against a round trip of tens. A watch is finished
(under the same lock) before its connection goes back to the pool, so the watcher can never
shut the socket of a connection another call has taken since. Async calls need no thread:
the event loop's ``call_later`` does the same (:func:`watch_async`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import socket
import threading
import time

__all__ = ["WATCHER", "AsyncWatch", "Watch", "Watcher", "shut_down", "watch_async"]


def shut_down(fd: int) -> None:
    """Shut the socket ``fd`` down both ways (the descriptor itself stays libpq's)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:  # already closed, or not a socket
        return
    with sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Watch:
    """One watched call: its socket, and whether it finished or was cut off first."""

    __slots__ = ("done", "fd", "fired", "watcher")

    def __init__(self, fd: int, watcher: Watcher) -> None:
        self.fd = fd
        self.done = False
        self.fired = False
        self.watcher = watcher

    def finish(self) -> bool:
        """:meth:`Watcher.finish` for this watch: finished as an :class:`AsyncWatch` is, so
        one plan watches a call of either side."""
        return self.watcher.finish(self)


class Watcher:
    """Shuts the socket of each watched call that is still running at its deadline."""

    def __init__(self) -> None:
        self._start_afresh()

    def _start_afresh(self) -> None:
        """A new lock, heap and (lazily) thread: at creation, and in a forked child, where the
        parent's thread does not exist and its lock may have been held at the fork."""
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, fd: int, seconds: float) -> Watch:
        """Watch the call on socket ``fd``: shut it down if still running after ``seconds``."""
        watch = Watch(fd, self)
        entry = (time.monotonic() + seconds, next(self._order), watch)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sessionkit-postgres-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # earlier than what the thread sleeps for
                self._cond.notify()
        return watch

    def finish(self, watch: Watch) -> bool:
        """Stop watching; return whether the deadline came first (the socket is shut)."""
        with self._cond:
            watch.done = True
            if self._heap and self._heap[0][2] is watch:
                self._cond.notify()  # let the thread drop it (and the finished ones after it)
            return watch.fired

    def __len__(self) -> int:
        """Watches still in the heap (finished ones are dropped when they reach its top)."""
        return len(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                if not heap:
                    self._cond.wait()
                    continue
                left = heap[0][0] - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                watch = heapq.heappop(heap)[2]
                # Under the lock: the call cannot finish (and hand its connection on) meanwhile.
                watch.fired = True
                shut_down(watch.fd)


#: The process's watcher of synchronous calls.
WATCHER = Watcher()

if hasattr(os, "register_at_fork"):  # pragma: no branch (POSIX)
    os.register_at_fork(after_in_child=WATCHER._start_afresh)


class AsyncWatch:
    """One watched async call: a timer on its event loop."""

    __slots__ = ("fd", "fired", "handle")

    def __init__(self, fd: int, seconds: float) -> None:
        self.fd = fd
        self.fired = False
        self.handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self.fired = True
        shut_down(self.fd)

    def finish(self) -> bool:
        """Stop watching; return whether the deadline came first (the socket is shut)."""
        self.handle.cancel()
        return self.fired


def watch_async(fd: int, seconds: float) -> AsyncWatch:
    """Watch an async call on socket ``fd`` (from a coroutine on its loop)."""
    return AsyncWatch(fd, seconds)
