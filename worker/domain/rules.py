"""Checkout rules, kept exactly as the seed's TypeScript store computes them.

Pure functions: no I/O, no clock (callers pass `now`), no randomness (callers pass
ids). `decide` turns a command and the session's current snapshot into the new
session, or raises a `Rejected` error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.commands import (
    CancelSession,
    Command,
    CompleteSession,
    CreateSession,
    SessionCommand,
    TransitionSession,
    UpdateSession,
)
from schemas.session import (
    CheckoutSession,
    CheckoutStatus,
    LineItem,
    Message,
    Totals,
)
from worker.domain.js import js_iso, js_round, timestamp_after
from worker.errors import (
    InvalidTransition,
    SessionClosed,
    SessionExpired,
    SessionNotFound,
    VersionConflict,
)

TAX_RATE = 0.08  # the seed's placeholder 8% tax
FEE_RATE = 0.005  # 0.5%
SHIPPING = 0  # determined by shipping option selection, which the seed does not model

MISSING_LINE_ITEMS = Message(
    type="warning", code="missing_line_items", message="Cart is empty. Add at least one line item."
)
MISSING_BUYER_EMAIL = Message(
    type="warning", code="missing_buyer_email", message="Buyer email is required."
)
MISSING_SHIPPING_ADDRESS = Message(
    type="warning", code="missing_shipping_address", message="Shipping address is required."
)
MISSING_PAYMENT = Message(
    type="warning", code="missing_payment", message="At least one payment instrument is required."
)

# The seed's getAllowedTransitions, for the forced `transition_session` command.
# Completion and cancellation are lifecycle commands of their own, below.
SEED_TRANSITIONS: dict[str, tuple[CheckoutStatus, ...]] = {
    "incomplete": ("requires_escalation", "ready_for_complete"),
    "requires_escalation": ("incomplete", "ready_for_complete"),
    "ready_for_complete": (),
}
# complete_in_progress belongs to a payment step this pipeline does not model.
COMPLETABLE_STATUSES = frozenset({"ready_for_complete"})


@dataclass(frozen=True)
class Snapshot:
    """A stored session as last read; `token` is the store's own concurrency token."""

    session: CheckoutSession
    version: int
    expired: bool = False
    token: Any = None
    ledger: tuple[str, ...] = ()  # the last commands applied to it (`worker.domain.ledger`)
    # False: a copy the store kept since its own last write, not a read of the table now.
    fresh: bool = True


@dataclass(frozen=True)
class Applied:
    """A command's effect: the session to write and what to call the event."""

    session: CheckoutSession
    version: int
    event_type: str
    previous_status: CheckoutStatus | None


# ─── The seed's pure helpers ───


def recalculate_totals(line_items: list[LineItem], currency: str) -> Totals:
    """The seed's recalculateTotals: 8% tax and 0.5% fee on products and services."""
    subtotal = sum(li.total_amount for li in line_items if li.type in ("product", "service"))
    tax = js_round(subtotal * TAX_RATE)
    discount = abs(sum(li.total_amount for li in line_items if li.type == "discount"))
    fee = js_round(subtotal * FEE_RATE)
    total = subtotal + tax + SHIPPING - discount + fee
    return Totals(
        subtotal=subtotal,
        tax=tax,
        shipping=SHIPPING,
        discount=discount,
        fee=fee,
        total=total,
        currency=currency,
    )


def build_messages(session: CheckoutSession) -> list[Message]:
    """The seed's buildMessages: one warning per missing required field, in this order."""
    messages = []
    if not session.line_items:
        messages.append(MISSING_LINE_ITEMS)
    if not (session.buyer and session.buyer.email):
        messages.append(MISSING_BUYER_EMAIL)
    if session.shipping_address is None:
        messages.append(MISSING_SHIPPING_ADDRESS)
    if not session.payment_instruments:
        messages.append(MISSING_PAYMENT)
    return [message.model_copy() for message in messages]


def determine_status(session: CheckoutSession) -> CheckoutStatus:
    """The seed's determineStatus: escalation first, then completeness."""
    if any(message.severity == "requires_buyer_input" for message in session.messages):
        return "requires_escalation"
    complete = (
        session.line_items
        and session.buyer is not None
        and session.buyer.email
        and session.shipping_address is not None
        and session.payment_instruments
    )
    return "ready_for_complete" if complete else "incomplete"


def allowed_transitions(current: str) -> tuple[CheckoutStatus, ...]:
    return SEED_TRANSITIONS.get(current, ())


def check_transition(current: str, target: str) -> None:
    """Raise the seed's error unless `target` is reachable from `current`."""
    allowed = allowed_transitions(current)
    if target not in allowed:
        raise InvalidTransition(
            f"Invalid transition: {current} → {target}. Allowed: {', '.join(allowed)}"
        )


