"""The store's session copies (`worker.dynamodb.copies`) kept in Redis as `c:<session>`:
read and written by the store itself (`RedisSessionCopies`), or, in a worker, by the
journal's claim and finish (`ClaimedSessionCopies`).

A copy is an optimisation the store's conditional writes validate, so Redis failing
here never fails a command: a lost read of the copy becomes a `GetItem`, a lost
write leaves the next command to read (or to be corrected by a failed condition).
"""

from __future__ import annotations

import logging

import redis

from worker.delivery.keys import RedisKeys

logger = logging.getLogger("checkout.worker")


def copy_text(kept: str) -> str:
    """The copy in what `c:<session>` holds: `finish` keeps "<jid>\n<text>" (the jid
    tells the successor's claim its predecessor is done), the store the text alone."""
    _jid, newline, text = kept.partition("\n")
    return text if newline and not kept.startswith("{") else kept


class RedisSessionCopies:
    """Copies under `<prefix>:c:<session_id>`, each kept `ttl` seconds after its write."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, ttl: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl = ttl

    def get(self, session_id: str) -> str | None:
        try:
            kept = self._client.get(self._keys.session_copy(session_id))
        except redis.RedisError as error:
            logger.warning("session copy of %s not read (reading DynamoDB): %s", session_id, error)
            return None
        return copy_text(kept) if kept is not None else None

    def put(self, session_id: str, text: str) -> None:
        try:
            self._client.set(self._keys.session_copy(session_id), text, ex=self._ttl)
        except redis.RedisError as error:
            logger.warning("session copy of %s not kept: %s", session_id, error)


class ClaimedSessionCopies(RedisSessionCopies):
    """Copies that travel with the journal's calls while a worker applies a command.

    The claim reads the session's copy in the same atomic call that lets the command
    past its session's gate (`claim(with_copy=True)`), and `finish` writes the new one
    with the result event: two round trips fewer per command than a GET and a SET of
    their own, and the successor, which the gate holds until that finish, always reads
    the copy its predecessor left. Between `begin` and `end` this object answers the
    store from what the claim read and holds what the store puts; outside them (tools,
    baselines) it reads and writes Redis itself.
    """

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, ttl: int) -> None:
        super().__init__(client, keys, ttl=ttl)
        self._applying = False
        self._claimed: tuple[str, str | None] | None = None
        self._written: tuple[str, str] | None = None

    def begin(self, session_id: str | None, copy: str | None) -> None:
        """A command of `session_id` was claimed with the copy `copy` (None: none)."""
        self._applying = True
        self._claimed = (session_id, copy) if session_id else None
        self._written = None

    def end(self) -> tuple[str, str, int] | None:
        """(session id, text, ttl) for `finish` to keep, if the store wrote one."""
        written = self._written
        self._applying, self._claimed, self._written = False, None, None
        return (*written, self._ttl) if written else None

    def get(self, session_id: str) -> str | None:
        if self._claimed and self._claimed[0] == session_id:
            # Once: a second load of the same command (after a failed condition) reads
            # the table, not this copy again.
            copy, self._claimed = self._claimed[1], None
            return copy
        return super().get(session_id)

    def put(self, session_id: str, text: str) -> None:
        if self._applying:
            self._written = (session_id, text)
        else:
            super().put(session_id, text)
