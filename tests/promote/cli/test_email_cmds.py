"""``promote email test`` through CliRunner against loopback servers."""

from __future__ import annotations

import json
import ssl
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner, Result

from promote.cli import cli
from promote.email.model import TEST_SUBJECT
from promote.sandbox.server import EnvSpec
from promote.tenants.factory import open_tenant
from promote.tenants.local import LocalTenant
from promote.workspace import load_workspace
from tests.promote.email.servers import PASSWORD, USER, certificates, smtp_server
from tests.promote.email.workspaces import SMTP_CONFIG, env_file, make_workspace

# aiosmtpd warns when a server offers AUTH without requiring TLS; the loopback servers here
# do that on purpose (plain AUTH keeps these tests independent of certificates).
PLAIN_AUTH_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


def _run(root, *args, env=None):
    runner = CliRunner()
    environ = {"SMTP_PASSWORD": PASSWORD, **(env or {})}
    return runner.invoke(cli, ["--workspace", str(root), "email", "test", *args], env=environ)


def _no_secret(result, *extra):
    for text in (result.stdout, result.stderr):
        assert PASSWORD not in text
        for secret in extra:
            assert secret not in text


def _send_over_smtp(tmp_path: Path, to: str) -> tuple[Result, Any]:
    """``email test --env dev --to TO`` through a loopback SMTP server that wants AUTH;
    the result and the (stopped) server, whose mailbox holds what it received."""
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port)})
        result = _run(root, "--env", "dev", "--to", to)
    return result, server


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_sends_through_the_environment_smtp_server(tmp_path):
    result, server = _send_over_smtp(tmp_path, "ops@example.com")
    assert result.exit_code == 0, result.stderr
    assert f"via smtp 127.0.0.1:{server.port}" in result.stdout
    assert "workspace config/" in result.stdout
    assert server.mailbox.logins == [USER]
    [envelope] = server.mailbox.envelopes
    assert envelope.rcpt_tos == ["ops@example.com"]
    assert message_from_bytes(envelope.content)["Subject"] == TEST_SUBJECT
    _no_secret(result)


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_each_environment_uses_its_own_values(tmp_path):
    with smtp_server(auth=True) as dev, smtp_server(auth=True) as staging:
        root = make_workspace(
            tmp_path,
            {"dev": env_file(port=dev.port), "staging": env_file(port=staging.port)},
        )
        result = _run(root, "--env", "staging", "--to", "ops@example.com")
    assert result.exit_code == 0, result.stderr
    assert dev.mailbox.envelopes == [] and len(staging.mailbox.envelopes) == 1


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_refused_password_exits_1_naming_server_not_password(tmp_path):
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port)})
        result = _run(
            root, "--env", "dev", "--to", "ops@example.com", env={"SMTP_PASSWORD": "nope-123"}
        )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: dev: 127.0.0.1:{server.port}: ")
    assert "refused" in result.stderr
    assert "nope-123" not in result.stderr + result.stdout
    assert server.mailbox.envelopes == []


def test_starttls_verifies_the_certificate(tmp_path):
    certs = certificates()
    with smtp_server(auth=True, tls=certs.server) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port, starttls=True)})
        result = _run(root, "--env", "dev", "--to", "ops@example.com")
    # the CLI trusts only the system's CAs, so the test CA's certificate is refused
    assert result.exit_code == 1
    assert "certificate" in result.stderr and f"127.0.0.1:{server.port}" in result.stderr
    assert server.mailbox.envelopes == []
    _no_secret(result)


def test_invalid_provider_for_this_environment_exits_3(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=70000)})
    result = _run(root, "--env", "dev", "--to", "ops@example.com")
    assert result.exit_code == 3
    assert "external.email: port: is 70000" in result.stderr
    assert "nothing was sent" in result.stderr


def test_builtin_provider_writes_to_the_local_outbox(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)}, config=None)
    result = _run(root, "--env", "dev", "--to", "ops@example.com")
    assert result.exit_code == 0, result.stderr
    [eml] = (root / ".promote" / "tenants" / "dev" / "outbox").glob("*.eml")
    message = message_from_bytes(eml.read_bytes())
    assert message["From"] == "noreply@dev.local" and message["To"] == "ops@example.com"
    assert str(eml) in result.stdout


