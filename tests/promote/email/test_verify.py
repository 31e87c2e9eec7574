"""``verify: {email_test: {to: ...}}`` gates after apply and restart."""

from __future__ import annotations

import httpx
import pytest

from esv.envfile import esv_values, read_secrets
from esv.resolver import resolve_objects
from promote.email import Transports, VerifyContext, VerifyError, run_verify
from promote.email.dispatch import DEFAULT_TRANSPORTS
from promote.email.outbox import Outbox
from promote.tenants.base import Capabilities
from promote.tenants.factory import open_tenant
from promote.tenants.okta import OKTA_CAPABILITIES
from promote.workspace import load_workspace
from tests.promote.email.servers import PASSWORD, smtp_server
from tests.promote.email.workspaces import env_file, make_workspace

# aiosmtpd warns when a server offers AUTH without requiring TLS; the loopback servers here
# do that on purpose (plain AUTH keeps these tests independent of certificates).
PLAIN_AUTH_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"
GATE = "verify:\n  email_test: {to: ops@example.com}\n"


def _context(root, name, transports=DEFAULT_TRANSPORTS, environ=None):
    workspace = load_workspace(root)
    env = workspace.environments[name]
    environ = {"SMTP_PASSWORD": PASSWORD} if environ is None else environ
    values = esv_values(env, read_secrets(env, workspace=workspace.root, environ=environ))
    resolved = resolve_objects(dict(workspace.config), values)
    tenant = open_tenant(env, workspace=workspace, environ=environ)
    return VerifyContext(env, tenant, resolved, workspace, transports)


class SelfTestingTenant:
    """A tenant double that can send its own test email (like Okta and AIC)."""

    capabilities = Capabilities(sends_test_email=True)
    last_test: tuple[str, str] | None = None

    def __init__(self, inner, fail: bool = False) -> None:
        self.inner = inner
        self.env = inner.env
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def send_test_email(self, *, from_address: str, to_address: str) -> None:
        from promote.errors import TenantError

        if self.fail:
            raise TenantError("test email refused", env=self.env, method="POST", status=400)
        self.calls.append((from_address, to_address))


def test_no_gate_returns_none(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1)})
    assert run_verify(_context(root, "dev")) is None


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_gate_sends_through_resolved_smtp(tmp_path):
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port, extra=GATE)})
        summary = run_verify(_context(root, "dev"))
    assert summary is not None and summary.startswith("verify email_test passed for dev")
    assert len(server.mailbox.envelopes) == 1
    assert PASSWORD not in summary


@pytest.mark.filterwarnings(PLAIN_AUTH_WARNING)
def test_failed_gate_names_environment(tmp_path):
    with smtp_server(auth=True) as server:
        root = make_workspace(tmp_path, {"dev": env_file(port=server.port, extra=GATE)})
        ctx = _context(root, "dev", environ={"SMTP_PASSWORD": "wrong-pw-42"})
        with pytest.raises(VerifyError) as caught:
            run_verify(ctx)
    text = str(caught.value)
    assert text.startswith("verify gate email_test failed for dev")
    assert f"127.0.0.1:{server.port}" in text and "wrong-pw-42" not in text
    assert caught.value.exit_code == 1


def test_gate_uses_the_outbox_for_builtin_provider(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=GATE)}, config=None)
    summary = run_verify(_context(root, "dev"))
    assert summary and "built-in provider" in summary
    outbox = Outbox(root / ".promote" / "tenants" / "dev" / "outbox", env="dev")
    assert len(outbox.messages()) == 1


def test_gate_prefers_the_tenant_own_test(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=GATE)})
    ctx = _context(root, "dev")
    tenant = SelfTestingTenant(ctx.tenant)
    ctx = VerifyContext(ctx.env, tenant, ctx.resolved, ctx.workspace)  # type: ignore[arg-type]
    summary = run_verify(ctx)
    assert tenant.calls == [("noreply@example.com", "ops@example.com")]
    assert summary and "dev's tenant" in summary


