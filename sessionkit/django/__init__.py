"""Django sessions on sessionkit: a session engine, and the middleware that goes with it.

In ``settings.py``, three lines change::

    SESSION_ENGINE = "sessionkit.django"
    SESSIONKIT = {"storage": "redis://localhost:6379/0"}  # any sessionkit Config field
    # in MIDDLEWARE, in place of django.contrib.sessions.middleware.SessionMiddleware:
    "sessionkit.django.SessionMiddleware",

and ``"sessionkit.django"`` goes in ``INSTALLED_APPS`` for its system checks. Everything built
on ``request.session`` keeps working (``django.contrib.auth``'s ``login()``/``logout()``, the
admin, ``django.contrib.messages``, ``manage.py clearsessions``), now with sessionkit's
storages, typed values without pickle, server-side expiry, ids that are never taken from the
client, and a 503 without ``Set-Cookie`` when the storage is down.

Django's ``SESSION_COOKIE_*`` settings keep their meaning; a field ``SESSIONKIT`` sets wins
over its Django twin (see :mod:`sessionkit.django._engine`). Django 5.2 or later.
"""

from __future__ import annotations

from ._backend import SessionStore
from ._engine import SettingError, get_store, register_type
from ._middleware import SessionMiddleware

__all__ = ["SessionMiddleware", "SessionStore", "SettingError", "get_store", "register_type"]
