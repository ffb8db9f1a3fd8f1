"""What `checkout bench` reports: the JSON summary, the capacity model, the targets,
BENCHMARKS.md and BENCHMARKS.png."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.bench import units

# (name, what is compared, limit, True when lower is better)
TARGETS = (
    ("ratio >= 0.9 (order flow, pipeline / direct)", "ratio", 0.9, False),
    ("DynamoDB requests per command <= 1.2 (order flow)", "ddb_requests_per_command", 1.2, True),
    ("DynamoDB requests per command <= 1.2 (bulk)", "bulk_ddb_requests_per_command", 1.2, True),
    ("worker CPU ms per command <= 1.5 (order flow)", "worker_cpu_ms_per_command", 1.5, True),
    ("worker CPU ms per command <= 0.75 (bulk)", "bulk_worker_cpu_ms_per_command", 0.75, True),
    ("worker CPU <= 1.25x direct's per command (order flow)", "cpu_ratio", 1.25, True),
    ("p99 enqueue-to-event ms <= 50 at half saturation", "p99_ms", 50.0, True),
    ("worker RSS growth <= 10% across the soak", "soak_rss_growth", 0.10, True),
    ("Redis calls per command <= 10 (order flow)", "redis_calls_per_command", 10.0, True),
    ("Redis CPU us per command <= 100 (order flow)", "redis_us_per_command", 100.0, True),
    ("idle Redis calls per second <= 5", "redis_idle_calls_per_s", 5.0, True),
    ("write units per update <= 1.5x the seed's", "update_wcu_ratio_to_seed", 1.5, True),
)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The one JSON object: the headline figures first, then every workload's details."""
    flow, paced, bulk = results["order_flow"], results["paced"], results["bulk"]
    steps = results["units"]
    for workload in ("order_flow", "contention", "bulk"):
        _add_units(results[workload], steps)
    update_wcu = units.update_wcu(steps["service_steps"])
    seed_update_wcu = units.update_wcu(steps["seed_steps"])
    summary = {
        "pipeline_cps": flow["pipeline"]["cps"],
        "direct_cps": flow["direct"]["cps"],
        "ratio": flow["ratio_to_direct"],
        "seed_cps": flow["seed"]["cps"],
        "ddb_requests_per_command": flow["pipeline"]["ddb_requests_per_command"],
        "worker_cpu_ms_per_command": flow["pipeline"]["worker_cpu_ms_per_command"],
        "direct_cpu_ms_per_command": flow["direct"]["cpu_ms_per_command"],
        "cpu_ratio": flow["cpu_ratio_to_direct"],
        "moto_cpu_ms_per_command": flow["pipeline"].get("moto_cpu_ms_per_command"),
        "pool": results.get("pool", {}).get("pool", "prefork"),
        "p99_ms": paced["p99_ms"],
        "p99_rate_cps": paced["rate"],
        "bulk_cps": bulk["pipeline"]["cps"],
        "bulk_ddb_requests_per_command": bulk["pipeline"]["ddb_requests_per_command"],
        "bulk_worker_cpu_ms_per_command": bulk["pipeline"]["worker_cpu_ms_per_command"],
        "update_wcu": update_wcu,
        "seed_update_wcu": seed_update_wcu,
        "update_wcu_ratio_to_seed": round(update_wcu / seed_update_wcu, 2),
        "worker_cpu_ms_per_command_net_of_idle": _net_cpu(flow["pipeline"], results),
        "bulk_worker_cpu_ms_per_command_net_of_idle": _net_cpu(bulk["pipeline"], results),
        "worker_idle_cpu_ms_per_s": results["idle_cpu_ms_per_s"],
        **redis_figures(flow["pipeline"], results["idle"]),
        "worker_peak_rss_mb": flow["pipeline"]["worker_peak_rss"]["process_max_mb"],
        "workers": flow["pipeline"]["workers"],
    }
    if "soak" in results:
        summary["soak_rss_growth"] = results["soak"]["growth_after_first_batch"]
    summary["capacity"] = capacity(results)
    summary["targets"] = targets(summary)
    summary["workloads"] = {
        name: _without_latencies(results[name])
        for name in ("order_flow", "paced", "contention", "bulk", "sweep", "soak")
        if name in results
    }
    summary["redis_bytes_per_inflight_command"] = results["redis_backlog_bytes"]
    summary["item_sizes"] = steps
    summary["machine"] = results["machine"]
    return summary


