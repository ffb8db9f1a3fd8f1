"""When a worker process beats (`worker.delivery.heartbeat`): every tick while it works,
rarely while idle."""

from __future__ import annotations

from types import SimpleNamespace

from worker.delivery.heartbeat import Heartbeat


class Beats:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.cleared: list[bool] = []

    def heartbeat(self, worker: str, applying: str | None = None, *, clear: bool = True) -> None:
        self.sent.append((worker, applying))
        self.cleared.append(clear)


def beating(monkeypatch) -> tuple[list[float], Beats, SimpleNamespace, Heartbeat]:
    """A heartbeat (2 s, idle 6 s) on a clock the test moves, after its first beat."""
    now = [100.0]
    monkeypatch.setattr("worker.delivery.heartbeat.time.monotonic", lambda: now[0])
    journal, processor = Beats(), SimpleNamespace(worker_id="w1", applying=None, claimed=0)
    heart = Heartbeat(journal, processor, interval=2.0, idle_interval=6.0)
    heart._beat()
    return now, journal, processor, heart


def test_an_idle_process_beats_only_after_its_idle_interval(monkeypatch) -> None:
    now, _, _, heart = beating(monkeypatch)

    now[0] += 2.0
    assert not heart.due()  # idle, beat 2 s ago
    now[0] += 4.0
    assert heart.due()  # idle, but 6 s since the last beat


def test_a_process_that_worked_since_its_last_beat_beats_on_the_next_tick(monkeypatch) -> None:
    now, journal, processor, heart = beating(monkeypatch)

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


def test_an_idle_beat_after_an_idle_beat_clears_nothing(monkeypatch) -> None:
    """Only a beat that may follow a `busy` mark of ours asks Redis to clear it."""
    monkeypatch.setattr("worker.delivery.heartbeat.time.monotonic", lambda: 100.0)
    journal, processor = Beats(), SimpleNamespace(worker_id="w1", applying="1-1", claimed=1)
    heart = Heartbeat(journal, processor, interval=2.0, idle_interval=6.0)
    heart._beat()  # applying: marks busy
    processor.applying = None
    heart._beat()  # the first idle beat: clears the mark
    heart._beat()  # idle again, nothing claimed: nothing to clear
    processor.claimed = 2
    heart._beat()  # claimed (and finished) one since: may have a mark to clear

    assert journal.cleared == [True, True, False, True]
