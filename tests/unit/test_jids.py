"""Jids and dead-letter ids carry their shard's tag with several shards, and none with one
(`worker.delivery.jids`); what splits them (task ids, delivery tags) still reads them."""

from __future__ import annotations

import pytest

from tests.support.fakes import InMemorySessionStore
from tests.unit.test_processing import FakeJournal, processor, update
from worker.delivery.jids import (
    adopted_jid,
    shard_named,
    shard_tag,
    tagged,
    task_id_of,
    untagged,
)
from worker.runtime.transport import covered_by_journal
from worker.settings import Settings


def test_one_redis_has_no_tag_and_each_of_several_shards_its_own() -> None:
    assert shard_tag(0, 1) == ""
    assert [shard_tag(k, 3) for k in range(3)] == ["s0", "s1", "s2"]
    with pytest.raises(ValueError, match="shard 3 is not one of 3"):
        shard_tag(3, 3)


def test_a_tagged_id_names_its_shard_and_an_untagged_one_none() -> None:
    assert tagged("", "1733270000000-42") == "1733270000000-42"
    assert tagged("s2", "1733270000000-42") == "s2:1733270000000-42"
    assert shard_named("s2:1733270000000-42") == 2
    assert shard_named("s12:raw-0123abcd") == 12
    assert untagged("s12:raw-0123abcd") == "raw-0123abcd"
    for plain in ("1733270000000-42", "raw-0123abcd", "Tb6d0c6a4-uuid", "s-1", "sx:1-2", ""):
        assert shard_named(plain) is None
        assert untagged(plain) == plain


def test_the_task_id_is_the_tagged_jid_or_the_adopted_task_s_own_id() -> None:
    assert task_id_of("1733-7") == "1733-7"
    assert task_id_of("s1:1733-7") == "s1:1733-7"  # unique across shards, as the jid
    assert task_id_of("Tb6d0c6a4-uuid") == "b6d0c6a4-uuid"
    assert task_id_of("s1:Tb6d0c6a4-uuid") == "b6d0c6a4-uuid"
    assert adopted_jid("", "b6d0c6a4-uuid") == "Tb6d0c6a4-uuid"
    assert adopted_jid("s1", "b6d0c6a4-uuid") == "s1:Tb6d0c6a4-uuid"


class _Message:
    content_type = "application/vnd.checkout.command+json"

    def __init__(self, jid: str) -> None:
        self.headers = {"checkout_journaled": True}
        self.body = f'[[{{}}],{{"jid":"{jid}"}},{{}}]'


@pytest.mark.parametrize("jid", ["1733-7", "s1:1733-7"])
def test_a_delivery_tag_is_still_read_back_to_its_jid(jid) -> None:
    assert covered_by_journal(_Message(jid), f"{jid}.12")
    assert covered_by_journal(_Message(jid), f"{jid}.12f")
    assert not covered_by_journal(_Message("s0:1733-7"), "s1:1733-7.12")  # another shard's


def test_settings_for_a_shard_of_several_carry_its_tag_and_of_one_none() -> None:
    several = Settings(redis_urls="redis://a:6379/0,redis://b:6379/0")
    assert [several.for_shard(k).shard_tag for k in range(2)] == ["s0", "s1"]
    assert several.for_shard(1).redis_url == "redis://b:6379/0"
    one = Settings(redis_urls="redis://a:6379/0")
    assert one.for_shard(0).shard_tag == ""
    assert Settings(redis_url="redis://a:6379/0").for_shard(0).shard_tag == ""
    with pytest.raises(ValueError, match="expected s<K>"):
        Settings(shard_tag="shard-1")


@pytest.mark.parametrize(("tag", "expected"), [("", "Tt-9"), ("s1", "s1:Tt-9")])
def test_a_plain_send_task_is_adopted_under_its_shard_s_tag(tag, expected) -> None:
    journal = FakeJournal(shard_tag=tag)
    store = InMemorySessionStore()
    processor(store, journal).process(update(), jid=None, task_id="t-9", queue="q")
    assert journal.claimed == [expected]
