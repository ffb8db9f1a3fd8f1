"""`python -m tasks.embedded.moto`: moto's DynamoDB server for the embedded default, with
transactions that cost what DynamoDB's do.

moto 5 makes `TransactWriteItems` all-or-nothing by deep-copying every table the
transaction touches and restoring the copy if an operation fails: O(table size) per
transaction, so a demo or benchmark slows down quadratically as tables fill (measured
here: 7 ms per update with PutItem, 52 ms with a transaction after 600 sessions). This
launcher checks every condition first, against the untouched items as DynamoDB does, and
lets moto apply the writes only when all hold, so nothing is ever rolled back and no
table is copied. A lock makes each write request atomic, which moto's threaded server
does not otherwise guarantee for conditional writes.

It keeps its clients' connections open, as DynamoDB does (`tasks.embedded.keep_alive`;
werkzeug's server, moto's own, closes each after one answer); `--close-each-connection`
serves with moto's own server instead, as `benchmarks.client_cpu` compares.

Only the embedded default and the tests start it; production talks to DynamoDB.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
from functools import wraps
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import main as moto_server_main

from tasks.embedded import keep_alive

_WRITE_LOCK = threading.RLock()
_NO_FAILURE = (None, None, None)


class _CopyWithoutTables:
    """The `copy` module as moto's backend sees it: tables are not copied (no rollback)."""

    @staticmethod
    def deepcopy(value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _condition_failures(backend: DynamoDBBackend, transact_items: list[dict]) -> list[tuple]:
    """moto's own cancellation reasons, computed before anything is written."""
    failures = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.get_table(op["TableName"])
        key = op["Key"] if op_type != "Put" else _key_of(table, op["Item"])
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        holds = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if holds:
            failures.append(_NO_FAILURE)
            continue
        wants_item = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current
        item = current.to_json()["Attributes"] if wants_item else None
        failures.append(("ConditionalCheckFailed", "The conditional request failed", item))
    return failures


def _key_of(table: Table, attributes: dict) -> dict:
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _atomic(method: Any) -> Any:
    @wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    return locked


def install() -> None:
    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict]) -> None:
        with _WRITE_LOCK:
            failures = _condition_failures(self, transact_items)
            if any(failure != _NO_FAILURE for failure in failures):
                raise TransactionCanceledException(failures)
            original_transact(self, transact_items)

    DynamoDBBackend.transact_write_items = transact_write_items
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
    dynamodb_models.copy = _CopyWithoutTables  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    """`-H host -p port`, as moto's server takes them, and `--close-each-connection`."""
    parser = argparse.ArgumentParser(prog="python -m tasks.embedded.moto")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--close-each-connection", action="store_true")
    args = parser.parse_args(argv)
    install()
    if args.close_each_connection:
        moto_server_main(["-H", args.host, "-p", str(args.port)])
        return
    os.environ.setdefault("MOTO_PORT", str(args.port))  # what moto's server sets too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    keep_alive.serve(DomainDispatcherApplication(create_backend_app), args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
