"""The sandbox's token endpoint: AIC service accounts by the JWT-bearer grant.

``POST /<env>/am/oauth2/access_token`` with ``grant_type=urn:ietf:params:oauth:grant-type:
jwt-bearer``, ``client_id=service-account`` and an RS256 ``assertion`` whose ``iss`` and
``sub`` name a registered account, whose ``aud`` is this endpoint's URL and which has not
expired. Issued access tokens are valid for ``lifetime`` seconds for that environment only.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from promote.sandbox.routes import SandboxResponse

__all__ = ["TOKEN_PATH", "TokenEndpoint", "public_key_from_jwk"]

TOKEN_PATH = "/am/oauth2/access_token"
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def public_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    """The RSA public key of a JWK (``kty: RSA``, ``n``, ``e``)."""
    if jwk.get("kty") != "RSA":
        raise ValueError("not an RSA JWK")
    return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()


class TokenEndpoint:
    """Service accounts (id -> public key) and the access tokens issued to them."""

    def __init__(
        self,
        accounts: Mapping[str, rsa.RSAPublicKey],
        *,
        lifetime: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.accounts = dict(accounts)
        self.lifetime = lifetime
        self._clock = clock
        self._issued: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issued(self) -> list[str]:
        """Every access token issued so far (for tests that search output for them)."""
        with self._lock:
            return list(self._issued)

    def valid(self, env: str, token: str) -> bool:
        """Whether ``token`` was issued for ``env`` and has not expired."""
        with self._lock:
            issued = self._issued.get(token)
        return issued is not None and issued[0] == env and self._clock() < issued[1]

    def exchange(self, env: str, audience: str, body: bytes) -> SandboxResponse:
        """Answer one token request (form-encoded ``body``) for ``env``."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != _GRANT or form.get("client_id") != "service-account":
            return _refuse(
                "unsupported_grant_type", "use the jwt-bearer grant, client service-account"
            )
        try:
            claims = self._verify(form.get("assertion", ""), audience)
        except ValueError as exc:
            return _refuse("invalid_grant", str(exc))
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = (env, self._clock() + self.lifetime)
        return SandboxResponse(
            200,
            {
                "access_token": token,
                "scope": form.get("scope", ""),
                "token_type": "Bearer",
                "expires_in": int(self.lifetime),
                "sub": claims["sub"],
            },
        )

    def _verify(self, assertion: str, audience: str) -> dict[str, Any]:
        parts = assertion.split(".")
        if len(parts) != 3:
            raise ValueError("the assertion is not a compact JWT")
        try:
            header = json.loads(_bytes(parts[0]))
            claims = json.loads(_bytes(parts[1]))
            signature = _bytes(parts[2])
        except (ValueError, TypeError):
            raise ValueError("the assertion is not a valid JWT") from None
        if header.get("alg") != "RS256":
            raise ValueError("the assertion must be signed with RS256")
        key = self.accounts.get(str(claims.get("iss")))
        if key is None or claims.get("sub") != claims.get("iss"):
            raise ValueError("unknown service account")
        try:
            key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise ValueError("the assertion's signature does not verify") from None
        if claims.get("aud") != audience:
            raise ValueError(f"the assertion's aud must be {audience}")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= self._clock():
            raise ValueError("the assertion has expired")
        return dict(claims)


def _refuse(code: str, description: str) -> SandboxResponse:
    return SandboxResponse(400, {"error": code, "error_description": description})


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_bytes(text), "big")
