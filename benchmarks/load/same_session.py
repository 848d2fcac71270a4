"""Parallel saves of one session (issue 20): ``conflict="merge"`` against ``"overwrite"``.

The load suite's same-session scenario (``tests/load/_same_session.py``) through real servers:
one request creates a session, then 20 keep-alive clients all send its cookie, each setting its
own key (``k07 = n``, n = 1, 2, ...), one request in flight each, ``--requests`` saves per
client. A 200 acknowledges a change. Lost changes are counted twice: along the way (the
client's next request finds its key below the value last acknowledged: another request's save
wrote it over) and at the end (the key does not hold the client's last acknowledged value).

Each server (Starlette under uvicorn, Flask with ``sessionkit.flask`` under gunicorn gthread with
32 threads: the load suite's servers and settings) runs once with ``Config(conflict="merge")``
and once with ``"overwrite"``, on every backend; the two are up together and, after a short
warm-up, timed in interleaved rounds. Each round also runs the uncontended control: the same
clients and saves, each client on a session of its own. Server CPU: user + system time of the
server's processes (from ``/proc``) per save answered; the tables give medians over the rounds.
A 503 is a merge that kept losing the race for its whole budget (5 s): nothing was written, so
it loses no acknowledged change, and it is counted apart.

    .venv/bin/python benchmarks/load/same_session.py [--rounds 3] [--clients 20]
        [--requests 200] [--servers uvicorn,gunicorn]
        [--backends memory,sqlite,redis,postgres,mysql] [--workers 1] [--code REV]
        [--out benchmarks/load/same_session.md]

Storage servers, namespaces and ``--code`` (serve sessionkit as committed at a git revision
rather than the working tree) are ``compare.py``'s; everything the run made is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.load.compare import (  # noqa: E402
    BACKEND_NAME,
    Contender,
    Resources,
    code_under_test,
    environment,
)
from tests.load._harness import AppServer  # noqa: E402
from tests.load._same_session import SameSession, run_same_session, same_session_server  # noqa: E402

SERVERS = ("uvicorn", "gunicorn")
BACKENDS = ("memory", "sqlite", "redis", "postgres", "mysql")
CONFLICTS = ("merge", "overwrite")
#: The framework each server runs here, as ``compare.py`` names them (its storage URLs).
#: The load average at the start of each round.
LOADS: list[float] = []
FRAMEWORK = {"uvicorn": "starlette", "gunicorn": "flask"}
SERVER_NAME = {
    "uvicorn": "Starlette, uvicorn",
    "gunicorn": "Flask, gunicorn gthread",
}


@dataclass
class Cell:
    """Every round of one server, backend and conflict setting."""

    runs: list[SameSession] = field(default_factory=list)
    controls: list[SameSession] = field(default_factory=list)
    failure: str = ""

    def median(self, what: str, control: bool = False) -> float:
        runs = self.controls if control else self.runs
        values = [getattr(r, what) for r in runs]
        return statistics.median(values) if values else float("nan")

    def p99(self) -> float:
        values = [r.latency(0.99) for r in self.runs]
        return statistics.median(values) if values else float("nan")

    def total(self, what: str) -> int:
        return sum(getattr(r, what) for r in self.runs)

    def problems(self) -> list[str]:
        return [p for r in [*self.runs, *self.controls] for p in r.problems]


def _storage_url(resources: Resources, server: str, backend: str, workers: int) -> str:
    contender = Contender(FRAMEWORK[server], "sessionkit", backend, workers, 0)
    return resources.env(contender)["LOAD_URL"]


async def measure_pair(
    server: str, backend: str, args: argparse.Namespace, resources: Resources
) -> dict[str, Cell]:
    """Merge and overwrite on one server and backend, in interleaved rounds."""
    cells = {conflict: Cell() for conflict in CONFLICTS}
    workers = 1 if backend == "memory" else args.workers
    url = _storage_url(resources, server, backend, workers)
    apps: dict[str, AppServer] = {}
    try:
        for conflict in CONFLICTS:
            log = resources.tmp / "logs" / f"{server}-{backend}-{conflict}.log"
            app = same_session_server(server, log, url, conflict, workers)
            try:
                apps[conflict] = app.start()
            except RuntimeError as exc:
                cells[conflict].failure = str(exc).splitlines()[0]
        for app in apps.values():  # warm up: imports, connections, the storage's table
            await run_same_session(app, args.clients, 10)
        for round_ in range(args.rounds):
            LOADS.append(_load())
            order = CONFLICTS if round_ % 2 == 0 else CONFLICTS[::-1]
            for conflict in order:
                if conflict not in apps:
                    continue
                app, cell = apps[conflict], cells[conflict]
                run = await run_same_session(app, args.clients, args.requests)
                cell.runs.append(run)
                control = await run_same_session(app, args.clients, args.requests, shared=False)
                cell.controls.append(control)
                print(f"{server} {backend} {conflict} round {round_ + 1}: {run.summary()}",
                      file=sys.stderr, flush=True)  # fmt: skip
                if run.problems and not run.saves:
                    cell.failure = f"{run.problems[0]}; server log: {app.tail(3)}"
                    break
    finally:
        for app in apps.values():
            app.stop()
    return cells


def render(
    results: dict[tuple[str, str], dict[str, Cell]], args: argparse.Namespace, header: str
) -> str:
    lines = [
        "# Parallel saves of one session: merge against overwrite",
        "",
        header,
        "",
        f"{args.clients} keep-alive clients share one session cookie, each setting its own key "
        f"{args.requests} times (one request in flight each); {args.rounds} interleaved rounds; "
        f"{args.workers} worker(s) (memory: 1). **Lost**: acknowledged changes (a 200) that "
        "another request's save wrote over, seen by the client's next request, out of all "
        "acknowledged; **final**: clients whose key does not hold their last acknowledged "
        "value at the end (of clients x rounds). CPU: the server's user + system time per save "
        "answered, median over rounds; **uncontended**: the same clients and saves, each on a "
        "session of its own; **÷ overwrite**: merge's CPU per save over overwrite's, on one "
        "session and uncontended.",
        "",
        "| server | storage | conflict | lost | final | 503s | saves/s | p99 ms "
        "| CPU µs/save | uncontended µs/save | ÷ overwrite (one session) "
        "| ÷ overwrite (uncontended) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for (server, backend), cells in results.items():
        base = cells["overwrite"]
        for conflict, cell in cells.items():
            where = f"| {SERVER_NAME[server]} | {BACKEND_NAME[backend]} | {conflict} |"
            if not cell.runs:
                lines.append(f"{where} failed: {cell.failure[:100]} | | | | | | | | |")
                continue
            cpu = cell.median("cpu_per_save") * 1e6
            quiet = cell.median("cpu_per_save", control=True) * 1e6
            ratio = ratio_quiet = ""
            if conflict == "merge" and base.runs:
                ratio = f"{cpu / (base.median('cpu_per_save') * 1e6):.2f}"
                ratio_quiet = f"{quiet / (base.median('cpu_per_save', control=True) * 1e6):.2f}"
            acked = cell.total("acked")
            lost = cell.total("lost_seen")
            share = f" ({lost / acked:.{0 if lost >= acked / 100 else 1}%})" if lost else ""
            final = f"{cell.total('lost_final')}/{args.clients * len(cell.runs)}"
            control_lost = sum(r.lost_seen + r.lost_final for r in cell.controls)
            if control_lost:
                notes.append(
                    f"- {SERVER_NAME[server]}, {BACKEND_NAME[backend]}, {conflict}: "
                    f"{control_lost} changes lost in the uncontended control"
                )
            lines.append(
                f"{where} {lost}/{acked}{share} | {final} | {cell.total('refused')} "
                f"| {cell.median('rps'):.0f} | {cell.p99() * 1000:.0f} | {cpu:.0f} | {quiet:.0f} "
                f"| {ratio} | {ratio_quiet} |"
            )
            for problem in dict.fromkeys(cell.problems()):
                notes.append(
                    f"- {SERVER_NAME[server]}, {BACKEND_NAME[backend]}, {conflict}: {problem}"
                )
    if notes:
        lines += ["", "Problems seen:", "", *notes[:40]]
    return "\n".join([*lines, ""])


async def main_async(args: argparse.Namespace) -> None:
    servers = [s for s in args.servers.split(",") if s]
    backends = [b for b in args.backends.split(",") if b]
    resources = Resources()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    LOADS.append(_load())
    began = time.monotonic()
    results: dict[tuple[str, str], dict[str, Cell]] = {}
    try:
        code = code_under_test(args.code, resources)
        resources.prepare([Contender("starlette", "sessionkit", b, 1, 0) for b in backends])
        env = environment()
        for server in servers:
            for backend in backends:
                results[server, backend] = await measure_pair(server, backend, args, resources)
    finally:
        resources.cleanup()
    versions = ", ".join(
        f"{k} {v}"
        for k, v in env["versions"].items()
        if k in ("uvicorn", "gunicorn", "starlette", "flask", "redis", "psycopg", "pymysql")
    )
    servers_text = ", ".join(f"{k} {v}" for k, v in env["servers"].items())
    header = (
        f"`benchmarks/load/same_session.py`, started {started}, "
        f"{(time.monotonic() - began) / 60:.0f} minutes; {env['cpus']} CPUs "
        f"({env['machine']}), Python {env['python']}, load average {LOADS[0]:.2f} at the "
        f"start (from {min(LOADS):.2f} to {max(LOADS):.2f} at the starts of the rounds). "
        f"Code: {code}. {versions}. Servers on loopback: {servers_text}."
    )
    text = render(results, args, header)
    args.out.write_text(text)
    print(text)


def _load() -> float:
    with contextlib.suppress(OSError):
        return os.getloadavg()[0]
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="saves per client")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--code", help="serve sessionkit as committed at this git revision")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("same_session.md"))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
