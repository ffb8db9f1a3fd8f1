"""Example-based tests of worker.domain.rules: the seed's rules and `decide`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest

from schemas import CheckoutSession, LineItem, parse_command
from worker.domain.js import js_iso, js_round, timestamp_after
from worker.domain.rules import (
    Snapshot,
    allowed_transitions,
    build_messages,
    check_transition,
    decide,
    determine_status,
    new_session,
    recalculate_totals,
)
from worker.errors import (
    InvalidTransition,
    SessionClosed,
    SessionExpired,
    SessionNotFound,
    VersionConflict,
)

pytestmark = pytest.mark.unit

SESSION_ID = "cs_1"
CREATED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
LATER = CREATED + timedelta(minutes=5)
CREATED_STAMP = "2024-05-01T12:00:00.123Z"

STATUSES = (
    "incomplete",
    "requires_escalation",
    "ready_for_complete",
    "complete_in_progress",
    "completed",
    "canceled",
)
OPEN_STATUSES = ("incomplete", "requires_escalation", "ready_for_complete", "complete_in_progress")
CLOSED_STATUSES = ("completed", "canceled")
# The seed's getAllowedTransitions switch.
SEED_TABLE = {
    "incomplete": ["requires_escalation", "ready_for_complete"],
    "requires_escalation": ["incomplete", "ready_for_complete"],
    "ready_for_complete": [],
    "complete_in_progress": [],
    "completed": [],
    "canceled": [],
}

MISSING_LINE_ITEMS = {
    "type": "warning",
    "code": "missing_line_items",
    "message": "Cart is empty. Add at least one line item.",
}
MISSING_BUYER_EMAIL = {
    "type": "warning",
    "code": "missing_buyer_email",
    "message": "Buyer email is required.",
}
MISSING_SHIPPING_ADDRESS = {
    "type": "warning",
    "code": "missing_shipping_address",
    "message": "Shipping address is required.",
}
MISSING_PAYMENT = {
    "type": "warning",
    "code": "missing_payment",
    "message": "At least one payment instrument is required.",
}
ESCALATION = {
    "type": "error",
    "code": "age_check",
    "message": "Confirm age.",
    "severity": "requires_buyer_input",
}
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "country": "US"}
CARD = {"type": "card", "id": "pi_1"}


# ─── Builders ───


def items(*pairs: tuple[str, int]) -> list[LineItem]:
    return [LineItem(type=kind, total_amount=amount) for kind, amount in pairs]


def session(**fields: Any) -> CheckoutSession:
    """The seed's freshly created session, with `fields` laid over its document."""
    document = new_session(SESSION_ID, "USD", CREATED).to_document()
    return CheckoutSession.model_validate({**document, **fields})


def full_session(**fields: Any) -> CheckoutSession:
    """A session with everything completion needs."""
    complete = {
        "line_items": [{"type": "product", "total_amount": 1250}],
        "buyer": {"email": "ada@example.com"},
        "shipping_address": ADDRESS,
        "payment_instruments": [CARD],
        "messages": [],
        "status": "ready_for_complete",
    }
    return session(**(complete | fields))


def snapshot(current: CheckoutSession, version: int = 3, expired: bool = False) -> Snapshot:
    return Snapshot(session=current, version=version, expired=expired)


def command(kind: str, **fields: Any):
    body = {"command_id": "cmd-1", "type": kind, **fields}
    if kind != "create_session":
        body.setdefault("session_id", SESSION_ID)
    return parse_command(body)


def update(updates: dict, **fields: Any):
    return command("update_session", updates=updates, **fields)


def run(cmd, current: Snapshot | None, now: datetime = LATER):
    return decide(cmd, current, now=now, session_id=SESSION_ID)


def codes(current: CheckoutSession) -> list[str]:
    return [message.code for message in build_messages(current)]


# ─── js_round ───


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, 3),
        (-2.5, -2),
        (0.5, 1),
        (-0.5, 0),
        (1.5, 2),
        (-1.5, -1),
        (2.4, 2),
        (-2.6, -3),
        (6.25, 6),
        (1.4999999999999998, 1),
        (0.49999999999999994, 0),
        (-0.49999999999999994, 0),
        (4503599627370495.5, 4503599627370496),
        (7.0, 7),
        (0.0, 0),
        (-0.0, 0),
    ],
)
def test_js_round_matches_math_round(value: float, expected: int) -> None:
    assert js_round(value) == expected
    assert isinstance(js_round(value), int)


