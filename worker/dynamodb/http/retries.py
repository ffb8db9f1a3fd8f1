"""botocore's standard retry mode: which answers are retried, the retry quota, the backoff."""

from __future__ import annotations

import random

from worker.dynamodb.http.responses import MODELED_ERRORS

# The codes, statuses and numbers of botocore/retries/standard.py and special.py.

DEFAULT_MAX_ATTEMPTS = 5  # what make_dynamodb_client configures
THROTTLING_CODES = frozenset(
    {  # ThrottledRetryableChecker._THROTTLED_ERROR_CODES
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# TransientRetryableChecker, plus DynamoDB's errors modeled as retryable (not throttling).
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ReplicatedWriteConflictException",
    }
)
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_STATUS = 429  # throttling when the code is not a modeled error
MAX_BACKOFF_SECONDS = 20.0
THROTTLING_BASE_SECONDS = 1.0
TRANSIENT_BASE_SECONDS = 0.025  # botocore's non-throttling scale for DynamoDB
RETRY_AFTER_MAX_ADDITIONAL = 5.0
RETRY_QUOTA = 500
RETRY_COST = 14
THROTTLING_RETRY_COST = 5
NO_RETRY_INCREMENT = 1


def classify(status: int, code: str) -> tuple[bool, bool]:
    """Whether an error answer is throttling, and whether it is retryable at all."""
    throttling = code in THROTTLING_CODES or (
        status == THROTTLING_STATUS and code not in MODELED_ERRORS
    )
    retryable = throttling or code in TRANSIENT_CODES or status in TRANSIENT_STATUSES
    return throttling, retryable


class RetryPolicy:
    """One client's attempts, retry quota and backoff, as botocore's standard mode keeps them.

    `backoff_scale` multiplies the backoff bases (1 s for throttling, 25 ms for other
    retryable failures); the backoff is capped at `max_backoff`. `random` draws the
    jitter (tests replace it).
    """

    def __init__(self, max_attempts: int, backoff_scale: float, max_backoff: float) -> None:
        self.max_attempts = max(1, max_attempts)
        self.backoff_scale = backoff_scale
        self.max_backoff = max_backoff
        self.quota = RETRY_QUOTA
        self.random = random.random

    def acquire(self, attempt: int, cost: int) -> int:
        """The quota taken for another attempt, or 0: no more attempts."""
        if attempt >= self.max_attempts or cost > self.quota:
            return 0
        self.quota -= cost
        return cost

    def release(self, amount: int) -> None:
        if self.quota < RETRY_QUOTA:
            self.quota = min(RETRY_QUOTA, self.quota + amount)

    def delay(self, attempt: int, base: float, headers: dict[str, str] | None) -> float:
        """Exponential backoff with full jitter, as botocore's `ExponentialBackoff`."""
        delay = self.random() * min(
            base * self.backoff_scale * 2 ** (attempt - 1), self.max_backoff
        )
        retry_after = headers.get("x-amz-retry-after") if headers else None
        if retry_after is not None:
            try:
                wanted = int(retry_after) / 1000.0
            except ValueError:
                return delay
            if wanted >= 0:
                return max(delay, min(wanted, RETRY_AFTER_MAX_ADDITIONAL + delay))
        return delay
