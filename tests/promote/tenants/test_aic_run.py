"""End to end: `promote run` through a workspace of `kind: aic` tenants served by the sandbox.

The sandbox serves dev -> staging -> uat -> prod on loopback; its request log shows exactly
what each run sent.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import rsa

from promote.cli import cli
from promote.sandbox import SandboxServer, start_sandbox
from promote.sandbox.server import parse_failure
from tests.promote.engine.workspaces import EMAIL

CHAIN = ("dev", "staging", "uat", "prod")
TOKEN = "sandbox-e2e-token"
PASSWORD = "e2e-Secret-pw-4417"
ENVIRON = {
    "SANDBOX_TOKEN": TOKEN,
    **{f"{e.upper()}_SMTP_PASSWORD": f"{PASSWORD}-{e}" for e in CHAIN},
}


def env_yaml(
    name: str, url: str, *, skip: tuple[str, ...] = (), service_account: bool = False
) -> str:
    variables = {
        "esv-email-provider-host": f"smtp.{name}.example.com",
        "esv-email-provider-port": '{value: "465", type: int}',
        "esv-email-provider-use-ssl": '{value: "true", type: bool}',
        "esv-email-provider-username": f"{name}-mailer",
        "esv-email-provider-from": f"noreply@{name}.example.com",
    }
    lines = [
        f"description: {name} on the sandbox",
        "tenant:",
        "  kind: aic",
        f"  url: {url}",
        "  service_account: {id: sa-e2e, jwk: {env: SA_JWK}}"
        if service_account
        else "  token: {env: SANDBOX_TOKEN}",
        "  concurrency: 4",
        f"protected: {'true' if name == 'prod' else 'false'}",
        "variables:",
    ]
    lines += [f"  {k}: {v}" for k, v in variables.items() if k not in skip]
    lines += ["secrets:", f"  esv-email-provider-password: {{env: {name.upper()}_SMTP_PASSWORD}}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def sandbox(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(list(CHAIN), state=tmp_path / "sandbox", tokens=TOKEN)


def workspace(
    root: Path, server: SandboxServer, *, service_account: bool = False, **skips: tuple[str, ...]
) -> Path:
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    for name in CHAIN:
        text = env_yaml(
            name, server.url(name), skip=skips.get(name, ()), service_account=service_account
        )
        (root / "environments" / f"{name}.yaml").write_text(text)
    (root / "config" / "external.email.json").write_text(json.dumps(EMAIL, indent=2))
    (root / "promote.yaml").write_text(f"chain: [{', '.join(CHAIN)}]\n")
    return root


def promote(root: Path, *args: str, extra: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["--workspace", str(root), *args], env={**ENVIRON, **(extra or {})}
    )


def held(server: SandboxServer, env: str) -> dict[str, object]:
    tenant = server.apis[env].tenant  # type: ignore[attr-defined]
    return tenant.read_config(sorted(tenant.list_config_ids()))


def written_texts(result: Result, root: Path, sandbox_state: Path | None = None) -> list[str]:
    """stdout, stderr and every file the run or the sandbox wrote, except each tenant's own
    store (``tenant.sqlite3*``, where the sandbox keeps secret values as AIC would)."""
    texts = [result.stdout, result.stderr]
    texts += [
        p.read_bytes().decode("latin-1") for p in (root / ".promote").rglob("*") if p.is_file()
    ]
    if sandbox_state is not None:
        texts += [
            p.read_bytes().decode("latin-1")
            for p in sandbox_state.rglob("*")
            if p.is_file() and not p.name.startswith("tenant.sqlite3")
        ]
    return texts


def assert_no_secret(result: Result, root: Path, sandbox_state: Path | None = None) -> None:
    """Nothing the run or the sandbox wrote holds a secret (an SMTP password, also base64,
    or the bearer token), except each tenant's own store."""
    from tests.helpers.leaks import assert_no_leak

    secrets = [TOKEN] + [f"{PASSWORD}-{e}" for e in CHAIN]
    for index, text in enumerate(written_texts(result, root, sandbox_state)):
        assert_no_leak(text, secrets, f"written text {index}")


