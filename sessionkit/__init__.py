"""sessionkit: server-side sessions for Python web apps, after Fiber's session middleware.

>>> from sessionkit import Store
>>> store = Store()                       # memory storage, 24 h sessions, cookie "session_id"
>>> session = store.load(None)            # what the middleware does for a request without a cookie
>>> session.set("user", "ada")
>>> session.save()
>>> store.get_by_id(session.id)["user"]
'ada'
"""

from ._abilities import CountableStorage, PurgeableStorage, ScannableStorage
from ._config import Config, KeyLookup, default_key_generator
from ._discovery import (
    InstalledBackend,
    PluginLoadWarning,
    PluginRegistry,
    available_backends,
    open_storage,
)
from ._errors import (
    ConfigError,
    SessionGone,
    SessionKitError,
    SessionTooLarge,
    StorageError,
    StorageNotFound,
)
from ._finish import ErrorResponse
from ._flash import flash, get_flashed_messages
from ._hookspec import Backend, hookimpl, hookspec
from ._loops import PerLoop
from ._session import Session
from ._storage import (
    AsyncFromSyncMixin,
    AtomicStorage,
    ConditionalStorage,
    CreatingStorage,
    Storage,
    ttl_seconds,
)
from ._store import Store
from ._version import __version__

__all__ = [
    "AsyncFromSyncMixin",
    "AtomicStorage",
    "Backend",
    "ConditionalStorage",
    "Config",
    "ConfigError",
    "CountableStorage",
    "CreatingStorage",
    "ErrorResponse",
    "InstalledBackend",
    "KeyLookup",
    "PerLoop",
    "PluginLoadWarning",
    "PluginRegistry",
    "PurgeableStorage",
    "ScannableStorage",
    "Session",
    "SessionGone",
    "SessionKitError",
    "SessionTooLarge",
    "Storage",
    "StorageError",
    "StorageNotFound",
    "Store",
    "__version__",
    "available_backends",
    "default_key_generator",
    "flash",
    "get_flashed_messages",
    "hookimpl",
    "hookspec",
    "open_storage",
    "ttl_seconds",
]