# ─── Session lifecycle ───


def new_session(session_id: str, currency: str, now: datetime) -> CheckoutSession:
    """The seed's create: empty cart, zero totals, the four missing-field warnings."""
    stamp = js_iso(now)
    session = CheckoutSession(
        id=session_id,
        status="incomplete",
        currency=currency,
        line_items=[],
        totals=recalculate_totals([], currency),
        payment_instruments=[],
        messages=[],
        created_at=stamp,
        updated_at=stamp,
    )
    return session.model_copy(update={"messages": build_messages(session)})


def apply_updates(
    session: CheckoutSession, changes: dict[str, Any], now: datetime
) -> CheckoutSession:
    """The seed's update: apply the given fields, then recompute totals, messages, status."""
    updated = session.model_copy(update=changes)
    updated = updated.model_copy(
        update={"totals": recalculate_totals(updated.line_items, updated.currency)}
    )
    updated = updated.model_copy(update={"messages": build_messages(updated)})
    return updated.model_copy(
        update={
            "status": determine_status(updated),
            "updated_at": timestamp_after(session.updated_at, now),
        }
    )


def with_status(session: CheckoutSession, status: CheckoutStatus, now: datetime) -> CheckoutSession:
    return session.model_copy(
        update={"status": status, "updated_at": timestamp_after(session.updated_at, now)}
    )


# ─── Deciding a command ───


def decide(
    command: Command, current: Snapshot | None, *, now: datetime, session_id: str
) -> Applied:
    """The effect of `command` on the session `current` (None: no such item).

    `session_id` is the command's session, or the id chosen for a create without one.
    Raises a `Rejected` error when the command cannot apply.
    """
    if isinstance(command, CreateSession):
        return _create(command, current, now, session_id)
    snapshot = _live(session_id, current)
    session = _HANDLERS[type(command)](command, snapshot, now)
    return Applied(session, snapshot.version + 1, event_type_of(command), snapshot.session.status)


def event_type_of(command: Command) -> str:
    """The type of the event a command earns when it applies."""
    return _EVENT_TYPES[type(command)]


def _create(
    command: CreateSession, current: Snapshot | None, now: datetime, session_id: str
) -> Applied:
    if current is not None and not current.expired:
        raise VersionConflict(
            f"Checkout session already exists: {session_id} (version {current.version})"
        )
    return Applied(new_session(session_id, command.currency, now), 1, event_type_of(command), None)


def _live(session_id: str, current: Snapshot | None) -> Snapshot:
    if current is None:
        raise SessionNotFound(session_id)
    if current.expired:
        raise SessionExpired(session_id)
    if current.session.closed_as:
        raise SessionClosed(session_id, current.session.closed_as)
    return current


def _update(command: UpdateSession, snapshot: Snapshot, now: datetime) -> CheckoutSession:
    expected = command.expected_version
    if expected is not None and expected != snapshot.version:
        raise VersionConflict(
            f"Expected version {expected} but checkout session {command.session_id} "
            f"is at version {snapshot.version}"
        )
    return apply_updates(snapshot.session, command.updates.given(), now)


def _transition(command: TransitionSession, snapshot: Snapshot, now: datetime) -> CheckoutSession:
    check_transition(snapshot.session.status, command.target)
    return with_status(snapshot.session, command.target, now)


def _complete(command: CompleteSession, snapshot: Snapshot, now: datetime) -> CheckoutSession:
    session = snapshot.session
    if session.status not in COMPLETABLE_STATUSES:
        raise InvalidTransition(
            f"Invalid transition: {session.status} → completed. Allowed from: ready_for_complete"
        )
    missing = build_messages(session)
    if missing:
        # A forced transition can reach ready_for_complete with data missing; an order
        # must not be completed without a cart, buyer, address and payment.
        codes = ", ".join(message.code for message in missing)
        raise InvalidTransition(f"Cannot complete checkout session {session.id}: {codes}")
    return _closed(session, "completed", now)


def _cancel(command: CancelSession, snapshot: Snapshot, now: datetime) -> CheckoutSession:
    return _closed(snapshot.session, "canceled", now)


def _closed(session: CheckoutSession, status: CheckoutStatus, now: datetime) -> CheckoutSession:
    return with_status(session, status, now).model_copy(update={"closed_status": status})


_EVENT_TYPES: dict[type[Command], str] = {
    CreateSession: "session.created",
    UpdateSession: "session.updated",
    TransitionSession: "session.status_changed",
    CompleteSession: "session.completed",
    CancelSession: "session.canceled",
}

_HANDLERS: dict[type[SessionCommand], Callable[..., CheckoutSession]] = {
    UpdateSession: _update,
    TransitionSession: _transition,
    CompleteSession: _complete,
    CancelSession: _cancel,
}
