"""CHECKOUT_MAX_COMMAND_BYTES: every producer refuses a longer command, before sending."""

from __future__ import annotations

import json
import re

import pytest

from tasks.producer import InvalidCommand, prepare
from worker.delivery.journal import SCRIPT
from worker.delivery.protocol import LIMITS
from worker.settings import Settings, get_settings


@pytest.fixture
def limit_of_2_kib(monkeypatch):
    monkeypatch.setenv("CHECKOUT_MAX_COMMAND_BYTES", "2048")
    get_settings.cache_clear()
    yield 2048
    get_settings.cache_clear()


def command_of(note: str) -> dict:
    return {
        "type": "update_session",
        "command_id": "c-big",
        "session_id": "s-1",
        "updates": {"buyer": {"email": "m@example.com", "note": note}},
    }


@pytest.mark.parametrize("form", ["dict", "text", "bytes"])
def test_a_command_past_the_limit_is_refused_with_its_size(limit_of_2_kib, form):
    command = command_of("é" * 1024)  # 2 KiB of UTF-8 in one field, and the rest
    text = json.dumps(command, ensure_ascii=False)
    given = {"dict": command, "text": text, "bytes": text.encode()}[form]

    with pytest.raises(
        InvalidCommand,
        match=r"^command: \d+ bytes of JSON, more than "
        r"CHECKOUT_MAX_COMMAND_BYTES \(2048\)$",
    ):
        prepare(given)


def test_a_command_within_the_limit_goes(limit_of_2_kib):
    assert prepare(command_of("é" * 900)).command_id == "c-big"


def test_the_limits_agree_with_the_protocol_spec():
    assert Settings().max_command_bytes == LIMITS["max_command_bytes"] == 256 * 1024
    (script_limit,) = re.findall(r"local MAX_COMMAND_BYTES = (\d+)", SCRIPT)
    assert int(script_limit) == LIMITS["script_max_command_bytes"] == 400_000
