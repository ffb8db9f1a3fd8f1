"""Payment secrets never leave the table: a real worker (text and JSON logs, metrics), the
stream, the dead-letter listings, `status --json` and `get` show display fields only.

The shapes are arbitrary in tests/unit/test_payments.py (a property test against an
independent oracle); here a few instruments with secrets at several depths, under names
no list of secret keys would know, go the whole way.
"""

from __future__ import annotations

import json

from tasks.embedded.stack import free_port, start_worker
from tests.e2e.builders import create, update
from tests.e2e.test_metrics import scrape_until, total

SECRETS = [f"SECRET-{n}-4242" for n in range(8)]
INSTRUMENTS = [
    {
        "id": "pi-1",
        "type": "card",
        "payment_token": SECRETS[0],
        "client_secret": SECRETS[1],
        "display": {"brand": "visa", "last_digits": "4242", "fingerprint": SECRETS[2]},
        "handler_data": {"nested": [{"deeper": {"secret": SECRETS[3]}}]},
    },
    {
        "id": "pi-2",
        "type": "wallet",
        "credential": {"type": "token", "token": SECRETS[4]},
        "billing_address": {"line1": "1 Main St", "country": "US"},
        "Secret": SECRETS[5],
        "expiry_month": 12,
        "vendor": {"id": SECRETS[6], "brand": "acme"},  # kept keys under a redacted one
        "list": [SECRETS[7]],
    },
]


def dead_letter_message(queue: str) -> bytes:
    """A message for a task the queues do not run: dead-lettered raw, secrets inside."""
    command = update("r-raw", "s-pay", payment_instruments=INSTRUMENTS)
    body = json.dumps([[command], {}, {}])
    envelope = {"body": body, "headers": {"task": "celery.map", "id": "t-1"}, "properties": {}}
    return json.dumps(envelope).encode()


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_payment_secret_reaches_anything_outside_the_table(
    env, tables, send, events, checkout, redis_client, settings, tmp_path
):
    port = free_port()
    text_log, json_log = tmp_path / "text.log", tmp_path / "json.log"
    workers = [
        start_worker(env, log=text_log, loglevel="DEBUG", extra_args=["--metrics-port", str(port)]),
        start_worker({**env, "CHECKOUT_LOG_FORMAT": "json"}, log=json_log, loglevel="DEBUG"),
    ]
    try:
        send(
            [
                create("p-0", "s-pay"),
                update("p-1", "s-pay", payment_instruments=INSTRUMENTS),
                update("p-2", "s-pay", buyer={"email": "ann@example.com"}),
            ]
        )
        redis_client.lpush(settings.commands_queue, dead_letter_message(settings.commands_queue))
        shown = events(4)
        metrics = scrape_until(port, lambda s: total(s, "checkout_commands_total") >= 2)
    finally:
        for worker in workers:
            worker.stop()

    stream = json.dumps(redis_client.xrange(settings.events_stream))
    [applied] = [e for e in shown if e["command_id"] == "p-1"]
    first, second = applied["session"]["payment_instruments"]
    assert first["display"] == {"brand": "visa", "last_digits": "4242", "fingerprint": "[redacted]"}
    assert second["billing_address"] == INSTRUMENTS[1]["billing_address"]
    assert (second["vendor"], second["expiry_month"]) == ("[redacted]", 12)
    listing = checkout("dlq", "list", "--json")
    [entry] = [json.loads(line) for line in listing.stdout.splitlines() if line.startswith("{")]
    show = checkout("dlq", "show", entry["id"])
    status = checkout("status", "--json")
    session = checkout("get", "s-pay")
    outputs = {
        "stream": stream,
        "dlq list --json": listing.stdout,
        "dlq show": show.stdout,
        "status --json": status.stdout,
        "get": session.stdout,
        "text log": text_log.read_text(),
        "json log": json_log.read_text(),
        "metrics": json.dumps([list(key) for key in metrics], default=sorted),
    }
    assert all(result.returncode == 0 for result in (listing, show, status, session))
    assert "pi-1" in session.stdout and "pi-1" in show.stdout  # the instruments are there...
    assert {name: leaked(text) for name, text in outputs.items() if leaked(text)} == {}
