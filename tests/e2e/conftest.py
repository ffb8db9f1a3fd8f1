"""End-to-end fixtures: real `checkout` processes (workers, CLI) against the test's services."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHECKOUT = str(Path(sys.executable).with_name("checkout"))
READY_TIMEOUT = 60.0


class WorkerProcess:
    """A `checkout worker` process, stopped by its PID."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [CHECKOUT, "worker", "--concurrency", str(concurrency), "--loglevel", "INFO"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log.read_text()}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {READY_TIMEOUT}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish the running task
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@pytest.fixture
def start_workers(env, tables, tmp_path: Path) -> Iterator[Callable[..., list[WorkerProcess]]]:
    started: list[WorkerProcess] = []

    def start(count: int = 1, *, concurrency: int = 2) -> list[WorkerProcess]:
        workers = [
            WorkerProcess(env, tmp_path / f"worker-{len(started) + i}.log", concurrency)
            for i in range(count)
        ]
        started.extend(workers)
        for worker in workers:
            worker.wait_ready()
        return workers

    yield start
    for worker in started:
        worker.stop()


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
