"""Celery's task events from a real worker tell each command's outcome (what Flower
shows): applied and rejected commands succeed with a result naming the outcome, a
dead-lettered one fails, a retried or parked one is RETRY first and stays one task.
Without `--events`, a remote `enable_events` (Flower's) holds only for its lease."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, states
from celery.events.state import State

from tests.e2e.builders import create, update
from tests.faults.fault_proxy import FaultProxy

DEADLINE = 90.0


class EventLog:
    """Every Celery event on the broker, captured by a receiver thread (`celery events`)."""

    def __init__(self, redis_url: str) -> None:
        self.app = Celery(broker=redis_url)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        with self.app.connection_for_read() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self._keep})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def _keep(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def start(self, redis_client: Any) -> None:
        """Start capturing; returns once the receiver is subscribed (events are not kept)."""
        before = redis_client.execute_command("PUBSUB", "NUMPAT")
        self._thread.start()
        poll(lambda: redis_client.execute_command("PUBSUB", "NUMPAT") > before, "subscribed")

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def caught_up(self) -> None:
        """Returns once every event published before this call has been captured: a
        mark sent now arrives after them (Redis delivers a channel's messages in order)."""
        mark = uuid.uuid4().hex
        with (
            self.app.connection_for_write() as connection,
            self.app.events.Dispatcher(connection) as dispatcher,
        ):
            dispatcher.send("test-mark", mark=mark)
        poll(lambda: any(e.get("mark") == mark for e in self._all()), "the mark captured")

    def _all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def of(self, hostname: str) -> list[dict[str, Any]]:
        """The events of one worker: node `hostname`, and with the solo pool its other
        processes' nodes (`checkout-<pid>.<slot>@host`)."""
        name, _, host = hostname.partition("@")
        with self._lock:
            return [e for e in self.events if _of_worker(e.get("hostname", ""), name, host)]


def _of_worker(node: str, name: str, host: str) -> bool:
    node_name, _, node_host = node.partition("@")
    return node_host == host and (node_name == name or node_name.startswith(f"{name}."))


def poll(condition: Callable[[], Any], what: str, *, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)
    return found


@pytest.fixture
def event_log(env, redis_client) -> Iterator[EventLog]:
    log = EventLog(env["CHECKOUT_REDIS_URL"])
    log.start(redis_client)
    yield log
    log.stop()


@pytest.fixture
def proxy(env) -> Iterator[FaultProxy]:
    """DynamoDB behind a fault proxy; workers started after this talk to it."""
    with FaultProxy(env["CHECKOUT_DYNAMODB_ENDPOINT_URL"]) as running:
        env["CHECKOUT_DYNAMODB_ENDPOINT_URL"] = running.url
        yield running


def node_of(worker: Any) -> str:
    import socket

    return f"checkout-{worker.pid}@{socket.gethostname()}"


def tasks_by_command(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """command id -> the task ids its `task-received` events named (argsrepr)."""
    found: dict[str, list[str]] = {}
    for event in events:
        if event["type"] == "task-received":
            command_id = event["args"].removeprefix("(command ").removesuffix(")")
            found.setdefault(command_id, [])
            if event["uuid"] not in found[command_id]:
                found[command_id].append(event["uuid"])
    return found


def test_task_states_name_each_outcome_and_a_command_is_one_task(
    env, tables, proxy, start_workers, send, events, event_log, redis_client, settings
):
    env.update(
        CHECKOUT_TASK_EVENTS="true",
        CHECKOUT_MAX_RETRIES="1",
        CHECKOUT_RETRY_BACKOFF_MAX="0.5",
        CHECKOUT_REAP_INTERVAL="0.2",
    )
    (worker,) = start_workers(1, concurrency=2)
    run = uuid.uuid4().hex[:6]
    ok, dead = f"s-ok-{run}", f"s-dead-{run}"

    send(
        [
            create("te-applied", ok),
            {"type": "complete_session", "command_id": "te-rejected", "session_id": ok},
        ]
    )
    events(2)
    proxy.garbage_for(dead)  # every DynamoDB call about this session fails: dead letters
    send([create("te-dead", dead), update("te-parked", dead, currency="EUR")])
    redis_client.lpush(settings.commands_queue, "not a message {")  # dead-lettered untasked
    poll(
        lambda: len([e for e in events(5) if e["type"] == "command.dead_lettered"]) == 3,
        "3 dead letters",
    )

    ids = ("te-applied", "te-rejected", "te-dead", "te-parked")
    final = (states.SUCCESS, states.FAILURE)
    host = node_of(worker)

    def settled() -> State | None:
        state = State()
        for event in event_log.of(host):
            state.event(event)
        by_command = tasks_by_command(event_log.of(host))
        if set(by_command) >= set(ids) and all(
            state.tasks[by_command[c][0]].state in final for c in ids
        ):
            return state
        return None

    state = poll(settled, "a final state for each command's task")
    by_command = tasks_by_command(event_log.of(host))
    assert all(len(by_command[c]) == 1 for c in ids), by_command  # one task per command
    task = {c: state.tasks[by_command[c][0]] for c in ids}

    assert (task["te-applied"].state, task["te-applied"].result) == (states.SUCCESS, "'applied'")
    assert (task["te-rejected"].state, task["te-rejected"].result) == (
        states.SUCCESS,
        "'rejected:invalid_transition'",
    )
    assert task["te-dead"].state == states.FAILURE
    assert task["te-dead"].exception.startswith("DeadLettered(")
    assert "handler_failed: DynamoDB answered" in task["te-dead"].exception
    assert task["te-parked"].state == states.FAILURE  # woken, then dead-lettered as well
    retried = {
        command: [
            e["exception"]
            for e in event_log.of(host)
            if e["type"] == "task-retried" and e["uuid"] == task[command].uuid
        ]
        for command in ("te-dead", "te-parked")
    }
    assert retried["te-dead"] and all("Retrying(" in r for r in retried["te-dead"])
    assert any("Parked(" in r for r in retried["te-parked"])
    # Flower's failed count (tasks in FAILURE) is the number of dead letters, the
    # message that never became a task included.
    poll(lambda: len(failed_tasks(event_log.of(host))) == 3, "3 failed tasks")
    (raw,) = [t for t in failed_tasks(event_log.of(host)) if t.uuid.startswith("raw-")]
    assert raw.exception.startswith("DeadLettered('undeliverable: not a kombu message")


def failed_tasks(events: list[dict[str, Any]]) -> list[Any]:
    state = State()
    for event in events:
        state.event(event)
    return [task for task in state.tasks.values() if task.state == states.FAILURE]


def test_remote_enable_events_hold_only_for_their_lease(
    env, tables, start_workers, send, events, event_log, redis_client
):
    env["CHECKOUT_TASK_EVENTS_LEASE"] = "2"
    (worker,) = start_workers(1, concurrency=1)
    host = node_of(worker)
    sent = 0

    def task_events_for_next_command() -> bool:
        """Send one command, wait for its result; whether the worker sent task events."""
        nonlocal sent
        sent += 1
        command_id = f"lease-{sent}"
        send([create(command_id, f"s-lease-{sent}")])
        events(sent)
        event_log.caught_up()  # its task-received was published before it ran
        return any(e.get("args") == f"(command {command_id})" for e in event_log.of(host))

    assert not task_events_for_next_command()  # off by default

    def enable() -> Any:
        return event_log.app.control.enable_events(destination=[host], reply=True, timeout=5)

    replies = enable()
    assert replies and "enabled for 2s" in str(replies)

    def renewed_and_seen() -> bool:
        enable()  # renewed before each command, as Flower does every 5 s: a loaded
        return task_events_for_next_command()  # machine may take the lease to run one

    poll(renewed_and_seen, "task events while the lease holds", timeout=30)

    # No renewal: they stop once the lease has run out, without a restart.
    poll(lambda: not task_events_for_next_command(), "task events off after the lease", timeout=60)
    assert worker.process.poll() is None
