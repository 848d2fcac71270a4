"""The memory storage's URL options, declared for the core to read (``Backend(options=...)``).

Light on purpose: the plugin's entry point names this class, and the core imports it to check
a URL's options before the storage module is loaded.
"""

from __future__ import annotations

import attrs

from sessionkit.storage import in_range

__all__ = ["MemoryOptions"]


@attrs.frozen
class MemoryOptions:
    """``memory://?max_entries=N&purge_batch=N``: see :class:`~sessionkit_memory.MemoryStorage`.

    ``max_entries`` takes an empty value or ``none`` for no cap (the default).
    """

    max_entries: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(in_range(1, integer=True))
    )
    purge_batch: int = attrs.field(default=16, validator=in_range(1, integer=True))
