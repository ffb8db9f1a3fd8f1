"""Bad input, property-based: malformed commands and raw messages at the producer API,
`checkout send` and a real worker.

Every malformed command is built from a valid one by one mutation whose culprit is
known (a missing or wrongly typed field, an unknown key, a huge amount, a null in
`updates`), so the tests can ask that the error names it. Random JSON values and
random text are thrown in too. The promise: a clear producer error naming the field
(the CLI names FILE:LINE), or, for what is pushed around the producer, a
`command.rejected` event or a dead-letter entry; the worker keeps running and no
session changes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from celery import Celery
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from schemas.commands import SessionUpdates
from schemas.ids import escaped
from schemas.session import MAX_SAFE_INTEGER
from tasks.embedded.stack import CHECKOUT
from tests.faults.checker import read_events
from tests.faults.conftest import wait_for
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")
STATUSES = {"incomplete", "requires_escalation", "ready_for_complete", "complete_in_progress"}
STATUSES |= {"completed", "canceled"}
UPDATE_FIELDS = sorted(SessionUpdates.model_fields)
# Key names a producer may mistype: printable (control characters: a test of their own).
key_names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=10)
FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# ─── Strategies ───

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values no field of a command accepts as a string (pydantic does not make "5" of 5).
not_strings = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
)
bad_session_ids = not_strings | st.text(max_size=300).filter(lambda s: not SESSION_ID.match(s))
bad_integers = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.text(alphabet="abcxyz -", min_size=1, max_size=5),
    st.lists(st.integers(), max_size=2),
)
BAD_VALUES = {
    "command_id": not_strings
    | st.just("")
    | st.text(min_size=256, max_size=300)
    | st.none()
    | st.sampled_from(["c-1\n[INFO] session.completed", "c\x1b[2J", "c 1", "é"]),
    "session_id": bad_session_ids,
    "type": not_strings
    | st.none()
    | st.text(max_size=20).filter(lambda s: not s.endswith("_session")),
    "target": not_strings | st.none() | st.text(max_size=20).filter(lambda s: s not in STATUSES),
    "currency": not_strings
    | st.text(max_size=5).filter(lambda s: not re.fullmatch(r"[A-Z]{3}", s)),
    "expected_version": bad_integers,
    "updates": not_strings.filter(lambda v: not isinstance(v, dict))
    | st.none()
    | st.text(max_size=5),
}


def valid_commands(session_ids: list[str]) -> st.SearchStrategy[dict]:
    """Valid commands of every type, on `session_ids`."""
    session = st.sampled_from(session_ids)
    item = st.fixed_dictionaries(
        {"type": st.just("product"), "total_amount": st.integers(0, 10**6)},
        optional={"id": st.text(max_size=5), "title": st.text(max_size=10)},
    )
    updates = st.fixed_dictionaries(
        {},
        optional={
            "line_items": st.lists(item, max_size=3),
            "buyer": st.fixed_dictionaries({}, optional={"email": st.text(max_size=10)}),
            "currency": st.sampled_from(["USD", "EUR"]),
        },
    )
    base = {"command_id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/+=~-]{0,19}", fullmatch=True)}
    return st.one_of(
        st.fixed_dictionaries(
            {**base, "type": st.just("create_session")},
            optional={"session_id": session, "currency": st.just("EUR")},
        ),
        st.fixed_dictionaries(
            {**base, "type": st.just("update_session"), "session_id": session, "updates": updates},
            optional={"expected_version": st.integers(1, 5)},
        ),
        st.fixed_dictionaries(
            {**base, "type": st.just("transition_session"), "session_id": session},
            optional={"target": st.sampled_from(sorted(STATUSES))},
        ).map(lambda c: {"target": "requires_escalation", **c}),
        st.fixed_dictionaries(
            {**base, "type": st.sampled_from(["complete_session", "cancel_session"])},
            optional={},
        ).flatmap(lambda c: session.map(lambda s: {**c, "session_id": s})),
    )


REQUIRED = {
    "create_session": ("command_id", "type"),
    "update_session": ("command_id", "type", "session_id", "updates"),
    "transition_session": ("command_id", "type", "session_id", "target"),
    "complete_session": ("command_id", "type", "session_id"),
    "cancel_session": ("command_id", "type", "session_id"),
}


@st.composite
def malformed(draw, session_ids: list[str]) -> tuple[dict, str]:
    """(a malformed command, the text its error must contain)."""
    command = dict(draw(valid_commands(session_ids)))
    kind = draw(st.sampled_from(["missing", "wrong", "extra", "null", "extra_update", "huge"]))
    if kind in ("null", "extra_update", "huge") and command["type"] != "update_session":
        kind = "wrong"
    if kind == "missing":
        name = draw(st.sampled_from(REQUIRED[command["type"]]))
        del command[name]
        return command, name
    if kind == "wrong":
        fields = [n for n in command if n in BAD_VALUES]
        name = draw(st.sampled_from(fields))
        command[name] = draw(BAD_VALUES[name])
        return command, name
    if kind == "extra":
        name = draw(key_names.filter(lambda n: n not in command and n not in BAD_VALUES))
        command[name] = draw(json_scalars)
        return command, name
    updates = dict(command["updates"])
    command["updates"] = updates
    if kind == "null":
        name = draw(st.sampled_from(UPDATE_FIELDS))
        updates[name] = None
        return command, f"updates.{name}"
    if kind == "extra_update":
        name = draw(key_names.filter(lambda n: n not in UPDATE_FIELDS))
        updates[name] = draw(json_values)
        return command, f"updates.{name}"
    amount = draw(
        st.integers(min_value=MAX_SAFE_INTEGER + 1, max_value=10**60)
        | st.integers(max_value=-MAX_SAFE_INTEGER - 1, min_value=-(10**60))
    )
    updates["line_items"] = [{"type": "product", "total_amount": amount}]
    return command, "updates.line_items.0.total_amount"


SESSIONS = ["s-1", "s-2", "s-3"]
random_text = st.text(max_size=40).filter(lambda t: t.strip())


def _pending_count(redis_client, settings) -> tuple[int, int]:
    """(messages on the queue, journal entries): both unchanged by a refused command."""
    keys = RedisKeys(settings.key_prefix)
    return redis_client.llen(settings.commands_queue), in_flight_count(redis_client, keys)


# ─── (a) the producer API ───


@hsettings(max_examples=1000, deadline=None, suppress_health_check=FIXTURES_OK)
@given(case=malformed(SESSIONS), as_text=st.booleans())
def test_producer_refuses_malformed_commands_naming_the_field(
    case, as_text, producer, redis_client, settings
):
    from tasks.producer import InvalidCommand

    command, culprit = case
    before = _pending_count(redis_client, settings)
    with pytest.raises(InvalidCommand) as refused:
        producer.enqueue(json.dumps(command) if as_text else command)
    assert shown(culprit) in str(refused.value)
    assert _pending_count(redis_client, settings) == before


@hsettings(max_examples=600, deadline=None, suppress_health_check=FIXTURES_OK)
@given(value=json_values | random_text)
def test_producer_refuses_random_json_and_text(value, producer, redis_client, settings):
    from tasks.producer import InvalidCommand

    before = _pending_count(redis_client, settings)
    with pytest.raises(InvalidCommand) as refused:
        producer.enqueue(value if isinstance(value, str) else json.dumps(value))
    if isinstance(value, dict) and "type" not in value:
        assert "type" in str(refused.value)
    assert _pending_count(redis_client, settings) == before


@hsettings(max_examples=200, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    good=st.lists(valid_commands(SESSIONS), min_size=1, max_size=5),
    case=malformed(SESSIONS),
    data=st.data(),
)
def test_enqueue_many_refuses_the_whole_batch_naming_the_position(
    good, case, data, producer, redis_client, settings
):
    from tasks.producer import InvalidCommand

    position = data.draw(st.integers(0, len(good)))
    batch = [*good[:position], case[0], *good[position:]]
    before = _pending_count(redis_client, settings)
    with pytest.raises(InvalidCommand) as refused:
        producer.enqueue_many(batch)
    assert str(refused.value).startswith(f"command {position}: ")
    assert shown(case[1]) in str(refused.value)
    assert _pending_count(redis_client, settings) == before


def shown(field: str) -> str:
    """A field as error reports name it: unprintable characters escaped, so a key
    cannot break a report's line or reach a terminal as an escape sequence."""
    return escaped(field)