def test_run_to_prod_then_second_run_writes_nothing(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox)
    first = promote(root, "run", "--to", "prod", "--approve", "prod")
    assert first.exit_code == 0, first.stdout + first.stderr
    for env in CHAIN:
        assert held(sandbox, env) == {"external.email": EMAIL}, env
        tenant = sandbox.apis[env].tenant  # type: ignore[attr-defined]
        variables = tenant.list_variables()
        assert variables["esv-email-provider-host"].value == f"smtp.{env}.example.com"
        assert all(v.loaded for v in variables.values())
        assert all(s.loaded for s in tenant.list_secrets().values())
    # promotions went through the promotion API of each upper environment
    for env in ("staging", "uat", "prod"):
        assert any(
            r.method == "POST" and r.env == env and r.path == "/environment/promotion/promote"
            for r in sandbox.requests
        )
        assert not any(
            r.method == "PUT" and r.env == env and "openidm" in r.path for r in sandbox.requests
        )
    assert_no_secret(first, root, tmp_path / "sandbox")

    sandbox.requests.clear()
    second = promote(root, "run", "--to", "prod", "--approve", "prod")
    assert second.exit_code == 0, second.stdout + second.stderr
    assert sandbox.writes() == []
    assert_no_secret(second, root)


def test_missing_esv_in_uat_stops_before_writing_anything(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox, uat=("esv-email-provider-host",))
    result = promote(root, "run", "--to", "prod", "--approve", "prod")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "esv-email-provider-host" in result.stderr
    assert "uat" in result.stderr
    assert sandbox.writes() == []
    assert_no_secret(result, root)


def test_rate_limit_429s_are_survived(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox)
    sandbox.failures.append(parse_failure("429:3:PUT /dev/environment/"))
    sandbox.failures.append(parse_failure("429:2:POST /staging/environment/promotion/promote"))
    result = promote(root, "run", "--to", "uat")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sum(r.status == 429 for r in sandbox.requests) == 5
    assert held(sandbox, "uat") == {"external.email": EMAIL}


def test_a_500_while_polling_the_restart_is_survived(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox)
    sandbox.failures.append(parse_failure("500:2:GET /staging/environment/startup"))
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 0, result.stdout + result.stderr
    polls = [
        r.status
        for r in sandbox.requests
        if (r.method, r.env, r.path) == ("GET", "staging", "/environment/startup")
    ]
    assert polls[:2] == [500, 500] and polls[-1] == 200
    tenant = sandbox.apis["staging"].tenant  # type: ignore[attr-defined]
    assert all(v.loaded for v in tenant.list_variables().values())


def test_an_environment_locked_by_someone_else_exits_4_and_writes_nothing(
    tmp_path: Path, sandbox: SandboxServer
):
    root = workspace(tmp_path / "ws", sandbox)
    sandbox.apis["uat"].tenant.lock("another-team")  # type: ignore[attr-defined]
    result = promote(root, "run", "--to", "prod", "--approve", "prod")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert "uat" in result.stderr and "locked" in result.stderr
    assert sandbox.writes() == []


