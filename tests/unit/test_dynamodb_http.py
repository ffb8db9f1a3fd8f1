"""worker.dynamodb.http without DynamoDB: SigV4 against botocore's signer, error parsing
against botocore's parser, the retry tables against botocore's, and the HTTP behaviour
(CRC32, 5xx, stale keep-alive, framing) against a scripted HTTP server on a real socket
in this process.
"""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
)
from botocore.parsers import ResponseParserError, create_parser
from botocore.retries import standard
from botocore.session import get_session

from worker.dynamodb.http import (
    MODELED_ERRORS,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSIENT_STATUSES,
    DynamoDBHttpClient,
    default_endpoint,
    parse_error,
    signing,
)

pytestmark = pytest.mark.unit

FIXED = datetime.datetime(2026, 3, 1, 12, 34, 56)
FIXED_EPOCH = FIXED.replace(tzinfo=datetime.UTC).timestamp()
BODY = json.dumps({"TableName": "t", "Key": {"k": {"S": "a"}}}).encode()
TARGET = "DynamoDB_20120810.GetItem"


@pytest.fixture(scope="module")
def dynamodb_model() -> Any:
    return get_session().get_service_model("dynamodb")


def client_for(url: str, token: str | None = None, **options: Any) -> DynamoDBHttpClient:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    return DynamoDBHttpClient(credentials, "eu-west-1", endpoint_url=url, **options)


# ─── SigV4 ───


def botocore_authorization(
    url: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> AWSRequest:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: FIXED)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    request = AWSRequest(
        method="POST",
        url=url.rstrip("/") + "/",
        data=BODY,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET},
    )
    SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)
    return request


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4566",
        "https://dynamodb.eu-west-1.amazonaws.com",
        "https://dynamodb.eu-west-1.amazonaws.com:443",
        "http://localhost:8000/prefix",
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaDEXAMPLETOKEN+/="])
def test_the_signature_is_botocores(url: str, token: str | None, monkeypatch) -> None:
    expected = botocore_authorization(url, token, monkeypatch)

    headers = client_for(url, token)._signer.headers(TARGET, BODY, FIXED_EPOCH)

    assert headers["Authorization"] == expected.headers["Authorization"]
    assert headers["X-Amz-Date"] == expected.headers["X-Amz-Date"]
    assert headers.get("X-Amz-Security-Token") == expected.headers.get("X-Amz-Security-Token")


def test_the_signing_key_is_derived_once_per_secret_and_day(monkeypatch) -> None:
    client = client_for("http://127.0.0.1:4566")
    derived = []
    original = signing.hmac.digest

    def counting(key: bytes, message: bytes, digest: str) -> bytes:
        if key.startswith(b"AWS4"):
            derived.append(message)
        return original(key, message, digest)

    monkeypatch.setattr(signing.hmac, "digest", counting)
    for offset in (0, 1, 3600):
        client._signer.headers(TARGET, BODY, FIXED_EPOCH + offset)
    assert derived == [b"20260301"]

    client._signer.headers(TARGET, BODY, FIXED_EPOCH + 86_400)  # the next day
    client._signer.credentials = Credentials("AKIDEXAMPLE", "rotated-secret")
    client._signer.headers(TARGET, BODY, FIXED_EPOCH + 86_400)
    assert derived == [b"20260301", b"20260302", b"20260302"]


def test_refreshable_credentials_are_frozen_per_request() -> None:
    class Rotating:
        def __init__(self) -> None:
            self.calls = 0

        def get_frozen_credentials(self) -> Any:
            self.calls += 1
            return Credentials(f"AKID{self.calls}", "secret", "token").get_frozen_credentials()

    rotating = Rotating()
    client = DynamoDBHttpClient(rotating, "eu-west-1", endpoint_url="http://127.0.0.1:1")
    first = client._signer.headers(TARGET, BODY, FIXED_EPOCH)
    second = client._signer.headers(TARGET, BODY, FIXED_EPOCH)
    assert "Credential=AKID1/" in first["Authorization"]
    assert "Credential=AKID2/" in second["Authorization"]


