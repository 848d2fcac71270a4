"""Encryption at rest: sealing a stored record, and opening it with any of the configured keys.

A sealed record is the plaintext envelope (:mod:`sessionkit._envelope`), whole, encrypted and
authenticated with ChaCha20-Poly1305 (the ``cryptography`` package)::

    MAGIC (4) | key id (8) | salt (16) | ciphertext | tag (16)

* ``MAGIC`` is ``b"\\xffSK1"``: ``0xff`` never starts UTF-8 text, so no plaintext envelope
  (which starts ``{"v":``) can be taken for a sealed one, or the other way round.
* The key id is the first 8 bytes of ``HMAC-SHA256(key, "sessionkit/key-id")``: it names the
  key a record was sealed with, so opening tries that key alone (not every key in turn), and
  ``sessionkit rekey`` skips records already under the first key without decrypting them. It
  says nothing about the key itself.
* Each record gets a key of its own, ``HMAC-SHA256(key, "sessionkit/record" | salt)`` from a
  16-byte random salt, used with an all-zero nonce (as ``age`` does): a random 96-bit nonce
  under one long-lived key would be safe for only about 2^32 writes, which a busy site's
  session saves reach in days; 128-bit salts push that bound past any deployment.
* The associated data is the header and the record's **storage key**: a ciphertext copied
  under another session's key does not open, so an attacker who can write to the storage
  cannot hand one user another user's session data.

The whole envelope is sealed, metadata included (creation time, save time, lifetime): the server
decrypts every record it loads anyway, and so a dump shows nothing but the key ids, the sizes
and what the backend's own TTL tells. See ``docs/security.md`` for the threat model.

Why ``cryptography``: it is the Python Cryptographic Authority's binding to OpenSSL, audited
and maintained, with wheels for every platform CPython runs on; its AEADs are one call each.
ChaCha20-Poly1305 rather than AES-GCM: constant time in software on every CPU (AES-GCM is
only safe and fast with AES instructions), and the cipher TLS 1.3 and ``age`` use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ._errors import ConfigError
from ._values import DecodeError

__all__ = [
    "KEY_BYTES",
    "MAGIC",
    "OVERHEAD",
    "Keyring",
    "aead_class",
    "is_sealed",
    "key_id",
    "parse_key",
    "parse_keys",
    "sealed_key_id",
]

MAGIC = b"\xffSK1"
KEY_BYTES = 32
_KID_BYTES = 8
_SALT_BYTES = 16
_HEADER = len(MAGIC) + _KID_BYTES + _SALT_BYTES
_TAG_BYTES = 16
#: Bytes a sealed record takes beyond its plaintext envelope.
OVERHEAD = _HEADER + _TAG_BYTES
_NONCE = bytes(12)
#: The fewest different byte values a key must hold: 32 random bytes show about 30, and fewer
#: than 16 has a chance below 1e-12; a key of zeros, or one word repeated, shows far fewer.
_MIN_DISTINCT = 16


def aead_class() -> Any:
    """The AEAD class, imported on first use: ``cryptography`` is the optional extra
    ``sessionkit[crypto]``, and a store without ``encryption_keys`` never needs it."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    except ImportError as exc:
        raise ConfigError(
            "encryption_keys",
            "encryption needs the 'cryptography' package (what the extra sessionkit[crypto] "
            "brings): pip install cryptography",
        ) from exc
    return ChaCha20Poly1305


