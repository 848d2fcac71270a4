"""The ``sessionkit demo`` sub-command (registered by :mod:`sessionkit._cli`)."""

from __future__ import annotations

import argparse
import sys

from .._clitext import redact, scrub
from . import DEMO_DEPENDENCIES, default_storage_url

__all__ = ["add_demo_command"]


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .._errors import SessionKitError
        from .._store import Store
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
        print(f"sessionkit demo: --port must be 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        store = Store(storage=url)
    except (SessionKitError, ValueError) as exc:  # ValueError: a third-party plugin's
        reason = scrub(str(exc), url).replace("\n", " ")
        print(f"sessionkit demo: cannot open storage {shown}: {reason}", file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except (OSError, OverflowError, ValueError) as exc:
        print(f"sessionkit demo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        store.close()
        return 1
    print(f"sessionkit demo on {url_of(sock)}  (storage: {shown}; Ctrl+C to stop)", flush=True)
    try:
        serve(create_app(store, storage_label=shown), sock, log_level="warning")
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
