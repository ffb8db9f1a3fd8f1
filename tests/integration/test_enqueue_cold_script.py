"""Pipelined enqueues when Redis has forgotten the delivery script (a restart, SCRIPT or
FUNCTION FLUSH), both ways of calling it (a Functions library, EVALSHA).

A pipeline of several calls is not atomic: another producer can load the script while
Redis is still reading it, so its first calls answer NOSCRIPT (or "Function not found")
and its later ones run. Sending the whole pipeline again then enqueued those later calls
twice, behind commands of the same sessions that had not gone yet (seen in CI as 425
queued commands for a bulk send of 300).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from itertools import chain

import pytest

from tests.integration.test_journal import command, pending
from worker.delivery.journal import Journal, Pending

ROUNDS = 8
PRODUCERS = 3
CALLS = 10
PER_CALL = 100


def queued_commands(redis_client, queue: str) -> list[str]:
    """Command ids in the queue, one per command (batched messages hold several)."""
    ids = []
    for raw in redis_client.lrange(queue, 0, -1):
        (cmds, _jids), _kwargs, _embed = json.loads(json.loads(raw)["body"])
        ids += [c["command_id"] for c in cmds]
    return ids


def race(journals: list[Journal], work: list[list[list[Pending]]], queue: str) -> list[tuple]:
    """Each journal enqueues its calls in one pipeline, all at once: (pending, jid) pairs."""
    start = threading.Barrier(len(journals))
    sent: list[tuple] = []

    def produce(journal: Journal, calls: list[list[Pending]]) -> None:
        start.wait()
        replies = journal.enqueue(calls, queue=queue, per_message=50)
        sent.extend(zip(chain(*calls), chain(*replies), strict=True))

    threads = [
        threading.Thread(target=produce, args=pair) for pair in zip(journals, work, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


@pytest.fixture(params=["functions", "script"])
def way(request, make_journal, redis_client) -> tuple[Callable[[], Journal], Callable[[], None]]:
    """(a journal maker, a flush that makes Redis forget the delivery script) per way."""
    if request.param == "functions":
        return make_journal, redis_client.function_flush
    return lambda: make_journal(redis_functions=False), redis_client.script_flush


def test_producers_racing_a_cold_script_cache_enqueue_each_command_once_in_order(way, redis_client):
    new_journal, flush = way
    journals = [new_journal() for _ in range(PRODUCERS)]
    queue = f"cold-{uuid.uuid4().hex[:8]}"
    sent: list[tuple] = []
    for _ in range(ROUNDS):
        flush()
        work = [
            [[pending(command(f"s-{p}-{n % 7}")) for _ in range(PER_CALL)] for n in range(CALLS)]
            for p in range(PRODUCERS)
        ]
        sent += race(journals, work, queue)

    command_ids = [item.command_id for item, _jid in sent]
    queued = queued_commands(redis_client, queue)
    assert len(queued) == len(sent) and set(queued) == set(command_ids)
    # And in order: each session's sequence numbers follow its commands' send order
    # (`sent` is in send order per producer, and each session has one producer).
    sequences: dict[str, list[int]] = {}
    for item, jid in sent:
        seq = int(redis_client.hget(journals[0].keys.journal(jid), "seq"))
        sequences.setdefault(item.session_id, []).append(seq)
    assert all(seqs == sorted(seqs) for seqs in sequences.values())


def test_a_single_call_after_a_flush_loads_the_script_and_enqueues_once(way, redis_client):
    new_journal, flush = way
    journal = new_journal()
    journal.enqueue([[pending(command("s-0"))]], queue="warm-up")  # known to be loaded
    queue = f"cold-{uuid.uuid4().hex[:8]}"
    flush()
    cmds = [command("s-1") for _ in range(3)]

    journal.enqueue([[pending(c) for c in cmds]], queue=queue, per_message=50)

    assert queued_commands(redis_client, queue) == [c["command_id"] for c in cmds]
