"""The local tenant's built-in provider: .eml files, forced sender, 10 a minute."""

from __future__ import annotations

from email import message_from_bytes

import pytest

from promote.email import EmailRateLimitError, Outbox, parse_address
from promote.email.errors import EmailRejectedError
from promote.email.message import test_message as build_message
from promote.email.model import TEST_BODY, TEST_SUBJECT


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _message(to: str = "ops@example.com"):
    sender, recipient = parse_address('"Acme" <boss@acme.example>'), parse_address(to)
    assert sender and recipient
    return build_message(sender, recipient)


def test_writes_one_eml_per_message_with_forced_sender(tmp_path):
    outbox = Outbox(tmp_path / "outbox", env="dev", clock=Clock())
    path = outbox.deliver(_message())
    assert path.parent == tmp_path / "outbox" and path.suffix == ".eml"
    message = message_from_bytes(path.read_bytes())
    assert message["From"] == "noreply@dev.local"
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == TEST_SUBJECT
    assert message.get_payload().strip() == TEST_BODY
    assert outbox.messages() == [path]
    assert not list((tmp_path / "outbox").glob(".tmp-*"))


def test_rate_limit_is_ten_a_minute(tmp_path):
    clock = Clock()
    outbox = Outbox(tmp_path, env="dev", clock=clock)
    for _ in range(10):
        outbox.deliver(_message())
        clock.now += 1
    with pytest.raises(EmailRateLimitError, match="at most 10 messages a minute") as caught:
        outbox.deliver(_message())
    assert "try again in 50 s" in str(caught.value)
    assert len(outbox.messages()) == 10
    clock.now += 50.5  # the first send leaves the window
    outbox.deliver(_message())
    assert len(outbox.messages()) == 11


def test_rate_limit_is_shared_across_instances(tmp_path):
    clock = Clock()
    for _ in range(10):
        Outbox(tmp_path, env="dev", clock=clock).deliver(_message())
    with pytest.raises(EmailRateLimitError):
        Outbox(tmp_path, env="dev", clock=clock).deliver(_message())


def test_international_recipient_refused(tmp_path):
    outbox = Outbox(tmp_path, env="dev", clock=Clock())
    with pytest.raises(EmailRejectedError, match="non-ASCII"):
        outbox.deliver(_message("jürgen@example.com"))
    assert outbox.messages() == []


def test_international_domain_refused_but_display_name_may_be_anything(tmp_path):
    outbox = Outbox(tmp_path, env="dev", clock=Clock())
    with pytest.raises(EmailRejectedError, match="non-ASCII"):
        outbox.deliver(_message("ops@bücher.example"))
    assert outbox.messages() == []
    outbox.deliver(_message('"Öps" <ops@example.com>'))
    assert len(outbox.messages()) == 1
