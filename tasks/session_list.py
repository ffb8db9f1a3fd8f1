"""`checkout sessions`: the sessions a `--where` selects, as short rows.

The selection is bulk-update's (`tasks.bulk_select`: the same keys, the same parallel
Scan, seed-made and pipeline-made items alike); the Scan projects only the attributes a
row shows. A row names a session by its ids, status, times and amounts: never its
payment instruments or addresses, and the buyer's email only masked (`m***@example.com`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tasks.bulk_select import Where, parallel_scan, scan_request
from worker.domain.js import js_iso
from worker.dynamodb.items import SESSION_KEY, TTL, VERSION, from_item

# What a row reads, as DynamoDB document paths (`totals.total`: only that amount).
LISTED_PATHS = (
    "status",
    VERSION,
    "created_at",
    "updated_at",
    "currency",
    TTL,
    "totals.total",
    "buyer.email",
)
COLUMNS = ("id", "status", "version", "updated_at", "total", "currency", "buyer", "expires_at")


@dataclass(frozen=True)
class SessionRow:
    """One listed session. `version` is 1 for a session only the seed wrote (it stores
    none), as `get` and `expected_version` read it."""

    id: str
    status: Any
    version: Any
    created_at: Any
    updated_at: Any
    currency: Any
    total: Any
    buyer_email: str | None  # masked
    expires_at: str | None
    expired: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def cells(self) -> tuple[str, ...]:
        values = (self.id, self.status, self.version, self.updated_at, self.total)
        tail = (self.currency, self.buyer_email, self.expires_at)
        return tuple("-" if value is None else str(value) for value in (*values, *tail))


def listing_request(table: str, where: Where, segment: int, segments: int) -> dict[str, Any]:
    """bulk-update's Scan of one segment, projecting what a row shows as well."""
    request = scan_request(table, where, segment, segments)
    names = request["ExpressionAttributeNames"]
    paths = []
    for n, path in enumerate(LISTED_PATHS):
        parts = []
        for m, part in enumerate(path.split(".")):
            names[f"#l{n}_{m}"] = part  # own placeholders: never clash with the filter's
            parts.append(f"#l{n}_{m}")
        paths.append(".".join(parts))
    request["ProjectionExpression"] += ", " + ", ".join(paths)
    return request


def list_sessions(
    client: Any,
    table: str,
    where: Where,
    *,
    now: int,
    include_expired: bool = False,
    segments: int = 4,
) -> Iterator[SessionRow]:
    """The rows of the sessions `where` selects, in Scan order; expired ones (ttl at or
    before `now`, deleted or not yet) only with `include_expired`."""
    items = parallel_scan(
        client, lambda segment: listing_request(table, where, segment, segments), segments
    )
    for item in items:
        values = from_item(item)
        if not where.matches_line_items(values.get("line_items")):
            continue
        row = session_row(values, now=now)
        if include_expired or not row.expired:
            yield row


def session_row(values: dict[str, Any], *, now: int) -> SessionRow:
    """A row from the projected attributes, whatever their types (a corrupt item is
    listed as stored: this is how an operator finds it)."""
    ttl = values.get(TTL)
    totals = values.get("totals")
    buyer = values.get("buyer")
    return SessionRow(
        id=values[SESSION_KEY],
        status=values.get("status"),
        version=values.get(VERSION, 1),
        created_at=values.get("created_at"),
        updated_at=values.get("updated_at"),
        currency=values.get("currency"),
        total=totals.get("total") if isinstance(totals, dict) else None,
        buyer_email=mask_email(buyer.get("email")) if isinstance(buyer, dict) else None,
        expires_at=_instant(ttl) if isinstance(ttl, int) else None,
        expired=isinstance(ttl, int) and ttl <= now,
    )


def _instant(epoch_seconds: int) -> str | None:
    try:
        return js_iso(datetime.fromtimestamp(epoch_seconds, UTC))
    except (OverflowError, ValueError, OSError):  # past year 9999: no ISO form
        return None


def mask_email(email: Any) -> str | None:
    """`mary@example.com` -> `m***@example.com`: enough to recognise, not to contact."""
    if not isinstance(email, str) or not email:
        return None
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"
