"""Creating the sessions table and switching on its TTL: what `checkout init` does."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from worker.dynamodb.items import SESSION_KEY, TTL
from worker.settings import Settings


def ensure_tables(client: Any, settings: Settings) -> list[str]:
    """Create the sessions table if missing and enable TTL on `ttl`.

    Idempotent: running it again changes nothing. Returns what it did, for the CLI.
    """
    done = []
    table = settings.sessions_table
    if _create_table(client, table, SESSION_KEY):
        done.append(f"created table {table}")
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    if _enable_ttl(client, table):
        done.append(f"enabled TTL on {table}.{TTL}")
    return done


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
