"""When a worker process beats (`worker.delivery.heartbeat`): every tick while it works,
rarely while idle."""

from __future__ import annotations

from types import SimpleNamespace

from worker.delivery.heartbeat import Heartbeat


class Beats:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []

    def heartbeat(self, worker: str, applying: str | None = None) -> None:
        self.sent.append((worker, applying))


def test_an_idle_process_beats_only_after_its_idle_interval(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr("worker.delivery.heartbeat.time.monotonic", lambda: now[0])
    journal, processor = Beats(), SimpleNamespace(worker_id="w1", applying=None, claimed=0)
    heart = Heartbeat(journal, processor, interval=2.0, idle_interval=6.0)
    heart._beat()

    now[0] += 2.0
    assert not heart.due()  # idle, beat 2 s ago
    now[0] += 4.0
    assert heart.due()  # idle, but 6 s since the last beat


def test_a_process_that_worked_since_its_last_beat_beats_on_the_next_tick(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr("worker.delivery.heartbeat.time.monotonic", lambda: now[0])
    journal, processor = Beats(), SimpleNamespace(worker_id="w1", applying=None, claimed=0)
    heart = Heartbeat(journal, processor, interval=2.0, idle_interval=6.0)
    heart._beat()

    processor.claimed = 3  # applied three commands, none now
    now[0] += 2.0
    assert heart.due()
    heart._beat()
    now[0] += 2.0
    assert not heart.due()  # nothing since
    processor.applying = "1-2"
    assert heart.due()  # applying now
    heart._beat()
    assert journal.sent[-1] == ("w1", "1-2")
