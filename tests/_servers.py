"""Real Redis and MongoDB servers for the test suite, as a pytest plugin.

Storage tests run against real servers over real sockets, never fakes: a fake cannot show what
a real server does with a glob pattern, a TTL index or a dropped connection. The root conftest
loads this module (``pytest_plugins = ["tests._servers"]``) and tests ask for the URLs:

* ``redis_url`` (session scope): the Redis already listening on 127.0.0.1:6379 when it answers
  ``PING``, otherwise a private ``redis-server`` started for the session.
* ``mongo_url`` (session scope): a private SecantusDB (MongoDB wire protocol, in memory).

``SESSIONKIT_TEST_REDIS_URL``, ``SESSIONKIT_TEST_MONGO_URL`` and ``SESSIONKIT_TEST_REDIS_CLUSTER_URL``
name external servers instead (CI service containers). A server that cannot be started fails
the run loudly: in CI nothing may be skipped in silence. ``start_redis()`` and ``start_mongo()``
hand out a private server process with ``stop()``, ``kill()`` and ``restart()`` (same port),
for tests that inject faults; ``start_redis_cluster()`` (fixture ``redis_cluster_url``) a
three-primary Redis Cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = [
    "ServerGroup",
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "mongo_url",
    "redis_cluster_url",
    "redis_url",
    "start_mongo",
    "start_redis",
    "start_redis_cluster",
]

HOST = "127.0.0.1"
SHARED_REDIS_PORT = 6379
STARTUP_TIMEOUT = 30.0


class ServerStartError(RuntimeError):
    """A test server did not come up; the message carries the reason and its log's tail."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when a Redis server at host:port answers ``PING`` (raw RESP, no client library)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def mongo_answers(url: str, timeout: float = 0.5) -> bool:
    """True when the MongoDB server at ``url`` answers the ``ping`` command."""
    import pymongo
    import pymongo.errors

    ms = int(timeout * 1000)
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


