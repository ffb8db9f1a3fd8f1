"""The store's hot-path DynamoDB client: see worker.dynamodb_http.client."""

from worker.dynamodb_http.client import (
    DEFAULT_MAX_ATTEMPTS,
    MODELED_ERRORS,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSIENT_STATUSES,
    DynamoDBHttpClient,
    RequestListener,
    default_endpoint,
    make_hot_path_client,
    parse_error,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "MODELED_ERRORS",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "TRANSIENT_STATUSES",
    "DynamoDBHttpClient",
    "RequestListener",
    "default_endpoint",
    "make_hot_path_client",
    "parse_error",
]
