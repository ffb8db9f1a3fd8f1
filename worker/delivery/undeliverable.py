"""Messages no task can ever process go to the dead-letter store, not into a loop.

Called from the worker's main process (the kombu channel and the Celery consumer)
for a message that is not JSON, not a Celery message, names an unknown task, or
cannot be decoded. A message the delivery script wrote has journal entries: each of
its commands is finished as dead-lettered through the journal (one dead letter and
one `command.dead_lettered` event per command, its session's later commands go on),
or the reaper would deliver it again and again. Any other message is kept as it came,
with one event; the worker goes on with the next message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from schemas.commands import id_field
from worker.delivery.jids import tagged
from worker.delivery.journal import DeadLetter, Journal
from worker.delivery.retry_policy import dead_letter_event_for

logger = logging.getLogger("checkout.worker")

MAX_RAW_CHARS = 256 * 1024


def bury(journal: Journal, raw: str | bytes, *, queue: str, reason: str, error_type: str) -> str:
    """Dead-letter `raw` as it came off `queue`; returns its (first) dead-letter id."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    dead_letter = DeadLetter("undeliverable", error_type, reason)
    named = _commands_of(text)
    finished = [jid for jid in _jids_of(text) if _finish(journal, jid, named, dead_letter)]
    if finished:
        # No body in the log: it may carry buyer or payment data.
        logger.error(
            "undeliverable message on %s: %d journaled command(s) dead-lettered (%s): %s",
            queue,
            len(finished),
            ", ".join(finished),
            reason,
        )
        return finished[0]
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:24]
    entry_id = tagged(journal.shard_tag, "raw-" + digest)  # unique across shards
    event = dead_letter_event_for(entry_id, _command_of(text), dead_letter)
    journal.bury(
        entry_id,
        queue=queue,
        raw=text[:MAX_RAW_CHARS],
        event_json=event.to_json(),
        dead_letter=dead_letter,
    )
    logger.error("undeliverable message on %s dead-lettered as %s: %s", queue, entry_id, reason)
    return entry_id


def _finish(journal: Journal, jid: str, named: list[Any] | None, dead_letter: DeadLetter) -> bool:
    """Dead-letter the journal entry `jid`. When the message's commands can be read, the
    entry's command id must be among them, so a message that names another command's
    jid finishes nothing. (A forged message naming a jid and its command id still can:
    the delivery rebuild, issue 13 §5, lets the journal alone decide.)"""
    entry = journal.entry(jid)
    if entry is None:
        return False
    if named is not None and entry.command_id not in {id_field(c, "command_id") for c in named}:
        return False
    ids = {"command_id": entry.command_id, "session_id": entry.session_id}
    event = dead_letter_event_for(jid, ids, dead_letter)
    return journal.finish(
        jid, "", event_json=event.to_json(), outcome="dead_lettered", dead_letter=dead_letter
    )


def _jids_of(text: str) -> list[str]:
    """The jids a message of the delivery script names: its `jid` keyword (one command),
    its list of jids (a batched message), or else its task id or delivery tag."""
    message = _json(text)
    if not isinstance(message, dict):
        return []
    found: list[Any] = []
    body = _json(message.get("body"))
    if isinstance(body, list) and len(body) >= 2:
        args, kwargs = body[0], body[1]
        if isinstance(kwargs, dict):
            found.append(kwargs.get("jid"))
        if isinstance(args, list) and len(args) >= 2 and isinstance(args[1], list):
            found += args[1]
    # The task id is the jid (`task_id_of` in pipeline.lua; '<jid>.<queue position>' in
    # messages queued before that), and the delivery tag '<jid>.<queue position>'.
    for part, key in (("headers", "id"), ("properties", "delivery_tag")):
        named = message.get(part)
        if not any(found) and isinstance(named, dict) and isinstance(named.get(key), str):
            found.append(named[key].rsplit(".", 1)[0])
    return list(dict.fromkeys(jid for jid in found if isinstance(jid, str) and jid))


def _commands_of(text: str) -> list[Any] | None:
    """The commands a Celery message of either task carries, or None if unreadable."""
    message = _json(text)
    body = _json(message.get("body")) if isinstance(message, dict) else None
    args = body[0] if isinstance(body, list) and body else None
    if not isinstance(args, list) or not args:
        return None
    return args[0] if isinstance(args[0], list) else [args[0]]


def _command_of(text: str) -> Any:
    """The (first) command, if the message is a Celery message carrying one (else None)."""
    commands = _commands_of(text)
    return commands[0] if commands else None


def _json(text: Any) -> Any:
    """Plain JSON (no kombu type markers), or None."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
