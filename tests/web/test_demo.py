"""The demo app through HTTP, the ``sessionkit demo`` command, and one real uvicorn server."""

from __future__ import annotations

import builtins
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkit import Store
from sessionkit._ops.cli import main
from sessionkit.demo import CartItem, default_storage_url
from sessionkit.demo._server import running
from sessionkit.demo.app import create_app
from tests.web._support import CountingStorage, FakeClock, SetCookie, make_store


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, element_id
    return match.group(1)


@pytest.fixture
async def demo(store: Store) -> Any:
    app = create_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_demo_walkthrough(demo: httpx.AsyncClient, store: Store) -> None:
    page = (await demo.get("/")).text
    assert "logged out" in page and _text(page, "count") == "0"
    assert "session_id" not in demo.cookies  # looking costs nothing, stores nothing

    await demo.post("/count")
    await demo.post("/count")
    anonymous = demo.cookies["session_id"]
    assert _text((await demo.get("/")).text, "count") == "2"

    reply = await demo.post("/login", data={"username": "<ada>"})
    assert reply.status_code == 303
    login_cookie = SetCookie.parse(reply.headers["set-cookie"])
    assert login_cookie.value != anonymous  # regenerate() on log-in
    assert store.get_by_id(anonymous) is None
    page = (await demo.get("/")).text
    assert _text(page, "user") == "&lt;ada&gt;"  # escaped
    assert _text(page, "count") == "2"  # data kept across the new id

    await demo.post("/cart", data={"sku": "pear", "qty": "2"})
    await demo.post("/cart", data={"sku": "pear", "qty": "1"})
    await demo.post("/cart", data={"sku": "apple", "qty": "1"})
    session = store.get_by_id(demo.cookies["session_id"])
    assert session is not None
    assert session["cart"] == [CartItem("pear", 3), CartItem("apple", 1)]
    listing = (await demo.get("/session")).text
    assert "CartItem(sku=&#x27;pear&#x27;, qty=3)" in listing
    assert demo.cookies["session_id"] not in listing  # the id never shows in a page

    before = demo.cookies["session_id"]
    await demo.post("/relogin")
    assert demo.cookies["session_id"] != before
    assert _text((await demo.get("/")).text, "user") == "&lt;ada&gt;"

    await demo.post("/cart/empty")
    assert "The cart is empty." in (await demo.get("/")).text

    reply = await demo.post("/logout")
    assert SetCookie.parse(reply.headers["set-cookie"]).expired
    assert "session_id" not in demo.cookies
    page = (await demo.get("/")).text
    assert "logged out" in page and _text(page, "count") == "0"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"username": "  "}),
        ("/login", {"username": "x" * 41}),
        ("/cart", {"sku": "durian", "qty": "1"}),
        ("/cart", {"sku": "pear", "qty": "0"}),
        ("/cart", {"sku": "pear", "qty": "-1"}),
    ],
)
async def test_demo_rejects_bad_forms(
    demo: httpx.AsyncClient, storage: CountingStorage, path: str, data: dict[str, str]
) -> None:
    reply = await demo.post(path, data=data)
    assert reply.status_code == 400 and "set-cookie" not in reply.headers
    assert storage.writes == 0


async def test_demo_get_is_not_an_action(demo: httpx.AsyncClient) -> None:
    assert (await demo.get("/logout")).status_code == 405


def test_cli_demo_help_and_backends_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--storage URL" in out and "--port" in out and "--host" in out
    assert main(["backends"]) == 0
    assert "memory" in capsys.readouterr().out


def test_cli_demo_reports_missing_dependencies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = builtins.__import__

    def no_uvicorn(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "starlette.applications":
            raise ModuleNotFoundError("No module named 'starlette'", name="starlette")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sessionkit.demo.app", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert main(["demo", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "starlette" in err and "pip install starlette uvicorn" in err


def test_cli_demo_bad_storage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--storage", "nosuch://x", "--port", "0"]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_default_storage_is_embedded() -> None:
    assert default_storage_url() in ("sqlite:///sessionkit-demo.db", "memory://")


def test_the_readme_and_the_script_say_where_the_demo_keeps_its_sessions() -> None:
    """The README's first command runs ``scripts/demo.sh``: both say which file the demo's
    SQLite storage is (a relative URL: a file in the folder the script runs from), not some
    other place."""
    root = Path(__file__).resolve().parents[2]
    url = default_storage_url()
    assert url.startswith("sqlite:///")  # the SQLite plugin is installed for the tests
    filename = url.removeprefix("sqlite:///")
    readme = (root / "README.md").read_text()
    bullet = readme.split("- `scripts/demo.sh`", 1)[1].split("\n- ", 1)[0]
    script = (root / "scripts" / "demo.sh").read_text()
    header = script.split("set -euo pipefail", 1)[0]
    for text in (bullet, header):
        assert filename in text and "temporary" not in text
        assert "checkout's" in " ".join(text.split())  # demo.sh runs from the checkout's root
    assert 'cd "$(dirname "$0")/.."' in script


def test_counter_under_a_real_uvicorn_server(clock: FakeClock) -> None:
    store = make_store(clock)
    app = create_app(store)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        for expected in ("1", "2", "3"):
            reply = http.post("/count", follow_redirects=True)
            assert _text(reply.text, "count") == expected
        line = SetCookie.parse(http.post("/count").headers["set-cookie"])
        assert line.attrs["httponly"] is True and line.attrs["max-age"] == "86400"
        assert http.get("/").headers["vary"] == "Cookie"
