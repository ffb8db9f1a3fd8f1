"""Payment instruments outside the table: display fields only, at any depth (allowlist)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import public_snapshot
from schemas.payments import DEFAULT_DISPLAY, REDACTED, PaymentDisplay
from worker.delivery.deadletters import shown_raw
from worker.settings import Settings

pytestmark = pytest.mark.unit


def shown(instrument: dict[str, Any], display: PaymentDisplay = DEFAULT_DISPLAY) -> Any:
    [one] = public_snapshot({"payment_instruments": [instrument]}, display)["payment_instruments"]
    return one


def test_names_no_list_of_secrets_knows_are_redacted() -> None:
    instrument = {
        "id": "pi-1",
        "type": "card",
        "payment_token": "tok_live_1",
        "secret": "s3",
        "client_secret": "cs_1",
        "credential": {"type": "token", "token": "tok_2"},
        "handler_id": "stripe",
    }
    assert shown(instrument) == {
        "id": "pi-1",
        "type": "card",
        "payment_token": REDACTED,
        "secret": REDACTED,
        "client_secret": REDACTED,
        "credential": REDACTED,
        "handler_id": "stripe",
    }


def test_display_objects_are_filtered_inside_and_the_billing_address_is_kept_whole() -> None:
    instrument = {
        "display": {"brand": "visa", "lastDigits": "4242", "cvc": "123", "art": {"url": "x"}},
        "billing_address": {"line1": "1 Main St", "country": "US"},
        "Card-Number": "4242424242424242",
    }
    assert shown(instrument) == {
        "display": {"brand": "visa", "lastDigits": "4242", "cvc": REDACTED, "art": REDACTED},
        "billing_address": {"line1": "1 Main St", "country": "US"},
        "Card-Number": REDACTED,
    }


def test_a_deployment_widens_the_allowlist_knowingly(monkeypatch) -> None:
    monkeypatch.setenv("CHECKOUT_PAYMENT_DISPLAY_FIELDS", "id, network_token ,wallet.*")
    display = PaymentDisplay.of(Settings().payment_display_fields)
    instrument = {"id": "pi", "network_token": "nt", "brand": "visa", "wallet": {"k": 1}}
    assert shown(instrument, display) == {
        "id": "pi",
        "network_token": "nt",
        "brand": REDACTED,
        "wallet": {"k": 1},
    }


# ─── Property: no value outside the allowlist survives, at any depth ───

KEYS = st.one_of(
    st.sampled_from(["id", "type", "brand", "display", "billing_address", "Last_Digits"]),
    st.sampled_from(["token", "secret", "number", "payment_token", "credential", "x"]),
    st.text(min_size=1, max_size=6),
)


@st.composite
def instruments(draw) -> dict[str, Any]:
    """An instrument whose every leaf is a distinct sentinel string `@@<n>@@`."""
    counter = iter(range(10**6))
    leaf = st.builds(lambda: f"@@{next(counter)}@@")
    tree = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)
        ),
        max_leaves=12,
    )
    return draw(st.dictionaries(KEYS, tree, min_size=1, max_size=6))


def visible(value: Any, display: PaymentDisplay, path_ok: bool = True) -> set[str]:
    """The sentinels an allowlist lets through, computed independently of the redactor:
    a leaf is visible when every key on its path is kept, or an ancestor is kept whole."""
    if isinstance(value, str):
        return {value} if path_ok else set()
    if isinstance(value, list):
        return set().union(*(visible(v, display, path_ok) for v in value))
    found: set[str] = set()
    for key, item in value.items():
        normal = key.lower().replace("_", "").replace("-", "")
        if normal in display.whole:
            found |= sentinels(item) if path_ok else set()
        else:
            found |= visible(item, display, path_ok and normal in display.kept)
    return found


def sentinels(value: Any) -> set[str]:
    return set(re.findall(r"@@\d+@@", json.dumps(value)))


@settings(max_examples=200, deadline=None)
@given(instruments())
def test_only_allowlisted_values_appear_in_an_event_snapshot(instrument) -> None:
    out = shown(instrument)
    assert sentinels(out) == visible(instrument, DEFAULT_DISPLAY)


@settings(max_examples=100, deadline=None)
@given(instruments())
def test_only_allowlisted_values_appear_in_a_raw_dead_letter_listing(instrument) -> None:
    command = {"type": "update_session", "updates": {"payment_instruments": [instrument]}}
    envelope = {"body": json.dumps([[command], {}, {}]), "headers": {"task": "x"}}
    out = json.loads(shown_raw(json.dumps(envelope), DEFAULT_DISPLAY))
    assert sentinels(out) == visible(instrument, DEFAULT_DISPLAY)


def test_a_base64_body_is_decoded_and_redacted_and_unparsable_text_about_payments_hidden() -> None:
    import base64

    body = json.dumps([[{"updates": {"payment_instruments": [{"token": "tok_9"}]}}], {}, {}])
    envelope = {
        "body": base64.b64encode(body.encode()).decode(),
        "properties": {"body_encoding": "base64"},
    }
    out = shown_raw(json.dumps(envelope), DEFAULT_DISPLAY)
    assert "tok_9" not in out and REDACTED in out
    hidden = shown_raw('{"payment_instruments": [{"token": "tok_9"', DEFAULT_DISPLAY)
    assert "tok_9" not in hidden
    assert shown_raw("\x01junk", DEFAULT_DISPLAY) == "\x01junk"
