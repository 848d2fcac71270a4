"""Config validates at construction and names the field (api.md "Config"; security.md 6, 7, 11)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sessionkit import Config, ConfigError, SessionKitError, Store
from sessionkit_memory import MemoryStorage


class HalfStorage:
    """Has the sync half of the storage protocol only."""

    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        pass

    def delete(self, key: str) -> None:
        pass

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return False

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class Proxy:
    """A test double providing the storage methods through ``__getattr__`` only."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_defaults_match_the_contract() -> None:
    c = Config()
    assert c.expiration == timedelta(hours=24)
    assert c.absolute_timeout is None
    assert c.storage == "memory"
    assert c.key_lookup == "cookie:session_id"
    assert (c.cookie_domain, c.cookie_path) == ("", "/")
    assert c.cookie_secure is False and c.cookie_http_only is True
    assert c.cookie_same_site == "Lax" and c.cookie_session_only is False
    assert c.max_size == 65536
    assert len(c.key_generator()) == 43


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"key_lookup": "body:x"}, "key_lookup"),
        ({"key_lookup": "cookie:"}, "key_lookup"),
        ({"key_lookup": "cookie:a;b"}, "key_lookup"),
        ({"key_lookup": "header:bad name"}, "key_lookup"),
        ({"cookie_same_site": "sometimes"}, "cookie_same_site"),
        ({"cookie_same_site": "None"}, "cookie_same_site"),
        ({"expiration": timedelta(0)}, "expiration"),
        ({"expiration": timedelta(seconds=-1)}, "expiration"),
        ({"expiration": 3600}, "expiration"),
        ({"absolute_timeout": timedelta(seconds=-5)}, "absolute_timeout"),
        ({"absolute_timeout": timedelta(hours=1)}, "absolute_timeout"),
        ({"expiration": timedelta(days=401)}, "expiration"),  # beyond any browser's cookie
        ({"absolute_timeout": timedelta(days=401)}, "absolute_timeout"),
        ({"key_lookup": "header:Content-Length"}, "key_lookup"),  # framing
        ({"key_lookup": "header:set-cookie"}, "key_lookup"),  # another header's meaning
        ({"cookie_path": "no-slash"}, "cookie_path"),
        ({"cookie_path": "/a;Domain=evil"}, "cookie_path"),
        ({"cookie_domain": "example.com\r\nSet-Cookie: x=y"}, "cookie_domain"),
        ({"cookie_domain": "a.com; Secure"}, "cookie_domain"),
        ({"key_lookup": "cookie:__Host-sid"}, "cookie_secure"),
        (
            {"key_lookup": "cookie:__Host-sid", "cookie_secure": True, "cookie_path": "/app"},
            "cookie_path",
        ),
        (
            {"key_lookup": "cookie:__Host-sid", "cookie_secure": True, "cookie_domain": "a.com"},
            "cookie_domain",
        ),
        ({"key_lookup": "cookie:__Secure-sid"}, "cookie_secure"),
        ({"key_generator": lambda: "short"}, "key_generator"),
        ({"key_generator": lambda: "x" * 40}, "key_generator"),  # not random
        ({"key_generator": lambda: "a;b" * 20}, "key_generator"),
        ({"key_generator": "not callable"}, "key_generator"),
        ({"max_size": 0}, "max_size"),
        ({"max_size": True}, "max_size"),
        ({"storage": 42}, "storage"),
        ({"storage": ""}, "storage"),
        ({"storage": MemoryStorage}, "storage"),  # the class: every call would fail, a 503
        ({"storage": object()}, "storage"),
        ({"storage": HalfStorage()}, "storage"),  # sync methods only
        ({"storage": int}, "storage"),
        # a Domain browsers ignore or reject: no session would ever stick
        ({"cookie_domain": "http://example.com"}, "cookie_domain"),
        ({"cookie_domain": "https://example.com/"}, "cookie_domain"),
        ({"cookie_domain": "example.com:8000"}, "cookie_domain"),
        ({"cookie_domain": "example.com/app"}, "cookie_domain"),
        ({"cookie_domain": "a=b"}, "cookie_domain"),
        ({"cookie_domain": "example.com."}, "cookie_domain"),
        ({"cookie_domain": "..example.com"}, "cookie_domain"),
        ({"cookie_domain": "."}, "cookie_domain"),
        ({"cookie_domain": "a..example.com"}, "cookie_domain"),
        ({"cookie_domain": "-a.example.com"}, "cookie_domain"),
        ({"cookie_domain": "a-.example.com"}, "cookie_domain"),
        ({"cookie_domain": "a*.example.com"}, "cookie_domain"),
        ({"cookie_domain": "x" * 64 + ".com"}, "cookie_domain"),  # a label over 63
        ({"cookie_domain": ".".join(["a" * 63] * 4)}, "cookie_domain"),  # 255 > 253
        ({"cookie_domain": "bücher.example"}, "cookie_domain"),  # IDN: punycode only
        ({"cookie_domain": "[::1]"}, "cookie_domain"),
        ({"cookie_domain": "1.2.3"}, "cookie_domain"),  # read as an IPv4 address, a wrong one
        ({"cookie_domain": "256.1.1.1"}, "cookie_domain"),
        ({"cookie_domain": "010.0.0.1"}, "cookie_domain"),  # octal to a browser
        ({"cookie_domain": ".127.0.0.1"}, "cookie_domain"),
        ({"cookie_domain": 5}, "cookie_domain"),
        ({"cookie_secure": "yes"}, "cookie_secure"),
        ({"storage_key_secret": b"short"}, "storage_key_secret"),
        ({"storage_key_secret": 12345}, "storage_key_secret"),
    ],
)
def test_bad_field_fails_at_construction_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**fields)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SessionKitError)


