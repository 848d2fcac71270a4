"""Where a worker's CPU goes under the load of ``compare.py``: cProfile inside the server.

Each contender named runs under the same load as in ``compare.py`` (one worker, 50 clients,
80 % reads, 20 % writes), with ``LOAD_PROFILE`` set: the app module profiles the worker
(``cProfile`` timed by each thread's own CPU clock, so waiting and the other processes are not
counted) and writes the profile when the worker exits. The functions' own times are summed
by package; the time of a C function (a socket call, the JSON encoder) goes to the package of
the Python function that called it. Figures are µs per request *under the profiler*, which
roughly doubles every Python call's cost: read them as shares, and compare columns.

    .venv/bin/python benchmarks/load/profile.py [--seconds 4] [--top 25]
        starlette/bare/none starlette/sessionkit/redis starlette/floor/redis ...

Writes ``benchmarks/load/profile.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import pstats
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.load.compare import Contender, Resources, check, server_for  # noqa: E402
from tests.load._harness import Plan, run_load  # noqa: E402

#: (bucket, the text a function's file name holds); the first that matches wins.
BUCKETS = [
    ("sessionkit (core)", "/work/main/sessionkit/"),
    ("sessionkit (storage plugin)", "/plugins/sessionkit-"),
    ("floor (benchmark's own code)", "/benchmarks/load/apps/_floor.py"),
    ("app routes (benchmark)", "/benchmarks/load/apps/"),
    ("starsessions", "/starsessions/"),
    ("Flask-Session", "/flask_session/"),
    ("cachelib", "/cachelib/"),
    ("SQLAlchemy", "/sqlalchemy/"),
    ("Litestar sessions/stores", "/litestar/middleware/session/"),
    ("Litestar sessions/stores", "/litestar/stores/"),
    ("Litestar", "/litestar/"),
    ("Starlette", "/starlette/"),
    ("Flask/Werkzeug", "/flask/"),
    ("Flask/Werkzeug", "/werkzeug/"),
    ("itsdangerous", "/itsdangerous/"),
    ("msgspec", "/msgspec/"),
    ("uvicorn", "/uvicorn/"),
    ("h11", "/h11/"),
    ("gunicorn", "/gunicorn/"),
    ("redis-py", "/redis/"),
    ("psycopg", "/psycopg"),
    ("PyMySQL/aiomysql", "/pymysql/"),
    ("PyMySQL/aiomysql", "/aiomysql/"),
    ("asyncio", "/asyncio/"),
    ("anyio", "/anyio/"),
    ("json", "/json/"),
    ("threading/selectors/socket", "/threading.py"),
    ("threading/selectors/socket", "/selectors.py"),
    ("threading/selectors/socket", "/socket.py"),
    ("threading/selectors/socket", "/concurrent/"),
    ("threading/selectors/socket", "/queue.py"),
    ("other stdlib", "/lib/python3"),
]


def bucket(filename: str) -> str:
    for name, part in BUCKETS:
        if part in filename:
            return name
    return "other"


Func = tuple[str, int, str]


def attribute(stats: pstats.Stats) -> tuple[dict[str, float], dict[Func, float]]:
    """Own time by bucket and by Python function, each C function's time given to its
    callers (in proportion to the time it spent for each)."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    own: dict[Func, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        if func[0] != "~":
            own[func] += tt
            continue
        total = sum(edge[2] for edge in callers.values()) or 1.0
        for caller, edge in callers.items():
            own[caller] += tt * edge[2] / total
        if not callers:
            own[func] += tt
    buckets: dict[str, float] = defaultdict(float)
    for func, seconds in own.items():
        buckets[bucket(func[0]) if func[0] != "~" else "C, caller unknown"] += seconds
    return buckets, own


