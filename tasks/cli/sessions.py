"""`checkout sessions`: find sessions by --where.

It prints ids, statuses, versions, times and amounts only: never payment instruments,
and a buyer's email masked (`tasks.session_list`). A table on a terminal, tab-separated
lines when piped (`tasks.cli.tables`), JSON lines with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from tasks.cli import exit_codes
from tasks.cli.read import terminal_json
from tasks.cli.tables import print_rows
from worker.settings import get_settings

UPDATED_AT_CELL = 3  # tasks.session_list.COLUMNS


def register(commands: argparse._SubParsersAction) -> None:
    sessions = commands.add_parser(
        "sessions",
        help="list the sessions a --where selects",
        description="List sessions: a parallel, strongly consistent Scan, in no particular\n"
        "order (the terminal table is sorted by updated_at). Sessions whose ttl has\n"
        "passed are left out unless --include-expired.",
        epilog=exit_codes.codes_help(exit_codes.DYNAMODB, exit_codes.TABLES_MISSING),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sessions.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="as for bulk-update: status=S, currency=C, updated_before=ISO-TIME, "
        "updated_after=ISO-TIME, line_item=ID (repeatable: all must hold; none: every session)",
    )
    sessions.add_argument(
        "--limit", type=_positive, metavar="N", help="stop after this many sessions"
    )
    sessions.add_argument("--json", action="store_true", help="one JSON object per line")
    sessions.add_argument(
        "--include-expired", action="store_true", help="also sessions whose ttl has passed"
    )
    sessions.add_argument(
        "--segments", type=_positive, default=4, metavar="N", help="parallel Scan segments"
    )
    sessions.set_defaults(run=run_sessions)


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return value


# ─── checkout sessions ───


def run_sessions(args: argparse.Namespace) -> int:
    from tasks.bulk_select import SelectionError, parse_where
    from tasks.session_list import COLUMNS, list_sessions
    from worker.dynamodb.clients import make_dynamodb_client

    try:
        where = parse_where(args.where)
    except SelectionError as error:
        print(f"checkout sessions: {error}", file=sys.stderr)
        return exit_codes.USAGE
    settings = get_settings()
    rows: Iterator[Any] = list_sessions(
        make_dynamodb_client(settings),
        settings.sessions_table,
        where,
        now=int(time.time()),
        include_expired=args.include_expired,
        segments=args.segments,
    )
    rows = islice(rows, args.limit)
    if args.json:
        _print_json(row.to_json() for row in rows)
    else:
        print_rows(
            COLUMNS,
            (row.cells() for row in rows),
            title=lambda count: f"{count} sessions",
            table_order=lambda cells: cells[UPDATED_AT_CELL],
        )
    return exit_codes.OK


def _print_json(objects: Iterable[dict[str, Any]]) -> None:
    for value in objects:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        print(terminal_json(text), flush=True)
