"""The shard function (`worker.delivery.shards`), pinned on the table
`clients/typescript/test/shards.test.ts` pins the TypeScript producer on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.delivery.shards import shard_for, shard_of
from worker.service.apply import session_id_for

PINNED = [
    ("s-1", [0, 0, 2, 2, 3]),
    ("order-42", [0, 1, 1, 3, 5]),
    ("cs_9f8e7d", [0, 0, 2, 2, 3]),
    ("é-ünïcode", [0, 1, 1, 1, 1]),
    ("", [0, 0, 1, 0, 1]),
]


@pytest.mark.parametrize(("session_id", "expected"), PINNED)
def test_each_session_lands_on_its_pinned_shard(session_id, expected):
    assert [shard_of(session_id, shards) for shards in (1, 2, 3, 4, 7)] == expected


def test_a_create_without_a_session_id_goes_where_its_session_will_be():
    assert session_id_for("order-42-create") == "dc8d5684-67da-51d4-a773-0892ebd39e19"
    assert shard_for(None, "order-42-create", 3) == shard_of(session_id_for("order-42-create"), 3)
    assert shard_for(None, "order-42-create", 3) == 2


@given(st.text(max_size=64), st.integers(min_value=1, max_value=64))
def test_a_shard_is_always_in_range_and_one_shard_is_shard_zero(session_id, shards):
    assert 0 <= shard_of(session_id, shards) < shards
    assert shard_for(session_id, "c", 1) == 0


def test_sessions_spread_evenly_over_three_shards():
    counts = [0, 0, 0]
    for n in range(3000):
        counts[shard_of(f"session-{n}", 3)] += 1
    assert all(750 <= count <= 1250 for count in counts), counts  # within ±25% of 1000
