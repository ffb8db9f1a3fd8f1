"""`checkout get` and `checkout events`: read sessions and result events."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from worker.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    get = commands.add_parser("get", help="print a session as JSON")
    get.add_argument("session_id", metavar="SESSION_ID")
    get.set_defaults(run=run_get)

    events = commands.add_parser("events", help="print result events as JSON lines")
    events.add_argument("--follow", "-f", action="store_true", help="wait for new events")
    events.add_argument("--after", default="0-0", help="stream entry id to start after")
    events.add_argument("--count", type=int, default=None, help="stop after this many")
    events.set_defaults(run=run_events)


def run_get(args: argparse.Namespace) -> int:
    from worker.store import DynamoSessionStore

    snapshot = DynamoSessionStore.from_settings(get_settings()).load(args.session_id)
    if snapshot is None or snapshot.expired:
        state = "expired" if snapshot else "not found"
        print(f"Checkout session {state}: {args.session_id}", file=sys.stderr)
        return 1
    # What the seed's `get` returns: the item without its key and ttl.
    print(json.dumps({**snapshot.session.to_document(), "version": snapshot.version}, indent=2))
    return 0


def run_events(args: argparse.Namespace) -> int:
    from worker.events import make_redis_client, read_events

    settings = get_settings()
    client = make_redis_client(settings.redis_url)
    stream = read_events(client, settings.events_stream, after=args.after, follow=args.follow)
    try:
        for _, event_json in _limit(stream, args.count):
            print(event_json, flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def _limit(items: Iterator[Any], count: int | None) -> Iterator[Any]:
    for index, item in enumerate(items):
        if count is not None and index >= count:
            return
        yield item
