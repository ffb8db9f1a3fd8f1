"""Condition expressions of the store's writes, each piece named for the race it closes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.dynamodb.items import SEED_DECISION_INPUTS, TTL, VERSION, ItemToken, to_attribute

# Clocks of the seed's hosts and ours may differ by this much; beyond it a seed write
# cannot carry an `updated_at` as old as one we read (see `_seed_could_restamp`).
MAX_CLOCK_SKEW_SECONDS = 60


class Expression:
    """Placeholders for an expression: DynamoDB reserves words like `status` and `ttl`."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        for existing, name in self.names.items():
            if name == attribute:
                return existing
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        return self.raw_value(to_attribute(value))

    def raw_value(self, attribute: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = attribute
        return placeholder


def unchanged_since(expression: Expression, token: ItemToken, now: int) -> str:
    """The item is still the one we read, and still alive.

    `version` catches this pipeline's writers. `updated_at` catches the seed's, which
    set it on every write but copy `version` through unchanged. A seed write stamped
    in the very millisecond we read (clock skew, or our stamps running ahead in a
    burst) is caught only by comparing what it can change, so a recently written
    item is also compared on every decision input.
    """
    version = expression.name(VERSION)
    parts = [
        f"attribute_not_exists({version})"
        if token.version is None
        else f"{version} = {expression.value(token.version)}",
        f"{expression.name('updated_at')} = {expression.value(token.updated_at)}",
    ]
    if _seed_could_restamp(token):
        parts += [
            _stored_as(expression, name, token.inputs.get(name)) for name in SEED_DECISION_INPUTS
        ]
    ttl = expression.name(TTL)
    alive = f"{ttl} > {expression.value(now)}"
    parts.append(alive if token.has_ttl else f"(attribute_not_exists({ttl}) OR {alive})")
    return " AND ".join(parts)


def _seed_could_restamp(token: ItemToken) -> bool:
    """Whether a later seed write could carry the same `updated_at` as the one we read.

    Only if the stamp is within the clock skew we allow between hosts of our load time.
    """
    try:
        written = datetime.fromisoformat(token.updated_at or "").timestamp()
    except ValueError:
        return True  # not a stamp we can reason about: compare everything
    return token.loaded_at - written <= MAX_CLOCK_SKEW_SECONDS


def _stored_as(expression: Expression, name: str, stored: Any) -> str:
    placeholder = expression.name(name)
    if stored is None:
        return f"attribute_not_exists({placeholder})"
    return f"{placeholder} = {expression.raw_value(stored)}"
