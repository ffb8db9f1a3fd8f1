"""`CHECKOUT_LOG_FORMAT=json`: a real worker logs one JSON object per line, ids but no data."""

from __future__ import annotations

import json

from tasks.embedded.stack import start_worker
from tests.e2e.builders import BUYER, create, update


def test_a_json_worker_logs_the_outcome_with_ids_and_no_buyer_data(
    env, tables, send, events, tmp_path
):
    log = tmp_path / "worker.log"
    worker = start_worker({**env, "CHECKOUT_LOG_FORMAT": "json"}, log=log, loglevel="INFO")
    try:
        send([create("j-0", "s-json"), update("j-1", "s-json", buyer=BUYER)])
        events(2)
    finally:
        worker.stop()  # flushes the log

    # Every log line is one JSON object (what Python prints before logging is set up,
    # such as a warning about running as root, is not a log line).
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (outcome,) = [r for r in records if r.get("command_id") == "j-1"]
    assert outcome["session_id"] == "s-json"
    assert outcome["type"] == "update_session"
    assert outcome["outcome"] == "applied"
    assert outcome["attempt"] == 1
    assert outcome["level"] == "INFO"
    assert BUYER["email"] not in log.read_text()
    # One line per command: Celery's own "received" and "succeeded" lines only at DEBUG.
    assert not [r for r in records if r["logger"].startswith("celery.") and "Task " in r["message"]]
