"""Opening a Redis storage: URL schemes, options, their precedence and their errors.

None of these talk to a server: building a storage does not connect.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import redis
import redis.asyncio

import sessionkit
from sessionkit import ConfigError
from sessionkit_redis import RedisStorage


def connection_kwargs(storage: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = storage._sync().get_connection_kwargs()
    return kwargs


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://example.com:6380/1", "unix:///tmp/redis.sock"]
)
def test_open_storage_picks_redis_for_each_scheme(url: str) -> None:
    storage = sessionkit.open_storage(url)
    try:
        assert isinstance(storage, RedisStorage)
        assert isinstance(storage, sessionkit.ConditionalStorage)
    finally:
        storage.close()


def test_unix_socket_path_and_db_come_from_the_url() -> None:
    storage = RedisStorage("unix:///run/redis/redis.sock?db=3")
    kwargs = connection_kwargs(storage)
    assert (kwargs["path"], kwargs["db"]) == ("/run/redis/redis.sock", 3)


def test_prefix_defaults_and_comes_from_query_or_keyword() -> None:
    assert RedisStorage("redis://h/0").prefix == "sessionkit:"
    assert RedisStorage("redis://h/0?prefix=app%3As%3A").prefix == "app:s:"
    assert RedisStorage("redis://h/0?prefix=url:", prefix="kw:").prefix == "kw:"
    assert sessionkit.open_storage("redis://h/0?prefix=url:", prefix="kw:").prefix == "kw:"  # type: ignore[attr-defined]


def test_query_values_are_typed_with_redis_py_parsers() -> None:
    storage = RedisStorage("redis://h:1/0?socket_timeout=2.5&health_check_interval=7")
    kwargs = connection_kwargs(storage)
    assert kwargs["socket_timeout"] == 2.5
    assert kwargs["health_check_interval"] == 7


def test_keywords_win_over_the_query_and_db_over_the_path() -> None:
    storage = sessionkit.open_storage(
        "redis://h:1/2?socket_timeout=9&db=4", socket_timeout=1.5, client_name="web"
    )
    kwargs = connection_kwargs(storage)
    assert (kwargs["socket_timeout"], kwargs["db"], kwargs["client_name"]) == (1.5, 4, "web")


def test_defaults_bound_a_call_to_five_seconds_and_the_pool_to_64() -> None:
    """A call waits at most 2 s for a free connection, then 3 s for its reply (2 s to
    reconnect): about 5 s in all. The pools block (wait) rather than refuse when full."""
    storage = RedisStorage("redis://h/0")
    kwargs = connection_kwargs(storage)
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (3.0, 2.0)
    pool = storage._sync().connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (64, 2.0)
    storage.close()


def test_pool_size_and_wait_come_from_the_url_or_keywords() -> None:
    storage = RedisStorage("redis://h/0?max_connections=8&pool_timeout=0.5")
    pool = storage._sync().connection_pool
    assert (pool.max_connections, pool.timeout) == (8, 0.5)
    storage.close()
    storage = RedisStorage("redis://h/0?max_connections=8", max_connections=300, pool_timeout=9)
    pool = storage._sync().connection_pool
    assert (pool.max_connections, pool.timeout) == (300, 9)
    storage.close()


@pytest.mark.parametrize(
    ("option", "values"),
    [
        # Timeouts: positive, at most a day. 1e308 used to pass and overflow at first use.
        ("socket_timeout", ["1e308", 1e308, 86_401, "1e10"]),
        ("socket_connect_timeout", ["1e308", 1e12, -0.0]),
        ("pool_timeout", ["0", "-1", "nan", "inf", 1e308, None, True, "soon"]),
        # Intervals: zero (off) to a day.
        ("health_check_interval", ["-1", 1e308, "nan", "1e20", "often"]),
        # Sizes: whole numbers in range.
        ("max_connections", ["0", "-3", 10**9, None, 2.5, True, "1e3"]),
        ("socket_read_size", ["0", 2**40, -1, 1.5]),
        ("db", [2**31, 10**30]),
        ("ssl_min_version", ["99", -3, 10**20]),
    ],
)
def test_numeric_options_out_of_range_are_refused_at_open(
    option: str, values: list[object]
) -> None:
    """Each used to be accepted at open and fail later (OverflowError or a server error at
    the first command), or never (a wait of 10**308 seconds)."""
    for value in values:
        for url, options in (
            (f"rediss://h/0?{option}={value}", {}),
            ("rediss://h/0", {option: value}),
        ):
            if not isinstance(value, str) and not options:
                continue  # only text goes in a URL
            with pytest.raises(ConfigError) as caught:
                RedisStorage(url, **options)
            assert caught.value.field == option, (url, options)


@pytest.mark.parametrize(
    ("option", "value", "read"),
    [
        ("socket_timeout", "86400", 86400.0),
        ("pool_timeout", "0.01", 0.01),
        ("health_check_interval", "0", 0),
        ("health_check_interval", "0.5", 0.5),
        ("max_connections", "100000", 100000),
        ("max_connections", "1", 1),
        ("socket_read_size", "65536", 65536),
        ("db", str(2**31 - 1), 2**31 - 1),
    ],
)
def test_numeric_options_at_their_bounds_are_taken(option: str, value: str, read: object) -> None:
    storage = RedisStorage(f"redis://h/0?{option}={value}")
    pool = storage._sync().connection_pool
    found = {**connection_kwargs(storage), "max_connections": pool.max_connections}
    found["pool_timeout"] = pool.timeout
    assert found[option] == read
    storage.close()


def test_timeout_alone_is_refused_as_ambiguous() -> None:
    with pytest.raises(ConfigError, match="pool_timeout") as caught:
        RedisStorage("redis://h/0?timeout=5")
    assert caught.value.field == "timeout"


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("redis://h/0?bogus=1", {}, "bogus"),
        ("redis://h/0", {"socket_timout": 1.0}, "socket_timout"),
        ("redis://h/0?socket_timeout=soon", {}, "socket_timeout"),
        ("redis://h/0?max_connections=many", {}, "max_connections"),
        ("redis://h/0?decode_responses=true", {}, "decode_responses"),
        ("redis://h/0", {"connection_class": object}, "connection_class"),
        ("redis://h/0?prefix=", {}, "prefix"),
        ("redis://h/0", {"prefix": 7}, "prefix"),
        ("redis://h:port/0", {}, "storage"),
        ("redis://h/0?prefx=a", {}, "prefx"),
    ],
)
def test_bad_options_are_config_errors_naming_them(
    url: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        sessionkit.open_storage(url, **options)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("name", ["prefix", "socket_timeout"])
def test_a_parameter_given_twice_is_refused_when_built_directly_too(name: str) -> None:
    """``open_storage`` refuses it before the plugin sees the URL; ``RedisStorage(url)`` must too."""
    with pytest.raises(ConfigError, match="more than once") as caught:
        RedisStorage(f"redis://h/0?{name}=1&{name}=2")
    assert caught.value.field == name


def test_client_arguments_are_checked() -> None:
    sync = redis.Redis()
    with pytest.raises(ConfigError, match="not both"):
        RedisStorage("redis://h/0", client=sync)
    with pytest.raises(ConfigError, match="needs a URL"):
        RedisStorage()
    with pytest.raises(ConfigError) as caught:
        RedisStorage(client=sync, socket_timeout=1.0)
    assert caught.value.field == "socket_timeout"
    with pytest.raises(ConfigError) as caught:
        RedisStorage(async_client=redis.asyncio.Redis(decode_responses=True))
    assert caught.value.field == "async_client"


def test_one_sided_storage_refuses_the_other_side() -> None:
    sync_only = RedisStorage(client=redis.Redis())
    with pytest.raises(ConfigError) as caught:
        sync_only._async()
    assert caught.value.field == "async_client"
    async_only = RedisStorage(async_client=redis.asyncio.Redis())
    with pytest.raises(ConfigError) as caught:
        async_only.get("k")
    assert caught.value.field == "client"


def test_listing_backends_does_not_import_redis() -> None:
    """The entry point is light: redis is imported when a storage is opened, not before."""
    code = (
        "import sys, sessionkit\n"
        "names = {b.backend.name for b in sessionkit.available_backends()}\n"
        "assert 'redis' in names, names\n"
        "assert 'redis' not in sys.modules, 'redis imported by discovery'\n"
        "sessionkit.open_storage('redis://127.0.0.1:1/0')\n"
        "assert 'redis' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_option_suggests_the_near_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'socket_timeout'"):
        RedisStorage("redis://h/0?socket_timout=1")
    with pytest.raises(ConfigError, match="did you mean 'prefix'"):
        RedisStorage("redis://h/0?prefx=a")


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("redis://h/0?socket_timeout=-1", {}, "socket_timeout"),
        ("redis://h/0?socket_timeout=0", {}, "socket_timeout"),
        ("redis://h/0?socket_timeout=nan", {}, "socket_timeout"),
        ("redis://h/0?socket_timeout=inf", {}, "socket_timeout"),
        ("redis://h/0", {"socket_timeout": -5}, "socket_timeout"),
        ("redis://h/0", {"socket_timeout": True}, "socket_timeout"),
        ("redis://h/0", {"socket_timeout": None}, "socket_timeout"),
        ("redis://h/0?socket_connect_timeout=-1", {}, "socket_connect_timeout"),
        ("redis://h/0", {"socket_connect_timeout": 0}, "socket_connect_timeout"),
        ("redis://h/0?protocol=4", {}, "protocol"),
        ("redis://h/0", {"protocol": 1}, "protocol"),
        ("rediss://h/0?ssl_cert_reqs=bogus", {}, "ssl_cert_reqs"),
        ("rediss://h/0", {"ssl_cert_reqs": "REQUIRED"}, "ssl_cert_reqs"),
        ("redis://h/0?client_name=a%20b", {}, "client_name"),
        ("redis://h/0", {"client_name": "a\nb"}, "client_name"),
        ("redis://h/0", {"client_name": 7}, "client_name"),
        ("redis://h/0?max_connections=0", {}, "max_connections"),
        ("redis://h/0", {"max_connections": None}, "max_connections"),  # no cap: refused
        ("redis://h/-1", {}, "db"),
        ("redis://h/abc", {}, "db"),
        ("redis://h/11/extra", {}, "db"),
        ("redis://h/0?retry_on_timeout=maybe", {}, "retry_on_timeout"),  # to_bool: yes
        ("redis://h/0?socket_keepalive=ture", {}, "socket_keepalive"),
        ("rediss://h/0", {"ssl_check_hostname": "sure"}, "ssl_check_hostname"),
        ("redis://h/1.5", {}, "db"),
        ("redis://h/abc", {"db": 3}, "db"),  # a bad path is refused even when db overrides it
        ("redis://h", {"db": -1}, "db"),
        ("redis://h", {"db": 1.0}, "db"),
        ("redis://h", {"db": True}, "db"),
        ("unix:///tmp/redis.sock?db=-2", {}, "db"),
        ("redis:h:6379/0", {}, "storage"),
    ],
)
def test_bad_values_are_refused_when_the_storage_opens(
    url: str, options: dict[str, Any], field: str
) -> None:
    """redis-py takes these silently and fails at the first command, or ignores them (a path
    that is no number meant db 0)."""
    with pytest.raises(ConfigError) as caught:
        RedisStorage(url, **options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("redis://h/0?socket_timeout=0.25&socket_connect_timeout=3", {}, {"socket_timeout": 0.25}),
        ("redis://h/0?protocol=3", {}, {"protocol": 3}),
        ("redis://h/0", {"protocol": 2}, {"protocol": 2}),
        ("redis://h/0?client_name=web-1", {}, {"client_name": "web-1"}),
        ("redis://h/99", {}, {"db": 99}),  # beyond the server's count: fails at first use
        ("redis://h/%31%32", {}, {"db": 12}),
        ("redis://h/", {}, {}),  # no db: redis-py's default, 0
        ("redis://h/5", {"db": 6}, {"db": 6}),
        ("redis://h/0?max_connections=4", {}, {}),
        ("redis://h/9/", {}, {"db": 9}),  # a trailing slash, as redis-py takes it
        ("redis://h/0?retry_on_timeout=no&socket_keepalive=YES", {}, {"retry_on_timeout": False}),
        ("redis://h/0", {"socket_keepalive": True}, {"socket_keepalive": True}),
    ],
)
def test_good_values_reach_the_connection(
    url: str, options: dict[str, Any], expected: dict[str, Any]
) -> None:
    storage = RedisStorage(url, **options)
    kwargs = connection_kwargs(storage)
    assert {name: kwargs[name] for name in expected} == expected
    storage.close()


@pytest.mark.parametrize("value", ["none", "optional", "required", None])
def test_ssl_cert_reqs_takes_redis_py_values(value: str | None) -> None:
    storage = RedisStorage("rediss://h/0", ssl_cert_reqs=value)
    storage.close()


def test_an_unparsable_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage("redis://u:s3cretpw@[::1/0")
    assert caught.value.field == "storage"
    assert "s3cretpw" not in str(caught.value)
    assert caught.value.__cause__ is None
