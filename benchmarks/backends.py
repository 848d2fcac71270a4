"""Latency of each storage operation on every first-party backend, in one run: ``backends.md``.

Usage: ``python benchmarks/backends.py [--n N] [--redis URL] [--postgres URL] [--mysql URL]
[--mongo URL] [--only NAME] [--out PATH]`` (``nox -s bench -- backends``). A server not named is
found the way the test suite finds it (the machine's Redis, PostgreSQL and MariaDB on their usual
ports, else a private one from Debian's packages; always a private SecantusDB for Mongo), so the
figures come from real servers over loopback sockets.

Each operation runs ``N`` times on a storage of its own namespace, sync and then async (one event
loop, awaited one at a time, as one request does); the figures are the median and the 99th
percentile of single calls, in microseconds. They are what one request pays per storage call on
this machine with the server on the same host; a server across a network adds its round trip to
every one. SecantusDB is a MongoDB-protocol test server written in Python, not MongoDB: its
figures say nothing about a real ``mongod`` and are shown only so that the run covers every
plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sessionkit import open_storage  # noqa: E402

TTL = timedelta(hours=1)
VALUE = b"x" * 200  # about a small session's envelope
OPERATIONS = ("get", "set", "replace", "replace_if", "create", "take", "touch")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_sync(n: int, call: Callable[[int], Any]) -> list[float]:
    samples = []
    for index in range(n):
        start = time.perf_counter()
        call(index)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def time_async(n: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for index in range(n):
        start = time.perf_counter()
        await call(index)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def sync_calls(storage: Any, n: int) -> dict[str, Callable[[int], Any]]:
    """Each operation as a call on key ``i``; keys the call needs are written beforehand."""
    keys = [f"k{i}" for i in range(n)]
    return {
        "get": lambda i: storage.get(keys[i]),
        "set": lambda i: storage.set(keys[i], VALUE, TTL),
        "replace": lambda i: storage.replace(keys[i], VALUE, TTL),
        "replace_if": lambda i: storage.replace_if(keys[i], VALUE, VALUE, TTL),
        "create": lambda i: storage.create(f"new{i}", VALUE, TTL),
        "take": lambda i: storage.take(keys[i]),
        "touch": lambda i: storage.touch(keys[i], TTL),
    }


def async_calls(storage: Any, n: int) -> dict[str, Callable[[int], Awaitable[Any]]]:
    keys = [f"k{i}" for i in range(n)]
    return {
        "get": lambda i: storage.aget(keys[i]),
        "set": lambda i: storage.aset(keys[i], VALUE, TTL),
        "replace": lambda i: storage.areplace(keys[i], VALUE, TTL),
        "replace_if": lambda i: storage.areplace_if(keys[i], VALUE, VALUE, TTL),
        "create": lambda i: storage.acreate(f"new{i}", VALUE, TTL),
        "take": lambda i: storage.atake(keys[i]),
        "touch": lambda i: storage.atouch(keys[i], TTL),
    }


def measure(name: str, url: str, n: int) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(operation, "sync"|"async"): (median µs, p99 µs)}`` for the storage at ``url``."""
    figures: dict[tuple[str, str], tuple[float, float]] = {}
    for mode in ("sync", "async"):
        for operation in OPERATIONS:
            storage = open_storage(with_namespace(name, url))
            try:
                if not callable(getattr(storage, operation, None)):
                    continue
                for i in range(n):  # every key the operation needs, live
                    storage.set(f"k{i}", VALUE, TTL)
                storage.get("k0")  # connections made, tables created: not timed
                if mode == "sync":
                    samples = time_sync(n, sync_calls(storage, n)[operation])
                else:
                    samples = asyncio.run(time_on_a_loop(storage, n, operation))
                figures[(operation, mode)] = (statistics.median(samples), percentile(samples, 0.99))
            finally:
                if mode == "sync":
                    storage.reset()
                storage.close()
    return figures


async def time_on_a_loop(storage: Any, n: int, operation: str) -> list[float]:
    """Time ``operation`` on a new event loop; its client for that loop is made first, untimed."""
    await storage.aget("k0")
    try:
        return await time_async(n, async_calls(storage, n)[operation])
    finally:
        await storage.areset()
        await storage.aclose()


def with_namespace(name: str, url: str) -> str:
    """``url`` with a namespace option of this run's own, so nothing else is touched."""
    tag = f"bench_{uuid.uuid4().hex[:8]}"
    option = {"redis": f"prefix={tag}:", "mongo": f"collection={tag}"}.get(name, f"table={tag}")
    if name == "memory":
        return url
    return f"{url}{'&' if '?' in url else '?'}{option}"


@contextlib.contextmanager
def servers(args: argparse.Namespace, tmp: Path) -> Iterator[dict[str, str]]:
    """Every backend's URL: the ones given, else the test suite's way of finding a server."""
    from tests import _server_mysql, _server_postgres, _servers

    with contextlib.ExitStack() as stack:
        urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp / 'bench.db'}"}

        def found(given: str | None, shared: Callable[[], str | None], start: Any) -> str:
            url = given or shared()
            if url:
                return url
            server = start()
            stack.callback(server.close)
            return str(server.url)

        urls["redis"] = found(args.redis, _servers._shared_redis, _servers.start_redis)
        urls["postgres"] = found(
            args.postgres, _server_postgres._shared_postgres, _server_postgres.start_postgres
        )
        urls["mysql"] = found(args.mysql, _server_mysql._shared_mysql, _server_mysql.start_mariadb)
        urls["mongo"] = found(args.mongo, lambda: None, _servers.start_mongo)
        yield urls


def table(results: dict[str, dict[tuple[str, str], tuple[float, float]]], mode: str) -> list[str]:
    names = list(results)
    lines = [
        "| operation | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for operation in OPERATIONS:
        cells = []
        for name in names:
            figure = results[name].get((operation, mode))
            cells.append("n/a" if figure is None else f"{figure[0]:,.0f} ({figure[1]:,.0f})")
        lines.append(f"| `{operation}` | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per operation and mode")
    for name in ("redis", "postgres", "mysql", "mongo"):
        parser.add_argument(f"--{name}", metavar="URL", help=f"the {name} server to use")
    parser.add_argument("--only", help="run the backends whose name contains this")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("backends.md"))
    args = parser.parse_args()
    results: dict[str, dict[tuple[str, str], tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, servers(args, Path(tmp)) as urls:
        for name, url in urls.items():
            if args.only and args.only not in name:
                continue
            print(f"{name}: {n_calls(args.n)} ...", file=sys.stderr, flush=True)
            results[name] = measure(name, url, args.n)
    text = [
        "# Storage operations, per backend",
        "",
        f"`python benchmarks/backends.py --n {args.n}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; every server on the same host (loopback). "
        "Median (99th percentile) of single calls, in µs.",
        "",
        "## Sync",
        "",
        *table(results, "sync"),
        "",
        "## Async (one event loop)",
        "",
        *table(results, "async"),
        "",
        "SecantusDB (the `mongo` column) is a MongoDB-protocol test server written in Python, not "
        "MongoDB: its figures say nothing about a real `mongod`.",
        "",
    ]
    args.out.write_text("\n".join(text))
    print("\n".join(text))


def n_calls(n: int) -> str:
    return f"{n} calls x {len(OPERATIONS)} operations x 2 modes"


if __name__ == "__main__":
    main()
