"""JSON Schema contracts: committed copies are current, and README, models and service agree."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from pydantic import ValidationError

from schemas import jsonschema as contracts
from schemas.commands import parse_command
from schemas.events import ResultEvent
from tasks.cli import main as checkout
from tests.support.fakes import FakeClock, InMemorySessionStore, ListEventPublisher, SequentialIds
from tests.support.publishing import PublishingService

README = Path(__file__).resolve().parents[2] / "README.md"


@cache
def validator(name: str) -> Draft202012Validator:
    schema = contracts.SCHEMAS[name]()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator(name).iter_errors(instance)
    ]


# ─── Generation and the committed copies ───


@pytest.mark.parametrize("name", sorted(contracts.SCHEMAS))
def test_the_committed_schema_is_current(name: str) -> None:
    path = contracts.path_of(name)
    assert path.is_file(), f"{path} is missing: run `{contracts.WRITE_COMMAND}`"
    assert path.read_text("utf-8") == contracts.render(contracts.SCHEMAS[name]()), (
        f"{path} is stale: run `{contracts.WRITE_COMMAND}` and commit the result"
    )


@pytest.mark.parametrize("name", sorted(contracts.SCHEMAS))
def test_each_schema_is_draft_2020_12_with_an_id_title_and_description(name: str) -> None:
    schema = contracts.SCHEMAS[name]()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert validator_for(schema) is Draft202012Validator
    assert schema["$id"] and schema["title"] and schema["description"]


def test_rendering_is_deterministic_sorted_and_ends_with_a_newline() -> None:
    text = contracts.render(contracts.commands_schema())
    assert text == contracts.render(contracts.commands_schema())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_names_the_stale_file_and_exits_1(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(contracts, "SCHEMA_DIR", tmp_path)
    assert contracts.main(["--write"]) == 0
    assert contracts.main(["--check"]) == 0
    (tmp_path / "events.schema.json").write_text("{}\n")
    capsys.readouterr()
    assert contracts.main(["--check"]) == 1
    error = capsys.readouterr().err
    assert "events.schema.json is stale" in error and contracts.WRITE_COMMAND in error
    assert "commands.schema.json" not in error


@pytest.mark.parametrize("name", sorted(contracts.SCHEMAS))
def test_checkout_schema_prints_the_committed_file(name: str, capsys) -> None:
    assert checkout(["schema", name]) == 0
    assert capsys.readouterr().out == contracts.path_of(name).read_text("utf-8")


# ─── Commands ───

LINE_ITEM = {"type": "product", "total_amount": 1250, "sku": "W-1"}
READY_UPDATES = {
    "line_items": [{"type": "product", "total_amount": 1000, "id": "li_1", "sku": "W-1"}],
    "buyer": {"email": "buyer@example.com"},
    "shipping_address": {"line1": "1 Main St", "country": "US"},
    "payment_instruments": [{"type": "card", "token": "tok_secret", "brand": "visa"}],
}


def cmd(kind: str, **fields: Any) -> dict[str, Any]:
    command: dict[str, Any] = {"command_id": "cmd-1", "type": kind}
    if kind != "create_session":
        command["session_id"] = "cs_1"
    return command | fields


def costing(amount: Any) -> dict[str, Any]:
    return {**LINE_ITEM, "total_amount": amount}


# Taken from tests/unit/test_commands.py and test_service.py.
VALID_COMMANDS = {
    "create": cmd("create_session"),
    "create-named": cmd("create_session", session_id="cs_1", currency="EUR"),
    "update": cmd("update_session", updates={"line_items": [LINE_ITEM]}, expected_version=2),
    "update-ready": cmd("update_session", updates=READY_UPDATES),
    "update-empty": cmd("update_session", updates={}),
    "transition": cmd("transition_session", target="ready_for_complete"),
    "complete": cmd("complete_session"),
    "cancel": cmd("cancel_session", command_id="a" * 255),
}

INVALID_COMMANDS = {
    "unknown-type": cmd("refund_session"),
    "missing-command-id": {"type": "cancel_session", "session_id": "cs_1"},
    "empty-command-id": cmd("cancel_session", command_id=""),
    "unknown-key": cmd("cancel_session", reason="changed mind"),
    "unknown-update-field": cmd("update_session", updates={"coupon": "X"}),
    "update-without-session": {"command_id": "c", "type": "update_session", "updates": {}},
    "bad-target": cmd("transition_session", target="paid"),
    "string-money": cmd("update_session", updates={"line_items": [costing("12")]}),
    "unsafe-money": cmd("update_session", updates={"line_items": [costing(2**53)]}),
    **{
        f"null-{field}": cmd("update_session", updates={field: None})
        for field in (
            "line_items",
            "buyer",
            "shipping_address",
            "billing_address",
            "payment_instruments",
            "currency",
            "continue_url",
        )
    },
}


@pytest.mark.parametrize("command", VALID_COMMANDS.values(), ids=VALID_COMMANDS)
def test_valid_commands_validate(command: dict[str, Any]) -> None:
    parse_command(command)  # the models accept it too
    assert problems("commands", command) == []


@pytest.mark.parametrize("command", INVALID_COMMANDS.values(), ids=INVALID_COMMANDS)
def test_invalid_commands_fail(command: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_command(command)  # the models refuse it too
    assert problems("commands", command) != []


# ─── Events the real service publishes ───


@cache
def service_events() -> tuple[dict[str, Any], ...]:
    service = PublishingService(
        InMemorySessionStore(),
        publisher := ListEventPublisher(),
        clock=FakeClock(),
        new_session_id=SequentialIds(),
    )
    for command in (
        cmd("create_session", command_id="c-1", session_id="cs_1"),
        cmd("update_session", command_id="c-2", updates=READY_UPDATES),
        cmd("transition_session", command_id="c-3", target="incomplete"),  # invalid_transition
        cmd("create_session", command_id="c-4", session_id="cs_1"),  # version_conflict
        cmd("complete_session", command_id="c-5"),
        cmd("cancel_session", command_id="c-6"),  # session_closed
        cmd("create_session", command_id="c-7", session_id="cs_2", currency="EUR"),
        cmd("transition_session", command_id="c-8", target="requires_escalation",
            session_id="cs_2"),
        cmd("cancel_session", command_id="c-9", session_id="cs_2"),
        {"command_id": "c-10", "type": "update_session", "session_id": "cs_2",
         "updates": {"buyer": None}},  # validation_error
        {"type": "nonsense"},  # validation_error without ids
    ):  # fmt: skip
        service.handle(command)
    return tuple(publisher.parsed())


def test_the_service_flow_covers_each_kind_of_event() -> None:
    outcomes = {(e["type"], e.get("error", {}).get("code")) for e in service_events()}
    assert outcomes >= {
        ("session.created", None),
        ("session.updated", None),
        ("session.status_changed", None),
        ("session.completed", None),
        ("session.canceled", None),
        ("command.rejected", "invalid_transition"),
        ("command.rejected", "version_conflict"),
        ("command.rejected", "session_closed"),
        ("command.rejected", "validation_error"),
    }


def test_events_published_by_the_service_validate() -> None:
    for event in service_events():
        assert problems("events", event) == [], event


def dead_letter(**error: Any) -> dict[str, Any]:
    event = ResultEvent(
        event_id="e-1",
        type="command.dead_lettered",
        command_id="c-1",
        session_id="cs_1",
        version=None,
        occurred_at="2025-03-01T12:00:00.000Z",
        error={"message": "gave up after 10 attempts", **error},
    )
    return json.loads(event.to_json())


def test_a_dead_letter_event_validates_with_or_without_the_exception_type() -> None:
    assert problems("events", dead_letter(code="retries_exhausted", type="StoreUnavailable")) == []
    assert problems("events", dead_letter(code="undeliverable")) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"type": "command.dead_lettered"}, id="dead-letter-with-a-rejection-code"),
        pytest.param({"error": {"code": "worker_lost", "message": "x"}}, id="rejection-dead-code"),
        pytest.param({"type": "session.updated", "error": None}, id="session-event-no-session"),
        pytest.param({"type": "order.shipped"}, id="unknown-type"),
        pytest.param({"error": None}, id="rejection-without-error"),
    ],
)
def test_events_that_break_the_contract_fail(change: dict[str, Any]) -> None:
    rejection = next(e for e in service_events() if e["type"] == "command.rejected")
    event = {key: value for key, value in {**rejection, **change}.items() if value is not None}
    assert problems("events", event) != []


# ─── README examples ───


def readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README.read_text(), re.M | re.S)
    assert match, f"README.md has no section `## {title}`"
    return match.group(1)


def json_values(text: str) -> list[Any]:
    """Every JSON value in `text`: one per line, or spread over lines, one after another."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while (position := _skip_space(text, position)) < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def _skip_space(text: str, position: int) -> int:
    return len(text) - len(text[position:].lstrip())


