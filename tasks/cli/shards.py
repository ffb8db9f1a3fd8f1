"""`checkout shards` and `checkout shards reset`: what each Redis shard records of its
place in the deployment, and recording a new shard list once every shard has drained
(README "Scaling out")."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tasks.cli.arguments import add_command
from tasks.cli.errors import Friendly
from tasks.cli.exit_codes import FAILED, REDIS
from worker.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    shards = add_command(
        commands,
        "shards",
        FAILED,
        REDIS,
        help="each Redis shard's recorded place, queues and commands in flight",
    )
    shards.add_argument("--json", action="store_true", help="one JSON object per shard")
    shards.set_defaults(run=run_shards)
    actions = shards.add_subparsers(metavar="ACTION")
    reset = add_command(
        actions,
        "reset",
        FAILED,
        REDIS,
        help="record CHECKOUT_REDIS_URLS as the shard list; only once every shard is drained",
        description="Exit 1: a shard still has queued or in-flight commands (nothing is "
        "changed); let the workers drain them with producers stopped, then run it again.",
    )
    reset.set_defaults(run=run_reset)


def run_shards(args: argparse.Namespace) -> int:
    for row in _rows():
        print(json.dumps(row) if args.json else _line(row))
    return 0


def run_reset(args: argparse.Namespace) -> int:
    from tasks.shards import ShardSet
    from worker.delivery import shard_records

    rows = _rows()
    busy = [row for row in rows if row["queued"] or row["in_flight"]]
    if busy:
        listed = "; ".join(_line(row) for row in busy)
        raise Friendly(f"not drained, nothing changed: {listed}", FAILED)
    shards = ShardSet(get_settings())
    shard_records.reset(shards.clients, get_settings().key_prefix)
    for row in rows:
        print(f"shard {row['shard']} ({row['redis']}): now {row['expected']}")
    return 0


def _rows() -> list[dict[str, Any]]:
    """Each shard: where, what it records, what the list says, how much it holds."""
    from tasks.shards import ShardSet
    from worker.delivery import shard_records
    from worker.delivery.journal import in_flight_count
    from worker.redis_client import as_text

    settings = get_settings()
    shards = ShardSet(settings)
    queues = (settings.commands_queue, settings.bulk_queue)
    rows = []
    for shard, (client, url) in enumerate(zip(shards.clients, shards.urls, strict=True)):
        recorded = client.get(shard_records.record_key(settings.key_prefix))
        rows.append(
            {
                "shard": shard,
                "redis": shard_records.shown_url(url),
                "recorded": as_text(recorded) if recorded is not None else None,
                "expected": shard_records.expected(shard, shards.count),
                "queued": sum(client.llen(queue) for queue in queues),
                "in_flight": in_flight_count(client, shards.keys),
            }
        )
    return rows


def _line(row: dict[str, Any]) -> str:
    recorded = row["recorded"] or "nothing"
    agrees = (
        "" if row["recorded"] in (None, row["expected"]) else f" (the list says {row['expected']})"
    )
    return (
        f"shard {row['shard']} ({row['redis']}): records {recorded}{agrees}; "
        f"{row['queued']} queued, {row['in_flight']} in flight"
    )
