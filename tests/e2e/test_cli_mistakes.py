"""Every user mistake in the real `checkout` CLI: one line on stderr, no traceback, a
documented exit code (tasks/cli/exit_codes.py). Services down: test_cli_errors.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import get_args
from urllib.parse import urlsplit

import pytest

from schemas.session import CheckoutStatus
from tasks.cli.exit_codes import FAILED, REDIS, USAGE
from tasks.embedded.stack import CHECKOUT
from tests.e2e.builders import create

STATUSES = get_args(CheckoutStatus)


def run(env: dict[str, str], *args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHECKOUT, *args], env=env, input=input, capture_output=True, timeout=120, check=False
    )


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The one line on stderr, once the exit code and the absence of a traceback hold."""
    stderr = result.stderr.decode("utf-8")
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def jsonl(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def command_line(command_id: str, session_id: str) -> bytes:
    return json.dumps(create(command_id, session_id)).encode()


# ─── Arguments ───


def test_events_after_an_id_that_is_not_a_stream_id(env):
    line = one_line(run(env, "events", "--after", "bogus"), USAGE)
    assert line.startswith("checkout events: argument --after: 'bogus' is not a stream entry id")
    for form in ("<ms>-<seq>", "0 (the start)", "$ (now)"):
        assert form in line


@pytest.mark.parametrize("after", ["0", "$", "1700000000000-3", "1700000000000"])
def test_events_after_takes_every_form_it_names(env, after):
    assert run(env, "events", "--after", after).returncode == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["events", "--count", "-1"], "argument --count: expected a whole number ≥ 1, not '-1'"),
        (["events", "--group", "g", "--claim-idle-ms", "-5"], "a whole number ≥ 0, not '-5'"),
        (["send", "-", "--wait", "--timeout", "abc"], "--timeout: expected seconds ≥ 0, not 'abc'"),
        (["send", "-", "--per-message", "0"], "--per-message: expected a whole number from 1 to"),
        (["status", "--ping-timeout", "-1"], "--ping-timeout: expected seconds > 0, not '-1'"),
        (["dlq", "list", "--limit", "0"], "--limit: expected a whole number ≥ 1, not '0'"),
        (["bench", "--workers", "0"], "--workers: expected a whole number ≥ 1, not '0'"),
        (["bench", "--paced-seconds", "soon"], "--paced-seconds: expected seconds > 0"),
        (["worker", "--metrics-port", "70000"], "expected a whole number from 1 to 65535"),
        (["worker", "--loglevel", "loud"], "invalid choice: 'LOUD' (choose from 'DEBUG', "),
        (["worker", "--pool", "gevent"], "invalid choice: 'gevent' (choose from 'prefork', "),
        (["up", "--concurrency", "0"], "--concurrency/-c: expected a whole number ≥ 1, not '0'"),
        (["report", "bad id"], "run id 'bad id': 1-128 characters"),
        (["get", ""], "session id '': 1-255 characters, a letter or digit first"),
        (["get", "a\nb"], "session id 'a\\x0ab': 1-255 characters"),
        (["events", "--consumer", "me"], "--consumer and --claim-idle-ms need --group"),
        ([], "the following arguments are required: COMMAND"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_bad_argument_is_one_line_and_a_usage_error(env, args, says):
    line = one_line(run(env, *args), USAGE)
    assert line.startswith("checkout")
    assert says in line


def test_bulk_update_segments_below_one(env):
    args = ["--set", "currency=EUR", "--where", "currency=USD", "--segments", "0"]
    line = one_line(run(env, "bulk-update", *args), USAGE)
    assert "--segments: expected a whole number ≥ 1, not '0'" in line


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_send_of_a_file_it_cannot_read(env, tmp_path, kind):
    path = tmp_path / "missing.jsonl" if kind == "missing" else tmp_path
    why = "No such file or directory" if kind == "missing" else "Is a directory"
    # With --run-id the file is not hashed first: it is still found unreadable up front.
    for extra in ([], ["--run-id", "r-unreadable"]):
        line = one_line(run(env, "send", str(path), *extra), USAGE)
        assert line == f"checkout send: cannot read {path}: {why}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["send", "/nonexistent.jsonl"], "checkout send: cannot read /nonexistent.jsonl"),
        (["bulk-update", "--where", "bogus=1", "--set", "currency=EUR"], "--where 'bogus=1'"),
        (["bulk-update", "--ids", "/nonexistent", "--set", "currency=EUR"], "--ids /nonexistent"),
        (["bulk-update", "--ids", "/dev/null", "--set", "curency=EUR"], "did you mean currency?"),
    ],
)
def test_a_usage_error_stays_one_with_redis_down(env, args, says):
    """Arguments are checked before Redis is pinged: the exit code names the mistake."""
    down = {**env, "CHECKOUT_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert says in one_line(run(down, *args), USAGE)


def test_up_with_a_file_as_workdir(env, tmp_path):
    path = tmp_path / "a-file"
    path.write_text("")
    assert one_line(run(env, "up", "--workdir", str(path)), USAGE) == (
        f"checkout up: --workdir {path}: not a directory"
    )


def test_bench_with_an_output_dir_it_cannot_write_says_so_before_measuring(env, tmp_path):
    below_a_file = tmp_path / "a-file" / "out"
    (tmp_path / "a-file").write_text("")
    line = one_line(run(env, "bench", "--write-markdown", "--output-dir", str(below_a_file)), USAGE)
    assert line == f"checkout bench: --output-dir {below_a_file}: Not a directory"


# ─── Settings ───


def test_a_redis_url_without_a_scheme(env):
    line = one_line(run({**env, "CHECKOUT_REDIS_URL": "localhost:6379"}, "status"), USAGE)
    assert line.startswith("checkout: CHECKOUT_REDIS_URL=localhost:6379: expected redis://")
    assert "host:port/db" in line and "rediss://" in line and "unix://" in line


def test_a_redis_url_with_a_bad_port_keeps_its_password_out(env):
    bad = {**env, "CHECKOUT_REDIS_URL": "redis://ops:hunter2@localhost:63o9/0"}
    line = one_line(run(bad, "send", "-"), USAGE)
    assert "CHECKOUT_REDIS_URL=redis://ops:***@localhost:63o9/0: expected redis://" in line
    assert "hunter2" not in line


def test_a_setting_of_the_wrong_type(env):
    line = one_line(run({**env, "CHECKOUT_MAX_RETRIES": "lots"}, "status"), USAGE)
    assert line == "checkout: CHECKOUT_MAX_RETRIES=lots: expected a whole number ≥ 0"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CHECKOUT_REDIS_FUNCTIONS", "maybe", "expected true or false (also 1/0, yes/no, on/off)"),
        ("CHECKOUT_DYNAMODB_CLIENT", "boto", "expected one of http, botocore"),
        ("CHECKOUT_LOG_FORMAT", "yaml", "expected one of text, json"),
        ("CHECKOUT_MAX_COMMAND_BYTES", "10", "expected a whole number from 1024 to 400000"),
        ("CHECKOUT_RETRY_BACKOFF_MAX", "0", "expected a number > 0"),
        ("CHECKOUT_METRICS_PORT", "http", "expected a whole number from 1 to 65535 (or unset)"),
        (
            "CHECKOUT_DYNAMODB_ENDPOINT_URL",
            "localhost:8000",
            "expected http://host:port or https://host (unset: AWS's own endpoint)",
        ),
        (
            "CHECKOUT_SESSIONS_TABLE",
            "a b",
            "expected a DynamoDB table name: 3-255 letters, digits, '_', '.' or '-'",
        ),
    ],
)
def test_a_setting_names_its_variable_and_what_it_takes(env, name, value, expected):
    line = one_line(run({**env, name: value}, "get", "s-1"), USAGE)
    assert line == f"checkout: {name}={value}: {expected}"


