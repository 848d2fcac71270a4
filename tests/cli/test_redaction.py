"""Passwords never reach a terminal or a page: ``redact``, unparsable URLs, the demo."""

from __future__ import annotations

import pytest

import sessionkit
from sessionkit import ConfigError, PluginRegistry
from sessionkit._cli import main
from sessionkit._clitext import redact, scrub

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://u:s3cret@h:6379/0", "redis://u:***@h:6379/0"),
        ("redis://u:s3cret@[::1/0", "redis://u:***@[::1/0"),  # urlsplit refuses it
        ("redis://u:s3/cret@h:6379/0", "redis://u:***@h:6379/0"),  # urlsplit misreads it
        ("redis://u:s3?cret@h/0?db=1", "redis://u:***@h/0?db=1"),
        ("mongodb://u:s3cret@pw@h/app", "mongodb://u:***@h/app"),  # the last '@' ends it
        ("redis://s3cret@h/0", "redis://***@h/0"),  # a lone name may be a token: hidden
        ("redis://a b:s3cret@h/0", "redis://***@h/0"),  # an odd user name: hidden too
        ("redis://h/0?password=s3cret&x=1", "redis://h/0?password=***&x=1"),
        (
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=s3cret",
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***",
        ),
        (
            "x://h/?API_KEY=s3cret&Token=s3cret&SECRET=s3cret",
            "x://h/?API_KEY=***&Token=***&SECRET=***",
        ),
        ("redis:u:s3cret@h", "redis:u:***@h"),
        ("redis://h:6379/0?prefix=app:", "redis://h:6379/0?prefix=app:"),
        ("sqlite:////var/lib/x.db", "sqlite:////var/lib/x.db"),
        ("memory://", "memory://"),
        ("", ""),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize("url", ["\ud800://u:x@h", "://@", "@@@", "?&=&", "a://b:c@" * 1000])
def test_redact_never_raises(url: str) -> None:
    assert isinstance(redact(url), str)


def test_scrub_hides_the_secrets_a_message_quotes() -> None:
    url = "redis://u:s3cret\uff03@h/0"
    message = "netloc 'u:s3cret\uff03@h' contains invalid characters under NFKC normalization"
    assert SECRET not in scrub(message, url)
    assert scrub(f"cannot open {url}", url) == f"cannot open {redact(url)}"


@pytest.mark.parametrize(
    "url", ["redis://u:s3cret@[::1/0", "mongodb://u:s3cret@[::1/app", "redis://u:s3cret\uff03@h/0"]
)
def test_an_unparsable_url_is_a_config_error_without_the_password(url: str) -> None:
    for opener in (sessionkit.open_storage, PluginRegistry().open):
        with pytest.raises(ConfigError) as caught:
            opener(url)
        assert caught.value.field == "storage"
        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_the_cli_prints_no_password_for_an_unparsable_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "redis://u:s3cret@[::1/0"]) == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "redis://u:***@[::1/0" in captured.err
