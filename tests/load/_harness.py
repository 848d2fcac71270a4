"""The load-and-fault harness: real app servers as subprocesses, and a load generator whose
virtual clients keep per-client state and check every answer they get.

* :class:`AppServer` runs uvicorn (``app_asgi``) or gunicorn (``app_wsgi``) in its own process
  group on a free port of 127.0.0.1, logs to a file, measures the CPU time of every process of
  the group from ``/proc``, and is torn down with the whole group.
* :class:`VirtualClient` is one browser: it logs in (``regenerate``), then reads and writes a
  per-session counter, sometimes logs in again or out. It keeps its cookie, its user and the
  last counter value the server acknowledged with a 200, and checks each answer against them:
  a lower counter is an acknowledged write lost, another user (or none) a client logged out.
* :func:`run_load` drives the clients for a while (a fault, if any, runs alongside: see
  ``test_faults.py``), probes ``/health`` without a cookie all along, then checks after
  recovery that every client's session still holds every acknowledged write and its login.
  :class:`Outcome` holds what was seen and :meth:`Outcome.violations` lists every broken rule
  of issue 14; a test fails with that list.

Every loop is bounded in count and time; every request has a 30 s cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests._servers import HOST, free_port
from tests.load._http import Connection, HTTPError, Response

__all__ = [
    "ROOT",
    "AppServer",
    "Fault",
    "Outcome",
    "Plan",
    "VirtualClient",
    "assert_held",
    "run_load",
    "uvicorn_server",
    "gunicorn_server",
]

ROOT = Path(__file__).resolve().parents[2]
#: No request may take longer than this, whatever the scenario: past it, it is a hang.
REQUEST_CAP = 30.0
#: How long the verification after a fault waits for the storage to answer again.
RECOVERY_WAIT = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- app servers ---------------------------------------------------------------------------------


class AppServer:
    """One app server (a master and its workers) in its own process group."""

    def __init__(
        self, name: str, argv: Callable[[int], list[str]], env: dict[str, str], log: Path,
        processes: int,
    ) -> None:  # fmt: skip
        self.name = name
        self._argv = argv
        self._env = env
        self.log = log
        self.processes = processes  # how many processes the group has once every worker is up
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> AppServer:
        self.port = free_port()
        # SESSIONKIT_LOAD_PYTHONPATH puts another checkout's sessionkit and plugins first (say,
        # ``git archive HEAD`` unpacked elsewhere), to show what the suite finds in that code.
        # The working directory is the log's, so ``python -m`` adds no checkout of its own.
        paths = [*filter(None, os.environ.get("SESSIONKIT_LOAD_PYTHONPATH", "").split(":"))]
        env = {**os.environ, **self._env, "PYTHONPATH": ":".join([*paths, str(ROOT)])}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self._argv(self.port), cwd=self.log.parent, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if len(self.pids()) >= self.processes and _healthy(self.port):
                time.sleep(0.3)  # the last worker may still be importing the app
                if _healthy(self.port):
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up in {timeout:.0f}s:\n{self.tail()}")

    def pids(self) -> list[int]:
        """Every live process of the server's group (the master and its workers)."""
        if self.proc is None:
            return []
        group = self.proc.pid
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = _stat(int(entry))
            if stat is not None and int(stat[4]) == group:  # field 5: pgrp
                found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the group's live processes."""
        total = 0
        for pid in self.pids():
            stat = _stat(pid)
            if stat is not None:
                total += int(stat[13]) + int(stat[14])  # fields 14, 15: utime, stime
        return total / CLK_TCK

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after 5 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return [text[: text.index(" ")], "comm", *text[text.rindex(")") + 2 :].split()]


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def uvicorn_server(
    log: Path, env: dict[str, str], workers: int = 1, app: str = "tests.load.app_asgi:app"
) -> AppServer:
    """uvicorn serving ``app`` (the suite's own by default) with its default settings."""

    def argv(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", app, "--host", HOST,
            "--port", str(port), "--workers", str(workers), "--no-access-log",
            "--log-level", "warning", "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip

    processes = 1 if workers == 1 else workers + 1
    return AppServer(f"uvicorn-{workers}w", argv, env, log, processes)


def gunicorn_server(
    log: Path, env: dict[str, str], workers: int = 1, worker_class: str = "gthread",
    threads: int = 32, app: str = "tests.load.app_wsgi:app",
) -> AppServer:  # fmt: skip
    """gunicorn serving ``app`` (the suite's own by default)."""

    def argv(port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", app, "--bind",
            f"{HOST}:{port}", "--workers", str(workers), "--worker-class", worker_class,
            "--threads", str(threads), "--log-level", "warning", "--graceful-timeout", "2",
            "--timeout", "60", "--keep-alive", "5",
        ]  # fmt: skip

    name = f"gunicorn-{worker_class}-{workers}w"
    return AppServer(name, argv, env, log, workers + 1)


async def _capped(request: Awaitable[Response]) -> Response:
    """``await request`` for at most REQUEST_CAP seconds (``asyncio.timeout`` where there is
    one: ``wait_for`` makes a task per call, a third of the generator's CPU time)."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(request, REQUEST_CAP)
    async with timeout(REQUEST_CAP):
        return await request


# -- the virtual clients -------------------------------------------------------------------------


@dataclass
class Plan:
    """What the clients do. Shares are of all operations after the first login."""

    clients: int
    seconds: float
    write_share: float = 0.2
    #: Share of operations that log in again (``regenerate``) or out and back in (``destroy``).
    lifecycle_share: float = 0.0
    #: The storage timeout the scenario runs with: no response may wait on the storage longer
    #: than this + 1 s (``Outcome.waited``).
    timeout: float = 5.0
    cookie: str = "session_id"
    #: Check answers against the client's state (off for the bare app, which keeps none).
    check: bool = True
    #: Seconds after a fault ends before every request must succeed again.
    grace: float | None = None
    #: Requests per second for all clients together, each client keeping its share of the
    #: pace (``None``: each sends its next request as soon as it has its answer). At a pace
    #: every contender keeps up with, each serves the same requests at the same times; each
    #: request then finds the server idle, which costs a wake-up of its own
    #: (``benchmarks/load/compare.py --rate``; docs/performance.md, *A known cost through
    #: the same meter*).
    rate: float | None = None

    @property
    def limit(self) -> float:
        return self.timeout + 1.0


#: A fault: ``async fault(outcome)`` runs alongside the load; it calls ``outcome.fault_began()``
#: and ``outcome.fault_ended()`` around the time the storage is impaired.
Fault = Callable[["Outcome"], Awaitable[None]]


@dataclass
class Outcome:
    """Everything one run saw, and the rules it is held to."""

    plan: Plan
    started: float = 0.0
    ended: float = 0.0
    #: (start time, seconds, status, route) of every response; status 0: no response at all.
    samples: list[tuple[float, float, int, str]] = field(default_factory=list)
    health: list[tuple[float, float, int]] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    fault_window: tuple[float, float] | None = None
    verified: int = 0
    unverified: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def problem(self, kind: str, detail: str) -> None:
        self.problems[kind].append(detail)

    def fault_began(self) -> None:
        self.fault_window = (time.monotonic(), math.inf)

    def fault_ended(self) -> None:
        assert self.fault_window is not None
        self.fault_window = (self.fault_window[0], time.monotonic())

    # -- figures

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(status for _, _, status, _ in self.samples)

    def latency(self, quantile: float) -> float:
        values = sorted(seconds for _, seconds, _, _ in self.samples)
        if not values:
            return math.nan
        return values[min(len(values) - 1, int(quantile * len(values)))]

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else math.nan

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        text = (
            f"{self.requests} requests in {self.duration:.1f}s ({self.rps:.0f}/s; {statuses}); "
            f"p50 {self.latency(0.5) * 1000:.1f} ms, p99 {self.latency(0.99) * 1000:.1f} ms, "
            f"max {self.latency(1.0) * 1000:.0f} ms; server CPU "
            f"{self.server_cpu / max(self.requests, 1) * 1e6:.0f} µs/request; "
            f"verified {self.verified} clients"
        )
        if self.fault_window is not None:
            began, ended = self.fault_window
            text += f"; fault {began - self.started:.1f}s..{ended - self.started:.1f}s"
        return text

    # -- the rules

    def waited(self, sample: tuple[float, float, int, str]) -> float:
        """How long a response took, counted from the fault's start if it was in flight then.

        The promise is that no request waits on an impaired storage longer than the timeout.
        A request sent before the fault may have spent its first second queued behind the
        load's other requests on a busy machine (the CI runs eight load tests on two cores,
        p50 near 300 ms), and only then met the frozen storage: that second was not spent
        waiting on the fault. The CI run of 88fc194 failed on exactly that: a request sent
        1.0 s before a SIGSTOP, answered 503 after 6.03 s, 5.0 s after the freeze.
        """
        began, seconds = sample[0], sample[1]
        if self.fault_window is not None:
            fault = self.fault_window[0]
            if began < fault < began + seconds:
                return began + seconds - fault
        return seconds

    def violations(self, *, errors_allowed: bool) -> list[str]:
        """Every rule the run broke, as lines of a failure message (empty: all held).

        ``errors_allowed``: whether 503s are acceptable (during a fault); they never are after
        the fault's grace period, nor in a run without a fault.
        """
        plan = self.plan
        found: list[str] = []
        for kind, details in sorted(self.problems.items()):
            examples = "; ".join(details[:3])
            found.append(f"{len(details)} x {kind} (e.g. {examples})")
        waits = [(self.waited(s), s) for s in self.samples]
        slow = [(waited, s) for waited, s in waits if waited > plan.limit]
        if slow:
            waited, worst = max(slow, key=lambda pair: pair[0])
            found.append(
                f"{len(slow)} responses slower than the {plan.timeout:g}s timeout + 1 s "
                f"(worst {waited:.1f}s of {worst[1]:.1f}s, {worst[3]} → {worst[2]} at "
                f"t={worst[0] - self.started:.1f}s)"
            )
        failed = [s for s in self.samples if s[2] != 200]
        if not errors_allowed and failed:
            kinds = Counter(
                f"{route} → {status or 'no response'}" for _, _, status, route in failed
            )
            found.append(f"{len(failed)} errors without any fault: {dict(kinds.most_common(5))}")
        if errors_allowed and self.fault_window is not None:
            settled = self.fault_window[1] + (plan.limit if plan.grace is None else plan.grace)
            late = [s for s in failed if s[0] > settled]
            if late:
                kinds = Counter(
                    f"{route} → {status or 'no response'}" for _, _, status, route in late
                )
                first = min(late)
                found.append(
                    f"{len(late)} errors after the fault ended (+{settled - self.fault_window[1]:.0f}s "
                    f"grace): {dict(kinds.most_common(5))}; the first started "
                    f"{first[0] - self.fault_window[1]:.1f}s after the fault and took {first[1]:.1f}s"
                )
        bad_health = [h for h in self.health if h[2] != 200 or h[1] > plan.limit]
        if bad_health:
            worst = max(bad_health, key=lambda h: h[1])
            found.append(
                f"{len(bad_health)} /health probes (no cookie, no session) failed or were slow "
                f"(worst {worst[1]:.1f}s, status {worst[2]})"
            )
        if self.unverified:
            found.append(f"{self.unverified} clients could not be checked after recovery")
        return found


class VirtualClient:
    """One browser: its connection, its cookie, its user and its acknowledged counter."""

    def __init__(self, index: int, port: int, plan: Plan, outcome: Outcome, tag: str) -> None:
        self.index = index
        self.plan = plan
        self.outcome = outcome
        self.user = f"u{index}-{tag}"
        self.sid: str | None = None
        self.logged_in = False
        #: The last counter value the server acknowledged, and how many writes since were not
        #: (a timed-out write may still land, so the stored value may be above ``acked``).
        self.acked = 0
        self.unacked = 0
        self.conn = Connection(port)
        self.rng = random.Random(index)
        #: The client's last exchanges, quoted when one of its checks fails.
        self.trace: deque[str] = deque(maxlen=6)

    # -- transport

    async def call(self, route: str, path: str, *, record: bool = True) -> Response | None:
        outcome = self.outcome
        cookie = None if self.sid is None else f"{self.plan.cookie}={self.sid}"
        began = time.monotonic()
        try:
            response = await _capped(self.conn.get(path, cookie))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HTTPError,
                TimeoutError) as exc:  # fmt: skip
            self.conn.close()
            elapsed = time.monotonic() - began
            if record:
                outcome.samples.append((began, elapsed, 0, route))
            outcome.problem("requests without a response", f"{route}: {type(exc).__name__} {exc}")
            return None
        elapsed = time.monotonic() - began
        if record:
            outcome.samples.append((began, elapsed, response.status, route))
        status = response.status
        sent = "-" if self.sid is None else self.sid[:6]
        got = ",".join((c.split(";")[0].partition("=")[2][:6] or "''")
                       + (" (expired)" if "max-age=0" in c.lower() else "")
                       for c in response.set_cookies) or "none"  # fmt: skip
        self.trace.append(f"{route}[{sent}]→{status} {response.body[:24]!r} cookie {got}")
        if status >= 500 and response.set_cookies:
            outcome.problem(f"Set-Cookie on a {status}", f"{route}: {response.set_cookies[0][:60]}")
        if status not in (200, 503):
            outcome.problem(f"{status} answers (only 503 may signal an outage)",
                            f"{route}: {response.body[:80]!r}")  # fmt: skip
        return response

    def _cookie(self, response: Response) -> tuple[bool, str | None]:
        """(whether the response set our cookie, its value or None when it expires it)."""
        name = self.plan.cookie
        for line in response.set_cookies:
            pair, _, attrs = line.partition(";")
            key, _, value = pair.partition("=")
            if key.strip() != name:
                continue
            attrs = attrs.lower().replace(" ", "")
            if not value or "max-age=0" in attrs or "expires=thu,01jan1970" in attrs:
                return True, None
            return True, value.strip()
        return False, None

    def _parse(self, route: str, response: Response) -> tuple[str, int] | None:
        user, _, n = response.body.decode("latin-1").partition(" ")
        try:
            return user, int(n)
        except ValueError:
            self.outcome.problem("unreadable bodies", f"{route}: {response.body[:80]!r}")
            return None

    def _check_counter(self, route: str, n: int, *, wrote: bool) -> None:
        """``n`` against what this client knows, then make it the new floor.

        A failed write may still land later (its call timed out while the server was frozen,
        and the server runs it when it thaws), even after a read that did not see it: so a
        read keeps the failed writes it did not see pending. An acknowledged write ends them:
        each compares against bytes that write replaced.
        """
        low = self.acked + 1 if wrote else self.acked
        high = self.acked + self.unacked + (1 if wrote else 0)
        if n < low:
            self.outcome.problem(
                "acknowledged writes lost",
                f"{self.user} {route}: counter {n}, {self.acked} acknowledged; "
                f"last: {' | '.join(self.trace)}",
            )
        elif n > high:
            self.outcome.problem(
                "counter values never written",
                f"{self.user} {route}: counter {n}, at most {high} written",
            )
        self.acked, self.unacked = n, 0 if wrote else max(0, high - n)

    def _check_user(self, route: str, user: str) -> bool:
        if user == self.user:
            return True
        what = "clients logged out" if user == "-" else "clients given another user's session"
        self.outcome.problem(
            what, f"{self.user} {route}: session says {user!r}; last: {' | '.join(self.trace)}"
        )
        # Start over, so the run goes on measuring: log in afresh, counter from zero.
        self.sid, self.logged_in, self.acked, self.unacked = None, False, 0, 0
        return False

    # -- operations

    async def login(self) -> bool:
        response = await self.call("login", f"/login?user={self.user}")
        if response is None or response.status != 200:
            return False
        parsed = self._parse("login", response)
        if parsed is None:
            return False
        set_, value = self._cookie(response)
        if self.plan.check:
            if not set_ or value is None or value == self.sid:
                self.outcome.problem(
                    "logins without a new id", f"{self.user}: {response.set_cookies}"
                )
            if parsed[0] != self.user:
                self.outcome.problem("logins not taking", f"{self.user}: {parsed[0]!r}")
            self._check_counter("login", parsed[1], wrote=False)
        if value is not None:
            self.sid = value
        self.logged_in = True
        return True

    async def logout(self) -> None:
        response = await self.call("logout", "/logout")
        if response is None or response.status != 200:
            return
        set_, value = self._cookie(response)
        if self.plan.check and (not set_ or value is not None):
            self.outcome.problem(
                "logouts not expiring the cookie", f"{self.user}: {response.set_cookies}"
            )
        self.sid, self.logged_in, self.acked, self.unacked = None, False, 0, 0

    async def reset(self) -> None:
        """``reset()``: a new id and no data; nothing is left to save, so the cookie goes."""
        response = await self.call("reset", "/reset")
        if response is None or response.status != 200:
            return
        set_, value = self._cookie(response)
        if self.plan.check and not set_:
            self.outcome.problem("resets answered without a Set-Cookie", self.user)
        elif self.plan.check and value == self.sid:
            self.outcome.problem(
                "resets keeping the old id", f"{self.user}: {response.set_cookies}"
            )
        self.sid, self.logged_in, self.acked, self.unacked = value, False, 0, 0

    async def read(self) -> None:
        response = await self.call("read", "/read")
        if response is None or response.status != 200 or not self.plan.check:
            return
        self._same_id("read", response)
        parsed = self._parse("read", response)
        if parsed is not None and self._check_user("read", parsed[0]):
            self._check_counter("read", parsed[1], wrote=False)

    async def write(self) -> None:
        response = await self.call("write", "/write")
        if response is None or response.status != 200:
            self.unacked += 1
            return
        if not self.plan.check:
            return
        self._same_id("write", response)
        parsed = self._parse("write", response)
        if parsed is not None and self._check_user("write", parsed[0]):
            self._check_counter("write", parsed[1], wrote=True)

    def _same_id(self, route: str, response: Response) -> None:
        set_, value = self._cookie(response)
        if set_ and value != self.sid:
            self.outcome.problem(f"session ids changed by a {route}", f"{self.user}: {value}")
            self.sid = value

    async def step(self) -> None:
        if not self.logged_in:
            await self.login()
            return
        plan, rng = self.plan, self.rng
        pick = rng.random()
        if pick < plan.lifecycle_share / 3:
            await self.login()  # regenerate while logged in: new id, data kept
        elif pick < plan.lifecycle_share:
            if pick < plan.lifecycle_share * 2 / 3:
                await self.logout()  # destroy
            else:
                await self.reset()
            if not self.logged_in:
                await self.login()
        elif rng.random() < plan.write_share:
            await self.write()
        else:
            await self.read()

    async def verify(self, deadline: float) -> bool:
        """After the run: the session still holds every acknowledged write, still logged in."""
        self.conn.close()
        while time.monotonic() < deadline:
            response = await self.call("verify", "/read", record=False)
            if response is not None and response.status == 200:
                break
            await asyncio.sleep(0.25)
        else:
            return False
        if self.plan.check and self.logged_in:
            parsed = self._parse("verify", response)
            if parsed is not None:
                user, n = parsed
                if user != self.user:
                    self.outcome.problem(
                        "clients logged out after recovery", f"{self.user}: session says {user!r}"
                    )
                elif n < self.acked:
                    self.outcome.problem(
                        "acknowledged writes lost after recovery",
                        f"{self.user}: counter {n}, {self.acked} acknowledged",
                    )
        self.conn.close()
        return True


# -- the run -------------------------------------------------------------------------------------


async def _probe_health(port: int, outcome: Outcome, until: float) -> None:
    conn = Connection(port)
    while time.monotonic() < until:
        began = time.monotonic()
        try:
            response = await _capped(conn.get("/health"))
            status = response.status
        except (OSError, asyncio.IncompleteReadError, HTTPError, TimeoutError):
            conn.close()
            status = 0
        outcome.health.append((began, time.monotonic() - began, status))
        await asyncio.sleep(0.1)
    conn.close()


async def run_load(
    servers: AppServer | Sequence[AppServer], plan: Plan, fault: Fault | None = None,
    tag: str = "",
) -> Outcome:  # fmt: skip
    """Log every client in, drive them for ``plan.seconds`` (the fault alongside), verify."""
    group = [servers] if isinstance(servers, AppServer) else list(servers)
    port = group[0].port
    outcome = Outcome(plan)
    tag = tag or os.urandom(3).hex()
    clients = [VirtualClient(i, port, plan, outcome, tag) for i in range(plan.clients)]

    # Everyone logs in first, a bounded number of tries each; this is not measured.
    for _ in range(5):
        pending = [c for c in clients if not c.logged_in]
        if not pending:
            break
        await asyncio.gather(*(c.login() for c in pending))
    outcome.samples.clear()
    outcome.problems.clear()
    missing = sum(not c.logged_in for c in clients)
    if missing:
        outcome.problem(
            "clients that could not log in before the run", f"{missing} of {plan.clients}"
        )

    cpu_before = sum(s.cpu_seconds() for s in group)
    own_before = time.process_time()
    outcome.started = time.monotonic()
    until = outcome.started + plan.seconds

    async def drive(client: VirtualClient) -> None:
        interval = plan.clients / plan.rate if plan.rate else 0.0
        due = outcome.started + interval * client.index / plan.clients  # staggered starts
        for _ in range(1_000_000):
            now = time.monotonic()
            if now >= until:
                break
            if interval:
                if due > now:
                    await asyncio.sleep(due - now)
                due = max(due, now) + interval  # behind: no burst to catch up
            await client.step()
            if not client.logged_in and time.monotonic() < until:
                await asyncio.sleep(0.05)  # a refused login during a fault: don't spin

    tasks = [asyncio.create_task(drive(c)) for c in clients]
    tasks.append(asyncio.create_task(_probe_health(port, outcome, until)))
    fault_task = asyncio.create_task(fault(outcome)) if fault is not None else None
    try:
        await asyncio.gather(*tasks)
        outcome.ended = time.monotonic()
        outcome.server_cpu = sum(s.cpu_seconds() for s in group) - cpu_before
        outcome.client_cpu = time.process_time() - own_before
        if fault_task is not None:
            await asyncio.wait_for(fault_task, REQUEST_CAP)
    finally:
        for task in [*tasks, *([fault_task] if fault_task else [])]:
            task.cancel()
    deadline = time.monotonic() + RECOVERY_WAIT
    limit = asyncio.Semaphore(100)

    async def verify(client: VirtualClient) -> bool:
        async with limit:
            return await client.verify(deadline)

    results = await asyncio.gather(*(verify(c) for c in clients))
    outcome.verified = sum(results)
    outcome.unverified = len(results) - outcome.verified
    return outcome


def assert_held(outcome: Outcome, *, errors_allowed: bool, extra: Sequence[str] = ()) -> None:
    """Fail the test with every rule ``outcome`` broke (see :meth:`Outcome.violations`)."""
    import pytest

    found = [*outcome.violations(errors_allowed=errors_allowed), *extra]
    if found:
        pytest.fail("\n".join([outcome.summary(), *(f"- {line}" for line in found)]), pytrace=False)
