"""What `checkout send` prints: nothing with --quiet but what --json asks, and what a
resend of a finished run skips."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.builders import create, update


def write(path: Path, commands: list[dict]) -> Path:
    path.write_text("".join(json.dumps(command) + "\n" for command in commands))
    return path


def test_quiet_prints_nothing_on_success(checkout, tmp_path):
    path = write(tmp_path / "q.jsonl", [create("q-1", "s-q"), create("q-2", "s-q2")])

    result = checkout("send", str(path), "-q")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_quiet_with_json_prints_only_the_summary(checkout, tmp_path):
    path = write(tmp_path / "qj.jsonl", [create("qj-1", "s-qj")])

    result = checkout("send", str(path), "--quiet", "--json")

    assert (result.returncode, result.stderr) == (0, "")
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["sent"] == 1


def test_quiet_still_names_invalid_lines(checkout, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(create("qb-1", "s-qb")) + "\nnot json\n")

    result = checkout("send", str(path), "-q")

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{path}:2: command: Invalid JSON")


def test_resending_a_finished_file_says_nothing_was_sent(checkout, start_workers, tmp_path):
    start_workers(1, concurrency=1)
    commands = [create("rs-1", "s-rs"), update("rs-2", "s-rs", currency="EUR")]
    path = write(tmp_path / "rs.jsonl", commands)
    first = checkout("send", str(path), "--wait", "--timeout", "60", "--json")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout.splitlines()[-1])["run_id"]

    again = checkout("send", str(path))

    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"run {run_id}",
        f"run {run_id}: 2 commands already finished; nothing to send",
    ]


def test_resending_a_run_with_new_commands_counts_the_skipped(checkout, start_workers, tmp_path):
    start_workers(1, concurrency=1)
    done = write(tmp_path / "done.jsonl", [create("rp-1", "s-rp")])
    first = checkout("send", str(done), "--run-id", "r-partial", "--wait", "--timeout", "60")
    assert first.returncode == 0, first.stderr
    more = write(tmp_path / "more.jsonl", [create("rp-1", "s-rp"), create("rp-2", "s-rp2")])

    again = checkout("send", str(more), "--run-id", "r-partial")

    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == (
        "run r-partial: enqueued 1 commands, 1 skipped (already finished), 0 invalid lines"
    )
