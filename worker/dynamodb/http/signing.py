"""SigV4: a request's headers, signed as botocore signs them."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote

from botocore.exceptions import NoCredentialsError

CONTENT_TYPE = "application/x-amz-json-1.0"
SERVICE = "dynamodb"
USER_AGENT = "checkout-dynamodb-http/1"


class SigV4Signer:
    """Signs POST requests to one endpoint (`host_header`, `path`) in one region.

    `credentials`: a botocore credentials object (refreshable ones are refreshed as
    botocore does, `get_frozen_credentials()` per request), or None: signing then raises
    `NoCredentialsError`.
    """

    def __init__(self, credentials: Any, region_name: str, host_header: str, path: str) -> None:
        self.credentials = credentials
        self.region_name = region_name
        self.host_header = host_header
        self._canonical_path = quote(path, safe="/~")
        self._signing_key_id: tuple[str, str] | None = None
        self._signing_key = b""
        self._stamp_second = -1
        self._stamp = ("", "")

    def headers(self, target: str, body: bytes, now: float) -> dict[str, str]:
        """The request's headers, signed with SigV4 at `now` (seconds since the epoch)."""
        credentials = self.credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        second = int(now)
        if second != self._stamp_second:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._stamp_second, self._stamp = second, (amz_date, amz_date[:8])
        amz_date, date = self._stamp
        token = frozen.token
        if token:
            token_line = f"x-amz-security-token:{token}\n"
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            token_line = ""
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = (
            f"POST\n{self._canonical_path}\n\n"
            f"content-type:{CONTENT_TYPE}\nhost:{self.host_header}\n"
            f"x-amz-date:{amz_date}\n{token_line}x-amz-target:{target}\n\n"
            f"{signed}\n{hashlib.sha256(body).hexdigest()}"
        )
        scope = f"{date}/{self.region_name}/{SERVICE}/aws4_request"
        string_to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.digest(
            self._key(frozen.secret_key, date), string_to_sign.encode(), "sha256"
        ).hex()
        headers = {
            "Host": self.host_header,
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": target,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers

    def _key(self, secret: str, date: str) -> bytes:
        """The derived signing key, kept for the last (secret, date) (region is fixed)."""
        if self._signing_key_id != (secret, date):
            key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
            for part in (self.region_name, SERVICE, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._signing_key_id, self._signing_key = (secret, date), key
        return self._signing_key


def host_header(parts: Any) -> str:
    """The Host header botocore signs: the port only when it is not the scheme's default."""
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{parts.port}"
    return host
