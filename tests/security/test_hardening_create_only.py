"""A new session never overwrites a live one, whatever id the generator returns.

New records used to be written with an upsert: an id that collided with a live session (a weak
custom ``key_generator``, two workers drawing the same id) overwrote that visitor's session
and handed its id to the newcomer -- a session takeover. Every backend now creates records
create-only (Redis ``SET NX``, SQL ``INSERT`` that leaves a live row alone, Mongo's duplicate
key); a collision draws a new id and tries again. On every backend, through both middlewares.
"""

from __future__ import annotations

import collections
import logging
import secrets

import pytest

from sessionkit import SessionKitError
from tests.web._support import Browser, CountingStorage, FakeClock, MakeClient, make_store


class Planted:
    """A sound generator, except that it returns the ids queued in :attr:`next` first."""

    def __init__(self) -> None:
        self.next: collections.deque[str] = collections.deque()

    def __call__(self) -> str:
        return self.next.popleft() if self.next else secrets.token_urlsafe(32)


async def test_a_colliding_new_id_never_overwrites_a_live_session(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    generator = Planted()
    store = make_store(clock, storage, key_generator=generator)
    client = make_client(store)
    victim = Browser(client)
    await victim.get("/set?user=victim")
    taken = victim.value
    assert taken is not None
    generator.next.append(taken)  # the next new session would be given the victim's id
    newcomer = Browser(client)
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await newcomer.get("/setid?user=mallory")
    assert reply.status == 200
    assert newcomer.value not in (None, taken)  # another id was drawn
    assert (await victim.get("/get?k=user")).text == '"victim"'  # untouched
    assert (await newcomer.get("/get?k=user")).text == '"mallory"'
    assert "names a live session" in caplog.text and taken not in caplog.text


async def test_a_regenerate_onto_a_live_id_moves_elsewhere(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    generator = Planted()
    store = make_store(clock, storage, key_generator=generator)
    client = make_client(store)
    victim, other = Browser(client), Browser(client)
    await victim.get("/set?user=victim")
    await other.get("/set?user=other")
    generator.next.append(victim.value or "")
    await other.get("/regenerate")
    assert other.value not in (None, victim.value)
    assert (await victim.get("/get?k=user")).text == '"victim"'
    assert (await other.get("/get?k=user")).text == '"other"'


async def test_a_generator_that_keeps_colliding_fails_and_stores_nothing(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    generator = Planted()
    store = make_store(clock, storage, key_generator=generator)
    client = make_client(store)
    victim = Browser(client)
    await victim.get("/set?user=victim")
    generator.next.extend([victim.value or ""] * 3)
    with pytest.raises(SessionKitError, match="ids in a row that name live sessions"):
        await client.get("/set?user=mallory")
    assert (await victim.get("/get?k=user")).text == '"victim"'
