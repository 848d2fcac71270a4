"""sessionkit against the peers, the floor and the bare app, through real servers under load.

The rows of ``docs/performance.md``'s first tables. Three frameworks, each under its usual
server: Starlette and Litestar under uvicorn, Flask under gunicorn (``gthread``, 32 threads, as
the load suite runs it). On each, the bare app (no session layer), sessionkit on every backend,
the framework's usual server-side session library on the backends it supports (starsessions:
memory, Redis; Flask-Session: cachelib in memory, Redis, SQLAlchemy on SQLite, PostgreSQL and
MySQL; Litestar's sessions: memory, Redis, file stores) and the floor (``apps/_floor.py``: the
same round trips through the raw driver, no session layer; on memory a dictionary) on memory,
Redis, PostgreSQL and MySQL, with two floors more: on Redis the calls bounded as sessionkit
bounds them, on memory the dictionary doing by hand what sessionkit's spec asks of any session
library (``Vary``, an envelope of times checked by the server, the cookie sent again on a save:
``apps/_floor.py``, ``LOAD_DUTIES``), and the same with a client-side cache of Redis made by
hand beside sessionkit's ``client_cache`` (``TrackedCache``). 1 and 2
workers (a memory store lives in one process: 1 worker only; the floors run on 1 worker).

The load is the load suite's generator (``tests/load/_harness.py``): 50 keep-alive clients,
each with one request in flight, 80 % reads and 20 % writes of the client's own counter, every
answer checked against what the client was last acknowledged. Before its first timed run each
contender is checked on its own (log in, write, read back on a new connection, another user's
session kept apart, no session without a cookie); a contender that fails is not timed. The
contenders of one framework and worker count (its bare app among them) are started together
and timed in interleaved rounds (each round starting further along the list), so a drift of the
machine falls on all of them alike; the tables give medians over the rounds. (Starting each
server once per group, not once per run, saves about three seconds of imports per run.)

The server's CPU is the user + system time of its processes (from ``/proc``) over the requests
served; the session layer's share is a row's CPU less the bare app's of the same framework,
workers and round. A second phase drives 500 clients at one worker with default settings
(``--big``).

    .venv/bin/python benchmarks/load/compare.py [--rounds 3] [--seconds 3] [--clients 50]
        [--workers 1,2] [--frameworks starlette,flask,litestar]
        [--backends memory,sqlite,redis,postgres,mysql,file] [--only TEXT] [--pin] [--big 500]
        [--code REV] [--out benchmarks/load/results.md]

``--pin`` runs every one-worker server (its processes) on CPU 0 and the load generator on the
others, each timed run; two-worker servers and the generator facing them stay unpinned. The
headline runs unpinned, as servers are deployed; pinned, the rounds spread less
(docs/performance.md, *Pinned to one core*).

``--code HEAD`` (any git revision) serves sessionkit and its plugins as committed there
(``git archive`` unpacked in the run's folder, first on the servers' path), not the working
tree: other work in the checkout cannot change the code under test halfway through a run.
Without it the working tree is served, and the run records which of its core files changed
while it ran.

Needs Redis on 127.0.0.1:6379 (database 15, keys under a prefix of the run's own),
PostgreSQL on 127.0.0.1:5432 (user ``postgres``, database ``test``; a schema of the run's own)
and MariaDB/MySQL on 127.0.0.1:3306 (user ``root``; a database of the run's own). Everything
the run made is removed when it ends. ``--render results.json`` prints the tables of an
earlier run again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests._servers import HOST  # noqa: E402
from tests.load._harness import AppServer, Plan, run_load  # noqa: E402
from tests.load._http import Connection, Response  # noqa: E402

REDIS = "redis://127.0.0.1:6379/15"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_SERVER = "mysql://root@127.0.0.1:3306"

FRAMEWORKS = ("starlette", "flask", "litestar")
BACKENDS = ("memory", "sqlite", "redis", "redis-cached", "postgres", "mysql", "file")
#: The peer of each framework, and the backends it is measured on.
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "starlette": ("starsessions", ("memory", "redis")),
    "flask": ("Flask-Session", ("memory", "redis", "sqlite", "postgres", "mysql")),
    "litestar": ("Litestar sessions", ("memory", "redis", "file")),
}
#: ``redis-cached``: the Redis storage with its client-side cache on (``client_cache=true``).
SESSIONKIT_BACKENDS = ("memory", "sqlite", "redis", "redis-cached", "postgres", "mysql")
FLOOR_BACKENDS = ("memory", "redis", "postgres", "mysql")
SERVER = {"starlette": "uvicorn", "litestar": "uvicorn", "flask": "gunicorn"}
#: How each peer stores on a backend, for the tables.
PEER_STORE = {
    ("flask", "memory"): "cachelib SimpleCache",
    ("flask", "sqlite"): "SQLAlchemy",
    ("flask", "postgres"): "SQLAlchemy",
    ("flask", "mysql"): "SQLAlchemy",
    ("litestar", "memory"): "MemoryStore",
    ("litestar", "redis"): "RedisStore",
    ("litestar", "file"): "FileStore",
}
BACKEND_NAME = {
    "none": "",
    "memory": "memory",
    "sqlite": "SQLite",
    "redis": "Redis",
    "redis-cached": "Redis, client cache",
    "postgres": "PostgreSQL",
    "mysql": "MariaDB",
    "file": "files",
}


@dataclass(frozen=True)
class Contender:
    framework: str
    #: bare | sessionkit | peer | floor | floor3s (the Redis floor with timeouts) | floorduty
    #: (a floor with the spec's duties, on memory and on Redis with a client cache made by
    #: hand: ``apps/_floor.py``) | spinN (the bare app burning N µs of CPU per request:
    #: ``--calibrate``)
    layer: str
    backend: str  # none | memory | sqlite | redis | postgres | mysql | file
    workers: int
    clients: int

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.layer}/{self.backend}/{self.workers}w/{self.clients}c"

    @property
    def cookie(self) -> str:
        return {
            "sessionkit": "session_id",
            "floor": "sid",
            "floor3s": "sid",
            "floorduty": "sid",
        }.get(self.layer, "session")

    @property
    def spin(self) -> int:
        """µs of CPU a calibration row's routes burn (0: not one)."""
        return int(self.layer[4:]) if self.layer.startswith("spin") else 0

    @property
    def constant(self) -> bool:
        """Whether it answers constants (the bare app, plain or burning CPU): no session."""
        return self.layer == "bare" or self.spin > 0

    @property
    def label(self) -> str:
        if self.spin:
            return f"calibration: the bare app + {self.spin} µs of CPU"
        if self.layer == "peer":
            name = PEERS[self.framework][0]
            store = PEER_STORE.get((self.framework, self.backend))
            return f"{name} ({store})" if store else name
        if self.layer == "floor" and self.backend == "memory":
            return "floor (a dict)"
        if self.layer == "floorduty" and self.backend == "memory":
            return "floor (a dict), with the spec's duties"
        return {
            "bare": "none (bare app)",
            "sessionkit": "**sessionkit**",
            "floor": "floor (raw driver)",
            "floor3s": "floor, calls bounded (3 s)",
            "floorduty": "floor (raw driver), with the spec's duties",
        }[self.layer]


