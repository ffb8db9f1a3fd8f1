"""CPU per DynamoDB request: botocore's low-level client vs worker.dynamodb.http, side by side.

`python -m benchmarks.client_cpu` starts an embedded moto server (the one `make demo`
and the tests use) and times conditional UpdateItem calls shaped like the store's
(a SET of a few attributes, a condition on version and updated_at, ALL_OLD on failure),
measuring this process's CPU (`time.process_time`: user + system, the moto server's
own CPU is another process's) per request. Each round runs both clients, in
alternating order; the table shows the median of the rounds.

Three setups, all measured unless `--only` picks one:

  reconnect   straight to moto, which closes the connection after every answer, so
              every request also pays for a new TCP connection;
  keep-alive  through a small relay process that keeps the client's connection open
              (as DynamoDB does) and forwards each request to moto;
  instant     the relay answering every request itself at once (DynamoDB's answer to
              a successful UpdateItem, `{}`): the client's own cost, without the CPU a
              process pays on this machine for waking up after each wait on moto (the
              same code costs several times more per request when every answer takes
              milliseconds to come, for both clients).

Both clients come from their factories (`make_dynamodb_client`, `make_http_client`),
so both count requests into the Prometheus counter as the worker's do.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.embedded.stack import ManagedProcess, free_port, start_moto

TABLE = "client_cpu"
STAMP = "2026-01-01T00:00:00.000Z"


def main() -> None:
    if sys.argv[1:2] == ["--relay"]:  # the relay process `start_relay` starts
        serve_relay(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="UpdateItem calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--only", choices=["reconnect", "keep-alive", "instant"])
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="client-cpu-"))
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    moto, moto_url = start_moto(workdir, keep_alive=False)  # the relay keeps them open
    relays: list[ManagedProcess] = []
    try:
        create_table(moto_url)
        setups = {"reconnect": moto_url}
        for name, upstream in (("keep-alive", moto_url), ("instant", "stub")):
            if options.only in (None, name):
                relay, url = start_relay(workdir, upstream)
                relays.append(relay)
                setups[name] = url
        if options.only:
            setups = {options.only: setups[options.only]}
        results = {
            name: measure(url, options.calls, options.rounds, options.warmup)
            for name, url in setups.items()
        }
    finally:
        for relay in relays:
            relay.stop()
        moto.stop()
    print_table(results, options)


# ─── Measuring ───


def clients(endpoint_url: str) -> dict[str, Any]:
    from worker.dynamodb.clients import make_dynamodb_client, make_http_client
    from worker.settings import Settings

    settings = Settings(dynamodb_endpoint_url=endpoint_url)
    return {
        "botocore": make_dynamodb_client(settings),
        "dynamodb_http": make_http_client(settings),
    }


def measure(url: str, calls: int, rounds: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Per client: CPU and wall seconds per request, one entry per round."""
    by_client = clients(url)
    updates = {name: conditional_updates(client) for name, client in by_client.items()}
    for update in updates.values():
        for _ in range(warmup):
            update()
    samples: dict[str, dict[str, list[float]]] = {
        name: {"cpu": [], "wall": []} for name in by_client
    }
    for round_number in range(rounds):
        order = list(updates) if round_number % 2 == 0 else list(reversed(updates))
        for name in order:
            update = updates[name]
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                update()
            samples[name]["cpu"].append((time.process_time() - cpu) / calls)
            samples[name]["wall"].append((time.perf_counter() - wall) / calls)
    return samples


