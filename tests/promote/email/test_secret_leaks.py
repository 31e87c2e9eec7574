"""The SMTP password and Graph client secret never appear in anything email code writes:
stdout, stderr, exception texts and reprs, problems, .eml files, files under .promote/
(except the local tenant's own database, which holds secrets by design)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from esv.resolver import EsvValue, resolve
from promote.cli import cli
from promote.email import EmailError, check_email, provider_from_config, send_test_email
from promote.tenants.local import LOCAL_CAPABILITIES
from tests.promote.email.servers import closed_port, smtp_server
from tests.promote.email.workspaces import SMTP_CONFIG, env_file, make_workspace

SECRET = "Leak-Canary-7f3a9c"
# aiosmtpd warns when a server offers AUTH without requiring TLS; the loopback servers here
# do that on purpose (plain AUTH keeps these tests independent of certificates).
PLAIN_AUTH_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


def _written(root) -> str:
    texts = []
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("tenant.sqlite3"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_email_test_runs_never_leak_the_password(tmp_path):
    runner = CliRunner()
    outputs = []
    with smtp_server(auth=True) as server:
        root = make_workspace(
            tmp_path,
            {
                "dev": env_file(port=server.port),
                "staging": env_file(port=70000),
            },
        )
        for args in (
            ["--env", "dev", "--to", "ops@example.com"],  # refused credentials
            ["--env", "dev", "--to", "ops@example.com", "--live"],  # built-in outbox
            ["--env", "staging", "--to", "ops@example.com"],  # invalid config
            ["--debug", "--env", "dev", "--to", "ops@example.com"],
        ):
            if args[0] == "--debug":
                args = args[1:]
                command = ["--debug", "--workspace", str(root), "email", "test", *args]
            else:
                command = ["--workspace", str(root), "email", "test", *args]
            result = runner.invoke(cli, command, env={"SMTP_PASSWORD": SECRET})
            outputs += [result.stdout, result.stderr, repr(result.exception)]
    assert any("refused" in text for text in outputs)
    for text in outputs:
        assert SECRET not in text
    assert SECRET not in _written(root)


def _dev_email_problems(resolved: Any) -> list[Any]:
    """What the email checks find in ``resolved`` external.email for a local dev stage."""
    return check_email(
        {"external.email": resolved},
        env="dev",
        location="environments/dev.yaml",
        mutable=True,
        capabilities=LOCAL_CAPABILITIES,
    )


def _email_values(sender: EsvValue, password: str) -> dict[str, EsvValue]:
    """The email provider's ESV values: a fixed host and port, ``sender``, a secret password."""
    return {
        "esv-email-provider-host": EsvValue("esv-email-provider-host", "h"),
        "esv-email-provider-port": EsvValue("esv-email-provider-port", "587", "int"),
        "esv-email-provider-from": sender,
        "esv-email-provider-password": EsvValue(
            "esv-email-provider-password", password, secret=True
        ),
    }


def test_problems_and_provider_records_never_show_secrets():
    doc = json.loads(json.dumps(SMTP_CONFIG))
    doc["host"] = "&{esv.email.provider.password} bad host"
    doc["from"] = "&{esv.email.provider.password}"
    values = _email_values(EsvValue("esv-email-provider-from", "a@b.example"), SECRET)
    resolved = resolve(doc, values, object_id="external.email")
    problems = _dev_email_problems(resolved)
    assert len(problems) >= 2
    assert all(SECRET not in f"{p} {p!r}" for p in problems)
    provider = provider_from_config(resolved.value, resolved.masked)
    assert SECRET not in repr(provider) and SECRET not in provider.describe()
    assert provider.server.startswith("******** bad host:")


def test_send_errors_mask_a_secret_derived_host():
    doc = {
        "host": "&{esv.email.provider.password}",
        "port": closed_port(),
        "auth": {"enable": False},
        "from": "a@b.example",
    }
    values = {
        "esv-email-provider-password": EsvValue(
            "esv-email-provider-password", "127.0.0.1", secret=True
        )
    }
    resolved = resolve(doc, values, object_id="external.email")
    with pytest.raises(EmailError) as caught:
        send_test_email(resolved.value, env="dev", to="c@d.example", masked=resolved.masked)
    assert "********:" in str(caught.value) and "127.0.0.1" not in str(caught.value)


def test_graph_failures_never_show_secret_or_token(tmp_path):
    from esv.secrets import SecretValue
    from promote.email import GraphProvider, parse_address
    from promote.email.graph import send_graph
    from promote.email.message import test_message as build_message

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if request.url.path.endswith("token"):
            return httpx.Response(200, json={"access_token": "tok-" + SECRET})
        return httpx.Response(500, text=f"echo {body} {request.headers['authorization']}")

    provider = GraphProvider(
        mail_endpoint="https://graph.example/send",
        token_endpoint="https://login.example/token",
        client_id="c",
        client_secret=SecretValue(SECRET),
        scope=("s",),
    )
    sender, to = parse_address("a@b.example"), parse_address("c@d.example")
    assert sender and to
    with pytest.raises(EmailError) as caught:
        send_graph(provider, build_message(sender, to), transport=httpx.MockTransport(handler))
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_secret_derived_containers_and_addresses_stay_masked():
    doc = json.loads(json.dumps(SMTP_CONFIG))
    doc["smtpProperties"] = {"$array": "&{esv.email.provider.password}"}
    doc["from"] = "&{esv.email.provider.from}"
    canary_from = "leak-jürgen@example.com"
    values = _email_values(
        EsvValue("esv-email-provider-from", canary_from, secret=True),
        '["mail.mime.allowutf8=maybe", "x"]',
    )
    resolved = resolve(doc, values, object_id="external.email")
    problems = _dev_email_problems(resolved)
    paths = sorted(p.path for p in problems if p.severity == "error")
    assert paths == ["from", "smtpProperties[0]", "smtpProperties[1]"]
    for problem in problems:
        assert canary_from not in str(problem) and "maybe" not in str(problem)
