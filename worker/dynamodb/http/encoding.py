"""The request body: botocore's keyword arguments as the JSON DynamoDB reads."""

from __future__ import annotations

import base64
import json
from typing import Any


def _json_default(value: Any) -> Any:
    """What JSON cannot say by itself: bytes (base64, as botocore sends blobs) and sets."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)
