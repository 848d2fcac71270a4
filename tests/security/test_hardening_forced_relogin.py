"""Optional hardening: forced re-login with ``absolute_timeout``, end to end.

    "``absolute_timeout`` (default none). A hard cap counted from the session's creation,
    whatever the activity; ``regenerate()`` keeps the creation time, so logging in does not
    restart it. It must be at least ``expiration``." (``docs/concepts.md``)

Why it matters: OWASP's session guidance asks for an absolute timeout so that a session --
and a stolen copy of its cookie -- dies after a fixed time however busy it is, forcing the
user to authenticate again. Requirement 11 (``test_11_absolute_timeout.py``) proves the cap on
the store; these tests walk a whole working day of a user through the middleware, the way an
application would use it: visit, log in with ``regenerate()``, stay active far beyond several
``expiration`` periods, get logged out at the deadline, log in again.

What the code does, and so what is tested (``sessionkit/_session.py``, ``_plan_new_id``):

* ``regenerate()`` keeps the session's creation time. The absolute clock of a session that
  was created anonymously (a cart, a consent banner) and then logged in keeps counting from
  that first visit, not from the log-in.
* ``reset()`` and ``destroy()`` start a new session with a new creation time. An app that wants
  the clock to start at log-in can ``reset()`` there (losing the anonymous data).
* At the deadline, a request that only reads sees an empty session and gets no ``Set-Cookie``
  (the stale cookie is left alone, see ``sessionkit/_response.py``); the first request that
  writes gets a new cookie with a new id. The old id is never adopted again.

Each test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

from datetime import timedelta

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._records import raw_storage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

EXPIRATION = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
STEP = 20 * 60  # a request every 20 minutes: the 30 minute idle timeout never hits


def _store(clock: FakeClock, storage: CountingStorage) -> Store:
    return make_store(clock, storage, expiration=EXPIRATION, absolute_timeout=ABSOLUTE)


def _outlive_in_backend(store: Store, browser: Browser) -> None:
    """Make the backend keep the browser's record for a day: a backend whose TTL runs late
    (Redis on its own clock, a Mongo sweep) must change nothing -- the server ends it."""
    assert browser.value is not None
    assert raw_storage(store.storage).touch(store.storage_key(browser.value), timedelta(days=1))


async def _active_until(
    browser: Browser, clock: FakeClock, deadline: float, key: str = "user", value: str = '"ada"'
) -> int:
    """Read ``key`` every ``STEP`` until just before ``deadline``, expecting ``value`` each time;
    return how many requests that took."""
    requests = 0
    while clock.now + STEP < deadline:
        clock.advance(STEP)
        reply = await browser.get(f"/get?k={key}")
        assert reply.text == value, f"logged out {deadline - clock.now:.0f} s early"
        requests += 1
    return requests


async def test_working_day_login_activity_then_forced_logout_and_relogin(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = _store(clock, storage)
    browser = Browser(make_client(store))
    visit = clock.now
    deadline = visit + ABSOLUTE.total_seconds()

    # An anonymous visit that stores something: the session is created now.
    await browser.get("/set?cart=3")
    anonymous = browser.value
    # Log in a little later, the recommended way: a new id for the new privilege.
    clock.advance(STEP)
    reply = await browser.get("/regenerate?user=ada")
    assert reply.status == 200
    logged_in = browser.value
    assert logged_in not in (None, anonymous)
    assert store.get_by_id(anonymous or "") is None

    # Active all day: well beyond ten expiration periods, renewed as it goes.
    requests = await _active_until(browser, clock, deadline)
    assert requests * STEP > 10 * EXPIRATION.total_seconds()
    assert browser.value == logged_in
    clock.advance(deadline - 1 - clock.now)
    assert (await browser.get("/get?k=user")).text == '"ada"'  # one second left

    # The deadline: 8 h after the first visit (not after log-in: regenerate kept the clock).
    _outlive_in_backend(store, browser)
    clock.advance(1)
    reply = await browser.get("/get?k=user")
    assert reply.status == 200 and reply.text == "null"  # the app sees no user
    assert reply.header("set-cookie") == []  # a read-only request leaves the stale cookie
    assert (await browser.get("/all")).text == "{}"  # the cart went with it
    assert store.get_by_id(logged_in or "") is None

    # The first write replaces the cookie with a new id: the old one is never adopted.
    reply = await browser.get("/count")
    assert reply.text == "1"
    assert browser.value not in (None, logged_in, anonymous)

    # Logging in again opens a new 8 hour window.
    relogin = clock.now
    await browser.get("/regenerate?user=ada")
    await _active_until(browser, clock, relogin + ABSOLUTE.total_seconds())
    _outlive_in_backend(store, browser)
    clock.advance(relogin + ABSOLUTE.total_seconds() - clock.now)
    assert (await browser.get("/get?k=user")).text == "null"


async def test_regenerate_at_login_keeps_the_absolute_clock_of_the_anonymous_session(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Documented behaviour: ``regenerate()`` does not restart the absolute timeout."""
    store = _store(clock, storage)
    browser = Browser(make_client(store))
    created = clock.now
    await browser.get("/set?cart=1")
    # Four hours of anonymous browsing keep the session alive ...
    await _active_until(browser, clock, created + 4 * 3600, key="cart", value="1")
    clock.advance(STEP)
    await browser.get("/regenerate?user=ada")  # ... then log in, about 4 h after the visit
    sid = browser.value
    assert sid is not None
    loaded = store.get_by_id(sid)
    assert loaded is not None and loaded.created == created

    await _active_until(browser, clock, created + ABSOLUTE.total_seconds())
    _outlive_in_backend(store, browser)
    clock.advance(created + ABSOLUTE.total_seconds() - clock.now)
    assert (await browser.get("/get?k=user")).text == "null"  # about 4 h after log-in


