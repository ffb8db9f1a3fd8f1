"""Numbers both readers of the sessions table can hold, wherever a command puts them.

The seed's TypeScript service reads sessions with the AWS document client, which turns
a number past ±(2^53-1) into a BigInt (that JSON.stringify refuses) or, for one with
a fraction or an exponent (`1E+300`), throws: either way that session breaks there,
although DynamoDB stored it exactly. NaN and ±Infinity are no numbers JSON or DynamoDB
can hold (pydantic writes them as null, silently). The open attributes take any JSON,
so no field type stops these: commands walk their values for them (`check_numbers`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.session import MAX_SAFE_INTEGER

Location = tuple[int | str, ...]
# Past this many bits an integer is described, not printed: str() of a long one costs
# quadratic time (Python refuses past 4300 digits), and no reader needs its digits.
_SHOWN_BITS = 256


# DynamoDB numbers have at most 38 digits from 1E-130 up: a smaller one is unstorable.
DYNAMODB_SMALLEST = 1e-130


def number_problem(number: int | float) -> str | None:
    """What the TypeScript side or DynamoDB cannot take about `number`, or None."""
    if isinstance(number, float) and not math.isfinite(number):
        return f"{_js_name(number)} is not a number JSON or DynamoDB can hold"
    if abs(number) > MAX_SAFE_INTEGER:
        return (
            f"{_shown(number)} is outside the safe integer range ±(2^53-1) "
            "that the TypeScript side can read"
        )
    if number and abs(number) < DYNAMODB_SMALLEST:
        return f"{number!r} is closer to 0 than DynamoDB's smallest number (1E-130)"
    return None


def unsafe_numbers(value: Any) -> Iterator[tuple[Location, int | float, str]]:
    """(where, number, what is wrong) for each number in `value` that `number_problem`
    refuses, in document order, at any depth (iterative: no recursion limit to hit)."""
    stack: list[tuple[Location, Any]] = [((), value)]
    while stack:
        location, value = stack.pop()
        if isinstance(value, str | bool) or value is None:
            continue  # the common leaves first; bool is an int to Python, not to JSON
        if isinstance(value, int | float):
            problem = number_problem(value)
            if problem:
                yield location, value, problem
        elif isinstance(value, Mapping | BaseModel):
            # iter() of a model: its fields and its extra attributes, as pairs.
            members = list(value.items() if isinstance(value, Mapping) else value)
            stack.extend(((*location, key), member) for key, member in reversed(members))
        elif isinstance(value, list | tuple):
            stack.extend(((*location, n), value[n]) for n in range(len(value) - 1, -1, -1))


def check_numbers(value: Any, title: str) -> None:
    """Raise a `ValidationError` naming the place of each number in `value` that the
    TypeScript side cannot read back. Raised in a validator, pydantic puts the
    validated field's own place in front, so every producer reports the full path."""
    if _plainly_safe(value):
        return  # nearly every command: a tenth of the walk that names places
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("unsafe_number", "{problem}", {"problem": problem}),
            loc=location,
            input=number,
        )
        for location, number, problem in unsafe_numbers(value)
    ]
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _plainly_safe(value: Any) -> bool:
    """True when `value` is JSON as a parser gives it (dicts, lists, str, None, bool, int,
    float; exact types) with every number in range; False says only "walk it properly"."""
    stack = [value]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int or kind is float:
            # False for NaN too: every comparison with it is.
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and (
                kind is int or not value or abs(value) >= DYNAMODB_SMALLEST
            ):
                continue
            return False
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        else:
            return False
    return True


def _js_name(number: float) -> str:
    # As JavaScript and JSON texts spell them (Python's are nan, inf).
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _shown(number: int | float) -> str:
    if isinstance(number, int) and number.bit_length() > _SHOWN_BITS:
        return f"an integer of {number.bit_length()} bits"
    return repr(number)
