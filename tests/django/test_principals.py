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
from sessionkit_memory import MemoryStorage
from tests.django.conftest import _MARKS, STORAGES, url_for, using
from tests.web._support import CountingStorage

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


def test_a_save_of_a_signed_in_session_does_not_index_it_again() -> None:
    """The index is written at log-in; later saves that keep the user (a message, a cart)
    cost what they did without ``principal_key``: no read or write of the user's index."""
    storage = CountingStorage(MemoryStorage())
    with (
        using(storage, principal_key="_auth_user_id"),
        override_settings(ROOT_URLCONF="tests.django._views"),
    ):
        name = f"principal-{secrets.token_hex(4)}"
        get_user_model().objects.create_user(name, password="Correct-Horse-7")
        client = Client()
        client.get("/login", {"u": name, "p": "Correct-Horse-7"})
        assert storage.calls["create"] >= 2  # the index, then the session
        storage.clear()
        for n in range(3):
            assert client.get("/put", {"cart": str(n)}).status_code == 200
        assert storage.calls["replace"] == 3  # one write per save
        assert storage.calls["replace_if"] == 0 and storage.calls["create"] == 0, storage.calls
