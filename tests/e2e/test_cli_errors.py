"""Every CLI command against stopped services or missing settings: one line, a documented code."""

from __future__ import annotations

import subprocess

import pytest

from tasks.cli.exit_codes import DYNAMODB as DYNAMODB_UNREACHABLE
from tasks.cli.exit_codes import REDIS as REDIS_UNREACHABLE
from tasks.cli.exit_codes import TABLES_MISSING
from tasks.embedded.stack import CHECKOUT, free_port

COMMAND = '{"type":"create_session","command_id":"e-1","session_id":"s-e"}\n'
REDIS_COMMANDS = [["events"], ["send", "-"], ["status"], ["dlq", "list"]]
DYNAMODB_COMMANDS = [["get", "s-e"], ["init"]]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECKOUT, *args], env=env, input=COMMAND, capture_output=True, text=True, timeout=120
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *mentions: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for mention in mentions:
        assert mention in lines[0]


@pytest.fixture
def stopped(env) -> dict[str, str]:
    """Redis and DynamoDB on ports nobody listens on; a password that must not show."""
    return {
        **env,
        "CHECKOUT_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0",
        "CHECKOUT_DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }


@pytest.mark.parametrize("args", REDIS_COMMANDS, ids=" ".join)
def test_a_stopped_redis(stopped, args):
    result = run(stopped, *args)
    assert_one_line(result, REDIS_UNREACHABLE, "cannot reach Redis", ":***@", "CHECKOUT_REDIS_URL")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("args", DYNAMODB_COMMANDS, ids=" ".join)
def test_a_stopped_dynamodb(stopped, args):
    result = run(stopped, *args)
    assert_one_line(
        result,
        DYNAMODB_UNREACHABLE,
        "cannot reach DynamoDB",
        stopped["CHECKOUT_DYNAMODB_ENDPOINT_URL"],
        "CHECKOUT_DYNAMODB_ENDPOINT_URL",
    )


@pytest.mark.parametrize("args", DYNAMODB_COMMANDS, ids=" ".join)
def test_no_aws_region(env, args):
    no_region = {
        name: value
        for name, value in env.items()
        if name not in ("AWS_DEFAULT_REGION", "AWS_REGION", "CHECKOUT_DYNAMODB_ENDPOINT_URL")
    }
    no_region["AWS_CONFIG_FILE"] = "/nonexistent"  # nor one from ~/.aws/config
    assert_one_line(run(no_region, *args), DYNAMODB_UNREACHABLE, "AWS_DEFAULT_REGION")


def test_no_aws_credentials(env):
    no_credentials = {
        name: value
        for name, value in env.items()
        if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")
    }
    no_credentials |= {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookup to wait for
    }
    assert_one_line(run(no_credentials, "get", "s-e"), DYNAMODB_UNREACHABLE, "AWS_ACCESS_KEY_ID")


def test_missing_tables(env):
    # The `env` fixture names tables of this test's own; nothing created them.
    assert_one_line(
        run(env, "get", "s-e"), TABLES_MISSING, env["CHECKOUT_SESSIONS_TABLE"], "checkout init"
    )


def test_debug_shows_the_traceback(stopped):
    result = run(stopped, "--debug", "status")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
