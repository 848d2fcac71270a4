"""Run every contender through the three scenarios in one process and write ``results.md``.

Usage: ``python benchmarks/run.py [--requests N] [--redis URL] [--out PATH] [--only SUBSTR]``
(``nox -s bench`` runs it). Figures are medians of per-request times in microseconds; ratios
compare contenders measured in this same run, so the machine's speed cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import contenders as c
from _drive import asgi_caller, median_us, time_async, time_sync, wsgi_caller

SCENARIOS = ("new", "read", "write")
SKIPPED: list[str] = []
#: Per-round medians in µs, by contender name and scenario: the spread of a ratio across rounds.
ROUNDS: dict[str, dict[str, list[float]]] = {}


def build(redis_url: str, tmp: Path, only: str | None) -> list[c.Contender]:
    sqlite_url = f"sqlite:///{tmp / 'bench.db'}"
    sk_redis = f"{redis_url}/{c.REDIS_DB}?prefix=bench-sessionkit:"
    factories: list[Callable[[], c.Contender]] = [
        c.starlette_bare,
        lambda: c.sessionkit_starlette("memory", "memory"),
        lambda: c.sessionkit_starlette(sqlite_url, "sqlite"),
        lambda: c.sessionkit_starlette(sk_redis, "redis"),
        # The cost of the features of issue 20, each against the plain row above it.
        lambda: c.sessionkit_starlette(sk_redis, "redis", "overwrite", conflict="overwrite"),
        lambda: c.sessionkit_starlette(sk_redis, "redis", "principal_key", principal_key="user"),
        lambda: c.sessionkit_starlette(
            sk_redis, "redis", "encryption_keys", encryption_keys=[c.BENCH_KEY]
        ),
        lambda: c.sessionkit_starlette("memory", "memory", "principal_key", principal_key="user"),
        lambda: c.sessionkit_starlette(
            "memory", "memory", "encryption_keys", encryption_keys=[c.BENCH_KEY]
        ),
        lambda: c.starsessions_starlette("memory"),
        lambda: c.starsessions_starlette("redis", redis_url),
        lambda: c.starlette_floor(redis_url),
        c.litestar_bare,
        lambda: c.sessionkit_litestar("memory", "memory"),
        lambda: c.sessionkit_litestar(sk_redis, "redis"),
        lambda: c.litestar_sessions("memory"),
        lambda: c.litestar_sessions("redis", redis_url),
        lambda: c.litestar_floor(redis_url),
        c.flask_bare,
        lambda: c.sessionkit_flask("memory", "memory"),
        lambda: c.sessionkit_flask(sqlite_url, "sqlite"),
        lambda: c.sessionkit_flask(sk_redis, "redis"),
        lambda: c.flask_session("memory"),
        lambda: c.flask_session("redis", redis_url),
        lambda: c.flask_floor(redis_url),
        c.wsgi_bare,
        lambda: c.sessionkit_wsgi("memory", "memory"),
        lambda: c.sessionkit_wsgi(sqlite_url, "sqlite"),
        lambda: c.sessionkit_wsgi(sk_redis, "redis"),
        lambda: c.wsgi_floor(redis_url),
    ]
    built = []
    for factory in factories:
        try:
            contender = factory()
        except ImportError as exc:  # a peer not installed: say so in the results, go on
            print(f"not measured: {exc}", file=sys.stderr)
            SKIPPED.append(str(exc))
            continue
        if only is None or only in contender.name:
            built.append(contender)
        elif contender.cleanup is not None:  # a floor writes its key when built: take it back
            contender.cleanup()
    return built


class Failed(AssertionError):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)


#: A timed operation: ``(kind, fn)`` where ``kind`` is "sync" (``fn()`` does one request) or
#: "async" (``await fn()`` does one).
Op = tuple[str, Callable[[], Any]]


class Timed:
    """A contender (or a raw-limit probe) ready to time: one operation per scenario, checked
    correct first, and samples gathered over several interleaved rounds."""

    def __init__(self, name: str, ops: dict[str, Op], after: Callable[[int], None] | None = None):
        self.name = name
        self.ops = ops
        self.samples: dict[str, list[int]] = {k: [] for k in ops}
        self._after = after

    def run(self, loop: asyncio.AbstractEventLoop, n: int, warmup: int) -> None:
        rounds = ROUNDS.setdefault(self.name, {k: [] for k in self.ops})
        for key, (kind, fn) in self.ops.items():
            got = time_async(loop, fn, n, warmup) if kind == "async" else time_sync(fn, n, warmup)
            self.samples[key] += got
            rounds[key].append(median_us(got))

    def finish(self, runs: int) -> dict[str, float]:
        """Check what the timed runs left behind (``runs`` calls of each op); medians in µs."""
        if self._after is not None:
            self._after(runs)
        return {k: median_us(v) for k, v in self.samples.items()}


def prepare(contender: c.Contender, loop: asyncio.AbstractEventLoop) -> Timed:
    """Check each scenario is correct; return the contender's three timed operations."""
    if contender.kind == "asgi":
        acall = asgi_caller(contender.app)

        def call(path: str, cookie: str | None) -> Any:
            return loop.run_until_complete(acall(path, cookie))
    else:
        call = wsgi_caller(contender.app)
    session = contender.backend != "none"

    first = call("/new", None)
    check(first.status == 200, f"{contender.name}: /new answered {first.status}")
    sid = first.cookie(contender.cookie) if session else None
    check(not session or sid is not None, f"{contender.name}: /new set no session cookie")
    cookie = f"{contender.cookie}={sid}" if sid else None
    got = call("/read", cookie)
    check(got.body == b"hello", f"{contender.name}: /read returned {got.body!r}")
    counts = [int(call("/write", cookie).body) for _ in range(3)]
    check(not session or counts == [1, 2, 3], f"{contender.name}: counter went {counts}")

    def after(runs: int) -> None:
        value = int(call("/write", cookie).body)
        check(
            not session or value == 3 + runs + 1,
            f"{contender.name}: counter is {value} after {runs} timed writes",
        )

    if contender.kind == "asgi":
        kind = "async"
        ops = {
            "new": lambda: acall("/new", None),
            "read": lambda: acall("/read", cookie),
            "write": lambda: acall("/write", cookie),
        }
    else:
        kind = "sync"
        ops = {
            "new": lambda: call("/new", None),
            "read": lambda: call("/read", cookie),
            "write": lambda: call("/write", cookie),
        }
    return Timed(contender.name, {k: (kind, fn) for k, fn in ops.items()}, after)