# ─── recalculate_totals ───


def test_totals_of_an_empty_cart_are_zero() -> None:
    totals = recalculate_totals([], "EUR")
    assert totals.model_dump() == {
        "subtotal": 0,
        "tax": 0,
        "shipping": 0,
        "discount": 0,
        "fee": 0,
        "total": 0,
        "currency": "EUR",
    }


def test_totals_add_eight_percent_tax_and_half_percent_fee() -> None:
    totals = recalculate_totals(items(("product", 1250)), "USD")
    # tax 1250 * 0.08 = 100; fee 1250 * 0.005 = 6.25 -> 6
    assert (totals.subtotal, totals.tax, totals.fee, totals.total) == (1250, 100, 6, 1356)
    assert totals.shipping == 0


def test_products_and_services_make_the_subtotal() -> None:
    totals = recalculate_totals(items(("product", 1000), ("service", 250)), "USD")
    assert totals.subtotal == 1250
    assert totals.total == 1356


def test_discount_is_the_absolute_sum_of_discount_items() -> None:
    line_items = items(("product", 1250), ("discount", -500), ("discount", 200))
    totals = recalculate_totals(line_items, "USD")
    assert totals.discount == 300  # abs(-500 + 200)
    assert totals.total == 1250 + 100 - 300 + 6


def test_positive_discount_items_are_also_subtracted() -> None:
    totals = recalculate_totals(items(("product", 1000), ("discount", 150)), "USD")
    assert totals.discount == 150
    assert totals.total == 1000 + 80 - 150 + 5


def test_shipping_and_other_line_items_are_ignored() -> None:
    line_items = items(("product", 1250), ("shipping", 999), ("other", 77), ("Product", 5))
    assert recalculate_totals(line_items, "USD") == recalculate_totals(
        items(("product", 1250)), "USD"
    )


def test_fee_half_cent_rounds_up() -> None:
    totals = recalculate_totals(items(("product", 100)), "USD")
    assert (totals.tax, totals.fee, totals.total) == (8, 1, 109)  # fee 0.5 -> 1


def test_negative_subtotal_rounds_halves_towards_positive_infinity() -> None:
    totals = recalculate_totals(items(("product", -100)), "USD")
    assert (totals.subtotal, totals.tax, totals.fee, totals.total) == (-100, -8, 0, -108)


def test_totals_keep_the_given_currency() -> None:
    assert recalculate_totals(items(("product", 1)), "JPY").currency == "JPY"


# ─── build_messages ───


def test_messages_of_a_new_session_are_the_four_warnings_in_order() -> None:
    messages = build_messages(session())
    assert [m.model_dump(exclude_unset=True) for m in messages] == [
        MISSING_LINE_ITEMS,
        MISSING_BUYER_EMAIL,
        MISSING_SHIPPING_ADDRESS,
        MISSING_PAYMENT,
    ]


@pytest.mark.parametrize(
    ("has_items", "has_email", "has_address", "has_payment"), list(product((True, False), repeat=4))
)
def test_messages_name_each_missing_field_in_seed_order(
    has_items: bool, has_email: bool, has_address: bool, has_payment: bool
) -> None:
    fields: dict[str, Any] = {
        "line_items": [{"type": "product", "total_amount": 1}] if has_items else [],
        "payment_instruments": [CARD] if has_payment else [],
    }
    if has_email:
        fields["buyer"] = {"email": "ada@example.com"}
    if has_address:
        fields["shipping_address"] = ADDRESS
    expected = [
        code
        for code, present in (
            ("missing_line_items", has_items),
            ("missing_buyer_email", has_email),
            ("missing_shipping_address", has_address),
            ("missing_payment", has_payment),
        )
        if not present
    ]
    assert codes(session(**fields)) == expected


@pytest.mark.parametrize("buyer", [{}, {"email": ""}, {"email": None}, {"first_name": "Ada"}])
def test_a_buyer_without_an_email_is_missing_the_email(buyer: dict) -> None:
    assert "missing_buyer_email" in codes(session(buyer=buyer))


