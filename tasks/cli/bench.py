"""`checkout bench`: the pipeline side by side with the same DynamoDB work done directly.

Uses the configured Redis and DynamoDB when CHECKOUT_REDIS_URL or
CHECKOUT_DYNAMODB_ENDPOINT_URL is set, else starts the embedded ones; creates fresh
tables, stream, queues and key prefix for the run; starts `--workers` worker processes.
The work lives in `benchmarks/` (suite, harness, workloads, units, report).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from tasks.cli.arguments import add_command, seconds, usage_error, whole_number
from tasks.cli.exit_codes import DYNAMODB, FAILED, REDIS

SWEEP_WORKERS = (1, 2, 4)


def register(commands: argparse._SubParsersAction) -> None:
    bench = add_command(
        commands,
        "bench",
        FAILED,
        REDIS,
        DYNAMODB,
        help="benchmark the pipeline against direct DynamoDB work (BENCHMARKS.md)",
    )
    bench.add_argument("--quick", action="store_true", help="smaller sizes: under three minutes")
    bench.add_argument("--json", action="store_true", help="one JSON object on the last line")
    count = whole_number(1)
    bench.add_argument("--workers", type=count, default=2, help="worker processes (default: 2)")
    bench.add_argument(
        "--concurrency", type=count, default=1, help="pool processes per worker (default: 1)"
    )
    bench.add_argument(
        "--pool",
        choices=("prefork", "solo"),
        default=None,
        help="the workers' pool (`checkout worker --pool`; default: the worker's own, "
        "CHECKOUT_WORKER_POOL or solo)",
    )
    bench.add_argument("--sessions", type=count, help="order-flow sessions (7 commands each)")
    bench.add_argument("--commands", type=count, help="bulk update commands")
    bench.add_argument("--contention", type=count, help="commands on the hot sessions")
    bench.add_argument(
        "--paced-seconds",
        type=seconds(allow_zero=False),
        help="length of the half-saturation run",
    )
    bench.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="order flow with 1, 2 and 4 workers (default: on with --write-markdown)",
    )
    bench.add_argument(
        "--soak",
        type=whole_number(0),
        default=0,
        metavar="N",
        help="also send N updates, sampling worker RSS",
    )
    bench.add_argument(
        "--write-markdown",
        action="store_true",
        help="write BENCHMARKS.md and BENCHMARKS.png (in --output-dir)",
    )
    bench.add_argument("--output-dir", type=Path, default=Path("."))
    bench.set_defaults(run=run_bench)


def _sizes(args: argparse.Namespace) -> Any:
    from tasks.bench.suite import QUICK, Sizes

    sizes = QUICK if args.quick else Sizes()
    given = {
        "sessions": args.sessions,
        "bulk": args.commands,
        "contention": args.contention,
        "paced_seconds": args.paced_seconds,
    }
    return replace(sizes, **{k: v for k, v in given.items() if v is not None})


def run_bench(args: argparse.Namespace) -> int:
    from tasks.bench import report

    if args.write_markdown and (problem := _unwritable(args.output_dir)):
        # Found now, not after the minutes of measuring it would have thrown away.
        return usage_error("bench", f"--output-dir {args.output_dir}: {problem}")
    # SIGTERM unwinds like Ctrl-C, so the workers and services this run started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    results = measure(args)
    summary = report.summarise(results)
    if args.write_markdown:
        _write(summary, results, args)
    for line in report.lines(summary):
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary, separators=(",", ":")))
    return 0


def _unwritable(directory: Path) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return error.strerror or str(error)
    return None if os.access(directory, os.W_OK) else "not writable"


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every workload, in one run against one set of services."""
    from tasks.bench import harness, report, suite
    from worker.redis_client import make_redis_client

    sizes = _sizes(args)
    sweep = args.sweep if args.sweep is not None else args.write_markdown
    with harness.bench_environment(concurrency=args.concurrency, pool=args.pool) as bench:
        redis = make_redis_client(bench.settings.redis_url)
        results: dict[str, Any] = {"machine": report.machine(redis, bench.embedded)}
        pool = args.pool or bench.settings.worker_pool
        results["pool"] = {"pool": pool, "concurrency": args.concurrency}
        _progress(f"starting {args.workers} workers (logs in {bench.workdir})")
        bench.add_workers(args.workers)
        _progress(f"order flow: {sizes.sessions} sessions x 7 commands, direct, seed")
        results["order_flow"] = suite.order_flow(bench, sizes)
        # After the order flow: every worker process has worked, so it beats as idle
        # processes of a running deployment do (a fresh one has not begun).
        idle_seconds = 5.0 if args.quick else 10.0  # a full reaper pass every 5 s either way
        _progress(f"idle: {idle_seconds:.0f} s with nothing queued")
        results["idle"] = suite.idle(bench, idle_seconds)
        results["idle_cpu_ms_per_s"] = results["idle"]["worker_cpu_ms_per_s"]
        rate = results["order_flow"]["pipeline"]["cps"] / 2
        _progress(f"latency at half saturation: {rate:.0f} cmd/s for {sizes.paced_seconds} s")
        results["paced"] = suite.paced_latency(bench, rate, sizes.paced_seconds)
        results["units"] = suite.flow_units(bench)
        _progress(f"contention: {sizes.contention} commands on {sizes.hot_sessions} sessions")
        results["contention"] = suite.contention(bench, sizes)
        _progress(f"bulk: {sizes.bulk} updates")
        results["bulk"] = suite.bulk(bench, sizes)
        results["redis_backlog_bytes"] = suite.redis_backlog_bytes(bench, sizes.backlog)
        if args.soak:
            _progress(f"soak: {args.soak} updates")
            results["soak"] = suite.soak(bench, args.soak)
        if sweep:
            results["sweep"] = _sweep(bench, sizes)
    return results


