"""Pages of a ``SCAN`` walk for a plan (``sessionkit.storage.run_plan``): redis-py gives the
walk as an iterator to sync code and as an async iterator to asyncio code, and a plan written
once takes a page with ``yield batches, TAKE, ()`` from either."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Generic, TypeVar

__all__ = ["TAKE", "Batches"]

_Item = TypeVar("_Item")

#: The next batch of a :class:`Batches` (an empty list at the end).
TAKE = ("take", "atake")


class Batches(Generic[_Item]):
    """The items of an iterator or an async iterator, ``size`` at a time (``yield batches,
    TAKE, ()``): a ``SCAN`` walk, which redis-py gives as one or the other, in pages."""

    __slots__ = ("items", "size")

    def __init__(self, items: Iterator[_Item] | AsyncIterator[_Item], size: int) -> None:
        self.items = items
        self.size = size

    def take(self) -> list[_Item]:
        return list(itertools.islice(self.items, self.size))  # type: ignore[arg-type]

    async def atake(self) -> list[_Item]:
        items: AsyncIterator[_Item] = self.items  # type: ignore[assignment]
        batch: list[_Item] = []
        async for item in items:
            batch.append(item)
            if len(batch) >= self.size:
                break
        return batch
