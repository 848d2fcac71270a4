"""The cache's listener reads its socket itself (``ClientCache._drain``): however the server's
messages arrive (in one read or many, cut anywhere, over TLS), every change whose message
reached this machine before a read began is applied before that read looks.

Each test makes the changes from another client, waits until their messages are on this
machine's socket, and then reads once: one stale read is a failure.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from sessionkit_redis import RedisStorage, _cache
from tests._servers import ServerProcess, free_port, start_redis

from .test_client_cache import cached_url, wait_live

pytestmark = pytest.mark.redis

TTL = timedelta(minutes=5)
#: Long enough for a message the server wrote to reach a socket on the same machine.
ARRIVAL = 0.2


def change_many_then(raw: redis.Redis, prefix: str, count: int, last: str) -> None:
    """Change ``count`` keys with long names under ``prefix`` (their messages come to far
    more than one read of the socket), then ``last``, each acknowledged."""
    pipe = raw.pipeline(transaction=False)
    for n in range(count):
        pipe.set(f"{prefix}{'x' * 200}{n}", b"1")
    pipe.execute()
    raw.set(prefix + last, b"new")
    time.sleep(ARRIVAL)


def test_changes_larger_than_one_read_of_the_socket_are_all_applied(
    redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    storage = RedisStorage(cached_url(redis_url), prefix=prefix)
    try:
        cache = wait_live(storage)
        storage.set("k", b"old", TTL)
        assert storage.get("k") == b"old" and storage.get("k") == b"old"  # cached
        change_many_then(raw, prefix, 2000, "k")  # about 430 kB of key names
        assert storage.get("k") == b"new"
        deadline = time.monotonic() + 5
        while cache.stats["invalidated"] < 2001 and time.monotonic() < deadline:
            storage.get("k")  # the rest of the burst comes in
        hits = cache.stats["hits"]
        time.sleep(ARRIVAL)
        assert storage.get("k") == b"new" and storage.get("k") == b"new"
        assert cache.stats["hits"] > hits  # serving again, once the burst is all read
        assert cache.stats["invalidated"] >= 2001 and cache.stats["breaks"] == 0
    finally:
        storage.close()


def test_messages_cut_across_reads_are_put_together(
    redis_url: str, prefix: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven bytes per read: every message is cut, most of them several times."""
    monkeypatch.setattr(_cache, "CHUNK", 7)
    storage = RedisStorage(cached_url(redis_url), prefix=prefix)
    try:
        cache = wait_live(storage)
        for round_ in range(20):
            storage.set("k", b"old", TTL)
            storage.get("k")
            assert storage.get("k") == b"old" and cache.stats["hits"] >= round_ + 1
            change_many_then(raw, prefix, round_, "k")
            assert storage.get("k") == b"new", round_
        assert cache.stats["breaks"] == 0
    finally:
        storage.close()


def test_a_message_read_in_part_stops_hits_until_its_rest_is_in(
    redis_url: str, prefix: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message larger than the socket's buffers (a transaction changes every key in one
    turn of the server's loop, and they all go in one message), naming ``k`` last: the part
    that is in must not be taken for all of it. (The barrier after a large drain would hide
    the case; it is put out of reach here.)"""
    monkeypatch.setattr(_cache, "BEHIND_AT", 1 << 62)
    storage = RedisStorage(cached_url(redis_url), prefix=prefix)
    try:
        cache = wait_live(storage)
        storage.set("k", b"old", TTL)
        assert storage.get("k") == b"old" and storage.get("k") == b"old"
        pipe = raw.pipeline(transaction=True)
        for n in range(8000):
            pipe.set(f"{prefix}{'x' * 200}{n}", b"1")
        pipe.set(prefix + "k", b"new")
        pipe.execute()
        time.sleep(ARRIVAL)
        assert storage.get("k") == b"new"
        assert cache._reader is not None and cache._reader.has_data()  # it was cut
    finally:
        storage.close()


# -- over TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A private ``redis-server`` with a TLS port (a self-signed certificate made here):
    ``(rediss:// URL, the certificate's path)``."""
    where: Path = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server: ServerProcess = start_redis(
        "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )  # fmt: skip
    try:
        yield f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}", str(cert)
    finally:
        server.close()


def test_over_tls_every_change_is_seen_and_large_ones_too(
    tls_redis: tuple[str, str], prefix: str
) -> None:
    url, cert = tls_redis
    storage = RedisStorage(cached_url(url), prefix=prefix)
    raw = redis.Redis.from_url(url.split("?")[0], ssl_ca_certs=cert)
    try:
        cache = wait_live(storage)
        assert cache._tls
        for count in (0, 1, 2000):  # 2,000 long names: far more than one TLS record
            storage.set("k", b"old", TTL)
            storage.get("k")
            assert storage.get("k") == b"old"
            hits = cache.stats["hits"]
            change_many_then(raw, prefix, count, "k")
            assert storage.get("k") == b"new", count
        assert hits > 0 and cache.stats["breaks"] == 0
        time.sleep(_cache.PING_EVERY + 0.05)
        storage.get("k")  # a PING goes out over TLS ...
        time.sleep(ARRIVAL)
        storage.get("k")  # ... and its answer comes back: still live, still serving
        assert cache._serving(time.monotonic()) and cache.stats["breaks"] == 0
    finally:
        raw.close()
        storage.close()
