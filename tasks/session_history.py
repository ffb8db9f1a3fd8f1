"""`checkout history SESSION_ID`: a session's commands and their outcomes, oldest first.

Two sources, each covering what the other cannot:

- **The event stream** holds one event per outcome (applied, rejected, dead-lettered)
  with the command's id and time, for as long as the entry stays in the stream: it is
  capped near `CHECKOUT_EVENTS_MAXLEN` entries, oldest trimmed first.
- **The ledger** in the session item (`applied_commands`, `worker.domain.ledger`) holds
  the last `LEDGER_SIZE` applied commands for as long as the session lives, as digests
  of their ids: it confirms the stream's applied events, and shows the applied commands
  whose events were trimmed, by version, without an id or a time. No rejections.

Neither records the seed service's own writes: it publishes no events, adds no entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from worker.domain.ledger import command_digest, entry_digest
from worker.dynamodb.items import LEDGER, SESSION_KEY, TTL, VERSION, from_item

STREAM = "stream"
LEDGER_SOURCE = "ledger"
COLUMNS = ("time", "command_id", "outcome", "version", "source")


@dataclass(frozen=True)
class HistoryLine:
    """One command's outcome: an event type when applied, `rejected:<code>`,
    `dead_lettered:<code>`, or `applied` for a ledger entry the stream no longer holds."""

    time: str | None
    command_id: str | None
    outcome: str
    version: int | None
    applied: bool
    sources: tuple[str, ...]
    stream_id: str | None = None
    event_id: str | None = None
    ledger_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        del values["applied"]  # the outcome says it
        return values

    def cells(self) -> tuple[str, ...]:
        command = self.command_id or f"(id not kept: {self.ledger_digest})"
        version = "-" if self.version is None else str(self.version)
        return (self.time or "-", command, self.outcome, version, "+".join(self.sources))


@dataclass(frozen=True)
class Stored:
    """What the session item says about its history."""

    ledger: tuple[str, ...]
    version: int
    status: Any
    expired: bool


def read_stored(client: Any, table: str, session_id: str, *, now: int) -> Stored | None:
    """The session item's ledger and version (a strongly consistent read), or None.

    Read raw, without the session model: a corrupt item's history is still readable.
    """
    response = client.get_item(
        TableName=table,
        Key={SESSION_KEY: {"S": session_id}},
        ConsistentRead=True,
        ProjectionExpression="#l, #v, #t, #s",
        ExpressionAttributeNames={"#l": LEDGER, "#v": VERSION, "#t": TTL, "#s": "status"},
    )
    if "Item" not in response:
        return None
    values = from_item(response["Item"])
    ledger, version, ttl = values.get(LEDGER), values.get(VERSION), values.get(TTL)
    return Stored(
        ledger=tuple(e for e in ledger if isinstance(e, str)) if isinstance(ledger, list) else (),
        version=version if isinstance(version, int) else 1,
        status=values.get("status"),
        expired=isinstance(ttl, int) and ttl <= now,
    )


def stream_lines(events: Iterable[tuple[str, dict[str, Any]]]) -> list[HistoryLine]:
    """A line per outcome from `(entry_id, event)` in stream order; a republished event
    (a worker that crashed after its write publishes it again, same `event_id`) once."""
    seen: set[str] = set()
    lines = []
    for entry_id, event in events:
        event_id = event.get("event_id")
        if isinstance(event_id, str):
            if event_id in seen:
                continue
            seen.add(event_id)
        lines.append(_stream_line(entry_id, event))
    return lines


def _stream_line(entry_id: str, event: dict[str, Any]) -> HistoryLine:
    kind = str(event.get("type"))
    error = event.get("error") if isinstance(event.get("error"), dict) else {}
    outcome = {
        "command.rejected": f"rejected:{error.get('code')}",
        "command.dead_lettered": f"dead_lettered:{error.get('code')}",
    }.get(kind, kind)
    version = event.get("version")
    return HistoryLine(
        time=event.get("occurred_at"),
        command_id=event.get("command_id"),
        outcome=outcome,
        version=version if isinstance(version, int) else None,
        applied=outcome == kind,
        sources=(STREAM,),
        stream_id=entry_id,
        event_id=event.get("event_id"),
    )


def with_ledger(
    lines: Sequence[HistoryLine], ledger: Sequence[str], version: int
) -> list[HistoryLine]:
    """`lines` with what the ledger adds: each applied line it holds marked as in both,
    each entry the stream lost put where it happened.

    Every write of the pipeline adds one entry and one version, so the newest entry
    wrote `version`, the one before `version - 1`, and so on.
    """
    entries = [(entry_digest(entry), version - later) for later, entry in enumerate(ledger[::-1])]
    entries.reverse()  # oldest first
    held = dict(entries)
    merged: list[HistoryLine] = []
    confirmed = set()
    for line in lines:
        digest = command_digest(line.command_id) if line.applied and line.command_id else None
        if digest is not None and held.get(digest) == line.version:
            line = replace(line, sources=(*line.sources, LEDGER_SOURCE), ledger_digest=digest)
            confirmed.add(digest)
        merged.append(line)
    lost = [_ledger_line(digest, written) for digest, written in entries if digest not in confirmed]
    # The stream loses its oldest entries (MAXLEN), or has not got an event yet (the
    # write landed, the publish is still to come): an entry is in the lost past when
    # the stream shows anything that happened after it, else in the future.
    start = _latest_life(merged)
    older = [line for line in lost if any(_later(seen, line.version) for seen in merged[start:])]
    newer = [line for line in lost if line not in older]
    return [*merged[:start], *older, *merged[start:], *newer]


def _ledger_line(digest: str, version: int) -> HistoryLine:
    return HistoryLine(
        time=None,
        command_id=None,
        outcome="applied",
        version=version,
        applied=True,
        sources=(LEDGER_SOURCE,),
        ledger_digest=digest,
    )


def _latest_life(lines: Sequence[HistoryLine]) -> int:
    """Where the session's latest life starts (its last create; a session created again
    after it expired starts at version 1 with a new ledger)."""
    return max((n for n, line in enumerate(lines) if line.outcome == "session.created"), default=0)


def _later(line: HistoryLine, version: int | None) -> bool:
    """Whether `line` happened after the write of `version`: an applied line wrote its
    version; a rejection saw the session at its version."""
    if line.version is None or version is None:  # dead letters, rejections of no session
        return False
    return line.version > version if line.applied else line.version >= version
