"""The Starlette routes of the load suite's app (``app_asgi``), in each session layer's
spelling, shared with the benchmark's app (``benchmarks/load/apps/starlette_app.py``) so the
two serve exactly the same requests. Every body is ``"<user> <n>"``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse

__all__ = [
    "bare_read",
    "health",
    "login",
    "logout",
    "read",
    "reset",
    "star_login",
    "star_logout",
    "text",
    "write",
]


def text(user: object, n: object, headers: dict[str, str] | None = None) -> PlainTextResponse:
    """The body every route answers: ``"<user> <n>"`` (``headers``: a cookie of the floor's)."""
    return PlainTextResponse(f"{user} {n}", headers=headers)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def read(request: Request) -> PlainTextResponse:
    session = request.session
    return text(session.get("user", "-"), session.get("n", 0))


async def write(request: Request) -> PlainTextResponse:
    session = request.session
    n = session.get("n", 0) + 1
    session["n"] = n
    return text(session.get("user", "-"), n)


async def login(request: Request) -> PlainTextResponse:
    user = request.query_params["user"]
    session = request.session
    await session.aregenerate()
    session["user"] = user
    return text(user, session.get("n", 0))


async def logout(request: Request) -> PlainTextResponse:
    await request.session.adestroy()
    return text("-", 0)


async def reset(request: Request) -> PlainTextResponse:
    await request.session.areset()
    return text("-", 0)


# -- starsessions: the same routes in its spelling ---------------------------------------------


async def star_login(request: Request) -> PlainTextResponse:
    from starsessions import regenerate_session_id

    user = request.query_params["user"]
    regenerate_session_id(request)
    request.session["user"] = user
    return text(user, request.session.get("n", 0))


async def star_logout(request: Request) -> PlainTextResponse:
    request.session.clear()
    return text("-", 0)


# -- bare: no session layer ---------------------------------------------------------------------


async def bare_read(request: Request) -> PlainTextResponse:
    return text("-", 0)
