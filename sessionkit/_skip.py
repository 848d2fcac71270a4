"""Routes a middleware leaves alone: Fiber's ``Next``, Litestar's ``exclude``.

Health checks, metrics and static files have no use for a session; under a middleware that
loads eagerly (ASGI) each of them would still cost a storage read per request with a cookie,
and any of them that touched the session would answer with ``Vary: Cookie``, defeating caches
in front of static files. A skipped request gets no session at all: nothing is read, written
or sent, and the app's response goes out untouched.

Both forms are turned into one predicate at start-up, so a request pays one call (a compiled
regular expression's ``search``, or the application's own function) and nothing when neither
is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._errors import ConfigError

__all__ = ["skipper"]

_R = TypeVar("_R")


def _patterns(exclude: str | Iterable[str]) -> re.Pattern[str]:
    """``exclude`` as one compiled alternation (Litestar's reading: each is a regular
    expression searched in the path, so ``"^/static/"`` anchors and ``"health"`` matches
    anywhere)."""
    items: list[object] = [exclude] if isinstance(exclude, str) else list(_iterable(exclude))
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ConfigError(
            "exclude", f"expected a non-empty regex or a list of them, got {exclude!r}"
        )
    try:
        return re.compile("|".join(f"(?:{item})" for item in items))
    except re.error as exc:
        raise ConfigError(
            "exclude", f"{exclude!r} is not a valid regular expression: {exc}"
        ) from exc


def _iterable(value: object) -> Iterable[object]:
    if not isinstance(value, Iterable):
        raise ConfigError("exclude", f"expected a regex or a list of them, got {value!r}")
    return value


def skipper(
    skip: Callable[[_R], bool] | None,
    exclude: str | Iterable[str] | None,
    path_of: Callable[[_R], str],
) -> Callable[[_R], bool] | None:
    """One predicate over a request (a scope, an environ, a Flask request) from ``skip`` (the
    application's function) and ``exclude`` (path patterns), or ``None`` when neither is given.

    ``path_of`` reads the request's path (``scope["path"]``, ``environ["PATH_INFO"]``).
    """
    if skip is not None and not callable(skip):
        raise ConfigError("skip", f"expected a callable taking the request, got {skip!r}")
    if exclude is None:
        return skip
    search = _patterns(exclude).search
    if skip is None:
        return lambda request: search(path_of(request)) is not None
    predicate = skip
    return lambda request: search(path_of(request)) is not None or bool(predicate(request))


def asgi_path(scope: Any) -> str:
    """The path of an ASGI scope, as the app's router sees it."""
    path: str = scope.get("path", "")
    return path


def wsgi_path(environ: Any) -> str:
    """The path of a WSGI environ below the app's mount point (``PATH_INFO``)."""
    path: str = environ.get("PATH_INFO", "")
    return path
