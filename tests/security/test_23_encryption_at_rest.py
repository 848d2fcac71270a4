"""Encryption at rest (``Config.encryption_keys``), see ``docs/security.md``:

    "With ``encryption_keys``, every stored record is encrypted and authenticated
    (ChaCha20-Poly1305) under the first key and bound to its storage key: the storage holds no
    plaintext value, a record no configured key opens (a removed key, a byte changed, a record
    moved under another session's key) is a lost session logged without the id, never a 500;
    plaintext records written before encryption still load and are sealed on their next write,
    unless ``encryption_required`` refuses them."

Why it matters: session data (a user id, a role, a basket, an OAuth token) sits in a database,
a Redis dump or a backup that more people and systems can read than the application itself.
Encrypted, a leaked copy tells nothing; authenticated and bound to its key, a copy an attacker
can *write* to cannot be edited, or swapped under another user's session to hand them its data.

Each request-level test runs through the ASGI middleware, the WSGI middleware and Flask, on
every backend; the raw records are read straight from the servers (``tests.security._records``).
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

import pytest

from sessionkit import Config, ConfigError, Store
from sessionkit._crypto import MAGIC, OVERHEAD
from sessionkit._store import fingerprint
from sessionkit.testing import FakeClock
from tests.security._crypto_support import WEB, key_of, new_key, records
from tests.security._records import plant, raw_storage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

K1, K2 = new_key(), new_key()
MARKER = "MARKER-4f1c-plaintext-canary"


@pytest.fixture(params=sorted(WEB))
def web(request: pytest.FixtureRequest) -> MakeClient:
    """The test app under ASGI, WSGI or Flask."""
    return WEB[request.param]


def _lost(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "sessionkit" and r.levelno == logging.WARNING and "unreadable" in r.message
    ]


def _assert_lost_without_the_id(caplog: pytest.LogCaptureFixture, sid: str) -> None:
    (warning,) = _lost(caplog)
    assert fingerprint(sid) in warning.getMessage()
    assert sid[:16] not in caplog.text


async def test_the_storage_holds_no_plaintext_value(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    store = make_store(clock, storage, encryption_keys=[K1])
    browser = Browser(web(store))
    await browser.get(f"/set?user={MARKER}&role=admin")
    await browser.get("/count")
    assert (await browser.get("/get?k=user")).text == f'"{MARKER}"'

    ((_, raw),) = records(storage, request)
    assert raw.startswith(MAGIC) and key_of(raw, K1) == K1
    for needle in (MARKER.encode(), b"admin", b'"v"', b'"d"', b"user"):
        assert needle not in raw


async def test_control_without_keys_the_marker_is_in_the_stored_bytes(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Control: the search above does find the marker when encryption is off."""
    browser = Browser(web(make_store(clock, storage)))
    await browser.get(f"/set?user={MARKER}")
    ((_, raw),) = records(storage, request)
    assert MARKER.encode() in raw


