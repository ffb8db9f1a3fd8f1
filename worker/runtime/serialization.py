"""The content type of the pipeline's own messages: JSON read exactly as it was written.

kombu's `json` serializer turns every object whose keys are exactly `__type__` and
`__value__` into a registered Python type, or fails on an unknown one: a command whose
open fields hold such an object (valid for every producer) would reach the service as
something else, or not at all. Messages the delivery script writes carry
`CONTENT_TYPE`, decoded here with the standard library's `json`, which has no such
markers: the worker reads the command text the producer validated, with the same rules.
Messages of other clients keep `application/json` and kombu's decoder.
"""

from __future__ import annotations

import json
from typing import Any

from kombu.serialization import register

SERIALIZER = "checkout-json"
CONTENT_TYPE = "application/vnd.checkout.command+json"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def register_serializer() -> None:
    """Make `CONTENT_TYPE` decodable in this process (idempotent)."""
    register(SERIALIZER, _dumps, json.loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