def redis_figures(pipeline: dict[str, Any], idle: dict[str, float]) -> dict[str, Any]:
    """Redis's cost per order-flow command and idle, and the rate one Redis core carries:
    calls are INFO commandstats (script inner calls included), CPU is used_cpu less the
    benchmark's own event polling."""
    redis_us = round(pipeline["redis_cpu_ms_per_command"] * 1000, 1)
    idle_us = idle["redis_cpu_ms_per_s"] * 1000 * pipeline["worker_cpu_window_s"]
    return {
        "redis_calls_per_command": pipeline["redis_commands_per_command"],
        "redis_us_per_command": redis_us,
        # What the reaper, heartbeats and polling cost anyway, spread over a slow run.
        "redis_us_per_command_net_of_idle": round(redis_us - idle_us / pipeline["commands"], 1),
        "redis_ceiling_cps": round(1e6 / redis_us) if redis_us else None,
        "redis_idle_calls_per_s": idle["redis_calls_per_s"],
        "redis_idle_cpu_ms_per_s": idle["redis_cpu_ms_per_s"],
    }


def _net_cpu(pipeline: dict[str, Any], results: dict[str, Any]) -> float:
    """Worker CPU per command less what the idle workers would have burnt meanwhile."""
    idle_ms = results["idle_cpu_ms_per_s"] * pipeline["worker_cpu_window_s"]
    net = pipeline["worker_cpu_ms_per_command"] - idle_ms / pipeline["commands"]
    return round(max(net, 0.0), 3)


def _add_units(workload: dict[str, Any], steps: dict[str, list]) -> None:
    """RCU/WCU per command for each side: its measured request mix over the probe's sizes."""
    service_steps = steps["service_steps"]
    if workload.get("kind") != "order_flow":  # updates only: the flow's update steps
        service_steps = [s for s in service_steps if s["type"] == "update_session"]
    pipeline = workload["pipeline"]
    pipeline.update(units.pipeline_units(service_steps, pipeline["ddb_requests_by_operation"]))
    direct = workload["direct"]
    per_command = {op: n / direct["commands"] for op, n in direct["ddb_requests"].items()}
    direct.update(units.pipeline_units(service_steps, per_command))
    if "seed" in workload:
        seed_steps = steps["seed_steps"]
        if workload.get("kind") != "order_flow":
            seed_steps = [s for s in seed_steps if s["type"] == "update_session"]
        workload["seed"].update(units.seed_units(seed_steps))


def _without_latencies(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_latencies(v) for k, v in value.items() if k != "latencies_ms"}
    if isinstance(value, list):
        return [_without_latencies(v) for v in value]
    return value


def capacity(results: dict[str, Any]) -> dict[str, Any]:
    """Per 1,000 commands/s of the order flow, and where the first limit is."""
    pipeline = results["order_flow"]["pipeline"]
    hot, paced = results["contention"], results["paced"]
    redis_cpu_ms = pipeline["redis_cpu_ms_per_command"]
    wcu = pipeline["wcu_per_command"]
    return {
        "worker_cores_per_1000_cps": round(pipeline["worker_cpu_ms_per_command"], 2),
        "redis_ops_per_s_per_1000_cps": round(pipeline["redis_commands_per_command"] * 1000),
        "redis_cpu_cores_per_1000_cps": round(redis_cpu_ms, 3),
        "redis_bytes_per_inflight_command": results["redis_backlog_bytes"],
        "rcu_per_s_per_1000_cps": round(pipeline["rcu_per_command"] * 1000),
        "wcu_per_s_per_1000_cps": round(wcu * 1000),
        "one_redis_core_max_cps": round(1000 / redis_cpu_ms) if redis_cpu_ms else None,
        **redis_figures(pipeline, results["idle"]),
        # One session applies one command at a time: claim, apply, finish, the next
        # claim. The unloaded enqueue-to-event latency bounds that round.
        "one_hot_session_max_cps": round(1000 / paced["p50_ms"], 1) if paced["p50_ms"] else None,
        "one_hot_session_latency_ms": paced["p50_ms"],
        "hot_session_measured_cps": hot["per_session_cps"],
        "one_partition_max_cps": round(1000 / wcu) if wcu else None,
    }


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, key, limit, lower_is_better in TARGETS:
        measured = summary.get(key)
        if measured is None:
            rows.append({"target": name, "measured": None, "met": None, "by": "not run"})
            continue
        met = measured <= limit if lower_is_better else measured >= limit
        by = (measured / limit) if limit else 0.0
        rows.append({"target": name, "measured": measured, "met": met, "by": f"{by:.2f}x"})
    return rows