def _sweep(bench: Any, sizes: Any) -> list[dict[str, Any]]:
    from tasks.bench import suite

    rows = []
    for workers in SWEEP_WORKERS:
        while len(bench.workers) > workers:
            bench.workers.pop().stop()
        if len(bench.workers) < workers:
            bench.add_workers(workers - len(bench.workers))
        _progress(f"sweep: order flow with {workers} workers")
        result = suite.order_flow(bench, sizes, tag=f"sw{workers}", modes=("direct",))
        rows.append(
            {
                "workers": workers,
                "pipeline_cps": result["pipeline"]["cps"],
                "direct_cps": result["direct"]["cps"],
                "ratio": result["ratio_to_direct"],
                "worker_cpu_ms_per_command": result["pipeline"]["worker_cpu_ms_per_command"],
                "p99_ms": result["pipeline"]["p99_ms"],
            }
        )
    return rows


def _write(summary: dict[str, Any], results: dict[str, Any], args: argparse.Namespace) -> None:
    from tasks.bench import report

    args.output_dir.mkdir(parents=True, exist_ok=True)
    latencies = {
        f"pipeline, saturated ({results['order_flow']['pipeline']['cps']} cmd/s)": results[
            "order_flow"
        ]["pipeline"]["latencies_ms"],
        f"pipeline, half saturation ({results['paced']['rate']} cmd/s)": results["paced"][
            "latencies_ms"
        ],
        "bulk, saturated": results["bulk"]["pipeline"]["latencies_ms"],
    }
    report.plot(summary, latencies, args.output_dir / "BENCHMARKS.png")
    command = " ".join([".venv/bin/checkout", *map(shlex.quote, sys.argv[1:])])
    (args.output_dir / "BENCHMARKS.md").write_text(report.markdown(summary, command))
    _progress(f"wrote {args.output_dir / 'BENCHMARKS.md'} and BENCHMARKS.png")
