"""The ``sessionkit demo`` sub-command (registered by :mod:`sessionkit._ops.cli`)."""

from __future__ import annotations

import argparse
import sys

from .._redact import redact, scrub
from . import DEMO_DEPENDENCIES, default_storage_url

__all__ = ["add_demo_command"]


def _say(message: str) -> None:
    """A step of the start-up, on stderr and at once: opening a storage or starting the
    server can take a while, and a silent terminal looks like a hang."""
    print(f"sessionkit demo: {message}", file=sys.stderr, flush=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .._errors import SessionKitError
        from .._store import Store
        from ._accesslog import AccessLog
        from ._server import bind, serve, url_of
        from .app import create_app
    except ImportError as exc:
        if exc.name not in DEMO_DEPENDENCIES:
            raise
        print(
            f"sessionkit demo needs {' and '.join(DEMO_DEPENDENCIES)}, and {exc.name} is not "
            f"installed; try: pip install {' '.join(DEMO_DEPENDENCIES)}",
            file=sys.stderr,
        )
        return 1
    url = args.storage or default_storage_url()
    shown = redact(url)  # the URL may hold a password: never print or serve it
    if not 0 <= args.port <= 65535:
        _say(f"--port must be 0 to 65535, got {args.port}")
        return 2
    default = "" if args.storage else " (the default; --storage URL picks another)"
    _say(f"opening storage {shown}{default} ...")
    try:
        store = Store(storage=url)
    except (SessionKitError, ValueError) as exc:  # ValueError: a third-party plugin's
        reason = scrub(str(exc), url).replace("\n", " ")
        _say(f"cannot open storage {shown}: {reason}")
        return 2
    try:
        sock = bind(args.host, args.port)
    except (OSError, OverflowError, ValueError) as exc:
        _say(f"cannot listen on {args.host}:{args.port}: {exc}")
        store.close()
        return 1
    address = url_of(sock)
    _say(f"starting the web server on {address} ...")

    def started() -> None:
        print(f"sessionkit demo on {address}  (storage: {shown}; Ctrl+C to stop)", flush=True)
        _say("requests are logged below: method, path, status, time")

    app = AccessLog(create_app(store, storage_label=shown))
    try:
        serve(app, sock, log_level="warning", on_started=started)
    finally:
        store.close()
    return 0


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo [--storage URL] [--port N] [--host H]`` on ``sub``."""
    demo = sub.add_parser(
        "demo",
        help="run the demo web app (log-in, counter, cart) on a local port",
        description="Serve a small Starlette app whose state lives in a sessionkit session: "
        "log in (regenerate), count, fill a cart of registered CartItem values, log out "
        "(destroy). Needs starlette and uvicorn.",
    )
    demo.add_argument(
        "--storage",
        metavar="URL",
        help="storage URL (default: sqlite:///sessionkit-demo.db when the SQLite plugin is "
        "installed, else memory://)",
    )
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    demo.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    demo.set_defaults(func=_cmd_demo)
