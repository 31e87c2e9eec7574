"""SMTP sending against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes

import pytest

from esv.secrets import SecretValue
from promote.email import (
    EmailAuthError,
    EmailConnectError,
    EmailTimeoutError,
    EmailTlsError,
    SmtpProvider,
    parse_address,
)
from promote.email.errors import EmailRejectedError
from promote.email.message import test_message as build_message
from promote.email.model import TEST_BODY, TEST_SUBJECT
from promote.email.smtp import send_smtp
from tests.promote.email.servers import (
    PASSWORD,
    USER,
    certificates,
    closed_port,
    silent_server,
    smtp_server,
)

# aiosmtpd warns when a server offers AUTH without requiring TLS; the plain-AUTH server
# below does exactly that on purpose (it is the "AUTH on a plain connection" case).
PLAIN_AUTH_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


def _message(sender: str = "noreply@example.com", to: str = "ops@example.com"):
    from_address, to_address = parse_address(sender), parse_address(to)
    assert from_address and to_address
    return build_message(from_address, to_address)


def _provider(port: int, **changes) -> SmtpProvider:
    base = SmtpProvider(host="127.0.0.1", port=port, connection_timeout=5, timeout=5)
    return replace(base, **changes)


def test_plain_delivery():
    with smtp_server() as server:
        send_smtp(_provider(server.port), _message())
    [envelope] = server.mailbox.envelopes
    assert envelope.mail_from == "noreply@example.com"
    assert envelope.rcpt_tos == ["ops@example.com"]
    received = message_from_bytes(envelope.content)
    assert received["Subject"] == TEST_SUBJECT
    assert received.get_payload().strip() == TEST_BODY


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_auth_on_plain_connection():
    with smtp_server(auth=True) as server:
        provider = _provider(server.port, auth=True, username=USER, password=SecretValue(PASSWORD))
        send_smtp(provider, _message())
    assert server.mailbox.logins == [USER]
    assert len(server.mailbox.envelopes) == 1


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_refused_auth_names_server_not_password():
    with smtp_server(auth=True) as server:
        provider = _provider(
            server.port, auth=True, username=USER, password=SecretValue("wrong-" + PASSWORD)
        )
        with pytest.raises(EmailAuthError) as caught:
            send_smtp(provider, _message())
    text = str(caught.value)
    assert f"127.0.0.1:{server.port}" in text and USER in text
    assert PASSWORD not in text and "wrong-" not in text
    assert caught.value.exit_code == 1
    assert server.mailbox.envelopes == []


def test_auth_required_but_not_offered():
    with smtp_server() as server, pytest.raises(EmailAuthError, match="does not offer AUTH"):
        send_smtp(
            _provider(server.port, auth=True, username=USER, password=SecretValue(PASSWORD)),
            _message(),
        )


def test_starttls_with_verified_certificate_and_auth():
    certs = certificates()
    with smtp_server(auth=True, tls=certs.server) as server:
        provider = _provider(
            server.port,
            starttls=True,
            auth=True,
            username=USER,
            password=SecretValue(PASSWORD),
        )
        send_smtp(provider, _message(), context=certs.client)
    assert server.mailbox.logins == [USER]
    assert len(server.mailbox.envelopes) == 1


def test_starttls_untrusted_certificate_is_a_tls_error():
    certs = certificates()
    with smtp_server(tls=certs.server) as server:
        with pytest.raises(EmailTlsError, match="certificate") as caught:
            send_smtp(_provider(server.port, starttls=True), _message())
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    assert server.mailbox.envelopes == []


def test_starttls_required_but_not_offered_is_never_a_downgrade():
    with smtp_server() as server:
        with pytest.raises(EmailTlsError, match="does not offer STARTTLS"):
            send_smtp(_provider(server.port, starttls=True), _message())
    assert server.mailbox.envelopes == []


def test_implicit_tls():
    certs = certificates()
    with smtp_server(implicit_tls=certs.server) as server:
        send_smtp(_provider(server.port, ssl=True), _message(), context=certs.client)
    assert len(server.mailbox.envelopes) == 1


def test_implicit_tls_against_plain_server_is_a_tls_error():
    certs = certificates()
    with smtp_server() as server, pytest.raises(EmailTlsError):
        send_smtp(_provider(server.port, ssl=True), _message(), context=certs.client)


def test_unreachable_host_names_host_and_port():
    port = closed_port()
    with pytest.raises(EmailConnectError) as caught:
        send_smtp(_provider(port), _message())
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_timeout_names_host_and_port():
    with silent_server() as port:
        with pytest.raises(EmailTimeoutError) as caught:
            send_smtp(_provider(port, connection_timeout=0.3, timeout=0.3), _message())
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_international_addresses_use_smtputf8_only_when_allowed():
    with smtp_server() as server:
        message = _message(to="jürgen@example.com")
        with pytest.raises(EmailRejectedError, match="allowutf8"):
            send_smtp(_provider(server.port), message)
        allowed = _provider(server.port, properties={"mail.mime.allowutf8": "true"})
        send_smtp(allowed, _message(to="jürgen@example.com"))
    [envelope] = server.mailbox.envelopes
    assert envelope.rcpt_tos == ["jürgen@example.com"]
    assert "SMTPUTF8" in envelope.mail_options


def test_provider_repr_hides_password():
    provider = _provider(25, auth=True, username=USER, password=SecretValue(PASSWORD))
    assert PASSWORD not in repr(provider) and PASSWORD not in provider.describe()


def test_refused_recipient():
    with smtp_server(refuse=frozenset({"ops@example.com"})) as server:
        with pytest.raises(EmailRejectedError, match="every recipient was refused") as caught:
            send_smtp(_provider(server.port), _message())
    assert "ops@example.com: 550" in str(caught.value)
    assert server.mailbox.envelopes == []


def test_international_address_needs_server_smtputf8():
    with smtp_server(smtputf8=False) as server:
        allowed = _provider(server.port, properties={"mail.mime.allowutf8": "true"})
        with pytest.raises(EmailRejectedError, match="does not offer SMTPUTF8"):
            send_smtp(allowed, _message(to="jürgen@example.com"))
    assert server.mailbox.envelopes == []


def test_international_domain_is_sent_idna_encoded_without_allowutf8():
    with smtp_server() as server:
        send_smtp(_provider(server.port), _message("me@bücher.example", '"Öps" <ops@例え.jp>'))
    [envelope] = server.mailbox.envelopes
    assert envelope.mail_from == "me@xn--bcher-kva.example"
    assert envelope.rcpt_tos == ["ops@xn--r8jz45g.jp"]
    assert "SMTPUTF8" not in envelope.mail_options
    received = message_from_bytes(envelope.content)
    assert received["To"] == "=?utf-8?q?=C3=96ps?= <ops@xn--r8jz45g.jp>"
    assert received["From"] == "me@xn--bcher-kva.example"


def test_international_local_part_is_refused_without_allowutf8_even_with_idna_domain():
    with smtp_server() as server:
        with pytest.raises(EmailRejectedError, match="non-ASCII local part.*allowutf8"):
            send_smtp(_provider(server.port), _message(to="jürgen@bücher.example"))
    assert server.mailbox.envelopes == []


def test_international_local_part_with_allowutf8_uses_smtputf8_and_idna_domain():
    allowed = {"mail.mime.allowutf8": "true"}
    with smtp_server() as server:
        send_smtp(_provider(server.port, properties=allowed), _message(to="jürgen@bücher.example"))
    [envelope] = server.mailbox.envelopes
    assert envelope.rcpt_tos == ["jürgen@xn--bcher-kva.example"]
    assert "SMTPUTF8" in envelope.mail_options


def test_unencodable_domain_is_refused_before_connecting():
    message = _message(to="ops@" + "ü" * 70 + ".example")
    with smtp_server() as server:
        with pytest.raises(EmailRejectedError, match="domain of an address in To cannot") as caught:
            send_smtp(_provider(server.port), message)
    assert "ü" not in str(caught.value)
    assert server.mailbox.envelopes == []