def contenders(args: argparse.Namespace) -> list[Contender]:
    found: list[Contender] = []
    frameworks = [f for f in args.frameworks.split(",") if f]
    backends = {b for b in args.backends.split(",") if b}
    for workers in (int(w) for w in args.workers.split(",")):
        for framework in frameworks:
            rows = [Contender(framework, "bare", "none", workers, args.clients)]
            if workers == 1:
                rows += [
                    Contender(framework, f"spin{us}", "none", workers, args.clients)
                    for us in args.calibrate
                ]
            for backend in BACKENDS:
                if backend not in backends or (backend == "memory" and workers > 1):
                    continue
                if backend in SESSIONKIT_BACKENDS:
                    rows.append(Contender(framework, "sessionkit", backend, workers, args.clients))
                if backend in PEERS[framework][1]:
                    rows.append(Contender(framework, "peer", backend, workers, args.clients))
                if backend in FLOOR_BACKENDS and workers == 1 and not args.no_floors:
                    rows.append(Contender(framework, "floor", backend, workers, args.clients))
                    if backend == "redis":
                        rows.append(Contender(framework, "floor3s", backend, workers, args.clients))
                    if backend == "memory":
                        rows.append(
                            Contender(framework, "floorduty", backend, workers, args.clients)
                        )
                # The client cache's duties by hand.
                if backend == "redis-cached" and workers == 1 and not args.no_floors:
                    rows.append(Contender(framework, "floorduty", backend, workers, args.clients))
            found += rows
    if args.only:
        found = [c for c in found if c.constant or args.only in c.key]
    return found


def big_contenders(args: argparse.Namespace) -> list[Contender]:
    """Part 4 of issue 19: ``--big`` clients at one worker with default settings."""
    if not args.big:
        return []
    found = []
    backends = {b for b in args.big_backends.split(",") if b}
    for framework in ("starlette", "flask"):
        if framework not in args.frameworks.split(","):
            continue
        found.append(Contender(framework, "bare", "none", 1, args.big))
        for backend in SESSIONKIT_BACKENDS:
            if backend in backends:
                found.append(Contender(framework, "sessionkit", backend, 1, args.big))
        for backend in PEERS[framework][1]:
            if backend in backends:
                found.append(Contender(framework, "peer", backend, 1, args.big))
    return found


