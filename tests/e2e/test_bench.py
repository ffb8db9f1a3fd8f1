"""`checkout bench --quick --json` end to end at tiny sizes: it runs, and its figures are real."""

from __future__ import annotations

import json
import subprocess

from tasks.embedded.stack import CHECKOUT

HEADLINE = (
    "pipeline_cps",
    "direct_cps",
    "ratio",
    "seed_cps",
    "ddb_requests_per_command",
    "worker_cpu_ms_per_command",
    "direct_cpu_ms_per_command",
    "cpu_ratio",
    "p99_ms",
    "redis_calls_per_command",
    "redis_us_per_command",
    "redis_ceiling_cps",
)


def test_quick_bench_prints_the_headline_figures_on_its_last_line(stack, tmp_path):
    # The bench makes tables, stream, queues and key prefix of its own on these services.
    env = {**stack.env(), "PYTHONUNBUFFERED": "1"}
    args = ["bench", "--quick", "--json", "--workers", "1", "--sessions", "3"]
    args += ["--commands", "30", "--contention", "12", "--paced-seconds", "1"]
    result = subprocess.run(
        [CHECKOUT, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in HEADLINE:
        assert summary[key] > 0, key
    order_flow = summary["workloads"]["order_flow"]
    # Every command of every session got its result, and each applied.
    assert order_flow["pipeline"]["outcomes"] == {
        "session.created": 3,
        "session.updated": 12,
        "session.status_changed": 3,
        "session.completed": 3,
    }
    assert summary["workloads"]["bulk"]["pipeline"]["commands"] == 30
    assert summary["workloads"]["contention"]["pipeline"]["outcomes"] == {"session.updated": 12}
    # Requests per command. A worker cannot apply a command without a DynamoDB write:
    # a PutItem per create (3 of 21), an UpdateItem per other command, no transactions.
    by_operation = order_flow["pipeline"]["ddb_requests_by_operation"]
    assert by_operation.get("PutItem", 0) >= round(3 / 21, 3)
    assert by_operation.get("UpdateItem", 0) >= round(18 / 21, 3)
    assert "TransactWriteItems" not in by_operation
    assert summary["update_wcu"] >= summary["seed_update_wcu"] > 0
    assert {row["target"] for row in summary["targets"]} and summary["capacity"]
    assert summary["redis_idle_calls_per_s"] > 0  # the reaper's ticks, with nothing queued
    assert not (tmp_path / "BENCHMARKS.md").exists()  # only with --write-markdown
