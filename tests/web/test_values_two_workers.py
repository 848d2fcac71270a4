"""A rolling deploy: two real worker processes, the old and the new session class, one storage.

Two uvicorn processes serve the same app, one with ``Cart`` as the release before defines it,
one with the field the next release adds (with a default); both register it under one stored
name, ``register_type(Cart, name="shop.Cart")``. One browser's requests go to either worker in
turn, as a load balancer sends them during the deploy: every request is answered 200, the
session is never lost, and what each worker wrote comes back exactly (a tuple stays a tuple
inside the bare ``list`` field) on the other (docs/values.md, "Changing your session classes").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

APP = """
import dataclasses
import json
import os
from urllib.parse import parse_qs

from sessionkit import Store
from sessionkit.asgi import SessionMiddleware

RELEASE = os.environ["CART_RELEASE"]

if RELEASE == "old":

    @dataclasses.dataclass
    class Cart:
        items: list

else:

    @dataclasses.dataclass
    class Cart:
        items: list
        coupon: str | None = None


store = Store(storage=os.environ["CART_STORAGE"])
store.register_type(Cart, name="shop.Cart")


async def shop(scope, receive, send):
    session = scope["session"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    cart = session.get("cart") or Cart([])
    if "sku" in query:
        cart.items.append((query["sku"], RELEASE))  # a tuple, in a bare list field
    if "coupon" in query and RELEASE == "new":
        cart.coupon = query["coupon"]
    session["cart"] = cart
    body = json.dumps(
        {
            "release": RELEASE,
            "items": [list(item) for item in cart.items],
            "tuples": all(type(item) is tuple for item in cart.items),
            "coupon": getattr(cart, "coupon", None),
        }
    )
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})


app = SessionMiddleware(shop, store)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(port: int, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(
                f"worker exited: {worker.stderr.read().decode() if worker.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"worker on port {port} did not start")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    redis_url: str = request.getfixturevalue("redis_url")
    separator = "&" if "?" in redis_url else "?"
    return f"{redis_url}{separator}prefix=two-workers-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def workers(tmp_path: Path, storage_url: str) -> Iterator[dict[str, str]]:
    """Base URLs of the two workers, by release."""
    (tmp_path / "shop_app.py").write_text(textwrap.dedent(APP))
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for release in ("old", "new"):
            port = _free_port()
            env = {**os.environ, "CART_RELEASE": release, "CART_STORAGE": storage_url}
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "shop_app:app",
                    "--app-dir",
                    str(tmp_path),
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            started[release] = (worker, f"http://127.0.0.1:{port}")
            _wait_until_serving(port, worker)
        yield {release: url for release, (_, url) in started.items()}
    finally:
        for worker, _ in started.values():
            worker.terminate()
            worker.wait(timeout=10)
            if worker.stderr is not None:
                worker.stderr.close()


def test_old_and_new_workers_share_sessions_during_a_rolling_deploy(
    workers: dict[str, str],
) -> None:
    cookie: str | None = None
    steps = [
        ("old", "sku=a", [["a", "old"]], None),
        ("new", "sku=b&coupon=SPRING", [["a", "old"], ["b", "new"]], "SPRING"),
        ("new", "", [["a", "old"], ["b", "new"]], "SPRING"),
        # The old release does not know the coupon: it ignores it, and saves without it.
        ("old", "sku=c", [["a", "old"], ["b", "new"], ["c", "old"]], None),
        ("new", "sku=d", [["a", "old"], ["b", "new"], ["c", "old"], ["d", "new"]], None),
    ]
    with httpx.Client(timeout=10) as http:
        for release, query, items, coupon in steps:
            headers = {"cookie": f"session_id={cookie}"} if cookie else {}
            reply = http.get(f"{workers[release]}/?{query}", headers=headers)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body == {"release": release, "items": items, "tuples": True, "coupon": coupon}
            new_cookie = reply.cookies.get("session_id")
            if cookie is not None:  # the same session throughout: never lost, never replaced
                assert new_cookie in (None, cookie)
            cookie = new_cookie or cookie