async def test_a_record_under_a_removed_key_never_opens_and_is_a_lost_session(
    web: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = Browser(web(make_store(clock, storage, encryption_keys=[K1])))
    await before.get("/set?user=ada&n=41")
    sid = before.value
    assert sid is not None

    after = web(make_store(clock, storage, encryption_keys=[K2]))  # K1 dropped
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await after.get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200 and reply.text == "1"  # nothing of the record was used
    assert reply.cookie.value != sid
    _assert_lost_without_the_id(caplog, sid)
    for path in ("/get?k=user", "/all", "/noop", "/id"):  # never a 500, whatever the route
        reply = await after.get(path, cookie=f"session_id={sid}")
        assert reply.status == 200 and "ada" not in reply.text


async def test_a_ciphertext_moved_under_another_records_key_does_not_open(
    web: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An attacker who can write to the storage copies the admin's record under their own
    session's key: the copy opens for no one."""
    store = make_store(clock, storage, encryption_keys=[K1])
    admin, mallory = Browser(web(store)), Browser(web(store))
    await admin.get("/set?user=admin")
    await mallory.get("/set?user=mallory")
    assert admin.value and mallory.value
    admins_record = raw_storage(storage).get(store.storage_key(admin.value))
    assert admins_record is not None
    plant(store, mallory.value, admins_record)

    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await mallory.get("/get?k=user")
    assert reply.status == 200 and reply.text == "null"
    _assert_lost_without_the_id(caplog, mallory.value)
    assert (await admin.get("/get?k=user")).text == '"admin"'  # the original still opens


@pytest.mark.parametrize("where", ["magic", "key-id", "salt", "ciphertext", "tag", "truncated"])
async def test_a_tampered_ciphertext_does_not_open(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, where: str
) -> None:
    store = make_store(clock, storage, encryption_keys=[K1])
    browser = Browser(web(store))
    await browser.get("/set?user=ada")
    sid = browser.value
    assert sid is not None
    raw = bytearray(raw_storage(storage).get(store.storage_key(sid)) or b"")
    at = {"magic": 1, "key-id": 6, "salt": 20, "ciphertext": OVERHEAD, "tag": len(raw) - 1}
    if where == "truncated":
        raw = raw[:-1]
    else:
        raw[at[where]] ^= 0x01
    plant(store, sid, bytes(raw))
    reply = await browser.get("/get?k=user")
    assert reply.status == 200 and reply.text == "null"


async def test_plaintext_records_load_and_are_sealed_on_their_next_write(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Turning encryption on logs nobody out: records written before still load, and each is
    sealed by its next write."""
    browser = Browser(web(make_store(clock, storage)))
    await browser.get(f"/set?user={MARKER}")
    sid = browser.value
    browser.client = web(make_store(clock, storage, encryption_keys=[K1]))

    assert (await browser.get("/get?k=user")).text == f'"{MARKER}"'
    ((_, raw),) = records(storage, request)
    assert key_of(raw, K1) == "plaintext"  # a read writes nothing
    await browser.get("/count")
    assert browser.value == sid  # the same session ...
    ((_, raw),) = records(storage, request)
    assert key_of(raw, K1) == K1 and MARKER.encode() not in raw  # ... sealed


async def test_plaintext_records_are_refused_when_encryption_is_required(
    web: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once every record is sealed, a plaintext one can only be a forgery (an attacker who
    can write to the storage, planting the session they want): refused."""
    store = make_store(clock, storage, encryption_keys=[K1], encryption_required=True)
    sid = store.new_id()
    forged = b'{"v":1,"c":%f,"t":%f,"l":null,"d":{"user":"admin","n":41}}' % (clock.now, clock.now)
    plant(store, sid, forged)
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await web(store).get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200 and reply.text == "1" and reply.cookie.value != sid
    _assert_lost_without_the_id(caplog, sid)


async def test_control_the_forged_plaintext_record_opens_without_encryption_required(
    web: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, encryption_keys=[K1])
    sid = store.new_id()
    plant(store, sid, b'{"v":1,"c":%f,"t":%f,"l":null,"d":{"n":41}}' % (clock.now, clock.now))
    assert (await web(store).get("/count", cookie=f"session_id={sid}")).text == "42"


async def test_expiry_is_enforced_from_the_sealed_metadata(
    web: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """The times the server judges expiry by are inside the seal, and still enforced."""
    store = make_store(clock, storage, encryption_keys=[K1], expiration=timedelta(minutes=10))
    browser = Browser(web(store))
    await browser.get("/set?user=ada")
    clock.advance(11 * 60)
    assert (await browser.get("/get?k=user")).text == "null"


def test_an_encrypted_record_read_without_keys_is_a_lost_session_saying_why(
    clock: FakeClock, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    sealed = make_store(clock, storage, encryption_keys=[K1])
    session = sealed.load(None)
    session["user"] = "ada"
    session.save()
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert make_store(clock, storage).get_by_id(session.id) is None
    assert "no encryption_keys are configured" in caplog.text


BAD_KEYS = {
    "a bare key, not a list": K1,
    "empty list": [],
    "short bytes": [b"k" * 16],
    "long bytes": [bytes(range(33))],
    "short text": ["c2hvcnQ"],
    "a password": ["correct horse battery staple"],
    "standard base64": ["+" * 43],
    "zeros": [bytes(32)],
    "a word repeated": [b"secret!!" * 4],
    "not a key": [42],
    "a key twice": [K1, K1],
}


@pytest.mark.parametrize("keys", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_bad_key_fails_at_construction_naming_encryption_keys_without_showing_it(
    keys: object,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Config(encryption_keys=keys)  # type: ignore[arg-type]
    assert caught.value.field == "encryption_keys"
    assert K1 not in str(caught.value) and "horse" not in str(caught.value)


def test_keys_and_secrets_never_show_in_a_repr() -> None:
    secret = new_key()
    config = Config(encryption_keys=[K1, K2], storage_key_secret=[secret, new_key()])
    assert K1 not in repr(config) and K2 not in repr(config) and secret not in repr(config)
    store = Store(config)
    assert K1 not in repr(store._keyring)


def test_encryption_required_without_keys_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Config(encryption_required=True)
    assert caught.value.field == "encryption_required"


def test_without_cryptography_encryption_keys_is_a_config_error_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The library is the optional extra: a deployment that forgot it fails at start-up."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(ConfigError) as caught:
        Config(encryption_keys=[K1])
    assert caught.value.field == "encryption_keys"
    assert "pip install cryptography" in str(caught.value)
    Config()  # without keys, nothing needs it
