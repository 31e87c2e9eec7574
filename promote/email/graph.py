"""Send a message through Microsoft Graph ``sendMail`` with an OAuth2 client-credentials token.

:func:`send_graph` posts ``grant_type=client_credentials`` (client id, secret, scopes joined
by ``scopeDelimiter``) to ``tokenEndpoint``, then posts the message as Graph's ``sendMail``
JSON to ``mailEndpoint`` with the bearer token. The transport is injectable
(``httpx.MockTransport`` in tests). The client secret and the token never appear in an error:
both values (also JSON- or URL-escaped) are cut out of a response body and the body is
scrubbed before it is shortened to an excerpt, so no part of either crosses the cut.
"""

from __future__ import annotations

import json
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from promote.email.errors import (
    EmailAuthError,
    EmailConnectError,
    EmailError,
    EmailRejectedError,
    EmailTimeoutError,
    EmailTlsError,
)
from promote.email.message import ascii_domains
from promote.email.model import GraphProvider
from promote.http import scrub

__all__ = ["graph_payload", "send_graph"]

_EXCERPT = 200


def graph_payload(message: EmailMessage) -> dict[str, Any]:
    """The ``sendMail`` request body for a plain-text message."""
    body = message.get_body(("plain",))
    content = body.get_content() if body is not None else ""
    return {
        "message": {
            "subject": str(message["Subject"]),
            "body": {"contentType": "Text", "content": content},
            "from": {"emailAddress": {"address": _address(str(message["From"]))}},
            "toRecipients": [{"emailAddress": {"address": _address(str(message["To"]))}}],
        },
        "saveToSentItems": False,
    }


def send_graph(
    provider: GraphProvider,
    message: EmailMessage,
    *,
    transport: httpx.BaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Deliver ``message`` through ``provider``; raises an :class:`EmailError` subclass."""
    try:
        message = ascii_domains(message)  # Graph gets xn-- domains, as SMTP does
    except ValueError as error:
        raise EmailRejectedError(
            provider.show("mailEndpoint"), str(error), hint="check the address"
        ) from None
    timeout = httpx.Timeout(provider.timeout, connect=provider.connection_timeout)
    secret = provider.client_secret.reveal()
    with httpx.Client(transport=transport, timeout=timeout, verify=verify) as client:
        response = _post(
            client,
            provider.token_endpoint,
            provider.show("tokenEndpoint"),
            data={
                "grant_type": "client_credentials",
                "client_id": provider.client_id,
                "client_secret": secret,
                "scope": provider.scope_delimiter.join(provider.scope),
            },
        )
        where = provider.show("tokenEndpoint")
        if response.status_code in (400, 401, 403):
            raise EmailAuthError(
                where,
                f"the token endpoint refused client {provider.show('clientId')!r}: "
                f"{response.status_code} {_excerpt(response, secret)}",
                hint="check auth.clientId, the client secret ESV and auth.scope",
            )
        if not response.is_success:
            raise EmailError(where, f"token request failed: {response.status_code}")
        token = _token(response, where)
        response = _post(
            client,
            provider.mail_endpoint,
            provider.show("mailEndpoint"),
            json=graph_payload(message),
            headers={"Authorization": f"Bearer {token}"},
        )
        where = provider.show("mailEndpoint")
        if response.status_code in (401, 403):
            raise EmailAuthError(
                where,
                f"sendMail refused the token: {response.status_code} "
                f"{_excerpt(response, secret, token)}",
                hint="the app needs the Mail.Send application permission",
            )
        if not response.is_success:
            raise EmailRejectedError(
                where,
                f"sendMail failed: {response.status_code} {_excerpt(response, secret, token)}",
            )


def _post(client: httpx.Client, url: str, shown: str, **kwargs: Any) -> httpx.Response:
    """POST to ``url``; errors name ``shown`` (the URL with secret-derived parts masked)."""
    try:
        return client.post(url, **kwargs)
    except httpx.TimeoutException:
        raise EmailTimeoutError(shown, "no answer within the configured timeout") from None
    except httpx.ConnectError as error:
        if isinstance(error.__context__, ssl.SSLError) or "SSL" in str(error):
            raise EmailTlsError(shown, f"TLS failed: {error}") from None
        raise EmailConnectError(shown, f"cannot connect: {error}", hint="check the URL") from None
    except httpx.HTTPError as error:
        raise EmailError(shown, f"request failed: {type(error).__name__}") from None


def _token(response: httpx.Response, where: str) -> str:
    try:
        token = response.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise EmailAuthError(where, "the token response has no access_token")
    return token


def _excerpt(response: httpx.Response, *secrets: str) -> str:
    """At most ``_EXCERPT`` characters of the body, masked BEFORE it is cut.

    Masking the whole body first means a secret or token crossing the cut cannot survive in
    part, and a secret-named JSON string is still whole when the scrubber sees it. The known
    values are replaced as sent and as a server may echo them (JSON- or URL-escaped).
    """
    text = response.text
    for form in sorted(_forms(secrets), key=len, reverse=True):
        text = text.replace(form, "********")
    return scrub(text)[:_EXCERPT]


def _forms(secrets: tuple[str, ...]) -> set[str]:
    """Each non-empty secret as sent, JSON-escaped and URL-encoded."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    forms.discard("")
    return forms


def _address(header: str) -> str:
    start, end = header.rfind("<"), header.rfind(">")
    return header[start + 1 : end] if 0 <= start < end else header.strip()
