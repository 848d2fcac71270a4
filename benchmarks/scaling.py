"""How sessionkit behaves as the number of live sessions grows (10^4 -> 10^6).

For the memory and SQLite backends: memory per stored session, time of one request's worth
of session work (load + change + save) at each size, and the cost of purging expired entries.
Usage: ``python benchmarks/scaling.py [--sizes 10000,100000,1000000] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sessionkit import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fill(store: Store, n: int, start: int) -> list[str]:
    ids = []
    for i in range(start, n):
        s = store.load(None)
        s["user"] = f"user-{i}"
        s["cart"] = [("sku-1", 2), ("sku-2", 1)]
        s.save()
        ids.append(s.id)
    return ids


def request_cost(store: Store, ids: list[str], samples: int = 2000) -> float:
    times = []
    for sid in random.sample(ids, min(samples, len(ids))):
        t0 = time.perf_counter_ns()
        s = store.load(sid)
        assert not s.fresh
        s["n"] = s.get("n", 0) + 1
        s.save()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def scale(name: str, make: Callable[[], Store], sizes: list[int], track_memory: bool) -> list[str]:
    store = make()
    ids: list[str] = []
    rows = []
    for size in sizes:
        gc.collect()
        if track_memory:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        ids += fill(store, size, len(ids))
        fill_s = time.perf_counter() - t0
        per = "—"
        if track_memory:
            per = f"{(tracemalloc.get_traced_memory()[0] - before) / (size - (len(ids) - size) or 1):.0f}"
            tracemalloc.stop()
        cost = request_cost(store, ids)
        rows.append(
            f"| {name} | {size:,} | {per} | {fill_s / (size - (len(ids) - size) or 1) * 1e6:.1f} | {cost:.1f} |"
        )
        print(rows[-1], flush=True)
    store.close()
    return rows


def purge_memory(n: int) -> str:
    from sessionkit_memory import MemoryStorage

    clock = Clock()
    storage = MemoryStorage(clock=clock)
    for i in range(n):
        storage.set(f"k{i}", b"x" * 200, timedelta(seconds=10))
    clock.now += 20  # every entry has expired
    times = []
    for i in range(n // storage.purge_batch + 10):
        t0 = time.perf_counter_ns()
        storage.set(f"new{i}", b"y", timedelta(hours=1))
        times.append(time.perf_counter_ns() - t0)
    left = len(storage) - (n // storage.purge_batch + 10)
    return (
        f"| memory | {n:,} expired | incremental, {storage.purge_batch} per write | "
        f"median {statistics.median(times) / 1000:.1f} µs, max {max(times) / 1000:.1f} µs per write "
        f"| {left:,} expired left after {len(times):,} writes |"
    )


def purge_sqlite(path: Path, n: int) -> str:
    from sessionkit import open_storage

    clock = Clock()
    storage: Any = open_storage(f"sqlite:///{path}", clock=clock)
    for i in range(n):
        storage.set(f"k{i}", b"x" * 200, timedelta(seconds=10))
    clock.now += 20
    t0 = time.perf_counter()
    removed = storage.purge_expired()
    took = time.perf_counter() - t0
    storage.close()
    return (
        f"| sqlite | {n:,} expired | purge_expired() | {took * 1000:.0f} ms in all, "
        f"{took / max(removed, 1) * 1e6:.2f} µs per row | {removed:,} removed |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out", default=str(Path(__file__).parent / "scaling.md"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = [
        "# Scaling: live sessions",
        "",
        "| backend | live sessions | bytes per session (Python heap) | µs per save while filling | µs per request (load + change + save) at that size |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += scale("memory", lambda: Store(storage="memory"), sizes, track_memory=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        lines += scale(
            "sqlite", lambda: Store(storage=f"sqlite:///{db}"), sizes, track_memory=False
        )
        lines.append("")
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        lines.append(
            f"SQLite file size at {sizes[-1]:,} sessions: {size_mb:.0f} MB "
            f"({size_mb * 1e6 / sizes[-1]:.0f} bytes per session)."
        )
        lines += [
            "",
            "## Purging expired entries",
            "",
            "| backend | entries | how | cost | result |",
            "|---|---|---|---|---|",
            purge_memory(sizes[-1] // 10),
            purge_sqlite(Path(tmp) / "purge.db", sizes[-1] // 10),
        ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
