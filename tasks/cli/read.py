"""`checkout get` and `checkout events`: read sessions and result events."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from schemas.ids import escaped
from tasks.cli.arguments import (
    add_command,
    session_id,
    stream_position,
    usage_error,
    whole_number,
)
from tasks.cli.exit_codes import DYNAMODB, FAILED, REDIS, TABLES_MISSING
from worker.settings import get_settings

# The key each printed event carries its stream entry id under (what --after takes).
STREAM_ID = "stream_id"


def register(commands: argparse._SubParsersAction) -> None:
    get = add_command(
        commands, "get", FAILED, DYNAMODB, TABLES_MISSING, help="print a session as JSON"
    )
    get.add_argument("session_id", metavar="SESSION_ID", type=session_id)
    get.set_defaults(run=run_get)

    events = add_command(
        commands,
        "events",
        REDIS,
        help="print result events as JSON lines",
        description="Each line is an event with its stream entry id added as `stream_id`, "
        "which --after takes to resume after it. With several shards (CHECKOUT_REDIS_URLS) "
        "every shard's events, each with its `shard`, in time order; --after then also "
        "takes K:ID,K:ID,... to resume each shard after its last printed id.",
    )
    events.add_argument("--follow", "-f", action="store_true", help="wait for new events")
    events.add_argument(
        "--after",
        type=stream_position,
        default="0-0",
        help="stream entry id (a printed `stream_id`) to start after: <ms>-<seq>, 0 or $ (now); "
        "with shards also K:ID,K:ID,...",
    )
    events.add_argument(
        "--session", metavar="ID", type=session_id, help="only this session's events"
    )
    events.add_argument("--count", type=whole_number(1), default=None, help="stop after this many")
    events.add_argument(
        "--group",
        help="read through this consumer group (a new group starts after --after), "
        "acknowledge what was printed, take over what dead consumers left pending",
    )
    events.add_argument(
        "--consumer",
        help="with --group: this reader's name in it (default: the host name, the same on "
        "every run; give each reader its own when several run at once on one host)",
    )
    events.add_argument(
        "--claim-idle-ms",
        type=whole_number(0),
        default=None,
        help="with --group: take over entries pending this long (default: 30000)",
    )
    events.set_defaults(run=run_events)


def run_get(args: argparse.Namespace) -> int:
    from schemas.payments import PaymentDisplay
    from worker.dynamodb.store import DynamoSessionStore

    settings = get_settings()
    snapshot = DynamoSessionStore.from_settings(settings).load(args.session_id)
    if snapshot is None or snapshot.expired:
        state = "expired" if snapshot else "not found"
        print(f"Checkout session {state}: {escaped(args.session_id)}", file=sys.stderr)
        return FAILED
    # What the seed's `get` returns (the item without its key and ttl), with payment
    # instruments reduced to their display fields, as events show them.
    document = PaymentDisplay.of(settings.payment_display_fields).document(
        snapshot.session.to_document()
    )
    text = json.dumps({**document, "version": snapshot.version}, indent=2, ensure_ascii=False)
    print(terminal_json(text))
    return 0


def run_events(args: argparse.Namespace) -> int:
    from worker.redis_client import make_redis_client

    if args.group is None and (args.consumer is not None or args.claim_idle_ms is not None):
        return usage_error("events", "--consumer and --claim-idle-ms need --group")
    if args.group is not None and args.session is not None:
        # The group would acknowledge the other sessions' events without printing them.
        return usage_error("events", "--session cannot be used with --group")
    settings = get_settings()
    if problem := _shard_positions_problem(args, len(settings.shard_urls)):
        return usage_error("events", f"--after {args.after}: {problem}")
    clients = [make_redis_client(url) for url in settings.shard_urls]
    try:
        if args.group is None:
            _print_stream(args, clients, settings.events_stream)
        else:
            _print_group(args, clients, settings.events_stream)
    except KeyboardInterrupt:
        pass
    except _OutputClosed:
        # The reader went away (`| head`): the entry in hand stays pending, like a killed consumer.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _shard_positions_problem(args: argparse.Namespace, shards: int) -> str | None:
    """What is wrong with a per-shard --after (K:ID,...), if anything."""
    from worker.streams.sharded import parse_positions

    if ":" not in args.after:
        return None
    if shards == 1:
        return "K:ID names a shard, and there is one Redis (CHECKOUT_REDIS_URLS is not set)"
    if args.group is not None:
        return "a new group starts after one id on every shard, not K:ID"
    try:
        parse_positions(args.after, shards)
    except ValueError as error:
        return str(error)
    return None


def _print_stream(args: argparse.Namespace, clients: list[Any], stream: str) -> None:
    from worker.streams.reader import read_events, session_entries

    if len(clients) > 1:
        return _print_shards(args, clients, stream)
    entries = read_events(clients[0], stream, after=args.after, follow=args.follow)
    if args.session is not None:
        entries = session_entries(entries, args.session)
    for entry_id, event_json in _limit(entries, args.count):
        print(terminal_json(with_stream_id(entry_id, event_json)), flush=True)


def _print_shards(args: argparse.Namespace, clients: list[Any], stream: str) -> None:
    """Every shard's events as one time line, each line naming its shard. A session's
    events are all on one shard: --session reads that shard's stream only."""
    from worker.delivery.shards import shard_of
    from worker.streams.reader import read_events, session_entries
    from worker.streams.sharded import merged_events, parse_positions

    positions = parse_positions(args.after, len(clients))
    if args.session is not None:
        shard = shard_of(args.session, len(clients))
        entries = read_events(
            clients[shard], stream, after=positions.get(shard, "0-0"), follow=args.follow
        )
        numbered = ((shard, i, t) for i, t in session_entries(entries, args.session))
    else:
        numbered = merged_events(clients, stream, after=positions, follow=args.follow)
    for shard, entry_id, event_json in _limit(numbered, args.count):
        line = with_stream_id(entry_id, event_json)
        print(terminal_json(f'{{"shard":{shard},{line[1:]}'), flush=True)


