"""sessionkit against starsessions and the bare app, through real uvicorn servers.

The rows of ``docs/performance.md``'s load table. Each contender is the load suite's Starlette
app (``tests/load/app_asgi.py``) under uvicorn, driven by the suite's load generator
(``tests/load/_harness.py``: keep-alive clients, 80 % reads, 20 % writes, every answer
checked). The contenders run in interleaved rounds, so a drift of the machine falls on all of
them alike; the table gives each one's median over the rounds.

    .venv/bin/python benchmarks/load/compare.py [--rounds 3] [--seconds 5] [--clients 50,500]

Needs a Redis on 127.0.0.1:6379 (its database 15 is used, under a prefix of its own, emptied
afterwards). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.load._harness import Plan, run_load, uvicorn_server  # noqa: E402

REDIS = "redis://127.0.0.1:6379/15"
CONTENDERS = [  # (layer, backend)
    ("bare", "none"),
    ("sessionkit", "memory"),
    ("starsessions", "memory"),
    ("sessionkit", "redis"),
    ("starsessions", "redis"),
]


def _storage(layer: str, backend: str, tag: str) -> str:
    if backend == "redis":
        return f"{REDIS}?prefix=bench-load:{tag}:{layer}:"
    return "memory://"


def _clean(tag: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        for key in client.scan_iter(match=f"bench-load:{tag}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="50,500")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    results: dict[tuple[int, str, str], list[tuple[float, ...]]] = {}
    logs = Path(tempfile.mkdtemp(prefix="sessionkit-load-compare-"))
    try:
        for _ in range(args.rounds):
            for clients in (int(c) for c in args.clients.split(",")):
                for layer, backend in CONTENDERS:
                    env = {"LOAD_LAYER": layer, "LOAD_STORAGE": _storage(layer, backend, tag)}
                    server = uvicorn_server(logs / f"{layer}-{backend}.log", env, args.workers)
                    server.start()
                    try:
                        cookie = "session_id" if layer == "sessionkit" else "session"
                        plan = Plan(clients, args.seconds, cookie=cookie, check=layer != "bare")
                        outcome = asyncio.run(run_load(server, plan))
                    finally:
                        server.stop()
                    errors = outcome.requests - outcome.statuses.get(200, 0)
                    results.setdefault((clients, layer, backend), []).append(
                        (
                            outcome.rps,
                            outcome.latency(0.5) * 1000,
                            outcome.latency(0.99) * 1000,
                            outcome.server_cpu / max(outcome.requests, 1) * 1e6,
                            errors,
                            len(outcome.violations(errors_allowed=False)),
                        )
                    )
                    time.sleep(0.5)
    finally:
        _clean(tag)
    print(
        f"uvicorn {args.workers} worker(s), {args.seconds:g} s per run, median of "
        f"{args.rounds} interleaved rounds\n"
    )
    print(
        "| clients | layer | storage | requests/s | p50 ms | p99 ms | server CPU µs/request | errors | rules broken |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for (clients, layer, backend), rows in results.items():
        rps, p50, p99, cpu = (statistics.median(r[i] for r in rows) for i in range(4))
        errors = sum(r[4] for r in rows)
        broken = max(r[5] for r in rows)
        print(
            f"| {clients} | {layer} | {backend} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {cpu:.0f} "
            f"| {errors} | {broken} |"
        )


if __name__ == "__main__":
    main()
