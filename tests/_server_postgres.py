"""A real PostgreSQL server for the test suite, as a pytest plugin (loaded by the root conftest).

* ``postgres_url`` (session scope): ``SESSIONKIT_TEST_POSTGRES_URL`` when set (a CI service, a
  server of your own); else the PostgreSQL answering on 127.0.0.1:5432 as ``postgres`` in
  database ``test`` (a developer machine's), unless ``SESSIONKIT_TEST_POSTGRES_SHARED=0``;
  else a private server started for the session from the PostgreSQL binaries installed on the
  machine (Debian: ``/usr/lib/postgresql/<version>/bin``, packages ``postgresql`` or
  ``postgresql-<version>``). A server that cannot be started fails the run loudly.
* ``postgres_schema`` (session scope): a schema of this run's own on that server, dropped with
  everything in it when the run ends, so tests on a shared server leave nothing behind.
* ``open_backend_storage(request)``: a new, empty ``PostgresStorage`` for one test of the
  all-backends suites (``tests._backends``), on a table of the run's schema that an earlier
  test emptied when there is one (making and dropping a table per test cost more than most
  of those tests).
* ``start_postgres()``: a private server process (:class:`PostgresProcess`) for tests that
  inject faults: ``pause()`` freezes the whole server (every process of it: the postmaster
  alone would leave the backends of existing connections answering), ``kill()`` kills it at
  once, ``restart()`` brings it back on the same port with its data.

The private server keeps its data in a temporary directory, listens on 127.0.0.1 and on a Unix
socket in that directory, trusts local connections (user ``postgres``), and runs without
durability (``fsync=off``, ``synchronous_commit=off``, ``full_page_writes=off``), which tests
do not need and which makes it start and write fast (``start_postgres(durable=True)`` keeps
``synchronous_commit`` on, for tests whose data must survive a ``kill()``). PostgreSQL refuses to run as root: as
root, ``initdb`` and ``postgres`` run as the ``postgres`` system user through ``setpriv``,
which executes the server in place, so the process the tests signal is the server itself.

This module imports no driver at import time: it is loaded for every test run, with or without
the postgres plugin installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import HOST, ServerProcess, ServerStartError, _server_url

__all__ = [
    "PostgresProcess",
    "open_backend_storage",
    "postgres_schema",
    "postgres_url",
    "start_postgres",
]

SHARED_POSTGRES_URL = f"postgresql://postgres@{HOST}:5432/test"
#: The system user the server runs as when the tests run as root.
SERVER_USER = "postgres"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL test server")


def postgres_bindir() -> Path:
    """The directory of the newest installed PostgreSQL server binaries."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parts[-3]
        if version.replace(".", "").isdigit():
            found.append((tuple(int(p) for p in version.split(".")), Path(initdb).parent))
    if found:
        return max(found)[1]
    on_path = shutil.which("initdb")
    if on_path is None:
        raise ServerStartError(
            "PostgreSQL's initdb not found in /usr/lib/postgresql/*/bin nor on PATH "
            "(Debian: apt-get install postgresql)"
        )
    return Path(on_path).parent


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as the server's user when we are root (setpriv executes it in place)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ServerStartError("running as root, and setpriv (util-linux) is not installed")
    return [setpriv, f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups", *argv]


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ServerStartError(
            f"running as root, and there is no {SERVER_USER!r} system user to run PostgreSQL as"
        ) from None
    os.chown(path, user.pw_uid, user.pw_gid)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the backends and helpers of a postmaster)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            fields = text.rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(Path(stat).parts[2]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _state(pid: int) -> str | None:
    """The process state letter (R, S, T, Z, ...), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


class PostgresProcess(ServerProcess):
    """A private PostgreSQL server whose faults reach every process of it."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = postgres_bindir()
        self.bindir = bindir
        self.durable = durable
        super().__init__("postgres", self._argv, self._url, self._answers)
        _give_to_server_user(self._dir)
        self.socket_dir = str(self._dir)

    @staticmethod
    def _url(port: int) -> str:
        return f"postgresql://postgres@{HOST}:{port}/postgres"

    def _argv(self, port: int, workdir: Path) -> list[str]:
        data = workdir / "data"
        if not data.exists():
            initdb = [
                str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
            ]  # fmt: skip
            done = subprocess.run(
                _as_server_user(initdb), capture_output=True, text=True, timeout=120, check=False
            )
            if done.returncode != 0:
                raise ServerStartError(f"initdb failed: {done.stdout}{done.stderr}")
        server = [
            str(self.bindir / "postgres"), "-D", str(data), "-p", str(port),
            "-k", str(workdir), "-c", f"listen_addresses={HOST}",
            "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "shared_buffers=32MB",
        ]  # fmt: skip
        if not self.durable:
            # A commit is acknowledged before its WAL is written: a kill() may lose the last.
            server += ["-c", "synchronous_commit=off"]
        return _as_server_user(server)

    def _answers(self, server: ServerProcess) -> bool:
        argv = [str(self.bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(server.port)]
        argv += ["-U", "postgres", "-d", "postgres", "-t", "1"]
        return subprocess.run(argv, check=False, timeout=10).returncode == 0

    def _processes(self) -> list[int]:
        pid = self.pid
        return [pid, *_descendants(pid)]

    def pause(self) -> None:
        """Freeze the whole server: the postmaster first (so it forks no new backend), then
        each of its processes, returning once all of them have stopped."""
        pids = self._processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if all(_state(pid) in (None, "T", "t", "Z") for pid in pids):
                return
            time.sleep(0.005)
        raise ServerStartError(f"postgres (pid {pids[0]}) did not stop")

    def resume(self) -> None:
        if not self.running:
            return
        for pid in reversed(self._processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: sessions are ended, where SIGTERM would wait for them)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._proc = None
            return
        self.resume()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL every process of the server, and wait until they are gone: a backend left
        over would keep the shared memory, and a restarted server would refuse to start."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._proc = None
            return
        pids = self._processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        self._proc = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_state(p) not in (None, "Z") for p in pids):
            time.sleep(0.01)


def start_postgres(*, durable: bool = False) -> PostgresProcess:
    """Start a private PostgreSQL server on a free port; on failure leave nothing behind.

    ``durable=True`` writes each commit's WAL before acknowledging it, so what a client saw
    committed survives ``kill()`` and is there after ``start()`` (a kill of the server's
    processes, not of the machine: ``fsync`` stays off either way).
    """
    server = PostgresProcess(durable=durable)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def _shared_postgres() -> str | None:
    """The machine's PostgreSQL on 5432, when it lets ``postgres`` into database ``test``."""
    if os.environ.get("SESSIONKIT_TEST_POSTGRES_SHARED", "1") == "0":
        return None
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(SHARED_POSTGRES_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return None
    return SHARED_POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server for the whole session (see the module's notes)."""
    with _server_url("SESSIONKIT_TEST_POSTGRES_URL", _shared_postgres, start_postgres) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema of this run's own, dropped (with every table in it) when the run ends."""
    import psycopg
    from psycopg import sql

    name = f"sessionkit_test_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


#: Tables a finished test emptied, by server and schema, for the next test to take.
_FREE_TABLES: dict[tuple[str, str], list[str]] = {}


def open_backend_storage(request: pytest.FixtureRequest) -> tuple[Any, Callable[[], None]]:
    """A new, empty ``PostgresStorage`` for the requesting test, and the function to call once
    its ``reset()`` has emptied it at teardown (the table then goes to the next test).

    A table not known to be empty when the test ends (its reset failed) is never reused; it
    goes with the run's schema. The storage judges expiry by the server's clock: a test clock
    does not reach it (the store checks each record's own expiry by that clock anyway).
    """
    from sessionkit_postgres import PostgresStorage

    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    free = _FREE_TABLES.setdefault((url, schema), [])
    table = free.pop() if free else f"skb_{uuid.uuid4().hex[:12]}"
    storage = PostgresStorage(url, schema=schema, table=table)
    emptied: list[bool] = []

    def release() -> None:  # after the test's teardown: finalizers run last in, first out
        if emptied:
            free.append(table)

    request.addfinalizer(release)
    return storage, lambda: emptied.append(True)
