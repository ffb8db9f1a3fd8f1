"""The checkout session as the seed's TypeScript store keeps it.

Every model allows extra attributes: the TypeScript service writes fields this
pipeline does not know about, and a Python update must carry them through
untouched. Money is integer minor units, bounded to JavaScript's safe-integer
range so both sides compute the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

# Number.MAX_SAFE_INTEGER: beyond it the seed's float arithmetic silently loses cents.
MAX_SAFE_INTEGER = 2**53 - 1

Money = Annotated[int, Strict(), Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]

CheckoutStatus = Literal[
    "incomplete",
    "requires_escalation",
    "ready_for_complete",
    "complete_in_progress",
    "completed",
    "canceled",
]

OPEN_STATUSES: frozenset[str] = frozenset(
    {"incomplete", "requires_escalation", "ready_for_complete", "complete_in_progress"}
)
CLOSED_STATUSES: frozenset[str] = frozenset({"completed", "canceled"})


class OpenModel(BaseModel):
    """A model that keeps attributes it does not declare (the TypeScript side's fields)."""

    model_config = ConfigDict(extra="allow")


class LineItem(OpenModel):
    type: str
    total_amount: Money
    id: str | None = None


class Totals(OpenModel):
    subtotal: int
    tax: int
    shipping: int
    discount: int
    fee: int
    total: int
    currency: str


class Message(OpenModel):
    type: str
    code: str
    message: str
    # The seed never writes it, but determineStatus escalates on it when another writer does.
    severity: str | None = None


class Buyer(OpenModel):
    email: str | None = None


class PostalAddress(OpenModel):
    pass


class PaymentInstrument(OpenModel):
    pass


class CheckoutSession(OpenModel):
    """A checkout session; serialise with `exclude_unset=True` to keep absent fields absent."""

    id: str
    status: CheckoutStatus
    currency: str
    line_items: list[LineItem]
    totals: Totals
    payment_instruments: list[PaymentInstrument]
    messages: list[Message]
    created_at: str
    updated_at: str
    buyer: Buyer | None = None
    shipping_address: PostalAddress | None = None
    billing_address: PostalAddress | None = None
    continue_url: str | None = None
    # Set when this pipeline completes or cancels the session. The seed's `update` knows no
    # closed states and recomputes `status` (a completed session reads ready_for_complete
    # again), but it copies attributes it does not know, so this one survives it.
    closed_status: CheckoutStatus | None = None

    @property
    def closed_as(self) -> str | None:
        """`completed` or `canceled` once closed, whatever a later seed write did to `status`."""
        if self.closed_status in CLOSED_STATUSES:
            return self.closed_status
        return self.status if self.status in CLOSED_STATUSES else None

    def to_document(self) -> dict:
        """The session as the JSON document the seed reads and writes."""
        return self.model_dump(mode="json", exclude_unset=True)
