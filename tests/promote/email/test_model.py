"""Addresses, provider records and the dispatch of the test email."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promote.email import GraphProvider, SmtpProvider, parse_address, provider_from_config
from promote.email.dispatch import send_test_email
from promote.email.model import idna_domain, idna_reason
from promote.errors import BlockedError


@pytest.mark.parametrize(
    ("text", "address", "name"),
    [
        ("ops@example.com", "ops@example.com", None),
        ('"Acme, Inc." <noreply@example.com>', "noreply@example.com", "Acme, Inc."),
        ("Acme <noreply@example.com>", "noreply@example.com", "Acme"),
        ("  spaced@example.com ", "spaced@example.com", None),
        ("jürgen@例え.jp", "jürgen@例え.jp", None),
    ],
)
def test_parse_address(text, address, name):
    parsed = parse_address(text)
    assert parsed is not None
    assert (parsed.address, parsed.name) == (address, name)


@pytest.mark.parametrize(
    "text",
    ["", "ops", "ops@", "@example.com", "a b@example.com", "a@@b.c", "<a@b.c", "a@b..c", "x <a>"],
)
def test_parse_address_rejects(text):
    assert parse_address(text) is None


_atom = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x2FFF),
    min_size=1,
    max_size=12,
)


@given(local=_atom, labels=st.lists(_atom, min_size=1, max_size=3), name=st.none() | _atom)
def test_address_round_trips(local, labels, name):
    text = f"{local}@{'.'.join(labels)}"
    if name is not None:
        text = f'"{name}" <{text}>'
    parsed = parse_address(text)
    assert parsed is not None
    assert str(parsed) == text
    assert parsed.international == (not local.isascii())
    assert parsed.ascii == f"{local}@{'.'.join(labels)}".isascii()


def test_smtp_record_defaults_and_timeouts():
    provider = provider_from_config(
        {
            "host": "smtp.example.com",
            "port": 465,
            "ssl": {"enable": True},
            "auth": {"enable": False},
            "timeout": 0,
            "connectiontimeout": 1500,
            "smtpProperties": ["mail.mime.allowutf8 = true", "broken"],
        }
    )
    assert isinstance(provider, SmtpProvider)
    assert provider.ssl and not provider.starttls and not provider.auth
    assert provider.timeout is None  # 0 disables the timeout
    assert provider.connection_timeout == 1.5
    assert provider.write_timeout == 300.0  # IDM's default
    assert provider.allow_utf8
    assert provider.describe() == "smtp smtp.example.com:465 (SSL)"


def test_graph_record():
    provider = provider_from_config(
        {
            "type": "msgraph",
            "mailEndpoint": "https://graph/send",
            "auth": {
                "type": "oauth2",
                "clientId": "c",
                "clientSecret": "s3cr3t",
                "tokenEndpoint": "https://login/token",
                "scope": ["a", "b"],
                "scopeDelimiter": ",",
            },
        }
    )
    assert isinstance(provider, GraphProvider)
    assert provider.scope == ("a", "b") and provider.scope_delimiter == ","
    assert "s3cr3t" not in repr(provider)


def test_send_requires_a_sender():
    config = {"host": "127.0.0.1", "port": 2525, "auth": {"enable": False}}
    with pytest.raises(BlockedError, match="cannot send the test email") as caught:
        send_test_email(config, env="dev", to="ops@example.com")
    assert caught.value.problems[0].path == "from"


def test_builtin_provider_of_a_remote_tenant_is_not_reachable():
    with pytest.raises(BlockedError, match="--live"):
        send_test_email(None, env="dev", to="ops@example.com")


def test_international_recipient_needs_allowutf8():
    config = {"host": "h", "port": 25, "from": "a@b.example", "auth": {"enable": False}}
    with pytest.raises(BlockedError, match="allowutf8"):
        send_test_email(config, env="dev", to="jürgen@example.com")


def test_non_ascii_domain_is_not_international_but_encodes_to_idna():
    address = parse_address('"Öps" <ops@bücher.example>')
    assert address is not None
    assert not address.international and not address.ascii
    assert address.ascii_domain() == parse_address('"Öps" <ops@xn--bcher-kva.example>')
    local = parse_address("jürgen@example.com")
    assert local is not None and local.international
    assert local.ascii_domain() == local


def test_unencodable_domain_says_why_without_quoting_it():
    domain = "ü" * 70 + ".example"
    assert idna_reason(domain) == "a label is empty or longer than 63 characters once encoded"
    with pytest.raises(ValueError, match="cannot be IDNA-encoded") as caught:
        idna_domain(domain)
    assert "ü" not in str(caught.value)
    assert idna_reason("bücher.example") is None and idna_reason("example.com") is None
    assert idna_domain("example.com") == "example.com"


def test_international_domain_recipient_needs_no_allowutf8_but_must_encode():
    config = {"host": "h", "port": 25, "from": "a@b.example", "auth": {"enable": False}}
    with pytest.raises(BlockedError) as caught:
        send_test_email(config, env="dev", to="ops@" + "ü" * 70 + ".example")
    [problem] = caught.value.problems
    assert "cannot be IDNA-encoded" in problem.message and "allowutf8" not in problem.message