def raw_limits(redis_url: str, loop: asyncio.AbstractEventLoop) -> tuple[Timed, Callable[[], None]]:
    """The physical limit: the storage's own round trips for the same payload, and a dict."""
    import redis
    import redis.asyncio as aredis

    from sessionkit import Store

    store = Store()
    s = store.load(None)
    s["v"] = "hello"
    s["n"] = 1
    s.save()
    payload = store.storage.get(s.id)
    assert payload is not None
    key = "bench-raw:" + s.id
    sync = redis.Redis.from_url(f"{redis_url}/{c.REDIS_DB}")
    sync.set(key, payload, ex=86400)
    client = aredis.Redis.from_url(f"{redis_url}/{c.REDIS_DB}")

    async def aget() -> Any:
        return await client.get(key)

    async def aget_set() -> Any:
        await client.get(key)
        return await client.set(key, payload, ex=86400)

    # One connection held for the run, past the client's pool checkout: the cheapest round
    # trip redis-py gives Python code (what sessionkit's lane does, less the free list).
    held = sync.connection_pool.get_connection()
    aheld: list[Any] = []

    def cmd(*args: Any) -> Any:
        held.send_command(*args)
        return held.read_response()

    async def acmd(*args: Any) -> Any:
        if not aheld:
            aheld.append(await client.connection_pool.get_connection())
        await aheld[0].send_command(*args)
        return await aheld[0].read_response()

    async def aheld_get_set() -> Any:
        await acmd("GET", key)
        return await acmd("SET", key, payload, "EX", 86400)

    d: dict[str, bytes] = {}
    ops: dict[str, Op] = {
        "redis GET (sync)": ("sync", lambda: sync.get(key)),
        "redis GET + SET EX (sync)": (
            "sync",
            lambda: (sync.get(key), sync.set(key, payload, ex=86400)),
        ),
        "redis GET (asyncio)": ("async", aget),
        "redis GET + SET EX (asyncio)": ("async", aget_set),
        "redis GET, held connection (sync)": ("sync", lambda: cmd("GET", key)),
        "redis GET + SET EX, held connection (sync)": (
            "sync",
            lambda: (cmd("GET", key), cmd("SET", key, payload, "EX", 86400)),
        ),
        "redis GET, held connection (asyncio)": ("async", lambda: acmd("GET", key)),
        "redis GET + SET EX, held connection (asyncio)": ("async", aheld_get_set),
        "dict get + set": ("sync", lambda: (d.get(key), d.__setitem__(key, payload))),
    }

    def cleanup() -> None:
        sync.connection_pool.release(held)
        sync.delete(key)
        loop.run_until_complete(client.aclose())
        sync.close()

    return Timed("raw limits", ops), cleanup