def test_builtin_provider_refuses_international_recipient(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)}, config=None)
    result = _run(root, "--env", "dev", "--to", "jürgen@example.com")
    assert result.exit_code == 3
    assert "built-in" in result.stderr and "international" in result.stderr


def test_builtin_provider_in_immutable_environment_is_blocked(tmp_path):
    root = make_workspace(
        tmp_path, {"dev": env_file(port=1), "staging": env_file(port=1)}, config=None
    )
    result = _run(root, "--env", "staging", "--to", "ops@example.com")
    assert result.exit_code == 3
    assert "environments/staging.yaml" in result.stderr and "built-in" in result.stderr


def test_builtin_rate_limit_exits_1(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)}, config=None)
    for _ in range(10):
        assert _run(root, "--env", "dev", "--to", "ops@example.com").exit_code == 0
    result = _run(root, "--env", "dev", "--to", "ops@example.com")
    assert result.exit_code == 1
    assert "at most 10 messages a minute" in result.stderr


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_live_uses_what_the_tenant_holds(tmp_path):
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port)}, config=None)
        # the workspace has no external.email, but the tenant holds one
        tenant = LocalTenant("dev", root / ".promote" / "tenants" / "dev", mutable=True)
        tenant.put_config("external.email", json.loads(json.dumps(SMTP_CONFIG)))
        tenant.close()
        result = _run(root, "--env", "dev", "--to", "ops@example.com", "--live")
    assert result.exit_code == 0, result.stderr
    assert "what dev's tenant holds" in result.stdout
    assert len(server.mailbox.envelopes) == 1
    _no_secret(result)


def test_live_without_external_email_uses_the_outbox(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)})
    result = _run(root, "--env", "dev", "--to", "ops@example.com", "--live")
    assert result.exit_code == 0, result.stderr
    assert "built-in provider" in result.stdout


def test_from_override_and_warnings_on_stderr(tmp_path):
    config = json.loads(json.dumps(SMTP_CONFIG))
    config["auth"] = {"enable": False}
    del config["from"]
    with smtp_server() as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port)}, config=config)
        config["host"] = "127.0.0.1"
        config["port"] = server.port
        (root / "config" / "external.email.json").write_text(json.dumps(config))
        result = _run(
            root, "--env", "dev", "--to", "ops@example.com", "--from", "Ops <ops@acme.example>"
        )
    assert result.exit_code == 0, result.stderr
    [envelope] = server.mailbox.envelopes
    assert envelope.mail_from == "ops@acme.example"
    assert "warning: external.email: from: is not set" in result.stderr


def test_unknown_environment_and_usage_errors(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)})
    result = _run(root, "--env", "qa", "--to", "ops@example.com")
    assert result.exit_code == 3 and "no environment 'qa'" in result.stderr
    result = _run(root, "--env", "dev")
    assert result.exit_code == 2 and "--to" in result.stderr


def test_missing_secret_is_named_not_shown(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, password_var="NOT_SET_ANYWHERE")})
    result = _run(root, "--env", "dev", "--to", "ops@example.com")
    assert result.exit_code == 3
    assert "NOT_SET_ANYWHERE" in result.stderr


def test_starttls_with_a_trusted_ca_sends(tmp_path):
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with smtp_server(auth=True, tls=server_ctx) as server:
        root = make_workspace(tmp_path / "ws", {"dev": env_file(port=server.port, starttls=True)})
        # OpenSSL reads SSL_CERT_FILE when the default context loads the system's CAs
        result = _run(
            root, "--env", "dev", "--to", "ops@example.com", env={"SSL_CERT_FILE": str(bundle)}
        )
    assert result.exit_code == 0, result.stderr
    assert "(STARTTLS)" in result.stdout
    assert server.mailbox.logins == [USER] and len(server.mailbox.envelopes) == 1


OKTA_TOKEN = "okta-Sandbox-token-99"


