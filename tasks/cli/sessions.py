"""`checkout sessions` (find sessions by --where) and `checkout history SESSION_ID`.

Both print ids, statuses, versions, times and amounts only: never payment instruments,
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
from tasks.cli.arguments import add_command, session_id, whole_number
from tasks.cli.read import terminal_json
from tasks.cli.tables import print_rows
from worker.settings import get_settings

UPDATED_AT_CELL = 3  # tasks.session_list.COLUMNS


def register(commands: argparse._SubParsersAction) -> None:
    sessions = add_command(
        commands,
        "sessions",
        exit_codes.DYNAMODB,
        exit_codes.TABLES_MISSING,
        help="list the sessions a --where selects",
        description="List sessions: a parallel, strongly consistent Scan, in no particular "
        "order (the terminal table is sorted by updated_at). Sessions whose ttl has "
        "passed are left out unless --include-expired.",
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
        "--limit", type=whole_number(1), metavar="N", help="stop after this many sessions"
    )
    sessions.add_argument("--json", action="store_true", help="one JSON object per line")
    sessions.add_argument(
        "--include-expired", action="store_true", help="also sessions whose ttl has passed"
    )
    sessions.add_argument(
        "--segments", type=whole_number(1), default=4, metavar="N", help="parallel Scan segments"
    )
    sessions.set_defaults(run=run_sessions)

    history = add_command(
        commands,
        "history",
        exit_codes.FAILED,
        exit_codes.REDIS,
        exit_codes.DYNAMODB,
        exit_codes.TABLES_MISSING,
        help="a session's commands and their outcomes, oldest first",
        description="From the event stream (every outcome, while its entry is within "
        "CHECKOUT_EVENTS_MAXLEN) and the session's ledger (its last 8 applied commands, "
        "as digests of their ids). The source column says which holds each line.",
    )
    history.add_argument("session_id", metavar="SESSION_ID", type=session_id)
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.set_defaults(run=run_history)


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


# ─── checkout history ───


def run_history(args: argparse.Namespace) -> int:
    from tasks.session_history import COLUMNS, read_stored, stream_lines, with_ledger
    from worker.delivery.shards import shard_of
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.redis_client import make_redis_client
    from worker.streams.reader import parse_event, read_events, session_entries

    settings = get_settings()
    stored = read_stored(
        make_dynamodb_client(settings),
        settings.sessions_table,
        args.session_id,
        now=int(time.time()),
    )
    # A session's events are all on its shard's stream (`worker.delivery.shards`).
    shard = shard_of(args.session_id, len(settings.shard_urls))
    client = make_redis_client(settings.shard_urls[shard])
    entries = session_entries(read_events(client, settings.events_stream), args.session_id)
    lines = stream_lines((entry_id, parse_event(text) or {}) for entry_id, text in entries)
    stream_count = len(lines)
    if stored is not None:
        lines = with_ledger(lines, stored.ledger, stored.version)
    if not lines and stored is None:
        print(
            f"checkout history: no session {args.session_id!r} in {settings.sessions_table} "
            f"and no event of it in {settings.events_stream}",
            file=sys.stderr,
        )
        return exit_codes.FAILED
    if args.json:
        _print_json(line.to_json() for line in lines)
    else:
        print_rows(COLUMNS, (line.cells() for line in lines))
    _print_coverage(settings, client.xlen(settings.events_stream), stream_count, stored)
    return exit_codes.OK


def _print_coverage(settings: Any, stream_length: int, found: int, stored: Any) -> None:
    """What each source covered, on stderr (stdout stays the lines)."""
    from worker.domain.ledger import LEDGER_SIZE

    print(
        f"stream {settings.events_stream}: {found} of its {stream_length} entries are this "
        f"session's (it keeps about the last {settings.events_maxlen}; older ones are trimmed)",
        file=sys.stderr,
    )
    if stored is None:
        print("ledger: no session item (expired and deleted, or never created)", file=sys.stderr)
        return
    state = f"{stored.status}, expired" if stored.expired else str(stored.status)
    print(
        f"ledger: {len(stored.ledger)} applied commands (it keeps the last {LEDGER_SIZE}, "
        f"ids as digests); the session is at version {stored.version} ({state})",
        file=sys.stderr,
    )