@pytest.mark.parametrize(
    "args",
    [["init"], ["worker"], ["up"], ["bench"], ["events"], ["dlq", "list"], ["report", "r-1"]],
    ids=" ".join,
)
def test_every_command_checks_the_settings_before_it_starts(env, args):
    line = one_line(run({**env, "CHECKOUT_MAX_RETRIES": "lots"}, *args), USAGE)
    assert line == "checkout: CHECKOUT_MAX_RETRIES=lots: expected a whole number ≥ 0"


def test_several_wrong_settings_are_one_line_naming_each(env):
    wrong = {**env, "CHECKOUT_MAX_RETRIES": "-1", "CHECKOUT_VISIBILITY_TIMEOUT": "0.5"}
    line = one_line(run(wrong, "status"), USAGE)
    assert "CHECKOUT_MAX_RETRIES=-1: expected a whole number ≥ 0" in line
    assert "CHECKOUT_VISIBILITY_TIMEOUT=0.5: expected a number ≥ 1" in line


# ─── Input and selections ───


def test_send_of_a_line_that_is_not_utf8_names_file_line_and_column(env, tmp_path, redis_client):
    path = jsonl(
        tmp_path / "latin1.jsonl",
        command_line("u-1", "s-u1"),
        b'{"type": "create_session", "command_id": "u-2", "session_id": "s-\xe9"}',
        command_line("u-3", "s-u3"),
    )
    result = run(env, "send", str(path), "-q", "--json")
    assert one_line(result, FAILED) == f"{path}:2: not UTF-8 text (byte 0xe9 at column 66)"
    summary = json.loads(result.stdout.decode().splitlines()[-1])
    assert (summary["sent"], summary["invalid_lines"]) == (2, 1)
    assert redis_client.llen(env["CHECKOUT_COMMANDS_QUEUE"]) == 2


def test_a_pipe_with_a_line_that_is_not_utf8_counts_that_line_only(env):
    text = (
        command_line("p-1", "s-p1")
        + b"\n"
        + b'{"x": "\xc3\xa9\xff"}\n'
        + command_line("p-2", "s-p2")
    )
    result = run(env, "send", "-", "-q", "--json", input=text)
    # `é` is two bytes and one column: the column counts characters, as an editor does.
    assert one_line(result, FAILED) == "-:2: not UTF-8 text (byte 0xff at column 9)"
    assert json.loads(result.stdout.decode().splitlines()[-1])["sent"] == 2


