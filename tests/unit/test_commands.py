"""Command schemas: parsing, validation messages and idempotency fingerprints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    CancelSession,
    CompleteSession,
    CreateSession,
    TransitionSession,
    UpdateSession,
    command_fingerprint,
    describe_validation_error,
    parse_command,
)

pytestmark = pytest.mark.unit

LINE_ITEM = {"type": "product", "total_amount": 1250, "sku": "W-1"}


def body(kind: str, **fields: Any) -> dict[str, Any]:
    command: dict[str, Any] = {"command_id": "cmd-1", "type": kind}
    if kind != "create_session":
        command["session_id"] = "cs_1"
    return command | fields


def update_body(updates: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return body("update_session", updates=updates, **fields)


def rejection(data: dict[str, Any] | str) -> str:
    with pytest.raises(ValidationError) as raised:
        parse_command(data)
    return describe_validation_error(raised.value)


def fingerprint(data: dict[str, Any]) -> str:
    return command_fingerprint(parse_command(data))


# ─── Parsing ───


@pytest.mark.parametrize(
    ("data", "model"),
    [
        (body("create_session"), CreateSession),
        (body("create_session", session_id="cs_1", currency="EUR"), CreateSession),
        (update_body({"line_items": [LINE_ITEM]}, expected_version=2), UpdateSession),
        (body("transition_session", target="ready_for_complete"), TransitionSession),
        (body("complete_session"), CompleteSession),
        (body("cancel_session"), CancelSession),
    ],
)
def test_each_command_type_parses(data: dict[str, Any], model: type) -> None:
    assert isinstance(parse_command(data), model)
    assert isinstance(parse_command(json.dumps(data)), model)
    assert isinstance(parse_command(json.dumps(data).encode()), model)


def test_create_defaults_to_usd_without_a_session_id() -> None:
    command = parse_command(body("create_session"))
    assert (command.currency, command.session_id) == ("USD", None)


def test_update_keeps_unknown_line_item_attributes() -> None:
    command = parse_command(update_body({"line_items": [LINE_ITEM]}))
    assert command.updates.line_items[0].model_dump() == {**LINE_ITEM, "id": None}
    assert command.body()["updates"] == {"line_items": [LINE_ITEM]}  # unset `id` left out


@pytest.mark.parametrize("command_id", ["x", "a" * 255])
def test_command_id_of_1_to_255_characters_is_accepted(command_id: str) -> None:
    assert parse_command(body("cancel_session", command_id=command_id)).command_id == command_id


@pytest.mark.parametrize("command_id", ["", "a" * 256])
def test_command_id_outside_1_to_255_characters_is_rejected(command_id: str) -> None:
    assert rejection(body("cancel_session", command_id=command_id)).startswith("command_id: ")


def test_unknown_top_level_key_is_rejected() -> None:
    assert rejection(body("cancel_session", reason="changed mind")) == (
        "reason: Extra inputs are not permitted"
    )


def test_unknown_update_field_is_rejected() -> None:
    assert (
        rejection(update_body({"coupon": "X"})) == "updates.coupon: Extra inputs are not permitted"
    )


@pytest.mark.parametrize(
    "field", ["line_items", "buyer", "shipping_address", "payment_instruments", "currency"]
)
def test_null_update_field_is_rejected_by_name(field: str) -> None:
    message = rejection(update_body({field: None}))
    assert message.startswith(f"updates.{field}: ")
    assert "must not be null" in message


@pytest.mark.parametrize("amount", [12.5, 12.0, "12", True])
def test_money_must_be_an_integer(amount: Any) -> None:
    line_item = {"type": "product", "total_amount": amount}
    assert rejection(update_body({"line_items": [line_item]})) == (
        "updates.line_items.0.total_amount: Input should be a valid integer"
    )


def test_float_money_in_json_is_rejected() -> None:
    document = '{"command_id": "c", "type": "update_session", "session_id": "cs_1", '
    document += '"updates": {"line_items": [{"type": "product", "total_amount": 12.0}]}}'
    assert rejection(document).startswith("updates.line_items.0.total_amount: ")


def test_money_beyond_javascript_safe_integers_is_rejected() -> None:
    line_item = {"type": "product", "total_amount": 2**53}
    assert rejection(update_body({"line_items": [line_item]})).startswith(
        "updates.line_items.0.total_amount: Input should be less than or equal to"
    )


def test_transition_target_must_be_a_status() -> None:
    assert rejection(body("transition_session", target="paid")).startswith("target: ")


def test_unknown_command_type_is_rejected() -> None:
    assert rejection(body("refund_session")).startswith("command: Input tag 'refund_session'")


# ─── describe_validation_error ───


def test_validation_error_path_has_no_union_tag_prefix() -> None:
    message = rejection(update_body({"line_items": [LINE_ITEM, {"type": "x"}]}))
    assert message == "updates.line_items.1.total_amount: Field required"
    assert "update_session" not in message


def test_validation_error_lists_at_most_five_problems() -> None:
    line_items = [{"type": "product", "total_amount": 0.5}] * 7
    problems = rejection(update_body({"line_items": line_items})).split("; ")
    assert len(problems) == 6
    assert problems[0].startswith("updates.line_items.0.total_amount: ")
    assert problems[-1] == "... and 2 more"


# ─── command_fingerprint ───


def test_fingerprint_ignores_command_id_and_key_order() -> None:
    first = update_body({"buyer": {"email": "a@example.com", "name": "Ada"}, "currency": "EUR"})
    second = dict(reversed(list(first.items())))
    second["command_id"] = "cmd-2"
    second["updates"] = {"currency": "EUR", "buyer": {"name": "Ada", "email": "a@example.com"}}
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(body("complete_session"), id="type"),
        pytest.param(body("cancel_session", session_id="cs_2"), id="session"),
    ],
)
def test_fingerprint_differs_by_type_and_session(other: dict[str, Any]) -> None:
    assert fingerprint(body("cancel_session")) != fingerprint(other)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(update_body({"currency": "USD"}), id="value"),
        pytest.param(update_body({"currency": "EUR"}, expected_version=3), id="expected_version"),
        pytest.param(update_body({"currency": "EUR", "continue_url": "https://x"}), id="field"),
    ],
)
def test_fingerprint_differs_by_body(other: dict[str, Any]) -> None:
    assert fingerprint(update_body({"currency": "EUR"})) != fingerprint(other)


def test_fingerprint_differs_by_transition_target() -> None:
    assert fingerprint(body("transition_session", target="incomplete")) != fingerprint(
        body("transition_session", target="ready_for_complete")
    )


def test_update_body_distinguishes_an_absent_field_from_a_set_one() -> None:
    absent = parse_command(update_body({}))
    emptied = parse_command(update_body({"line_items": []}))
    assert absent.updates.given() == {}
    assert emptied.updates.given() == {"line_items": []}
    assert absent.body()["updates"] == {}
    assert emptied.body()["updates"] == {"line_items": []}
    assert command_fingerprint(absent) != command_fingerprint(emptied)


def test_an_explicit_default_is_the_same_command_as_an_absent_one() -> None:
    implicit = parse_command({"type": "create_session", "command_id": "a", "session_id": "s"})
    explicit = parse_command(
        {"type": "create_session", "command_id": "b", "session_id": "s", "currency": "USD"}
    )
    assert command_fingerprint(implicit) == command_fingerprint(explicit)


def test_a_cart_whose_totals_would_pass_javascripts_safe_integers_is_refused() -> None:
    huge = {"type": "product", "total_amount": 2**52}
    with pytest.raises(ValidationError, match="would lose precision"):
        parse_command(
            {
                "type": "update_session",
                "command_id": "c",
                "session_id": "s",
                "updates": {"line_items": [huge, huge]},
            }
        )
