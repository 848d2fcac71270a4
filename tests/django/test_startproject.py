"""End to end, on a project made by ``django-admin startproject`` with only its settings
changed (:mod:`tests.django._project`): the admin's log-in, ``django.contrib.auth``'s log-in
and log-out (a new key at log-in; the record gone at log-out), ``update_session_auth_hash``,
``django.contrib.messages``, ``manage.py check`` and ``clearsessions``, and a storage outage
answered with a 503 that logs nobody out, through Django's test client and through a real
gunicorn server and HTTP client.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from sessionkit.django import SessionStore, get_store
from tests._servers import HOST, ServerProcess, free_port, start_redis
from tests.django._project import project_env
from tests.django.conftest import using

PASSWORD = "Correct-Horse-7"
NEW_PASSWORD = "Battery-Staple-9"


def _admin(name: str) -> str:
    """A superuser of its own (a password change must not disturb another test's)."""
    name = f"admin-{name}-{os.urandom(3).hex()}"
    get_user_model().objects.create_superuser(name, f"{name}@example.com", PASSWORD)
    return name


def _key(client: Client) -> str | None:
    cookie = client.cookies.get("sessionid")
    return cookie.value if cookie is not None and cookie.value else None


def _exists(key: str | None) -> bool:
    return key is not None and SessionStore().exists(key)


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[ServerProcess]:
    """A private Redis that keeps its data across a stop and a start (an outage)."""
    server = start_redis("--appendonly", "yes", "--appendfsync", "always")
    try:
        yield server
    finally:
        server.close()


# -- Django's test client -----------------------------------------------------------------------


def test_the_admin_auth_and_messages_work_on_every_storage(storage: str) -> None:
    client = Client()
    user = _admin(storage.split(":")[0])

    # An anonymous visitor with a session (the test client's own API makes it).
    anonymous = client.session
    anonymous["cart"] = ["book"]
    anonymous.save()
    before = _key(client)
    assert _exists(before)

    # The admin's log-in: django.contrib.auth.login() gives a new key, and takes the old one.
    response = client.post("/admin/login/?next=/admin/", {"username": user, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    logged_in = _key(client)
    assert logged_in not in (None, before)
    assert not _exists(before) and _exists(logged_in)
    assert client.session["cart"] == ["book"]  # the data came along
    assert "Site administration" in client.get("/admin/").content.decode()

    # django.contrib.messages, kept in the session.
    response = client.post("/admin/auth/group/add/", {"name": f"group-{user}"}, follow=True)
    assert "was added successfully" in response.content.decode()
    assert "was added successfully" not in client.get("/admin/auth/group/").content.decode()

    # A password change: update_session_auth_hash() gives a new key and keeps the user in.
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = _key(client)
    assert changed not in (None, logged_in) and not _exists(logged_in)
    assert client.get("/admin/").status_code == 200

    # The log-out: the record is gone and the cookie expired.
    response = client.post("/admin/logout/")
    assert response.status_code == 200
    assert (
        response.cookies["sessionid"].value == "" and response.cookies["sessionid"]["max-age"] == 0
    )
    assert not _exists(changed)
    assert client.get("/admin/").status_code == 302  # to the log-in page


def test_the_test_clients_login_works(storage: str) -> None:
    """``client.login()`` and ``force_login()`` build the session through SESSION_ENGINE."""
    user = _admin("client")
    client = Client()
    assert client.login(username=user, password=PASSWORD)
    assert client.get("/admin/").status_code == 200
    other = Client()
    other.force_login(get_user_model().objects.get(username=user))
    assert other.get("/admin/").status_code == 200
    assert _key(client) != _key(other)


@pytest.mark.redis
def test_an_outage_answers_503_and_logs_nobody_out(durable_redis: ServerProcess) -> None:
    with using(f"{durable_redis.url}?prefix=outage-{os.urandom(3).hex()}:&socket_timeout=2"):
        client = Client()
        assert client.login(username=_admin("outage"), password=PASSWORD)
        key = _key(client)
        durable_redis.stop()
        try:
            for method, path in [
                ("get", "/admin/"),
                ("get", "/admin/login/"),
                ("post", "/admin/logout/"),
            ]:
                response = getattr(client, method)(path)
                assert response.status_code == 503, (path, response.status_code)
                assert response.cookies == {} and response["Cache-Control"] == "no-store"
        finally:
            durable_redis.start()
        assert _key(client) == key
        assert "Site administration" in client.get("/admin/").content.decode()  # still in


# -- manage.py ----------------------------------------------------------------------------------


def _manage(project: Path, storage: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=project_env(project, storage),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_manage_py_check_is_clean(project: Path) -> None:
    done = _manage(project, "memory://", "check")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_manage_py_check_names_a_bad_setting(project: Path) -> None:
    done = _manage(project, "redis://localhost:6379/0?prefx=app:", "check")
    assert done.returncode != 0
    assert "sessionkit.E001" in done.stderr and 'SESSIONKIT["storage"]' in done.stderr, done.stderr


def test_manage_py_clearsessions_purges_expired_sessions(project: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sessions.db"
    with using(url):
        kept = SessionStore()
        kept["a"] = 1
        kept.save()
        expiring = SessionStore()
        expiring["a"] = 1
        expiring.set_expiry(1)
        expiring.save()
        storage = get_store().storage
        assert storage.count() == 2  # type: ignore[attr-defined]
        time.sleep(1.1)
        done = _manage(project, url, "clearsessions")
        assert done.returncode == 0, done.stderr
        assert storage.count() == 1 and _exists(kept.session_key)  # type: ignore[attr-defined]


# -- gunicorn -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _gunicorn(project: Path, storage: str, log: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "mysite.wsgi:application", "--bind", f"{HOST}:{port}"]
    argv += ["--workers", "1", "--threads", "4", "--chdir", str(project), "--log-level", "warning"]
    argv += ["--graceful-timeout", "2"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=project_env(project, storage), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError, httpx.HTTPError):
                socket.create_connection((HOST, port), timeout=0.5).close()
                if httpx.get(f"{base}/admin/login/", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"gunicorn did not come up:\n{log.read_text()}"
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _session_cookie(response: httpx.Response) -> str | None:
    lines = [v for v in response.headers.get_list("set-cookie") if v.startswith("sessionid=")]
    assert len(lines) <= 1
    return lines[0] if lines else None


def _csrf(http: httpx.Client) -> str:
    return http.cookies["csrftoken"]


@pytest.mark.redis
def test_through_gunicorn_and_a_real_http_client(
    project: Path, durable_redis: ServerProcess, tmp_path: Path
) -> None:
    url = f"{durable_redis.url}?prefix=gunicorn-{os.urandom(3).hex()}:&socket_timeout=2"
    user = _admin("gunicorn")
    log = tmp_path / "gunicorn.log"
    with (
        _gunicorn(project, url, log) as base,
        using(url),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        page = http.get("/admin/login/")
        assert page.status_code == 200 and _session_cookie(page) is None  # nothing stored

        response = http.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": _csrf(http), "username": user, "password": PASSWORD},
        )
        assert response.status_code == 302, response.text[:2000]
        line = _session_cookie(response)
        assert line is not None
        assert re.search(r"; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax$", line), line
        key = http.cookies["sessionid"]
        assert _exists(key) and SessionStore(key)["_auth_user_id"]
        assert "Site administration" in http.get("/admin/").text

        durable_redis.stop()
        try:
            for _ in range(3):
                down = http.get("/admin/")
                assert down.status_code == 503 and _session_cookie(down) is None
                assert down.headers["cache-control"] == "no-store"
                assert "set-cookie" not in down.headers
        finally:
            durable_redis.start()
        assert "Site administration" in http.get("/admin/").text  # nobody logged out

        response = http.post("/admin/logout/", data={"csrfmiddlewaretoken": _csrf(http)})
        assert response.status_code == 200
        line = _session_cookie(response)
        assert line is not None and line.startswith('sessionid=""') and "Max-Age=0" in line
        assert not _exists(key)
        assert http.get("/admin/").status_code == 302
    text = log.read_text()
    assert "Traceback" not in text and "Internal Server Error" not in text, text
    assert text.count("answered 503 without Set-Cookie") == 1, text  # once per interval