def test_store_accepts_fields_or_config_and_fields_override() -> None:
    assert Store(cookie_secure=True).config.cookie_secure is True
    base = Config(key_lookup="header:X-Session")
    store = Store(base, cookie_path="/app")
    assert store.config.key_lookup == "header:X-Session" and store.config.cookie_path == "/app"
    with pytest.raises(ConfigError, match="cookie_same_site"):
        Store(base, cookie_same_site="None")


def test_same_site_is_normalised_and_none_with_secure_is_fine() -> None:
    assert Config(cookie_same_site="strict").cookie_same_site == "Strict"
    assert Config(cookie_same_site="none", cookie_secure=True).cookie_same_site == "None"


def test_host_prefix_accepted_when_rules_hold() -> None:
    Config(key_lookup="cookie:__Host-sid", cookie_secure=True)


def test_custom_fixed_length_generator_sets_id_shape() -> None:
    import secrets

    store = Store(key_generator=lambda: secrets.token_urlsafe(24))  # 32 characters
    assert store.is_valid_id(secrets.token_urlsafe(24))
    assert not store.is_valid_id("x" * 43)


def test_config_is_frozen() -> None:
    import attrs

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Config().cookie_secure = True  # type: ignore[misc]


def test_a_storage_class_is_refused_with_the_instance_to_pass() -> None:
    with pytest.raises(ConfigError, match=r"MemoryStorage\(\)") as info:
        Store(storage=MemoryStorage)
    assert info.value.field == "storage" and "instance" in str(info.value)


def test_a_storage_object_is_accepted_also_through_getattr() -> None:
    memory = MemoryStorage()
    assert Config(storage=memory).storage is memory
    store = Store(storage=Proxy(memory))
    session = store.load(None)
    session["a"] = 1
    session.save()
    assert store.get_by_id(session.id) is not None


@pytest.mark.parametrize(
    "domain",
    [
        "",  # the default: no Domain attribute, a host-only cookie
        "example.com",
        ".example.com",  # browsers ignore the leading dot
        "Example.COM",
        "localhost",
        "a-b.c0.example",
        "my_app.internal",  # underscores: browsers take them, container names carry them
        "web_1",
        "123.example.com",
        "xn--bcher-kva.example",  # an IDN, in punycode
        "x" * 63 + ".com",
        ".".join(["a" * 63] * 3 + ["a" * 61]),  # 253 characters
        "." + ".".join(["a" * 63] * 3 + ["a" * 61]),  # the leading dot is not counted
        "127.0.0.1",
        "192.168.0.10",
    ],
)
def test_host_names_and_ipv4_addresses_are_accepted_cookie_domains(domain: str) -> None:
    assert Config(cookie_domain=domain).cookie_domain == domain


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("http://example.com", "URL"),
        ("example.com:8000", "port"),
        ("example.com/app", "cookie_path"),
        ("a=b", "not a host name"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("..example.com", "browsers ignore it"),
    ],
)
def test_a_bad_cookie_domain_says_why(domain: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=r"^cookie_domain: ") as info:
        Config(cookie_domain=domain)
    assert reason in str(info.value)
