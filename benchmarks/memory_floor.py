"""The in-process floor of a session read on memory: a dictionary in the handler.

Issue 19 holds a read to at most half the fastest peer's time, in-process (``run.py``). On
memory, how low can a read go at all? Here the handler does the least a server-side session
read must: take the token from the ``Cookie`` header by hand (cheaper than the frameworks'
cookie parsers), find its record in a dict, check the record's expiry, decode its JSON. Beside
it, in interleaved rounds, the bare framework, sessionkit and the framework's peer, each
reading one value of an existing session (``run.py``'s ``/read``).

    .venv/bin/python benchmarks/memory_floor.py [--rounds 5] [--requests 4000]

Writes ``benchmarks/memory_floor.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import contenders as c  # noqa: E402
from benchmarks._drive import (  # noqa: E402
    asgi_caller,
    median_us,
    time_async,
    time_sync,
    wsgi_caller,
)

TOKEN = "t" * 43
RECORDS = {TOKEN: (time.monotonic() + 86400, json.dumps({"v": "hello", "n": 0}).encode())}


def _value(header: str) -> str:
    """The floor's read: the token from a ``Cookie`` header, its live record's ``v``."""
    token = header.partition("sid=")[2].partition(";")[0]
    entry = RECORDS.get(token)
    record = json.loads(entry[1]) if entry is not None and entry[0] > time.monotonic() else {}
    return str(record.get("v", ""))


def starlette_floor() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def read(request: Request) -> PlainTextResponse:
        header = next((v for k, v in request.scope["headers"] if k == b"cookie"), b"")
        return PlainTextResponse(_value(header.decode("latin-1")))

    return Starlette(routes=[Route("/read", read)])


def flask_floor() -> Any:
    import flask

    app = flask.Flask("memory_floor")

    @app.route("/read")
    def read() -> str:
        return _value(flask.request.environ.get("HTTP_COOKIE", ""))

    return app.wsgi_app


def _cookie_of(contender: c.Contender) -> str | None:
    """A live session's cookie for ``contender`` (made by its ``/new``), or none."""
    if not contender.cookie:
        return None
    if contender.kind == "asgi":
        reply = asyncio.run(asgi_caller(contender.app)("/new", None))
    else:
        reply = wsgi_caller(contender.app)("/new", None)
    return f"{contender.cookie}={reply.cookie(contender.cookie)}"


def _timer(kind: str, app: Any, cookie: str | None, n: int) -> Callable[[], float]:
    """The median µs of ``n`` timed ``/read`` requests (after a warm-up), as a callable: the
    same timing as ``run.py``'s (``time_sync``/``time_async``, one loop per contender)."""
    if kind == "asgi":
        call = asgi_caller(app)
        loop = asyncio.new_event_loop()
        return lambda: median_us(time_async(loop, lambda: call("/read", cookie), n, n // 8))
    wcall = wsgi_caller(app)
    return lambda: median_us(time_sync(lambda: wcall("/read", cookie), n, n // 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("memory_floor.md"))
    args = parser.parse_args()
    groups: dict[str, list[tuple[str, Callable[[], float]]]] = {}
    for framework, kind, floor, make in (
        (
            "Starlette",
            "asgi",
            starlette_floor,
            (c.starlette_bare, lambda: c.sessionkit_starlette("memory://", "memory"),
             lambda: c.starsessions_starlette("memory")),
        ),
        (
            "Flask",
            "wsgi",
            flask_floor,
            (c.flask_bare, lambda: c.sessionkit_flask("memory://", "memory"),
             lambda: c.flask_session("memory")),
        ),
    ):  # fmt: skip
        rows = [("floor (a dict)", _timer(kind, floor(), f"sid={TOKEN}", args.requests))]
        for contender in (build() for build in make):  # bare, sessionkit, then the peer
            cookie = _cookie_of(contender)
            rows.append((contender.name, _timer(kind, contender.app, cookie, args.requests)))
        groups[framework] = rows
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):  # each round starts one contender further along
        for framework, rows in groups.items():
            for name, timer in rows[round_ % len(rows) :] + rows[: round_ % len(rows)]:
                times.setdefault((framework, name), []).append(timer())
    lines = [
        "# A session read on memory, in-process: the floor beside the contenders",
        "",
        f"`benchmarks/memory_floor.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"Python {platform.python_version()}; µs per `/read`: the median of each round's "
        f"median request, {args.rounds} interleaved rounds of {args.requests} requests; "
        "÷ peer: over the peer's time.",
        "",
        "| framework | contender | µs per read | ÷ peer |",
        "|---|---|---:|---:|",
    ]
    for framework, rows in groups.items():
        medians = {name: statistics.median(times[framework, name]) for name, _ in rows}
        peer = medians[rows[-1][0]]
        for name, _ in rows:
            lines.append(
                f"| {framework} | {name} | {medians[name]:.1f} | {medians[name] / peer:.2f} |"
            )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
