"""Issue 18: a Redis Sentinel failover in the middle of the load, through real app servers.

The app opens ``redis+sentinel://...?wait_replicas=1`` (every write waits for a replica), on a
private set of a primary, two replicas and three Sentinels (``down-after-milliseconds`` 500).
The clients log in, then read and write; the primary is killed (``SIGKILL``) mid-traffic and
the Sentinels promote a replica. The full run adds a harder crash: the primary's replicas are
cut off first (``CLIENT KILL TYPE replica`` and a password they do not know), it goes on
taking writes for 0.3 s, then it is killed; without ``wait_replicas`` the harness finds the
writes it acknowledged meanwhile lost (every client, in a run made to check the check). Waiting
for one replica of two narrows that but does not close it: Sentinel may promote the replica
without the last writes, judging by the offsets it last read, and a full run lost two such
writes once. So this case waits for both replicas (``wait_replicas=2``), and after the
failover starts the old primary again as a replica of the new one, as an operator would:
until then writes answer 503, and the window below runs until it follows. Beside the
harness's own rules (every error a 503 without
``Set-Cookie``, no acknowledged write lost, nobody logged out, every request succeeding again
once the failover is over), the 503s must all fall within the window ``docs/backends/redis.md``
documents: from the crash, at most ``down-after-milliseconds`` + the failover itself (at most a
``failover-timeout``) + the storage's timeouts (``socket_timeout`` + ``socket_connect_timeout``
+ ``pool_timeout``), with a second of slack. The figures go to the load table: the 503s, their
window, and the failover's duration (until every Sentinel names the new primary, which the
leader of the failover does last, once the other replica follows it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis

from tests._servers import (
    HOST,
    SENTINEL_DOWN_AFTER_MS,
    SENTINEL_FAILOVER_TIMEOUT_MS,
    SentinelSet,
)
from tests.load._harness import AppServer, Fault, Outcome, Plan, assert_held, run_load
from tests.load.conftest import FULL

pytestmark = pytest.mark.redis

#: The storage's timeouts in this scenario, in seconds.
SOCKET_TIMEOUT, CONNECT_TIMEOUT, POOL_TIMEOUT = 1.0, 0.5, 0.5
OPTIONS = (
    f"prefix=load:&wait_timeout=0.2&socket_timeout={SOCKET_TIMEOUT:g}"
    f"&socket_connect_timeout={CONNECT_TIMEOUT:g}&pool_timeout={POOL_TIMEOUT:g}"
)
#: Replicas each write waits for: one of the two for a crash; both when the primary was cut off
#: first, the case where Sentinel may promote the replica without the last writes, judging by
#: the offsets it last read (docs/backends/redis.md, "Failover: what is promised"; the full run
#: saw it with one).
WAIT_REPLICAS = {False: 1, True: 2}
#: The documented bound of the window of 503s, from the crash, plus a second of slack.
WINDOW = (
    SENTINEL_DOWN_AFTER_MS / 1000
    + SENTINEL_FAILOVER_TIMEOUT_MS / 1000
    + SOCKET_TIMEOUT
    + CONNECT_TIMEOUT
    + POOL_TIMEOUT
    + 1.0
)
BEFORE = 1.5
AFTER = 3.0
CLIENTS = 30

#: (server, workers, shape)
STACKS = {
    "uvicorn-1w-inner": ("uvicorn", 1, "inner"),
    "uvicorn-2w-inner": ("uvicorn", 2, "inner"),
    "gunicorn-2w-flask": ("gunicorn", 2, "flask"),
}


#: Seconds the primary takes writes with its replicas cut off, before it is killed.
CUT = 0.3


def _cases() -> list[object]:
    if not FULL:
        return [pytest.param(STACKS["uvicorn-1w-inner"], False, id="uvicorn-1w-inner-crash")]
    return [
        pytest.param(stack, cut, id=f"{name}-{'cut-then-crash' if cut else 'crash'}")
        for name, stack in STACKS.items()
        for cut in (False, True)
    ]


def crashed_primary(group: SentinelSet, figures: dict[str, float], cut: bool) -> Fault:
    """SIGKILL the primary (``cut``: once it has taken writes for ``CUT`` seconds with its
    replicas cut off), then wait until every Sentinel names the promoted replica (``cut``: and
    until the old primary, started again, follows it: the app waits for every replica)."""

    async def fault(outcome: Outcome) -> None:
        await asyncio.sleep(BEFORE)
        old = group.primary()
        if cut:
            with redis.Redis(host=HOST, port=old.port) as primary:
                primary.config_set("requirepass", "the-replicas-do-not-know-it")
                primary.execute_command("CLIENT", "KILL", "TYPE", "replica")
            outcome.fault_began()
            await asyncio.sleep(CUT)
        await asyncio.to_thread(old.kill)
        if not cut:
            outcome.fault_began()
        try:
            await asyncio.to_thread(group.wait_for_failover, old.port)
            figures["failover ms"] = round((time.monotonic() - began_at(outcome)) * 1000)
            if cut:
                await asyncio.to_thread(group.rejoin, old)
        finally:
            outcome.fault_ended()
            assert outcome.fault_window is not None
            began, ended = outcome.fault_window
            figures["fault ms"] = round((ended - began) * 1000)

    return fault


def began_at(outcome: Outcome) -> float:
    """When the fault began (``time.monotonic()``, as the outcome keeps it)."""
    assert outcome.fault_window is not None
    return outcome.fault_window[0]


def window_of_503s(outcome: Outcome) -> tuple[int, float]:
    """How many 503s, and the seconds from the fault to the end of the last one."""
    assert outcome.fault_window is not None
    crash = outcome.fault_window[0]
    failed = [(start, took) for start, took, status, _ in outcome.samples if status == 503]
    last = max((start + took for start, took in failed), default=crash)
    return len(failed), last - crash


@pytest.mark.parametrize(("stack", "cut"), _cases())
async def test_sentinel_failover_under_load(
    launch: Callable[..., AppServer],
    redis_sentinel_set: SentinelSet,
    record: Callable[..., None],
    stack: tuple[str, int, str],
    cut: bool,
) -> None:
    kind, workers, shape = stack
    url = f"{redis_sentinel_set.url}?{OPTIONS}&wait_replicas={WAIT_REPLICAS[cut]}"
    if kind == "gunicorn":
        app = launch(kind, url, workers, shape=shape, threads=48)
    else:
        app = launch(kind, url, workers, shape=shape)
    plan = Plan(
        clients=CLIENTS,
        seconds=BEFORE + WINDOW + AFTER,
        timeout=SOCKET_TIMEOUT + CONNECT_TIMEOUT + POOL_TIMEOUT,
        grace=1.0,
    )
    figures: dict[str, float] = {}
    outcome = await run_load(app, plan, crashed_primary(redis_sentinel_set, figures, cut))
    count, window = window_of_503s(outcome)
    limit = WINDOW
    if cut:  # writes wait for both replicas: 503s until the old primary follows the new one
        limit = figures["fault ms"] / 1000 + SOCKET_TIMEOUT + CONNECT_TIMEOUT + POOL_TIMEOUT + 1.0
    record(
        outcome,
        layer="sessionkit",
        server=app.name,
        backend="redis+sentinel (replicas cut, primary SIGKILL)"
        if cut
        else "redis+sentinel (primary SIGKILL)",
        **figures,
        **{"503s": count, "503 window ms": round(window * 1000)},
    )
    extra = []
    if window > limit:
        extra.append(
            f"503s until {window:.1f}s after the fault: past the documented window ({limit:.1f}s)"
        )
    assert_held(outcome, errors_allowed=True, extra=extra)