# -- where each contender keeps its sessions -------------------------------------------------------


class Resources:
    """The run's own namespaces on the shared servers, and its temporary folder."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="sessionkit-load-compare-"))
        self.schema = f"bench_load_{self.tag}"
        self.mysql_db = f"bench_load_{self.tag}"
        self.made: set[str] = set()

    def redis_prefix(self, what: str) -> str:
        return f"bench-load:{self.tag}:{what}:"

    def env(self, c: Contender) -> dict[str, str]:
        """``LOAD_*`` for the contender's app (see ``apps/__init__.py``)."""
        fw, backend = c.framework, c.backend
        url, ns = "", ""
        if c.layer == "sessionkit":
            url = {
                "memory": "memory://",
                "sqlite": f"sqlite:///{self.tmp / f'sk-{fw}.db'}",
                "redis": f"{REDIS}?prefix={self.redis_prefix(f'sk:{fw}')}",
                "redis-cached": (
                    f"{REDIS}?prefix={self.redis_prefix(f'skc:{fw}')}&client_cache=true"
                ),
                "postgres": f"{POSTGRES}?schema={self.schema}&table=sk_{fw}",
                "mysql": f"{MYSQL_SERVER}/{self.mysql_db}?table=sk_{fw}",
            }.get(backend, "")
        elif c.layer == "peer":
            url, ns = {
                "memory": ("", ""),
                "redis": (REDIS, self.redis_prefix(f"peer:{fw}")),
                "sqlite": (f"sqlite:///{self.tmp / f'peer-{fw}.db'}", f"peer_{fw}"),
                "postgres": (
                    POSTGRES.replace("postgresql://", "postgresql+psycopg://"),
                    f"{self.schema}.peer_{fw}",
                ),
                "mysql": (
                    f"{MYSQL_SERVER.replace('mysql://', 'mysql+pymysql://')}/{self.mysql_db}",
                    f"peer_{fw}",
                ),
                "file": (str(self.tmp / f"peer-{fw}-files"), ""),
            }[backend]
            if fw == "litestar" and backend == "redis":
                ns = ns.rstrip(":")  # Litestar adds the colon itself
        elif c.layer in ("floor", "floor3s", "floorduty"):
            url, ns = {
                "memory": ("", ""),
                "redis": (REDIS, self.redis_prefix(f"floor:{fw}")),
                "redis-cached": (REDIS, self.redis_prefix(f"floorc:{fw}")),
                "postgres": (POSTGRES, f"{self.schema}.floor_{fw}"),
                "mysql": (f"{MYSQL_SERVER}/{self.mysql_db}", f"floor_{fw}"),
            }[backend]
        layer, timeout = ("floor", "3") if c.layer == "floor3s" else (c.layer, "")
        duties = "1" if c.layer == "floorduty" else ""
        if duties:
            layer = "floor"
        if c.spin:
            layer = "bare"
        return {
            "LOAD_DUTIES": duties,
            "LOAD_SPIN_US": str(c.spin),
            "LOAD_LAYER": layer,
            "LOAD_BACKEND": backend,
            "LOAD_URL": url,
            "LOAD_NS": ns,
            "LOAD_TIMEOUT": timeout,
        }

    def prepare(self, every: list[Contender]) -> None:
        """The PostgreSQL schema, the MySQL database, the floors' tables, the peers' tables."""
        from benchmarks.load.apps._floor import create_table_sql

        backends = {c.backend for c in every}
        if "postgres" in backends:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                self.made.add("postgres")
                for fw in FRAMEWORKS:
                    conn.execute(create_table_sql("postgres", f"{self.schema}.floor_{fw}"))
        if "mysql" in backends:
            import pymysql

            conn = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{self.mysql_db}`")
                    self.made.add("mysql")
                    cursor.execute(f"USE `{self.mysql_db}`")
                    for fw in FRAMEWORKS:
                        cursor.execute(create_table_sql("mysql", f"floor_{fw}"))
            finally:
                conn.close()
        (self.tmp / "logs").mkdir(exist_ok=True)
        for fw in FRAMEWORKS:
            (self.tmp / f"peer-{fw}-files").mkdir(exist_ok=True)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS)
            try:
                for key in client.scan_iter(match=f"bench-load:{self.tag}:*", count=1000):
                    client.delete(key)
            finally:
                client.close()
        if "postgres" in self.made:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(POSTGRES, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        if "mysql" in self.made:
            with contextlib.suppress(Exception):
                import pymysql

                conn = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(f"DROP DATABASE IF EXISTS `{self.mysql_db}`")
                finally:
                    conn.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


#: The CPU a pinned server runs on (``--pin``); the load generator gets the others.
SERVER_CPU = 0


def pinned(c: Contender, pin: bool) -> bool:
    """Whether ``c``'s server and the generator facing it are pinned (``--pin``: one-worker
    servers only; two workers on one CPU would be one worker's capacity)."""
    return pin and c.workers == 1


def server_for(c: Contender, resources: Resources, pin: bool = False) -> AppServer:
    log = resources.tmp / "logs" / f"{c.key.replace('/', '-')}.log"
    module = f"benchmarks.load.apps.{c.framework}_app:app"
    # ``taskset`` execs the server: its pid is the server's, and its children inherit the CPU.
    prefix = ["taskset", "--cpu-list", str(SERVER_CPU)] if pinned(c, pin) else []
    if SERVER[c.framework] == "uvicorn":

        def argv(port: int) -> list[str]:
            return [
                *prefix, sys.executable, "-m", "uvicorn", module, "--host", HOST, "--port", str(port),
                "--workers", str(c.workers), "--no-access-log", "--log-level", "warning",
                "--timeout-graceful-shutdown", "2",
            ]  # fmt: skip

        processes = 1 if c.workers == 1 else c.workers + 1
        return AppServer(f"uvicorn-{c.workers}w", argv, resources.env(c), log, processes)

    def gargv(port: int) -> list[str]:
        return [
            *prefix, sys.executable, "-m", "gunicorn", module, "--bind", f"{HOST}:{port}",
            "--workers", str(c.workers), "--worker-class", "gthread", "--threads", "32",
            "--log-level", "warning", "--graceful-timeout", "2", "--timeout", "60",
            "--keep-alive", "5",
        ]  # fmt: skip

    return AppServer(f"gunicorn-{c.workers}w", gargv, resources.env(c), log, c.workers + 1)


# -- the check before timing -----------------------------------------------------------------------


class CheckFailed(AssertionError):
    pass


def _cookie(response: Response, name: str) -> str | None:
    for line in response.set_cookies:
        pair = line.split(";")[0]
        key, _, value = pair.partition("=")
        if key.strip() == name and value and "max-age=0" not in line.lower():
            return value.strip()
    return None


async def check(server: AppServer, c: Contender) -> None:
    """A short session by hand: every answer must be the one a session layer owes."""
    port, name = server.port, c.cookie

    async def get(path: str, sid: str | None = None, fresh: bool = False) -> tuple[str, Response]:
        conn = Connection(port)
        try:
            response = await asyncio.wait_for(
                conn.get(path, None if sid is None else f"{name}={sid}"), 10
            )
        finally:
            conn.close()
        if response.status != 200:
            raise CheckFailed(f"{c.key} {path}: status {response.status} {response.body[:200]!r}")
        return response.body.decode(), response

    def expect(what: str, got: str, want: str) -> None:
        if got != want:
            raise CheckFailed(f"{c.key} {what}: {got!r}, expected {want!r}")

    body, _ = await get("/health")
    expect("/health", body, "ok")
    if c.constant:
        body, _ = await get("/read")
        expect("/read", body, "- 0")
        return
    body, response = await get("/login?user=ada")
    expect("login", body, "ada 0")
    sid = _cookie(response, name)
    if not sid:
        raise CheckFailed(f"{c.key} login: no {name} cookie in {response.set_cookies}")
    for n in (1, 2, 3):
        body, _ = await get("/write", sid)
        expect(f"write {n}", body, f"ada {n}")
    for _ in range(4):  # new connections: with 2 workers, both are likely asked
        body, _ = await get("/read", sid)
        expect("read back", body, "ada 3")
    body, response = await get("/login?user=bob")
    expect("second login", body, "bob 0")
    other = _cookie(response, name)
    if not other or other == sid:
        raise CheckFailed(f"{c.key}: second login got {other!r}, first {sid!r}")
    body, _ = await get("/write", other)
    expect("bob writes", body, "bob 1")
    body, _ = await get("/read", sid)
    expect("ada unchanged", body, "ada 3")
    body, _ = await get("/read")
    expect("no cookie", body, "- 0")
    body, _ = await get("/read", "x" * 43)
    expect("unknown id", body, "- 0")


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Sample:
    key: str
    round: int
    rps: float
    p50: float
    p99: float
    worst: float
    cpu_us: float
    client_cpu_us: float
    requests: int
    errors: int
    broken: list[str]
    load: float


@dataclass
class Run:
    started: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    contenders: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    wall: float = 0.0


def start(c: Contender, resources: Resources, run: Run) -> AppServer | None:
    """The contender's server, started and checked; ``None`` (and the failure noted) if not."""
    server = server_for(c, resources, pin=bool(run.args.get("pin")))
    try:
        for attempt in (1, 2):  # two workers may race to make a peer's table: once more
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                time.sleep(1)
        asyncio.run(check(server, c))
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        run.failures[c.key] = f"{detail}\n{server.tail(20)}"
        print(f"  {c.key}: FAILED {detail[:300]}", file=sys.stderr, flush=True)
        server.stop()
        return None
    return server


def measure(c: Contender, server: AppServer, seconds: float, round_: int, run: Run) -> None:
    load = os.getloadavg()[0]
    try:
        rate = run.args.get("rate") if c.clients == run.args.get("clients") else None
        plan = Plan(c.clients, seconds, cookie=c.cookie, check=not c.constant, rate=rate)
        with generator_cpus(pinned(c, bool(run.args.get("pin")))):
            outcome = asyncio.run(run_load(server, plan))
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        run.failures[c.key] = f"{detail}\n{server.tail(20)}"
        print(f"  {c.key}: FAILED {detail[:300]}", file=sys.stderr, flush=True)
        return
    requests = max(outcome.requests, 1)
    sample = Sample(
        key=c.key,
        round=round_,
        rps=outcome.rps,
        p50=outcome.latency(0.5) * 1000,
        p99=outcome.latency(0.99) * 1000,
        worst=outcome.latency(1.0) * 1000,
        cpu_us=outcome.server_cpu / requests * 1e6,
        client_cpu_us=outcome.client_cpu / requests * 1e6,
        requests=outcome.requests,
        errors=outcome.requests - outcome.statuses.get(200, 0),
        broken=outcome.violations(errors_allowed=False),
        load=load,
    )
    run.samples.append(asdict(sample))
    print(
        f"  {c.key}: {sample.rps:.0f}/s p50 {sample.p50:.1f} p99 {sample.p99:.1f} ms, "
        f"{sample.cpu_us:.0f} µs CPU/req, {sample.errors} errors, load {load:.2f}",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def generator_cpus(pin: bool) -> Iterator[None]:
    """The load generator (this process) on every CPU but the pinned server's, while it runs."""
    if not pin:
        yield
        return
    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, every - {SERVER_CPU})
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)


def run_group(
    group: list[Contender], resources: Resources, rounds: int, seconds: float, run: Run
) -> None:
    """Start every server of ``group`` (one framework, one worker count, the bare app among
    them), check each, time them in ``rounds`` interleaved rounds, stop them all."""
    servers: dict[str, AppServer] = {}
    try:
        for c in group:
            server = start(c, resources, run)
            if server is not None:
                servers[c.key] = server
        live = [c for c in group if c.key in servers]
        for round_ in range(rounds):
            run.loads.append(os.getloadavg()[0])
            shift = round_ * len(live) // max(rounds, 1)
            print(
                f"{live[0].framework if live else '?'}, {group[0].workers} worker(s), "
                f"{group[0].clients} clients: round {round_ + 1}/{rounds}, "
                f"load {run.loads[-1]:.2f}",
                file=sys.stderr,
                flush=True,
            )
            for c in live[shift:] + live[:shift]:
                if c.key not in run.failures:
                    measure(c, servers[c.key], seconds, round_, run)
    finally:
        for server in servers.values():
            server.stop()


def _git(*argv: str) -> str:
    return subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def code_under_test(revision: str | None, resources: Resources) -> str:
    """Serve ``revision``'s sessionkit and plugins (see ``--code``); describe what is served."""
    head = _git("rev-parse", "--short", "HEAD")
    if not revision:
        changed = _git("status", "--porcelain", "--", "sessionkit", "plugins").splitlines()
        edits = f", {len(changed)} files of sessionkit/ and plugins/ edited" if changed else ""
        return f"working tree at {head}{edits}"
    commit = _git("rev-parse", "--short", revision)
    target = resources.tmp / "code"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", commit, "sessionkit", "plugins"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    paths = [str(target), *sorted(str(p) for p in (target / "plugins").glob("sessionkit-*"))]
    os.environ["SESSIONKIT_LOAD_PYTHONPATH"] = ":".join(paths)
    return f"commit {commit} (git archive; HEAD is {head})"


def source_digest() -> str:
    """A digest of the working tree's sessionkit and plugin sources."""
    digest = hashlib.sha256()
    files = sorted([*ROOT.glob("sessionkit/**/*.py"), *ROOT.glob("plugins/*/sessionkit_*/**/*.py")])
    for path in files:
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    versions = {}
    for package in (
        "sessionkit", "uvicorn", "gunicorn", "starlette", "litestar", "flask", "starsessions",
        "flask-session", "cachelib", "flask-sqlalchemy", "sqlalchemy", "redis", "psycopg",
        "pymysql", "aiomysql",
    ):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    servers: dict[str, str] = {}
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(REDIS)
        servers["Redis"] = str(client.info("server")["redis_version"])
        client.close()
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(POSTGRES) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            servers["PostgreSQL"] = str(row[0]).split()[0] if row else "?"
    with contextlib.suppress(Exception):
        import pymysql

        conn = pymysql.connect(host=HOST, port=3306, user="root")
        servers["MariaDB"] = str(conn.get_server_info())
        conn.close()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "versions": versions,
        "servers": servers,
    }


def _microseconds(text: str) -> list[int]:
    """``--calibrate``'s list: whole µs, comma-separated, each above 0."""
    values = [int(us) for us in text.split(",") if us.strip()]
    if any(us <= 0 for us in values):
        raise ValueError(text)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--only", help="only the contenders whose key holds this (and the bare apps)"
    )
    parser.add_argument("--no-floors", action="store_true")
    parser.add_argument(
        "--calibrate",
        type=_microseconds,
        default=[],
        help="µs of CPU, comma-separated: rows of the bare app burning each per request "
        "(one worker), to read how the session-layer column reports a cost known exactly",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="requests per second, all clients together, at a fixed pace (default: each "
        "client sends its next request when it has its answer); every contender must keep up",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"one-worker servers on CPU {SERVER_CPU}, the load generator on the others",
    )
    parser.add_argument(
        "--big", type=int, default=500, help="clients of the second phase (0: none)"
    )
    parser.add_argument("--big-backends", default="memory,redis")
    parser.add_argument("--big-rounds", type=int, default=1)
    parser.add_argument("--big-seconds", type=float, default=4.0)
    parser.add_argument("--code", help="serve sessionkit as committed at this git revision")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    parser.add_argument("--render", type=Path, help="print the tables of an earlier run's JSON")
    args = parser.parse_args()
    if args.pin and not os.sched_getaffinity(0) - {SERVER_CPU}:
        parser.error(f"--pin needs a CPU besides {SERVER_CPU} for the load generator")
    if args.pin and not shutil.which("taskset"):
        parser.error("--pin needs taskset (util-linux)")
    if args.render:
        run = Run(**json.loads(args.render.read_text()))
        print(render(run))
        return
    every = contenders(args)
    big = big_contenders(args)
    run = Run(
        started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        environment=environment(),
        contenders=[asdict(c) for c in [*every, *big]],
    )
    began = time.monotonic()
    resources = Resources()
    try:
        run.environment["code"] = code_under_test(args.code, resources)
        digest = source_digest()
        resources.prepare([*every, *big])
        groups: dict[tuple[int, int, str], list[Contender]] = {}
        for c in [*every, *big]:
            groups.setdefault((c.clients, c.workers, c.framework), []).append(c)
        for (clients, _, _), group in groups.items():
            big_group = clients != args.clients
            rounds = args.big_rounds if big_group else args.rounds
            seconds = args.big_seconds if big_group else args.seconds
            run_group(group, resources, rounds, seconds, run)
        if not args.code and source_digest() != digest:
            run.environment["code"] += "; CHANGED DURING THE RUN"
    finally:
        resources.cleanup()
        run.wall = time.monotonic() - began
        stem = args.out.with_suffix(".json")
        stem.write_text(json.dumps(asdict(run), indent=1))
        text = render(run)
        args.out.write_text(text)
        print(text)


# -- the tables -----------------------------------------------------------------------------------


def target_table(
    every: list[Contender], clients: int, share: Any, fastest_peer: Any, ratio: Any
) -> list[str]:
    """Issue 19's target, row by row: sessionkit's session layer at most half the fastest peer's."""
    lines = [
        "## Against the target: session layer at most half the fastest peer's",
        "",
        "The floor with the duties: on Redis, the calls bounded as sessionkit bounds them (3 s); "
        "on memory, the dictionary doing by hand what sessionkit's spec asks of any session "
        "library (`Vary`, an envelope of times, the cookie again on a save: `apps/_floor.py`).",
        "",
        "| framework | storage | workers | sessionkit ÷ fastest peer | floor ÷ fastest peer "
        "| floor with the duties ÷ fastest peer | sessionkit ÷ floor | ≤ 0.5 |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in every:
        if c.layer != "sessionkit" or c.clients != clients:
            continue
        peer = fastest_peer(c)
        floor = Contender(c.framework, "floor", c.backend, c.workers, c.clients)
        # The floor with what sessionkit must do on top: bounded calls on Redis, the spec's
        # headers on memory.
        duty = "floorduty" if c.backend == "memory" else "floor3s"
        bounded = Contender(c.framework, duty, c.backend, c.workers, c.clients)
        mine = share(c)
        theirs = share(peer) if peer is not None else float("nan")
        cells = [
            ratio(mine, theirs),
            ratio(share(floor), theirs),
            ratio(share(bounded), theirs),
            ratio(mine, share(floor)),
        ]
        if not any(cells):
            continue
        verdict = "" if not cells[0] else ("met" if mine <= 0.5 * theirs else "**not met**")
        lines.append(
            f"| {c.framework} | {BACKEND_NAME[c.backend]} | {c.workers} | "
            + " | ".join(cells)
            + f" | {verdict} |"
        )
    return [*lines, ""]


def cache_table(every: list[Contender], clients: int, cpu: Any, cpu_rounds: Any) -> list[str]:
    """Issue 19's cache target, one worker: server CPU per request on Redis with the client
    cache at most 1.2 times the memory backend's, for sessionkit and for the hand-made cache of
    the floor with the duties (set against that floor on memory)."""
    lines: list[str] = []
    for framework in FRAMEWORKS:
        cells: list[str] = []
        for layer in ("sessionkit", "floorduty"):
            cached = Contender(framework, layer, "redis-cached", 1, clients)
            memory = Contender(framework, layer, "memory", 1, clients)
            if cached not in every or memory not in every:
                cells += [""] * (4 if layer == "sessionkit" else 3)
                continue
            by_round = [a / b for a, b in cpu_rounds(cached, memory) if b > 0]
            spread = f" ({min(by_round):.2f} to {max(by_round):.2f})" if by_round else ""
            mine, theirs = cpu(cached), cpu(memory)
            shown = f"{mine / theirs:.2f}" if mine == mine and theirs > 0 else ""
            cells += [f"{theirs:.0f}", f"{mine:.0f}", f"**{shown}**{spread}" if shown else ""]
            if layer == "sessionkit":
                cells.append(
                    "" if not shown else ("met" if mine <= 1.2 * theirs else "**not met**")
                )
        if any(cells):
            lines.append(f"| {framework} | " + " | ".join(cells) + " |")
    if not lines:
        return []
    return [
        "## Against the target: Redis with the client cache at most 1.2 times memory",
        "",
        "Server CPU µs per request, one worker, median of the rounds; ÷ memory: the medians' "
        "ratio, and in brackets the lowest and highest of the rounds' own ratios. The floor with "
        "the duties keeps a client-side cache made by hand (`apps/_floor.py`, `TrackedCache`) "
        "and is set against the same floor on memory.",
        "",
        "| framework | sessionkit, memory | sessionkit, cache | ÷ memory | ≤ 1.2 "
        "| floor with the duties, memory | the same, cache | ÷ memory |",
        "|---|---:|---:|---|---|---:|---:|---|",
        *lines,
        "",
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(run: Run) -> str:
    every = [Contender(**c) for c in run.contenders]
    by_key: dict[str, list[dict[str, Any]]] = {}
    for s in run.samples:
        by_key.setdefault(s["key"], []).append(s)
    cpu_by_round = {(s["key"], s["round"]): s["cpu_us"] for s in run.samples}

    def bare_of(c: Contender) -> Contender:
        return Contender(c.framework, "bare", "none", c.workers, c.clients)

    def share(c: Contender) -> float:
        """Median over rounds of (CPU per request - the bare app's of the same round)."""
        bare = bare_of(c).key
        values = [
            s["cpu_us"] - cpu_by_round[(bare, s["round"])]
            for s in by_key.get(c.key, [])
            if (bare, s["round"]) in cpu_by_round
        ]
        return _median(values)

    def fastest_peer(c: Contender) -> Contender | None:
        peers = [
            p
            for p in every
            if p.layer == "peer"
            and (p.framework, p.backend, p.workers, p.clients)
            == (c.framework, c.backend, c.workers, c.clients)
            and p.key in by_key
        ]
        return min(peers, key=share) if peers else None

    def floor_of(c: Contender) -> Contender | None:
        f = Contender(c.framework, "floor", c.backend, c.workers, c.clients)
        return f if f.key in by_key else None

    def ratio(mine: float, theirs: float) -> str:
        if theirs != theirs or mine != mine or theirs <= 0:
            return ""
        return f"{mine / theirs:.2f}"

    env = run.environment
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    servers = ", ".join(f"{k} {v}" for k, v in env.get("servers", {}).items())
    loads = run.loads or [float("nan")]
    args = run.args
    lines = [
        "# Under load, through real servers",
        "",
        f"`benchmarks/load/compare.py`, started {run.started}, {run.wall / 60:.0f} minutes; "
        f"{env.get('cpus')} CPUs ({env.get('machine')}), Python {env.get('python')}, "
        f"load average {loads[0]:.2f} at the start (from {min(loads):.2f} to {max(loads):.2f} "
        f"at the starts of the rounds). Code: {env.get('code', '?')}. {versions}. "
        f"Servers on loopback: {servers}.",
        "",
        f"{args.get('clients')} keep-alive clients, 80 % reads / 20 % writes, "
        + (f"{args['rate']:g} requests/s in all at a fixed pace, " if args.get("rate") else "")
        + (
            f"one-worker servers pinned to CPU {SERVER_CPU} and the generator to the others, "
            if args.get("pin")
            else ""
        )
        + f"{args.get('seconds')} s per run, median of {args.get('rounds')} interleaved rounds. "
        "CPU: user + system time of the server's processes per request served; session layer: "
        "the row's CPU less the bare app's of the same round; ÷ peer: sessionkit's session "
        "layer over the fastest peer's on the same framework, backend and workers (on a floor's "
        "row: the best ratio any session layer could reach there); ÷ floor: over the floor's "
        "(the same round trips through the raw driver, no session layer; calls unbounded, "
        "redis-py's default).",
        "",
    ]
    for framework in FRAMEWORKS:
        rows = [c for c in every if c.framework == framework and c.clients == args.get("clients")]
        if not rows:
            continue
        server = SERVER[framework] + (" (gthread, 32 threads)" if framework == "flask" else "")
        lines += [
            f"## {framework.capitalize()} under {server}",
            "",
            "| workers | storage | session layer | requests/s | p50 ms | p99 ms "
            "| server CPU µs/req | session layer µs/req | ÷ peer | ÷ floor | errors |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in rows:
            samples = by_key.get(c.key)
            if not samples:
                why = run.failures.get(c.key, "not measured").splitlines()[0][:80]
                lines.append(
                    f"| {c.workers} | {BACKEND_NAME[c.backend]} | {c.label} | "
                    f"failed: {why} | | | | | | | |"
                )
                continue
            rps, p50, p99, cpu = (
                _median([s[k] for s in samples]) for k in ("rps", "p50", "p99", "cpu_us")
            )
            errors = sum(s["errors"] for s in samples)
            mine = share(c) if c.layer != "bare" else float("nan")  # a calibration row's too
            vs_peer = vs_floor = ""
            if c.layer in ("sessionkit", "floor", "floor3s", "floorduty"):
                peer = fastest_peer(c)
                if peer is not None:
                    vs_peer = ratio(mine, share(peer))
            if c.layer == "sessionkit":
                floor = floor_of(c)
                if floor is not None:
                    vs_floor = ratio(mine, share(floor))
            shown = "" if mine != mine else f"{mine:.0f}"
            lines.append(
                f"| {c.workers} | {BACKEND_NAME[c.backend]} | {c.label} | {rps:.0f} | {p50:.1f} "
                f"| {p99:.1f} | {cpu:.0f} | {shown} | {vs_peer} | {vs_floor} | {errors} |"
            )
        lines.append("")
    lines += target_table(every, args.get("clients"), share, fastest_peer, ratio)

    def cpu(c: Contender) -> float:
        return _median([s["cpu_us"] for s in by_key.get(c.key, [])])

    def cpu_rounds(a: Contender, b: Contender) -> list[tuple[float, float]]:
        """(a's CPU, b's CPU) in each round that measured both."""
        return [
            (s["cpu_us"], cpu_by_round[(b.key, s["round"])])
            for s in by_key.get(a.key, [])
            if (b.key, s["round"]) in cpu_by_round
        ]

    lines += cache_table(every, args.get("clients"), cpu, cpu_rounds)
    big = [c for c in every if c.clients != args.get("clients")]
    if big:
        lines += [
            f"## {big[0].clients} concurrent clients, one worker, default settings",
            "",
            "| framework | storage | session layer | requests/s | p50 ms | p99 ms | worst ms "
            "| server CPU µs/req | errors | rules broken |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in big:
            samples = by_key.get(c.key)
            if not samples:
                why = run.failures.get(c.key, "not measured").splitlines()[0][:80]
                lines.append(
                    f"| {c.framework} | {BACKEND_NAME[c.backend]} | {c.label} | failed: {why} |||||||"
                )
                continue
            rps, p50, p99, worst, cpu = (
                _median([s[k] for s in samples]) for k in ("rps", "p50", "p99", "worst", "cpu_us")
            )
            errors = sum(s["errors"] for s in samples)
            broken = max(len(s["broken"]) for s in samples)
            lines.append(
                f"| {c.framework} | {BACKEND_NAME[c.backend]} | {c.label} | {rps:.0f} | {p50:.1f} "
                f"| {p99:.1f} | {worst:.0f} | {cpu:.0f} | {errors} | {broken} |"
            )
        lines.append("")
    broken_rows = {
        s["key"]: s["broken"] for s in run.samples if s["broken"] and "/bare/" not in s["key"]
    }
    if broken_rows or run.failures:
        lines += ["## Rules broken, failures", ""]
        for key, found in broken_rows.items():
            lines.append(f"- `{key}`: {'; '.join(found)[:400]}")
        for key, why in run.failures.items():
            lines.append(f"- `{key}` not timed: {why.splitlines()[0][:400]}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
