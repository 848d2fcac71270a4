"""The calls a MongoDB plan yields (``sessionkit.storage.run_plan``): pymongo's methods take
keyword arguments (``upsert=True``, ``return_document=...``), so a plan says each call with
:func:`call`."""

from __future__ import annotations

from typing import Any

from sessionkit.storage import PlanCall

__all__ = ["call"]


def call(target: Any, method: str | tuple[str, str], *args: Any, **kwargs: Any) -> PlanCall:
    """The call ``target.method(*args, **kwargs)``, for a plan to yield."""
    return target, method, args, kwargs
