"""`CommandProcessor`'s policy: what it does with each claim verdict and each failure.

The service is the real one on the in-memory store; the journal is an in-memory
stand-in that records what the processor asked of it (the script itself is
tested in tests/integration/test_journal.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kombu.serialization import loads as kombu_loads

from tests.support.fakes import InMemorySessionStore
from worker.delivery.journal import Claim, DeadLetter
from worker.delivery.processor import MISSING_SESSION_RETRIES, CommandProcessor
from worker.errors import JournalUnavailable, StoreUnavailable
from worker.runtime.serialization import CONTENT_TYPE, register_serializer
from worker.service.apply import CheckoutService
from worker.settings import Settings

JID = "1-1"


@dataclass
class Finished:
    jid: str
    event: dict
    outcome: str
    dead_letter: DeadLetter | None


@dataclass
class FakeJournal:
    """Counts deliveries and failed attempts per jid; `verdicts` overrides the next claims."""

    verdicts: list[Claim] = field(default_factory=list)
    deliveries: int = 0
    attempts: int = 0
    finished: list[Finished] = field(default_factory=list)
    retries: list[tuple[float, str]] = field(default_factory=list)
    buried: list[str] = field(default_factory=list)
    shard_tag: str = ""
    claimed: list[str] = field(default_factory=list)
    # Claims the processor asked to send with a finish: (jid, rest).
    ahead: list[tuple[str, list[str]]] = field(default_factory=list)
    claim_after_finish: Any = None

    def claim_with_next_finish(self, jid, worker, *, rest, command_id, with_copy) -> None:
        self.ahead.append((jid, list(rest)))

    def claim(
        self, jid: str, worker: str, *, adopt=None, rest=(), command_id="", with_copy=False
    ) -> Claim:
        self.claimed.append(jid)
        if self.verdicts:
            return self.verdicts.pop(0)
        if self.finished:
            return Claim("skip")
        self.deliveries += 1
        return Claim("go", self.deliveries, self.attempts)

    def finish(
        self,
        jid,
        worker,
        *,
        event_json,
        outcome,
        dead_letter=None,
        session_copy=None,
        claimed=None,
    ) -> bool:
        self.finished.append(Finished(jid, json.loads(event_json), outcome, dead_letter))
        return True

    def retry(self, jid: str, worker: str, *, delay: float, error: BaseException) -> None:
        self.attempts += 1
        self.retries.append((delay, type(error).__name__))

    def bury(self, entry_id: str, **_: object) -> None:
        self.buried.append(entry_id)


@pytest.fixture
def store() -> InMemorySessionStore:
    return InMemorySessionStore()


@pytest.fixture
def journal() -> FakeJournal:
    return FakeJournal()


def processor(store, journal, **settings) -> CommandProcessor:
    service = CheckoutService(store)
    values = {"max_retries": 4, "retry_backoff_max": 2.0, **settings}
    return CommandProcessor(service, journal, Settings(**values), "worker-1")


def update(session_id: str = "s-1") -> dict:
    return {
        "type": "update_session",
        "command_id": "cmd-1",
        "session_id": session_id,
        "updates": {"continue_url": "https://shop.example/cart"},
    }


def create(session_id: str = "s-1") -> dict:
    return {"type": "create_session", "command_id": "cmd-0", "session_id": session_id}


def deliver(proc: CommandProcessor, command: dict, times: int) -> list[str]:
    return [proc.process(command, jid=JID, task_id="t", queue="q") for _ in range(times)]


def test_an_applied_command_is_finished_with_its_event(store, journal):
    assert deliver(processor(store, journal), create(), 1) == ["applied"]

    (done,) = journal.finished
    assert (done.outcome, done.dead_letter, done.event["type"]) == (
        "applied",
        None,
        "session.created",
    )
    assert journal.retries == []


def test_a_transient_error_is_retried_with_capped_backoff_then_dead_lettered(store, journal):
    store.load_error = StoreUnavailable("DynamoDB throttled")
    proc = processor(store, journal, max_retries=6, retry_backoff_max=2.0)

    results = deliver(proc, update(), 7)

    assert results == ["retry"] * 6 + ["dead_lettered"]
    assert [name for _, name in journal.retries] == ["StoreUnavailable"] * 6
    assert all(0 < delay <= 2.0 for delay, _ in journal.retries)
    (done,) = journal.finished
    assert done.outcome == "dead_lettered"
    # Six retries and the attempt that exhausted them.
    assert done.dead_letter == DeadLetter(
        "retries_exhausted", "StoreUnavailable", "DynamoDB throttled", attempts=7
    )
    assert done.event["type"] == "command.dead_lettered"
    assert (done.event["command_id"], done.event["session_id"]) == ("cmd-1", "s-1")
    assert done.event["error"] == {
        "code": "retries_exhausted",
        "message": "DynamoDB throttled",
        "type": "StoreUnavailable",
    }


def test_an_unexpected_exception_gets_the_same_bound_as_handler_failed(store, journal):
    store.load_error = KeyError("line_items")

    results = deliver(processor(store, journal, max_retries=2), update(), 3)

    assert results == ["retry", "retry", "dead_lettered"]
    (done,) = journal.finished
    assert done.dead_letter.code == "handler_failed"
    assert done.event["error"]["type"] == "KeyError"
    assert done.event["error"]["code"] == "handler_failed"


def test_no_retries_means_the_first_failure_is_dead_lettered(store, journal):
    store.load_error = StoreUnavailable("down")

    assert deliver(processor(store, journal, max_retries=0), update(), 1) == ["dead_lettered"]
    assert journal.retries == []


@pytest.mark.parametrize("max_retries", [1, 10])
def test_a_missing_session_waits_briefly_for_its_create_and_is_then_rejected(
    store, journal, max_retries
):
    results = deliver(processor(store, journal, max_retries=max_retries), update("s-none"), 5)

    deferrals = min(MISSING_SESSION_RETRIES, max_retries)
    assert results[: deferrals + 1] == ["retry"] * deferrals + ["rejected:session_not_found"]
    assert [name for _, name in journal.retries] == ["SessionNotFoundYet"] * deferrals
    (done,) = journal.finished
    assert done.dead_letter is None
    assert done.event["type"] == "command.rejected"


def test_a_missing_session_that_appears_during_the_wait_is_applied(store, journal):
    proc = processor(store, journal)
    assert deliver(proc, update(), 1) == ["retry"]

    assert deliver(processor(store, FakeJournal()), create(), 1) == ["applied"]

    assert deliver(proc, update(), 1) == ["applied"]


@pytest.mark.parametrize("verdict", ["skip", "busy", "park"])
def test_a_delivery_that_may_not_go_does_nothing_else(store, journal, verdict):
    journal.verdicts = [Claim(verdict)]

    assert deliver(processor(store, journal), create(), 1) == [verdict]

    assert journal.finished == [] and journal.retries == []
    assert store.loads == [] and store.save_attempts == []


def test_a_command_whose_deliveries_keep_dying_is_dead_lettered_as_worker_lost(store, journal):
    journal.verdicts = [Claim("dead", deliveries=5, attempts=1)]

    assert deliver(processor(store, journal), create(), 1) == ["dead_lettered"]

    (done,) = journal.finished
    assert done.dead_letter.code == "worker_lost"
    assert "4 times" in done.dead_letter.message
    assert done.event["type"] == "command.dead_lettered"
    assert done.event["error"]["code"] == "worker_lost"
    assert store.save_attempts == []


# ─── Numbers the TypeScript side cannot read back (`schemas.numbers`) ───

UNSAFE_TEXT = (
    '{"type":"update_session","command_id":"cmd-1","session_id":"s-1","updates":'
    '{"buyer":{"x_meta":{"serial":12345678901234567890}},'
    '"line_items":[{"type":"p","total_amount":1,"weight":NaN,"depth":1e309}]}}'
)
UNSAFE_PROBLEMS = (
    "updates.buyer.x_meta.serial: 12345678901234567890 is outside the safe integer range "
    "±(2^53-1) that the TypeScript side can read; "
    "updates.line_items.0.weight: NaN is not a number JSON or DynamoDB can hold; "
    "updates.line_items.0.depth: Infinity is not a number JSON or DynamoDB can hold"
)


@pytest.mark.parametrize("content_type", ["application/json", CONTENT_TYPE])
def test_a_foreign_command_with_unsafe_numbers_is_rejected_once_as_invalid(
    store, journal, content_type
):
    # The body as the worker decodes it: kombu's JSON (another client's plain task) or
    # the pipeline's own content type; both read NaN, and 1e309 as an infinity.
    register_serializer()
    command = kombu_loads(UNSAFE_TEXT, content_type, "utf-8")

    outcome = processor(store, journal).process(command, jid=None, task_id="t", queue="q")

    assert outcome == "rejected:validation_error"
    (done,) = journal.finished
    assert done.event["error"] == {"code": "validation_error", "message": UNSAFE_PROBLEMS}
    assert journal.retries == [] and store.loads == [] and store.save_attempts == []


def test_a_journaled_command_holding_nan_is_not_taken_for_a_forged_body(store, journal):
    # NaN is unequal to itself, yet the body and its journal entry, parsed apart, agree:
    # json.loads gives its one NaN object for every NaN, and containers compare members
    # by identity first. A decoder without that would dead-letter the body as forged.
    journal.verdicts = [Claim("go", 1, 0, command=UNSAFE_TEXT)]
    delivered = json.loads(UNSAFE_TEXT)

    outcome = processor(store, journal).process(delivered, jid=JID, task_id="t", queue="q")

    assert outcome == "rejected:validation_error"
    assert journal.buried == []


# ─── Batched messages (`checkout.apply_commands`) ───


@dataclass
class BatchJournal(FakeJournal):
    """Claims every jid once; records each claim's `rest`; refuses the `refuse_at`-th."""

    claims: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_at: int | None = None

    def claim(
        self, jid: str, worker: str, *, adopt=None, rest=(), command_id="", with_copy=False
    ) -> Claim:
        if len(self.claims) == self.refuse_at:
            raise JournalUnavailable("Redis refused the journal (claim): OOM")
        self.claims.append((jid, list(rest)))
        return Claim("skip") if jid in {f.jid for f in self.finished} else Claim("go", 1, 0)


