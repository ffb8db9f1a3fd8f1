"""`CHECKOUT_REDIS_URL` with a password, and with TLS (`rediss://`): a real worker takes a
command enqueued through the producer and its event reaches the stream, and the
password never shows up in the worker's log.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tasks.embedded.stack import ManagedProcess, free_port, redis_server_binary, start_worker

WAIT_SECONDS = 120.0


@dataclass
class SecuredRedis:
    url: str
    password: str


def _start(args: list[str], workdir: Path, client: redis.Redis) -> ManagedProcess:
    process = ManagedProcess("redis-server", args, log=workdir / "redis.log")

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    process.wait_until(answers)
    return process


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "redis.crt", workdir / "redis.key"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*request, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(params=["password", "tls"])
def secured_redis(request, tmp_path: Path) -> Iterator[SecuredRedis]:
    """A redis-server that wants a password (and, for `tls`, speaks only TLS)."""
    password = f"pw-{uuid.uuid4().hex}"
    port = free_port()
    args = [redis_server_binary(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(tmp_path), "--requirepass", password]
    if request.param == "tls":
        cert, key = _self_signed(tmp_path)
        args += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        args += ["--tls-ca-cert-file", str(cert)]
        url = f"rediss://:{password}@127.0.0.1:{port}/0?ssl_cert_reqs=none"
    else:
        args += ["--port", str(port)]
        url = f"redis://:{password}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=2)
    process = _start(args, tmp_path, client)
    client.close()
    yield SecuredRedis(url=url, password=password)
    process.stop()


def test_worker_and_event_stream_work_through_a_secured_redis(
    secured_redis, env, tables, monkeypatch, tmp_path: Path
):
    from tasks.producer import CommandProducer
    from worker.redis_client import make_redis_client
    from worker.settings import Settings

    env["CHECKOUT_REDIS_URL"] = secured_redis.url
    monkeypatch.setenv("CHECKOUT_REDIS_URL", secured_redis.url)
    settings = Settings()
    log = tmp_path / "worker.log"
    worker = start_worker(env, log=log, concurrency=1, loglevel="DEBUG")
    try:
        producer = CommandProducer.from_settings(settings)
        producer.enqueue({"type": "create_session", "command_id": "c-1", "session_id": "s-1"})
        client = make_redis_client(settings.redis_url)
        events = _wait_for(
            lambda: [json.loads(f["event"]) for _, f in client.xrange(settings.events_stream)]
        )
    finally:
        worker.stop()

    assert [(e["command_id"], e["type"]) for e in events] == [("c-1", "session.created")]
    assert secured_redis.password not in log.read_text(errors="replace")


def _wait_for(read, *, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while not (found := read()):
        assert time.monotonic() < deadline, f"nothing after {timeout:.0f}s"
        time.sleep(0.05)
    return found
