"""The CLI's argument types: refused as usage errors before anything is asked of Redis."""

from __future__ import annotations

import argparse

import pytest

from tasks.cli.arguments import seconds, session_id, stream_id, whole_number


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "$",
        "0-0",
        "1700000000000-3",
        "1700000000000",
        "18446744073709551615-18446744073709551615",
    ],
)
def test_stream_ids_redis_takes(text):
    assert stream_id(text) == text


@pytest.mark.parametrize(
    "text", ["bogus", "", "1-", "-1", "1-2-3", " 1", "1-*", "18446744073709551616-0", "$$"]
)
def test_stream_ids_redis_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a stream entry id: <ms>-<seq>"):
        stream_id(text)


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("100", 100)])
def test_whole_numbers_in_range(text, value):
    assert whole_number(1, 100)(text) == value


@pytest.mark.parametrize("text", ["0", "101", "-1", "1.5", "x", "", "1e2"])
def test_whole_numbers_out_of_range_or_not_numbers(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number from 1 to 100"):
        whole_number(1, 100)(text)


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "abc"])
def test_seconds_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected seconds ≥ 0"):
        seconds(allow_zero=True)(text)


def test_zero_seconds_only_where_allowed():
    assert seconds(allow_zero=True)("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="expected seconds > 0"):
        seconds(allow_zero=False)("0")


@pytest.mark.parametrize("text", ["", "a b", "-x", "a" * 256, "é"])
def test_session_ids_outside_the_documented_set(text):
    with pytest.raises(argparse.ArgumentTypeError, match="1-255 characters"):
        session_id(text)
