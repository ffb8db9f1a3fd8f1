"""Fork handling: in a forked child, every client forgets the connection it inherited."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.dynamodb.http.client import DynamoDBHttpClient

_CLIENTS: weakref.WeakSet[DynamoDBHttpClient] = weakref.WeakSet()


def forget_connection_after_fork(client: DynamoDBHttpClient) -> None:
    """Have `client` drop its connection in a forked child (its `_after_fork`)."""
    _CLIENTS.add(client)


def _forget_connections_after_fork() -> None:
    for client in list(_CLIENTS):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)
