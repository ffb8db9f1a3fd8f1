"""A CHECKOUT_* setting that does not validate is named with what it takes, every setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.cli.settings_errors import describe_settings_error, expected, is_settings_error
from worker.settings import Settings

# Settings that take any text: nothing to refuse.
FREE_TEXT = {
    "events_stream",
    "commands_queue",
    "bulk_queue",
    "key_prefix",
    "metrics_host",
    "payment_display_fields",
}
REFUSABLE = sorted(set(Settings.model_fields) - FREE_TEXT)


def error_for(monkeypatch: pytest.MonkeyPatch, **values: str) -> ValidationError:
    for name, value in values.items():
        monkeypatch.setenv(f"CHECKOUT_{name.upper()}", value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert is_settings_error(raised.value)
    return raised.value


@pytest.mark.parametrize("field", REFUSABLE)
def test_every_setting_that_can_be_wrong_names_its_variable_and_form(monkeypatch, field):
    message = describe_settings_error(error_for(monkeypatch, **{field: "-1 or so"}))
    variable = f"CHECKOUT_{field.upper()}"
    assert message.startswith(f"{variable}=-1 or so: expected ")
    assert "Input should" not in message  # pydantic's words name no variable
    assert "expected text" not in message


@pytest.mark.parametrize(
    ("field", "form"),
    [
        ("max_retries", "expected a whole number ≥ 0"),
        ("max_command_bytes", "expected a whole number from 1024 to 400000"),
        ("retry_backoff_max", "expected a number > 0"),
        ("dead_letter_ttl", "expected a number ≥ 60"),
        ("metrics_port", "expected a whole number from 1 to 65535 (or unset)"),
        ("redis_functions", "expected true or false (also 1/0, yes/no, on/off)"),
        ("dynamodb_client", "expected one of http, botocore"),
        ("log_format", "expected one of text, json"),
    ],
)
def test_the_form_comes_from_the_type_and_its_bounds(field, form):
    assert expected(Settings.model_fields[field]) == form


def test_a_url_password_is_masked_even_when_the_url_does_not_parse(monkeypatch):
    message = describe_settings_error(
        error_for(monkeypatch, redis_url="redis://ops:s3cr@t@h:port/0")
    )
    assert message.startswith("CHECKOUT_REDIS_URL=redis://ops:***@h:port/0: expected redis://")
    assert "s3cr" not in message


def test_control_characters_in_a_value_are_escaped(monkeypatch):
    message = describe_settings_error(error_for(monkeypatch, max_retries="1\n[INFO] forged"))
    assert "\n" not in message and "1\\x0a[INFO] forged" in message


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@h:6380/1?ssl_cert_reqs=none", "unix:///s"]
)
def test_the_redis_urls_redis_py_takes_are_taken(monkeypatch, url):
    monkeypatch.setenv("CHECKOUT_REDIS_URL", url)
    assert Settings().redis_url == url
