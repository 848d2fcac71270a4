"""Helpers for the concurrency and fault tests (security requirements 19-21).

Real faults only: private Redis and SecantusDB servers that are killed and started again, a
socket that accepts connections and never answers, a SQLite file the kernel refuses to write.
The servers come from ``tests._servers``; what is added here is persistence, so that "the
sessions written before the outage are still there" is a property of the server coming back,
not of a process that never died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from werkzeug.test import Client as WerkzeugClient

from sessionkit import StorageError
from tests._servers import HOST, ServerProcess, start_mongo, start_redis
from tests.web._support import Reply, failure_logs

__all__ = [
    "StalledServer",
    "assert_logged_with_cause",
    "eventually",
    "in_threads",
    "start_durable_mongo",
    "start_durable_redis",
    "unwritable",
    "wsgi_get",
]

T = TypeVar("T")


# -- servers that keep their data across a kill -------------------------------------------------


def start_durable_redis() -> ServerProcess:
    """A private ``redis-server`` whose data survives ``kill()`` (SIGKILL) and ``start()``.

    ``start_redis()`` runs without persistence (``--save "" --appendonly no``), so a restarted
    server would come back empty. Later arguments win in ``redis-server``'s command line, so the
    append-only file is switched on here, fsynced before each reply: a write the client saw
    acknowledged is in the file when the server is killed, and is replayed when it starts again
    in the same directory, on the same port.
    """
    return start_redis("--appendonly", "yes", "--appendfsync", "always")


def start_durable_mongo() -> ServerProcess:
    """A private SecantusDB with its storage on disk, fsynced on commit: survives a SIGKILL."""
    return start_mongo(durable=True)


class StalledServer:
    """A TCP port that accepts connections (the kernel's backlog) and never answers a byte.

    What a hung storage server looks like to a client: connecting succeeds at once, the first
    reply never comes, so only the client's socket timeout ends the wait.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> StalledServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a SQLite file that refuses writes ----------------------------------------------------------


@contextlib.contextmanager
def unwritable(database: Path) -> Iterator[str]:
    """Make ``database`` (its main file, its WAL and its directory) unwritable; undo it after.

    Yields how: ``"immutable"`` or ``"mode"``.

    * As root (CI), permission bits stop nothing, so the files get the immutable attribute
      (``chattr +i``). The kernel then refuses every write, through descriptors that are
      already open too: a live ``SQLiteStorage`` connection fails its next write with
      ``disk I/O error``, while reads go on. The ``-shm`` file is left alone on purpose: SQLite
      maps it into memory, and an immutable mapping kills the process with SIGBUS instead of
      failing a call, which is no storage error a library could report.
    * As any other user, the files become read-only (``0o444``, the directory ``0o555``).
      Permissions are checked when a file is opened, so only a connection opened afterwards
      is refused ("attempt to write a readonly database"); the caller reopens the storage.
    """
    paths = [p for p in (database, Path(f"{database}-wal"), database.parent) if p.exists()]
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root without chattr: cannot make a file unwritable for root")
        done = subprocess.run(
            [chattr, "+i", *map(str, paths)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            subprocess.run([chattr, "-i", *map(str, paths)], capture_output=True, check=False)
            pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
        try:
            yield "immutable"
        finally:
            subprocess.run([chattr, "-i", *map(str, paths)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield "mode"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


# -- requests, threads, waiting -----------------------------------------------------------------


def wsgi_get(app: Callable[..., Any], path: str, cookie: str | None = None) -> Reply:
    """One real request into a WSGI app, synchronously (safe to call from many threads: each
    call has its own Werkzeug client and environ; only ``app`` is shared)."""
    headers = {} if cookie is None else {"cookie": cookie}
    response = WerkzeugClient(app, use_cookies=False).get(path, headers=headers)
    return Reply(response.status_code, response.get_data(as_text=True), list(response.headers))


def in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0) ... work(count - 1)`` in as many threads, released together by a barrier;
    return their results in order, or raise the first exception one of them raised."""
    barrier = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # re-raised in the test's own thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    assert len(results) == count, "a worker thread did not finish within 120 s"
    return [results[i] for i in range(count)]


async def eventually(
    attempt: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Repeat ``attempt()`` until ``done(result)``, for at most ``timeout`` seconds; return the
    last result (the caller asserts on it). For a driver reconnecting to a restarted server."""
    deadline = time.monotonic() + timeout
    while True:
        result = await attempt()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


def assert_logged_with_cause(
    caplog: pytest.LogCaptureFixture,
    driver_error: type[BaseException] | tuple[type[BaseException], ...],
) -> None:
    """The 503 was logged by ``sessionkit``: a WARNING line, and at DEBUG a StorageError whose
    ``__cause__`` is the driver's own exception (as ``tests/web/test_failures.py`` checks with
    a fake one). The caller captures ``sessionkit`` at DEBUG."""
    lines, tracebacks = failure_logs(caplog)
    assert lines, caplog.text
    assert tracebacks, caplog.text
    exc_info = tracebacks[-1].exc_info
    assert exc_info is not None and isinstance(exc_info[1], StorageError), caplog.text
    cause = exc_info[1].__cause__
    assert isinstance(cause, driver_error), f"cause is {cause!r}, not a {driver_error}"