# ─── (b) checkout send ───

bad_lines = st.one_of(
    malformed(SESSIONS).map(lambda case: (json.dumps(case[0]), case[1])),
    random_text.filter(lambda t: "\n" not in t and "\r" not in t).map(lambda t: (t, "command")),
)


@hsettings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[*FIXTURES_OK, HealthCheck.data_too_large],
)
@given(bad=st.lists(bad_lines, min_size=80, max_size=120), data=st.data())
def test_checkout_send_names_each_bad_line_and_enqueues_the_rest(
    bad, data, fault_env, redis_client, settings, tmp_path: Path
):
    lines: list[tuple[str, str | None]] = [(line, culprit) for line, culprit in bad]
    for n in range(150):  # valid lines at random places among the bad ones
        valid = {"type": "create_session", "command_id": f"cli-ok-{n}"}
        lines.insert(data.draw(st.integers(0, len(lines))), (json.dumps(valid), None))
    path = tmp_path / "commands.jsonl"
    path.write_text("".join(f"{line}\n" for line, _ in lines), encoding="utf-8")
    queued, _ = _pending_count(redis_client, settings)

    result = subprocess.run(
        [CHECKOUT, "send", str(path)], env=fault_env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    errors = [line for line in result.stderr.split("\n") if line.startswith(f"{path}:")]
    assert len(errors) == len(bad), result.stderr[-2000:]
    for number, (_, culprit) in enumerate(lines, start=1):
        if culprit is None:
            continue
        [error] = [e for e in errors if e.startswith(f"{path}:{number}: ")]
        assert shown(culprit) in error or culprit == "command", error
    assert f"enqueued 150 commands, {len(bad)} invalid lines" in result.stderr
    assert redis_client.llen(settings.commands_queue) == queued + 150


def test_checkout_send_reports_a_bad_line_on_one_line_whatever_its_keys(fault_env, tmp_path: Path):
    """A key with a newline or a terminal escape must not split the report or reach the
    terminal raw: one `FILE:LINE: reason` line per bad line is the CLI's contract."""
    path = tmp_path / "commands.jsonl"
    bad = {"type": "create_session", "command_id": "c-1", f"oops\n{path}:9: forged\x1b[2J": 1}
    path.write_text(json.dumps(bad) + "\n", encoding="utf-8")

    result = subprocess.run(
        [CHECKOUT, "send", str(path)], env=fault_env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    reports = [line for line in result.stderr.split("\n") if line.startswith(str(path))]
    assert len(reports) == 1 and reports[0].startswith(f"{path}:1: "), result.stderr
    assert "oops" in reports[0]
    assert "\x1b" not in result.stderr


# ─── (c) a real worker, pushed around the producer ───

raw_items = st.binary(min_size=1, max_size=60) | json_values.map(lambda v: json.dumps(v).encode())


@pytest.fixture
def around_producer(workers, producer, redis_client, settings, store):
    """A running worker, three sessions it created, and a Celery app to send raw tasks."""
    workers.start(concurrency=2)
    producer.enqueue_many(
        [{"type": "create_session", "command_id": f"{s}-c", "session_id": s} for s in SESSIONS]
    )
    wait_for(lambda: redis_client.xlen(settings.events_stream) >= 3, what="3 sessions created")
    sender = Celery(broker=settings.redis_url)
    yield sender
    sender.close()


def _documents(store) -> dict[str, tuple[int, dict]]:
    """Each session's version and stored content."""
    snapshots = {s: store.load(s) for s in SESSIONS}
    return {
        s: (snap.version, snap.session.model_dump(mode="json")) for s, snap in snapshots.items()
    }


bad_messages = st.lists(
    st.one_of(
        malformed(SESSIONS).map(lambda case: ("task", case[0])),
        json_values.map(lambda v: ("task", v)),
        raw_items.map(lambda raw: ("raw", raw)),
    ),
    min_size=10,
    max_size=30,
)


def test_worker_rejects_or_dead_letters_what_bypasses_the_producer(
    around_producer, workers, producer, redis_client, settings, store
):
    sessions = _documents(store)
    start = redis_client.xlen(settings.events_stream)

    @hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(messages=bad_messages)
    def each_ends_rejected_or_dead_lettered(messages):
        before = redis_client.xlen(settings.events_stream)
        _push_around_producer(around_producer, redis_client, settings, messages)
        wanted = before + len(messages)
        wait_for(
            lambda: redis_client.xlen(settings.events_stream) >= wanted,
            what=f"{len(messages)} results of bad messages",
            timeout=60,
        )
        new = read_events(redis_client, settings.events_stream)[before:]
        assert len(new) == len(messages)
        assert {e["type"] for e in new} <= {"command.rejected", "command.dead_lettered"}, new
        assert _documents(store) == sessions
        assert all(w.process.poll() is None for w in workers.started), "a worker exited"

    each_ends_rejected_or_dead_lettered()
    results = read_events(redis_client, settings.events_stream)[start:]
    print(f"\nbad messages around the producer: {Counter(e['type'] for e in results)}")
    producer.enqueue(
        {
            "type": "update_session",
            "command_id": "fine",
            "session_id": "s-1",
            "updates": {"currency": "EUR"},
        }
    )
    wait_for(
        lambda: any(
            e["command_id"] == "fine" and e["type"] == "session.updated"
            for e in read_events(redis_client, settings.events_stream)
        ),
        what="a normal command applied after the bad ones",
    )


def _push_around_producer(sender, redis_client, settings, messages) -> None:
    """Raw items LPUSHed onto the queue, payloads sent as plain Celery tasks."""
    with sender.producer_or_acquire() as publisher:
        for kind, payload in messages:
            if kind == "raw":
                redis_client.lpush(settings.commands_queue, payload)
                continue
            sender.send_task(
                "checkout.apply_command",
                args=[payload],
                queue=settings.commands_queue,
                producer=publisher,
            )


def test_a_command_past_the_size_limit_sent_around_the_producer_is_rejected_once(
    around_producer, workers, redis_client, settings, store
):
    sessions = _documents(store)
    start = redis_client.xlen(settings.events_stream)
    big = {
        "type": "update_session",
        "command_id": "too-long",
        "session_id": SESSIONS[0],
        "updates": {"buyer": {"email": "m@example.com", "note": "x" * (256 * 1024)}},
    }
    _push_around_producer(around_producer, redis_client, settings, [("task", big)])

    wait_for(
        lambda: redis_client.xlen(settings.events_stream) > start, what="the big command's result"
    )
    (event,) = read_events(redis_client, settings.events_stream)[start:]
    assert (event["type"], event["command_id"]) == ("command.rejected", "too-long")
    assert event["error"]["code"] == "validation_error"
    assert "more than CHECKOUT_MAX_COMMAND_BYTES" in event["error"]["message"]
    keys = RedisKeys(settings.key_prefix)
    wait_for(lambda: in_flight_count(redis_client, keys) == 0, what="nothing in flight")
    assert redis_client.xlen(settings.events_stream) == start + 1  # once: no retry
    assert _documents(store) == sessions


def test_numbers_the_typescript_side_cannot_read_sent_around_the_producer_are_rejected_once(
    around_producer, workers, redis_client, settings, store
):
    sessions = _documents(store)
    start = redis_client.xlen(settings.events_stream)
    serial = {"email": "m@example.com", "x_meta": {"serial": 12345678901234567890}}
    weighed = [{"type": "product", "total_amount": 1, "weight": float("nan")}]
    commands = [
        {"type": "update_session", "command_id": "n-1", "session_id": SESSIONS[0]}
        | {"updates": {"buyer": serial}},
        {"type": "update_session", "command_id": "n-2", "session_id": SESSIONS[1]}
        | {"updates": {"line_items": weighed}},
    ]
    # A plain Celery task: kombu's JSON writes NaN as `NaN`, as other clients' encoders do.
    _push_around_producer(around_producer, redis_client, settings, [("task", c) for c in commands])

    wait_for(lambda: redis_client.xlen(settings.events_stream) >= start + 2, what="both results")
    keys = RedisKeys(settings.key_prefix)
    wait_for(lambda: in_flight_count(redis_client, keys) == 0, what="nothing in flight")
    events = {e["command_id"]: e for e in read_events(redis_client, settings.events_stream)[start:]}
    assert len(events) == redis_client.xlen(settings.events_stream) - start == 2  # no retry
    assert {(e["type"], e["error"]["code"]) for e in events.values()} == {
        ("command.rejected", "validation_error")
    }
    assert events["n-1"]["error"]["message"].startswith(
        "updates.buyer.x_meta.serial: 12345678901234567890 is outside the safe integer range"
    )
    assert events["n-2"]["error"]["message"] == (
        "updates.line_items.0.weight: NaN is not a number JSON or DynamoDB can hold"
    )
    assert _documents(store) == sessions
