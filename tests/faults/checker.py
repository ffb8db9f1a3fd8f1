"""A total-queue checker in the spirit of Jepsen's: what became of every command sent?

Given the commands a test enqueued (in enqueue order) and the result events read
from the stream, and optionally the sessions' final versions from DynamoDB, every
command is classified applied, rejected (with its code), dead-lettered or lost,
and the ways the pipeline can break its promise are counted:

- lost: a command with no result event at all;
- applied twice: a command with two different results (distinct `event_id`s),
  other than dead-lettered results followed by the one result of its replay;
- duplicates: the same event delivered again (same `event_id`), which consumers
  deduplicate and is therefore allowed, only counted;
- out of order: within a session, the versions of applied commands must rise in
  enqueue order (a replayed dead letter is exempt: its turn had passed);
- lost updates: the stored session's version must be the number of commands
  applied to it (create is version 1, each applied command adds one).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEAD = "command.dead_lettered"


@dataclass
class Verdict:
    """The counts of one run, and each command's final outcome."""

    sent: int = 0
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    lost: int = 0
    applied_twice: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    replayed: int = 0
    unexpected_events: int = 0
    sessions_checked: int = 0
    lost_updates: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rejected = sum(self.rejected.values())
        codes = ",".join(f"{code}={n}" for code, n in sorted(self.rejected.items()))
        return (
            f"sent={self.sent} applied={self.applied} rejected={rejected}"
            f"{f' ({codes})' if codes else ''} dead_lettered={self.dead_lettered}"
            f" lost={self.lost} applied_twice={self.applied_twice}"
            f" out_of_order={self.out_of_order} lost_updates={self.lost_updates}"
            f" (sessions checked={self.sessions_checked}) duplicates={self.duplicates}"
            f" replayed={self.replayed} unexpected_events={self.unexpected_events}"
        )

    def assert_sound(self) -> None:
        """The pipeline's promise: nothing lost, applied twice or out of order."""
        detail = "; ".join(self.problems[:10])
        assert self.lost == 0, f"{self.summary()}: {detail}"
        assert self.applied_twice == 0, f"{self.summary()}: {detail}"
        assert self.out_of_order == 0, f"{self.summary()}: {detail}"
        assert self.lost_updates == 0, f"{self.summary()}: {detail}"


def check(
    commands: Sequence[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    *,
    stored_versions: Mapping[str, int | None] | None = None,
    unordered: Iterable[str] = (),
) -> Verdict:
    """Classify every command in `commands` (enqueue order; repeats of an id count once)
    from `events` (stream order). With `stored_versions` (session id -> stored version,
    None if absent) the sessions' final state is checked too. Commands in `unordered`
    were sent around the producer API (no sequence number): no order is promised them."""
    verdict = Verdict()
    order = _first_occurrences(commands)
    verdict.sent = len(order)
    results = _distinct_results(events, set(order), verdict)
    exempt = set(unordered)
    for command_id in order:
        outcome, replayed = _classify(command_id, results.get(command_id, []), verdict)
        verdict.outcomes[command_id] = outcome
        if replayed:  # a replayed dead letter is applied whenever it comes back
            exempt.add(command_id)
    _check_order(order, results, exempt, verdict)
    if stored_versions is not None:
        _check_sessions(order, results, stored_versions, verdict)
    return verdict


def _first_occurrences(commands: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    order: dict[str, Mapping[str, Any]] = {}
    for command in commands:
        order.setdefault(command["command_id"], command)
    return order


def _distinct_results(
    events: Iterable[Mapping[str, Any]], known: set[str], verdict: Verdict
) -> dict[str, list[Mapping[str, Any]]]:
    """Each command's distinct result events in stream order; repeats counted as duplicates."""
    seen: set[str] = set()
    results: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        if event["event_id"] in seen:
            verdict.duplicates += 1
            continue
        seen.add(event["event_id"])
        if event.get("command_id") not in known:
            verdict.unexpected_events += 1
            continue
        results[event["command_id"]].append(event)
    return results


def _classify(
    command_id: str, results: list[Mapping[str, Any]], verdict: Verdict
) -> tuple[str, bool]:
    """The command's final outcome, and whether it was replayed after a dead letter."""
    if not results:
        verdict.lost += 1
        verdict.problems.append(f"{command_id} lost")
        return "lost", False
    finals = [e for e in results if e["type"] != DEAD]
    # Dead letters may come first (then a replay); after a result, nothing else may.
    if len(finals) > 1 or (finals and results[-1]["type"] == DEAD):
        verdict.applied_twice += 1
        verdict.problems.append(f"{command_id}: {[e['type'] for e in results]}")
    last = results[-1]
    replayed = bool(finals) and results[0]["type"] == DEAD
    verdict.replayed += replayed
    if last["type"] == DEAD:
        verdict.dead_lettered += 1
        return "dead_lettered", replayed
    if last.get("error"):
        code = last["error"]["code"]
        verdict.rejected[code] += 1
        return f"rejected:{code}", replayed
    verdict.applied += 1
    return "applied", replayed


def _applied_event(results: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for event in results:
        if event["type"] != DEAD and not event.get("error"):
            return event
    return None


def _check_order(
    order: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, list[Mapping[str, Any]]],
    exempt: set[str],
    verdict: Verdict,
) -> None:
    """Per session, applied commands' versions rise in enqueue order."""
    last: dict[str, tuple[str, int]] = {}
    for command_id in order:
        event = _applied_event(results.get(command_id, []))
        if event is None or command_id in exempt or event.get("version") is None:
            continue
        session = event["session_id"]
        previous = last.get(session)
        if previous and event["version"] <= previous[1]:
            verdict.out_of_order += 1
            verdict.problems.append(
                f"session {session}: {command_id} (v{event['version']}) enqueued after"
                f" {previous[0]} (v{previous[1]})"
            )
        last[session] = (command_id, event["version"])


def _check_sessions(
    order: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, list[Mapping[str, Any]]],
    stored_versions: Mapping[str, int | None],
    verdict: Verdict,
) -> None:
    """Each stored session's version is the number of commands applied to it."""
    applied: Counter[str] = Counter()
    for command_id in order:
        event = _applied_event(results.get(command_id, []))
        if event is not None:
            applied[event["session_id"]] += 1
    for session, stored in stored_versions.items():
        verdict.sessions_checked += 1
        expected = applied[session] or None
        if stored != expected:
            verdict.lost_updates += 1
            verdict.problems.append(f"session {session}: stored v{stored}, applied {expected}")


# ─── Reading what happened ───


def read_events(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every event on the stream, parsed, in stream order."""
    return [json.loads(fields["event"]) for _, fields in client.xrange(stream)]


def wait_for_outcomes(
    client: Any, stream: str, command_ids: Iterable[str], *, timeout: float = 120.0
) -> list[dict[str, Any]]:
    """Poll the stream until every command has a result event (or `timeout` passes);
    returns all events either way, so the checker reports what is missing."""
    waiting = set(command_ids)
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(client, stream)
        if waiting <= {e.get("command_id") for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def stored_versions(store: Any, session_ids: Iterable[str]) -> dict[str, int | None]:
    """Each session's stored version (None when there is no item), read consistently."""
    versions: dict[str, int | None] = {}
    for session_id in session_ids:
        snapshot = store.load(session_id)
        versions[session_id] = snapshot.version if snapshot else None
    return versions
