"""Data shapes only: sessions, commands and result events (pydantic v2)."""

from schemas.commands import (
    CancelSession,
    Command,
    CompleteSession,
    CreateSession,
    SessionUpdates,
    TransitionSession,
    UpdateSession,
    command_fingerprint,
    describe_validation_error,
    parse_command,
)
from schemas.events import EventError, ResultEvent, event_id_for, public_snapshot
from schemas.session import (
    Buyer,
    CheckoutSession,
    CheckoutStatus,
    LineItem,
    Message,
    PaymentInstrument,
    PostalAddress,
    Totals,
)

__all__ = [
    "Buyer",
    "CancelSession",
    "CheckoutSession",
    "CheckoutStatus",
    "Command",
    "CompleteSession",
    "CreateSession",
    "EventError",
    "LineItem",
    "Message",
    "PaymentInstrument",
    "PostalAddress",
    "ResultEvent",
    "SessionUpdates",
    "Totals",
    "TransitionSession",
    "UpdateSession",
    "command_fingerprint",
    "describe_validation_error",
    "event_id_for",
    "parse_command",
    "public_snapshot",
]
