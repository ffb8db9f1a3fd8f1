"""Which client the store gets: `CHECKOUT_DYNAMODB_CLIENT`, and botocore where the
environment asks for what the HTTP client does not do."""

from __future__ import annotations

import logging

import pytest

from worker.dynamodb.clients import botocore_needed, make_store_client
from worker.dynamodb.http import DynamoDBHttpClient
from worker.settings import Settings

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_default_is_the_http_client() -> None:
    client = make_store_client(settings(dynamodb_endpoint_url=LOCAL), environ={})
    assert isinstance(client, DynamoDBHttpClient)
    assert client.endpoint_url == LOCAL


def test_botocore_when_asked() -> None:
    client = make_store_client(
        settings(dynamodb_endpoint_url=LOCAL, dynamodb_client="botocore"), environ={}
    )
    assert client.meta.service_model.service_name == "dynamodb"


def test_an_unknown_client_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dynamodb_client"):
        settings(dynamodb_client="aiohttp")


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"AWS_ENDPOINT_URL": "http://localhost:4566"}, "AWS_ENDPOINT_URL is set"),
        ({"AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:8000"}, "AWS_ENDPOINT_URL_DYNAMODB is set"),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "a proxy is set for https://dynamodb.eu-west"),
        ({"all_proxy": "http://proxy:3128"}, "a proxy is set"),
    ],
)
def test_the_environment_can_call_for_botocore(environ: dict, reason: str, caplog) -> None:
    why = botocore_needed(settings(), environ) or ""
    assert reason in why
    with caplog.at_level(logging.INFO, logger="checkout.dynamodb"):
        client = make_store_client(settings(), environ=environ)
    assert not isinstance(client, DynamoDBHttpClient)
    assert [r.getMessage() for r in caplog.records] == [
        f"DynamoDB: using botocore instead of the HTTP client: {why}"
    ]


@pytest.mark.parametrize("name", ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"])
def test_fips_and_dual_stack_call_for_botocore(name: str, monkeypatch) -> None:
    monkeypatch.setenv(name, "true")
    assert botocore_needed(settings(), {}) is not None


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "127.0.0.1,localhost"},
        {"HTTP_PROXY": "http://proxy:3128", "no_proxy": "*"},
        {"HTTPS_PROXY": "http://proxy:3128"},  # the endpoint is http: only HTTP_PROXY counts
        {"AWS_ENDPOINT_URL": "http://elsewhere"},  # CHECKOUT_DYNAMODB_ENDPOINT_URL wins
    ],
)
def test_what_does_not_concern_the_endpoint_keeps_the_http_client(environ: dict) -> None:
    assert botocore_needed(settings(dynamodb_endpoint_url=LOCAL), environ) is None


def test_the_http_client_honours_aws_ca_bundle(monkeypatch) -> None:
    from worker.dynamodb import clients

    asked: list[object] = []
    real = clients.ssl.create_default_context

    def recording(cafile: object = None) -> object:
        asked.append(cafile)
        return real()

    monkeypatch.setattr(clients.ssl, "create_default_context", recording)
    monkeypatch.setenv("AWS_CA_BUNDLE", "/srv/corporate-ca.pem")
    client = make_store_client(settings(), environ={})  # https://dynamodb.eu-west-1...
    assert isinstance(client, DynamoDBHttpClient)
    assert asked == ["/srv/corporate-ca.pem"]
