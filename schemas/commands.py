"""Checkout commands: what producers enqueue, one JSON object each, discriminated by `type`.

Commands forbid unknown keys (a typo must not be silently dropped), while the
session data inside them (line items, buyer, addresses, payment instruments)
keeps unknown attributes, as the seed does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.ids import CommandId, SessionId, escaped
from schemas.known_fields import closest_field
from schemas.numbers import check_numbers
from schemas.session import (
    MAX_SAFE_INTEGER,
    Buyer,
    CheckoutStatus,
    LineItem,
    PaymentInstrument,
    PostalAddress,
)

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# Subtotal plus 8% tax and 0.5% fee must stay a safe integer in JavaScript.
MAX_CART = MAX_SAFE_INTEGER // 2


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: CommandId

    def body(self) -> dict[str, Any]:
        """Everything that defines the command's effect: type, session and payload.

        Defaults are left out, so an explicit default (`"currency": "USD"`) is the same
        command as an absent one, and a new optional field does not change the
        fingerprint of commands recorded before it existed.
        """
        return self.model_dump(mode="json", exclude={"command_id"}, exclude_defaults=True)


class CreateSession(_Command):
    type: Literal["create_session"]
    session_id: SessionId | None = None
    currency: Currency = "USD"


class SessionUpdates(BaseModel):
    """The seed's partial update: an absent field is left as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line_items: list[LineItem] | None = None
    buyer: Buyer | None = None
    shipping_address: PostalAddress | None = None
    billing_address: PostalAddress | None = None
    payment_instruments: list[PaymentInstrument] | None = None
    currency: Currency | None = None
    continue_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_nulls(cls, value: Any) -> Any:
        # The seed's update type is "value or undefined"; a null would be stored and
        # break readers that expect an object or a list.
        if value is None:
            raise ValueError("must not be null; omit the field to keep the current value")
        return value

    @model_validator(mode="after")
    def _cart_within_safe_integers(self) -> SessionUpdates:
        # The seed sums amounts as JavaScript doubles: past 2**53 its totals and ours differ.
        if self.line_items and sum(abs(li.total_amount) for li in self.line_items) > MAX_CART:
            raise ValueError(
                f"line_items: amounts add up to more than {MAX_CART} minor units, where the "
                "totals would lose precision"
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _numbers_the_seed_can_read(
        cls, data: Any, handler: ModelWrapValidatorHandler[SessionUpdates]
    ) -> SessionUpdates:
        # After the fields' own checks, so a declared field keeps its message (Money's
        # bounds); the open attributes take any JSON, and only this walk sees into them.
        updates = handler(data)
        check_numbers(data, cls.__name__)
        return updates

    def given(self) -> dict[str, Any]:
        """The fields the producer set, as model values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class UpdateSession(_Command):
    type: Literal["update_session"]
    session_id: SessionId
    updates: SessionUpdates
    # Bounded like every number the TypeScript side reads (`schemas.numbers`).
    expected_version: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)] | None = None

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["updates"] = self.updates.model_dump(mode="json", exclude_unset=True)
        return body


class TransitionSession(_Command):
    type: Literal["transition_session"]
    session_id: SessionId
    target: CheckoutStatus


class CompleteSession(_Command):
    type: Literal["complete_session"]
    session_id: SessionId


class CancelSession(_Command):
    type: Literal["cancel_session"]
    session_id: SessionId


Command = Annotated[
    CreateSession | UpdateSession | TransitionSession | CompleteSession | CancelSession,
    Field(discriminator="type"),
]
SessionCommand = UpdateSession | TransitionSession | CompleteSession | CancelSession

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(data: Mapping[str, Any] | str | bytes) -> Command:
    """Validate one command from a mapping or a JSON document; raises `ValidationError`."""
    if isinstance(data, str | bytes):
        return COMMAND_ADAPTER.validate_json(data)
    return COMMAND_ADAPTER.validate_python(data)


def command_fingerprint(command: Command) -> str:
    """A digest of the command's type, session and body, the idempotency key's content.

    The same `command_id` with another fingerprint is a different command reusing the key.
    """
    return canonical_digest(command.body())


def canonical_digest(value: Any) -> str:
    # default=str: a raw payload may hold the Decimal or datetime Celery's JSON decodes.
    canonical = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    # surrogatepass: a lone surrogate (JavaScript strings may hold one) still has a digest;
    # every valid string encodes to the same bytes as plain UTF-8.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def describe_validation_error(error: ValidationError, *, limit: int = 5, model: Any = None) -> str:
    """One line per problem, each naming where it is: `updates.line_items.0.total_amount: ...`.

    With `model` (what was validated: `Command`, `SessionUpdates`), an unknown key
    names the known field closest to it: `sesion_id: not a known field; did you mean
    session_id?`.
    """
    problems = []
    for detail in error.errors(include_url=False)[:limit]:
        location = ".".join(_printable(part) for part in _without_tag(detail["loc"])) or "command"
        problems.append(f"{location}: {_printable(_message(detail, model))}")
    hidden = error.error_count() - limit
    if hidden > 0:
        problems.append(f"... and {hidden} more")
    return "; ".join(problems)


def _message(detail: Any, model: Any) -> str:
    if detail["type"] == "extra_forbidden" and model is not None:
        near = closest_field(model, detail["loc"])
        if near is not None:
            return f"not a known field; did you mean {near}?"
    return detail["msg"]


def _printable(part: object) -> str:
    # Keys and the values pydantic quotes in its messages are producer input: a newline
    # would split a `FILE:LINE:` report and forge another, an escape sequence would
    # reach the operator's terminal.
    return escaped(str(part))


COMMAND_TYPES = frozenset(
    model.model_fields["type"].annotation.__args__[0]
    for model in (CreateSession, UpdateSession, TransitionSession, CompleteSession, CancelSession)
)


def _without_tag(location: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic prefixes errors in a discriminated union with the tag ("update_session").
    if location and location[0] in COMMAND_TYPES:
        return location[1:]
    return location


def size_problem(size: int, limit: int) -> str | None:
    """What is wrong with a command of `size` bytes of JSON under CHECKOUT_MAX_COMMAND_BYTES
    = `limit`, or None: the one wording every producer and the worker use."""
    if size <= limit:
        return None
    return f"command: {size} bytes of JSON, more than CHECKOUT_MAX_COMMAND_BYTES ({limit})"


def id_field(payload: Any, name: str) -> str | None:
    """`payload[name]` if it is a well-formed id (a string of 1-255 characters), else None:
    what a rejection or a dead letter may name of a command that did not validate."""
    value = payload.get(name) if isinstance(payload, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None