def test_an_empty_shipping_address_object_counts_as_present() -> None:
    assert "missing_shipping_address" not in codes(session(shipping_address={}))


def test_a_complete_session_has_no_messages() -> None:
    assert build_messages(full_session()) == []


# ─── determine_status ───


def test_status_of_a_complete_session_is_ready_for_complete() -> None:
    assert determine_status(full_session(status="incomplete")) == "ready_for_complete"


@pytest.mark.parametrize(
    "missing",
    [
        {"line_items": []},
        {"buyer": {"email": ""}},
        {"shipping_address": None},
        {"payment_instruments": []},
    ],
)
def test_status_is_incomplete_when_anything_is_missing(missing: dict) -> None:
    document = full_session().to_document() | missing
    assert determine_status(CheckoutSession.model_validate(document)) == "incomplete"


def test_escalation_wins_over_a_complete_session() -> None:
    assert determine_status(full_session(messages=[ESCALATION])) == "requires_escalation"


def test_escalation_wins_over_an_incomplete_session() -> None:
    assert determine_status(session(messages=[ESCALATION])) == "requires_escalation"


def test_other_severities_do_not_escalate() -> None:
    message = {**ESCALATION, "severity": "recoverable"}
    assert determine_status(full_session(messages=[message])) == "ready_for_complete"


# ─── Transitions ───


@pytest.mark.parametrize("status", STATUSES)
def test_allowed_transitions_are_the_seed_table(status: str) -> None:
    assert list(allowed_transitions(status)) == SEED_TABLE[status]


@pytest.mark.parametrize(
    ("current", "target"),
    [(current, target) for current, targets in SEED_TABLE.items() for target in targets],
)
def test_seed_table_transitions_are_accepted(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c, t in product(STATUSES, repeat=2) if t not in SEED_TABLE[c]],
)
def test_other_transitions_raise_the_seed_error(current: str, target: str) -> None:
    allowed = ", ".join(SEED_TABLE[current])
    with pytest.raises(InvalidTransition) as raised:
        check_transition(current, target)
    assert raised.value.message == f"Invalid transition: {current} → {target}. Allowed: {allowed}"


def test_transition_error_text_lists_the_allowed_targets() -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition("incomplete", "completed")
    assert raised.value.message == (
        "Invalid transition: incomplete → completed. "
        "Allowed: requires_escalation, ready_for_complete"
    )


def test_transition_error_from_ready_for_complete_has_an_empty_allowed_list() -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition("ready_for_complete", "incomplete")
    assert raised.value.message == (
        "Invalid transition: ready_for_complete → incomplete. Allowed: "
    )
    assert str(raised.value) == raised.value.message


# ─── Timestamps ───


def test_js_iso_has_milliseconds_and_z() -> None:
    assert js_iso(CREATED) == CREATED_STAMP
    assert js_iso(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000Z"
    assert js_iso(datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)).endswith("05.999Z")


def test_timestamp_after_uses_the_clock_when_it_moved_forward() -> None:
    assert timestamp_after(CREATED_STAMP, LATER) == js_iso(LATER)
    assert timestamp_after(None, CREATED) == CREATED_STAMP


def test_timestamp_after_steps_one_millisecond_when_the_clock_went_back() -> None:
    earlier = CREATED - timedelta(hours=1)
    assert timestamp_after(CREATED_STAMP, earlier) == "2024-05-01T12:00:00.124Z"


def test_timestamp_after_steps_one_millisecond_within_the_same_millisecond() -> None:
    same_ms = CREATED + timedelta(microseconds=500)
    assert timestamp_after(CREATED_STAMP, same_ms) == "2024-05-01T12:00:00.124Z"


# ─── decide: create ───


def test_create_makes_the_seed_session() -> None:
    applied = run(command("create_session", session_id=SESSION_ID), None, now=CREATED)
    assert applied.version == 1
    assert applied.event_type == "session.created"
    assert applied.previous_status is None
    assert applied.session.to_document() == {
        "id": SESSION_ID,
        "status": "incomplete",
        "currency": "USD",
        "line_items": [],
        "totals": {
            "subtotal": 0,
            "tax": 0,
            "shipping": 0,
            "discount": 0,
            "fee": 0,
            "total": 0,
            "currency": "USD",
        },
        "payment_instruments": [],
        "messages": [
            MISSING_LINE_ITEMS,
            MISSING_BUYER_EMAIL,
            MISSING_SHIPPING_ADDRESS,
            MISSING_PAYMENT,
        ],
        "created_at": CREATED_STAMP,
        "updated_at": CREATED_STAMP,
    }


