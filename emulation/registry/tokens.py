"""GetAuthorizationToken as ECR answers it, for the local ECR registry endpoint: a token per call, valid 12 hours,
that remembers who asked (the registry's HTTP API is then authorized as that principal), and a `proxyEndpoint`
naming the registry endpoint of the account and Region: the local one (ecr.py) when it runs, ECR's own name
otherwise. The token is `base64("AWS:" + password)`, what `docker login --username AWS` sends as Basic
authentication (ECR user guide, registry_auth.html; API reference, AuthorizationData)."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from moto.core.responses import ActionResult

if TYPE_CHECKING:
    from moto.ecr.responses import ECRResponse

VALID_FOR = timedelta(hours=12)


@dataclass(frozen=True)
class Token:
    access_key: str
    account: str
    region: str
    expires_at: datetime


_lock = threading.Lock()
_tokens: dict[str, Token] = {}
_endpoints: dict[tuple[str, str], str] = {}


def register_endpoint(account: str, region: str, url: str | None) -> None:
    with _lock:
        if url is None:
            _endpoints.pop((account, region), None)
        else:
            _endpoints[(account, region)] = url


def proxy_endpoint(account: str, region: str) -> str:
    with _lock:
        return _endpoints.get((account, region)) or f"https://{account}.dkr.ecr.{region}.amazonaws.com"


def issue(access_key: str, account: str, region: str) -> tuple[str, datetime]:
    password = secrets.token_urlsafe(48)
    token = Token(access_key, account, region, datetime.now(UTC) + VALID_FOR)
    with _lock:
        _tokens[password] = token
    return base64.b64encode(f"AWS:{password}".encode()).decode(), token.expires_at


def expire_all() -> None:
    """Every token issued so far is expired (a test of a login that went stale)."""
    with _lock:
        for password, token in list(_tokens.items()):
            _tokens[password] = Token(token.access_key, token.account, token.region, datetime.now(UTC))


def holder(authorization: str) -> Token | None:
    """The valid token a request's `Authorization: Basic ...` header carries, or None."""
    if not authorization.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    except ValueError:
        return None
    with _lock:
        token = _tokens.get(password)
    if user != "AWS" or token is None or token.expires_at <= datetime.now(UTC):
        return None
    return token


def get_authorization_token(self: ECRResponse) -> ActionResult:
    """moto answers with one fixed token, expired in 2015, naming ECR's real endpoint; this is ECR's answer."""
    access_key = self.get_access_key()
    token, expires_at = issue(access_key, self.current_account, self.region)
    data = {"authorizationToken": token, "expiresAt": expires_at,
            "proxyEndpoint": proxy_endpoint(self.current_account, self.region)}  # fmt: skip
    return ActionResult({"authorizationData": [data]})


RESPONSE_METHODS = {"get_authorization_token": get_authorization_token}
