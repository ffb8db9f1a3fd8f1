"""Runs against the real redis-server and moto server, no workers: outcomes are finished
through the journal as a worker would. Summary, exit codes, malformed lines, --strict,
`--where` selections over seed-layout and pipeline-written items."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tasks.bulk_select import parse_where, scan_sessions
from tasks.embedded.stack import CHECKOUT
from tasks.producer import CommandProducer, prepare
from tests.e2e.builders import create, seed_layout_item, update
from worker.delivery.journal import Journal, in_flight_count
from worker.delivery.keys import RedisKeys
from worker.delivery.runs import read_run


def checkout(env, *args, input=None):
    return subprocess.run(
        [CHECKOUT, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def journal(settings, redis_client):
    return Journal(redis_client, settings)


def enqueue_run(journal, run_id, commands) -> list[str]:
    """Enqueue `commands` under `run_id`; returns their jids."""
    (jids,) = journal.enqueue([[prepare(c) for c in commands]], queue="q", run_id=run_id)
    return jids


def finish(journal, jid, outcome):
    assert journal.claim(jid, "w-1").verdict == "go"
    journal.finish(jid, "w-1", event_json="{}", outcome=outcome)


def test_report_counts_outcomes_and_exits_by_them(env, journal):
    commands = [update(f"c-{n}", f"s-{n}", currency="EUR") for n in range(5)]
    jids = enqueue_run(journal, "r-mixed", commands)
    finish(journal, jids[0], "applied")
    finish(journal, jids[1], "applied")
    finish(journal, jids[2], "rejected:session_closed")
    finish(journal, jids[3], "dead_lettered")

    pending = checkout(env, "report", "r-mixed", "--json")
    assert pending.returncode == 3
    assert last_json(pending) | {"failures": []} == {
        "run_id": "r-mixed",
        "sent": 5,
        "applied": 2,
        "rejected": {"session_closed": 1},
        "dead_lettered": 1,
        "pending": 1,
        "failures": [],
    }
    assert [f["command_id"] for f in last_json(pending)["failures"]] == ["c-2", "c-3"]

    finish(journal, jids[4], "applied")
    done = checkout(env, "report", "r-mixed")
    assert done.returncode == 1
    assert "5 sent, 3 applied, 1 rejected, 1 dead-lettered, 0 pending" in done.stdout
    assert "rejected session_closed: 1" in done.stdout

    assert checkout(env, "report", "no-such-run").returncode == 1


def test_report_exits_0_when_everything_was_applied(env, journal):
    jids = enqueue_run(journal, "r-good", [update("g-1", "s-g", currency="EUR")])
    finish(journal, jids[0], "applied")
    result = checkout(env, "report", "r-good", "--json")
    assert result.returncode == 0, result.stderr
    assert last_json(result)["applied"] == 1


def test_a_finished_command_is_not_enqueued_again_in_its_run(journal, settings, redis_client):
    command = update("once-1", "s-once", currency="EUR")
    (jid,) = enqueue_run(journal, "r-once", [command])
    finish(journal, jid, "applied")
    assert enqueue_run(journal, "r-once", [command]) == [""]
    summary = read_run(redis_client, journal.keys, "r-once")
    assert (summary.sent, summary.applied, summary.pending) == (1, 1, 0)


def test_a_run_counts_a_command_sent_twice_in_one_call_once(journal, redis_client):
    command = update("c-twice", "s-twice", currency="EUR")
    jids = enqueue_run(journal, "r-twice", [command, command])

    assert all(jids)  # both delivered (the second is skipped at apply time)
    assert redis_client.hget(journal.keys.run_counts("r-twice"), "sent") == "1"


def test_an_outcome_after_the_run_expired_leaves_no_key_without_an_expiry(journal, redis_client):
    (jid,) = enqueue_run(journal, "r-late", [update("c-late", "s-late", currency="EUR")])
    for key in (journal.keys.run_outcomes("r-late"), journal.keys.run_counts("r-late")):
        redis_client.delete(key)  # as if a day (a week) had passed

    finish(journal, jid, "applied")

    assert not redis_client.exists(journal.keys.run_outcomes("r-late"))
    assert not redis_client.exists(journal.keys.run_counts("r-late"))


def test_send_reports_bad_lines_enqueues_the_rest_and_times_out_pending(env, tmp_path):
    path = tmp_path / "commands.jsonl"
    lines = [
        json.dumps(create("ok-1", "s-ok-1")),
        '{"type": "create_session", "command_id": ',
        json.dumps(update("bad-1", "s-ok-1", currency="euro")),
        "",
        json.dumps(create("ok-2", "s-ok-2")),
    ]
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = checkout(env, "send", str(path), "--wait", "--timeout", "0.5", "--json")
    assert time.monotonic() - started < 60
    assert result.returncode == 3, result.stderr  # no workers: both still pending
    assert f"{path}:2: " in result.stderr
    assert f"{path}:3: updates.currency: " in result.stderr
    summary = last_json(result)
    assert (summary["sent"], summary["pending"], summary["invalid_lines"]) == (2, 2, 2)
    assert summary["run_id"].startswith("send-")

    # Without --wait: the bad lines decide the exit code; the same file is the same run.
    again = checkout(env, "send", str(path), "--json")
    assert again.returncode == 1
    assert last_json(again)["run_id"] == summary["run_id"]


def test_send_refuses_numbers_the_typescript_side_cannot_read_naming_file_line_and_path(
    env, tmp_path, redis_client, settings
):
    path = tmp_path / "numbers.jsonl"
    serial = {"email": "m@example.com", "x_meta": {"serial": 12345678901234567890}}
    weighed = '{"type": "update_session", "command_id": "n-2", "session_id": "s-n", '
    weighed += '"updates": {"line_items": [{"type": "p", "total_amount": 1, "weight": NaN}]}}'
    path.write_text(json.dumps(update("n-1", "s-n", buyer=serial)) + "\n" + weighed + "\n")

    result = checkout(env, "send", str(path), "--json")

    assert result.returncode == 1, result.stderr
    assert (
        f"{path}:1: updates.buyer.x_meta.serial: 12345678901234567890 is outside the safe "
        "integer range ±(2^53-1) that the TypeScript side can read\n"
    ) in result.stderr
    assert (
        f"{path}:2: updates.line_items.0.weight: NaN is not a number JSON or DynamoDB can hold\n"
    ) in result.stderr
    assert (last_json(result)["sent"], last_json(result)["invalid_lines"]) == (0, 2)
    assert redis_client.llen(settings.commands_queue) == 0
    assert in_flight_count(redis_client, RedisKeys(settings.key_prefix)) == 0


def test_strict_enqueues_nothing_when_a_line_is_bad(env, redis_client, settings):
    text = json.dumps(create("st-1", "s-st")) + "\n" + "not json\n"
    result = checkout(env, "send", "-", "--strict", "--run-id", "r-strict", input=text)
    assert result.returncode == 1
    assert "-:2: " in result.stderr
    assert redis_client.llen(settings.commands_queue) == 0
    good = checkout(env, "send", "-", "--strict", "--bulk", "--run-id", "r-strict", input=text[:-9])
    assert good.returncode == 0, good.stderr
    assert redis_client.llen(settings.bulk_queue) == 1


def test_where_selects_seed_layout_and_pipeline_written_items(env, tables, dynamodb, service):
    ttl = int(time.time()) + 3600
    seed_ids = [f"seed-{n}" for n in range(3)]
    for session_id in seed_ids:  # as the seed writes them: no version attribute
        dynamodb.put_item(
            TableName=tables.sessions_table, Item=seed_layout_item(session_id, ttl=ttl)
        )
    dynamodb.put_item(
        TableName=tables.sessions_table,
        Item=seed_layout_item("seed-eur", ttl=ttl) | {"currency": {"S": "EUR"}},
    )
    service.handle(create("p-c", "pipe-1"))
    service.handle(
        update("p-u", "pipe-1", line_items=[{"id": "li-9", "type": "product", "total_amount": 5}])
    )

    def select(*conditions):
        return set(
            scan_sessions(dynamodb, tables.sessions_table, parse_where(conditions), segments=3)
        )

    assert select("currency=USD") == {*seed_ids, "pipe-1"}
    assert select("currency=USD", "status=incomplete", "line_item=li-1") == set(seed_ids)
    assert select("line_item=li-9") == {"pipe-1"}
    # Seed items were stamped 2026-01-01; the pipeline's now.
    assert select("updated_before=2026-01-01T00:00:00.001Z") == {*seed_ids, "seed-eur"}
    assert select("updated_before=2026-01-01T00:00:00Z") == set()
    assert select("status=completed") == set()


def test_bulk_update_dry_run_and_a_bad_patch_enqueue_nothing(env, tables, dynamodb, redis_client):
    ttl = int(time.time()) + 3600
    for n in range(12):
        item = seed_layout_item(f"dry-{n}", ttl=ttl)
        dynamodb.put_item(TableName=tables.sessions_table, Item=item)
    dry = checkout(
        env, "bulk-update", "--set", "currency=EUR", "--where", "currency=USD", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("12 sessions match")
    bad = checkout(env, "bulk-update", "--set", "currency=euro", "--where", "currency=USD")
    assert bad.returncode == 2  # a patch it cannot use is a usage error: nothing enqueued
    assert "updates: currency: " in bad.stderr
    assert redis_client.llen(env["CHECKOUT_BULK_QUEUE"]) == 0

    sent = checkout(
        env, "bulk-update", "--set", "currency=EUR", "--where", "currency=USD", "--json"
    )
    assert sent.returncode == 0, sent.stderr
    assert last_json(sent)["sent"] == 12
    # Bulk: the 12 commands travel in one message (`enqueue_batched`).
    (message,) = redis_client.lrange(env["CHECKOUT_BULK_QUEUE"], 0, -1)
    assert len(json.loads(json.loads(message)["body"])[0][0]) == 12
    assert redis_client.llen(env["CHECKOUT_COMMANDS_QUEUE"]) == 0


def test_producer_api_counts_runs_too(settings, redis_client):
    producer = CommandProducer.from_settings(settings, bulk=True)
    producer.enqueue_many([create("api-1", "s-api")], run_id="r-api")
    assert read_run(redis_client, producer.journal.keys, "r-api").sent == 1


# ─── Run ids cannot collide with another run's keys ───


@pytest.mark.parametrize("bad", ["rk2:ex", "rk2\n[INFO] forged"])
def test_a_run_id_that_could_collide_is_refused_before_anything_is_written(
    bad, env, journal, redis_client, settings, tmp_path
):
    enqueue_run(journal, "rk2", [create("c-ok", "s-rk2")])
    before = sorted(redis_client.keys("*"))
    with pytest.raises(ValueError, match="run id"):
        journal.enqueue([[prepare(create("c-1", "s-1"))]], queue="q", run_id=bad)
    # The script's own check, for a client that calls it around the producers.
    args = journal.enqueue_args("q", [prepare(create("c-2", "s-2"))], "rk2:ex")
    with pytest.raises(Exception, match="run id"):
        journal._script.call("enqueue", journal.keys.prefix, *args)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(create("c-3", "s-3")) + "\n")
    sent = checkout(env, "send", str(path), "--run-id", bad)
    report = checkout(env, "report", bad)

    for result in (sent, report):
        assert result.returncode == 2, result.stderr
        assert "run id" in result.stderr and "Traceback" not in result.stderr
    assert sorted(redis_client.keys("*")) == before
    assert read_run(redis_client, journal.keys, "rk2").sent == 1