def test_create_uses_the_requested_currency() -> None:
    applied = run(command("create_session", currency="EUR"), None)
    assert applied.session.currency == "EUR"
    assert applied.session.totals.currency == "EUR"


def test_create_over_a_live_session_is_a_version_conflict() -> None:
    with pytest.raises(VersionConflict):
        run(command("create_session", session_id=SESSION_ID), snapshot(session()))


def test_create_over_an_expired_session_starts_afresh() -> None:
    stale = snapshot(full_session(), version=7, expired=True)
    applied = run(command("create_session", session_id=SESSION_ID), stale)
    assert applied.version == 1
    assert applied.session.status == "incomplete"
    assert applied.session.line_items == []


# ─── decide: update ───


def test_update_recomputes_totals_messages_and_status() -> None:
    cmd = update(
        {
            "line_items": [{"type": "product", "total_amount": 1250}],
            "buyer": {"email": "ada@example.com"},
        }
    )
    applied = run(cmd, snapshot(session(), version=3))
    result = applied.session
    assert (applied.version, applied.event_type, applied.previous_status) == (
        4,
        "session.updated",
        "incomplete",
    )
    assert (result.totals.subtotal, result.totals.tax, result.totals.total) == (1250, 100, 1356)
    assert codes(result) == ["missing_shipping_address", "missing_payment"]
    assert [m.code for m in result.messages] == codes(result)
    assert result.status == "incomplete"
    assert result.created_at == CREATED_STAMP
    assert result.updated_at == js_iso(LATER)


def test_update_with_everything_is_ready_for_complete() -> None:
    cmd = update(
        {
            "line_items": [{"type": "product", "total_amount": 1250}],
            "buyer": {"email": "ada@example.com"},
            "shipping_address": ADDRESS,
            "payment_instruments": [CARD],
        }
    )
    applied = run(cmd, snapshot(session()))
    assert applied.session.status == "ready_for_complete"
    assert applied.session.messages == []


def test_update_rebuilds_messages_so_an_escalation_clears() -> None:
    escalated = full_session(status="requires_escalation", messages=[ESCALATION])
    applied = run(update({"buyer": {"email": "new@example.com"}}), snapshot(escalated))
    assert applied.session.status == "ready_for_complete"


def test_update_keeps_attributes_it_does_not_know() -> None:
    current = session(
        loyalty_id="L-1",
        line_items=[{"type": "product", "total_amount": 500, "sku": "W-1"}],
    )
    applied = run(
        update({"buyer": {"email": "ada@example.com", "first_name": "Ada"}}), snapshot(current)
    )
    document = applied.session.to_document()
    assert document["loyalty_id"] == "L-1"
    assert document["line_items"] == [{"type": "product", "total_amount": 500, "sku": "W-1"}]
    assert document["buyer"] == {"email": "ada@example.com", "first_name": "Ada"}


def test_update_keeps_unknown_attributes_of_new_line_items() -> None:
    new_items = [{"type": "product", "total_amount": 700, "sku": "W-2", "quantity": 2}]
    applied = run(update({"line_items": new_items}), snapshot(session()))
    assert applied.session.to_document()["line_items"] == new_items


def test_update_leaves_absent_fields_alone() -> None:
    current = full_session(continue_url="https://shop.example/return")
    applied = run(update({"currency": "EUR"}), snapshot(current))
    document = applied.session.to_document()
    assert document["continue_url"] == "https://shop.example/return"
    assert document["shipping_address"] == ADDRESS
    assert document["totals"]["currency"] == "EUR"


def test_update_with_the_expected_version_applies() -> None:
    applied = run(update({"currency": "EUR"}, expected_version=3), snapshot(session(), version=3))
    assert applied.version == 4


def test_update_with_another_expected_version_is_a_version_conflict() -> None:
    with pytest.raises(VersionConflict):
        run(update({"currency": "EUR"}, expected_version=2), snapshot(session(), version=3))


