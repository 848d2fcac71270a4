"""``sessionkit demo``: bad arguments are one error line and status 2; no password is shown."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from sessionkit import Store
from sessionkit._ops.cli import main

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from sessionkit.demo.app import create_app

SECRET = "s3cret"


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--storage", "redis://u:s3cret@[::1/0"],
        ["demo", "--storage", "redis://u:s3cret@h/0?socket_timeout=-1"],
        ["demo", "--storage", "nosuchscheme://u:s3cret@h/"],
        ["demo", "--storage", "memory://", "--port", "99999"],
        ["demo", "--storage", "memory://", "--port", "-1"],
    ],
)
def test_demo_refuses_bad_arguments_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert all(line.startswith("sessionkit demo: ") for line in lines), captured.err
    # At most the start-up step that failed ("opening storage URL ..."), then one error line.
    *steps, error = lines
    assert [step.endswith(" ...") for step in steps] == [True] * len(steps) and len(steps) <= 1
    assert not error.endswith(" ...")
    assert SECRET not in captured.err


def test_demo_shows_the_storage_url_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Any] = []

    def serve(app: Any, sock: socket.socket, **options: Any) -> None:  # instead of uvicorn's
        served.append(app)
        options["on_started"]()
        sock.close()

    monkeypatch.setattr("sessionkit.demo._server.serve", serve)
    assert main(["demo", "--storage", "memory://u:s3cret@here/", "--port", "0"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert SECRET not in out and "(storage: memory://u:***@here/;" in out
    assert SECRET not in captured.err and "opening storage memory://u:***@here/ ..." in captured.err
    (app,) = served

    async def page() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return (await http.get("/")).text

    text = asyncio.run(page())
    assert SECRET not in text and "memory://u:***@here/" in text


def test_create_app_masks_a_label_or_the_store_url() -> None:
    store = Store(storage="memory://u:s3cret@here/")
    assert create_app(store).state.storage_label == "memory://u:***@here/"
    labelled = create_app(store, storage_label="redis://:s3cret@h/0")
    assert labelled.state.storage_label == "redis://:***@h/0"
    store.close()
