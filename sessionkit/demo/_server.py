"""Serving an ASGI app with uvicorn: in the foreground (the CLI) or in a thread (tests, embedding).

The listening socket is bound here, before uvicorn starts, so a port that is taken is reported
plainly and the printed URL is always the one actually served (``--port 0`` picks a free one).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["bind", "running", "serve", "url_of"]


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (``OSError`` if taken); uvicorn makes it listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _server(app: Any, log_level: str, on_started: Callable[[], None] | None = None) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_started is not None:
                on_started()

    config = uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False)
    return Server(config)


def serve(
    app: Any,
    sock: socket.socket,
    *,
    log_level: str = "info",
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until interrupted (Ctrl+C); ``on_started()`` is called once
    the socket accepts connections, so a URL printed then is one that answers."""
    _server(app, log_level, on_started).run(sockets=[sock])


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a background thread; yield its base URL."""
    sock = bind(host, 0)
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
