"""`checkout init` against a DynamoDB without TTL (dynalite answers DescribeTimeToLive and
UpdateTimeToLive with UnknownOperationException): one line, exit 0, and again on rerun.

The refusing DynamoDB is the fault proxy in front of the real moto server: every other
operation (CreateTable, DescribeTable) reaches moto.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tasks.embedded.stack import CHECKOUT
from tests.faults.fault_proxy import FaultProxy

TTL_OPERATIONS = ("DescribeTimeToLive", "UpdateTimeToLive")


def init(env: dict[str, str], proxy: FaultProxy) -> subprocess.CompletedProcess[str]:
    through_proxy = {**env, "CHECKOUT_DYNAMODB_ENDPOINT_URL": proxy.url}
    return subprocess.run(
        [CHECKOUT, "init"], env=through_proxy, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def proxy(stack) -> Iterator[FaultProxy]:
    with FaultProxy(stack.dynamodb_url) as running:
        yield running


def test_init_says_ttl_is_unsupported_in_one_line_and_exits_0_twice(env, proxy, dynamodb, settings):
    proxy.refuse(*TTL_OPERATIONS)
    table = settings.sessions_table
    ready = (
        f"table ready: {table}; this DynamoDB does not support TTL (DescribeTimeToLive: "
        "UnknownOperationException): expired sessions are still treated as gone by the pipeline"
    )

    first = init(env, proxy)
    again = init(env, proxy)

    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [f"created table {table}", ready]
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines() == [ready]
    assert proxy.counts["refused"] == 2
    # Straight to moto: the table exists, and TTL stayed off.
    assert dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_init_names_update_time_to_live_when_only_that_is_missing(env, proxy):
    proxy.refuse("UpdateTimeToLive")

    result = init(env, proxy)

    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert "does not support TTL (UpdateTimeToLive: UnknownOperationException)" in last


def test_a_ttl_error_other_than_a_missing_operation_still_fails(env, proxy):
    # Access denied is the operator's to fix, not a DynamoDB without TTL.
    proxy.refuse("UpdateTimeToLive", code="AccessDeniedException")

    result = init(env, proxy)

    assert result.returncode != 0
    assert "AccessDeniedException" in result.stderr
    assert "does not support TTL" not in result.stdout