def test_gate_tenant_failure_stops(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=GATE)})
    ctx = _context(root, "dev")
    tenant = SelfTestingTenant(ctx.tenant, fail=True)
    ctx = VerifyContext(ctx.env, tenant, ctx.resolved, ctx.workspace)  # type: ignore[arg-type]
    with pytest.raises(VerifyError, match="failed for dev: dev: test email refused"):
        run_verify(ctx)


def test_gate_over_graph_with_mock_transport(tmp_path):
    graph = {
        "type": "msgraph",
        "mailEndpoint": "https://graph.example/v1.0/users/me/sendMail",
        "from": "me@acme.example",
        "auth": {
            "enable": True,
            "type": "oauth2",
            "clientId": "client-1",
            "clientSecret": "&{esv.email.provider.password}",
            "tokenEndpoint": "https://login.example/token",
            "scope": ["https://graph.microsoft.com/.default"],
        },
    }
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/token":
            assert PASSWORD in request.content.decode()
            return httpx.Response(200, json={"access_token": "tok"})
        return httpx.Response(202)

    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=GATE)}, config=graph)
    transports = Transports(http=httpx.MockTransport(handler))
    summary = run_verify(_context(root, "dev", transports))
    assert seen == ["/token", "/v1.0/users/me/sendMail"]
    assert summary and "msgraph https://graph.example" in summary


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ("verify:\n  email_test: {to: not-an-address}\n", "verify.email_test.to"),
        ("verify:\n  email_test: {}\n", "verify.email_test.to"),
        ("verify:\n  smoke_test: {}\n", "unknown gate"),
    ],
)
def test_malformed_gate(tmp_path, verify, message):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=verify)})
    try:
        ctx = _context(root, "dev")
    except Exception as error:  # the env file loader may reject it first: also fine
        assert getattr(error, "exit_code", None) == 3
        return
    with pytest.raises(VerifyError, match=message):
        run_verify(ctx)


class PlatformEmailTenant:
    """A tenant double whose built-in email is the platform's own (like Okta's)."""

    capabilities = OKTA_CAPABILITIES

    def __init__(self, inner) -> None:
        self.env = inner.env


def test_gate_skipped_for_okta_builtin_email(tmp_path):
    root = make_workspace(tmp_path, {"dev": env_file(port=1, extra=GATE)}, config=None)
    ctx = _context(root, "dev")
    tenant = PlatformEmailTenant(ctx.tenant)
    summary = run_verify(VerifyContext(ctx.env, tenant, ctx.resolved, ctx.workspace))  # type: ignore[arg-type]
    assert (
        summary
        == "verify email_test skipped for dev: the platform's built-in email cannot be tested"
    )
    assert not (root / ".promote" / "tenants" / "dev" / "outbox").exists()


def test_every_tenant_is_what_its_email_capabilities_say(tmp_path):
    from esv.secrets import SecretValue
    from promote.http import StaticAuth
    from promote.tenants.aic import AicTenant
    from promote.tenants.base import EmailOutbox, EmailTestable, email_outbox, email_testable
    from promote.tenants.local import LocalTenant
    from promote.tenants.okta import OktaTenant

    tenants = [
        LocalTenant("dev", tmp_path / "local", mutable=True),
        AicTenant("aic", "http://127.0.0.1:9", auth=StaticAuth("Bearer x"), mutable=True),
        OktaTenant("okta", url="http://127.0.0.1:9", token=SecretValue("t"), state_dir=tmp_path),
    ]
    try:
        for tenant in tenants:
            caps = tenant.capabilities
            assert isinstance(tenant, EmailTestable) == caps.sends_test_email, tenant
            assert (email_testable(tenant) is tenant) == caps.sends_test_email
            assert isinstance(tenant, EmailOutbox) == (caps.builtin_email == "outbox"), tenant
        assert email_outbox(tenants[0]) == tmp_path / "local" / "outbox"
        assert [email_outbox(t) for t in tenants[1:]] == [None, None]
    finally:
        for tenant in tenants:
            tenant.close()