def machine(redis_client: Any, embedded: bool) -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "redis_server": redis_client.info("server")["redis_version"],
        "services": "embedded redis-server + moto server" if embedded else "configured",
        "load_before": os.getloadavg()[0],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


# ─── Human output ───


def lines(summary: dict[str, Any]) -> list[str]:
    """A few lines for the terminal."""
    out = [
        f"order flow: pipeline {summary['pipeline_cps']} cmd/s, direct {summary['direct_cps']}, "
        f"seed {summary['seed_cps']}; ratio {summary['ratio']}",
        f"  {summary['ddb_requests_per_command']} DynamoDB requests and "
        f"{summary['worker_cpu_ms_per_command']} worker CPU ms per command; p99 "
        f"{summary['p99_ms']} ms at {summary['p99_rate_cps']} cmd/s",
        f"  CPU per command: workers ({summary['pool']}) "
        f"{summary['worker_cpu_ms_per_command']} ms, direct {summary['direct_cpu_ms_per_command']}"
        f" (cpu_ratio {summary['cpu_ratio']}), moto {summary['moto_cpu_ms_per_command']}",
        f"bulk: {summary['bulk_cps']} cmd/s, {summary['bulk_ddb_requests_per_command']} "
        f"requests and {summary['bulk_worker_cpu_ms_per_command']} CPU ms per command",
        f"Redis: {summary['redis_calls_per_command']} calls and "
        f"{summary['redis_us_per_command']} CPU us per command (one core: "
        f"{summary['redis_ceiling_cps']} cmd/s); idle {summary['redis_idle_calls_per_s']} calls/s",
        f"idle workers: {summary['worker_idle_cpu_ms_per_s']} CPU ms/s; net of it "
        f"{summary['worker_cpu_ms_per_command_net_of_idle']} (order flow), "
        f"{summary['bulk_worker_cpu_ms_per_command_net_of_idle']} (bulk) CPU ms per command",
    ]
    for row in summary["targets"]:
        state = {True: "met", False: "MISSED", None: "not run"}[row["met"]]
        out.append(f"  [{state}] {row['target']}: {row['measured']} ({row['by']} of target)")
    return out


# ─── BENCHMARKS.md and BENCHMARKS.png ───


