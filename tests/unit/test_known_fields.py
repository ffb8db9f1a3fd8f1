"""An unknown field in a command names the known one closest to it, at its location."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.commands import (
    Command,
    SessionUpdates,
    describe_validation_error,
    parse_command,
)
from schemas.known_fields import closest_field, known_fields


def rejection(payload: dict, model=Command) -> str:
    with pytest.raises(ValidationError) as raised:
        parse_command(payload) if model is Command else model.model_validate(payload)
    return describe_validation_error(raised.value, model=model)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"type": "create_session", "command_id": "c-1", "sesion_id": "s-1"},
            "sesion_id: not a known field; did you mean session_id?",
        ),
        (
            {
                "type": "update_session",
                "command_id": "c",
                "session_id": "s",
                "updates": {"curency": "EUR"},
            },
            "updates.curency: not a known field; did you mean currency?",
        ),
        (
            {
                "type": "transition_session",
                "command_id": "c",
                "session_id": "s",
                "target": "canceled",
                "tagret": 1,
            },
            "tagret: not a known field; did you mean target?",
        ),
        # Nothing close: pydantic's own words, as before.
        (
            {"type": "cancel_session", "command_id": "c", "session_id": "s", "reason": "x"},
            "reason: Extra inputs are not permitted",
        ),
    ],
)
def test_a_command_with_an_unknown_field(payload, message):
    assert rejection(payload) == message


def test_updates_validated_alone_suggest_from_the_updates_fields():
    assert rejection({"shiping_address": {}}, SessionUpdates) == (
        "shiping_address: not a known field; did you mean shipping_address?"
    )


def test_without_the_model_nothing_is_suggested():
    with pytest.raises(ValidationError) as raised:
        parse_command({"type": "create_session", "command_id": "c-1", "sesion_id": "s-1"})
    assert describe_validation_error(raised.value) == "sesion_id: Extra inputs are not permitted"


def test_the_location_is_walked_through_tags_fields_and_list_items():
    assert "session_id" in known_fields(Command, ["update_session"])
    assert "currency" in known_fields(Command, ["update_session", "updates"])
    assert "total_amount" in known_fields(Command, ["update_session", "updates", "line_items", 0])
    assert known_fields(Command, ["update_session", "session_id"]) == []
    assert closest_field(Command, ["create_session", "comand_id"]) == "command_id"
    assert closest_field(Command, []) is None
