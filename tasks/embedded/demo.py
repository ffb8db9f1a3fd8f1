"""`make demo`: a small order flow through the real pipeline, on embedded defaults.

Starts a local redis-server and a moto DynamoDB server on free ports, creates the
tables, starts one `checkout worker`, pushes commands through the queue phase by
phase, prints the result events and the final sessions, measures throughput on a
bulk batch, and stops everything it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.rule import Rule
from rich.table import Table

from tasks.embedded.stack import CHECKOUT, EmbeddedStack, start_worker

BULK_SESSIONS = 200
PIPED_WIDTH = 1000
RULE_WIDTH = 88
PROGRESS_EVERY_SECONDS = 2.0
console = Console()
if not console.is_terminal:
    # Piped or in CI: as wide as the tables need (they size to their content), so no
    # cell is wrapped or cut to fit an imagined 80-column terminal.
    console = Console(width=PIPED_WIDTH)

MUG = {"id": "li-mug", "type": "product", "total_amount": 1250, "title": "Mug"}
TEE = {"id": "li-tee", "type": "product", "total_amount": 2000, "title": "T-shirt"}
PROMO = {"id": "li-promo", "type": "discount", "total_amount": -300, "title": "SPRING"}
CARD = {"id": "pi-1", "type": "card", "credential": {"type": "token", "token": "tok_4242"}}
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def cmd(kind: str, command_id: str, session_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "command_id": command_id, "session_id": session_id, **fields}


# Each phase is sent, then awaited, so the tables show the flow step by step. (Commands
# of one session apply in enqueue order anyway: the bulk step sends creates and updates
# together.)
PHASES: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "open three carts",
        [cmd("create_session", f"demo-create-{s}", s) for s in ("alice", "bob", "carol")],
    ),
    (
        "fill the carts",
        [
            cmd("update_session", "demo-alice-1", "alice", updates={"line_items": [MUG, TEE]}),
            cmd("update_session", "demo-bob-1", "bob", updates={"line_items": [TEE, PROMO]}),
            cmd("update_session", "demo-carol-1", "carol", updates={"line_items": [MUG]}),
        ],
    ),
    (
        "checkout details, a duplicate delivery and a reused command id",
        [
            cmd(
                "update_session",
                "demo-alice-2",
                "alice",
                updates={
                    "buyer": {"email": "alice@example.com"},
                    "shipping_address": ADDRESS,
                    "payment_instruments": [CARD],
                },
            ),
            cmd("update_session", "demo-carol-1", "carol", updates={"line_items": [MUG]}),
            cmd("update_session", "demo-bob-1", "bob", updates={"currency": "EUR"}),
            cmd("transition_session", "demo-bob-2", "bob", target="requires_escalation"),
        ],
    ),
    (
        "complete, cancel, and commands that must be rejected",
        [
            cmd("complete_session", "demo-alice-3", "alice"),
            cmd("cancel_session", "demo-bob-3", "bob"),
            cmd("transition_session", "demo-carol-2", "carol", target="completed"),
            cmd("update_session", "demo-dave-1", "dave", updates={"line_items": [MUG]}),
        ],
    ),
    (
        "a closed session refuses changes",
        [cmd("update_session", "demo-alice-4", "alice", updates={"line_items": [MUG]})],
    ),
]


def main() -> int:
    with EmbeddedStack(appendonly=True) as stack:
        env = stack.env()
        os.environ.update(env)
        console.print(Rule("checkout pipeline demo"), width=min(console.width, RULE_WIDTH))
        console.print(f"redis  {stack.redis_url}  (pid-managed)\nmoto   {stack.dynamodb_url}")
        console.print("creating the table, starting a worker ...")
        subprocess.run([CHECKOUT, "init"], env=env, check=True, capture_output=True)
        worker = start_worker(env, log=stack.workdir / "worker.log", concurrency=2)
        try:
            console.print(f"worker pid {worker.pid}, concurrency 2\n")
            run_flow()
            measure_bulk()
        finally:
            worker.stop()
    console.print("\nstopped the worker, redis-server and the moto server.")
    return 0


def run_flow() -> None:
    from tasks.producer import enqueue_many

    events: list[dict[str, Any]] = []
    for title, commands in PHASES:
        console.print(f"[bold]→ {title}[/bold] ({len(commands)} commands)")
        enqueue_many(commands)
        events = wait_for_events(len(events) + len(commands))
    console.print(events_table(events))
    console.print(sessions_table(["alice", "bob", "carol"]))


def measure_bulk() -> None:
    from tasks.producer import enqueue_many

    before = len(read_events())
    commands = [
        cmd("create_session", f"bulk-create-{n}", f"bulk-{n}") for n in range(BULK_SESSIONS)
    ] + [
        cmd("update_session", f"bulk-update-{n}", f"bulk-{n}", updates={"line_items": [MUG]})
        for n in range(BULK_SESSIONS)
    ]
    console.print(f"\n[bold]→ bulk[/bold] ({len(commands)} commands)")
    started = time.perf_counter()
    enqueue_many(commands)  # each update waits for its session's create (per-session order)
    wait_with_progress(before, len(commands), timeout=300)
    elapsed = time.perf_counter() - started
    rate = len(commands) / elapsed
    console.print(
        f"bulk: {BULK_SESSIONS} creates and {BULK_SESSIONS} updates, applied in "
        f"{elapsed:.1f}s: [bold]{rate:.0f} commands/s[/bold] (1 worker x 2 processes, "
        "sharing this machine's cores with the moto server and Redis)"
    )


def read_events() -> list[dict[str, Any]]:
    from worker.redis_client import make_redis_client
    from worker.settings import get_settings
    from worker.streams.reader import read_events

    settings = get_settings()
    client = make_redis_client(settings.redis_url)
    return [json.loads(text) for _, text in read_events(client, settings.events_stream)]


def wait_for_events(count: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    from worker.redis_client import make_redis_client
    from worker.settings import get_settings

    settings = get_settings()
    client = make_redis_client(settings.redis_url)
    deadline = time.monotonic() + timeout
    while (have := client.xlen(settings.events_stream)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {have} of {count} events after {timeout:.0f}s")
        time.sleep(0.05)
    return read_events()


def wait_with_progress(before: int, count: int, *, timeout: float) -> None:
    """Wait for `count` events after the first `before`, showing how many have come:
    a progress bar on a terminal, a line every few seconds when piped."""
    from worker.redis_client import make_redis_client
    from worker.settings import get_settings

    settings = get_settings()
    client = make_redis_client(settings.redis_url)
    deadline = time.monotonic() + timeout
    next_line = time.monotonic() + PROGRESS_EVERY_SECONDS
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("applied", total=count)
        while (done := client.xlen(settings.events_stream) - before) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} events after {timeout:.0f}s")
            bar.update(task, completed=done)
            if not console.is_terminal and time.monotonic() >= next_line:
                console.print(f"  {done}/{count} applied")
                next_line += PROGRESS_EVERY_SECONDS
            time.sleep(0.05)


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(title="result events (stream checkout:events)", title_justify="left")
    for column in ("#", "event", "command", "session", "ver", "outcome"):
        table.add_column(column)
    for number, event in enumerate(events, start=1):
        table.add_row(
            str(number),
            event["type"],
            event["command_id"],
            event["session_id"] or "-",
            str(event["version"] or "-"),
            outcome(event),
        )
    return table


def outcome(event: dict[str, Any]) -> str:
    if event.get("error"):
        return f"[red]{event['error']['code']}[/red]: {event['error']['message']}"
    return f"{event.get('previous_status') or '(new)'} → {event['session']['status']}"


def sessions_table(session_ids: list[str]) -> Table:
    from worker.dynamodb.store import DynamoSessionStore
    from worker.settings import get_settings

    store = DynamoSessionStore.from_settings(get_settings())
    table = Table(title="final sessions (DynamoDB)", title_justify="left")
    for column in ("session", "status", "ver", "items", "subtotal", "tax", "fee", "discount"):
        table.add_column(column, justify="right" if column != "status" else "left")
    for column in ("total", "buyer", "payment", "missing"):
        table.add_column(column)
    for session_id in session_ids:
        snapshot = store.load(session_id)
        session, totals = snapshot.session, snapshot.session.totals
        amounts = (totals.subtotal, totals.tax, totals.fee, totals.discount)
        table.add_row(
            session_id,
            session.status,
            str(snapshot.version),
            str(len(session.line_items)),
            *(money(value) for value in amounts),
            f"{money(totals.total)} {totals.currency}",
            masked_email(session.buyer.email if session.buyer else None),
            f"{len(session.payment_instruments)} card(s)",
            ", ".join(m.code.removeprefix("missing_") for m in session.messages) or "-",
        )
    return table


def money(minor_units: int) -> str:
    return f"{minor_units / 100:.2f}"


def masked_email(email: str | None) -> str:
    """Enough to recognise the buyer in a demo, not their address."""
    if not email or "@" not in email:
        return "-"
    local, domain = email.split("@", 1)
    return f"{local[0]}***@{domain}"


if __name__ == "__main__":
    sys.exit(main())