def _print_group(args: argparse.Namespace, clients: list[Any], stream: str) -> None:
    """Print through the consumer group (the group on every shard); each entry is
    acknowledged once it is written."""
    from worker.streams.consumer import DEFAULT_CLAIM_IDLE_MS, EventConsumer, default_consumer_name
    from worker.streams.sharded import ShardedEventConsumer

    options: dict[str, Any] = {
        "stream": stream,
        "group": args.group,
        "consumer": args.consumer or default_consumer_name(),
        "claim_idle_ms": args.claim_idle_ms or DEFAULT_CLAIM_IDLE_MS,
        "entry_id_field": STREAM_ID,
    }
    consumer: Any = (
        ShardedEventConsumer(clients, **options)
        if len(clients) > 1
        else EventConsumer(clients[0], **options)
    )
    consumer.ensure_group(args.after)
    remaining = args.count
    while remaining is None or remaining > 0:
        taken = consumer.poll_once(_print_event, limit=remaining, wait=args.follow)
        if not taken and not args.follow:
            return
        if remaining is not None:
            remaining -= taken


class _OutputClosed(BaseException):
    """stdout is closed. A BaseException, so the consumer stops instead of logging and going on."""


def _print_event(event: dict[str, Any]) -> None:
    try:
        print(
            terminal_json(json.dumps(event, separators=(",", ":"), ensure_ascii=False)), flush=True
        )
    except BrokenPipeError:
        raise _OutputClosed from None


def with_stream_id(entry_id: str, event_json: str) -> str:
    """The event's JSON with `"stream_id"` first, the rest exactly as stored (no re-encoding)."""
    body = event_json.lstrip()
    if not body.startswith("{"):  # not an object: wrapped, so every line is still one
        return json.dumps({STREAM_ID: entry_id, "unparsed": event_json}, ensure_ascii=False)
    rest = body[1:].lstrip()
    separator = "" if rest.startswith("}") else ","
    return f'{{"{STREAM_ID}":{json.dumps(entry_id)}{separator}{rest}'


# JSON escapes what is below U+0020 anyway; DEL, the C1 controls (U+0080-U+009F: some
# terminals take U+009B for an escape sequence) and the Unicode line breaks it does not.
_UNESCAPED_CONTROLS = re.compile("[\u007f-\u009f\u2028\u2029]")


def terminal_json(text: str) -> str:
    """JSON text with every control character escaped: the same JSON, safe on a terminal."""
    return _UNESCAPED_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _limit(items: Iterator[Any], count: int | None) -> Iterator[Any]:
    for index, item in enumerate(items):
        if count is not None and index >= count:
            return
        yield item
