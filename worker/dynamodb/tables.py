"""Creating the sessions table and switching on its TTL: what `checkout init` does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from worker.dynamodb.items import SESSION_KEY, TTL
from worker.settings import Settings

# What a DynamoDB implementation without TTL (dynalite) answers DescribeTimeToLive and
# UpdateTimeToLive with. Any other error (AccessDeniedException, throttling) is a real
# failure and still raises: only a server that lacks the operation is let through.
TTL_UNSUPPORTED_CODES = frozenset({"UnknownOperationException"})


@dataclass
class TablesReport:
    """What `ensure_tables` did (for the CLI), and why TTL is off if the server lacks it."""

    done: list[str] = field(default_factory=list)
    # "<Operation>: <error code>" when this DynamoDB does not support TTL, else None.
    ttl_unsupported: str | None = None


def ensure_tables(client: Any, settings: Settings) -> TablesReport:
    """Create the sessions table if missing and enable TTL on `ttl`.

    Idempotent: running it again changes nothing. A DynamoDB without TTL support is
    no error: the pipeline treats an item whose `ttl` has passed as gone whether or not
    DynamoDB deletes it, so TTL only saves storage (`TablesReport.ttl_unsupported`).
    """
    report = TablesReport()
    table = settings.sessions_table
    if _create_table(client, table, SESSION_KEY):
        report.done.append(f"created table {table}")
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    try:
        if _enable_ttl(client, table):
            report.done.append(f"enabled TTL on {table}.{TTL}")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in TTL_UNSUPPORTED_CODES:
            raise
        report.ttl_unsupported = f"{error.operation_name}: {code}"
    return report


def _create_table(client: Any, table: str, key: str) -> bool:
    try:
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceInUseException":
            return False
        raise
    return True


def _enable_ttl(client: Any, table: str) -> bool:
    status = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return False
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL}
    )
    return True
