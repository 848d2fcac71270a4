"""Real Redis and MongoDB servers for the test suite, as a pytest plugin.

Storage tests run against real servers over real sockets, never fakes: a fake cannot show what
a real server does with a glob pattern, a TTL index or a dropped connection. The root conftest
loads this module (``pytest_plugins = ["tests._servers"]``) and tests ask for the URLs:

* ``redis_url`` (session scope): the Redis already listening on 127.0.0.1:6379 when it answers
  ``PING``, otherwise a private ``redis-server`` started for the session.
* ``mongo_url`` (session scope): a private SecantusDB (MongoDB wire protocol, in memory).

``SESSIONKIT_TEST_REDIS_URL``, ``SESSIONKIT_TEST_MONGO_URL``, ``SESSIONKIT_TEST_REDIS_CLUSTER_URL``
and ``SESSIONKIT_TEST_REDIS_SENTINEL_URL`` name external servers instead (CI service
containers). A server that cannot be started fails the run loudly: in CI nothing may be skipped
in silence. ``start_redis()`` and ``start_mongo()`` hand out a private server process with
``stop()``, ``kill()`` and ``restart()`` (same port), for tests that inject faults;
``start_redis_cluster()`` (fixture ``redis_cluster_url``) a three-primary Redis Cluster;
``start_redis_replicated()`` a primary and its replicas; ``start_redis_sentinel()`` (fixture
``redis_sentinel_url``, a ``redis+sentinel://`` URL) a primary, its replicas and three
Sentinels, and fixture ``redis_sentinel_set`` a fresh one a test may fail over or break.
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
    "SentinelSet",
    "redis_cluster_url",
    "redis_sentinel_set",
    "redis_sentinel_url",
    "redis_url",
    "start_mongo",
    "start_redis",
    "start_redis_cluster",
    "start_redis_replicated",
    "start_redis_sentinel",
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
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        """Start the process without waiting for it (several that must find one another at
        once: Sentinels); :meth:`wait_ready` then."""
        argv = self._argv(self.port, self._dir)
        with self._log.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv, cwd=self._dir, stdout=log, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {argv[0]}: {exc}") from exc

    def wait_ready(self) -> ServerProcess:
        """Wait until the spawned process answers; raise ServerStartError otherwise."""
        assert self._proc is not None, "spawn() first"
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


#: The service name the test Sentinels monitor.
SENTINEL_SERVICE = "sessionkit"
#: Sentinel timings for tests: a primary that has not answered for half a second is down (the
#: production default is 30 s), and a failover that stalls is tried again after two seconds.
SENTINEL_DOWN_AFTER_MS = 500
SENTINEL_FAILOVER_TIMEOUT_MS = 2000


class SentinelSet(ServerGroup):
    """A Redis primary, its replicas and the Sentinels that watch them as one service.

    ``data[0]`` is the primary it started with; after a failover ask :meth:`primary`.
    """

    def __init__(
        self, data: list[ServerProcess], sentinels: list[ServerProcess], service: str
    ) -> None:
        super().__init__([])
        self.data = data
        self.sentinels = sentinels
        self.service = service

    @property
    def servers(self) -> list[ServerProcess]:
        """Every process of the set, data servers first (the lists may grow while starting)."""
        return [*self.data, *self.sentinels]

    @servers.setter
    def servers(self, value: list[ServerProcess]) -> None:
        pass  # ServerGroup.__init__ sets it; the set's processes are data + sentinels

    @property
    def url(self) -> str:
        """``redis+sentinel://`` every Sentinel ``/service/0``."""
        hosts = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def primary_port(self) -> int:
        """The port of the primary as the first Sentinel that answers names it."""
        for sentinel in self.sentinels:
            port = _named_primary(sentinel, self.service)
            if port is not None:
                return port
        raise ServerStartError("no Sentinel answers")

    def primary(self) -> ServerProcess:
        """The data server the Sentinels name as the primary now."""
        port = self.primary_port()
        return next(server for server in self.data if server.port == port)

    def wait_for_failover(self, old_port: int, timeout: float = STARTUP_TIMEOUT) -> int:
        """Wait until every running Sentinel names a primary other than ``old_port`` and that
        server says it is one; return its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [sentinel for sentinel in self.sentinels if sentinel.running]
            ports = {_named_primary(sentinel, self.service) for sentinel in running}
            if len(ports) == 1 and old_port not in ports and None not in ports:
                port = ports.pop()
                if port is not None and _role(port) == "master":
                    return port
            time.sleep(0.02)
        raise ServerStartError(f"no failover away from port {old_port} within {timeout:.0f}s")

    def rejoin(self, old: ServerProcess, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start ``old`` (a primary that was failed over) again as a replica of the new one, as
        an operator would, and wait until the new primary has every replica online: what a
        storage that waits for every replica (``wait_replicas`` equal to the replicas) needs
        before writes succeed again after a failover. (Left to itself, a Sentinel converts a
        returning old primary only after its next ``INFO`` of it, some 20 s here; the
        Sentinels see the new replica within about 10 s, which nothing here waits for.)"""
        import redis

        primary = self.primary_port()
        old.start()
        with redis.Redis(host=HOST, port=old.port, socket_timeout=5) as client:
            client.replicaof(HOST, primary)
        _wait_for_replicas(primary, len(self.data) - 1, timeout)

    def wait_settled(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until every Sentinel sees the primary up, every replica linked to it and every
        other Sentinel: only then can they agree on a failover."""
        deadline = time.monotonic() + timeout
        while not all(self._settled(sentinel) for sentinel in self.sentinels):
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"Sentinels did not settle within {timeout:.0f}s: "
                    f"{self.sentinels[0].log_tail()}"
                )
            time.sleep(0.05)

    def _settled(self, sentinel: ServerProcess) -> bool:
        import redis

        with redis.Redis(host=HOST, port=sentinel.port, socket_timeout=1) as client:
            try:
                state = client.sentinel_master(self.service)
                replicas = client.sentinel_slaves(self.service)
                peers = client.sentinel_sentinels(self.service)
            except redis.RedisError:
                return False
        linked = [r for r in replicas if r["master-link-status"] == "ok" and not r["is_sdown"]]
        return (
            state["is_master"]
            and not state["is_sdown"]
            and len([p for p in peers if not (p["is_sdown"] or p["is_disconnected"])])
            == len(self.sentinels) - 1
            and len(linked) == len(self.data) - 1
        )


def _named_primary(sentinel: ServerProcess, service: str) -> int | None:
    """The port of the primary a Sentinel names, or None if it does not answer.

    As ``SENTINEL MASTERS`` says it, which clients ask (redis-py's ``discover_master``), and
    which names the new primary only once the Sentinel has finished the failover;
    ``GET-MASTER-ADDR-BY-NAME`` names it as soon as it is promoted.
    """
    import redis

    if not sentinel.running:
        return None
    with redis.Redis(host=HOST, port=sentinel.port, socket_timeout=1) as client:
        try:
            return int(client.sentinel_master(service)["port"])
        except (redis.RedisError, TypeError, KeyError):
            return None


def _role(port: int) -> str | None:
    """What a Redis server says it is (``master``, ``slave``), or None if it does not answer."""
    import redis

    with redis.Redis(host=HOST, port=port, socket_timeout=1) as client:
        try:
            role = client.execute_command("ROLE")[0]
        except redis.RedisError:
            return None
    return role.decode() if isinstance(role, bytes) else str(role)


def _sentinels(count: int, primary_port: int, service: str) -> list[ServerProcess]:
    """``count`` Sentinels (``redis-server sentinel.conf --sentinel``) watching the primary, not
    started yet. Each configuration file, in the Sentinel's private directory (which it
    rewrites as it learns), names the others already, with their ids: they would otherwise
    find one another through their hello messages, every two seconds."""
    binary = _redis_tool("redis-server")
    peers: list[tuple[ServerProcess, str]] = []

    def argv_for(myid: str) -> Callable[[int, Path], list[str]]:
        def argv(port: int, workdir: Path) -> list[str]:
            conf = workdir / "sentinel.conf"
            if not conf.exists():  # a restarted Sentinel keeps what it wrote there
                known = "".join(
                    f"sentinel known-sentinel {service} {HOST} {peer.port} {peer_id}\n"
                    for peer, peer_id in peers
                    if peer_id != myid
                )
                conf.write_text(
                    f"port {port}\nbind {HOST}\ndir {workdir}\nsentinel myid {myid}\n"
                    f"sentinel monitor {service} {HOST} {primary_port} 2\n"
                    f"sentinel down-after-milliseconds {service} {SENTINEL_DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {service} {SENTINEL_FAILOVER_TIMEOUT_MS}\n"
                    f"sentinel parallel-syncs {service} 1\n{known}"
                )
            return [binary, str(conf), "--sentinel"]

        return argv

    for _ in range(count):
        myid = os.urandom(20).hex()
        server = ServerProcess(
            "redis-sentinel",
            argv_for(myid),
            lambda port: f"redis://{HOST}:{port}/0",
            lambda server: redis_answers(server.port),
        )
        peers.append((server, myid))
    return [server for server, _ in peers]


def start_redis_replicated(replicas: int = 1) -> ServerGroup:
    """Start a primary and ``replicas`` replicas of it (``servers[0]`` is the primary); return
    once every replica is linked. Its ``url`` is the primary's."""
    servers: list[ServerProcess] = []
    group = ServerGroup(servers)
    # Through a file: a diskless sync waits 5 s for more replicas to share it, then streams
    # nothing to a replica until its first acknowledgement (up to a second later), and WAIT
    # counts no replica until then.
    quick = ("--repl-diskless-sync", "no")
    try:
        servers.append(start_redis(*quick))
        primary = servers[0].port
        for _ in range(replicas):
            servers.append(start_redis(*quick, "--replicaof", HOST, str(primary)))
        _wait_for_replicas(primary, replicas)
    except BaseException:
        group.close()
        raise
    return group


def start_redis_sentinel(replicas: int = 1, sentinels: int = 3) -> SentinelSet:
    """Start a primary, ``replicas`` replicas of it and ``sentinels`` Sentinels (quorum 2)
    monitoring it as ``SENTINEL_SERVICE``; return once they all see one another (about a
    second).

    Each call makes a private set, so a test may fail it over or kill its primary. A set that
    must keep taking writes that wait for one replica after losing its primary
    (``wait_replicas=1``) needs two replicas: the promoted one leaves one behind.
    """
    data = start_redis_replicated(replicas).servers
    watchers: list[ServerProcess] = []
    group = SentinelSet(data, watchers, SENTINEL_SERVICE)
    try:
        watchers.extend(_sentinels(sentinels, data[0].port, SENTINEL_SERVICE))
        for watcher in watchers:  # all at once: each connects to the others when it starts
            watcher.spawn()
        for watcher in watchers:
            watcher.wait_ready()
        group.wait_settled()
    except BaseException:
        group.close()
        raise
    return group


def _wait_for_replicas(port: int, count: int, timeout: float = STARTUP_TIMEOUT) -> None:
    """Wait until the primary on ``port`` has ``count`` replicas online."""
    import redis

    deadline = time.monotonic() + timeout
    with redis.Redis(host=HOST, port=port, socket_timeout=5) as client:
        while True:
            info = client.info("replication")
            online = [
                value for key, value in info.items()
                if key.startswith("slave") and isinstance(value, dict)
                and value.get("state") == "online"
            ]  # fmt: skip
            if len(online) >= count:
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{count} replicas of {port} not online within {timeout:.0f}s"
                )
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
def redis_sentinel_url() -> Iterator[str]:
    """``redis+sentinel://`` URL of a private primary, one replica and three Sentinels, started
    on first request. Shared by the run: never fail it over (take ``redis_sentinel_set``). An
    external set (``SESSIONKIT_TEST_REDIS_SENTINEL_URL``) needs a replica: writes wait for one."""
    env = "SESSIONKIT_TEST_REDIS_SENTINEL_URL"
    with _server_url(env, lambda: None, start_redis_sentinel) as url:
        yield url


@pytest.fixture
def redis_sentinel_set() -> Iterator[SentinelSet]:
    """A fresh private Sentinel set of this test's own (two replicas), to fail over or break."""
    try:
        group = start_redis_sentinel(replicas=2)
    except ServerStartError as exc:
        pytest.fail(f"cannot start a Redis Sentinel set: {exc}", pytrace=False)
    try:
        yield group
    finally:
        for server in group.servers:
            server.resume()
        group.close()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """URL of a MongoDB-protocol server (private SecantusDB) for the whole test session."""
    with _server_url("SESSIONKIT_TEST_MONGO_URL", lambda: None, start_mongo) as url:
        yield url
