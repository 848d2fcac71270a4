"""``sessionkit demo`` as a user runs it: the real command in a subprocess, over HTTP.

Starting says what it does (the storage, the server, then the URL once it answers); each
request is one line on stderr; a visitor without a session reads "no session yet", not an id
tag that changes on every reload.
"""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from sessionkit._ops.cli import main

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

LOG_LINE = re.compile(r"\A(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) \d+\.\d ms\Z")


class Demo:
    """A running ``python -m sessionkit demo``, its stderr read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str], url: str, err: queue.Queue[str]) -> None:
        self.proc = proc
        self.url = url
        self.err = err
        self.seen: list[str] = []

    def next_line(self, wanted: re.Pattern[str], timeout: float = 10) -> str:
        """The next stderr line matching ``wanted`` (the lines passed over are kept in
        ``seen``); ``queue.Empty`` if none comes within ``timeout`` seconds."""
        while True:
            line = self.err.get(timeout=timeout)
            self.seen.append(line)
            if wanted.match(line):
                return line

    def next_log_line(self) -> str:
        return self.next_line(LOG_LINE)

    def client(self) -> httpx.Client:
        """A client, once the server accepts connections (at once here; waiting keeps these
        tests about the log and the page, whatever the start-up does). The probe is a bare TCP
        connection: no request, so no log line."""
        address = httpx.URL(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((address.host, address.port or 80), timeout=10).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return httpx.Client(base_url=self.url, timeout=10)


def _pump(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionkit", "demo", "--port", "0", "--storage", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    err: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True)
    pump.start()
    try:
        line = proc.stdout.readline()  # printed once the server accepts connections
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line + "".join(err.queue)
        yield Demo(proc, match.group(0), err)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        pump.join(timeout=10)  # it reads stderr to its end, which came with the exit
        proc.stdout.close()
        proc.stderr.close()


def test_starting_says_which_storage_then_the_server_then_the_url(demo: Demo) -> None:
    port = demo.url.rsplit(":", 1)[1].rstrip("/")
    demo.next_line(re.compile("sessionkit demo: requests are logged below"))
    assert demo.seen[:2] == [
        "sessionkit demo: opening storage memory:// ...",
        f"sessionkit demo: starting the web server on http://127.0.0.1:{port}/ ...",
    ]
    # The URL line came after both, and it answers at once: it was printed once serving.
    assert httpx.get(demo.url, timeout=10).status_code == 200


def test_each_request_is_one_log_line(demo: Demo) -> None:
    with demo.client() as http:
        assert http.get("/").status_code == 200
        assert re.fullmatch(r"GET / 200 \d+\.\d ms", demo.next_log_line())
        assert http.post("/count").status_code == 303
        assert re.fullmatch(r"POST /count 303 \d+\.\d ms", demo.next_log_line())
        assert http.get("/nowhere").status_code == 404
        assert demo.next_log_line().startswith("GET /nowhere 404 ")
        assert http.get("/logout").status_code == 405
        assert demo.next_log_line().startswith("GET /logout 405 ")
        # Never the query (it may carry a session id), and no forged second line.
        http.get("/session?session_id=s3cret")
        assert demo.next_log_line().startswith("GET /session 200 ")
        http.get("/a%0Ab%20c")
        assert demo.next_log_line().startswith("GET /a%0Ab%20c 404 ")
    assert not any("s3cret" in line for line in [*demo.seen, *demo.err.queue])


def _tag(page: str) -> str | None:
    match = re.search(r'id="tag">([0-9a-f]+)<', page)
    return None if match is None else match.group(1)


def test_a_visitor_without_a_session_reads_no_session_yet(demo: Demo) -> None:
    for _ in range(2):  # a new visitor each time: nothing changes between reloads
        with demo.client() as http:
            page = http.get("/").text
            assert "no session yet" in page and _tag(page) is None
            assert "no session yet" in http.get("/session").text
    with demo.client() as http:
        http.post("/count")
        first, second = http.get("/").text, http.get("/").text
        assert "no session yet" not in first
        assert _tag(first) is not None and _tag(first) == _tag(second)  # stable over reloads
        http.post("/logout")
        assert "no session yet" in http.get("/").text


def test_the_url_is_printed_only_once_the_server_started(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[str] = []

    def serve(app: Any, sock: socket.socket, **options: Any) -> None:
        events.append("out so far: " + capsys.readouterr().out)
        options["on_started"]()
        sock.close()

    monkeypatch.setattr("sessionkit.demo._server.serve", serve)
    assert main(["demo", "--storage", "memory://", "--port", "0"]) == 0
    assert events == ["out so far: "]  # nothing on stdout before the server is up
    captured = capsys.readouterr()
    assert captured.out.startswith("sessionkit demo on http://127.0.0.1:")
