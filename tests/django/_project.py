"""A Django project as ``django-admin startproject`` makes it, with only its settings changed.

The tests of ``tests/django`` run on it: in this process (Django's test client, and the
engine's own tests on top of it) and in others (``manage.py``, gunicorn). What a project
changes to adopt sessionkit is :data:`SETTINGS`, appended to the generated ``settings.py``;
nothing else of the project is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["NAME", "SETTINGS", "make_project", "project_env"]

NAME = "mysite"

#: What adopting sessionkit changes in the generated settings.py (and a little test set-up).
SETTINGS = """
# -- sessionkit: the whole change to the generated project ------------------------------------
import os

SESSION_ENGINE = "sessionkit.django"
SESSIONKIT = {"storage": os.environ.get("SESSIONKIT_STORAGE", "memory://")}
INSTALLED_APPS.append("sessionkit.django")
MIDDLEWARE[MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")] = (
    "sessionkit.django.SessionMiddleware"
)
# Messages in the session (Django's default tries a cookie first, then the session).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# -- test set-up: quick password hashing, and the hosts the tests use --------------------------
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
"""


def make_project(parent: Path) -> Path:
    """Generate the project under ``parent`` and change its settings; return its directory."""
    home = parent / NAME
    home.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", NAME, str(home)],
        check=True,
        capture_output=True,
    )
    settings = home / NAME / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS)
    return home


def project_env(home: Path, storage: str, **extra: str) -> dict[str, str]:
    """The environment of a process running the project (``manage.py``, gunicorn)."""
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE=f"{NAME}.settings", SESSIONKIT_STORAGE=storage, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(home), env.get("PYTHONPATH")]))
    return env
