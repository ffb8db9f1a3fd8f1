"""A shard that goes away after the CLI's preflight (every shard answered it) is the
one the one-line error names: its index and URL, the password masked, against two real
redis-servers behind passwords."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.cli import errors, main
from tasks.embedded.stack import ManagedProcess, start_redis, stop_all
from worker.settings import get_settings


@pytest.fixture
def guarded(env, tmp_path, monkeypatch) -> Iterator[list[tuple[ManagedProcess, str]]]:
    """Two shards behind passwords, listed in CHECKOUT_REDIS_URLS."""
    started = []
    for n in range(2):
        (tmp_path / f"g{n}").mkdir()
        started.append(start_redis(tmp_path / f"g{n}", password=f"pw-{n}-secret"))
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", ",".join(url for _, url in started))
    yield started
    stop_all([server for server, _ in started])
    get_settings.cache_clear()


def stop_after_preflight(monkeypatch, server: ManagedProcess) -> None:
    """The preflight pings every shard as usual, then `server` stops (by its PID)."""
    preflight = errors.ping_redis

    def ping_then_stop(**kwargs: bool) -> None:
        preflight(**kwargs)
        server.stop()

    monkeypatch.setattr(errors, "ping_redis", ping_then_stop)


@pytest.mark.parametrize("argv", [["report", "run-x"], ["dlq", "list"], ["events", "--count", "1"]])
def test_a_shard_lost_after_the_preflight_is_the_one_named(guarded, monkeypatch, capsys, argv):
    _, (second_server, second) = guarded
    port = second.rsplit(":", 1)[1].split("/")[0]
    stop_after_preflight(monkeypatch, second_server)

    get_settings.cache_clear()
    code = main(argv)
    err = capsys.readouterr().err

    assert code == 4
    assert err.count("\n") == 1
    assert f"cannot reach shard 1 at redis://:***@127.0.0.1:{port}/0" in err
    assert "check CHECKOUT_REDIS_URLS" in err
    assert "secret" not in err
