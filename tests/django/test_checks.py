"""A wrong set-up fails at start-up, naming what to fix: the ``sessionkit`` system checks
(registered by the app config of ``"sessionkit.django"``) and the middleware's constructor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import override_settings

from sessionkit.django import SessionMiddleware, SettingError
from sessionkit.django._checks import check_settings

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
OURS = "sessionkit.django.SessionMiddleware"


def _ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in check_settings()]


def _with_djangos_middleware() -> list[str]:
    return [DJANGO_MIDDLEWARE if m == OURS else m for m in settings.MIDDLEWARE]


def test_the_generated_project_with_sessionkit_is_clean() -> None:
    assert check_settings() == []
    assert checks.run_checks() == []  # the admin's E410 included: the middleware is Django's


def test_a_bad_field_is_an_error_naming_it() -> None:
    with override_settings(SESSIONKIT={"storage": "redsi://localhost"}):
        (message,) = check_settings()
        registered = checks.run_checks(tags=["sessionkit"])
    assert message.id == "sessionkit.E001" and message.obj == 'SESSIONKIT["storage"]'
    assert message.msg.startswith('SESSIONKIT["storage"]: no storage backend for scheme')
    assert [m.id for m in registered] == ["sessionkit.E001"]  # the app config registered it


def test_a_bad_django_setting_is_an_error_naming_it() -> None:
    with override_settings(SESSION_COOKIE_SAMESITE="None"):
        (message,) = check_settings()
    assert message.id == "sessionkit.E001" and message.obj == "SESSION_COOKIE_SAMESITE"


def test_djangos_middleware_behind_the_engine_is_a_warning() -> None:
    assert _ids(MIDDLEWARE=_with_djangos_middleware()) == ["sessionkit.W001"]


def test_the_middleware_without_the_engine_is_an_error() -> None:
    assert _ids(SESSION_ENGINE="django.contrib.sessions.backends.db") == ["sessionkit.E002"]


def test_the_app_without_the_engine_is_a_warning() -> None:
    ids = _ids(
        SESSION_ENGINE="django.contrib.sessions.backends.db", MIDDLEWARE=_with_djangos_middleware()
    )
    assert ids == ["sessionkit.W003"]


def test_two_cookie_names_are_a_warning() -> None:
    assert _ids(SESSIONKIT={"storage": "memory://", "key_lookup": "cookie:sid"}) == [
        "sessionkit.W002"
    ]


def test_sessions_in_process_memory_are_a_deployment_warning(tmp_path: Path) -> None:
    deploy = checks.run_checks(tags=["sessionkit"], include_deployment_checks=True)
    assert [m.id for m in deploy] == ["sessionkit.W004"]  # the project's memory:// default
    with override_settings(SESSIONKIT={"storage": f"sqlite:///{tmp_path}/sessions.db"}):
        assert checks.run_checks(tags=["sessionkit"], include_deployment_checks=True) == []
    assert checks.run_checks(tags=["sessionkit"]) == []  # a deployment check only


def _view(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def test_the_middleware_refuses_a_bad_setting_when_built() -> None:
    with override_settings(SESSIONKIT={"storage": "memory://", "expiraton": 1}):
        with pytest.raises(SettingError, match=r'SESSIONKIT\["expiraton"\]: .*did you mean'):
            SessionMiddleware(_view)
        with pytest.raises(ImproperlyConfigured):
            SessionMiddleware(_view)


def test_the_middleware_refuses_another_engine() -> None:
    with (
        override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"),
        pytest.raises(ImproperlyConfigured, match=r"SESSION_ENGINE = 'sessionkit\.django'"),
    ):
        SessionMiddleware(_view)