def test_service_account_auth_through_a_whole_run(tmp_path: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.private_numbers()
    public = {
        "kty": "RSA",
        "n": b64u(numbers.public_numbers.n),
        "e": b64u(numbers.public_numbers.e),
    }
    private = json.dumps(
        {**public, "d": b64u(numbers.d), "p": b64u(numbers.p), "q": b64u(numbers.q)}
    )
    with start_sandbox(
        list(CHAIN), tmp_path / "sandbox", service_accounts={"sa-e2e": public}
    ) as srv:
        root = workspace(tmp_path / "ws", srv, service_account=True)
        result = promote(root, "run", "--to", "staging", extra={"SA_JWK": private})
        assert result.exit_code == 0, result.stdout + result.stderr
        assert held(srv, "staging") == {"external.email": EMAIL}
        grants = [r for r in srv.requests if r.path == "/am/oauth2/access_token"]
        assert {r.env for r in grants} == {"dev", "staging"} and all(
            r.status == 200 for r in grants
        )
        assert srv.token_endpoint is not None
        tokens = srv.token_endpoint.issued()
        assert tokens  # the run authenticated with issued tokens: none may leak
        key_parts = [b64u(numbers.d), b64u(numbers.p), b64u(numbers.q)]
        for text in written_texts(result, root, tmp_path / "sandbox"):
            for secret in [*key_parts, *tokens, private]:
                assert secret not in text


KILLABLE_RUN = "import sys; from promote.cli import cli; sys.exit(cli())"


def test_a_run_killed_mid_promotion_is_released_and_finished_by_the_next_run(
    tmp_path: Path, sandbox: SandboxServer
):
    root = workspace(tmp_path / "ws", sandbox)
    assert promote(root, "run", "--to", "staging").exit_code == 0
    (root / "config" / "external.email.json").write_text(json.dumps({**EMAIL, "debug": True}))
    record = root / ".promote" / "tenants" / "staging" / "promotion-locks.json"
    sandbox.latency = 0.1  # room to kill the run between its lock and its unlock
    child = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_RUN, "--workspace", str(root), "run", "--to", "staging"],
        env={**os.environ, **ENVIRON},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not record.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert record.exists(), "the run never recorded its promotion lock"
    finally:
        child.kill()
        child.wait()
    sandbox.latency = 0.0
    staging = sandbox.apis["staging"].tenant  # type: ignore[attr-defined]
    assert staging.lock_state().locked  # killed with the lock held
    assert held(sandbox, "staging") == {"external.email": EMAIL}  # not promoted yet

    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "released the promotion lock it left on staging" in result.stdout + result.stderr
    assert not staging.lock_state().locked and not record.exists()
    assert held(sandbox, "staging") == {"external.email": {**EMAIL, "debug": True}}


def b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


WELCOME = {
    "templateId": "welcome",
    "enabled": True,
    "defaultLocale": "en",
    "subject": {"en": "Welcome"},
    "message": {"en": "<p>Hello {{object.userName}}</p>"},
}
PLATFORM_TEMPLATE = {"templateId": "forgottenUsername", "enabled": True}


