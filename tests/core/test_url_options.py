"""A storage's URL options as a declared schema, read by the core (``sessionkit.storage``):
one set of rules for every plugin that declares ``Backend(options=...)``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import pytest

from sessionkit import ConfigError, open_storage
from sessionkit.storage import in_range, matches, option_names, parse_options


@attrs.frozen
class Options:
    path: str = attrs.field(metadata={"option": False})
    prefix: str = attrs.field(default="app:", validator=matches(r"[a-z:]{1,20}", "a short prefix"))
    size: int = attrs.field(default=10, validator=in_range(1, 100, integer=True))
    timeout: float = attrs.field(default=5.0, validator=in_range(0, 60, unit="seconds"))
    cap: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(in_range(1, integer=True))
    )
    tls: bool = False


def parse(**options: Any) -> dict[str, Any]:
    return parse_options(Options, options, backend="demo")


def test_the_options_are_the_fields_but_those_read_from_the_url_body() -> None:
    assert option_names(Options) == ["cap", "prefix", "size", "timeout", "tls"]


@pytest.mark.parametrize(
    ("given", "typed"),
    [
        ({"size": "42"}, {"size": 42}),
        ({"size": " 7 "}, {"size": 7}),
        ({"timeout": "0.25"}, {"timeout": 0.25}),
        ({"timeout": "3"}, {"timeout": 3.0}),
        ({"cap": ""}, {"cap": None}),
        ({"cap": "None"}, {"cap": None}),
        ({"cap": "5"}, {"cap": 5}),
        ({"tls": "yes"}, {"tls": True}),
        ({"tls": "off"}, {"tls": False}),
        ({"tls": "1"}, {"tls": True}),
        ({"prefix": "a:b"}, {"prefix": "a:b"}),
        ({"size": 9, "tls": True}, {"size": 9, "tls": True}),  # values given in code
    ],
)
def test_text_is_read_by_the_fields_type(given: dict[str, Any], typed: dict[str, Any]) -> None:
    assert parse(**given) == typed


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ({"size": "1_000"}, "size", "whole number"),
        ({"size": "+5"}, "size", "whole number"),
        ({"size": "1.5"}, "size", "whole number"),
        ({"size": "0"}, "size", "from 1 to 100"),
        ({"size": True}, "size", "from 1 to 100"),
        ({"size": 2.0}, "size", "from 1 to 100"),
        ({"timeout": "nan"}, "timeout", "finite"),
        ({"timeout": float("inf")}, "timeout", "seconds"),
        ({"timeout": "-1"}, "timeout", "seconds from 0 to 60"),
        ({"cap": "0"}, "cap", "at least 1"),
        ({"tls": "maybe"}, "tls", "true or false"),
        ({"prefix": "UPPER"}, "prefix", "a short prefix"),
    ],
)
def test_a_bad_value_names_its_option(given: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        parse(**given)
    assert caught.value.field == field


def test_an_unknown_option_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'prefix'") as caught:
        parse(prefx="other:")
    assert caught.value.field == "storage"


def test_a_field_read_from_the_url_body_is_not_an_option() -> None:
    with pytest.raises(ConfigError, match="unknown demo storage option 'path'"):
        parse(path="/etc/passwd")


def test_a_first_party_plugin_refuses_a_typo_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'purge_batch'"):
        open_storage("memory://?purge_bach=4")


def test_the_core_checks_options_before_the_storage_module_is_imported() -> None:
    """A plugin's options class lives in a light module: a bad option fails start-up without
    importing the storage (sqlite3, or a driver) at all."""
    script = """
import json, sys
from sessionkit import ConfigError, open_storage
try:
    open_storage("sqlite:///never.db?tabel=x")
except ConfigError as exc:
    print(json.dumps([str(exc), "sessionkit_sqlite._storage" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    message, imported = json.loads(done.stdout)
    assert "did you mean 'table'" in message
    assert not imported
