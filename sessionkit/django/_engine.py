"""The engine behind ``SESSION_ENGINE = "sessionkit.django"``: one :class:`~sessionkit.Store`
per process, built from ``SESSIONKIT`` and Django's own session settings.

Which setting wins: a field ``SESSIONKIT`` sets wins over the Django setting for the same
thing; a field it leaves out follows Django's setting, read as Django documents it (and again
whenever a test overrides it). So a project that only adds ``SESSIONKIT = {"storage": ...}``
keeps every cookie it had:

=====================================  ============================================
``SESSIONKIT`` field                   Django setting it overrides
=====================================  ============================================
``key_lookup`` (``"cookie:NAME"``)     ``SESSION_COOKIE_NAME``
``expiration``                         ``SESSION_COOKIE_AGE``
``cookie_domain``                      ``SESSION_COOKIE_DOMAIN``
``cookie_path``                        ``SESSION_COOKIE_PATH``
``cookie_secure``                      ``SESSION_COOKIE_SECURE``
``cookie_http_only``                   ``SESSION_COOKIE_HTTPONLY``
``cookie_same_site``                   ``SESSION_COOKIE_SAMESITE``
``cookie_session_only``                ``SESSION_EXPIRE_AT_BROWSER_CLOSE``
=====================================  ============================================

``SESSION_SAVE_EVERY_REQUEST`` has no sessionkit twin and works as in Django. The effective
values go through :class:`~sessionkit.Config`'s checks whichever side they came from, so a
``SameSite=None`` cookie without ``Secure`` or a 401-day lifetime fails at start-up, naming
the setting to fix (:class:`SettingError`), rather than on a visitor.

The store is built on first use (the middleware builds it when Django loads it, so a bad
setting stops the server from starting) and rebuilt when a test overrides ``SESSIONKIT``;
overriding one of the Django settings above only re-reads the cookie.
"""

from __future__ import annotations

import contextlib
import difflib
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .._config import Config
from .._errors import ConfigError, SessionKitError, StorageError, StorageNotFound
from .._finish import Finisher
from .._store import Store
from .._values import TypeRegistry

__all__ = ["Cookie", "Engine", "SettingError", "engine", "get_store", "register_type", "resolve"]

#: Config field -> the Django setting it overrides (see the module's table).
DJANGO_SETTINGS: Mapping[str, str] = {
    "key_lookup": "SESSION_COOKIE_NAME",
    "expiration": "SESSION_COOKIE_AGE",
    "cookie_domain": "SESSION_COOKIE_DOMAIN",
    "cookie_path": "SESSION_COOKIE_PATH",
    "cookie_secure": "SESSION_COOKIE_SECURE",
    "cookie_http_only": "SESSION_COOKIE_HTTPONLY",
    "cookie_same_site": "SESSION_COOKIE_SAMESITE",
    "cookie_session_only": "SESSION_EXPIRE_AT_BROWSER_CLOSE",
}
#: Settings whose change (``override_settings``) makes the cookie be read again.
_COOKIE_SETTINGS = frozenset({*DJANGO_SETTINGS.values(), "SESSION_SAVE_EVERY_REQUEST"})
_FIELDS = tuple(field.name for field in attrs.fields(Config))


class SettingError(ConfigError, ImproperlyConfigured):
    """A session setting is wrong: ``setting`` names it as the project spells it
    (``SESSIONKIT["storage"]``, ``SESSION_COOKIE_AGE``).

    Both a :class:`~sessionkit.ConfigError` and Django's ``ImproperlyConfigured``, so either
    ``except`` catches it, and Django reports it at start-up as it reports its own.
    """

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(setting, message)


@attrs.frozen
class Cookie:
    """The session cookie as the middleware writes it, every value already resolved."""

    name: str
    #: Seconds a session lives without a ``set_expiry`` of its own.
    age: int
    domain: str | None
    path: str
    secure: bool
    http_only: bool
    #: ``"Lax"``, ``"Strict"``, ``"None"``, or ``None``/``False`` (no attribute: Django's own
    #: ``SESSION_COOKIE_SAMESITE = None``).
    same_site: str | bool | None
    session_only: bool
    save_every_request: bool


@attrs.frozen
class Engine:
    """What the session store and the middleware share within a process."""

    store: Store
    cookie: Cookie
    #: Logs storage failures once per kind per interval (see :mod:`sessionkit._failurelog`)
    #: and says what a failure answers.
    finisher: Finisher
    #: The storage was opened from a URL here, so it is closed here when replaced.
    owns_storage: bool


