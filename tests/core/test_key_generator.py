"""A custom ``key_generator`` is sampled at construction and a visibly weak one is refused.

docs/configuration.md ("key_generator") and docs/security.md (requirement 1) say what is
checked: 64 ids of one URL-safe shape of at least 22 characters, all different, differing from
one to the next in at least 21 positions (not a counter or a clock), over at least 62 different
characters (not hex, not digits), and no use of the ``random`` module found in the code the
generator names. The default generator is not sampled at all.
"""

from __future__ import annotations

import base64
import functools
import itertools
import random
import secrets
import string
import time
import uuid
from collections.abc import Callable
from random import choices

import pytest

from sessionkit import Config, ConfigError, Store, default_key_generator
from sessionkit._config import KEY_GENERATOR_SAMPLES, MIN_ID_ALPHABET, MIN_ID_CHANGES

URLSAFE = string.ascii_letters + string.digits + "-_"
ALNUM = string.ascii_letters + string.digits


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def counter() -> Callable[[], str]:
    """A counter from a random start, in the URL-safe alphabet: 43 characters, all 64 used."""
    count = itertools.count(secrets.randbits(250))
    return lambda: _b64(next(count).to_bytes(32, "big"))


def little_endian_counter() -> Callable[[], str]:
    """The same counter written lowest digit first: ids differ in their *first* characters."""
    count = itertools.count(secrets.randbits(250))
    return lambda: _b64(next(count).to_bytes(32, "little"))


def digit_counter() -> Callable[[], str]:
    count = itertools.count(10**42)
    return lambda: f"{next(count):043d}"


def clock() -> str:
    return _b64(time.time_ns().to_bytes(32, "big"))


def salted_clock() -> str:
    """A clock behind 10 random characters (60 bits): still a clock where it matters."""
    return secrets.token_urlsafe(8)[:10] + _b64(time.time_ns().to_bytes(24, "big"))


def mt_helper() -> str:
    return "".join(random.choice(URLSAFE) for _ in range(43))


def through_a_helper() -> str:
    return mt_helper()[::-1]


def importing_random() -> str:
    import random as rnd

    return "".join(rnd.choices(URLSAFE, k=43))


class SeededGenerator:
    """An object holding its own ``random.Random``: seeded, so every restart repeats the ids."""

    def __init__(self) -> None:
        self.rng = random.Random(1234)

    def __call__(self) -> str:
        return "".join(self.rng.choice(URLSAFE) for _ in range(43))


