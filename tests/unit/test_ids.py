"""Ids that cannot forge a log line or reach a terminal raw, and the escaping of user text."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import ValidationError

from schemas.commands import describe_validation_error, parse_command
from schemas.ids import escaped, run_id_problem
from tasks.cli.read import terminal_json
from worker.delivery.runs import RunSummary
from worker.observability.logs import EscapingFormatter

pytestmark = pytest.mark.unit

FORGED_LINE = "c-1\n[2026-12-02 10:00:00,000: INFO/MainProcess] session.completed"
TERMINAL_TITLE = "c\u001b]0;owned\u0007\u001b[2J"
BAD_IDS = [FORGED_LINE, TERMINAL_TITLE, "\ud800", "c 1", "é", "c\u2028", "x" * 256, "", "-c"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("field", ["command_id", "session_id"])
def test_ids_with_characters_outside_the_documented_set_are_refused(field, bad) -> None:
    command = {"type": "cancel_session", "command_id": "c-1", "session_id": "s-1", field: bad}
    with pytest.raises(ValidationError) as caught:
        parse_command(command)
    message = describe_validation_error(caught.value)
    assert message.startswith(f"{field}: ")
    assert message.isprintable()  # the refusal itself cannot carry the injection


def test_ids_from_the_documented_set_are_accepted() -> None:
    command_id = "A0-run_1.part:2@shop/x+y=z~" + "x" * 228
    assert len(command_id) == 255
    parsed = parse_command({"type": "cancel_session", "command_id": command_id, "session_id": "s"})
    assert parsed.command_id == command_id


@pytest.mark.parametrize("bad", ["rk2:ex", "run\n1", "\ud800", "a" * 129, "", "_x", "a b"])
def test_run_ids_that_could_collide_or_inject_are_refused(bad) -> None:
    problem = run_id_problem(bad)
    assert problem and problem.startswith("run id ") and problem.isprintable()


@pytest.mark.parametrize("good", ["rk2", "send-0123abcd", "bulk.2026_12", "a" * 128])
def test_run_ids_of_letters_digits_and_three_separators_are_accepted(good) -> None:
    assert run_id_problem(good) is None


def test_escaped_keeps_printable_text_and_escapes_everything_else() -> None:
    assert escaped("order 42 for Zoë") == "order 42 for Zoë"
    assert escaped(TERMINAL_TITLE) == "c\\x1b]0;owned\\x07\\x1b[2J"
    assert escaped("a\nb\ud800\u2028") == "a\\x0ab\\ud800\\u2028"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(FORGED_LINE)  # str() keeps the newline, as KeyError's does not
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("checkout", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_text_log_line_cannot_be_forged_by_an_id() -> None:
    formatter = EscapingFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    line = formatter.format(record("command %s on session %s: applied", FORGED_LINE, "s-1"))
    assert "\n" not in line and line.startswith("[INFO] command c-1\\x0a[2026")
    assert "\x1b" not in formatter.format(record("command %s", TERMINAL_TITLE))


def test_a_traceback_keeps_its_lines_and_escapes_the_rest() -> None:
    formatter = EscapingFormatter(logging.Formatter("%(message)s"))
    text = formatter.format(record("failed", exc=True))
    assert "Traceback (most recent call last):\n" in text
    assert not any(line.startswith("[2026") for line in text.splitlines())


def test_run_summaries_escape_ids_from_foreign_clients() -> None:
    summary = RunSummary(
        "r1",
        sent=1,
        rejected={"validation_error": 1},
        failures=(("rejected:validation_error", TERMINAL_TITLE),),
    )
    assert "\x1b" not in summary.text() and "\\x1b" in summary.text()


def test_event_json_on_a_terminal_escapes_what_json_leaves_raw() -> None:
    text = json.dumps({"name": "a\u009b[2J\u2028\u007f"}, ensure_ascii=False)
    shown = terminal_json(text)
    assert shown.isascii() and all(ch.isprintable() for ch in shown)
    assert json.loads(shown) == json.loads(text)
