"""Both ways of calling the delivery script on a real redis-server: a Functions library
(FCALL) by default, EVALSHA when told to, when the library is forgotten, or when an ACL
denies FUNCTION."""

from __future__ import annotations

import uuid

import fakeredis
import pytest
import redis

from tests.integration.test_journal import command, pending
from worker.delivery.journal import SCRIPT, Journal
from worker.delivery.scripting import PipelineScript
from worker.redis_client import make_redis_client


def calls(redis_client, name: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)


def enqueue_one(journal: Journal) -> str:
    ((jid,),) = journal.enqueue([[pending(command(f"s-{uuid.uuid4().hex[:6]}"))]], queue="q")
    return jid


@pytest.mark.parametrize(
    ("functions", "used", "unused"), [(True, "fcall", "evalsha"), (False, "evalsha", "fcall")]
)
def test_functions_are_called_with_fcall_unless_told_not_to(
    make_journal, redis_client, functions, used, unused
):
    journal = make_journal(redis_functions=functions)
    enqueue_one(journal)  # loads the library (or the script)
    before = calls(redis_client, used), calls(redis_client, unused)

    jid = enqueue_one(journal)
    assert journal.claim(jid, "w1").verdict == "go"

    assert (calls(redis_client, used), calls(redis_client, unused)) == (before[0] + 2, before[1])


def test_a_forgotten_library_is_loaded_again_and_the_call_runs_once(journal, redis_client):
    enqueue_one(journal)
    redis_client.function_flush()

    jid = enqueue_one(journal)

    assert journal.claim(jid, "w1").verdict == "go"
    assert journal.claim(jid, "w1").verdict == "go"  # the same worker again: still one entry
    assert redis_client.hget(journal.keys.journal(jid), "dlv") == "2"


def test_an_acl_without_function_falls_back_to_evalsha(settings, redis_client):
    user, password = f"nofn-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    redis_client.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all", "-function"]
    )
    try:
        url = settings.redis_url.replace("redis://", f"redis://{user}:{password}@", 1)
        client = make_redis_client(url)
        journal = Journal(client, settings)
        jid = enqueue_one(journal)
        assert journal.claim(jid, "w1").verdict == "go"
        assert not journal._script.uses_functions
        client.close()
    finally:
        redis_client.acl_deluser(user)


def test_a_redis_without_functions_is_sent_the_same_file_as_a_script() -> None:
    # fakeredis (without lupa) has neither FUNCTION nor EVALSHA: what it is asked shows
    # which way the call went.
    script = PipelineScript(fakeredis.FakeRedis(decode_responses=True), SCRIPT)

    with pytest.raises(redis.ResponseError, match="unknown command 'evalsha'"):
        script.call("claim", "p")

    assert not script.uses_functions


def test_a_file_without_the_one_entry_point_is_refused() -> None:
    with pytest.raises(ValueError, match="must end with"):
        PipelineScript(fakeredis.FakeRedis(), "return 1")
