"""The store's own attribute conversion agrees with boto3's, value for value.

`to_attribute`/`from_attribute` skip boto3's TypeSerializer for the shapes a session
holds (for CPU); whatever they convert must come out exactly as boto3 would, and
what boto3 refuses (more than 38 significant digits) they must refuse the same way.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.dynamodb.items import _decimals, _plain, from_attribute, to_attribute

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()

LEAVES = st.one_of(
    st.text(),
    st.booleans(),
    st.none(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def boto3_attribute(value: Any) -> Any:
    return _serializer.serialize(_decimals(value))


@settings(max_examples=150)
@given(VALUES)
def test_to_attribute_writes_what_boto3_writes(value: Any) -> None:
    try:
        expected = boto3_attribute(value)
    except Exception as refused:  # whatever boto3 raises, we must too
        try:
            to_attribute(value)
        except Exception as ours:
            assert type(ours) is type(refused)
            return
        raise AssertionError(f"boto3 refuses {value!r}; to_attribute did not") from refused
    assert to_attribute(value) == expected


@settings(max_examples=150)
@given(VALUES)
def test_from_attribute_reads_what_boto3_reads(value: Any) -> None:
    try:
        stored = boto3_attribute(value)
    except Exception:  # not storable at all
        return
    assert from_attribute(stored) == _plain(_deserializer.deserialize(stored))


def test_numbers_in_other_spellings_read_as_the_document_client_reads_them() -> None:
    spellings = {"-0": 0, "1.0": 1, "1E+3": 1000, "0.5": 0.5, "-12": -12}
    assert {text: from_attribute({"N": text}) for text in spellings} == spellings
