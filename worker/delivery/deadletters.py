"""The dead-letter store: what `pipeline.lua` put aside, for operators to read, replay, purge.

Entries are written only by the script (`finish` with a dead letter, `bury`); this
module reads them (`<prefix>:dlq` zset of ids by time, `<prefix>:dlq:<id>` hashes),
replays them through the script (so a replay is one atomic step and a second replay
of the same entry is a no-op) and deletes them.

What it reads is for showing: payment instruments in a command or a raw message come
out reduced to their display fields (`schemas.payments`). A replay re-enqueues the
stored text, which the script reads itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.payments import DEFAULT_DISPLAY, REDACTED, PaymentDisplay
from worker.delivery.journal import Journal
from worker.delivery.keys import RedisKeys
from worker.domain.js import js_iso
from worker.errors import JournalUnavailable
from worker.redis_client import as_text

# Ids per pipelined round trip when reading or purging the whole store.
PAGE = 500


@dataclass(frozen=True)
class DeadLetterEntry:
    """One dead-lettered command (`command`) or undeliverable message (`raw`)."""

    id: str
    command_id: str | None
    session_id: str | None
    command: dict[str, Any] | None
    raw: str | None
    queue: str
    run: str | None
    error: dict[str, str]
    attempts: int
    deliveries: int
    first_failure_at: str | None
    last_failure_at: str | None
    dead_lettered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = None) -> str:
        separators = None if indent else (",", ":")
        return json.dumps(self.to_dict(), indent=indent, separators=separators, ensure_ascii=False)


class DeadLetterStore:
    """Reads, replays and purges dead-letter entries of one key prefix."""

    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys,
        journal: Journal,
        *,
        display: PaymentDisplay = DEFAULT_DISPLAY,
    ) -> None:
        self._client = client
        self._keys = keys
        self._journal = journal
        self._display = display

    def count(self) -> int:
        return int(self._redis(lambda: self._client.zcard(self._keys.dead_letters)))

    def ids(self, limit: int | None = None) -> list[str]:
        """Entry ids, oldest first."""
        if limit is not None and limit <= 0:
            return []
        stop = -1 if limit is None else limit - 1
        ids = self._redis(lambda: self._client.zrange(self._keys.dead_letters, 0, stop))
        return [as_text(entry_id) for entry_id in ids]

    def list(self, limit: int | None = None) -> list[DeadLetterEntry]:
        """Entries, oldest first (an id whose hash is gone is left out)."""
        return self._load(self.ids(limit))

    def get(self, id_or_command_id: str) -> DeadLetterEntry | None:
        """The entry with this id, or else the newest entry of this command id."""
        return self.entry(id_or_command_id) or self.newest_of(id_or_command_id)

    def entry(self, entry_id: str) -> DeadLetterEntry | None:
        """The entry with this id, if any."""
        found = self._load([entry_id])
        return found[0] if found else None

    def newest_of(self, command_id: str) -> DeadLetterEntry | None:
        """The newest entry of this command id, if any."""
        matches = [e for e in self.list() if e.command_id == command_id]
        return matches[-1] if matches else None

    def replay(self, entry_id: str) -> str:
        """Re-enqueue a dead-lettered command: its new jid, '' if gone, 'raw' if not a command."""
        return self._journal.replay(entry_id)

    def replay_all(self) -> dict[str, str]:
        """Replay every entry; maps each id to what `replay` returned for it."""
        return {entry_id: self.replay(entry_id) for entry_id in self.ids()}

    def purge(self, entry_id: str) -> bool:
        """Delete one entry; False if there was none."""

        def delete() -> bool:
            pipe = self._client.pipeline(transaction=True)
            pipe.zrem(self._keys.dead_letters, entry_id)
            pipe.delete(self._keys.dead_letter(entry_id))
            removed, deleted = pipe.execute()
            return bool(removed or deleted)

        return self._redis(delete)

    def purge_all(self) -> int:
        """Delete every entry; returns how many were deleted."""
        purged = 0
        while ids := self.ids(PAGE):
            purged += sum(self.purge(entry_id) for entry_id in ids)
        return purged

    def _load(self, ids: Iterable[str]) -> list[DeadLetterEntry]:
        ids = list(ids)
        if not ids:
            return []

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for entry_id in ids:
                pipe.hgetall(self._keys.dead_letter(entry_id))
            return pipe.execute()

        return [_entry(fields, self._display) for fields in self._redis(read) if fields]

    def _redis(self, call: Any) -> Any:
        try:
            return call()
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the dead-letter store: {error}") from error


def _entry(raw_fields: Mapping[Any, Any], display: PaymentDisplay) -> DeadLetterEntry:
    fields = {as_text(k): as_text(v) for k, v in raw_fields.items()}
    raw = fields.get("raw") or None
    command = None if raw is not None else _command(fields.get("cmd", ""))
    if command is not None:
        command = display.anywhere(command)
    if raw is not None:
        raw = shown_raw(raw, display)
    return DeadLetterEntry(
        id=fields.get("id", ""),
        command_id=fields.get("cid") or None,
        session_id=fields.get("sid") or None,
        command=command,
        raw=raw,
        queue=fields.get("q", ""),
        run=fields.get("run") or None,
        error={
            "code": fields.get("code", ""),
            "type": fields.get("type", ""),
            "message": fields.get("message", ""),
        },
        attempts=int(fields.get("attempts") or 0),
        deliveries=int(fields.get("deliveries") or 0),
        first_failure_at=_iso(fields.get("first_failure")),
        last_failure_at=_iso(fields.get("last_failure")),
        dead_lettered_at=_iso(fields.get("dead_lettered_at")),
    )


def _command(text: str) -> dict[str, Any] | None:
    """The stored command, parsed; None if it is not a JSON object (kept as it came)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def shown_raw(raw: str, display: PaymentDisplay) -> str:
    """A raw message as a listing may show it: a Celery envelope with its body decoded
    (base64 too) and payment instruments redacted anywhere in it. What does not parse
    is shown as it came unless it mentions payments at all: then only its size."""
    try:
        envelope = json.loads(raw)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and "body" in envelope:
        envelope = {**envelope, "body": _decoded_body(envelope)}
    if envelope is not None:
        return json.dumps(display.anywhere(envelope), ensure_ascii=False)
    if "payment" in raw.lower():
        return f"{REDACTED} ({len(raw)} characters that are not JSON and mention payments)"
    return raw


def _decoded_body(envelope: dict[str, Any]) -> Any:
    body = envelope["body"]
    if not isinstance(body, str):
        return body
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return REDACTED  # an undecodable base64 body: nothing to show
    try:
        return json.loads(body)
    except ValueError:
        return REDACTED if "payment" in body.lower() else body


def _iso(ms: str | None) -> str | None:
    if not ms:
        return None
    return js_iso(datetime.fromtimestamp(int(float(ms)) / 1000, UTC))
