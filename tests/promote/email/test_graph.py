"""Microsoft Graph sending: MockTransport for error mapping, a loopback HTTP server end to end."""

from __future__ import annotations

import json

import httpx
import pytest

from esv.secrets import SecretValue
from promote.email import (
    EmailAuthError,
    EmailConnectError,
    EmailError,
    EmailRejectedError,
    EmailTimeoutError,
    GraphProvider,
    parse_address,
)
from promote.email.graph import graph_payload, send_graph
from promote.email.message import test_message as build_message
from promote.email.model import TEST_BODY, TEST_SUBJECT
from tests.promote.email.servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN,
    closed_port,
    graph_server,
)


def _message():
    sender, to = parse_address("me@acme.example"), parse_address('"Ops" <ops@example.com>')
    assert sender and to
    return build_message(sender, to)


def _provider(token_endpoint: str, mail_endpoint: str, secret: str = CLIENT_SECRET):
    return GraphProvider(
        mail_endpoint=mail_endpoint,
        token_endpoint=token_endpoint,
        client_id=CLIENT_ID,
        client_secret=SecretValue(secret),
        scope=("https://graph.microsoft.com/.default", "offline_access"),
        connection_timeout=5,
        timeout=5,
    )


def test_payload_is_sendmail_json():
    payload = graph_payload(_message())
    assert payload == {
        "message": {
            "subject": TEST_SUBJECT,
            "body": {"contentType": "Text", "content": TEST_BODY + "\n"},
            "from": {"emailAddress": {"address": "me@acme.example"}},
            "toRecipients": [{"emailAddress": {"address": "ops@example.com"}}],
        },
        "saveToSentItems": False,
    }


def test_end_to_end_against_loopback_server():
    with graph_server() as server:
        send_graph(_provider(server.token_endpoint, server.mail_endpoint), _message())
    [token_request, mail_request] = server.requests
    form = dict(pair.split("=", 1) for pair in token_request[2].decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https%3A%2F%2Fgraph.microsoft.com%2F.default+offline_access"
    assert mail_request[1]["Authorization"] == f"Bearer {TOKEN}"
    [sent] = server.sent
    assert sent["message"]["subject"] == TEST_SUBJECT


def test_wrong_secret_is_an_auth_error_without_secret_or_token():
    with graph_server() as server:
        provider = _provider(server.token_endpoint, server.mail_endpoint, secret="wrong-secret")
        with pytest.raises(EmailAuthError) as caught:
            send_graph(provider, _message())
    text = str(caught.value)
    assert server.token_endpoint in text and "invalid_client" in text
    assert "wrong-secret" not in text and CLIENT_SECRET not in text
    assert server.sent == []


def test_sendmail_refusal():
    with graph_server(mail_status=400) as server:
        with pytest.raises(EmailRejectedError, match="sendMail failed: 400"):
            send_graph(_provider(server.token_endpoint, server.mail_endpoint), _message())


def test_unreachable_endpoint_names_it():
    url = f"http://127.0.0.1:{closed_port()}/token"
    with pytest.raises(EmailConnectError) as caught:
        send_graph(_provider(url, url), _message())
    assert url in str(caught.value)


def _mock(handler):
    return httpx.MockTransport(handler)


TOKEN_URL = "https://login.example/tenant/oauth2/v2.0/token"
MAIL_URL = "https://graph.example/v1.0/users/me/sendMail"


def test_mock_token_echoing_secret_is_scrubbed():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request: client_secret={CLIENT_SECRET}")

    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(handler))
    assert CLIENT_SECRET not in str(caught.value)


def test_mock_sendmail_error_echoing_token_is_scrubbed():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "opaque-token-123"})
        return httpx.Response(403, json={"error": {"message": "token opaque-token-123 denied"}})

    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(handler))
    assert "opaque-token-123" not in str(caught.value)
    assert MAIL_URL in str(caught.value)


def test_mock_token_response_without_token():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "Bearer"})

    with pytest.raises(EmailAuthError, match="no access_token"):
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(handler))


def test_mock_timeout_and_server_error():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(EmailTimeoutError, match=TOKEN_URL):
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(slow))

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    with pytest.raises(EmailError, match="token request failed: 500"):
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(broken))


def test_mock_scope_delimiter():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            seen.append(request.content.decode())
            return httpx.Response(200, json={"access_token": "t"})
        seen.append(json.loads(request.content))
        return httpx.Response(202)

    provider = _provider(TOKEN_URL, MAIL_URL)
    provider = GraphProvider(**{**provider.__dict__, "scope_delimiter": ","})
    send_graph(provider, _message(), transport=_mock(handler))
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default%2Coffline_access" in seen[0]
    assert seen[1]["message"]["toRecipients"] == [{"emailAddress": {"address": "ops@example.com"}}]


def _fragments(value: str, size: int = 6) -> list[str]:
    """Every ``size``-character piece of ``value``: none may survive in an error."""
    return [value[start : start + size] for start in range(len(value) - size + 1)]


@pytest.mark.parametrize("offset", [-20, -12, -5, -1])
def test_secret_crossing_the_excerpt_cut_is_masked_whole(offset):
    secret = "Xq7-crossing-the-cut-Zr9"
    padding = "p" * (200 + offset - len("rejected credential "))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"rejected credential {padding}{secret} tail")

    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL, secret), _message(), transport=_mock(handler))
    text = str(caught.value)
    assert "rejected credential" in text
    assert not [piece for piece in _fragments(secret) if piece in text]


def test_secret_named_json_string_cut_before_its_quote_is_masked():
    other = "leaked-by-server-0123456789abcdef"  # not the provider's secret: only the key says so
    prefix = '{"error": "invalid_client", "note": "' + "n" * 130 + '", "client_secret": "'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=prefix + other + '"}')

    assert len(prefix) < 200 < len(prefix) + len(other)
    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(handler))
    text = str(caught.value)
    assert "invalid_client" in text
    assert not [piece for piece in _fragments(other) if piece in text]


def test_secret_echoed_escaped_is_masked():
    secret = 'a/b+c d"e'

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = json.dumps({"detail": f"bad {secret}", "form": request.content.decode()})
        return httpx.Response(400, text=echoed)

    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL, secret), _message(), transport=_mock(handler))
    text = str(caught.value)
    assert "a/b" not in text and "a%2Fb" not in text and 'd\\"e' not in text


@pytest.mark.parametrize("offset", [-30, -10, -3])
def test_token_echoed_in_sendmail_error_is_masked_across_the_cut(offset):
    token = "opaque-access-token-0123456789-abcdefghij"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": token})
        head = "token denied: " + "m" * (200 + offset - len("token denied: "))
        return httpx.Response(403, text=f"{head}{token} (also: {token})")

    with pytest.raises(EmailAuthError) as caught:
        send_graph(_provider(TOKEN_URL, MAIL_URL), _message(), transport=_mock(handler))
    text = str(caught.value)
    assert "token denied" in text and MAIL_URL in text
    assert not [piece for piece in _fragments(token) if piece in text]
    assert not [piece for piece in _fragments(CLIENT_SECRET) if piece in text]


def test_international_domain_goes_to_graph_idna_encoded():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t"})
        seen.append(json.loads(request.content))
        return httpx.Response(202)

    sender, to = parse_address("me@acme.example"), parse_address("ops@bücher.example")
    assert sender and to
    send_graph(_provider(TOKEN_URL, MAIL_URL), build_message(sender, to), transport=_mock(handler))
    [payload] = seen
    recipients = payload["message"]["toRecipients"]
    assert recipients == [{"emailAddress": {"address": "ops@xn--bcher-kva.example"}}]
