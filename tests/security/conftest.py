"""Fixtures for the security tests: the web suite's, so every requirement runs through the ASGI
and the WSGI middleware (``make_client``/``client``) on every backend (``storage``/``store``).

Each ``test_NN_<name>.py`` proves requirement NN of the security spec; ``docs/security.md``
maps each guarantee to its file.
"""

from __future__ import annotations

from tests.web.conftest import client, clock, kind, make_client, storage, store

__all__ = ["client", "clock", "kind", "make_client", "storage", "store"]
