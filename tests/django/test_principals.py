"""Django's password change logs a user's other devices out, on every storage
(``SESSIONKIT = {"principal_key": "_auth_user_id"}`` and ``destroy_all``; issue 20).

Django alone only stops honouring the other sessions at their next request (the session auth
hash no longer matches), and leaves their records, holding the user's id, in the storage;
with sessionkit they are gone at once, and listed no more.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from sessionkit.django import SessionStore, get_store
from tests.django.conftest import _MARKS, STORAGES, url_for, using

NAME = "sessionid"


@pytest.fixture(params=[pytest.param(n, marks=_MARKS.get(n, ()), id=n) for n in STORAGES])
def indexed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    url = url_for(request, request.param, tmp_path)
    with (
        using(url, principal_key="_auth_user_id"),
        override_settings(ROOT_URLCONF="tests.django._views"),
    ):
        yield


@pytest.mark.usefixtures("indexed")
def test_a_password_change_logs_the_other_devices_out() -> None:
    name = f"principal-{secrets.token_hex(4)}"
    account = get_user_model().objects.create_user(name, password="Correct-Horse-7")
    laptop, phone, tablet = Client(), Client(), Client()
    keys = []
    for device in (laptop, phone, tablet):
        device.get("/login", {"u": name, "p": "Correct-Horse-7"})
        keys.append(device.cookies[NAME].value)
    assert sorted(get_store().sessions_for(str(account.pk))) == sorted(keys)

    assert laptop.get("/password", {"p": "Battery-Staple-8"}).json() == {"ended": 2}
    assert laptop.get("/user").json() == {"user": name}
    assert phone.get("/user").json() == {"user": "AnonymousUser"}
    assert not SessionStore().exists(keys[1]) and not SessionStore().exists(keys[2])
    assert get_store().sessions_for(str(account.pk)) == [laptop.cookies[NAME].value]
