"""A URLconf of small views for the middleware's tests (``override_settings(ROOT_URLCONF=...)``).

Each view does one thing with ``request.session`` and answers JSON; ``/a/...`` are async.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth import (
    aauthenticate,
    alogin,
    alogout,
    authenticate,
    login,
    update_session_auth_hash,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from sessionkit import StorageError
from sessionkit.django import get_store


def _json(data: Any) -> HttpResponse:
    return HttpResponse(json.dumps(data, default=repr), content_type="application/json")


def put(request: HttpRequest) -> HttpResponse:
    for key, value in request.GET.items():
        request.session[key] = value
    return _json({"key": request.session.session_key})


def read(request: HttpRequest) -> HttpResponse:
    return _json({k: request.session.get(k) for k in request.GET})


def noop(request: HttpRequest) -> HttpResponse:
    return _json({})


def flush(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return _json({})


def cycle(request: HttpRequest) -> HttpResponse:
    request.session.cycle_key()
    return _json({"key": request.session.session_key})


def emptied(request: HttpRequest) -> HttpResponse:
    for key in list(request.session.keys()):
        del request.session[key]
    return _json({})


def expiry(request: HttpRequest) -> HttpResponse:
    request.session["x"] = 1
    request.session.set_expiry(int(request.GET["s"]))
    return _json({})


def typed(request: HttpRequest) -> HttpResponse:
    request.session["when"] = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    request.session["day"] = date(2024, 5, 6)
    request.session["price"] = Decimal("9.99")
    request.session["tags"] = {"a", "b"}
    request.session["pair"] = (1, "two")
    return _json({})


def typed_read(request: HttpRequest) -> HttpResponse:
    return _json({k: [type(v).__name__, repr(v)] for k, v in request.session.items()})


def message(request: HttpRequest) -> HttpResponse:
    """Adds a message and leaves the session alone: the messages middleware saves it."""
    messages.info(request, "hello")
    return _json({})


def show_messages(request: HttpRequest) -> HttpResponse:
    return _json([str(m) for m in messages.get_messages(request)])


def caught(request: HttpRequest) -> HttpResponse:
    """Uses its session during an outage, and answers anyway."""
    try:
        request.session.get("x")
    except StorageError:
        return _json({"degraded": True})
    return _json({"degraded": False})


def raced(request: HttpRequest) -> HttpResponse:
    """Loads its session, which a concurrent log-out then deletes, and writes to it."""
    request.session.get("a")
    get_store().delete(request.session.session_key or "")
    request.session["a"] = "2"
    return _json({})


def server_error(request: HttpRequest) -> HttpResponse:
    request.session["x"] = 1
    return HttpResponse("oops", status=500)


async def aput(request: HttpRequest) -> HttpResponse:
    for key, value in request.GET.items():
        await request.session.aset(key, value)
    return _json({"key": request.session.session_key})


async def aread(request: HttpRequest) -> HttpResponse:
    return _json({k: await request.session.aget(k) for k in request.GET})


async def acycle(request: HttpRequest) -> HttpResponse:
    await request.session.acycle_key()
    return _json({"key": request.session.session_key})


async def aflush(request: HttpRequest) -> HttpResponse:
    await request.session.aflush()
    return _json({})


async def alog_in(request: HttpRequest) -> HttpResponse:
    user = await aauthenticate(request, username=request.GET["u"], password=request.GET["p"])
    assert user is not None
    await alogin(request, user)
    return _json({})


async def alog_out(request: HttpRequest) -> HttpResponse:
    await alogout(request)
    return _json({})


async def awho(request: HttpRequest) -> HttpResponse:
    return _json({"user": str(await request.auser())})


def user(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"user": str(request.user)})


def log_in(request: HttpRequest) -> HttpResponse:
    found = authenticate(request, username=request.GET["u"], password=request.GET["p"])
    assert found is not None
    login(request, found)
    return _json({})


def change_password(request: HttpRequest) -> HttpResponse:
    """docs/principals.md's Django recipe: a password change logs the user's other devices out."""
    account: Any = request.user
    account.set_password(request.GET["p"])
    account.save()
    update_session_auth_hash(request, account)
    ended = get_store().destroy_all(str(account.pk), keep=request.session.session_key)
    return _json({"ended": ended})


urlpatterns = [
    path("put", put),
    path("read", read),
    path("noop", noop),
    path("flush", flush),
    path("cycle", cycle),
    path("emptied", emptied),
    path("expiry", expiry),
    path("typed", typed),
    path("typed/read", typed_read),
    path("message", message),
    path("messages", show_messages),
    path("caught", caught),
    path("error", server_error),
    path("raced", raced),
    path("user", user),
    path("login", log_in),
    path("password", change_password),
    path("a/put", aput),
    path("a/read", aread),
    path("a/cycle", acycle),
    path("a/flush", aflush),
    path("a/login", alog_in),
    path("a/logout", alog_out),
    path("a/who", awho),
]
