"""``sessionkit demo``: a small real web app showing sessions at work.

A log-in form (``regenerate()`` on log-in), a counter, a cart of registered ``CartItem``
values, log-out (``destroy()``), "log in again" (a new id, the same data) and a page listing
what the session holds. Starlette and uvicorn are needed to run it; they are imported only
when the demo is.
"""

from ._pages import CartItem

__all__ = ["DEMO_DEPENDENCIES", "CartItem", "default_storage_url"]

#: The packages the demo needs beyond sessionkit itself.
DEMO_DEPENDENCIES = ("starlette", "uvicorn")


def default_storage_url() -> str:
    """The embedded default: the SQLite plugin when installed (a file here), else memory."""
    from .._discovery import available_backends

    schemes = {s for b in available_backends() for s in b.backend.schemes}
    return "sqlite:///sessionkit-demo.db" if "sqlite" in schemes else "memory://"