def _live_workspace(tmp_path, env: str, kind: str, url: str, config) -> tuple[object, dict]:  # type: ignore[no-untyped-def]
    """A workspace whose ``env`` is a ``kind`` tenant served by the sandbox at ``url``, holding
    ``config`` as its external.email (written through the tenant, as a run would)."""
    token_var = f"{kind.upper()}_TOKEN"
    text = (
        f"tenant:\n  kind: {kind}\n  url: {url}\n  token: {{env: {token_var}}}\n"
        + env_file(port=587, host=f"smtp.{env}.example.com").split("\n", 2)[2]
    )
    root = make_workspace(tmp_path / "ws", {env: text})
    environ = {token_var: OKTA_TOKEN, "SMTP_PASSWORD": PASSWORD}
    workspace = load_workspace(root)
    tenant = open_tenant(workspace.environments[env], workspace=workspace, environ=environ)
    tenant.put_config("external.email", config)
    tenant.close()
    return root, environ


def test_live_okta_uses_the_org_test_endpoint(tmp_path, start_sandboxes):
    sandbox = start_sandboxes(
        [EnvSpec("staging", "okta", mutable=True)], state=tmp_path / "sandbox", tokens=OKTA_TOKEN
    )
    config = dict(SMTP_CONFIG, host="smtp.staging.example.com", port=587)
    config["from"] = "noreply@example.com"
    config["auth"] = {"enable": True, "username": "mailer", "password": PASSWORD}
    config["starttls"] = {"enable": True}
    root, environ = _live_workspace(tmp_path, "staging", "okta", sandbox.url("staging"), config)
    result = _run(root, "--env", "staging", "--to", "ops@example.com", "--live", env=environ)
    outbox = sandbox.apis["staging"].outbox()  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.stderr
    assert "sent by staging's tenant (okta)" in result.stdout
    assert [(m["fromAddress"], m["toAddress"]) for m in outbox][-1] == (
        "noreply@example.com",
        "ops@example.com",
    )
    _no_secret(result, OKTA_TOKEN)


def test_live_aic_uses_the_tenant_external_email_endpoint(tmp_path, start_sandboxes):
    sandbox = start_sandboxes(["dev"], state=tmp_path / "sandbox", tokens=OKTA_TOKEN)
    root, environ = _live_workspace(tmp_path, "dev", "aic", sandbox.url("dev"), SMTP_CONFIG)
    result = _run(root, "--env", "dev", "--to", "ops@example.com", "--live", env=environ)
    assert result.exit_code == 0, result.stderr
    assert "sent by dev's tenant (aic)" in result.stdout
    [line] = (tmp_path / "sandbox" / "dev" / "outbox.jsonl").read_text().splitlines()
    sent = json.loads(line)
    assert (sent["from"], sent["to"], sent["subject"]) == (
        "noreply@example.com",
        "ops@example.com",
        TEST_SUBJECT,
    )
    _no_secret(result, OKTA_TOKEN)


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_international_domain_over_smtp_is_sent_as_idna_without_allowutf8(tmp_path):
    result, server = _send_over_smtp(tmp_path, "ops@bücher.example")
    assert result.exit_code == 0, result.stderr
    assert "ops@bücher.example (as ops@xn--bcher-kva.example)" in result.stdout
    [envelope] = server.mailbox.envelopes
    assert envelope.rcpt_tos == ["ops@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in envelope.mail_options
    _no_secret(result)


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_international_local_part_without_allowutf8_exits_3_with_the_hint(tmp_path):
    result, server = _send_over_smtp(tmp_path, "jürgen@bücher.example")
    assert result.exit_code == 3
    assert "needs mail.mime.allowutf8=true" in result.stderr
    assert '"mail.mime.allowutf8=true" to smtpProperties' in result.stderr
    assert "nothing was sent" in result.stderr and server.mailbox.envelopes == []


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_international_local_part_with_allowutf8_is_sent_with_smtputf8(tmp_path):
    config = dict(SMTP_CONFIG, smtpProperties=["mail.mime.allowutf8=true"])
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port)}, config=config)
        result = _run(root, "--env", "dev", "--to", "jürgen@bücher.example")
    assert result.exit_code == 0, result.stderr
    [envelope] = server.mailbox.envelopes
    assert envelope.rcpt_tos == ["jürgen@xn--bcher-kva.example"]
    assert "SMTPUTF8" in envelope.mail_options
    _no_secret(result)


def test_builtin_provider_refuses_international_domain(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)}, config=None)
    result = _run(root, "--env", "dev", "--to", "ops@bücher.example")
    assert result.exit_code == 3
    assert "built-in" in result.stderr and "international" in result.stderr
    assert list((root / ".promote" / "tenants" / "dev" / "outbox").glob("*.eml")) == []