def test_updated_at_moves_forward_even_when_the_clock_goes_back() -> None:
    current = session(updated_at="2024-05-01T12:30:00.000Z")
    applied = run(update({"currency": "EUR"}), snapshot(current), now=CREATED)
    assert applied.session.updated_at == "2024-05-01T12:30:00.001Z"
    assert applied.session.created_at == CREATED_STAMP


# ─── decide: sessions that cannot take a command ───

SESSION_COMMANDS = [
    pytest.param(update({"currency": "EUR"}), id="update"),
    pytest.param(command("transition_session", target="ready_for_complete"), id="transition"),
    pytest.param(command("complete_session"), id="complete"),
    pytest.param(command("cancel_session"), id="cancel"),
]


@pytest.mark.parametrize("cmd", SESSION_COMMANDS)
def test_a_missing_session_is_not_found(cmd) -> None:
    with pytest.raises(SessionNotFound) as raised:
        run(cmd, None)
    assert raised.value.message == f"Checkout session not found: {SESSION_ID}"


@pytest.mark.parametrize("cmd", SESSION_COMMANDS)
def test_an_expired_session_is_expired(cmd) -> None:
    with pytest.raises(SessionExpired):
        run(cmd, snapshot(full_session(), expired=True))


@pytest.mark.parametrize("status", CLOSED_STATUSES)
@pytest.mark.parametrize("cmd", SESSION_COMMANDS)
def test_a_closed_session_is_closed(cmd, status: str) -> None:
    with pytest.raises(SessionClosed):
        run(cmd, snapshot(full_session(status=status)))


# ─── decide: transition, complete, cancel ───


def test_transition_forces_the_status_and_nothing_else() -> None:
    current = session()
    applied = run(command("transition_session", target="ready_for_complete"), snapshot(current))
    assert applied.session.status == "ready_for_complete"
    assert applied.event_type == "session.status_changed"
    assert applied.session.messages == current.messages
    assert applied.session.updated_at == js_iso(LATER)


def test_transition_outside_the_seed_table_is_rejected_with_the_seed_text() -> None:
    current = full_session(status="ready_for_complete")
    with pytest.raises(InvalidTransition) as raised:
        run(command("transition_session", target="incomplete"), snapshot(current))
    assert raised.value.message == "Invalid transition: ready_for_complete → incomplete. Allowed: "


def test_complete_a_ready_session_closes_it() -> None:
    ready = full_session(status="ready_for_complete")
    applied = run(command("complete_session"), snapshot(ready, version=5))
    assert (applied.session.status, applied.session.closed_status) == ("completed", "completed")
    assert (applied.version, applied.event_type, applied.previous_status) == (
        6,
        "session.completed",
        "ready_for_complete",
    )


def test_a_completed_session_stays_closed_after_the_seed_recomputes_its_status() -> None:
    # The seed's update knows no closed states: it turns `completed` back into
    # ready_for_complete, but carries our closed_status attribute through.
    reopened = full_session(status="ready_for_complete", closed_status="completed")
    with pytest.raises(SessionClosed) as raised:
        run(command("complete_session"), snapshot(reopened, version=5))
    assert raised.value.message == "Checkout session is closed (completed): cs_1"


@pytest.mark.parametrize("status", ["incomplete", "requires_escalation", "complete_in_progress"])
def test_complete_before_ready_is_an_invalid_transition(status: str) -> None:
    with pytest.raises(InvalidTransition):
        run(command("complete_session"), snapshot(full_session(status=status)))


def test_complete_a_forced_ready_session_with_missing_data_is_rejected() -> None:
    forced = session(status="ready_for_complete", buyer={"email": "ada@example.com"})
    with pytest.raises(InvalidTransition) as raised:
        run(command("complete_session"), snapshot(forced))
    assert "missing_line_items" in raised.value.message
    assert "missing_buyer_email" not in raised.value.message


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_cancel_an_open_session(status: str) -> None:
    applied = run(command("cancel_session"), snapshot(full_session(status=status), version=2))
    assert applied.session.status == "canceled"
    assert (applied.version, applied.event_type, applied.previous_status) == (
        3,
        "session.canceled",
        status,
    )
