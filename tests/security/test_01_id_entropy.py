"""Requirement 1 of ``docs/security.md``:

    "Ids come from ``secrets``: at least 128 bits of entropy (default 256), URL-safe alphabet,
    fixed length."

Why it matters: the session id is the only credential a visitor holds. An id drawn from a
predictable generator (``random``, a counter, a timestamp) or too short can be guessed, and a
guessed id is a hijacked session. A URL-safe alphabet and a fixed length let the server reject
anything else before it reaches the storage (requirement 3) and keep the id from breaking the
header it travels in (requirement 7).

The ids checked here are the ones the middlewares hand out in real responses (ASGI and WSGI);
the construction-time refusals of weak generators need no request and no storage.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import Config, ConfigError, Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import ALPHABET, ID_LENGTH, WELL_FORMED
from tests.web._support import MakeClient, make_store


def _urlsafe_bytes(sid: str) -> bytes:
    return base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))


async def test_ids_handed_out_are_the_urlsafe_text_of_32_bytes_drawn_from_secrets(
    make_client: MakeClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[int, bytes]] = []
    real_token_bytes = secrets.token_bytes

    def spy(nbytes: int | None = None) -> bytes:
        out = real_token_bytes(nbytes)
        drawn.append((len(out), out))
        return out

    # secrets.token_urlsafe draws through the module-level token_bytes, so this sees every draw
    monkeypatch.setattr(secrets, "token_bytes", spy)
    client = make_client(make_store(clock))
    drawn.clear()  # Config samples the generator at construction: count only what requests draw
    ids = [(await client.get("/set?a=1")).cookie.value for _ in range(64)]

    assert len(drawn) == len(ids)
    for sid, (nbytes, raw) in zip(ids, drawn, strict=True):
        assert nbytes == 32  # 256 bits
        assert _urlsafe_bytes(sid) == raw  # the id is exactly the secrets draw, nothing else
        assert len(sid) == ID_LENGTH and WELL_FORMED.match(sid)
    assert len(set(ids)) == len(ids)


def test_default_ids_use_the_whole_urlsafe_alphabet_at_one_fixed_length() -> None:
    generate = Config().key_generator
    ids = [generate() for _ in range(2000)]
    assert {len(sid) for sid in ids} == {ID_LENGTH}
    # 86,000 characters of 64 equally likely symbols: every one shows up, nothing else does
    assert set("".join(ids)) == set(ALPHABET)
    assert len(set(ids)) == len(ids)


def test_the_accepted_id_shape_is_the_generators_fixed_length() -> None:
    store = Store()
    sid = store.new_id()
    assert store.is_valid_id(sid)
    assert not store.is_valid_id(sid[:-1])
    assert not store.is_valid_id(sid + "A")


def test_a_generator_of_exactly_128_bits_is_accepted() -> None:
    store = Store(key_generator=lambda: secrets.token_urlsafe(16))  # 22 characters, 132 bits
    assert len(store.new_id()) == 22
    assert store.config.id_length == 22


@pytest.mark.parametrize(
    ("generator", "why"),
    [
        pytest.param(lambda: secrets.token_urlsafe(15), "120 bits", id="15-bytes"),
        pytest.param(lambda: secrets.token_urlsafe(16)[:21], "126 bits", id="21-chars"),
        pytest.param(lambda: secrets.token_hex(10), "80 bits of hex", id="hex-20"),
        pytest.param(
            lambda: base64.b64encode(secrets.token_bytes(33)).decode(), "'+' '/'", id="base64"
        ),
        pytest.param(
            lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(), "'='", id="padded"
        ),
        pytest.param(
            lambda: secrets.token_urlsafe(secrets.choice([32, 33])), "two lengths", id="varying"
        ),
        pytest.param(lambda: secrets.token_bytes(32), "bytes", id="bytes"),
        pytest.param(lambda: "0" * 43, "a constant", id="constant"),
    ],
)
def test_a_weak_or_unsafe_generator_is_refused_at_construction(
    generator: Callable[[], Any], why: str
) -> None:
    # "varying" may draw two equal lengths by chance at construction: try until it shows
    refused: list[str] = []
    for _ in range(64):
        try:
            Config(key_generator=generator)
        except ConfigError as exc:
            refused.append(exc.field)
            break
    assert refused == ["key_generator"], f"a generator with {why} was accepted"
