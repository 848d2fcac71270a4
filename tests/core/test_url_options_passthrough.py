"""A storage's URL options with its driver's passed through: ``driver_options`` declares which
names the driver takes and how each is checked, ``read_with`` a field's own reading; the core
still refuses every other name, suggesting the nearest of both sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from sessionkit import ConfigError
from sessionkit._url_options import (
    driver_options,
    folds_case,
    option_names,
    parse_options,
    query_options,
    read_with,
)


def _port(name: str, value: object) -> str:
    if not str(value).isdigit():
        raise ConfigError(name, f"must be a port number, got {value!r}")
    return str(value)


def _seconds_or_off(name: str, value: object) -> float | None:
    if value is None or value == "off":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected seconds or off, got {value!r}") from None


@attrs.frozen
class Options:
    path: str = attrs.field(metadata={"option": False})
    table: str = "sessions"
    timeout: float | None = attrs.field(default=5.0, metadata=read_with(_seconds_or_off))
    driver: Mapping[str, Any] = driver_options(
        ("sslmode", "application_name", "port"),
        lambda name, value: _port(name, value) if name == "port" else str(value),
        refused={"replication": "a replication connection cannot run statements"},
        what="a driver parameter",
    )


def parse(**options: Any) -> dict[str, Any]:
    return parse_options(Options, options, backend="demo")


def test_the_driver_field_is_not_an_option_of_its_own() -> None:
    assert option_names(Options) == ["table", "timeout"]
    with pytest.raises(ConfigError, match="unknown option"):
        parse(driver={"sslmode": "require"})


def test_driver_options_are_checked_and_collected_apart() -> None:
    typed = parse(table="t", sslmode="require", port="5433")
    assert typed == {"table": "t", "driver": {"sslmode": "require", "port": "5433"}}
    assert Options(path="p", **typed).driver == {"sslmode": "require", "port": "5433"}
    assert parse() == {"driver": {}}


def test_a_driver_option_is_checked_by_its_convert() -> None:
    with pytest.raises(ConfigError, match="port number") as caught:
        parse(port="x")
    assert caught.value.field == "port"


def test_a_refused_driver_option_gives_the_reason() -> None:
    with pytest.raises(ConfigError, match="replication connection") as caught:
        parse(replication="database")
    assert caught.value.field == "replication"
    assert "unknown" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "nearest"),
    [("tabel", "table"), ("sslmod", "sslmode"), ("applicaton_name", "application_name")],
)
def test_an_unknown_name_suggests_the_nearest_of_both_sets(name: str, nearest: str) -> None:
    with pytest.raises(ConfigError, match=f"did you mean {nearest!r}") as caught:
        parse(**{name: "x"})
    assert caught.value.field == name  # it may be the driver's, misspelt
    assert "neither the storage's own nor a driver parameter" in str(caught.value)


def test_an_unknown_name_near_nothing_lists_the_storage_options() -> None:
    with pytest.raises(ConfigError, match="known: table, timeout"):
        parse(zzz="1")


def test_a_field_reader_reads_text_and_values_given_in_code() -> None:
    assert parse(timeout="off") == {"timeout": None, "driver": {}}
    assert parse(timeout="1.5")["timeout"] == 1.5
    assert parse(timeout=2)["timeout"] == 2.0
    with pytest.raises(ConfigError, match="seconds or off") as caught:
        parse(timeout="soon")
    assert caught.value.field == "timeout"


def test_names_may_be_given_lazily_or_left_to_convert() -> None:
    calls: list[str] = []

    def names() -> list[str]:
        calls.append("asked")
        return ["sslmode"]

    def judge(name: str, value: object) -> object:
        if name != "known":
            raise ConfigError(name, "the driver does not know it")
        return value

    @attrs.frozen
    class Lazy:
        driver: Mapping[str, Any] = driver_options(names)

    @attrs.frozen
    class Judged:
        driver: Mapping[str, Any] = driver_options(None, judge)

    assert calls == []  # declaring the class asks nothing
    assert parse_options(Lazy, {"sslmode": "x"}, backend="lazy") == {"driver": {"sslmode": "x"}}
    assert calls == ["asked"]
    assert parse_options(Judged, {"known": 1}, backend="j") == {"driver": {"known": 1}}
    with pytest.raises(ConfigError, match="does not know") as caught:
        parse_options(Judged, {"other": 1}, backend="j")
    assert caught.value.field == "other"


def test_a_class_without_a_driver_field_refuses_as_before() -> None:
    @attrs.frozen
    class Plain:
        table: str = "t"

    with pytest.raises(ConfigError, match="unknown plain storage option 'tabel'") as caught:
        parse_options(Plain, {"tabel": "x"}, backend="plain")
    assert caught.value.field == "storage"


def test_a_query_is_read_as_open_storage_reads_it() -> None:
    assert query_options("a=1&b=&c=x%20y") == {"a": "1", "b": "", "c": "x y"}
    with pytest.raises(ConfigError, match="more than once") as caught:
        query_options("a=1&a=2")
    assert caught.value.field == "a"
    assert query_options("tags=a&Tags=b&tags=c", repeatable={"tags"}) == {"tags": "c", "Tags": "b"}


def test_driver_names_that_ignore_case_are_refused_twice_in_any_case() -> None:
    @attrs.frozen
    class Folded:
        driver: Mapping[str, Any] = driver_options(None, fold_case=True)

    with pytest.raises(ConfigError, match="more than once") as caught:
        query_options("retryWrites=false&retrywrites=true", fold_case=True)
    assert caught.value.field == "retryWrites"  # as first given
    # The query's names come first, keywords after: the keyword wins, whatever its case.
    given = {"retryWrites": "false", "appname": "a", "RETRYWRITES": True}
    assert parse_options(Folded, given, backend="f") == {
        "driver": {"appname": "a", "RETRYWRITES": True}
    }
    assert folds_case(Folded)
    assert not folds_case(Options)
    assert not folds_case(None)
