"""`enqueue_batched` (several commands to a Celery message) against a real redis-server,
and a worker's `CommandProcessor.process_many` applying such messages through the real
journal and the real DynamoDB store (moto server).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from tests.integration.test_journal import command, enqueue, entry, finish, pending, poll
from worker.delivery.journal import MAX_COMMANDS_PER_MESSAGE, Journal, Pending
from worker.delivery.processor import CommandProcessor
from worker.errors import JournalUnavailable

BATCH_TASK = "checkout.apply_commands"
SINGLE_TASK = "checkout.apply_command"


def enqueue_batched(
    journal: Journal, queue: str, per_message: int, *cmds: dict, run_id: str | None = None
) -> list[str]:
    batch = [pending(c) for c in cmds]
    (jids,) = journal.enqueue([batch], queue=queue, run_id=run_id, per_message=per_message)
    return jids


def messages(redis_client: Any, queue: str) -> list[dict[str, Any]]:
    """The queued messages, parsed, next to be taken first (kombu pops the right end)."""
    return [json.loads(raw) for raw in reversed(redis_client.lrange(queue, 0, -1))]


def task_args(message: dict[str, Any]) -> list[Any]:
    args, kwargs, embed = json.loads(message["body"])
    assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return [*args, kwargs]


# ─── The script ───


def test_consecutive_commands_share_messages_of_up_to_per_message(journal, redis_client, settings):
    queue = settings.bulk_queue
    cmds = [command(f"s-pack-{n % 2}") for n in range(7)]

    jids = enqueue_batched(journal, queue, 3, *cmds)

    assert len(set(jids)) == 7 and "" not in jids
    queued = messages(redis_client, queue)
    assert [task_args(m) for m in queued] == [
        [cmds[0:3], jids[0:3], {}],
        [cmds[3:6], jids[3:6], {}],
        [cmds[6:], jids[6:], {}],
    ]
    for message, first, count, position in zip(
        queued, (0, 3, 6), (3, 3, 1), (1, 2, 3), strict=True
    ):
        headers, properties = message["headers"], message["properties"]
        assert headers["task"] == BATCH_TASK
        assert headers["id"] == headers["root_id"] == f"{jids[first]}.{position}"
        assert properties["correlation_id"] == properties["delivery_tag"] == headers["id"]
        assert properties["delivery_info"]["routing_key"] == queue
        # Celery logs argsrepr: it counts the commands and shows nothing of them.
        assert headers["argsrepr"] == f"({count} commands)"
        assert "shop.example" not in json.dumps(headers) and "cmd-" not in json.dumps(headers)
    entries = [entry(redis_client, journal, jid) for jid in jids]
    # Each command its own entry; one message's entries share its queue position.
    assert [e["qpos"] for e in entries] == ["1", "1", "1", "2", "2", "2", "3"]
    assert all(e["st"] == "queued" and e["q"] == queue for e in entries)
    assert [json.loads(e["cmd"]) for e in entries] == cmds
    assert [e["seq"] for e in entries] == ["1", "1", "2", "2", "3", "3", "4"]
    assert all(redis_client.zscore(journal.keys.queued(queue), jid) is not None for jid in jids)


def test_command_texts_are_embedded_as_sent(journal, redis_client, settings):
    # A number past double precision, spaces and key order: re-encoding would change them.
    texts = [
        f'{{"type": "update_session", "command_id": "c-big-{n}", "session_id": "s-big",'
        ' "updates": {"line_items": [{"id": "li", "type": "product", "title": "Mug",'
        ' "total_amount": 123456789012345678901234567890}]}}'
        for n in range(2)
    ]
    batch = [Pending(text, f"c-big-{n}", "s-big") for n, text in enumerate(texts)]

    journal.enqueue([batch], queue=settings.bulk_queue, per_message=2)

    (raw,) = redis_client.lrange(settings.bulk_queue, 0, -1)
    body = json.loads(raw)["body"]
    assert body.startswith(f"[[[{texts[0]},{texts[1]}],[")


def test_sequence_numbers_continue_across_enqueue_and_enqueue_batched(
    journal, redis_client, settings
):
    queue = settings.bulk_queue
    ((first,),) = journal.enqueue([[pending(command("s-mix"))]], queue=queue)
    batched = enqueue_batched(journal, queue, 5, *(command("s-mix") for _ in range(3)))
    ((last,),) = journal.enqueue([[pending(command("s-mix"))]], queue=queue)

    jids = [first, *batched, last]
    assert [entry(redis_client, journal, j)["seq"] for j in jids] == ["1", "2", "3", "4", "5"]
    assert [entry(redis_client, journal, j)["qpos"] for j in jids] == ["1", "2", "2", "2", "3"]
    order = redis_client.hmget(journal.keys.session_order("s-mix"), "next", "last")
    assert order == ["5", last]
    # Each entry names the one before it in the session, across calls and messages.
    assert [entry(redis_client, journal, j)["pj"] for j in jids] == ["", *jids[:-1]]
    queued = messages(redis_client, queue)
    assert [m["headers"]["task"] for m in queued] == [SINGLE_TASK, BATCH_TASK, SINGLE_TASK]
    assert task_args(queued[1])[1] == batched


def test_a_resumed_run_skips_what_it_finished_and_packs_the_rest(journal, redis_client, settings):
    queue = settings.bulk_queue
    cmds = [command(f"s-run-{n}") for n in range(5)]
    first = enqueue_batched(journal, queue, 5, *cmds, run_id="run-b")
    for jid in (first[0], first[2]):
        assert journal.claim(jid, "w1").verdict == "go"
        assert finish(journal, jid, "w1")
    redis_client.delete(queue)

    extra = command("s-run-5")
    again = enqueue_batched(journal, queue, 2, *cmds, extra, run_id="run-b")

    assert again[0] == again[2] == ""
    kept = [again[n] for n in (1, 3, 4, 5)]
    assert all(kept)
    assert [task_args(m)[:2] for m in messages(redis_client, queue)] == [
        [[cmds[1], cmds[3]], kept[:2]],
        [[cmds[4], extra], kept[2:]],
    ]
    assert redis_client.hgetall(journal.keys.run_counts("run-b")) == {"sent": "6", "applied": "2"}


def test_per_message_is_checked(journal, settings):
    with pytest.raises(ValueError):
        journal.enqueue([[pending(command())]], queue=settings.bulk_queue, per_message=0)
    with pytest.raises(ValueError):
        journal.enqueue(
            [[pending(command())]],
            queue=settings.bulk_queue,
            per_message=MAX_COMMANDS_PER_MESSAGE + 1,
        )
    with pytest.raises(JournalUnavailable, match="per message"):
        journal._call("enqueue_batched", [settings.bulk_queue, 1000, "", 60, 60, "x"])


def test_the_first_claim_keeps_the_rest_of_its_message_from_the_reaper(
    make_journal, redis_client, settings
):
    """The entries of a message share its position, so once one is claimed the others
    look passed to the reaper. The claim lists them again as if queued just now (not
    one in a retry's backoff); if the worker then dies, they come back."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.bulk_queue
    listed = journal.keys.queued(queue)
    first, second, third = enqueue_batched(journal, queue, 3, command(), command(), command())
    assert journal.claim(third, "w0").verdict == "go"  # an earlier delivery: now retrying
    journal.retry(third, "w0", delay=0.2, error=TimeoutError("slow"))
    third_due = redis_client.zscore(journal.keys.due, third)
    enqueue(journal, queue, command())  # a message behind this one: position 2, unclaimed

    redis_client.rpop(queue)  # the worker takes the batched message
    assert journal.claim(first, "w1", rest=[second, third]).verdict == "go"

    assert redis_client.zscore(listed, first) == 1  # running: listed until it finishes
    assert redis_client.zscore(listed, second) == 2  # as if queued after the last message
    assert redis_client.zscore(listed, third) is None  # in its backoff: left alone
    assert redis_client.zscore(journal.keys.due, third) == third_due

    # The worker never gets to `second`, and every message enqueued after it was listed
    # again is taken off the queue: a visibility timeout after the reaper saw that, it
    # sends `second` again, as a message of its own.
    (later,) = enqueue(journal, queue, command())
    redis_client.delete(queue)
    assert journal.claim(later, "w2").verdict == "go"

    def resent() -> bool:
        journal.reap()
        return entry(redis_client, journal, second)["qpos"] not in ("1", "2")

    poll(resent, "second is re-enqueued")
    singles = [m for m in messages(redis_client, queue) if m["headers"]["task"] == SINGLE_TASK]
    assert second in [task_args(m)[1]["jid"] for m in singles]


# ─── A worker applying batched messages ───


def session_commands(session_id: str, updates: int) -> list[dict[str, Any]]:
    create = {"type": "create_session", "command_id": f"{session_id}-c0", "session_id": session_id}
    return [create] + [
        {
            "type": "update_session",
            "command_id": f"{session_id}-c{n}",
            "session_id": session_id,
            "updates": {"continue_url": f"https://shop.example/cart/{n}"},
        }
        for n in range(1, updates + 1)
    ]


def events(redis_client: Any, settings: Any) -> list[dict[str, Any]]:
    return [json.loads(f["event"]) for _, f in redis_client.xrange(settings.events_stream)]


def deliver(processor: CommandProcessor, message: dict[str, Any], queue: str) -> Any:
    """What the worker's task does with a message: `apply_commands` or `apply_command`."""
    args = task_args(message)
    task_id = message["headers"]["id"]
    if message["headers"]["task"] == BATCH_TASK:
        return processor.process_many(args[0], jids=args[1], task_id=task_id, queue=queue)
    return processor.process(args[0], jid=args[1]["jid"], task_id=task_id, queue=queue)


@pytest.fixture
def processor(journal, service, settings) -> CommandProcessor:
    return CommandProcessor(service, journal, settings, f"w-{uuid.uuid4().hex[:8]}")


def test_a_batched_message_applies_each_command_once_in_order(
    journal, processor, redis_client, settings, tables
):
    queue = settings.bulk_queue
    cmds = session_commands("s-apply", 4)
    enqueue_batched(journal, queue, 50, *cmds)
    (message,) = messages(redis_client, queue)

    assert deliver(processor, message, queue) == ["applied"] * 5
    assert [e["version"] for e in events(redis_client, settings)] == [1, 2, 3, 4, 5]
    assert redis_client.zcard(journal.keys.due) == 0

    # The same message again (kombu's redelivery): every command is skipped at claim.
    assert deliver(processor, message, queue) == ["skip"] * 5
    assert len(events(redis_client, settings)) == 5


def test_a_parked_command_of_a_batched_message_is_woken_as_a_message_of_its_own(
    journal, processor, redis_client, settings, tables
):
    """The second message of a session is delivered first (another worker process took
    it): its commands park, and each is woken, alone, by its predecessor's finish."""
    queue = settings.bulk_queue
    cmds = session_commands("s-park", 3)
    enqueue_batched(journal, queue, 2, *cmds)
    early, late = messages(redis_client, queue)
    redis_client.delete(queue)

    assert deliver(processor, late, queue) == ["park", "park"]
    assert deliver(processor, early, queue) == ["applied", "applied"]
    (woken,) = messages(redis_client, queue)
    assert woken["headers"]["task"] == SINGLE_TASK
    assert task_args(woken)[0] == cmds[2]
    redis_client.delete(queue)
    assert deliver(processor, woken, queue) == "applied"
    (woken,) = messages(redis_client, queue)
    assert task_args(woken)[0] == cmds[3]
    assert deliver(processor, woken, queue) == "applied"

    applied = events(redis_client, settings)
    assert [(e["command_id"], e["version"]) for e in applied] == [
        (c["command_id"], n) for n, c in enumerate(cmds, start=1)
    ]


class RefusingJournal(Journal):
    """The real journal, but Redis refuses the `refuse_at`-th claim (0-based)."""

    def __init__(self, *args: Any, refuse_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims = 0
        self.refuse_at = refuse_at

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.claims += 1
        if self.claims - 1 == self.refuse_at:
            raise JournalUnavailable("Redis refused the journal (claim): OOM")
        return super().claim(*args, **kwargs)

    def claim_with_next_finish(self, *args: Any, **kwargs: Any) -> None:
        if self.claims + 1 != self.refuse_at:  # refused: not sent with the finish either
            super().claim_with_next_finish(*args, **kwargs)


def test_redis_refusing_the_journal_mid_message_raises_and_the_redelivery_resumes(
    journal, service, redis_client, settings, tables
):
    queue = settings.bulk_queue
    cmds = session_commands("s-refused", 4)
    jids = enqueue_batched(journal, queue, 50, *cmds)
    (message,) = messages(redis_client, queue)
    refusing = RefusingJournal(redis_client, settings, refuse_at=2)
    worker = CommandProcessor(service, refusing, settings, "w-refused")

    with pytest.raises(JournalUnavailable):
        deliver(worker, message, queue)

    assert len(events(redis_client, settings)) == 2
    assert [entry(redis_client, journal, j).get("st") for j in jids] == [
        None,
        None,
        "queued",
        "queued",
        "queued",
    ]
    again = CommandProcessor(service, journal, settings, "w-again")
    assert deliver(again, message, queue) == ["skip", "skip", "applied", "applied", "applied"]
    assert [e["version"] for e in events(redis_client, settings)] == [1, 2, 3, 4, 5]


class StuckOn:
    """The real service, except that applying `command_id` never returns by itself."""

    def __init__(self, service: Any, command_id: str) -> None:
        self._service = service
        self._command_id = command_id

    def apply(self, command: Any, **kwargs: Any) -> Any:
        if command.get("command_id") == self._command_id:
            threading.Event().wait(60)
        return self._service.apply(command, **kwargs)


def test_a_stuck_command_of_a_batched_message_is_stopped_at_its_own_time_limit(
    journal, service, redis_client, settings, tables
):
    queue = settings.bulk_queue
    a, b = session_commands("s-stuck", 2), session_commands("s-free", 2)
    cmds = [cmd for pair in zip(a, b, strict=True) for cmd in pair]
    jids = enqueue_batched(journal, queue, 50, *cmds)
    (message,) = messages(redis_client, queue)
    worker = CommandProcessor(
        StuckOn(service, "s-stuck-c1"), journal, settings, "w-stuck", command_time_limit=0.5
    )

    started = time.monotonic()
    outcomes = deliver(worker, message, queue)

    assert time.monotonic() - started < 30  # not the stuck call's 60 s, nor Celery's limit
    # The stuck one fails its attempt (retried later), its session successor waits for
    # it, and the other session's commands in the message go on.
    assert outcomes == ["applied", "applied", "retry", "applied", "park", "applied"]
    stuck = entry(redis_client, journal, jids[2])
    assert stuck["st"] == "waiting" and stuck["att"] == "1"
    assert stuck["etype"] == "CommandTimeLimitExceeded"
    assert stuck["err"] == "the command ran longer than its time limit of 0.5s"


def test_a_message_naming_another_commands_jid_is_dead_lettered_as_forged(
    journal, processor, redis_client, settings, tables
):
    """Someone who can write to the broker sends a body of their own under a real jid:
    it is not applied, and the real command's own delivery still is."""
    queue = settings.commands_queue
    real = session_commands("s-forged", 0)[0]
    (jid,) = enqueue(journal, queue, real)
    forged = {**real, "command_id": "forged-1", "buyer": {"email": "x@example.com"}}

    assert processor.process(forged, jid=jid, task_id="t-forged", queue=queue) == "dead_lettered"
    assert entry(redis_client, journal, jid)["st"] == "queued"  # the real entry: untouched

    assert processor.process(real, jid=jid, task_id="t-real", queue=queue) == "applied"
    types = [(e["type"], e["command_id"]) for e in events(redis_client, settings)]
    assert types == [("command.dead_lettered", "forged-1"), ("session.created", real["command_id"])]
    (dead_id,) = redis_client.zrange(journal.keys.dead_letters, 0, -1)
    dead = redis_client.hgetall(journal.keys.dead_letter(dead_id))
    assert (dead["code"], dead["type"]) == ("undeliverable", "Forged")


def test_a_message_whose_body_differs_from_its_entry_applies_the_journaled_command(
    journal, processor, redis_client, settings, tables
):
    """The same jid and command_id with another body: the journal's command is what is
    applied, and the message's body is dead-lettered as forged."""
    queue = settings.commands_queue
    real = session_commands("s-body", 0)[0]
    (jid,) = enqueue(journal, queue, real)
    forged = {**real, "currency": "XXX"}

    assert processor.process(forged, jid=jid, task_id="t-body", queue=queue) == "applied"

    kinds = [(e["type"], e["command_id"]) for e in events(redis_client, settings)]
    assert kinds == [
        ("command.dead_lettered", real["command_id"]),
        ("session.created", real["command_id"]),
    ]
    created = events(redis_client, settings)[-1]
    assert created["session"]["currency"] != "XXX"
    (dead_id,) = redis_client.zrange(journal.keys.dead_letters, 0, -1)
    dead = redis_client.hgetall(journal.keys.dead_letter(dead_id))
    assert (dead["code"], dead["type"]) == ("undeliverable", "Forged")
    assert "XXX" in dead["raw"]
    # The real message, delivered after: finished already.
    assert processor.process(real, jid=jid, task_id="t-real", queue=queue) == "skip"