def batch(count: int) -> tuple[list[dict], list[str]]:
    commands = [create("s-b")] + [
        {**update("s-b"), "command_id": f"cmd-{n}"} for n in range(1, count)
    ]
    return commands, [f"1-{n}" for n in range(count)]


def test_a_batch_is_applied_command_by_command_and_the_first_claim_names_the_rest(store):
    journal = BatchJournal()
    commands, jids = batch(4)

    outcomes = processor(store, journal).process_many(commands, jids=jids, task_id="t", queue="q")

    assert outcomes == ["applied"] * 4
    assert [f.jid for f in journal.finished] == jids
    # Only the first claim (and one every third of a visibility timeout after) carries them.
    assert journal.claims == [(jids[0], jids[1:]), (jids[1], []), (jids[2], []), (jids[3], [])]
    # Each later claim was offered to the finish before it, with the same arguments.
    assert journal.ahead == [(jids[1], []), (jids[2], []), (jids[3], [])]
    again = processor(store, journal).process_many(commands, jids=jids, task_id="t", queue="q")
    assert again == ["skip"] * 4


def test_redis_refusing_a_claim_mid_batch_raises_before_anything_after_it(store):
    journal = BatchJournal(refuse_at=2)
    commands, jids = batch(4)

    with pytest.raises(JournalUnavailable):
        processor(store, journal).process_many(commands, jids=jids, task_id="t", queue="q")

    assert [f.jid for f in journal.finished] == jids[:2]
    assert [jid for jid, _ in journal.claims] == jids[:2]


def test_a_batch_sent_without_jids_is_journaled_command_by_command(store):
    journal = BatchJournal()
    commands, _ = batch(2)

    outcomes = processor(store, journal).process_many(commands, jids=None, task_id="t", queue="q")

    assert outcomes == ["applied", "applied"]
    assert [jid for jid, _ in journal.claims] == ["Tt.0", "Tt.1"]
