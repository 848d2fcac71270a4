"""Requirement 11 of ``docs/security.md``:

    "``absolute_timeout`` caps a session from its creation whatever the activity;
    ``absolute_timeout < expiration`` is a ``ConfigError``."

Why it matters: an idle timeout alone lets a session live forever as long as something keeps
using it -- a stolen cookie replayed by a script every few minutes stays valid indefinitely.
OWASP's session management guidance asks for an absolute cap that forces re-authentication.
The cap is counted from the creation time stored in the envelope, so activity, renewals and a
long backend TTL cannot stretch it; and a cap shorter than the idle timeout is a contradiction
that must fail when the application starts, not silently shorten every session.

Each HTTP test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionkit import Config, ConfigError, Store
from sessionkit.testing import FakeClock
from tests.security._records import envelope, plant, raw_storage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

EXPIRATION = timedelta(minutes=10)
ABSOLUTE = timedelta(hours=1)


def _capped(clock: FakeClock, storage: CountingStorage) -> Store:
    return make_store(clock, storage, expiration=EXPIRATION, absolute_timeout=ABSOLUTE)


async def test_session_active_every_few_minutes_still_ends_at_created_plus_absolute_timeout(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = _capped(clock, storage)
    browser = Browser(make_client(store))
    created = clock.now
    await browser.get("/set?user=ada")
    sid = browser.value
    assert sid is not None
    # A request every 4 minutes, alternating writes and reads: the idle timeout never hits.
    for step in range(14):
        clock.advance(240)
        path = "/count" if step % 2 else "/get?k=user"
        reply = await browser.get(path)
        assert reply.status == 200 and reply.text != "null", (step, reply.text)
    assert browser.value == sid
    clock.advance(created + ABSOLUTE.total_seconds() - 1 - clock.now)
    assert (await browser.get("/get?k=user")).text == '"ada"'  # one second before the cap
    # Keep the record in the backend well past the cap: only the envelope ends it.
    assert raw_storage(storage).touch(store.storage_key(sid), timedelta(days=1))
    clock.advance(1)

    reply = await browser.get("/get?k=user")
    assert reply.status == 200 and reply.text == "null"
    reply = await browser.get("/count")
    assert reply.text == "1"  # no n carried over: the old record was not adopted
    assert browser.value is not None and browser.value != sid
    assert store.get_by_id(sid) is None


async def test_planted_record_past_its_absolute_cap_is_refused_although_recently_saved(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = _capped(clock, storage)
    client = make_client(store)
    sid = store.new_id()
    cap = ABSOLUTE.total_seconds()
    plant(store, sid, envelope({"n": 41}, created=clock.now - cap, saved=clock.now - 1))
    reply = await client.get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200 and reply.text == "1" and reply.cookie.value != sid
    assert store.get_by_id(sid) is None


async def test_same_planted_record_within_the_cap_or_without_one_is_adopted(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Control: one second younger it is served; without ``absolute_timeout`` the old one is
    served too. So the refusal above is the absolute cap, and nothing else."""
    cap = ABSOLUTE.total_seconds()
    capped = _capped(clock, storage)
    young = capped.new_id()
    plant(capped, young, envelope({"n": 41}, created=clock.now - cap + 1, saved=clock.now - 1))
    reply = await make_client(capped).get("/count", cookie=f"session_id={young}")
    assert reply.text == "42" and reply.cookie.value == young

    uncapped = make_store(clock, storage, expiration=EXPIRATION)
    old = uncapped.new_id()
    plant(uncapped, old, envelope({"n": 41}, created=clock.now - 10 * cap, saved=clock.now - 1))
    reply = await make_client(uncapped).get("/count", cookie=f"session_id={old}")
    assert reply.text == "42" and reply.cookie.value == old


async def test_adding_absolute_timeout_ends_sessions_already_stored(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Turned on after the fact (a restart with a new config), the cap applies at the next load
    to sessions created before it existed."""
    browser = Browser(make_client(make_store(clock, storage, expiration=EXPIRATION)))
    await browser.get("/set?user=ada")
    for _ in range(20):  # 80 minutes of activity, renewed each time
        clock.advance(240)
        await browser.get("/count")
    assert (await browser.get("/get?k=user")).text == '"ada"'
    browser.client = make_client(_capped(clock, storage))
    assert (await browser.get("/get?k=user")).text == "null"


async def test_cookie_max_age_never_outlasts_the_absolute_deadline(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    browser = Browser(make_client(_capped(clock, storage)))
    created = clock.now
    await browser.get("/set?user=ada")
    sid = browser.value
    for _ in range(13):  # active every 4 minutes: 52 minutes in
        clock.advance(240)
        await browser.get("/count")
    clock.advance(180)  # 5 minutes left of the hour
    reply = await browser.get("/count")  # a write: would give 10 minutes without the cap
    assert reply.text == "14" and reply.cookie.value == sid
    deadline = created + ABSOLUTE.total_seconds()
    assert int(str(reply.cookie.attrs["max-age"])) <= deadline - clock.now == 300


@pytest.mark.parametrize(
    ("expiration", "absolute"),
    [
        (timedelta(hours=24), timedelta(hours=23, minutes=59, seconds=59)),
        (timedelta(minutes=30), timedelta(minutes=5)),
        (timedelta(hours=24), timedelta(seconds=1)),
    ],
)
def test_absolute_timeout_shorter_than_expiration_is_a_config_error_naming_the_field(
    expiration: timedelta, absolute: timedelta
) -> None:
    for build in (Config, Store):
        with pytest.raises(ConfigError, match="absolute_timeout") as info:
            build(expiration=expiration, absolute_timeout=absolute)
        assert info.value.field == "absolute_timeout"
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("absolute", [timedelta(0), timedelta(seconds=-1)])
def test_non_positive_absolute_timeout_is_a_config_error(absolute: timedelta) -> None:
    with pytest.raises(ConfigError) as info:
        Store(absolute_timeout=absolute)
    assert info.value.field == "absolute_timeout"


def test_absolute_timeout_equal_to_or_longer_than_expiration_is_accepted() -> None:
    assert Store(expiration=EXPIRATION, absolute_timeout=EXPIRATION).config.absolute_timeout
    assert Config(expiration=EXPIRATION, absolute_timeout=ABSOLUTE).absolute_timeout == ABSOLUTE
    assert Config().absolute_timeout is None  # opt-in
