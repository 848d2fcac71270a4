"""In-process session storage for sessionkit, the default backend (``memory://``)."""

from ._storage import MemoryStorage

__all__ = ["MemoryStorage"]
