"""What of a payment instrument may leave the table: an allowlist of display fields.

Payment instruments are open objects (UCP/ACP instruments carry handler-specific
fields), so a list of secret key names would fail open on the next new name. Instead,
everywhere an instrument leaves the table (result events, dead-letter listings,
`checkout get`) only display fields keep their values, at any depth; every other
value is replaced by `[redacted]`, keeping the instrument's shape.

An entry `name` keeps that key's value; if the value is an object or an array, what is
inside is filtered by the same list. An entry `name.*` keeps the key with everything
under it (`billing_address.*`: an address is the buyer's, as the session's own
`billing_address` is, not a payment secret). Keys match ignoring case, `_` and `-`
(`lastDigits` is `last_digits`). The list is `CHECKOUT_PAYMENT_DISPLAY_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"
DEFAULT_PAYMENT_DISPLAY_FIELDS: tuple[str, ...] = (
    "id",
    "type",
    "handler_id",
    "handler_name",
    "brand",
    "last_digits",
    "expiry_month",
    "expiry_year",
    "display",
    "description",
    "billing_address.*",
)


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


@dataclass(frozen=True)
class PaymentDisplay:
    """A parsed allowlist: keys filtered inside (`kept`) and keys kept whole (`whole`)."""

    kept: frozenset[str]
    whole: frozenset[str]

    @classmethod
    def of(cls, fields: Iterable[str] | None = None) -> PaymentDisplay:
        """From `CHECKOUT_PAYMENT_DISPLAY_FIELDS`' names; None: the default list."""
        chosen = DEFAULT_PAYMENT_DISPLAY_FIELDS if fields is None else fields
        names = [field.strip() for field in chosen if field.strip()]
        whole = {_normal(name[:-2]) for name in names if name.endswith(".*")}
        kept = {_normal(name) for name in names if not name.endswith(".*")}
        return cls(frozenset(kept), frozenset(whole))

    def instrument(self, value: Any) -> Any:
        """One instrument as it may be shown: display fields kept, the rest redacted."""
        if not isinstance(value, Mapping):
            return REDACTED  # an instrument that is not an object shows nothing of itself
        return self._inside(value)

    def _inside(self, value: Any) -> Any:
        # A value under a kept key: an object's keys are filtered again, an array's
        # items stand where their parent key does.
        if isinstance(value, Mapping):
            return {key: self._field(str(key), item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._inside(item) for item in value]
        return value

    def _field(self, key: str, value: Any) -> Any:
        name = _normal(key)
        if name in self.whole:
            return value
        return self._inside(value) if name in self.kept else REDACTED

    def document(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A session document (or a command's `updates`) with its instruments redacted."""
        instruments = document.get("payment_instruments")
        if not isinstance(instruments, list):  # nothing to redact: no copy made per event
            return document if isinstance(document, dict) else dict(document)
        return {**document, "payment_instruments": [self.instrument(i) for i in instruments]}

    def anywhere(self, value: Any) -> Any:
        """Any JSON value with every `payment_instruments` in it redacted, at any depth:
        for what is not a known shape (a command, a raw message that parses as JSON)."""
        if isinstance(value, Mapping):
            return {
                key: (
                    [self.instrument(i) for i in item]
                    if key == "payment_instruments" and isinstance(item, list)
                    else self.anywhere(item)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.anywhere(item) for item in value]
        return value


DEFAULT_DISPLAY = PaymentDisplay.of()
