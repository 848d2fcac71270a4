"""Opening a memory storage: its options' types, by keyword and from a URL."""

from __future__ import annotations

from typing import Any

import pytest

from sessionkit import ConfigError, open_storage
from sessionkit_memory import MemoryStorage


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_entries": True}, "max_entries"),
        ({"max_entries": 1.9}, "max_entries"),
        ({"max_entries": "10"}, "max_entries"),
        ({"max_entries": 0}, "max_entries"),
        ({"purge_batch": None}, "purge_batch"),
        ({"purge_batch": 1.5}, "purge_batch"),
        ({"purge_batch": False}, "purge_batch"),
        ({"purge_batch": "16"}, "purge_batch"),
        ({"purge_batch": 0}, "purge_batch"),
        ({"clock": 3.0}, "clock"),
    ],
)
def test_constructor_takes_ints_only(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MemoryStorage(**options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("memory://?purge_batch=", {}, "purge_batch"),
        ("memory://?purge_batch=none", {}, "purge_batch"),
        ("memory://?purge_batch=0", {}, "purge_batch"),
        ("memory://?purge_batch=1.5", {}, "purge_batch"),
        ("memory://?max_entries=1_000", {}, "max_entries"),
        ("memory://?max_entries=-3", {}, "max_entries"),
        ("memory://?max_entries=many", {}, "max_entries"),
        ("memory://", {"max_entries": True}, "max_entries"),
        ("memory://", {"max_entries": 1.9}, "max_entries"),
        ("memory://", {"purge_batch": None}, "purge_batch"),
        ("memory://?bogus=1", {}, "storage"),
    ],
)
def test_bad_url_options_are_config_errors_naming_them(
    url: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        open_storage(url, **options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("url", "options", "max_entries", "purge_batch"),
    [
        ("memory://", {}, None, 16),
        ("memory://?max_entries=", {}, None, 16),
        ("memory://?max_entries=none", {}, None, 16),
        ("memory://?max_entries=None", {}, None, 16),
        ("memory://?max_entries=500&purge_batch=4", {}, 500, 4),
        ("memory://", {"max_entries": None, "purge_batch": 2}, None, 2),
        ("memory://", {"max_entries": 7}, 7, 16),
    ],
)
def test_good_options(
    url: str, options: dict[str, Any], max_entries: int | None, purge_batch: int
) -> None:
    storage = open_storage(url, **options)
    assert isinstance(storage, MemoryStorage)
    assert (storage.max_entries, storage.purge_batch) == (max_entries, purge_batch)