def test_no_credentials_is_botocores_error() -> None:
    client = DynamoDBHttpClient(None, "eu-west-1", endpoint_url="http://127.0.0.1:1")
    with pytest.raises(NoCredentialsError):
        client.get_item(TableName="t", Key={"k": {"S": "a"}})


def test_the_default_endpoint_is_regional() -> None:
    assert default_endpoint("eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com"
    assert default_endpoint("cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    client = DynamoDBHttpClient(Credentials("a", "b"), "us-east-2")
    assert client.endpoint_url == "https://dynamodb.us-east-2.amazonaws.com"


# ─── Error answers, as botocore parses them ───


def botocore_error(model: Any, operation: str, status: int, headers: dict, body: bytes) -> dict:
    """What botocore's endpoint hands to ClientError (before its retry metadata)."""
    parser = create_parser("json")
    response = {"status_code": status, "headers": headers, "body": body}
    parsed = parser.parse(response, model.operation_model(operation).output_shape)
    shape = model.shape_for_error_code(parsed["Error"]["Code"])
    if shape is not None:
        parsed.update(parser.parse(response, shape))
    return parsed


ITEM = {"pk": {"S": "a"}, "blob": {"B": base64.b64encode(b"\x00\xff").decode()}, "n": {"N": "1"}}
ERRORS = {
    "conditional": (
        "PutItem",
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": ITEM,
        },
    ),
    "canceled": (
        "TransactWriteItems",
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled [ConditionalCheckFailed, None]",
            "CancellationReasons": [
                {"Code": "ConditionalCheckFailed", "Message": "failed", "Item": ITEM},
                {"Code": "None"},
            ],
        },
    ),
    "throttled": (
        "UpdateItem",
        400,
        {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow"},
    ),
    "unmodeled": (
        "UpdateItem",
        400,
        {"__type": "com.amazon.coral.validate#ValidationException", "message": "bad"},
    ),
    "message-case": (
        "GetItem",
        400,
        {"__type": "ResourceNotFoundException", "Message": "Requested resource not found"},
    ),
    "json-500": (
        "GetItem",
        500,
        {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "oops"},
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_responses_are_botocores(case: str, dynamodb_model) -> None:
    operation, status, body = ERRORS[case]
    data = json.dumps(body).encode()
    headers = {"x-amzn-requestid": "REQ", "content-type": "application/x-amz-json-1.0"}

    ours = parse_error(status, dict(headers), data)

    assert ours == botocore_error(dynamodb_model, operation, status, headers, data)


@pytest.mark.parametrize(
    ("status", "data"),
    [
        (503, b""),
        (502, b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>"),
        (400, b"not json"),
        (413, b""),
    ],
)
def test_errors_without_a_protocol_body_are_botocores(status, data, dynamodb_model) -> None:
    headers = {"x-amzn-requestid": "REQ"}
    expected = botocore_error(dynamodb_model, "GetItem", status, headers, data)
    assert parse_error(status, dict(headers), data) == expected


def test_binary_values_in_an_error_are_decoded() -> None:
    _, status, body = ERRORS["canceled"]
    response = parse_error(status, {}, json.dumps(body).encode())
    assert response["CancellationReasons"][0]["Item"]["blob"] == {"B": b"\x00\xff"}


def test_the_modeled_errors_are_the_dynamodb_models(dynamodb_model) -> None:
    modeled = {shape.name: tuple(shape.members) for shape in dynamodb_model.error_shapes}
    assert modeled == MODELED_ERRORS


def test_the_retried_codes_are_botocores_standard_modes(dynamodb_model) -> None:
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) == THROTTLING_CODES
    assert set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES) <= TRANSIENT_CODES
    assert set(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES) == TRANSIENT_STATUSES
    retryable = {s.name for s in dynamodb_model.error_shapes if s.metadata.get("retryable")}
    assert retryable <= TRANSIENT_CODES | THROTTLING_CODES


def test_the_backoff_is_botocores() -> None:
    client = client_for("http://127.0.0.1:1")
    client._retries.random = lambda: 1.0
    assert [client._retries.delay(n, 1.0, None) for n in (1, 2, 3, 5, 6)] == [1, 2, 4, 16, 20]
    assert client._retries.delay(1, 0.025, None) == 0.025
    assert client._retries.delay(2, 0.025, {"x-amz-retry-after": "1500"}) == 1.5
    assert client._retries.delay(1, 0.025, {"x-amz-retry-after": "60000"}) == 5.025
    scaled = client_for("http://127.0.0.1:1", backoff_scale=0.001)
    scaled._retries.random = lambda: 1.0
    assert scaled._retries.delay(3, 1.0, None) == pytest.approx(0.004)


# ─── HTTP, against a scripted server ───


def answer(
    status: int = 200,
    body: bytes = b"{}",
    *,
    crc: int | None = None,
    close: bool = True,
    chunked: bool = False,
    extra: str = "",
) -> bytes:
    checksum = zlib.crc32(body) if crc is None else crc
    head = f"HTTP/1.1 {status} X\r\nx-amzn-RequestId: R\r\nx-amz-crc32: {checksum}\r\n{extra}"
    if close:
        head += "Connection: close\r\n"
    if chunked:
        middle = len(body) // 2
        parts = [body[:middle], body[middle:]]
        payload = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts if p)
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + payload + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class ScriptedServer:
    """Answers each request with the next scripted answer. An answer without
    `Connection: close` keeps the connection for the next request, unless
    `drop_after_answer` is set: then the server closes it anyway, as a server
    closing an idle keep-alive connection does."""

    def __init__(
        self,
        answers: list[bytes],
        *,
        drop_after_answer: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answers = list(answers)
        self.tls = tls
        self.handshake_failures = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0
        self.drop_after_answer = drop_after_answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    connection = self.tls.wrap_socket(connection, server_side=True)
                except (ssl.SSLError, OSError):
                    self.handshake_failures += 1
                    connection.close()
                    continue
            # The reader holds the socket open: both are closed when the block ends.
            with connection, connection.makefile("rb") as reader:
                while self.answers:
                    request = _read_request(reader)
                    if request is None:
                        break
                    self.requests.append(request)
                    reply = self.answers.pop(0)
                    connection.sendall(reply)
                    if b"Connection: close" in reply or self.drop_after_answer:
                        break

    def close(self) -> None:
        self._listener.close()


def _read_request(reader: Any) -> tuple[str, dict[str, str], bytes] | None:
    line = reader.readline()
    if not line:
        return None
    headers = {}
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return line.decode().strip(), headers, body


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def start(answers: list[bytes], **options: Any) -> ScriptedServer:
        servers.append(ScriptedServer(answers, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def fast_client(url: str, **options: Any) -> tuple[DynamoDBHttpClient, list[str]]:
    client = client_for(url, backoff_scale=0.0, **options)
    attempts: list[str] = []
    client.add_request_listener(attempts.append)
    return client, attempts


def test_a_crc32_mismatch_is_retried(serve) -> None:
    item = b'{"Item": {"pk": {"S": "a"}}}'
    server = serve([answer(body=item, crc=zlib.crc32(item) ^ 1), answer(body=item)])
    client, attempts = fast_client(server.url)

    response = client.get_item(TableName="t", Key={"pk": {"S": "a"}})

    assert response["Item"] == {"pk": {"S": "a"}}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert attempts == ["GetItem", "GetItem"]


def test_a_crc32_mismatch_on_every_attempt_is_a_checksum_error(serve) -> None:
    server = serve([answer(body=b"{}", crc=1)] * 5)
    client, attempts = fast_client(server.url)

    with pytest.raises(ChecksumError):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert len(attempts) == 5


def test_a_5xx_is_retried_then_raised_with_botocores_metadata(serve) -> None:
    server = serve([answer(503, b"")] * 5)
    client, attempts = fast_client(server.url)

    with pytest.raises(ClientError) as raised:
        client.put_item(TableName="t", Item={"pk": {"S": "a"}})

    assert attempts == ["PutItem"] * 5
    response = raised.value.response
    assert response["Error"] == {"Code": "503", "Message": "Service Unavailable"}
    assert response["ResponseMetadata"]["RetryAttempts"] == 4
    assert response["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert "reached max retries: 4" in str(raised.value)


def test_a_non_retryable_error_is_raised_at_once(serve) -> None:
    body = json.dumps(ERRORS["conditional"][2]).encode()
    server = serve([answer(400, body)])
    client, attempts = fast_client(server.url)

    with pytest.raises(ClientError) as raised:
        client.put_item(TableName="t", Item={"pk": {"S": "a"}})

    assert attempts == ["PutItem"]
    assert raised.value.response["Item"]["blob"] == {"B": b"\x00\xff"}
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


@pytest.mark.parametrize("body", [b"[]", b"<html>oops</html>"])
def test_a_success_that_is_not_a_json_object_is_a_parser_error(serve, body) -> None:
    server = serve([answer(body=body)])
    client, attempts = fast_client(server.url)
    with pytest.raises(ResponseParserError):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert attempts == ["GetItem"]


def test_a_kept_alive_connection_is_reused(serve) -> None:
    server = serve([answer(close=False)] * 3)
    client, _ = fast_client(server.url)
    for _ in range(3):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert server.connections == 1


def test_a_stale_kept_alive_connection_is_reopened_without_a_retry(serve) -> None:
    server = serve([answer(close=False)] * 3, drop_after_answer=True)
    client, attempts = fast_client(server.url)
    for _ in range(3):
        response = client.get_item(TableName="t", Key={"pk": {"S": "a"}})
        assert response["ResponseMetadata"]["RetryAttempts"] == 0
        threading.Event().wait(0.05)  # the server's close reaches us
    assert server.connections == 3
    assert len(attempts) == 3


def test_a_connection_closed_before_an_answer_is_retried_then_raised(serve) -> None:
    # Each answer is cut short: the server closes mid-body.
    cut = answer(body=b'{"Item": {}}')[:-4]
    server = serve([cut] * 5)
    client, attempts = fast_client(server.url)
    with pytest.raises(ConnectionClosedError):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert len(attempts) == 5


def test_chunked_answers_and_folded_headers_are_read(serve) -> None:
    item = b'{"Item": {"pk": {"S": "chunked"}}}'
    folded = "X-Folded: first\r\n  second\r\n"
    server = serve([answer(body=item, chunked=True, close=False, extra=folded), answer()])
    client, _ = fast_client(server.url)

    response = client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert response["Item"] == {"pk": {"S": "chunked"}}
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-folded"] == "first second"
    assert client.get_item(TableName="t", Key={"pk": {"S": "a"}})["ResponseMetadata"]
    assert server.connections == 1


def test_the_request_is_signed_json_with_bytes_in_base64(serve) -> None:
    server = serve([answer()])
    client, _ = fast_client(server.url)

    client.put_item(
        TableName="t",
        Item={"pk": {"S": "a"}, "b": {"B": b"\x00\x01"}, "bs": {"BS": [b"x", bytearray(b"y")]}},
    )

    line, headers, body = server.requests[0]
    assert line == "POST / HTTP/1.1"
    assert headers["x-amz-target"] == "DynamoDB_20120810.PutItem"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert json.loads(body)["Item"] == {
        "pk": {"S": "a"},
        "b": {"B": "AAE="},
        "bs": {"BS": ["eA==", "eQ=="]},
    }


# ─── HTTPS ───


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def server_tls(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_https_keeps_one_verified_connection(serve, certificate) -> None:
    server = serve([answer(close=False)] * 3, tls=server_tls(certificate))
    trusting = ssl.create_default_context(cafile=certificate[0])
    client, attempts = fast_client(server.url, ssl_context=trusting)

    for _ in range(3):
        response = client.get_item(TableName="t", Key={"pk": {"S": "a"}})
        assert response["ResponseMetadata"]["RetryAttempts"] == 0

    assert server.connections == 1 and len(attempts) == 3
    assert server.requests[0][1]["host"] == server.url.removeprefix("https://")


def test_https_with_an_untrusted_certificate_is_an_ssl_error(serve, certificate) -> None:
    server = serve([answer()] * 5, tls=server_tls(certificate))
    client, attempts = fast_client(server.url)  # the default context: system CAs only

    with pytest.raises(BotoCoreError) as raised:
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})

    assert type(raised.value).__name__ == "SSLError"
    assert len(attempts) == 5
