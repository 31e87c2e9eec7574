"""How promote authenticates to AIC: a bearer token, or a service account's JWT-bearer grant
(:class:`ServiceAccountAuth`)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from esv.secrets import SecretValue
from promote.errors import BlockedError, TenantError
from promote.http import HttpClient

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["DEFAULT_SCOPE", "JWT_BEARER", "ServiceAccountAuth"]


DEFAULT_SCOPE = "fr:am:* fr:idm:* fr:idc:esv:* fr:idc:promotion:*"

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class ServiceAccountAuth:
    """Access tokens for an AIC service account by the JWT-bearer grant, refreshed early.

    Signs an RS256 JWT (``iss`` = ``sub`` = the account id, ``aud`` = the token endpoint,
    3 minutes' life, random ``jti``) with the account's private JWK and exchanges it at
    ``<url>/am/oauth2/access_token``. A token is reused until ``refresh_margin`` seconds
    before it expires. Thread-safe.
    """

    def __init__(
        self,
        url: str,
        account_id: str,
        jwk: SecretValue,
        *,
        scope: str = DEFAULT_SCOPE,
        env: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        refresh_margin: float = 60.0,
    ) -> None:
        self.token_url = url.rstrip("/") + "/am/oauth2/access_token"
        self._account_id = account_id
        self._key = _private_key(jwk, env)
        self._kid = _jwk_field(jwk, "kid")
        self._scope = scope
        self._clock = clock
        self._margin = refresh_margin
        self._http = HttpClient(url, env=env, transport=transport, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._token: SecretValue | None = None
        self._expires = 0.0

    def authorization(self) -> str:
        """``Bearer <access token>``, exchanging a fresh assertion when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires - self._margin:
                self._fetch()
            assert self._token is not None
            return "Bearer " + self._token.reveal()

    def invalidate(self) -> None:
        """Drop the cached token; the next request exchanges a new assertion."""
        with self._lock:
            self._token = None

    def assertion(self) -> str:
        """A freshly signed JWT-bearer assertion (compact serialisation)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(self._clock())
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self._kid:
            header["kid"] = self._kid
        claims = {
            "iss": self._account_id,
            "sub": self._account_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + 180,
            "jti": str(uuid.uuid4()),
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _fetch(self) -> None:
        path = "/am/oauth2/access_token"
        response = self._http.request(
            "POST",
            path,
            form={
                "grant_type": JWT_BEARER,
                "client_id": "service-account",
                "assertion": self.assertion(),
                "scope": self._scope,
            },
            authenticate=False,
        )
        body = self._http.json_of(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TenantError(
                "the token endpoint answered without an access_token",
                env=self._http.env,
                url=self._http.display_url,
                method="POST",
                path=path,
                status=response.status_code,
            )
        expires_in = body.get("expires_in", 900)
        self._token = SecretValue(token)
        self._expires = self._clock() + float(expires_in if expires_in is not None else 900)

    def close(self) -> None:
        """Close the token endpoint's connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"ServiceAccountAuth({self.token_url!r}, account=***)"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _jwk_field(jwk: SecretValue, name: str) -> str | None:
    try:
        value = json.loads(jwk.reveal()).get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _private_key(jwk: SecretValue, env: str | None) -> rsa.RSAPrivateKey:
    """The RSA private key of a JWK (``kty: RSA`` with ``n, e, d``; primes recovered if absent)."""
    # cryptography (about 15 ms to import) only for the tenants that sign with a key.
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        fields = json.loads(jwk.reveal())
        if not isinstance(fields, dict) or fields.get("kty") != "RSA":
            raise ValueError("not an RSA JWK")
        n, e, d = (_b64url_int(fields[k]) for k in ("n", "e", "d"))
        if all(k in fields for k in ("p", "q")):
            p, q = _b64url_int(fields["p"]), _b64url_int(fields["q"])
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        numbers = rsa.RSAPrivateNumbers(
            p,
            q,
            d,
            rsa.rsa_crt_dmp1(d, p),
            rsa.rsa_crt_dmq1(d, q),
            rsa.rsa_crt_iqmp(p, q),
            rsa.RSAPublicNumbers(e, n),
        )
        return numbers.private_key()
    except (ValueError, KeyError, TypeError):
        # Never echo the key material; say only what is wrong with its shape.
        raise BlockedError(
            f"{env or 'aic'}: tenant.service_account.jwk is not an RSA private key in JWK form "
            "(expected a JSON object with kty RSA, n, e, d); download it again from the "
            "service account page"
        ) from None
