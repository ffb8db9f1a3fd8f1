"""`checkout init`: the tables."""

from __future__ import annotations

import argparse

from tasks.cli.arguments import add_command
from tasks.cli.exit_codes import DYNAMODB
from worker.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    init = add_command(
        commands, "init", DYNAMODB, help="create the tables and enable TTL (idempotent)"
    )
    init.set_defaults(run=run_init)


def run_init(args: argparse.Namespace) -> int:
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.dynamodb.tables import ensure_tables

    settings = get_settings()
    report = ensure_tables(make_dynamodb_client(settings), settings)
    for action in report.done:
        print(action)
    ready = f"table ready: {settings.sessions_table}"
    if report.ttl_unsupported:
        ready += (
            f"; this DynamoDB does not support TTL ({report.ttl_unsupported}): expired "
            "sessions are still treated as gone by the pipeline"
        )
    print(ready)
    return 0