class SecretsGenerator:
    """An object whose ``__call__`` draws from ``secrets``: fine."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> str:
        self.made += 1
        return secrets.token_urlsafe(32)


SHARED_RNG = random.Random()
#: Five sound ids, handed out again and again.
POOL = [secrets.token_urlsafe(32) for _ in range(5)]
WEAK: list[tuple[str, Callable[[], Callable[[], object]], str]] = [
    # (id, factory of the generator, what the refusal says)
    ("counter", counter, "counter"),
    ("counter-little-endian", little_endian_counter, "counter"),
    ("counter-digits", digit_counter, "counter"),
    ("clock-time_ns", lambda: clock, "clock"),
    ("clock-behind-random-prefix", lambda: salted_clock, "clock"),
    ("uuid4-hex-padded", lambda: lambda: uuid.uuid4().hex.ljust(43, "0"), "16 different"),
    ("uuid4-hex-twice", lambda: lambda: (uuid.uuid4().hex * 2)[:43], "16 different"),
    ("uuid4-str", lambda: lambda: str(uuid.uuid4()), "17 different"),
    ("digits", lambda: lambda: "".join(secrets.choice(string.digits) for _ in range(43)), "10"),
    (
        "lowercase-and-digits",
        lambda: (
            lambda: "".join(
                secrets.choice(string.ascii_lowercase + "0123456789") for _ in range(43)
            )
        ),
        "36 different",
    ),
    ("constant", lambda: lambda: "A" * 43, "repeat"),
    ("two-values", lambda: itertools.cycle(["A" * 43, "B" * 43]).__next__, "repeat"),
    ("small-pool", lambda: functools.partial(secrets.choice, POOL), "repeat"),
    ("random.choices", lambda: lambda: "".join(random.choices(URLSAFE, k=43)), "random.choices"),
    (
        "from-random-import-choices",
        lambda: lambda: "".join(choices(URLSAFE, k=43)),
        "random.choices",
    ),
    (
        "random.getrandbits",
        lambda: lambda: _b64(random.getrandbits(256).to_bytes(32, "big")),
        "random.getrandbits",
    ),
    ("random.randbytes", lambda: lambda: _b64(random.randbytes(32)), "random.randbytes"),
    (
        "a-random.Random",
        lambda: lambda: "".join(SHARED_RNG.choice(URLSAFE) for _ in range(43)),
        "random.Random",
    ),
    ("seeded-object", SeededGenerator, "random.Random"),
    ("through-a-helper", lambda: through_a_helper, "random.choice"),
    ("importing-random", lambda: importing_random, "random.choices"),
    (
        "partial",
        lambda: functools.partial(lambda k: "".join(random.choices(URLSAFE, k=k)), 43),
        "random.choices",
    ),
]


@pytest.mark.parametrize(("factory", "why"), [pytest.param(f, w, id=i) for i, f, w in WEAK])
def test_a_weak_generator_is_refused_at_construction_saying_why(
    factory: Callable[[], Callable[[], str]], why: str
) -> None:
    generator = factory()
    with pytest.raises(ConfigError) as refused:
        Config(key_generator=generator)
    assert refused.value.field == "key_generator"
    assert why in str(refused.value)
    with pytest.raises(ConfigError, match="key_generator"):  # and through the Store
        Store(key_generator=factory())


SOUND: list[tuple[str, Callable[[], str]]] = [
    ("token_urlsafe-32", lambda: secrets.token_urlsafe(32)),
    ("token_urlsafe-16", lambda: secrets.token_urlsafe(16)),  # 22 characters, the minimum
    ("token_urlsafe-64", lambda: secrets.token_urlsafe(64)),
    ("partial", functools.partial(secrets.token_urlsafe, 32)),
    # Django's get_random_string: letters and digits from secrets.choice
    ("letters-and-digits-22", lambda: "".join(secrets.choice(ALNUM) for _ in range(22))),
    ("SystemRandom", lambda: "".join(random.SystemRandom().choice(URLSAFE) for _ in range(43))),
    ("fixed-prefix", lambda: "sess_" + secrets.token_urlsafe(32)),
    ("object", SecretsGenerator()),
]


@pytest.mark.parametrize("generator", [pytest.param(g, id=i) for i, g in SOUND])
def test_a_generator_drawing_from_secrets_is_accepted_every_time(
    generator: Callable[[], str],
) -> None:
    # The statistics must not refuse a sound generator by bad luck: 100 constructions each.
    for _ in range(100):
        Config(key_generator=generator)
    store = Store(key_generator=generator)
    assert store.is_valid_id(store.new_id())


def test_the_default_generator_is_not_sampled_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[int] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        drawn.append(1)
        return real(nbytes)

    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    config = Config()
    assert config.key_generator is default_key_generator
    assert drawn == []  # nothing sampled: construction costs microseconds
    assert len(config.key_generator()) == 43


def test_a_custom_generator_is_sampled_for_the_documented_number_of_ids() -> None:
    generator = SecretsGenerator()
    Config(key_generator=generator)
    assert generator.made == KEY_GENERATOR_SAMPLES == 64


def test_the_thresholds_are_the_documented_ones() -> None:
    assert (KEY_GENERATOR_SAMPLES, MIN_ID_ALPHABET, MIN_ID_CHANGES) == (64, 62, 21)


def test_a_generator_that_raises_is_a_config_error_chaining_the_cause() -> None:
    def broken() -> str:
        raise RuntimeError("no entropy today")

    with pytest.raises(ConfigError, match="no entropy today") as refused:
        Config(key_generator=broken)
    assert refused.value.field == "key_generator"
    assert isinstance(refused.value.__cause__, RuntimeError)


def test_a_generator_of_varying_length_is_refused_naming_the_lengths() -> None:
    with pytest.raises(ConfigError, match="one fixed length"):
        Config(key_generator=lambda: secrets.token_urlsafe(secrets.choice([32, 33])))
