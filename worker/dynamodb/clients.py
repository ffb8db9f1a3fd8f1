"""The DynamoDB clients: botocore for tables and tools, and the store's hot-path client.

`CHECKOUT_DYNAMODB_CLIENT` picks the store's client: `http` (default), the
lightweight client in `worker.dynamodb.http` (a fraction of botocore's CPU per
request), or `botocore`. When the environment asks for something the HTTP client
does not do (a proxy for the endpoint, an `AWS_ENDPOINT_URL*` endpoint, FIPS or
dual-stack endpoints), the store uses botocore and says why once in the log.
"""

from __future__ import annotations

import logging
import os
import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError

from worker.dynamodb.http import DynamoDBHttpClient, default_endpoint
from worker.dynamodb.http.retries import DEFAULT_MAX_ATTEMPTS
from worker.observability.metrics import register_request_counter
from worker.settings import Settings

logger = logging.getLogger("checkout.dynamodb")

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 5


def make_dynamodb_client(settings: Settings) -> Any:
    """A botocore DynamoDB client with its standard retry mode: for tables, scans and
    tools, and the store's client under `CHECKOUT_DYNAMODB_CLIENT=botocore`."""
    session, region = _session_and_region(settings)
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        # The store builds every request itself; validating it again costs CPU per write.
        parameter_validation=False,
        tcp_keepalive=True,
    )
    client = session.client(
        "dynamodb", endpoint_url=settings.dynamodb_endpoint_url, region_name=region, config=config
    )
    register_request_counter(client)  # checkout_dynamodb_requests_total
    return client


def make_store_client(settings: Settings, environ: Mapping[str, str] = os.environ) -> Any:
    """The client the session store reads and writes with (see the module docstring)."""
    if settings.dynamodb_client == "botocore":
        return make_dynamodb_client(settings)
    reason = botocore_needed(settings, environ)
    if reason:
        logger.info("DynamoDB: using botocore instead of the HTTP client: %s", reason)
        return make_dynamodb_client(settings)
    return make_http_client(settings)


def make_http_client(settings: Settings) -> DynamoDBHttpClient:
    """The hot-path client, configured as botocore's: the boto3 session's region and
    credentials, 5 attempts, the same timeouts and CA bundle, the request counter."""
    session, region = _session_and_region(settings)
    if not region:
        raise NoRegionError()
    client = DynamoDBHttpClient(
        session.get_credentials(),
        region,
        endpoint_url=settings.dynamodb_endpoint_url,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        ssl_context=_ssl_context(session),
    )
    register_request_counter(client)
    return client


def botocore_needed(settings: Settings, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the store must use botocore in this environment, or None."""
    session, region = _session_and_region(settings)
    config = session._session.get_config_variable  # botocore's env + config-file lookup
    if not settings.dynamodb_endpoint_url:
        for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
            if environ.get(name):
                return f"{name} is set"
    if config("use_fips_endpoint"):
        return "FIPS endpoints are asked for (use_fips_endpoint)"
    if config("use_dualstack_endpoint"):
        return "dual-stack endpoints are asked for (use_dualstack_endpoint)"
    endpoint = settings.dynamodb_endpoint_url or (default_endpoint(region) if region else "")
    return _proxy_for(endpoint, environ)


def _proxy_for(endpoint: str, environ: Mapping[str, str]) -> str | None:
    parts = urlsplit(endpoint)
    proxies = {
        name.lower().removesuffix("_proxy"): value
        for name, value in environ.items()
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy") and value
    }
    if not parts.hostname or not (proxies.get(parts.scheme) or proxies.get("all")):
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    if _bypassed(parts.hostname, no_proxy):
        return None
    return f"a proxy is set for {parts.scheme}://{parts.hostname}"


def _bypassed(host: str, no_proxy: str) -> bool:
    if no_proxy.strip() == "*":
        return True
    return bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))


def _ssl_context(session: Any) -> ssl.SSLContext:
    """The system's CAs, or the bundle AWS tools are told to use (`AWS_CA_BUNDLE`)."""
    bundle = session._session.get_config_variable("ca_bundle")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def _session_and_region(settings: Settings) -> tuple[Any, str | None]:
    """The boto3 session and its region; us-east-1 for a local endpoint without one."""
    session = boto3.session.Session()
    region = session.region_name or ("us-east-1" if settings.dynamodb_endpoint_url else None)
    return session, region