def test_an_object_removed_from_the_workspace_is_deleted_up_the_chain(
    tmp_path: Path, sandbox: SandboxServer
):
    root = workspace(tmp_path / "ws", sandbox)
    (root / "config" / "emailTemplate").mkdir()
    (root / "config" / "emailTemplate" / "welcome.json").write_text(json.dumps(WELCOME))
    # The platform's own template: promote never wrote it, so it must never offer to delete it.
    dev = sandbox.apis["dev"].tenant  # type: ignore[attr-defined]
    dev.put_config("emailTemplate/forgottenUsername", PLATFORM_TEMPLATE)
    first = promote(root, "run", "--to", "uat")
    assert first.exit_code == 0, first.stdout + first.stderr
    for env in ("dev", "staging", "uat"):
        assert set(held(sandbox, env)) == {
            "external.email",
            "emailTemplate/welcome",
            "emailTemplate/forgottenUsername",
        }, env
    record = json.loads((root / ".promote/tenants/staging/managed-config.json").read_text())
    assert record["ids"] == ["emailTemplate/welcome", "external.email"]
    assert (root / ".promote/tenants/dev/managed-config.json").stat().st_mode & 0o777 == 0o600

    (root / "config" / "emailTemplate" / "welcome.json").unlink()
    plan = promote(root, "plan", "--to", "uat", "--format", "json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    stages = {s["env"]: s for s in json.loads(plan.stdout)["stages"]}
    for env in ("dev", "staging", "uat"):
        deletes = [c["object"] for c in stages[env]["config_changes"] if c["action"] == "delete"]
        assert deletes == ["emailTemplate/welcome"], (env, stages[env]["config_changes"])
    assert "forgottenUsername" not in plan.stdout

    sandbox.requests.clear()
    second = promote(root, "run", "--to", "uat")
    assert second.exit_code == 0, second.stdout + second.stderr
    for env in ("dev", "staging", "uat"):
        assert set(held(sandbox, env)) == {"external.email", "emailTemplate/forgottenUsername"}
    deletes = [(r.env, r.path) for r in sandbox.requests if r.method == "DELETE"]
    assert ("dev", "/openidm/config/emailTemplate/welcome") in deletes  # direct, mutable dev
    assert not any(env != "dev" and "openidm" in path for env, path in deletes)  # promoted
    third = promote(root, "plan", "--to", "uat", "--detailed-exitcode")
    assert third.exit_code == 0, third.stdout + third.stderr


def test_an_unset_token_names_the_file_and_key(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox)
    result = promote(root, "plan", "--to", "staging", extra={"SANDBOX_TOKEN": None})
    assert result.exit_code == 3, result.stdout + result.stderr
    assert (
        "environments/dev.yaml: tenant.token: environment variable SANDBOX_TOKEN is not set "
        "(set it, or point tenant.token at another source)"
    ) in result.stderr
    assert sandbox.requests == []


def test_an_unset_service_account_key_names_the_file_and_key(
    tmp_path: Path, sandbox: SandboxServer
):
    root = workspace(tmp_path / "ws", sandbox, service_account=True)
    result = promote(root, "plan", "--to", "dev")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert (
        "environments/dev.yaml: tenant.service_account.jwk: environment variable SA_JWK is not set"
    ) in result.stderr


def test_a_rollback_is_recorded_from_the_lower_environment(tmp_path: Path, sandbox: SandboxServer):
    root = workspace(tmp_path / "ws", sandbox)
    assert promote(root, "run", "--to", "staging").exit_code == 0
    changed = {**EMAIL, "timeout": 20000}
    (root / "config" / "external.email.json").write_text(json.dumps(changed, indent=2))
    second = promote(root, "run", "--to", "staging")
    assert second.exit_code == 0, second.stdout + second.stderr
    assert held(sandbox, "staging") == {"external.email": changed}

    rolled = promote(root, "rollback", "--env", "staging")
    assert rolled.exit_code == 0, rolled.stdout + rolled.stderr
    assert held(sandbox, "staging") == {"external.email": EMAIL}
    history = promote(root, "history", "--env", "staging")
    assert history.exit_code == 0, history.stderr
    rollback_lines = [line for line in history.stdout.splitlines() if "rollback" in line]
    assert len(rollback_lines) == 1
    assert "  staging  rollback from dev  run " in rollback_lines[0]
    records = [
        json.loads(line)
        for line in (root / ".promote" / "history.jsonl").read_text().splitlines()
        if line.strip()
    ]
    assert [r["source"] for r in records if r.get("action") == "rollback"] == ["dev"]
    status = promote(root, "status")
    assert status.exit_code == 0, status.stderr
    assert any(
        line.strip().startswith("last rollback:") and " from dev (run " in line
        for line in status.stdout.splitlines()
    ), status.stdout
    assert "from  " not in history.stdout + status.stdout
    assert_no_secret(rolled, root, tmp_path / "sandbox")


def test_console_changes_are_drift_and_a_run_puts_them_back(tmp_path: Path, sandbox: SandboxServer):
    import httpx

    root = workspace(tmp_path / "ws", sandbox)
    assert promote(root, "run", "--to", "staging").exit_code == 0
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-API-Version": "resource=1.0"}
    changed = {**EMAIL, "host": "smtp.console.example.com"}
    with httpx.Client(base_url=sandbox.url("dev"), headers=headers) as console:
        console.put("/openidm/config/external.email", json=changed).raise_for_status()
        console.put(
            "/environment/variables/esv-email-provider-username",
            json={
                "valueBase64": base64.b64encode(b"console-user").decode(),
                "expressionType": "string",
            },
            headers={"Accept-API-Version": "protocol=1.0,resource=1.0"},
        ).raise_for_status()
    plan = promote(root, "plan", "--to", "staging", "--format", "json")
    assert plan.exit_code == 0, plan.stderr
    dev = json.loads(plan.stdout)["stages"][0]
    assert dev["status"] == "changes"
    assert dev["drift"] == [
        {
            "kind": "config",
            "object": "external.email",
            "path": "host",
            "applied": "&{esv.email.provider.host}",
            "live": "smtp.console.example.com",
        },
        {
            "kind": "esv",
            "id": "esv-email-provider-username",
            "applied": "dev-mailer",
            "live": "console-user",
        },
    ]
    text = promote(root, "plan", "--to", "dev").stdout
    assert "changed outside promote" in text
    assert "! esv-email-provider-username: 'dev-mailer' -> 'console-user'" in text
    status = promote(root, "status")
    assert "dev: differs from config (external.email)" in status.stdout
    assert "changed outside promote: 2" in status.stdout
    run = promote(root, "run", "--to", "dev")
    assert run.exit_code == 0, run.stderr
    assert held(sandbox, "dev") == {"external.email": EMAIL}
    again = json.loads(promote(root, "plan", "--to", "dev", "--format", "json").stdout)
    assert again["stages"][0]["drift"] == [] and again["stages"][0]["status"] == "in-sync"


def test_secrets_are_fingerprinted_with_the_workspace_key_and_old_ones_rewritten_once(
    tmp_path: Path, sandbox: SandboxServer
):
    import hashlib

    import httpx

    root = workspace(tmp_path / "ws", sandbox)
    key = "a-team-wide-fingerprint-key-0123456789"
    extra = {"PROMOTE_FINGERPRINT_KEY": key}
    assert promote(root, "run", "--to", "dev", extra=extra).exit_code == 0
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-API-Version": "resource=1.0"}
    with httpx.Client(base_url=sandbox.url("dev"), headers=headers) as client:
        (secret,) = client.get("/environment/secrets").json()["result"]
    description = secret["description"]
    assert description.startswith("promote:fp2:")
    password = f"{PASSWORD}-dev".encode()
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.blake2b):
        assert digest(password).hexdigest() not in description
    # same key: in sync; another key: cannot be compared, rewritten once, then in sync
    same = promote(root, "plan", "--to", "dev", "--detailed-exitcode", extra=extra)
    assert same.exit_code == 0, same.stdout
    other = {"PROMOTE_FINGERPRINT_KEY": "another-key-entirely-9876543210"}
    plan = promote(root, "plan", "--to", "dev", "--format", "json", extra=other)
    (change,) = json.loads(plan.stdout)["stages"][0]["esv_changes"]
    assert change["id"] == "esv-email-provider-password" and change["action"] == "modify"
    assert change["reason"].startswith("cannot be compared")
    assert "cannot be compared" in promote(root, "plan", "--to", "dev", extra=other).stdout
    assert promote(root, "run", "--to", "dev", extra=other).exit_code == 0
    assert promote(root, "plan", "--to", "dev", "--detailed-exitcode", extra=other).exit_code == 0
    short = promote(root, "plan", "--to", "dev", extra={"PROMOTE_FINGERPRINT_KEY": "short"})
    assert short.exit_code == 3 and "short" not in short.stderr.replace("shorter", "")
    assert "PROMOTE_FINGERPRINT_KEY is set but has 5 characters" in short.stderr


