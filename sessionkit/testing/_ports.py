"""A port where nothing listens, for a plugin's :meth:`make_broken_storage`."""

from __future__ import annotations

import socket

__all__ = ["closed_port"]


def closed_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on (it was free a moment ago).

    Connections to it are refused at once, the way they are when the server is down, so a
    storage pointed at it fails every call quickly: what the conformance suite's fault checks
    need from ``make_broken_storage``. (A stopped server's own port would do as well, but
    costs a server per test.)
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
