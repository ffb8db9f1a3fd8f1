"""The solo pool (`checkout worker --pool solo`) keeps the delivery guarantees: a worker
that applies commands in its own process, without prefork's hand-off, can be SIGKILLed
mid-command and its commands come back through the journal, each applied exactly once
and in session order."""

from __future__ import annotations

from tests.faults.conftest import busy_pids, wait_for
from tests.faults.test_delivery_faults import (
    applying,
    chunks,
    events_at_least,
    session_stream,
    verify,
)


def test_sigkill_of_a_solo_worker_mid_command_loses_nothing(
    workers, producer, redis_client, settings, store
):
    """Three times during a stream, a solo worker is SIGKILLed while it applies a command
    (there is no pool process to lose: the worker is the one applying) and a replacement
    is started; a second solo worker runs throughout."""
    survivor = workers.start(concurrency=1, pool="solo")
    victim = workers.start(concurrency=1, pool="solo")
    commands = session_stream("solo", sessions=30)
    killed = []
    sent = 0
    for part in chunks(commands, 3):
        producer.enqueue_many(part)
        sent += len(part)
        events_at_least(redis_client, settings, sent - len(part) // 2)  # mid-chunk
        wait_for(
            lambda v=victim: v.pid in busy_pids(redis_client, settings.key_prefix),
            what="the solo victim applying a command",
        )
        killed.append(applying(redis_client, settings, victim.pid))
        victim = workers.restart(victim, concurrency=1, pool="solo")
    verify(
        "SIGKILL of a solo worker",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
    )
    print(f"  kills: {workers.kills}, while applying {killed}")
    assert survivor.process.poll() is None
    assert len(workers.kills) == 3
    assert all(killed), "every kill landed while the victim applied a command"
