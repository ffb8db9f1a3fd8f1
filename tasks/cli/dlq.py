"""`checkout dlq list|show|replay|purge`: inspect and act on the dead-letter store.

`list` on a terminal shows ids, types and errors only: a command body may carry a
buyer's email or payment data. `list --json` and `show` print the stored command
(or raw message), because that is what an operator asks them for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from schemas.ids import escaped
from tasks.cli.arguments import add_command, whole_number
from tasks.cli.exit_codes import FAILED, REDIS
from worker.delivery.jids import shard_named
from worker.settings import get_settings

COLUMNS = ("id", "command_id", "type", "session", "code", "attempts", "last failure")


def register(commands: argparse._SubParsersAction) -> None:
    dlq = add_command(
        commands, "dlq", FAILED, REDIS, help="list, show, replay or purge dead-lettered commands"
    )
    actions = dlq.add_subparsers(required=True, metavar="ACTION")

    listing = add_command(actions, "list", REDIS, help="list entries, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--limit", type=whole_number(1), default=None, help="at most this many entries"
    )
    listing.set_defaults(run=run_list)

    show = add_command(
        actions, "show", FAILED, REDIS, help="print one entry as JSON, command included"
    )
    show.add_argument("id", metavar="ID", help="dead-letter id or command_id")
    show.set_defaults(run=run_show)

    for name, run, text in (
        ("replay", run_replay, "enqueue the command again (applied once, whatever the order)"),
        ("purge", run_purge, "delete the entry"),
    ):
        action = add_command(actions, name, FAILED, REDIS, help=text)
        target = action.add_mutually_exclusive_group(required=True)
        target.add_argument("id", metavar="ID", nargs="?", help="dead-letter id or command_id")
        target.add_argument("--all", action="store_true", help="every entry")
        action.set_defaults(run=run)


def _guarded(action: Callable[[Any, argparse.Namespace], int]) -> Callable[..., int]:
    """Run `action` with a store; Redis refusing it is one line on stderr and exit 4."""

    def run(args: argparse.Namespace) -> int:
        from tasks.cli.errors import shard_failure
        from worker.errors import JournalUnavailable

        try:
            return action(_store(), args)
        except JournalUnavailable as error:
            # With several shards, which one (it may go away after the preflight).
            print(f"checkout dlq: {shard_failure(error) or error}", file=sys.stderr)
            return REDIS
        except NotOneEntry as error:
            print(f"checkout dlq: {error}", file=sys.stderr)
            return FAILED

    return run


def _store() -> Any:
    """The dead-letter store (every shard's, with several: `ShardedDeadLetters`)."""
    settings = get_settings()
    stores = [_shard_store(settings.for_shard(n)) for n in range(len(settings.shard_urls))]
    return stores[0] if len(stores) == 1 else ShardedDeadLetters(stores)


def _shard_store(settings: Any) -> Any:
    from schemas.payments import PaymentDisplay
    from worker.delivery.deadletters import DeadLetterStore
    from worker.delivery.journal import Journal
    from worker.redis_client import make_redis_client

    client = make_redis_client(settings.redis_url)
    journal = Journal(client, settings)
    return DeadLetterStore(
        client, journal.keys, journal, display=PaymentDisplay.of(settings.payment_display_fields)
    )


class NotOneEntry(Exception):
    """An id that names no shard, or entries on several: one line, exit 1."""


class ShardedDeadLetters:
    """The dead-letter stores of every shard as one: an entry stays on the shard whose
    command it is (a replay goes back to that shard, the session's), and its listings
    say which (`shard` in JSON). An entry's id starts with its shard's tag (`s<K>:`,
    `worker.delivery.jids`), so it is unique across shards and names where to look."""

    def __init__(self, stores: list[Any]) -> None:
        self.stores = stores
        self.shard_of: dict[str, int] = {}

    def list(self, limit: int | None = None) -> list[Any]:
        found = []
        for shard, store in enumerate(self.stores):
            for entry in store.list(limit):
                self.shard_of[entry.id] = shard
                found.append(entry)
        found.sort(key=lambda entry: entry.dead_lettered_at or "")  # oldest first, as one
        return found[:limit] if limit is not None else found

    def get(self, id_or_command_id: str) -> Any:
        """The entry with this id, read from the shard its tag names; else the newest
        entry of this command id, which must then be on one shard only (a command id
        carries no tag: the same one sent for two sessions may be dead-lettered on two)."""
        named = shard_named(id_or_command_id)
        if named is not None and named < len(self.stores):
            entry = self.stores[named].entry(id_or_command_id)
            if entry is not None:
                self.shard_of[entry.id] = named
                return entry
        found = []
        for shard, store in enumerate(self.stores):
            # An untagged id is a command id, or an entry's from before shard tags.
            entry = store.entry(id_or_command_id) if named is None else None
            entry = entry or store.newest_of(id_or_command_id)
            if entry is not None:
                found.append((shard, entry))
        if len(found) > 1:
            ids = ", ".join(f"{entry.id} (shard {shard})" for shard, entry in found)
            raise NotOneEntry(
                f"{escaped(id_or_command_id)} names dead-letter entries on {len(found)} shards: "
                f"{escaped(ids)}; give the id of the one you mean"
            )
        if found:
            shard, entry = found[0]
            self.shard_of[entry.id] = shard
            return entry
        if named is not None and named >= len(self.stores):
            raise NotOneEntry(
                f"dead-letter id {escaped(id_or_command_id)} names shard {named}, and "
                f"CHECKOUT_REDIS_URLS lists {len(self.stores)} shards (s0 to "
                f"s{len(self.stores) - 1}): is this the deployment it came from?"
            )
        return None

    def replay(self, entry_id: str) -> str:
        return self._holding(entry_id).replay(entry_id)

    def purge(self, entry_id: str) -> bool:
        return self._holding(entry_id).purge(entry_id)

    def replay_all(self) -> dict[str, str]:
        return {k: v for store in self.stores for k, v in store.replay_all().items()}

    def purge_all(self) -> int:
        return sum(store.purge_all() for store in self.stores)

    def _holding(self, entry_id: str) -> Any:
        """The store of the shard holding `entry_id` (as `get` found it)."""
        if entry_id not in self.shard_of:
            self.get(entry_id)
        return self.stores[self.shard_of.get(entry_id, 0)]


def _entry_json(store: Any, entry: Any, *, indent: int | None = None) -> str:
    """An entry's JSON, with its shard first when the store spans several."""
    shard = getattr(store, "shard_of", {}).get(entry.id)
    if shard is None:
        return entry.to_json(indent=indent)
    separators = None if indent else (",", ":")
    shown = {"shard": shard, **entry.to_dict()}
    return json.dumps(shown, indent=indent, separators=separators, ensure_ascii=False)


@_guarded
def run_list(store: Any, args: argparse.Namespace) -> int:
    entries = store.list(args.limit)
    if args.json:
        for entry in entries:
            print(_entry_json(store, entry))
    elif sys.stdout.isatty():
        _print_table(entries)
    else:
        print("\t".join(COLUMNS))
        for entry in entries:
            print("\t".join(_row(entry)))
    return 0


def _row(entry: Any) -> tuple[str, ...]:
    """What a listing shows of an entry: ids and the error, never the command's body."""
    kind = entry.command.get("type") if entry.command else None
    row = (
        entry.id,
        entry.command_id or "-",
        str(kind) if kind else ("(raw message)" if entry.raw is not None else "-"),
        entry.session_id or "-",
        entry.error["code"],
        str(entry.attempts),
        entry.last_failure_at or "-",
    )
    # Ids and types of raw messages are whatever their sender wrote.
    return tuple(escaped(value) for value in row)


def _print_table(entries: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(entries)} dead-lettered")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(*(Text(value) for value in _row(entry)))  # Text: no rich markup
    Console(highlight=False).print(table)


@_guarded
def run_show(store: Any, args: argparse.Namespace) -> int:
    entry = store.get(args.id)
    if entry is None:
        return _unknown(args.id)
    print(_entry_json(store, entry, indent=2))
    return 0


@_guarded
def run_replay(store: Any, args: argparse.Namespace) -> int:
    if args.all:
        return _replay_all(store)
    entry = store.get(args.id)
    result = store.replay(entry.id) if entry else ""
    if result == "":
        return _unknown(args.id)
    if result == "raw":
        print(
            f"dead-letter entry {entry.id} is a raw message, not a command: it cannot be "
            f"replayed; purge it (checkout dlq purge {entry.id})",
            file=sys.stderr,
        )
        return 1
    print(f"replayed {entry.id} (command {entry.command_id}) as delivery {result}")
    return 0


def _replay_all(store: Any) -> int:
    results = store.replay_all()
    raw = sorted(entry_id for entry_id, result in results.items() if result == "raw")
    replayed = sum(1 for result in results.values() if result not in ("", "raw"))
    print(f"replayed {replayed} dead-lettered commands")
    if raw:
        print(
            f"{len(raw)} entries are raw messages, not commands, and were left in the store "
            f"(purge them): {' '.join(raw)}",
            file=sys.stderr,
        )
        return 1
    return 0


@_guarded
def run_purge(store: Any, args: argparse.Namespace) -> int:
    if args.all:
        print(f"purged {store.purge_all()} dead-letter entries")
        return 0
    entry = store.get(args.id)
    if entry is None or not store.purge(entry.id):
        return _unknown(args.id)
    print(f"purged {entry.id}")
    return 0


def _unknown(entry_id: str) -> int:
    print(
        f"checkout dlq: no dead-letter entry {escaped(entry_id)} (replayed or purged already? "
        "`checkout dlq list` shows the ids)",
        file=sys.stderr,
    )
    return FAILED
