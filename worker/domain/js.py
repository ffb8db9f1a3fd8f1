"""JavaScript's arithmetic and time formats, as the seed's TypeScript store uses them.

The seed rounds with `Math.round` (halves up, unlike Python's `round`) and stamps
with `Date.prototype.toISOString`; sessions both sides write must agree to the bit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


def js_round(value: float) -> int:
    """JavaScript `Math.round`: nearest integer, halves towards +infinity (-2.5 -> -2)."""
    floor = math.floor(value)
    # value - floor is exact for doubles, so this does not misround 0.49999999999999994.
    return floor + 1 if value - floor >= 0.5 else floor


def js_iso(moment: datetime) -> str:
    """JavaScript `Date.prototype.toISOString` for a UTC datetime: millisecond precision."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def timestamp_after(previous: str | None, now: datetime) -> str:
    """`now` as the seed formats it, moved past `previous` if a clock lags behind another."""
    stamp = js_iso(now)
    if previous is None or stamp > previous:
        return stamp
    try:
        return js_iso(datetime.fromisoformat(previous) + timedelta(milliseconds=1))
    except ValueError:  # another writer's format: ordering by it is not ours to keep
        return stamp