def json_blocks(section: str) -> list[str]:
    return re.findall(r"^```json\n(.*?)^```", section, re.M | re.S)


def readme_examples() -> list[Any]:
    examples = []
    for block in json_blocks(readme_section("Commands")):
        examples += [pytest.param("commands", value, id="commands") for value in json_values(block)]
    # The Python example enqueues a JSON-compatible dict literal.
    for literal in re.findall(r"enqueue\((\{.*?\})\)", readme_section("The `checkout` CLI")):
        examples.append(pytest.param("commands", json.loads(literal), id="enqueue"))
    for block in json_blocks(readme_section("Result events")):
        # The README elides with `…`: `{…}` stands for a session snapshot, so a real one
        # from the service goes there; `"…"` (event_id, occurred_at) becomes a plain string.
        # A `…` inside a longer string ("Invalid transition: …") is already valid JSON.
        text = block.replace("{…}", json.dumps(service_events()[0]["session"]))
        text = text.replace('"…"', '"placeholder"')
        examples += [pytest.param("events", value, id="events") for value in json_values(text)]
    return examples


def test_the_readme_has_examples_of_both_contracts() -> None:
    kinds = [param.values[0] for param in readme_examples()]
    assert kinds.count("events") >= 2 and kinds.count("commands") >= 1


@pytest.mark.parametrize(("name", "example"), readme_examples())
def test_readme_examples_validate(name: str, example: Any) -> None:
    assert problems(name, example) == []