def is_sessionkit(ct: c.Contender) -> bool:
    """A sessionkit row: not a peer, not a bare framework, not a hand-made floor."""
    return not ct.peer and not ct.floor and ct.backend != "none"


def table(rows: list[tuple[c.Contender, dict[str, float]]], raw: dict[str, float]) -> str:
    base = {ct.framework: r for ct, r in rows if ct.backend == "none"}
    lines = [
        "| contender | backend | new µs | read µs | write µs | overhead over bare framework (new/read/write µs) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for ct, r in rows:
        b = base.get(ct.framework)
        over = (
            "—"
            if b is None or ct.backend == "none"
            else " / ".join(f"{r[s] - b[s]:.1f}" for s in SCENARIOS)
        )
        lines.append(
            f"| {ct.name} | {ct.backend} | {r['new']:.1f} | {r['read']:.1f} | "
            f"{r['write']:.1f} | {over} |"
        )
    lines += [
        "",
        "### Ratios: sessionkit ÷ fastest peer on the same framework and backend",
        "",
        "In brackets, the middle half of the same ratio taken round by round (each round's "
        "medians): how far the machine's noise moves it.",
        "",
        "| sessionkit | peer | new | read | write |",
        "|---|---|---:|---:|---:|",
    ]
    for ct, r in rows:
        if is_sessionkit(ct):
            lines += peer_ratio_row(ct, r, rows, ct.backend)
    lines += [
        "",
        "### Ratios: session-layer overhead, sessionkit ÷ fastest peer (same backend)",
        "",
        "Overhead = contender minus its bare framework; this isolates the session layer.",
        "",
        "| sessionkit | backend | new | read | write |",
        "|---|---|---:|---:|---:|",
    ]
    for ct, r in rows:
        if not is_sessionkit(ct) or ct.framework not in base:
            continue
        peers = [
            (p, pr) for p, pr in rows if p.peer and p.backend == ct.backend and p.framework in base
        ]
        if not peers:
            continue
        cells = []
        for s in SCENARIOS:
            mine = r[s] - base[ct.framework][s]
            best = min(pr[s] - base[p.framework][s] for p, pr in peers)
            cells.append(f"{mine / best:.2f}" if best > 0 else "n/a")
        lines.append(f"| {ct.name} | {ct.backend} | {' | '.join(cells)} |")
    lines += ["", "### The storage's own limit", "", "| operation | µs |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in raw.items()]
    lines += [
        "",
        "sessionkit minus its bare framework, ÷ the same commands through redis-py's client "
        "(the issue's raw limit) and ÷ on one held connection (the cheapest redis-py allows):",
        "",
        "| sessionkit on redis | read ÷ GET | write ÷ (GET + SET EX) "
        "| read ÷ held GET | write ÷ held (GET + SET EX) |",
        "|---|---:|---:|---:|---:|",
    ]
    for ct, r in rows:
        if not is_sessionkit(ct) or ct.backend != "redis":
            continue
        flavour = "asyncio" if ct.kind == "asgi" else "sync"
        base_fw = base.get(ct.framework, {"read": 0.0, "write": 0.0})
        read, write = r["read"] - base_fw["read"], r["write"] - base_fw["write"]
        cells = [
            read / raw[f"redis GET ({flavour})"],
            write / raw[f"redis GET + SET EX ({flavour})"],
            read / raw[f"redis GET, held connection ({flavour})"],
            write / raw[f"redis GET + SET EX, held connection ({flavour})"],
        ]
        lines.append(f"| {ct.name} | " + " | ".join(f"{x:.2f}" for x in cells) + " |")
    return "\n".join(lines + floor_tables(rows))


def floor_tables(rows: list[tuple[c.Contender, dict[str, float]]]) -> list[str]:
    """sessionkit and the fastest peer against the floor: the same framework making the same
    round trips itself, which no session layer on that framework can beat."""
    floors = {ct.framework: (ct, r) for ct, r in rows if ct.floor}
    if not floors:
        return []
    lines = [
        "",
        "### Ratios: sessionkit on redis ÷ the framework's floor (same framework making the same "
        "round trips itself on one held connection, no session layer)",
        "",
        "| sessionkit | floor | new | read | write |",
        "|---|---|---:|---:|---:|",
    ]
    for ct, r in rows:
        if not is_sessionkit(ct) or ct.backend != "redis" or ct.framework not in floors:
            continue
        f, fr = floors[ct.framework]
        cells = " | ".join(f"{r[s] / fr[s]:.2f}" for s in SCENARIOS)
        lines.append(f"| {ct.name} | {f.name} | {cells} |")
    lines += [
        "",
        "Floor ÷ fastest peer on redis, same framework: the share of the peer's time that no "
        "session layer can shed. Above 0.80, being 20 % faster than the peer is out of reach "
        "with the same round trips.",
        "",
        "| floor | fastest peer | new | read | write |",
        "|---|---|---:|---:|---:|",
    ]
    for f, fr in floors.values():
        lines += peer_ratio_row(f, fr, rows, "redis")
    return lines


def peer_ratio_row(
    ct: c.Contender,
    r: dict[str, float],
    rows: list[tuple[c.Contender, dict[str, float]]],
    backend: str,
) -> list[str]:
    """The table row of ``ct``'s times ÷ the fastest peer's, scenario by scenario, on the same
    framework and ``backend``; no row when no peer was measured there."""
    peers = [
        (p, pr) for p, pr in rows if p.peer and p.framework == ct.framework and p.backend == backend
    ]
    if not peers:
        return []
    cells = []
    names = set()
    for s in SCENARIOS:
        p, pr = min(peers, key=lambda x: x[1][s])
        names.add(p.name)
        cells.append(f"{r[s] / pr[s]:.2f} {_spread(ct.name, p.name, s)}")
    return [f"| {ct.name} | {', '.join(sorted(names))} | {' | '.join(cells)} |"]


def _spread(mine: str, theirs: str, scenario: str) -> str:
    """``(low to high)``: the ratio of the two contenders' medians round by round, its middle
    half (quartiles), so a reader sees whether a ratio's distance to a target is noise."""
    ratios = sorted(
        a / b for a, b in zip(ROUNDS[mine][scenario], ROUNDS[theirs][scenario], strict=True)
    )
    if len(ratios) < 4:
        return ""
    low, _, high = statistics.quantiles(ratios, n=4)
    return f"({low:.2f} to {high:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--redis", default=os.environ.get("SESSIONKIT_BENCH_REDIS", "redis://127.0.0.1:6379")
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.md"))
    parser.add_argument("--only", default=None, help="run contenders whose name contains this")
    parser.add_argument(
        "--rounds", type=int, default=10, help="interleaved rounds the requests are split into"
    )
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    rounds = max(1, args.rounds)
    per_round = max(1, args.requests // rounds)
    with tempfile.TemporaryDirectory() as tmp:
        contenders = build(args.redis, Path(tmp), args.only)
        timed = [prepare(contender, loop) for contender in contenders]
        limits, close_limits = raw_limits(args.redis, loop)
        # Every contender is timed a slice at a time, in turn, so a drift of the machine
        # (a noisy neighbour, the loopback's latency) falls on all of them alike.
        for number in range(rounds):
            started = time.perf_counter()
            for item in [*timed, limits]:
                gc.collect()
                item.run(loop, per_round, args.warmup if number == 0 else args.warmup // 10)
            print(f"round {number + 1}/{rounds}: {time.perf_counter() - started:.1f} s", flush=True)
        runs = sum(
            per_round + (args.warmup if number == 0 else args.warmup // 10)
            for number in range(rounds)
        )
        rows = [(ct, item.finish(runs)) for ct, item in zip(contenders, timed, strict=True)]
        raw = limits.finish(runs)
        close_limits()
        for contender in contenders:
            if contender.cleanup is not None:
                contender.cleanup()
    for ct, r in rows:
        print(
            f"{ct.name:45s} new {r['new']:8.1f}  read {r['read']:8.1f}  write {r['write']:8.1f} µs"
        )
    header = (
        f"# sessionkit benchmarks\n\nOne run, {per_round * rounds} timed requests per scenario "
        f"in {rounds} interleaved rounds (every contender in turn, so drift of the machine "
        f"falls on all alike), median µs per request, in-process drivers, "
        f"Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} cores. Redis at {args.redis} "
        f"(loopback).\n\n"
    )
    text = header + table(rows, raw) + "\n"
    if SKIPPED:
        text += "\nNot measured (not importable): " + "; ".join(SKIPPED) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