def plot(summary: dict[str, Any], latencies: dict[str, list[float]], path: Path) -> None:
    """Throughput against worker processes, and the latency distributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    sweep = summary["workloads"].get("sweep", [])
    if sweep:
        workers = [row["workers"] for row in sweep]
        left.plot(workers, [r["pipeline_cps"] for r in sweep], "o-", label="pipeline")
        left.plot(workers, [r["direct_cps"] for r in sweep], "s--", label="direct (in process)")
        left.set_xticks(workers)
    left.set_xlabel("worker processes")
    left.set_ylabel("order-flow commands/s")
    left.set_title("Throughput against worker processes")
    left.legend()
    left.grid(alpha=0.3)
    for label, values in latencies.items():
        if values:
            ordered = sorted(values)
            fractions = [(n + 1) / len(ordered) for n in range(len(ordered))]
            right.plot(ordered, fractions, label=label)
    right.set_xscale("log")
    right.set_xlabel("enqueue to result event (ms, log scale)")
    right.set_ylabel("fraction of commands")
    right.set_title("Latency distribution")
    right.axvline(50, color="grey", linestyle=":", label="50 ms target")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _row(name: str, side: dict[str, Any], ratio: str = "") -> str:
    rss = side.get("worker_peak_rss", {}).get("process_max_mb", "")
    cpu = side.get("worker_cpu_ms_per_command", side.get("cpu_ms_per_command", ""))
    return (
        f"| {name} | {side['commands']} | {side['cps']} | {side['p50_ms']} | {side['p95_ms']} | "
        f"{side['p99_ms']} | {side['ddb_requests_per_command']} | {side.get('rcu_per_command', '')}"
        f" | {side.get('wcu_per_command', '')} | {cpu} | {rss} | {ratio} |"
    )


TABLE_HEAD = (
    "| path | commands | cmd/s | p50 ms | p95 ms | p99 ms | DDB req/cmd | RCU/cmd | WCU/cmd "
    "| CPU ms/cmd | peak RSS MB | cmd/s vs pipeline |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _workload_table(workload: dict[str, Any]) -> list[str]:
    rows = [TABLE_HEAD, _row("pipeline (workers)", workload["pipeline"])]
    for side in ("direct", "seed"):
        if side in workload:
            other = workload[side]
            ratio = f"{other['cps'] / workload['pipeline']['cps']:.2f}x"
            rows.append(_row(f"{side} (in process)", other, ratio))
    return rows


def markdown(summary: dict[str, Any], command: str) -> str:
    m, w, cap = summary["machine"], summary["workloads"], summary["capacity"]
    flow = w["order_flow"]["pipeline"]
    out = [
        "# Benchmarks",
        "",
        f"Written by `checkout bench --write-markdown` on {m['date']} (commit {m['commit']}).",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB; Python {m['python']}, "
        f"redis-server {m['redis_server']}; {m['services']}; load average "
        f"{m['load_before']:.2f} at the start (shared with other work: absolute rates are "
        "this machine's, compare ratios).",
        "",
        "Reproduce:",
        "",
        "```sh",
        "make install",
        command,
        ".venv/bin/checkout bench --quick --json   # the three-minute version",
        "```",
        "",
        "The moto server stands in for DynamoDB and runs on the same cores: its CPU is in the "
        "wall times of every path (pipeline, direct and seed alike) but not in the worker CPU "
        "figures, which are the workers' own (/proc, process trees, Celery pool included); "
        f"moto's own is {summary['moto_cpu_ms_per_command']} ms per order-flow command. It keeps "
        "its clients' connections open, as DynamoDB does (`tasks.embedded.keep_alive`; runs "
        "before 2026-12-04 paid a TCP connect per request).",
        "",
        "## Targets",
        "",
        f"Worker CPU is measured over the whole run of a workload, so it includes what idle "
        f"workers burn anyway ({summary['worker_idle_cpu_ms_per_s']} CPU ms/s measured with "
        f"nothing queued: Celery's polling, heartbeats, the reaper). Net of that: "
        f"{summary['worker_cpu_ms_per_command_net_of_idle']} ms per command on the order flow, "
        f"{summary['bulk_worker_cpu_ms_per_command_net_of_idle']} on bulk.",
        "",
        "| target | measured | met | measured / target |",
        "|---|---|---|---|",
    ]
    for row in summary["targets"]:
        state = {True: "met", False: "**missed**", None: "not run"}[row["met"]]
        measured = row["measured"]
        if "RSS growth" in row["target"] and measured is not None:
            measured = f"{measured:.1%}"
        out.append(f"| {row['target']} | {measured} | {state} | {row['by']} |")
    out += ["", *_cpu_profile(w["order_flow"], w["bulk"])]
    out += [
        "",
        f"## 1. Order flow ({flow['workers']} workers, `--pool {summary['pool']} --concurrency 1`)",
        "",
        "Per session: create; update line items, buyer, shipping address; transition to "
        "`ready_for_complete`; update payment instruments; complete (7 commands). All sent at "
        "once, 32 sessions in flight per group (saturation); baselines apply the same flows "
        "from as many processes as there are workers. Latency: enqueue (`time.time()` at "
        "send) to the result event's stream entry id (Redis clock); for the baselines, "
        "the time of one `handle` call.",
        "",
        *_workload_table(w["order_flow"]),
        "",
        f"DynamoDB requests per command by operation: {flow['ddb_requests_by_operation']}; "
        f"Redis commands per command: {flow['redis_commands_per_command']}; outcomes: "
        f"{flow['outcomes']}.",
        "",
        f"Latency at half the saturation rate ({w['paced']['rate']} cmd/s, "
        f"{w['paced']['commands']} commands): p50 {w['paced']['p50_ms']} ms, p95 "
        f"{w['paced']['p95_ms']} ms, p99 {w['paced']['p99_ms']} ms.",
        "",
        "![throughput and latency](BENCHMARKS.png)",
        "",
    ]
    out += _sweep_section(w.get("sweep", []))
    hot = w["contention"]
    out += [
        f"## 2. Contention ({hot['hot_sessions']} hot sessions)",
        "",
        *_workload_table(hot),
        "",
        "Conflicts (failed conditional writes) per command: pipeline "
        f"{hot['pipeline']['conflicts_per_command']}, "
        f"direct {hot['direct']['conflicts_per_command']}"
        f"; retries per command (pipeline): {hot['pipeline']['retries_per_command']}. The "
        "ordering gate applies one command per session at a time, so a hot session runs at "
        f"{hot['per_session_cps']} cmd/s here.",
        "",
        "## 3. Bulk (updates through the bulk queue, 1,000 per send as `checkout send --bulk`)",
        "",
        *_workload_table(w["bulk"]),
        "",
        "## Write units per update (typical session)",
        "",
        f"Pipeline {summary['update_wcu']} WCU per update (one conditional UpdateItem; the "
        "session item carries its ledger of the last 8 commands), seed "
        f"{summary['seed_update_wcu']} (one PutItem): {summary['update_wcu_ratio_to_seed']}x. "
        "Item sizes along the flow (bytes, AWS rules), pipeline: "
        + ", ".join(f"{s['type']} {s['after']}" for s in summary["item_sizes"]["service_steps"])
        + "; seed: "
        + ", ".join(f"{s['type']} {s['after']}" for s in summary["item_sizes"]["seed_steps"])
        + ".",
        "",
    ]
    out += _soak_section(w.get("soak"))
    out += _capacity_section(cap)
    return "\n".join(out) + "\n"


def _sweep_section(sweep: list[dict[str, Any]]) -> list[str]:
    if not sweep:
        return []
    out = [
        "### Throughput against worker processes",
        "",
        "| workers | pipeline cmd/s | direct cmd/s | ratio | worker CPU ms/cmd |",
        "|---|---|---|---|---|",
    ]
    for row in sweep:
        out.append(
            f"| {row['workers']} | {row['pipeline_cps']} | {row['direct_cps']} | "
            f"{row['ratio']} | {row['worker_cpu_ms_per_command']} |"
        )
    return [*out, ""]


def _soak_section(soak: dict[str, Any] | None) -> list[str]:
    if not soak:
        return ["## Worker RSS (soak)", "", "Not run (`checkout bench --soak 100000`).", ""]
    return [
        f"## Worker RSS across {soak['commands']:,} commands",
        "",
        f"Summed RSS of the worker processes after each batch of {soak['batch']:,} (MB): "
        f"{soak['rss_mb_samples']}; growth after the first batch: "
        f"{soak['growth_after_first_batch'] * 100:.1f}% ({soak['seconds']} s).",
        "",
    ]


def _capacity_section(cap: dict[str, Any]) -> list[str]:
    return [
        "## Capacity model (per 1,000 order-flow commands/s)",
        "",
        "| resource | per 1,000 cmd/s |",
        "|---|---|",
        f"| worker cores | {cap['worker_cores_per_1000_cps']} |",
        f"| Redis commands/s | {cap['redis_ops_per_s_per_1000_cps']:,} "
        f"(`redis_calls_per_command` {cap['redis_calls_per_command']}, script inner calls "
        "included) |",
        f"| Redis CPU (cores) | {cap['redis_cpu_cores_per_1000_cps']} "
        f"(`redis_us_per_command` {cap['redis_us_per_command']}; "
        f"{cap['redis_us_per_command_net_of_idle']} net of what Redis spends idle) |",
        f"| Redis memory per in-flight command | {cap['redis_bytes_per_inflight_command']} bytes "
        f"({cap['redis_bytes_per_inflight_command'] * 1000 / 1e6:.1f} MB per second of backlog) |",
        f"| DynamoDB RCU/s | {cap['rcu_per_s_per_1000_cps']:,} |",
        f"| DynamoDB WCU/s | {cap['wcu_per_s_per_1000_cps']:,} |",
        "",
        "Where the first limit is:",
        "",
        f"- **One Redis core**: Redis is single-threaded; at the measured Redis CPU per "
        f"command it saturates near {cap['redis_ceiling_cps']} cmd/s "
        "(`redis_ceiling_cps`; idle, a deployment costs Redis "
        f"{cap['redis_idle_calls_per_s']} calls/s and {cap['redis_idle_cpu_ms_per_s']} "
        'CPU ms/s). Beyond that: shards (`CHECKOUT_REDIS_URLS`, README "Scaling out"): '
        "each Redis carries its sessions' commands at the same cost per command, so the "
        "ceiling is this figure times the shards (`make bench-shards` measures 1 to 3), "
        "until worker cores or DynamoDB capacity bind.",
        f"- **One hot session**: the ordering gate applies one command per session at a "
        f"time, so one session tops out at 1 / per-command latency: about "
        f"{cap['one_hot_session_max_cps']} cmd/s here (p50 "
        f"{cap['one_hot_session_latency_ms']} ms from enqueue to event, unloaded; the "
        f"contention run measured {cap['hot_session_measured_cps']} cmd/s per hot session "
        "with the workers saturated). "
        "Real checkouts send a handful of commands per session, so this only binds on "
        "abuse or a runaway client: rate-limit per session at the producer.",
        f"- **One partition's 1,000 WCU/s**: one session is one partition key, so at "
        f"{cap['wcu_per_s_per_1000_cps'] / 1000:.1f} WCU per command one session could "
        f"take at most {cap['one_partition_max_cps']} cmd/s, above what the ordering gate "
        "already allows; across sessions DynamoDB spreads keys over partitions, so the "
        "table's provisioned or on-demand capacity is the limit: provision "
        "WCU/s = rate x WCU per command (or use on-demand).",
        "- **Worker cores**: add worker processes or hosts (the sweep above shows how "
        "throughput scales on this machine, where moto shares the cores).",
        "",
    ]


def _cpu_profile(flow: dict[str, Any], bulk: dict[str, Any]) -> list[str]:
    """Where a worker's CPU per command goes, from this run's own figures."""
    worker = flow["pipeline"]["worker_cpu_ms_per_command"]
    direct = flow["direct"]["cpu_ms_per_command"]
    bulk_worker = bulk["pipeline"]["worker_cpu_ms_per_command"]
    return [
        "Where the CPU goes: the direct baseline, the same service and the same DynamoDB "
        f"requests in process, spends {direct} ms per command (parse, decide, build the "
        "event and the item, one UpdateItem through `worker.dynamodb.http`); the workers "
        f"{worker}, so Celery and the journal add {worker - direct:.2f} ms. "
        "`make bench-profile` (`benchmarks.worker_profile`, py-spy `--gil` on one worker) "
        "splits a worker's CPU per command by phase: the service, claim and finish, the "
        "outcome line and metrics, Celery's request and trace, kombu's BRPOP and decode, "
        "and what no Python sample sees (system calls and the kernel's loopback TCP work: "
        "about half of it). Bulk messages carry 50 commands, so Celery's and kombu's "
        f"per-message share is spread over them: {bulk_worker} ms per bulk command. README "
        '"Worker pools" compares the pools, README "Measured" lists what was tried.',
    ]
