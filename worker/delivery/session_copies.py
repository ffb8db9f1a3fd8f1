"""The store's session copies (`worker.dynamodb.copies`) kept in Redis as `c:<session>`.

A copy is an optimisation the store's conditional writes validate, so Redis failing
here never fails a command: a lost read of the copy becomes a `GetItem`, a lost
write leaves the next command to read (or to be corrected by a failed condition).
"""

from __future__ import annotations

import logging

import redis

from worker.delivery.keys import RedisKeys

logger = logging.getLogger("checkout.worker")


class RedisSessionCopies:
    """Copies under `<prefix>:c:<session_id>`, each kept `ttl` seconds after its write."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, ttl: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl = ttl

    def get(self, session_id: str) -> str | None:
        try:
            return self._client.get(self._keys.session_copy(session_id))
        except redis.RedisError as error:
            logger.warning("session copy of %s not read (reading DynamoDB): %s", session_id, error)
            return None

    def put(self, session_id: str, text: str) -> None:
        try:
            self._client.set(self._keys.session_copy(session_id), text, ex=self._ttl)
        except redis.RedisError as error:
            logger.warning("session copy of %s not kept: %s", session_id, error)
