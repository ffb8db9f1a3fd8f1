"""The ledger of applied commands a session item carries (worker/domain/ledger.py)."""

from __future__ import annotations

import hashlib
import re
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.session import CheckoutStatus
from worker.domain.ledger import LEDGER_SIZE, Found, appended, find_applied, ledger_entry

FINGERPRINT = hashlib.sha256(b"body").hexdigest()
OTHER_FINGERPRINT = hashlib.sha256(b"other body").hexdigest()
ENTRY = re.compile(r"^[A-Za-z0-9_-]{12}:[0-9a-f]{8}:(?P<status>[a-z_]*)$")
OLDER_ENTRY = re.compile(r"^[A-Za-z0-9_-]{12}:[0-9a-f]{8}$")
STATUSES = [None, *get_args(CheckoutStatus)]


def fingerprint_of(command_id: str) -> str:
    return hashlib.sha256(f"body of {command_id}".encode()).hexdigest()


def history(*command_ids: str, last_status: str | None = "incomplete") -> list[str]:
    """The ledger after applying `command_ids` in order, each over an `incomplete` session."""
    ledger: list[str] = []
    for command_id in command_ids:
        ledger = appended(ledger, ledger_entry(command_id, fingerprint_of(command_id), last_status))
    return ledger


# ─── Entry format ───


@pytest.mark.parametrize("status", STATUSES)
def test_an_entry_is_id_digest_fingerprint_and_previous_status(status: str | None) -> None:
    entry = ledger_entry("cmd-1", FINGERPRINT, status)
    match = ENTRY.match(entry)
    assert match, entry
    assert match["status"] == (status or "")
    assert entry.split(":")[1] == FINGERPRINT[:8]
    assert len(entry) == 12 + 1 + 8 + 1 + len(status or "")


def test_the_id_digest_is_deterministic_and_not_the_id_itself() -> None:
    one, again = ledger_entry("cmd-1", FINGERPRINT, None), ledger_entry("cmd-1", FINGERPRINT, None)
    other = ledger_entry("cmd-2", FINGERPRINT, None)
    assert one == again
    assert one.split(":")[0] != other.split(":")[0]
    assert "cmd-1" not in one


def test_a_long_command_id_still_makes_a_short_entry() -> None:
    entry = ledger_entry("x" * 255, FINGERPRINT, "ready_for_complete")
    assert ENTRY.match(entry)
    assert len(entry) < 45


# ─── Appending ───


def test_appending_keeps_order_oldest_first() -> None:
    ledger = history("a", "b", "c")
    assert [entry.split(":")[0] for entry in ledger] == [
        ledger_entry(c, FINGERPRINT, None).split(":")[0] for c in ("a", "b", "c")
    ]


def test_only_the_newest_entry_keeps_its_status() -> None:
    ledger = history("a", "b", "c", last_status="ready_for_complete")
    assert [bool(OLDER_ENTRY.match(entry)) for entry in ledger] == [True, True, False]
    assert ENTRY.match(ledger[-1])["status"] == "ready_for_complete"


def test_the_newest_entry_of_a_create_keeps_its_empty_status() -> None:
    ledger = appended(history("a"), ledger_entry("b", FINGERPRINT, None))
    assert ledger[-1].endswith(":")
    assert OLDER_ENTRY.match(ledger[0])


def test_appending_keeps_at_most_the_last_entries() -> None:
    ids = [f"cmd-{n}" for n in range(LEDGER_SIZE + 3)]
    ledger = history(*ids)
    assert LEDGER_SIZE == 8
    assert len(ledger) == LEDGER_SIZE
    assert ledger == history(*ids[-LEDGER_SIZE:])
    assert find_applied(ledger, ids[2], fingerprint_of(ids[2])) is None
    assert find_applied(ledger, ids[3], fingerprint_of(ids[3])) is not None


def test_appending_does_not_change_the_ledger_it_was_given() -> None:
    ledger = history("a", "b")
    copy = list(ledger)
    appended(ledger, ledger_entry("c", FINGERPRINT, None))
    assert ledger == copy


