"""`checkout bulk-update` (one patch over many sessions) and `checkout report RUN_ID`."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from typing import Any

from tasks.cli.arguments import add_command, usage_error, whole_number
from tasks.cli.exit_codes import DYNAMODB, FAILED, PENDING, REDIS, TABLES_MISSING
from tasks.cli.progress import (
    EXIT_BROKER,
    EXIT_FAILURES,
    EXIT_PENDING,
    Progress,
    add_per_message_option,
    add_wait_options,
    exit_code,
    follow_run,
    print_summary,
    run_id_arg,
)

DRY_RUN_SHOWN = 10
SEND_BATCH = 1000


def register(commands: argparse._SubParsersAction) -> None:
    bulk = add_command(
        commands,
        "bulk-update",
        FAILED,
        PENDING,
        REDIS,
        DYNAMODB,
        TABLES_MISSING,
        help="apply one patch to many sessions (bulk queue)",
        description="Enqueue an update_session command with the same updates for every "
        "selected session, on the bulk queue. Rerunning the same patch on the same "
        "selection (same --run-id) skips the sessions the run already finished. A patch "
        "or selection it cannot use is a usage error (exit 2): nothing is enqueued.",
    )
    patch = bulk.add_mutually_exclusive_group(required=True)
    patch.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="an update (repeatable); VALUE is JSON, else a string: --set currency=EUR",
    )
    patch.add_argument("--patch", metavar="FILE", help='JSON file: {"updates": {...}}')
    selection = bulk.add_mutually_exclusive_group(required=True)
    selection.add_argument("--ids", metavar="FILE", help="session ids, one a line")
    selection.add_argument(
        "--where",
        action="append",
        metavar="KEY=VALUE",
        help="status=S, currency=C, updated_before=ISO-TIME, updated_after=ISO-TIME, line_item=ID "
        "(repeatable: all must hold)",
    )
    bulk.add_argument("--segments", type=whole_number(1), default=4, help="parallel Scan segments")
    bulk.add_argument(
        "--run-id", type=run_id_arg, help="default: derived from the patch and the selection"
    )
    bulk.add_argument(
        "--dry-run", action="store_true", help="count and show matching sessions only"
    )
    add_per_message_option(bulk, default="50")
    add_wait_options(bulk)
    bulk.set_defaults(run=run_bulk_update, check_arguments=_check_plan)

    report = add_command(
        commands,
        "report",
        FAILED,
        PENDING,
        REDIS,
        help="print the summary of a run (send or bulk-update)",
        description="Exit 0 when every command of the run was applied, 1 when some were "
        "rejected or dead-lettered, or Redis knows no such run (a run expires a week after "
        "its last command), 3 while some are pending.",
    )
    report.add_argument("run_id", metavar="RUN_ID", type=run_id_arg)
    report.add_argument("--json", action="store_true", help="one JSON object")
    report.set_defaults(run=run_report)


def run_bulk_update(args: argparse.Namespace) -> int:
    from tasks.bulk_select import SelectionError

    try:
        updates, selection, session_ids = _plan(args)
    except SelectionError as error:
        return usage_error("bulk-update", str(error))
    if args.dry_run:
        return _dry_run(session_ids, args)
    return _enqueue(updates, selection, session_ids, args)


def _check_plan(args: argparse.Namespace) -> int:
    """The patch and selection checked before any service is asked: a usage error stays
    one (exit 2) when Redis or DynamoDB is down too."""
    from tasks.bulk_select import (
        SelectionError,
        load_patch,
        parse_set,
        parse_where,
        validate_updates,
    )

    try:
        validate_updates(load_patch(args.patch) if args.patch else parse_set(args.set))
        if args.ids:
            with open(args.ids, "rb"):
                pass
        else:
            parse_where(args.where)
    except SelectionError as error:
        return usage_error("bulk-update", str(error))
    except OSError as error:
        return usage_error("bulk-update", f"--ids {args.ids}: {error.strerror}")
    return 0


def _plan(args: argparse.Namespace) -> tuple[dict[str, Any], str, Any]:
    """(validated updates, canonical selection, session id iterator)."""
    from tasks.bulk_select import (
        ids_digest,
        load_patch,
        parse_set,
        parse_where,
        read_ids,
        scan_sessions,
        validate_updates,
    )
    from worker.settings import get_settings

    updates = validate_updates(load_patch(args.patch) if args.patch else parse_set(args.set))
    if args.ids:
        return updates, f"ids:{ids_digest(args.ids)}", read_ids(args.ids)
    where = parse_where(args.where)
    from worker.dynamodb.clients import make_dynamodb_client

    settings = get_settings()
    client = make_dynamodb_client(settings)
    ids = scan_sessions(client, settings.sessions_table, where, segments=args.segments)
    return updates, f"where:{where.canonical()}", ids


def _dry_run(session_ids: Any, args: argparse.Namespace) -> int:
    shown: list[str] = []
    count = 0
    for session_id in session_ids:
        count += 1
        if len(shown) < DRY_RUN_SHOWN:
            shown.append(session_id)
    if args.json:
        print(json.dumps({"matching": count, "examples": shown}))
    else:
        print(f"{count} sessions match; nothing enqueued")
        for session_id in shown:
            print(f"  {session_id}")
    return 0


def _enqueue(updates: dict[str, Any], selection: str, session_ids: Any, args: Any) -> int:
    from tasks.bulk_select import bulk_run_id, update_commands
    from tasks.producer import CommandProducer, EnqueueFailed, InvalidCommand, prepare
    from worker.settings import get_settings

    run_id = args.run_id or bulk_run_id(updates, selection)
    print(f"run {run_id}", file=sys.stderr, flush=True)
    producer = CommandProducer.from_settings(
        get_settings(), bulk=True, per_message=args.per_message
    )
    commands = iter(update_commands(session_ids, updates, run_id))
    sent = invalid = 0
    with Progress("enqueueing", quiet=args.quiet) as progress:
        while batch := list(islice(commands, SEND_BATCH)):
            pending = []
            for command in batch:
                try:
                    pending.append(prepare(command))
                except InvalidCommand as error:  # a session id the schema refuses
                    invalid += 1
                    print(f"session {command['session_id']!r}: {error}", file=sys.stderr)
            try:
                sent += producer.send_prepared(pending, run_id=run_id)
            except EnqueueFailed as failure:
                print(
                    f"enqueued {sent + failure.sent}, then the broker failed: "
                    f"{failure.__cause__}; run it again to resume",
                    file=sys.stderr,
                )
                return EXIT_BROKER
            progress.update(sent)
    print(f"run {run_id}: enqueued {sent} commands", file=sys.stderr)
    summary, done = follow_run(lambda: producer.read_run(run_id), args)
    if args.wait or args.json:
        print_summary(summary, as_json=args.json)
    return exit_code(summary, waited=args.wait, done=done, invalid=invalid)


def run_report(args: argparse.Namespace) -> int:
    from tasks.shards import ShardSet
    from worker.settings import get_settings

    summary = ShardSet(get_settings()).read_run(args.run_id)  # every shard's part of it
    if not summary.sent:
        print(
            f"checkout report: no run {args.run_id} in Redis (never sent, or expired a week "
            "after its last command): check the id `checkout send` printed",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    print_summary(summary, as_json=args.json)
    if summary.pending:
        return EXIT_PENDING
    return exit_code(summary, waited=True, done=True)
