"""Ids unique across shards, against two real redis-servers: the same-shaped enqueue on
two shards makes distinct jids, each starting with its shard's tag, while one Redis
keeps `<ms>-<n>`; dead-letter ids (jids and raw messages') are tagged the same way, and
`checkout dlq show|replay ID` goes to the shard the id names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tasks.cli import main
from worker.delivery.deadletters import DeadLetterStore
from worker.delivery.jids import shard_named
from worker.delivery.journal import DeadLetter, Journal, Pending
from worker.delivery.undeliverable import bury
from worker.redis_client import make_redis_client
from worker.settings import Settings, get_settings

REASON = DeadLetter("handler_failed", "KeyError", "'line_items'")
PLAIN_JID = re.compile(r"\d+-\d+")


@pytest.fixture
def sharded(env, servers, monkeypatch) -> Iterator[Settings]:
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", ",".join(url for _, url in servers))
    get_settings.cache_clear()
    yield Settings()
    get_settings.cache_clear()


@pytest.fixture
def journals(sharded) -> Iterator[list[Journal]]:
    """A journal per shard, as the producers and `checkout dlq` make them."""
    made = [
        Journal(make_redis_client(url), sharded.for_shard(n))
        for n, url in enumerate(sharded.shard_urls)
    ]
    yield made
    for journal in made:
        journal.client.close()


def pending(command_id: str, session_id: str) -> Pending:
    command = {"type": "create_session", "command_id": command_id, "session_id": session_id}
    return Pending(json.dumps(command), command_id, session_id)


def queued(journal: Journal, queue: str) -> list[dict]:
    """The messages on `queue`, the next to be taken first."""
    return [json.loads(m) for m in reversed(journal.client.lrange(queue, 0, -1))]


def dead_letter(journal: Journal, queue: str, command_id: str) -> str:
    ((jid,),) = journal.enqueue([[pending(command_id, f"s-{command_id}")]], queue=queue)
    journal.claim(jid, "w1")
    journal.finish(jid, "w1", event_json="{}", outcome="dead_lettered", dead_letter=REASON)
    return jid


@pytest.mark.parametrize("per_message", [1, 2])
def test_the_same_enqueue_on_two_shards_makes_distinct_jids_tagged_with_their_shard(
    journals, sharded, per_message
):
    queue = sharded.commands_queue
    replies = [
        journal.enqueue(
            [[pending("c-1", "s-1"), pending("c-2", "s-2")]], queue=queue, per_message=per_message
        )
        for journal in journals
    ]
    (zero,), (one,) = replies
    # The same counters on both shards: only the tag keeps them apart.
    assert [j.split(":", 1)[1].split("-")[1] for j in zero + one] == ["1", "2", "1", "2"]
    assert [shard_named(j) for j in zero + one] == [0, 0, 1, 1]
    assert all(PLAIN_JID.fullmatch(j.split(":", 1)[1]) for j in zero + one)
    assert set(zero).isdisjoint(one)
    for journal, jids in zip(journals, (zero, one), strict=True):
        assert [journal.entry(j).command_id for j in jids] == ["c-1", "c-2"]
        messages = queued(journal, queue)
        # The task ids and delivery tags carry the tag too; a delivery tag still splits
        # at its last '.' into the (first) jid (`worker.runtime.transport`).
        tags = [m["properties"]["delivery_tag"] for m in messages]
        assert [t.rsplit(".", 1)[0] for t in tags] == jids[::per_message]
        if per_message == 1:
            assert [m["headers"]["id"] for m in messages] == jids
        else:  # one message naming both jids; its task id is its delivery tag
            assert [json.loads(m["body"])[0][1] for m in messages] == [jids]
            assert [m["headers"]["id"] for m in messages] == tags


def test_one_redis_keeps_jids_as_ms_dash_n(env, servers, monkeypatch):
    url = servers[0][1]
    for one in (Settings(redis_url=url), Settings(redis_urls=url).for_shard(0)):
        journal = Journal(make_redis_client(url), one)
        try:
            ((jid,),) = journal.enqueue([[pending("c-1", "s-1")]], queue=one.commands_queue)
            replayed = journal.replay(dead_letter(journal, one.commands_queue, "c-dead"))
        finally:
            journal.client.close()
        assert PLAIN_JID.fullmatch(jid), jid
        assert PLAIN_JID.fullmatch(replayed), replayed


def test_a_call_without_the_shard_tag_is_refused_not_misread(journals, sharded):
    journal = journals[0]
    old = ["enqueue", journal.keys.prefix, sharded.commands_queue, "60000", "", 86400, 604800]
    old += [pending("c-1", "s-1").text, "c-1", "s-1"]  # one argument short: no <shard tag>
    with pytest.raises(Exception, match="triples after <shard tag>"):
        journal._script.call(*old)
    with pytest.raises(Exception, match=r"<shard tag> is not '' or s<K>"):
        journal._script.call(*old[:7], "shard-1", *old[7:])
    assert journal.client.llen(sharded.commands_queue) == 0


def test_an_adopted_send_task_keeps_its_task_id_under_a_tagged_jid(journals, sharded):
    journal = journals[1]
    text = pending("c-adopted", "s-adopted").text
    jid = "s1:Ttask-77"  # what a worker of shard 1 journals a plain send_task under
    claim = journal.claim(jid, "w1", adopt=(text, "c-adopted", sharded.commands_queue))
    assert claim.verdict == "go"
    journal.retry(jid, "w1", delay=0, error=RuntimeError("again"))
    journal.reap()  # due now: pushed again, as the script writes its messages
    (message,) = queued(journal, sharded.commands_queue)
    assert message["headers"]["id"] == "task-77"
    assert message["properties"]["delivery_tag"].startswith("s1:Ttask-77.")


def test_dead_letter_ids_are_unique_across_shards(journals, sharded):
    queue = sharded.commands_queue
    dead = [dead_letter(journal, queue, "c-dead") for journal in journals]
    raw = [
        bury(journal, "not a message {", queue=queue, reason="not JSON", error_type="ValueError")
        for journal in journals
    ]
    assert [shard_named(i) for i in dead + raw] == [0, 1, 0, 1]
    assert dead[0] != dead[1] and raw[0] != raw[1]
    assert raw[0].split(":", 1)[1] == raw[1].split(":", 1)[1]  # the same digest
    for journal, entry_id in zip(journals, raw, strict=True):
        assert DeadLetterStore(journal.client, journal.keys, journal).get(entry_id).raw


def run_checkout(capsys, *argv: str) -> tuple[int, str, str]:
    get_settings.cache_clear()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dlq_show_and_replay_go_to_the_shard_the_id_names(journals, sharded, capsys):
    queue = sharded.commands_queue
    entry_id = dead_letter(journals[1], queue, "c-one")
    assert shard_named(entry_id) == 1
    # An entry under the same id on shard 0 (one that could never be made there, as
    # every id of shard 0 starts with s0): the old search took it, the first match.
    journals[0].client.hset(
        journals[0].keys.dead_letter(entry_id),
        mapping={"id": entry_id, "cmd": pending("c-zero", "s-0").text, "cid": "c-zero", "q": queue},
    )
    journals[0].client.zadd(journals[0].keys.dead_letters, {entry_id: 1})

    code, out, err = run_checkout(capsys, "dlq", "show", entry_id)
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["shard"], shown["command_id"]) == (1, "c-one")

    code, out, err = run_checkout(capsys, "dlq", "replay", entry_id)
    assert code == 0, err
    delivery = re.search(r"as delivery (\S+)", out).group(1)
    assert shard_named(delivery) == 1  # replayed on shard 1, its jid tagged there
    # The message after the original delivery's (never taken off the list here).
    assert [m["headers"]["id"] for m in queued(journals[1], queue)][1:] == [delivery]
    assert queued(journals[0], queue) == []
    assert journals[0].client.exists(journals[0].keys.dead_letter(entry_id)) == 1  # untouched


def test_dlq_refuses_an_id_whose_tag_names_no_shard(journals, sharded, capsys):
    for action in ("show", "replay"):
        code, _, err = run_checkout(capsys, "dlq", action, "s7:1733270000000-1")
        assert code == 1
        assert err.count("\n") == 1
        assert "names shard 7, and CHECKOUT_REDIS_URLS lists 2 shards (s0 to s1)" in err


def test_dlq_refuses_a_command_id_dead_lettered_on_two_shards(journals, sharded, capsys):
    ids = [dead_letter(journal, sharded.commands_queue, "c-twice") for journal in journals]
    code, _, err = run_checkout(capsys, "dlq", "show", "c-twice")
    assert code == 1
    assert f"{ids[0]} (shard 0), {ids[1]} (shard 1)" in err
    code, out, err = run_checkout(capsys, "dlq", "show", ids[1])
    assert (code, json.loads(out)["shard"]) == (0, 1), err
