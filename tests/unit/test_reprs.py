"""What Celery may show of a message's arguments: the worker's rewrite of `argsrepr`
and `kwargsrepr` (`worker.runtime.reprs`, `worker.runtime.consumer.redact_reprs`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery
from kombu import Message

from worker.runtime.app import APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK
from worker.runtime.consumer import redact_reprs
from worker.runtime.reprs import command_argsrepr, commands_argsrepr, shown_id

COMMAND = {
    "type": "update_session",
    "command_id": "c-2",
    "session_id": "s-1",
    "updates": {"buyer": {"email": "raw@example.com"}},
}


@pytest.mark.parametrize(
    ("command_id", "shown"),
    [
        ("c-2", "c-2"),
        ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ("ns:batch.7_a", "ns:batch.7_a"),
        ("raw@example.com", "'raw@example.com'"),
        ("c-1\nINFO forged line", "'c-1\\nINFO forged line'"),
        ("\x1b[31mred\x1b[0m", "'\\x1b[31mred\\x1b[0m'"),
        ("a\u202eb", "'a\\u202eb'"),  # a bidi override is escaped too
        ("it's", '"it\'s"'),
        ("", "''"),
        (7, "?"),
        ({"email": "raw@example.com"}, "?"),
        (None, "?"),
    ],
)
def test_a_command_id_is_shown_plain_only_when_it_has_nothing_to_escape(command_id, shown) -> None:
    assert shown_id(command_id) == shown


def test_a_foreign_id_is_cut_to_a_valid_ids_length() -> None:
    shown = shown_id("\n" * 1000)
    assert shown == repr("\n" * 255) + "..."


def test_one_command_shows_its_id_whether_passed_by_position_or_keyword() -> None:
    assert command_argsrepr([COMMAND], {"jid": "j-1"}) == "(command c-2)"
    assert command_argsrepr([], {"command": COMMAND}) == "(command c-2)"
    assert command_argsrepr(["not a command"], {}) == "(command ?)"
    assert command_argsrepr(None, None) == "(command ?)"


def test_a_batched_message_only_counts_its_commands() -> None:
    assert commands_argsrepr([[COMMAND, COMMAND], ["j-1", "j-2"]], {}) == "(2 commands)"
    assert commands_argsrepr([], {"commands": [COMMAND]}) == "(1 commands)"
    assert commands_argsrepr([{"x": 1}], {}) == "(? commands)"


def _received(task: str, body: Any, headers: dict[str, Any]) -> Message:
    """A message as the worker's consumer gets it from a standard JSON client."""
    return Message(
        body=json.dumps(body),
        headers=headers,
        content_type="application/json",
        content_encoding="utf-8",
    )


@pytest.mark.parametrize("task", [APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK])
def test_a_standard_clients_protocol_2_message_is_rewritten(task) -> None:
    args = [COMMAND] if task == APPLY_COMMAND_TASK else [[COMMAND], ["j-1"]]
    # A plain Celery app's message, with the reprs node clients write (`JSON.stringify`
    # of the arguments; Celery's own `saferepr` shows three levels of them).
    sent = Celery("client").amqp.create_task_message(
        "t-1", task, args, {"x": COMMAND}, argsrepr=json.dumps(args), kwargsrepr=json.dumps(COMMAND)
    )
    assert "raw@example.com" in sent.headers["argsrepr"] + sent.headers["kwargsrepr"]
    message = _received(task, sent.body, dict(sent.headers))

    redact_reprs(task, message, None)

    expected = "(command c-2)" if task == APPLY_COMMAND_TASK else "(1 commands)"
    assert (message.headers["argsrepr"], message.headers["kwargsrepr"]) == (expected, "{}")
    assert "raw@example.com" not in json.dumps(message.headers)
    assert message.payload[0] == args  # the task still gets the whole command


def test_a_protocol_1_message_is_rewritten_in_its_body_and_headers() -> None:
    body = {
        "task": APPLY_COMMAND_TASK,
        "id": "t-1",
        "args": [COMMAND],
        "kwargs": {},
        "argsrepr": repr([COMMAND]),
    }
    message = _received(APPLY_COMMAND_TASK, body, {"argsrepr": repr([COMMAND])})
    payload = message.decode()  # what Celery's consumer passes a protocol 1 strategy

    redact_reprs(APPLY_COMMAND_TASK, message, payload)

    assert (payload["argsrepr"], payload["kwargsrepr"]) == ("(command c-2)", "{}")
    assert message.headers["argsrepr"] == "(command c-2)"
    assert payload["args"] == [COMMAND]


def test_a_forged_repr_does_not_survive_even_in_the_pipelines_own_form() -> None:
    message = _received(
        APPLY_COMMAND_TASK,
        [[COMMAND], {}, {}],
        {"task": APPLY_COMMAND_TASK, "argsrepr": "(command raw@example.com)", "kwargsrepr": "x"},
    )

    redact_reprs(APPLY_COMMAND_TASK, message, None)

    assert (message.headers["argsrepr"], message.headers["kwargsrepr"]) == ("(command c-2)", "{}")


def test_reprs_python_clients_also_put_in_the_properties_are_rewritten_there() -> None:
    message = _received(APPLY_COMMAND_TASK, [[COMMAND], {}, {}], {"task": APPLY_COMMAND_TASK})
    message.properties.update(argsrepr=json.dumps([COMMAND]), kwargsrepr="{}", priority=0)

    redact_reprs(APPLY_COMMAND_TASK, message, None)

    assert message.properties == {"argsrepr": "(command c-2)", "kwargsrepr": "{}", "priority": 0}
