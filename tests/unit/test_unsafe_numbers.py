"""Numbers the TypeScript side cannot read back are refused, wherever a command holds them.

Integers past ±(2^53-1) come back from the document client as BigInt (or not at all),
NaN and ±Infinity are no JSON or DynamoDB numbers: commands, bulk-update patches and
the producer API refuse them naming the place, in the open attributes too.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.commands import SessionUpdates, describe_validation_error, parse_command
from schemas.numbers import number_problem, unsafe_numbers
from schemas.session import MAX_SAFE_INTEGER, Buyer
from tasks.bulk_select import SelectionError, parse_set, validate_updates
from tasks.producer import CommandProducer, InvalidCommand, prepare

pytestmark = pytest.mark.unit

RANGE = "is outside the safe integer range ±(2^53-1) that the TypeScript side can read"
NOT_A_NUMBER = "is not a number JSON or DynamoDB can hold"

# (the updates with `X` where the number goes, the path errors name)
PLACES = {
    "buyer open field": ({"buyer": {"x_meta": {"serial": "X"}}}, "updates.buyer.x_meta.serial"),
    "nested array": ({"buyer": {"history": [[1, "X"]]}}, "updates.buyer.history.0.1"),
    "line item extra attribute": (
        {"line_items": [{"type": "product", "total_amount": 100, "weight": "X"}]},
        "updates.line_items.0.weight",
    ),
    "shipping_address": (
        {"shipping_address": {"geo": {"lat": "X"}}},
        "updates.shipping_address.geo.lat",
    ),
    "payment instrument": (
        {"payment_instruments": [{"id": "pi", "n": "X"}]},
        "updates.payment_instruments.0.n",
    ),
}
REFUSED = {
    "2^53": (2**53, f"9007199254740992 {RANGE}"),
    "-2^53": (-(2**53), f"-9007199254740992 {RANGE}"),
    "2^64": (2**64, f"18446744073709551616 {RANGE}"),
    "12345678901234567890": (12345678901234567890, f"12345678901234567890 {RANGE}"),
    "float 2^53": (2.0**53, f"9007199254740992.0 {RANGE}"),  # the client throws on it
    "1e300": (1e300, f"1e+300 {RANGE}"),
    "NaN": (math.nan, f"NaN {NOT_A_NUMBER}"),
    "inf": (math.inf, f"Infinity {NOT_A_NUMBER}"),
    "-inf": (-math.inf, f"-Infinity {NOT_A_NUMBER}"),
    "1e-300": (1e-300, "1e-300 is closer to 0 than DynamoDB's smallest number (1E-130)"),
}
ACCEPTED = [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.5, -0.25, 0, 0.1, 2.0**52, 1e-130, 0.0]


def placed(updates: Any, number: Any) -> Any:
    """`updates` with its "X" replaced by `number`."""
    if updates == "X":
        return number
    if isinstance(updates, dict):
        return {key: placed(value, number) for key, value in updates.items()}
    if isinstance(updates, list):
        return [placed(value, number) for value in updates]
    return updates


def update_with(updates: dict[str, Any], **fields: Any) -> dict[str, Any]:
    command = {"type": "update_session", "command_id": "c-1", "session_id": "s-1"}
    return command | {"updates": updates} | fields


def rejection(data: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        parse_command(data)
    return describe_validation_error(raised.value)


@pytest.mark.parametrize("form", ["dict", "json"])
@pytest.mark.parametrize(("number", "problem"), REFUSED.values(), ids=REFUSED)
@pytest.mark.parametrize(("updates", "path"), PLACES.values(), ids=PLACES)
def test_an_unsafe_number_is_refused_naming_its_path(updates, path, number, problem, form):
    command = update_with(placed(updates, number))
    # json.dumps writes NaN and Infinity as JavaScript does: what a foreign producer sends.
    given_ = command if form == "dict" else json.dumps(command)
    assert rejection(given_) == f"{path}: {problem}"


@pytest.mark.parametrize("number", ACCEPTED)
@pytest.mark.parametrize(("updates", "path"), PLACES.values(), ids=PLACES)
def test_a_number_the_typescript_side_can_read_is_accepted(updates, path, number):
    command = parse_command(update_with(placed(updates, number)))
    assert json.loads(command.model_dump_json(exclude_unset=True))["updates"] == placed(
        updates, number
    )


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e309", "Infinity")],
)
def test_json_text_spellings_of_non_numbers_are_refused(literal, shown):
    # pydantic's JSON parser accepts these and makes 1e309 an infinity; so does json.loads.
    text = '{"type":"update_session","command_id":"c","session_id":"s",'
    text += f'"updates":{{"buyer":{{"x":[{literal}]}}}}}}'
    assert rejection(text) == f"updates.buyer.x.0: {shown} {NOT_A_NUMBER}"
    assert rejection(json.loads(text)) == f"updates.buyer.x.0: {shown} {NOT_A_NUMBER}"


def test_every_unsafe_number_is_named_in_document_order():
    updates = {"buyer": {"a": math.nan, "b": [1, 2**60]}, "shipping_address": {"c": math.inf}}
    assert rejection(update_with(updates)) == "; ".join(
        [
            f"updates.buyer.a: NaN {NOT_A_NUMBER}",
            f"updates.buyer.b.1: 1152921504606846976 {RANGE}",
            f"updates.shipping_address.c: Infinity {NOT_A_NUMBER}",
        ]
    )


def test_a_declared_field_keeps_its_own_message():
    item = {"type": "product", "total_amount": 2**53, "weight": math.nan}
    assert rejection(update_with({"line_items": [item]})).startswith(
        "updates.line_items.0.total_amount: Input should be less than or equal to 9007199254740991"
    )


@pytest.mark.parametrize(("version", "ok"), [(MAX_SAFE_INTEGER, True), (2**53, False)])
def test_expected_version_is_bounded_too(version, ok):
    command = update_with({"currency": "EUR"}, expected_version=version)
    if ok:
        assert parse_command(command).expected_version == version
    else:
        assert rejection(command).startswith("expected_version: Input should be less than")


def test_a_deeply_nested_number_is_found_without_recursion():
    deep: Any = math.nan
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValidationError) as raised:
        parse_command(update_with({"buyer": {"deep": deep}}))
    (error,) = raised.value.errors()
    assert error["loc"][-5001:] == ("deep", *[0] * 5000)


def test_models_built_in_python_are_walked_too():
    # A Python producer may build the updates from models instead of dicts.
    with pytest.raises(ValidationError) as raised:
        SessionUpdates(buyer=Buyer(tags=(-math.inf,)))
    assert describe_validation_error(raised.value) == f"buyer.tags.0: -Infinity {NOT_A_NUMBER}"


def test_a_huge_integer_is_described_not_printed():
    [(_, _, problem)] = unsafe_numbers({"n": 10**5000})
    assert problem == f"an integer of 16610 bits {RANGE}"


# ─── Property: any JSON in a buyer's open attributes, one unsafe number put anywhere ───

keys = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=4).filter(
    lambda key: key != "email"  # declared: a string, with a message of its own
)
safe_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.floats(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, allow_nan=False).filter(
        lambda f: not f or abs(f) >= 1e-130  # DynamoDB's smallest number
    ),
)
open_values = st.recursive(
    safe_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
unsafe = st.one_of(
    st.integers(min_value=MAX_SAFE_INTEGER + 1),
    st.integers(max_value=-MAX_SAFE_INTEGER - 1),
    st.floats(allow_nan=True).filter(lambda f: not abs(f) <= MAX_SAFE_INTEGER),
)


def containers(value: Any, path: tuple[int | str, ...] = ()):
    """(path, container) for `value` and every dict or list inside it."""
    yield path, value
    for key, member in value.items() if isinstance(value, dict) else enumerate(value):
        if isinstance(member, dict | list):
            yield from containers(member, (*path, key))


@hsettings(max_examples=150, deadline=None)
@given(buyer=st.dictionaries(keys, open_values, max_size=3), number=unsafe, data=st.data())
def test_one_unsafe_number_anywhere_is_named_at_its_place(buyer, number, data):
    assert parse_command(update_with({"buyer": buyer})).updates.buyer.model_dump() == {
        "email": None,
        **buyer,
    }
    where, holder = data.draw(st.sampled_from(list(containers(buyer))))
    if isinstance(holder, dict):
        key = data.draw(keys)
        holder[key] = number
    else:
        key = data.draw(st.integers(0, len(holder)))
        holder.insert(key, number)
    path = ".".join(str(part) for part in ("updates", "buyer", *where, key))
    expected = f"{path}: {number_problem(number)}"
    assert rejection(update_with({"buyer": buyer})) == expected
    assert rejection(json.dumps(update_with({"buyer": buyer}))) == expected


# ─── Producers: the API and bulk-update refuse before anything is sent ───


class RecordingJournal:
    """Stands in for the journal: records what would have gone to Redis."""

    def __init__(self) -> None:
        self.enqueued: list[Any] = []

    def enqueue(self, round_trip, **_: Any) -> None:
        self.enqueued.append(round_trip)


@pytest.mark.parametrize("form", ["dict", "json"])
def test_the_producer_refuses_naming_the_path(form):
    command = update_with({"buyer": {"x_meta": {"serial": 12345678901234567890}}})
    with pytest.raises(InvalidCommand) as refused:
        prepare(command if form == "dict" else json.dumps(command))
    assert str(refused.value) == f"updates.buyer.x_meta.serial: 12345678901234567890 {RANGE}"


def test_enqueue_many_sends_nothing_when_one_command_holds_an_unsafe_number():
    journal = RecordingJournal()
    producer = CommandProducer(journal, queue="q")  # type: ignore[arg-type]
    good = update_with({"currency": "EUR"})
    bad = update_with({"line_items": [{"type": "p", "total_amount": 1, "weight": math.nan}]})

    with pytest.raises(InvalidCommand) as refused:
        producer.enqueue_many([good, json.dumps(bad), good])

    assert str(refused.value) == f"command 1: updates.line_items.0.weight: NaN {NOT_A_NUMBER}"
    assert journal.enqueued == []


@pytest.mark.parametrize(
    ("assignment", "problem"),
    [
        ('buyer={"x_meta": {"serial": 12345678901234567890}}', f"12345678901234567890 {RANGE}"),
        ('buyer={"x_meta": {"serial": NaN}}', f"NaN {NOT_A_NUMBER}"),
        ('buyer={"x_meta": {"serial": 1e309}}', f"Infinity {NOT_A_NUMBER}"),
    ],
)
def test_bulk_update_refuses_a_patch_with_an_unsafe_number(assignment, problem):
    with pytest.raises(SelectionError) as refused:
        validate_updates(parse_set([assignment]))
    assert str(refused.value) == f"updates: buyer.x_meta.serial: {problem}"