def test_a_new_secret_is_created_with_its_encoding_and_placeholder_setting(
    tmp_path: Path, sandbox: SandboxServer
):
    import httpx

    root = workspace(tmp_path / "ws", sandbox)
    dev = root / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text()
        + "  esv-signing-key: {env: SIGNING_KEY_B64, encoding: pem, useInPlaceholders: false, "
        "base64: true}\n"
    )
    key = "-----BEGIN PRIVATE KEY-----\nMIIfixture\n-----END PRIVATE KEY-----"
    encoded = base64.b64encode(key.encode()).decode()
    result = promote(root, "run", "--to", "dev", extra={"SIGNING_KEY_B64": encoded})
    assert result.exit_code == 0, result.output
    got = httpx.get(
        f"{sandbox.url('dev')}/environment/secrets/esv-signing-key",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert (got["encoding"], got["useInPlaceholders"]) == ("pem", False)
    from esv import SecretValue

    held_by = sandbox.apis["dev"].tenant  # type: ignore[attr-defined]
    assert held_by.secret_matches("esv-signing-key", SecretValue(key)) is True  # decoded once
    from tests.helpers.leaks import assert_no_leak

    for index, text in enumerate(written_texts(result, root)):
        assert_no_leak(text, [key, encoded], f"written text {index}")
