"""A lightweight DynamoDB JSON-protocol client for the worker's hot path.

Why not botocore: a botocore low-level client spends about 1.7 ms of CPU per DynamoDB
request on our 2-core machine (serializing and validating against the service model,
an event system with dozens of handlers, urllib3, SigV4 through `AWSRequest`, parsing
the response against the output shape), while a command's whole CPU budget is 1.5 ms.
`python -m benchmarks.client_cpu` measures both clients side by side (this process's
CPU, conditional UpdateItem shaped like the store's, median of 3 rounds of 1,000 calls
each); its run here, on a machine shared with other work:

    setup                                  botocore    this client
    moto, a new connection per request     2,203 us      517 us    4.3x less
    moto behind a keep-alive relay         2,083 us      400 us    5.2x less
    instant answers (the client's own)     1,678 us      149 us   11.2x less

(Both clients pay several hundred microseconds more per request when each answer takes
milliseconds to come: the process wakes up cold. The last row leaves that out.)

This client speaks the three operations the session store uses, `get_item`, `put_item`
and `update_item`, with botocore's keyword arguments (attribute
values in wire form, `{"S": "x"}`, `{"N": "1"}`) and its return shape (the response
JSON as a dict plus `ResponseMetadata`, `B` values and `BS` members decoded to bytes).
Errors are `botocore.exceptions.ClientError` with the `response` botocore would give
(`Error`, `ResponseMetadata` and the error shape's fields, e.g. `Item`); a request
that cannot get through is a `BotoCoreError` subclass. Retries follow botocore's
"standard" mode (its throttling and transient codes, 5xx, connection errors,
DynamoDB's `x-amz-crc32`, its backoff scales and retry quota). Requests are signed
with SigV4 from the boto3 session's credentials.

What it deliberately does not do, compared with botocore:

- No parameter validation or model-driven serialization: the request dict is sent as
  JSON as given. `bytes` anywhere in it are base64-encoded (JSON's `default` hook, so
  this costs nothing when there are none), sets become lists; a `str` under `B` is
  sent as it is (as already base64), where botocore would encode its UTF-8 bytes.
- No output-shape parsing: a success returns every field of the response JSON, also
  ones the model does not know (botocore drops those, and null values).
- Only the three operations; no `client.exceptions.*` classes (catch `ClientError` and
  read `error.response["Error"]["Code"]`), no event system, paginators or waiters.
- Endpoint: the given URL or `https://dynamodb.<region>.amazonaws.com(.cn)`; not
  `AWS_ENDPOINT_URL*`, config-file endpoints, FIPS/dual-stack or account-id endpoints
  (`worker.dynamodb.clients` falls back to botocore when those are asked for).
- A CRC32 mismatch still there after the last attempt raises `ChecksumError` (botocore's
  standard mode would hand back the response it could not verify).
- A 2xx answer whose body is not a JSON object raises botocore's `ResponseParserError`
  (botocore fails on JSON of another shape too, but reads text that is not JSON as an
  empty answer).
- No proxies (the same fallback), no client-side rate limiting ("adaptive" mode), no gzip.

One persistent HTTP/1.1 connection per client (`http.client` connects it, with the
default SSL context for https), reopened when the server closes it or it went stale;
requests are written and answers read here (`http.client`'s answer parsing alone costs
about 50 us). Requests on one client are serialized by a lock (each attempt holds it
for its round trip), so sharing a client between threads is safe but not concurrent:
use one per process (or per thread). A forked child drops the connection it inherited.

The package, one concern a module:

- `client`: `DynamoDBHttpClient` (the operations, attempts and retries, the connection),
  `default_endpoint`. `worker.dynamodb.clients` builds it from the settings.
- `retries`: botocore's standard retry mode (which answers are retried, quota, backoff).
- `signing`: SigV4, the request's headers as botocore signs them.
- `encoding`: the request body as JSON.
- `responses`: answers parsed as botocore parses them (`parse_error`, `MODELED_ERRORS`).
- `wire`: the HTTP/1.1 connection and the reading of its responses.
- `fork`: a forked child's clients forget the connections they inherited.
"""

from worker.dynamodb.http.client import (
    DynamoDBHttpClient,
    RequestListener,
    default_endpoint,
)
from worker.dynamodb.http.responses import MODELED_ERRORS, parse_error
from worker.dynamodb.http.retries import (
    DEFAULT_MAX_ATTEMPTS,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSIENT_STATUSES,
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
    "parse_error",
]