def _sessionkit_fields() -> dict[str, Any]:
    raw = getattr(settings, "SESSIONKIT", None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SettingError(
            "SESSIONKIT",
            f"expected a dict of sessionkit Config fields, such as "
            f'{{"storage": "redis://localhost:6379/0"}}, got {type(raw).__name__}',
        )
    fields = dict(raw)
    for name in fields:
        if name not in _FIELDS:
            close = difflib.get_close_matches(str(name), _FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the fields are {list(_FIELDS)}"
            raise SettingError(
                f'SESSIONKIT["{name}"]', f"sessionkit's Config has no {name!r}{hint}"
            )
    lookup = fields.get("key_lookup")
    if isinstance(lookup, str) and not lookup.startswith("cookie:"):
        raise SettingError(
            'SESSIONKIT["key_lookup"]',
            f"{lookup!r}: under Django the session id travels in a cookie, as Django's session "
            "framework has it; give 'cookie:NAME', or leave it out and set SESSION_COOKIE_NAME",
        )
    return fields


def _from_django() -> dict[str, Any]:
    """The Config fields Django's settings give, converted to Config's types (unchecked)."""
    age = settings.SESSION_COOKIE_AGE
    values: dict[str, Any] = {
        "key_lookup": f"cookie:{settings.SESSION_COOKIE_NAME}",
        "expiration": (
            timedelta(seconds=age) if isinstance(age, int) and not isinstance(age, bool) else age
        ),
        "cookie_domain": settings.SESSION_COOKIE_DOMAIN or "",
        "cookie_path": settings.SESSION_COOKIE_PATH,
        "cookie_secure": settings.SESSION_COOKIE_SECURE,
        "cookie_http_only": settings.SESSION_COOKIE_HTTPONLY,
        "cookie_session_only": settings.SESSION_EXPIRE_AT_BROWSER_CLOSE,
    }
    same_site = settings.SESSION_COOKIE_SAMESITE
    if same_site:  # None or False: Django sends no SameSite, which Config cannot say
        values["cookie_same_site"] = same_site
    return values


def _blame(exc: ConfigError, fields: Mapping[str, Any]) -> SettingError:
    """``exc`` as a :class:`SettingError` naming the setting that holds the field."""
    field = exc.field
    message = str(exc).removeprefix(f"{field}: ")
    if field in fields:
        return SettingError(f'SESSIONKIT["{field}"]', message)
    if field in DJANGO_SETTINGS:
        setting = DJANGO_SETTINGS[field]
        return SettingError(setting, f"{message} (read as sessionkit's {field})")
    # A storage plugin's own option (``?prefix=``), or the URL itself.
    return SettingError('SESSIONKIT["storage"]', str(exc))


def resolve() -> tuple[Config, Cookie]:
    """The Config and the cookie that Django's settings and ``SESSIONKIT`` give together.

    Opens nothing: the storage stays a URL (or the object given). Raises :class:`SettingError`.
    """
    fields = _sessionkit_fields()
    derived = {k: v for k, v in _from_django().items() if k not in fields}
    try:
        config = Config(**derived, **fields)
    except ConfigError as exc:
        raise _blame(exc, fields) from exc
    except TypeError as exc:  # a field of the wrong kind that Config's converters refuse
        raise SettingError("SESSIONKIT", str(exc)) from exc
    same_site = (
        config.cookie_same_site
        if "cookie_same_site" in fields
        else settings.SESSION_COOKIE_SAMESITE
    )
    cookie = Cookie(
        name=config.lookup.name,
        age=int(config.expiration.total_seconds()),
        domain=config.cookie_domain or None,
        path=config.cookie_path,
        secure=config.cookie_secure,
        http_only=config.cookie_http_only,
        same_site=same_site,
        session_only=config.cookie_session_only,
        save_every_request=bool(settings.SESSION_SAVE_EVERY_REQUEST),
    )
    return config, cookie


def _build() -> Engine:
    config, cookie = resolve()
    try:
        store = Store(config)
    except ConfigError as exc:  # the storage plugin refused the URL or one of its options
        raise _blame(exc, _sessionkit_fields()) from exc
    except (StorageNotFound, StorageError) as exc:
        raise SettingError('SESSIONKIT["storage"]', str(exc)) from exc
    for cls, name in _types:
        store.register_type(cls, name=name)
    return Engine(store, cookie, Finisher(store), owns_storage=isinstance(config.storage, str))


_lock = threading.Lock()
_engine: Engine | None = None
#: The cookie settings changed since the engine was built: re-read them on next use.
_cookie_stale = False
#: Everything :func:`register_type` admitted, so a rebuilt store admits it too.
_types: list[tuple[type, str | None]] = []


def engine() -> Engine:
    """The process's engine, built on first call; raises :class:`SettingError`."""
    global _engine, _cookie_stale
    current = _engine
    if current is not None and not _cookie_stale:
        return current
    with _lock:
        if _engine is None:
            _engine = _build()
            _cookie_stale = False
        elif _cookie_stale:
            _engine = attrs.evolve(_engine, cookie=resolve()[1])
            _cookie_stale = False
        return _engine


def get_store() -> Store:
    """The :class:`~sessionkit.Store` behind ``request.session``: for ``store.get_by_id``,
    ``store.delete`` (log a user out everywhere), or the operator's tools."""
    return engine().store


def register_type(cls: type, *, name: str | None = None) -> None:
    """Admit an attrs class, dataclass or enum as a session value (``Store.register_type``).

    Call it where the app starts (an ``AppConfig.ready``); it holds for the process's store,
    including one rebuilt by ``override_settings(SESSIONKIT=...)`` in tests.
    """
    with _lock:
        current = _engine
        if current is not None:
            current.store.register_type(cls, name=name)
        else:  # checked now anyway: a bad class fails where it is registered
            TypeRegistry().register_type(cls, name=name)
        _types.append((cls, name))


def _settings_changed(*, setting: str, **_: Any) -> None:
    """``override_settings`` support: a new ``SESSIONKIT`` means a new store (the old one's
    storage is closed if it was opened here); a new cookie setting, a new cookie."""
    global _engine, _cookie_stale
    if setting == "SESSIONKIT":
        with _lock:
            old, _engine = _engine, None
        if old is not None and old.owns_storage:
            with contextlib.suppress(SessionKitError):  # dropped anyway if it cannot close
                old.store.close()
    elif setting in _COOKIE_SETTINGS:
        _cookie_stale = True


setting_changed.connect(_settings_changed, dispatch_uid="sessionkit.django.settings")
