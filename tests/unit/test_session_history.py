"""`checkout history`: lines from stream events, and what the session's ledger adds."""

from __future__ import annotations

from tasks.cli.read import with_stream_id
from tasks.session_history import stream_lines, with_ledger
from worker.domain.ledger import appended, ledger_entry
from worker.streams.reader import parse_event, session_entries


def applied(
    n: int, command_id: str, kind: str = "session.updated", *, version: int | None = None
) -> tuple[str, dict]:
    """Stream entry `n` holding the event of `command_id`, which wrote `version` (default n)."""
    return f"{n}-0", {
        "event_id": f"e-{command_id}",
        "type": kind,
        "command_id": command_id,
        "session_id": "s-1",
        "version": n if version is None else version,
        "occurred_at": f"2026-11-0{n}T00:00:00.000Z",
    }


def rejected(n: int, command_id: str, version: int | None, code: str) -> tuple[str, dict]:
    return f"{n}-0", {
        "event_id": f"e-{command_id}",
        "type": "command.rejected",
        "command_id": command_id,
        "session_id": "s-1",
        "version": version,
        "occurred_at": f"2026-11-0{n}T00:00:00.000Z",
        "error": {"code": code, "message": "..."},
    }


def ledger_of(*command_ids: str) -> list[str]:
    ledger: list[str] = []
    for command_id in command_ids:
        ledger = appended(ledger, ledger_entry(command_id, "f" * 8, "incomplete"))
    return ledger


def summary(lines) -> list[tuple]:
    return [(line.command_id, line.outcome, line.version, line.sources) for line in lines]


def test_outcomes_are_the_event_type_or_rejected_or_dead_lettered_with_the_code():
    dead = ("9-0", {"event_id": "e-d", "type": "command.dead_lettered", "command_id": "c-d"})
    dead[1].update(session_id="s-1", version=None, error={"code": "retries_exhausted"})
    lines = stream_lines(
        [applied(1, "c-1", "session.created"), rejected(2, "c-2", 1, "invalid_transition"), dead]
    )
    assert [line.outcome for line in lines] == [
        "session.created",
        "rejected:invalid_transition",
        "dead_lettered:retries_exhausted",
    ]
    assert [line.applied for line in lines] == [True, False, False]
    assert lines[0].to_json() == {
        "time": "2026-11-01T00:00:00.000Z",
        "command_id": "c-1",
        "outcome": "session.created",
        "version": 1,
        "sources": ("stream",),
        "stream_id": "1-0",
        "event_id": "e-c-1",
        "ledger_digest": None,
    }


def test_a_republished_event_is_one_line():
    first = applied(1, "c-1", "session.created")
    again = ("5-0", first[1])
    assert summary(stream_lines([first, again])) == [("c-1", "session.created", 1, ("stream",))]


def test_the_ledger_confirms_the_applied_lines_it_holds():
    lines = stream_lines([applied(1, "c-1", "session.created"), applied(2, "c-2")])
    merged = with_ledger(lines, ledger_of("c-1", "c-2"), version=2)
    assert summary(merged) == [
        ("c-1", "session.created", 1, ("stream", "ledger")),
        ("c-2", "session.updated", 2, ("stream", "ledger")),
    ]


def test_ledger_entries_the_stream_lost_come_in_by_version():
    # c-1..c-3 applied; the stream has lost every entry before the rejection at version 3.
    lines = stream_lines([rejected(4, "c-r", 3, "session_closed"), applied(5, "c-4", version=4)])
    merged = with_ledger(lines, ledger_of("c-1", "c-2", "c-3", "c-4"), version=4)
    assert summary(merged) == [
        (None, "applied", 1, ("ledger",)),
        (None, "applied", 2, ("ledger",)),
        (None, "applied", 3, ("ledger",)),
        ("c-r", "rejected:session_closed", 3, ("stream",)),
        ("c-4", "session.updated", 4, ("stream", "ledger")),
    ]
    assert merged[0].cells()[1].startswith("(id not kept: ")


def test_a_rejection_seen_before_a_lost_write_stays_before_it():
    lines = stream_lines([rejected(1, "c-r", 1, "invalid_transition")])
    merged = with_ledger(lines, ledger_of("c-1", "c-2"), version=2)
    assert summary(merged) == [
        (None, "applied", 1, ("ledger",)),
        ("c-r", "rejected:invalid_transition", 1, ("stream",)),
        (None, "applied", 2, ("ledger",)),
    ]


def test_writes_the_stream_lost_stay_before_a_dead_letter_it_kept():
    dead = ("8-0", {"event_id": "e-d", "type": "command.dead_lettered", "command_id": "c-d"})
    dead[1].update(session_id="s-1", version=None, error={"code": "handler_failed"})
    lines = stream_lines([dead, applied(9, "c-3", version=3)])
    merged = with_ledger(lines, ledger_of("c-1", "c-2", "c-3"), version=3)
    assert summary(merged) == [
        (None, "applied", 1, ("ledger",)),
        (None, "applied", 2, ("ledger",)),
        ("c-d", "dead_lettered:handler_failed", None, ("stream",)),
        ("c-3", "session.updated", 3, ("stream", "ledger")),
    ]


def test_a_write_whose_event_is_not_published_yet_comes_last():
    lines = stream_lines([applied(1, "c-1", "session.created")])
    merged = with_ledger(lines, ledger_of("c-1", "c-2"), version=2)
    assert summary(merged)[-1] == (None, "applied", 2, ("ledger",))


def test_a_same_id_at_another_version_is_not_confirmed():
    # An older life of the session applied c-1 at version 1; the ledger's c-1 wrote 3.
    lines = stream_lines([applied(1, "c-1", "session.created")])
    merged = with_ledger(lines, ledger_of("c-0", "c-x", "c-1"), version=3)
    assert [line.sources for line in merged if line.command_id == "c-1"] == [("stream",)]


def test_only_the_sessions_events_are_selected_from_the_stream():
    entries = [
        ("1-0", '{"session_id":"s-1","type":"session.created"}'),
        ("2-0", '{"session_id":"s-10","type":"session.created"}'),
        ("3-0", '{"session_id":"x","session":{"id":"s-1"}}'),
        ("4-0", '{"session_id":"s-\\u00e9"}'),
        ("5-0", "not json s-1"),
    ]
    assert [entry_id for entry_id, _ in session_entries(entries, "s-1")] == ["1-0"]
    assert [entry_id for entry_id, _ in session_entries(entries, "s-\u00e9")] == ["4-0"]


def test_a_printed_event_carries_its_stream_id_first_and_the_rest_as_stored():
    text = '{"event_id":"e","n":12345678901234567890123}'
    shown = with_stream_id("17-3", text)
    assert shown == '{"stream_id":"17-3","event_id":"e","n":12345678901234567890123}'
    assert with_stream_id("1-0", "{}") == '{"stream_id":"1-0"}'
    assert parse_event(with_stream_id("1-0", "[1]")) == {"stream_id": "1-0", "unparsed": "[1]"}
