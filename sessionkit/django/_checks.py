"""Django system checks for sessionkit's engine (``manage.py check``, and every ``runserver``).

Registered by the app config when ``"sessionkit.django"`` is in ``INSTALLED_APPS``. A wrong
``SESSIONKIT`` field, or a Django session setting sessionkit cannot honour, is an error naming
the setting; so are the two set-ups that half work (the engine behind Django's own middleware,
which shows Django's 500 page during an outage; the middleware without the engine).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from ._engine import DJANGO_SETTINGS, SettingError, engine

__all__ = ["check_deploy", "check_settings"]

ENGINE = "sessionkit.django"
MIDDLEWARE = "sessionkit.django.SessionMiddleware"
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The ``sessionkit`` checks: E001 (a wrong setting), E002, W001, W002, W003."""
    messages: list[CheckMessage] = []
    ours = settings.SESSION_ENGINE == ENGINE
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if not ours:
        if MIDDLEWARE in middleware:
            messages.append(
                Error(
                    f"{MIDDLEWARE} is in MIDDLEWARE, but SESSION_ENGINE is "
                    f"{settings.SESSION_ENGINE!r}.",
                    hint=f'Set SESSION_ENGINE = "{ENGINE}".',
                    id="sessionkit.E002",
                )
            )
        else:
            messages.append(
                Warning(
                    f'"{ENGINE}" is in INSTALLED_APPS, but SESSION_ENGINE is '
                    f"{settings.SESSION_ENGINE!r}: sessionkit is not in use.",
                    hint=f'Set SESSION_ENGINE = "{ENGINE}", or remove the app.',
                    id="sessionkit.W003",
                )
            )
        return messages
    try:
        cookie = engine().cookie
    except SettingError as exc:
        messages.append(
            Error(
                f"{exc.setting}: {str(exc).removeprefix(f'{exc.setting}: ')}",
                hint="See docs/frameworks/django.md (settings).",
                obj=exc.setting,
                id="sessionkit.E001",
            )
        )
        return messages
    if DJANGO_MIDDLEWARE in middleware and MIDDLEWARE not in middleware:
        messages.append(
            Warning(
                f"SESSION_ENGINE is {ENGINE!r} but MIDDLEWARE has Django's {DJANGO_MIDDLEWARE}: "
                "a storage outage would show Django's 500 page instead of a 503, and the "
                "SESSIONKIT cookie fields would be ignored.",
                hint=f'Replace it with "{MIDDLEWARE}".',
                id="sessionkit.W001",
            )
        )
    if cookie.name != settings.SESSION_COOKIE_NAME:
        messages.append(
            Warning(
                f'SESSIONKIT["key_lookup"] names the cookie {cookie.name!r}, '
                f"SESSION_COOKIE_NAME {settings.SESSION_COOKIE_NAME!r}: requests use "
                "SESSIONKIT's, but code that reads the setting (the test client's login()) "
                "uses Django's.",
                hint=(
                    f"Set the name once, in {DJANGO_SETTINGS['key_lookup']}, and leave "
                    "key_lookup out of SESSIONKIT."
                ),
                id="sessionkit.W002",
            )
        )
    return messages


def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``manage.py check --deploy``: W004, sessions in the memory of each process."""
    if settings.SESSION_ENGINE != ENGINE:
        return []
    try:
        storage = engine().store.config.storage
    except SettingError:
        return []  # check_settings reports it
    if not (isinstance(storage, str) and storage.split(":", 1)[0].lower() == "memory"):
        return []
    return [
        Warning(
            "SESSIONKIT sets no storage, or memory://: each process keeps its own sessions, "
            "so every worker sees different ones and a restart logs everyone out.",
            hint='Set SESSIONKIT = {"storage": ...} to a shared storage (Redis, SQLite, ...).',
            id="sessionkit.W004",
        )
    ]