async def test_reset_at_login_starts_a_new_absolute_window(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """The alternative for apps that want the clock to start at log-in: ``reset()`` (new id,
    anonymous data dropped, new creation time)."""
    store = _store(clock, storage)
    browser = Browser(make_client(store))
    first_visit = clock.now
    await browser.get("/set?cart=1")
    clock.advance(25 * 60)
    await browser.get("/reset?then_user=ada")
    login = clock.now
    sid = browser.value
    assert sid is not None
    loaded = store.get_by_id(sid)
    assert loaded is not None and loaded.created == login and dict(loaded) == {"user": "ada"}

    await _active_until(browser, clock, first_visit + ABSOLUTE.total_seconds() + STEP)
    clock.advance(login + ABSOLUTE.total_seconds() - 1 - clock.now)
    assert (await browser.get("/get?k=user")).text == '"ada"'  # past first visit + 8 h
    _outlive_in_backend(store, browser)
    clock.advance(1)
    assert (await browser.get("/get?k=user")).text == "null"  # login + 8 h


async def test_without_absolute_timeout_the_same_day_never_logs_out(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Control: the opt-in is what logs the user out; idle expiry alone never would here."""
    store = make_store(clock, storage, expiration=EXPIRATION)
    browser = Browser(make_client(store))
    start = clock.now
    await browser.get("/set?user=ada")
    await _active_until(browser, clock, start + 2 * ABSOLUTE.total_seconds())
    assert (await browser.get("/get?k=user")).text == '"ada"'


async def test_the_cookie_max_age_counts_down_to_the_deadline(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Honest browsers drop the cookie at the deadline by themselves: near the end, the
    refreshed cookie's Max-Age is the time left, not a full ``expiration``."""
    store = _store(clock, storage)
    browser = Browser(make_client(store))
    deadline = clock.now + ABSOLUTE.total_seconds()
    await browser.get("/set?user=ada")
    await _active_until(browser, clock, deadline - 15 * 60)
    clock.advance(deadline - 10 * 60 - clock.now)
    reply = await browser.get("/count")  # a write 10 minutes before the deadline
    assert reply.cookie.attrs["max-age"] == str(10 * 60)