class ServerProcess:
    """One server process on a fixed port, which a test may stop, kill and start again.

    The port is chosen once, so ``restart()`` brings the server back where clients already
    point, which is what a reconnect test needs. Output goes to a log file in a private
    directory (a pipe nobody reads would fill up and stall the server).
    """

    def __init__(
        self,
        name: str,
        argv: Callable[[int, Path], list[str]],
        url: Callable[[int], str],
        ready: Callable[[ServerProcess], bool],
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = url(self.port)
        self._argv = argv
        self._ready = ready
        self._dir = Path(tempfile.mkdtemp(prefix=f"sessionkit-{name}-"))
        self._log = self._dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The server's process id (it must be running)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        return proc.pid

    def pause(self) -> None:
        """Freeze the server (``SIGSTOP``), returning once every thread of it has stopped:
        ``kill`` only queues the signal, and a thread still running for a moment would
        answer one more request."""
        pid = self.pid
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = []
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(FileNotFoundError):
                    states.append(Path(f"/proc/{pid}/task/{task}/stat").read_text())
            if all(stat.rpartition(")")[2].split()[0] in ("T", "t") for stat in states):
                return
            time.sleep(0.005)
        raise ServerStartError(f"{self.name} (pid {pid}) did not stop")

    def resume(self) -> None:
        """Undo :meth:`pause` (``SIGCONT``); harmless on a server that is not paused."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Paused for the ``with`` block, resumed whatever happens in it."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def start(self) -> ServerProcess:
        """Start the process and wait until it answers; raise ServerStartError otherwise."""
        if self.running:
            return self
        argv = self._argv(self.port, self._dir)
        with self._log.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv, cwd=self._dir, stdout=log, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {argv[0]}: {exc}") from exc
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self._proc.returncode}: {self.log_tail()}"
                )
            if self._ready(self):
                return self
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(
            f"{self.name} did not answer within {STARTUP_TIMEOUT:.0f}s: {self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process gracefully (SIGTERM), then by force if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Kill the process at once (SIGKILL): the server vanishes mid-conversation."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def restart(self) -> ServerProcess:
        """Stop the server and start it again on the same port (its data survives only if the
        server persists it: see ``start_mongo(durable=True)`` and Redis's ``--appendonly``)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its private directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _launch(
    name: str,
    argv: Callable[[int, Path], list[str]],
    url: Callable[[int], str],
    ready: Callable[[ServerProcess], bool],
) -> ServerProcess:
    """Start a ServerProcess; on failure leave no process and no directory behind."""
    server = ServerProcess(name, argv, url, ready)
    try:
        return server.start()
    except BaseException:
        server.close()
        raise


def _redis_tool(name: str) -> str:
    path = f"/usr/bin/{name}"
    found = path if os.path.exists(path) else shutil.which(name)
    if found is None:
        raise ServerStartError(f"{name} not found at {path} nor on PATH")
    return found


def start_redis(*extra: str) -> ServerProcess:
    """Start a private ``redis-server`` (no persistence) on a free port of 127.0.0.1.

    ``extra`` are more ``redis-server`` arguments (``"--cluster-enabled", "yes"``).
    """
    binary = _redis_tool("redis-server")

    def argv(port: int, workdir: Path) -> list[str]:
        return [
            binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(workdir), *extra,
        ]  # fmt: skip

    def url(port: int) -> str:
        return f"redis://{HOST}:{port}/0"

    return _launch("redis", argv, url, lambda server: redis_answers(server.port))


def start_mongo(*, durable: bool = False) -> ServerProcess:
    """Start a private SecantusDB (MongoDB wire protocol) on a free port.

    By default its storage is in memory and gone at a restart. ``durable=True`` keeps the
    WiredTiger home in the server's private directory (reopened by ``restart()``) and fsyncs
    the log on every commit, so what was acknowledged survives a ``kill()``, as a production
    server would. SecantusDB is a standalone node without retryable writes, hence
    ``retryWrites=false``.
    """

    def argv(port: int, workdir: Path) -> list[str]:
        storage = ["--storage-path", str(workdir / "data"), "--sync-on-commit"] if durable else [
            "--storage-path", ":memory:",
        ]  # fmt: skip
        return [sys.executable, "-m", "secantus", "--host", HOST, "--port", str(port), *storage]

    def url(port: int) -> str:
        return f"mongodb://{HOST}:{port}/?retryWrites=false"

    return _launch("secantusdb", argv, url, lambda server: mongo_answers(server.url))


class ServerGroup:
    """Several server processes that form one service (a Redis Cluster)."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        """The URL of the first server (a cluster client discovers the others from it)."""
        return self.servers[0].url

    def close(self) -> None:
        for server in self.servers:
            server.close()


def start_redis_cluster(size: int = 3) -> ServerGroup:
    """Start ``size`` primaries (no replicas) and join them into a Redis Cluster."""
    servers: list[ServerProcess] = []
    group = ServerGroup(servers)
    try:
        for _ in range(size):
            # An explicit bus port: the default (port + 10000) may be taken, or above 65535.
            bus = str(free_port())
            servers.append(start_redis("--cluster-enabled", "yes", "--cluster-port", bus))
        nodes = [f"{HOST}:{server.port}" for server in servers]
        argv = [_redis_tool("redis-cli"), "--cluster", "create", *nodes]
        argv += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServerStartError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        _wait_for_cluster(servers)
    except BaseException:
        group.close()
        raise
    return group


def _wait_for_cluster(servers: list[ServerProcess]) -> None:
    import redis

    deadline = time.monotonic() + STARTUP_TIMEOUT
    for server in servers:
        with redis.Redis(host=HOST, port=server.port) as client:
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise ServerStartError(f"cluster not ok within {STARTUP_TIMEOUT:.0f}s")
                time.sleep(0.05)


@contextlib.contextmanager
def _server_url(
    env: str, shared: Callable[[], str | None], start: Callable[[], ServerProcess | ServerGroup]
) -> Iterator[str]:
    """Yield the URL named by ``env``, else a shared server's, else one started for the run."""
    external = os.environ.get(env) or shared()
    if external:
        yield external
        return
    try:
        server = start()
    except ServerStartError as exc:
        pytest.fail(f"cannot start the test server ({env} not set): {exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.close()


def _shared_redis() -> str | None:
    if redis_answers(SHARED_REDIS_PORT):
        return f"redis://{HOST}:{SHARED_REDIS_PORT}/0"
    return None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server for the whole test session (shared one on 6379, or a private one)."""
    with _server_url("SESSIONKIT_TEST_REDIS_URL", _shared_redis, start_redis) as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """URL of one node of a private three-primary Redis Cluster, started on first request."""
    with _server_url("SESSIONKIT_TEST_REDIS_CLUSTER_URL", lambda: None, start_redis_cluster) as url:
        yield url


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """URL of a MongoDB-protocol server (private SecantusDB) for the whole test session."""
    with _server_url("SESSIONKIT_TEST_MONGO_URL", lambda: None, start_mongo) as url:
        yield url
