"""STATE_URL: which values are taken, and the URL as logs show it (its password masked)."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigError
from shared.state.pg_url import masked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app:s3cret@db:5432/js?sslmode=require",
            "postgresql://app:***@db:5432/js?sslmode=require",
        ),
        ("postgres://app@db/js", "postgres://app@db/js"),
        (
            "postgresql://db/js?sslmode=verify-full&password=s3cret",
            "postgresql://db/js?sslmode=verify-full&password=***",
        ),
        ("postgresql://app:p%40ss@db/js", "postgresql://app:***@db/js"),
    ],
)
def test_a_urls_password_is_masked(url: str, shown: str) -> None:
    assert masked(url) == shown


@pytest.mark.parametrize(
    "url", ["", "postgresql://db/js", "postgres://u:p@db:5433/js?sslmode=disable"]
)
def test_empty_or_a_postgresql_url_is_taken(url: str) -> None:
    assert Settings.from_env({"STATE_URL": url}).state_url == url


@pytest.mark.parametrize(
    "url", ["mysql://u:s3cret@db/js", "db:5432/js", "postgresql://db:99999/js"]
)
def test_another_url_is_one_clear_error_without_its_value(url: str) -> None:
    with pytest.raises(ConfigError, match=r"STATE_URL must be empty .* or postgresql://") as e:
        Settings.from_env({"STATE_URL": url})
    assert "s3cret" not in str(e.value)