def conditional_updates(client: Any) -> Callable[[], None]:
    """A function making one conditional UpdateItem on an item of its own, as the store
    does for a command: each call expects the version the previous one wrote."""
    key = {"sessionId": {"S": f"bench-{uuid.uuid4().hex[:12]}"}}
    client.put_item(
        TableName=TABLE,
        Item={**key, "version": {"N": "1"}, "updated_at": {"S": STAMP}, "status": {"S": "open"}},
    )
    version = 1

    def update() -> None:
        nonlocal version
        client.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #v = :next, #u = :stamp, #s = :status, #c = :cart, #t = :ttl",
            ConditionExpression="#v = :current AND #u = :stamp AND (attribute_not_exists(#t) "
            "OR #t > :now)",
            ExpressionAttributeNames={
                "#v": "version",
                "#u": "updated_at",
                "#s": "status",
                "#c": "line_items",
                "#t": "ttl",
            },
            ExpressionAttributeValues={
                ":next": {"N": str(version + 1)},
                ":current": {"N": str(version)},
                ":stamp": {"S": STAMP},
                ":status": {"S": "incomplete"},
                ":cart": {
                    "L": [
                        {"M": {"id": {"S": "li_1"}, "total_amount": {"N": "1999"}}},
                        {"M": {"id": {"S": "li_2"}, "total_amount": {"N": "501"}}},
                    ]
                },
                ":ttl": {"N": "4102444800"},
                ":now": {"N": "1767225600"},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        version += 1

    return update


def create_table(url: str) -> None:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def print_table(results: dict[str, dict[str, dict[str, list[float]]]], options: Any) -> None:
    print(
        f"\nCPU per conditional UpdateItem, median of {options.rounds} rounds of "
        f"{options.calls:,} calls (moto server on this machine, {os.cpu_count()} cores)\n"
    )
    print(
        f"{'connection':<12} {'client':<14} {'CPU us/req':>10} {'rounds (us)':>22} {'wall ms':>8}"
    )
    for setup, by_client in results.items():
        medians = {}
        for name, samples in by_client.items():
            cpu = statistics.median(samples["cpu"]) * 1e6
            medians[name] = cpu
            rounds = " ".join(f"{value * 1e6:,.0f}" for value in samples["cpu"])
            wall = statistics.median(samples["wall"]) * 1e3
            print(f"{setup:<12} {name:<14} {cpu:>10,.0f} {rounds:>22} {wall:>8.2f}")
        ratio = medians["botocore"] / medians["dynamodb_http"]
        print(f"{setup:<12} {'ratio':<14} {ratio:>9.1f}x")


# ─── The keep-alive relay (its own process: its CPU is not the client's) ───


def start_relay(workdir: Path, upstream: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.client_cpu", "--relay", str(port), upstream]
    process = ManagedProcess("relay", args, log=workdir / f"relay-{port}.log")
    process.wait_until(lambda: _accepts(port))
    return process, f"http://127.0.0.1:{port}"


def serve_relay(port: int, upstream: str) -> None:
    """Serve 127.0.0.1:`port` until killed, keeping client connections open. Each request
    goes to `upstream` on a connection of its own and the answer comes back without
    moto's `Connection: close`; with upstream `stub`, every request gets DynamoDB's
    answer to an UpdateItem without ReturnValues (`{}`) at once."""
    address = None
    if upstream != "stub":
        host, _, upstream_port = upstream.removeprefix("http://").partition(":")
        address = (host, int(upstream_port or 80))
    listener = socket.create_server(("127.0.0.1", port))
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay_connection, args=(client, address), daemon=True).start()


STUB_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"x-amzn-RequestId: stub\r\nx-amz-crc32: %d\r\nContent-Length: 2\r\n\r\n{}" % zlib.crc32(b"{}")
)


def _relay_connection(client: socket.socket, upstream: tuple[str, int] | None) -> None:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with client, client.makefile("rb") as reader:
        while request := _read_message(reader):
            if upstream is None:
                client.sendall(STUB_ANSWER)
                continue
            with socket.create_connection(upstream) as forward:
                forward.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                forward.sendall(request[0] + request[1])
                with forward.makefile("rb") as answers:
                    answer = _read_message(answers)
            if answer is None:
                return
            head, body = answer
            kept = [
                line
                for line in head.split(b"\r\n")
                if line.partition(b":")[0].strip().lower() != b"connection"
            ]
            client.sendall(b"\r\n".join(kept) + body)


def _read_message(reader: Any) -> tuple[bytes, bytes] | None:
    """One HTTP message framed by Content-Length: (head with its blank line, body)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, reader.read(length)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
