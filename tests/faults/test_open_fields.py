"""Arbitrary JSON in the open fields, through the producer API and `checkout send` to a
real worker: every accepted command ends in exactly one outcome, in bounded time.

The open fields (a buyer's, an address's, a payment instrument's extra keys) take any
JSON. Values that look like other systems' type markers (kombu's `__type__` and
`__value__`, `__class__`), lone surrogates, control characters, numbers out to
±(2^53-1) and deep nesting must neither change what the worker reads nor leave a
command looping between the queue and the reaper (past that range, and NaN or
Infinity, every producer refuses the command: tests/unit/test_unsafe_numbers.py).
For each generated batch: every command a producer accepted has exactly one final
event, the session's next command (a sentinel sent after them) runs, nothing stays
in flight, and the dead-letter store holds at most one entry per command.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from schemas.session import MAX_SAFE_INTEGER
from tasks.embedded.stack import CHECKOUT
from tasks.producer import InvalidCommand
from tests.faults.checker import read_events
from tests.faults.conftest import wait_for
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys

MARKER_KEYS = st.sampled_from(["__type__", "__value__", "__class__", "__proto__", "$ref"])
keys = MARKER_KEYS | st.text(max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    # Within what the TypeScript side reads: past it, hardly any command would be accepted.
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.floats(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER, allow_nan=False),
    st.text(max_size=8),  # control characters and lone surrogates among them
    st.sampled_from(["\ud800", "\udfff", "\x00\x1b[2J", "datetime", "nope"]),
)
open_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)
# kombu's own marker shapes: a known type with a wrong value, an unknown type.
markers = st.fixed_dictionaries({"__type__": st.sampled_from(["nope", "datetime", "uuid"])}).map(
    lambda d: {**d, "__value__": 1}
)
extras = st.dictionaries(keys, open_values | markers, min_size=1, max_size=3)


def update(session_id: str, command_id: str, buyer_extra: dict) -> dict:
    buyer = {"email": "m@example.com", **buyer_extra}
    return {
        "type": "update_session",
        "command_id": command_id,
        "session_id": session_id,
        "updates": {"buyer": buyer},
    }


def send_with_cli(fault_env, tmp_path, commands: list[dict]) -> list[str]:
    """`checkout send FILE`; the ids of the lines it accepted."""
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    lines = [json.dumps(command) for command in commands]  # escapes what UTF-8 cannot carry
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [CHECKOUT, "send", str(path), "--json"], env=fault_env, capture_output=True, text=True
    )
    refused = {int(line.split(":")[1]) for line in result.stderr.splitlines() if str(path) in line}
    return [c["command_id"] for n, c in enumerate(commands, 1) if n not in refused]


def send_with_api(producer, commands: list[dict]) -> list[str]:
    accepted = []
    for command in commands:
        try:
            producer.enqueue(command)
        except InvalidCommand:
            continue
        accepted.append(command["command_id"])
    return accepted


def test_every_accepted_command_has_one_outcome_and_the_next_command_runs(
    workers, producer, redis_client, settings, fault_env, tmp_path
):
    workers.start(concurrency=2)
    prefix = settings.key_prefix

    @hsettings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(batch=st.lists(extras, min_size=1, max_size=4), through_cli=st.booleans())
    def one_batch(batch, through_cli):
        session_id = f"open-{uuid.uuid4().hex[:12]}"
        producer.enqueue(
            {"type": "create_session", "command_id": f"c-{session_id}", "session_id": session_id}
        )
        commands = [
            update(session_id, f"u{n}-{session_id}", extra) for n, extra in enumerate(batch)
        ]
        if through_cli:
            accepted = send_with_cli(fault_env, tmp_path, commands)
        else:
            accepted = send_with_api(producer, commands)
        sentinel = f"next-{session_id}"
        producer.enqueue(update(session_id, sentinel, {"note": "after"}))

        def finished() -> dict[str, list[str]] | None:
            outcomes: dict[str, list[str]] = {}
            for event in read_events(redis_client, settings.events_stream):
                outcomes.setdefault(event.get("command_id"), []).append(event["type"])
            ids = [*accepted, sentinel]
            return outcomes if all(i in outcomes for i in ids) else None

        outcomes = wait_for(finished, what=f"outcomes of {len(accepted)} commands", timeout=90)
        for command_id in accepted:
            assert len(outcomes[command_id]) == 1, (command_id, outcomes[command_id])
        assert outcomes[sentinel] == ["session.updated"]
        wait_for(
            lambda: in_flight_count(redis_client, RedisKeys(prefix)) == 0,
            what="nothing in flight",
        )
        dead = Counter(
            redis_client.hget(f"{prefix}:dlq:{entry}", "cid")
            for entry in redis_client.zrange(f"{prefix}:dlq", 0, -1)
        )
        assert all(count <= 1 for count in dead.values()), dead

    one_batch()
    assert all(w.process.poll() is None for w in workers.started), "a worker exited"
