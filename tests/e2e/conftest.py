"""End-to-end fixtures: real `checkout` processes (workers, CLI) against the test's services."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tasks.embedded.stack import CHECKOUT, ManagedProcess, start_worker, stop_all


@pytest.fixture
def start_workers(env, tables, tmp_path: Path) -> Iterator[Callable[..., list[ManagedProcess]]]:
    """Start `checkout worker` processes; each is stopped (SIGTERM, by PID) after the test."""
    started: list[ManagedProcess] = []

    def start(count: int = 1, *, concurrency: int = 2) -> list[ManagedProcess]:
        for _ in range(count):
            log = tmp_path / f"worker-{len(started)}.log"
            started.append(start_worker(env, log=log, concurrency=concurrency, loglevel="INFO"))
        return started[-count:]

    yield start
    stop_all(started)


@pytest.fixture
def checkout(env) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `checkout` CLI with this test's environment."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CHECKOUT, *args], env=env, input=input, capture_output=True, text=True, timeout=120
        )

    return run


@pytest.fixture
def send(checkout) -> Callable[[list[dict]], subprocess.CompletedProcess[str]]:
    """Enqueue commands through `checkout send -`; fails the test if any line is refused."""

    def run(commands: list[dict]) -> subprocess.CompletedProcess[str]:
        result = checkout("send", "-", input="".join(json.dumps(c) + "\n" for c in commands))
        assert result.returncode == 0, result.stderr
        return result

    return run


@pytest.fixture
def events(redis_client, settings) -> Callable[..., list[dict]]:
    """Wait until the stream holds at least `count` events, then return them all, parsed."""

    def wait(count: int, *, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while redis_client.xlen(settings.events_stream) < count:
            if time.monotonic() > deadline:
                have = redis_client.xlen(settings.events_stream)
                raise AssertionError(f"{have} of {count} events after {timeout}s")
            time.sleep(0.05)
        entries = redis_client.xrange(settings.events_stream)
        return [json.loads(fields["event"]) for _, fields in entries]

    return wait