def test_appending_to_an_empty_ledger() -> None:
    entry = ledger_entry("a", FINGERPRINT, None)
    assert appended([], entry) == [entry]
    assert appended((), entry) == [entry]


# ─── Finding ───


def test_the_newest_command_is_found_with_its_previous_status() -> None:
    ledger = history("a", "b", last_status="requires_escalation")
    assert find_applied(ledger, "b", fingerprint_of("b")) == Found(
        same_content=True, newest=True, previous_status="requires_escalation", later=0
    )


def test_a_newest_create_is_found_without_a_previous_status() -> None:
    ledger = [ledger_entry("a", FINGERPRINT, None)]
    assert find_applied(ledger, "a", FINGERPRINT) == Found(
        same_content=True, newest=True, previous_status=None, later=0
    )


def test_an_older_command_is_found_with_how_many_applied_since() -> None:
    ledger = history("a", "b", "c", "d")
    assert find_applied(ledger, "b", fingerprint_of("b")) == Found(
        same_content=True, newest=False, previous_status=None, later=2
    )
    assert find_applied(ledger, "a", fingerprint_of("a")).later == 3


@pytest.mark.parametrize("command_id", ["a", "c"], ids=["older", "newest"])
def test_the_same_id_with_another_fingerprint_is_not_the_same_content(command_id: str) -> None:
    found = find_applied(history("a", "b", "c"), command_id, OTHER_FINGERPRINT)
    assert found is not None
    assert found.same_content is False
    assert found.newest is (command_id == "c")


def test_fingerprints_are_compared_on_their_first_eight_characters() -> None:
    ledger = [ledger_entry("a", FINGERPRINT, None)]
    assert find_applied(ledger, "a", FINGERPRINT[:8] + "0" * 56).same_content is True
    differs = ("0" if FINGERPRINT[7] != "0" else "1").join([FINGERPRINT[:7], FINGERPRINT[8:]])
    assert find_applied(ledger, "a", differs).same_content is False


@pytest.mark.parametrize("ledger", [[], history("a", "b")], ids=["empty", "others"])
def test_an_absent_command_is_not_found(ledger: list[str]) -> None:
    assert find_applied(ledger, "z", fingerprint_of("z")) is None


def test_an_entry_without_a_fingerprint_is_not_the_same_content() -> None:
    # An entry mangled by another writer: found by id, but never taken as a replay.
    digest = ledger_entry("a", FINGERPRINT, None).split(":")[0]
    assert find_applied([digest], "a", FINGERPRINT).same_content is False


# ─── Properties ───

command_ids = st.text(min_size=1, max_size=40)


@given(
    ids=st.lists(command_ids, min_size=1, max_size=25, unique=True),
    statuses=st.lists(st.sampled_from(STATUSES), min_size=25, max_size=25),
)
def test_a_ledger_finds_exactly_its_last_commands(
    ids: list[str], statuses: list[str | None]
) -> None:
    ledger: list[str] = []
    for command_id, status in zip(ids, statuses, strict=False):
        ledger = appended(ledger, ledger_entry(command_id, fingerprint_of(command_id), status))

    assert len(ledger) == min(len(ids), LEDGER_SIZE)
    assert all(OLDER_ENTRY.match(entry) for entry in ledger[:-1])
    assert ENTRY.match(ledger[-1])
    kept = ids[-LEDGER_SIZE:]
    for later, command_id in enumerate(reversed(kept)):
        found = find_applied(ledger, command_id, fingerprint_of(command_id))
        newest = later == 0
        previous = statuses[len(ids) - 1] if newest else None
        assert found == Found(
            same_content=True, newest=newest, previous_status=previous, later=later
        )
        assert find_applied(ledger, command_id, OTHER_FINGERPRINT).same_content is False
    for command_id in ids[:-LEDGER_SIZE]:
        assert find_applied(ledger, command_id, fingerprint_of(command_id)) is None
