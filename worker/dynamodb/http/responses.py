"""DynamoDB's answers as botocore hands them over: a success's dict, an error's `error.response`."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

from botocore.parsers import ResponseParserError

# Every error shape of the DynamoDB model and its members: botocore adds these fields of
# an error body to `error.response` (service-wide, whatever the operation). Checked
# against botocore's model by tests/unit/test_dynamodb_http.py.
_LOWER_MESSAGE = ("message",)
MODELED_ERRORS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "BackupInUseException",
            "BackupNotFoundException",
            "ContinuousBackupsUnavailableException",
            "DuplicateItemException",
            "ExportConflictException",
            "ExportNotFoundException",
            "GlobalTableAlreadyExistsException",
            "GlobalTableNotFoundException",
            "ImportConflictException",
            "ImportNotFoundException",
            "IndexNotFoundException",
            "InternalServerError",
            "InvalidExportTimeException",
            "InvalidRestoreTimeException",
            "ItemCollectionSizeLimitExceededException",
            "LimitExceededException",
            "PointInTimeRecoveryUnavailableException",
            "PolicyNotFoundException",
            "ReplicaAlreadyExistsException",
            "ReplicaNotFoundException",
            "ReplicatedWriteConflictException",
            "ResourceInUseException",
            "ResourceNotFoundException",
            "TableAlreadyExistsException",
            "TableInUseException",
            "TableNotFoundException",
            "TransactionConflictException",
        ),
        _LOWER_MESSAGE,
    ),
    "ConditionalCheckFailedException": ("message", "Item"),
    "IdempotentParameterMismatchException": ("Message",),
    "ProvisionedThroughputExceededException": ("message", "ThrottlingReasons"),
    "RequestLimitExceeded": ("message", "ThrottlingReasons"),
    "ThrottlingException": ("message", "throttlingReasons"),
    "TransactionCanceledException": ("Message", "CancellationReasons"),
    "TransactionInProgressException": ("Message",),
}


def parse_error(status: int, headers: dict[str, str], data: bytes) -> dict[str, Any]:
    """`error.response` as botocore builds it for a DynamoDB error answer.

    `headers` has lower-case names. The body's fields that the error's shape in the
    DynamoDB model declares (`Item`, `CancellationReasons`, `message`...) are added at
    the top level, as botocore adds them.
    """
    metadata: dict[str, Any] = {}
    stripped = data.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        # botocore's generic error: no protocol error in the body.
        error = {"Code": str(status), "Message": http.client.responses.get(status, "")}
        body: Any = {}
    else:
        body = _error_body(data)
        code = body.get("__type")
        code = str(status) if code is None else str(code)
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        error = {"Message": body.get("message", body.get("Message", "")), "Code": code}
        if "x-amzn-requestid" in headers:
            metadata["RequestId"] = headers["x-amzn-requestid"]
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = headers
    response: dict[str, Any] = {"Error": error, "ResponseMetadata": metadata}
    for member in MODELED_ERRORS.get(error["Code"], ()):
        value = body.get(member)
        if value is not None:
            response[member] = value
    return response


def _error_body(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    text = data.decode("utf-8")
    try:
        body = json.loads(text)
    except ValueError:
        return {"message": text}
    if not isinstance(body, dict):
        return {"message": text}
    if '"B' in text:
        _decode_binary(body)
    return body


def parse_success(data: bytes) -> dict[str, Any]:
    """The answer to a request that succeeded. A body that is not a JSON object raises
    `ResponseParserError` (not a BotoCoreError: to the store, a failure that is no outage):
    botocore fails on JSON of the wrong shape too, and takes text that is not JSON for an
    empty answer, which would read "no item" or "written"."""
    if not data:
        return {}
    try:
        parsed = json.loads(data)
    except ValueError as error:
        raise ResponseParserError(f"DynamoDB answered a body that is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ResponseParserError(f"DynamoDB answered JSON that is not an object: {data[:80]!r}")
    if b'"B"' in data or b'"BS"' in data:
        _decode_binary(parsed)
    return parsed


def response_metadata(status: int, headers: dict[str, str], attempt: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if "x-amzn-requestid" in headers:
        metadata["RequestId"] = headers["x-amzn-requestid"]
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = headers
    metadata["RetryAttempts"] = attempt - 1
    return metadata


def _decode_binary(node: Any) -> None:
    """Decode `{"B": base64}` and `{"BS": [base64, ...]}` attribute values in place."""
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "B" and isinstance(value, str):
                node["B"] = base64.b64decode(value)
                return
            if key == "BS" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                node["BS"] = [base64.b64decode(v) for v in value]
                return
        for value in node.values():
            if isinstance(value, dict | list):
                _decode_binary(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict | list):
                _decode_binary(value)