def parse_key(field: str, value: object) -> bytes:
    """One key as 32 bytes: ``bytes`` of that length, or their base64url text (43 characters,
    or 44 with its ``=``, as ``secrets.token_urlsafe(32)`` and Fernet keys are).

    A key is refused (a :class:`ConfigError` naming ``field``, never showing the key) when it
    has another length or alphabet, or is visibly not random (a run of one byte, a word
    repeated): a typed password is not a key.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise ConfigError(field, "a text key must be base64url (A-Z a-z 0-9 - _)") from None
        if not text.isascii() or len(raw) != KEY_BYTES or "+" in text or "/" in text:
            raise ConfigError(
                field,
                f"a text key must be the base64url form of {KEY_BYTES} random bytes "
                f"(43 characters), got {len(text)} characters; make one with "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if len(raw) != KEY_BYTES:
            raise ConfigError(
                field, f"a key must be {KEY_BYTES} bytes (secrets.token_bytes(32)), got {len(raw)}"
            )
    else:
        raise ConfigError(
            field, f"a key must be bytes or base64url text, got {type(value).__name__}"
        )
    if len(set(raw)) < _MIN_DISTINCT:
        raise ConfigError(
            field, "a key must be random (secrets.token_bytes(32)); this one repeats a few bytes"
        )
    return raw


def parse_keys(field: str, value: object) -> tuple[bytes, ...]:
    """A non-empty sequence of distinct keys (see :func:`parse_key`), in order.

    A single key given bare is refused, not read as a sequence of characters or bytes.
    """
    if isinstance(value, str | bytes | bytearray):
        raise ConfigError(field, "expected a sequence of keys: write [key], not key")
    if not isinstance(value, Sequence):
        raise ConfigError(field, f"expected a sequence of keys, got {type(value).__name__}")
    if not value:
        raise ConfigError(field, "at least one key is needed (None turns encryption off)")
    keys = tuple(parse_key(field, item) for item in value)
    if len(set(keys)) != len(keys):
        raise ConfigError(field, "a key is listed twice")
    return keys


def key_id(key: bytes) -> bytes:
    """The 8-byte id a record sealed with ``key`` carries in the clear."""
    return hmac.digest(key, b"sessionkit/key-id", hashlib.sha256)[:_KID_BYTES]


def is_sealed(payload: bytes) -> bool:
    """Whether ``payload`` is a sealed record (by its magic bytes; not whether it opens)."""
    return payload[:4] == MAGIC


def sealed_key_id(payload: bytes) -> bytes | None:
    """The key id of a sealed record, ``None`` for anything else."""
    if not is_sealed(payload) or len(payload) < OVERHEAD:
        return None
    return payload[4 : 4 + _KID_BYTES]


@attrs.frozen
class Keyring:
    """The configured keys: the first seals, any opens.

    ``accept_plaintext``: whether a record that is not sealed (written before encryption was
    turned on) opens as it is. It does while a store migrates; once ``sessionkit rekey`` has
    sealed every record, refusing it stops an attacker who can write to the storage from
    planting a plaintext record of their choosing.
    """

    keys: tuple[bytes, ...] = attrs.field(repr=False)
    accept_plaintext: bool = True
    _ids: tuple[bytes, ...] = attrs.field(init=False, repr=False)
    _aead: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_ids", tuple(key_id(k) for k in self.keys))
        object.__setattr__(self, "_aead", aead_class())

    @classmethod
    def from_config(cls, keys: Iterable[bytes | str], accept_plaintext: bool) -> Keyring:
        """The keyring of ``Config.encryption_keys`` (already checked by the config)."""
        return cls(tuple(parse_key("encryption_keys", k) for k in keys), accept_plaintext)

    @property
    def current_id(self) -> bytes:
        """The key id new records are sealed under."""
        return self._ids[0]

    def seal(self, plaintext: bytes, storage_key: str) -> bytes:
        """``plaintext`` sealed under the first key, bound to ``storage_key``."""
        header = MAGIC + self._ids[0] + os.urandom(_SALT_BYTES)
        aead = self._aead(self._record_key(self.keys[0], header))
        sealed: bytes = aead.encrypt(_NONCE, plaintext, header + storage_key.encode())
        return header + sealed

    def open(self, payload: bytes, storage_keys: Iterable[str]) -> bytes:
        """The plaintext of ``payload`` read under one of ``storage_keys`` (its own name first;
        older names while ``storage_key_secret`` rotates); :class:`DecodeError` when no key
        opens it, when it was moved from another record, or when it is plaintext and refused.
        """
        if not is_sealed(payload):
            if self.accept_plaintext:
                return payload
            raise DecodeError("plaintext record refused (encryption is required)")
        if len(payload) < OVERHEAD:
            raise DecodeError("sealed record truncated")
        header = payload[:_HEADER]
        kid = header[4 : 4 + _KID_BYTES]
        keys = [k for k, i in zip(self.keys, self._ids, strict=True) if i == kid]
        if not keys:
            raise DecodeError("sealed with a key that is not configured")
        from cryptography.exceptions import InvalidTag

        body = payload[_HEADER:]
        if len(keys) > 1:  # two keys with one id (a chance of 2^-64): each tries every name
            storage_keys = list(storage_keys)
        for key in keys:
            aead = self._aead(self._record_key(key, header))
            for name in storage_keys:
                try:
                    plaintext: bytes = aead.decrypt(_NONCE, body, header + name.encode())
                except InvalidTag:
                    continue
                return plaintext
        raise DecodeError(
            "sealed record does not authenticate (tampered, or moved from another key)"
        )

    @staticmethod
    def _record_key(key: bytes, header: bytes) -> bytes:
        return hmac.digest(key, b"sessionkit/record" + header[-_SALT_BYTES:], hashlib.sha256)