def test_strict_refuses_a_file_with_a_line_that_is_not_utf8(env, redis_client):
    text = command_line("st-1", "s-st1") + b"\n\x80\n"
    result = run(env, "send", "-", "--strict", input=text)
    stderr = result.stderr.decode()
    assert result.returncode == FAILED and "Traceback" not in stderr
    assert "-:2: not UTF-8 text (byte 0x80 at column 1)\n" in stderr
    assert redis_client.llen(env["CHECKOUT_COMMANDS_QUEUE"]) == 0


def test_an_unknown_field_names_the_one_meant(env, tmp_path):
    typo = {"type": "create_session", "command_id": "t-1", "sesion_id": "s-t"}
    path = jsonl(tmp_path / "typo.jsonl", json.dumps(typo).encode())
    assert one_line(run(env, "send", str(path), "-q"), FAILED) == (
        f"{path}:1: sesion_id: not a known field; did you mean session_id?"
    )


def test_bulk_update_with_a_status_that_does_not_exist_lists_them(env):
    result = run(env, "bulk-update", "--set", "currency=EUR", "--where", "status=open")
    assert one_line(result, USAGE) == (
        "checkout bulk-update: --where status=open: not a checkout status; expected one of "
        + ", ".join(STATUSES)
    )


def test_bulk_update_with_a_misspelt_update_field(env):
    result = run(env, "bulk-update", "--set", "curency=EUR", "--where", "currency=USD")
    assert one_line(result, USAGE) == (
        "checkout bulk-update: updates: curency: not a known field; did you mean currency?"
    )


@pytest.mark.parametrize("option", ["--ids", "--patch"])
@pytest.mark.parametrize("kind", ["not utf-8", "directory", "missing"])
def test_bulk_update_with_a_file_it_cannot_use(env, tmp_path, option, kind):
    path = tmp_path if kind == "directory" else tmp_path / "given"  # missing: never written
    if kind == "not utf-8":
        latin1 = b'{"updates": {"currency": "\xff"}}' if option == "--patch" else b"s-\xff"
        path.write_bytes(latin1 + b"\n")
    usable = {"--ids": ["--set", "currency=EUR"], "--patch": ["--ids", "/dev/null"]}[option]
    result = run(env, "bulk-update", option, str(path), *usable, "--dry-run")
    why = {
        "not utf-8": "not UTF-8 text (byte 0xff)",
        "directory": "Is a directory",
        "missing": "No such file or directory",
    }[kind]
    assert one_line(result, USAGE) == f"checkout bulk-update: {option} {path}: {why}"


# ─── Things that are not there ───


def test_report_of_a_run_that_does_not_exist(env):
    line = one_line(run(env, "report", "no-such-run"), FAILED)
    assert line.startswith("checkout report: no run no-such-run in Redis")


def test_dlq_show_of_a_missing_id(env):
    line = one_line(run(env, "dlq", "show", "dl-missing"), FAILED)
    assert line.startswith("checkout dlq: no dead-letter entry dl-missing")
    assert "checkout dlq list" in line


# ─── Redis failing mid-way is a Redis failure (4), not a usage error ───


@pytest.fixture
def no_scripts_url(env, redis_client) -> Iterator[str]:
    """A Redis user that may ping and read but not run the enqueue script: Redis refuses
    the send after the preflight ping succeeded."""
    user = f"noscripts-{uuid.uuid4().hex[:8]}"
    redis_client.acl_setuser(
        user,
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-@scripting"],
    )
    address = urlsplit(env["CHECKOUT_REDIS_URL"])
    try:
        yield f"redis://{user}:pw@{address.hostname}:{address.port}/0"
    finally:
        redis_client.acl_deluser(user)


def test_send_when_redis_refuses_mid_way(env, tmp_path, no_scripts_url):
    path = jsonl(tmp_path / "one.jsonl", command_line("m-1", "s-m1"))
    result = run({**env, "CHECKOUT_REDIS_URL": no_scripts_url}, "send", str(path), "-q")
    line = one_line(result, REDIS)
    assert line.startswith(f"{path}: enqueued 0 commands, then the broker failed; line 1")
    assert "no permissions" in line and ":pw@" not in line


def test_bulk_update_when_redis_refuses_mid_way(env, tmp_path, no_scripts_url):
    ids = tmp_path / "ids.txt"
    ids.write_text("s-m2\n")
    args = ["--set", "currency=EUR", "--ids", str(ids), "-q"]
    result = run({**env, "CHECKOUT_REDIS_URL": no_scripts_url}, "bulk-update", *args)
    stderr = result.stderr.decode()
    assert result.returncode == REDIS and "Traceback" not in stderr
    assert "enqueued 0, then the broker failed" in stderr.splitlines()[-1]