def profile_one(spec: str, seconds: float, resources: Resources) -> tuple[int, pstats.Stats]:
    framework, layer, backend = spec.split("/")
    c = Contender(framework, layer, backend, 1, 50)
    prefix = resources.tmp / f"prof-{spec.replace('/', '-')}"
    server = server_for(c, resources)
    server._env = {**server._env, "LOAD_PROFILE": str(prefix)}
    server.start()
    try:
        asyncio.run(check(server, c))
        plan = Plan(c.clients, seconds, cookie=c.cookie, check=layer != "bare")
        outcome = asyncio.run(run_load(server, plan))
        # SIGINT, not SIGTERM: uvicorn re-raises the signal it caught once it has shut down,
        # and a SIGTERM's default action ends the process before ``atexit`` writes the profile.
        if server.proc is not None:
            os.killpg(server.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(20)
    finally:
        server.stop()
    files = glob.glob(f"{prefix}.*")
    if not files:
        raise RuntimeError(f"{spec}: no profile written\n{server.tail()}")
    stats = pstats.Stats(files[0])
    for extra in files[1:]:
        stats.add(extra)
    # The check's requests and the logins ran under the profiler too: count them in.
    return outcome.requests + c.clients + 12, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", help="framework/layer/backend")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--explain",
        default="",
        help="list the top functions of these buckets too (comma-separated)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("profile.md"))
    args = parser.parse_args()
    resources = Resources()
    columns: dict[str, dict[str, float]] = {}
    tops: dict[str, list[tuple[Func, float]]] = {}
    explained: dict[tuple[str, str], list[tuple[Func, float]]] = {}
    try:
        every = [Contender(*s.split("/")[:3], 1, 50) for s in args.specs]  # type: ignore[misc]
        resources.prepare(every)
        for spec in args.specs:
            try:
                requests, stats = profile_one(spec, args.seconds, resources)
            except Exception as exc:
                print(f"{spec}: failed: {exc}", file=sys.stderr)
                continue
            buckets, own = attribute(stats)
            columns[spec] = {k: v / requests * 1e6 for k, v in buckets.items()}
            columns[spec]["(requests)"] = requests
            mine = [
                (f, v / requests * 1e6)
                for f, v in own.items()
                if "sessionkit" in f[0] and "/benchmarks/" not in f[0]
            ]
            tops[spec] = sorted(mine, key=lambda x: -x[1])[: args.top]
            for name in filter(None, args.explain.split(",")):
                inside = [
                    (f, v / requests * 1e6)
                    for f, v in own.items()
                    if (bucket(f[0]) if f[0] != "~" else "C, caller unknown") == name
                ]
                explained[(spec, name)] = sorted(inside, key=lambda x: -x[1])[:12]
            print(f"{spec}: {requests} requests", file=sys.stderr)
    finally:
        resources.cleanup()
    names = sorted(
        {b for col in columns.values() for b in col if b != "(requests)"},
        key=lambda b: -max(col.get(b, 0) for col in columns.values()),
    )
    lines = [
        "# Where the worker's CPU goes (cProfile, µs per request under the profiler)",
        "",
        "| package | " + " | ".join(f"`{s}`" for s in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in names:
        cells = [f"{col.get(name, 0):.1f}" for col in columns.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [sum(v for k, v in col.items() if k != "(requests)") for col in columns.values()]
    lines.append("| **total** | " + " | ".join(f"**{t:.1f}**" for t in totals) + " |")
    lines.append(
        "| requests | " + " | ".join(f"{col['(requests)']:.0f}" for col in columns.values()) + " |"
    )
    for spec, top in tops.items():
        if not top:
            continue
        lines += [
            "",
            f"## `{spec}`: sessionkit's functions, own time (C calls included), µs per request",
            "",
        ]
        lines += [f"- {v:.2f} `{Path(f[0]).name}:{f[1]} {f[2]}`" for f, v in top if v >= 0.05]
    for (spec, name), found in explained.items():
        lines += ["", f"## `{spec}`: the top functions of {name}, µs per request", ""]
        lines += [f"- {v:.2f} `{f[0]}:{f[1]} {f[2]}`" for f, v in found]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
