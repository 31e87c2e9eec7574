"""``promote plan`` / ``promote run`` into an Okta org served by the sandbox, through the CLI.

The workspace chain is ``dev`` (local) → ``okta`` (``tenant: {kind: okta}``); every test
asserts exit codes and streams, and the last one searches everything written for secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from promote.sandbox.okta_api import OktaApi
from promote.sandbox.server import EnvSpec, SandboxServer
from tests.helpers.leaks import assert_no_leak
from tests.promote.engine.workspaces import EMAIL as ENGINE_EMAIL

TOKEN = "cli-Okta-T0KEN-5150"
PASSWORD = "cli-Okta-Smtp-Pa55-8086"
DEV_PASSWORD = "cli-Dev-Smtp-Pa55-1234"
ENVIRON = {"OKTA_TOKEN": TOKEN, "OKTA_SMTP_PASSWORD": PASSWORD, "DEV_SMTP_PASSWORD": DEV_PASSWORD}
# The engine tests' provider, with STARTTLS (Okta's servers take no SSL setting).
EMAIL = {**{k: v for k, v in ENGINE_EMAIL.items() if k != "ssl"}, "starttls": {"enable": True}}
API = "/api/v1/email-servers"


def variables(name: str, port: str = "587") -> str:
    return (
        "variables:\n"
        f"  esv-email-provider-host: smtp.{name}.example.com\n"
        f'  esv-email-provider-port: {{value: "{port}", type: int}}\n'
        f"  esv-email-provider-username: {name}-mailer\n"
        f"  esv-email-provider-from: noreply@{name}.example.com\n"
        "secrets:\n"
        f"  esv-email-provider-password: {{env: {name.upper()}_SMTP_PASSWORD}}\n"
    )


def write_okta_env(root: Path, url: str, *, port: str = "587") -> None:
    (root / "environments" / "okta.yaml").write_text(
        "description: Okta org\n"
        "tenant:\n"
        "  kind: okta\n"
        f"  url: {url}\n"
        "  token: {env: OKTA_TOKEN}\n"
        "mutable: true\n"
        "verify:\n"
        "  email_test: {to: ops@example.com}\n" + variables("okta", port)
    )


@pytest.fixture
def sandbox(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(
        [EnvSpec("okta", "okta", mutable=True)], state=tmp_path / "sandbox", tokens=TOKEN
    )


@pytest.fixture
def ws(tmp_path: Path, sandbox: SandboxServer) -> Path:
    root = tmp_path / "ws"
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "promote.yaml").write_text("chain: [dev, okta]\n")
    (root / "environments" / "dev.yaml").write_text(
        "tenant: {kind: local}\nmutable: true\n" + variables("dev")
    )
    write_okta_env(root, sandbox.url("okta"))
    (root / "config" / "external.email.json").write_text(json.dumps(EMAIL, indent=2))
    return root


def promote(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], env=ENVIRON)


def org(sandbox: SandboxServer) -> OktaApi:
    api = sandbox.apis["okta"]
    assert isinstance(api, OktaApi)
    return api


def okta_writes(sandbox: SandboxServer) -> list[str]:
    return [
        f"{r.method} {r.path.split('/', 4)[-1] if r.path != API else ''}" for r in sandbox.writes()
    ]


def test_first_run_creates_one_server_and_tests_it(ws: Path, sandbox: SandboxServer) -> None:
    plan = promote(ws, "plan", "--to", "okta")
    assert plan.exit_code == 0, plan.output
    assert "okta <- dev: changes" in plan.stdout
    assert "        auth.password: will be set\n" in plan.stdout  # never a masked value
    assert "********" not in plan.stdout
    assert sandbox.writes() == []

    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    assert "okta: applied" in result.stdout
    writes = [(r.method, r.path.rsplit("/", 1)[-1]) for r in sandbox.writes()]
    assert [method for method, _ in writes] == ["POST", "POST", "PATCH"]  # create, test, enable
    assert writes[1][1] == "test"  # the one test of this stage: verify does not send another
    assert "verify email_test passed for okta (server test during apply)" in result.stderr
    servers = [s for s in _listed(sandbox)]
    assert len(servers) == 1 and servers[0]["enabled"] is True
    assert servers[0]["host"] == "smtp.okta.example.com" and "password" not in servers[0]
    (message,) = org(sandbox).outbox()
    assert message["toAddress"] == "ops@example.com"
    assert message["fromAddress"] == "noreply@okta.example.com"


def test_second_run_sends_nothing(ws: Path, sandbox: SandboxServer) -> None:
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    sandbox.requests.clear()
    plan = promote(ws, "plan", "--to", "okta", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "okta <- dev: in-sync" in plan.stdout
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    assert sandbox.writes() == []


def test_port_change_sends_one_patch(ws: Path, sandbox: SandboxServer) -> None:
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    write_okta_env(ws, sandbox.url("okta"), port="465")
    plan = promote(ws, "plan", "--to", "okta")
    assert "port: 587 -> 465" in plan.stdout
    sandbox.requests.clear()
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    assert [r.method for r in sandbox.writes() if r.method == "PATCH"] == ["PATCH"]
    assert len([r for r in sandbox.writes() if r.path.endswith("/test")]) == 1
    assert len(org(sandbox).outbox()) == 2  # one per applied stage: first run, this run
    assert _listed(sandbox)[0]["port"] == 465


def test_rotated_password_shows_as_will_be_set(ws: Path, sandbox: SandboxServer) -> None:
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    env = {**ENVIRON, "OKTA_SMTP_PASSWORD": "rotated-" + PASSWORD}
    plan = CliRunner().invoke(
        cli, ["--workspace", str(ws), "plan", "--to", "okta", "--format", "json"], env=env
    )
    assert plan.exit_code == 0, plan.output
    (stage,) = [s for s in json.loads(plan.stdout)["stages"] if s["env"] == "okta"]
    assert stage["config_changes"] == [
        {
            "object": "external.email",
            "action": "modify",
            "changes": [{"path": "auth.password", "after": "********"}],
        }
    ]


def test_a_429_with_reset_is_survived(ws: Path, sandbox: SandboxServer) -> None:
    org(sandbox).configure(rate_window=2)  # long enough to be hit before it ends
    org(sandbox).exhaust_rate_limit()
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    assert 429 in [r.status for r in sandbox.requests]
    assert len(_listed(sandbox)) == 1


def test_removing_external_email_deletes_the_server(ws: Path, sandbox: SandboxServer) -> None:
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    (ws / "config" / "external.email.json").unlink()
    plan = promote(ws, "plan", "--to", "okta")
    assert plan.exit_code == 0, plan.output
    okta_part = plan.stdout[plan.stdout.index("okta <- dev") :]
    assert "- external.email" in okta_part
    sandbox.requests.clear()
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    assert [r.method for r in sandbox.writes()] == ["DELETE"]
    assert _listed(sandbox) == []


def test_inexpressible_config_blocks_before_anything_changes(
    ws: Path, sandbox: SandboxServer
) -> None:
    email = {**EMAIL, "smtpProperties": ["mail.mime.allowutf8=true"]}
    (ws / "config" / "external.email.json").write_text(json.dumps(email))
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 3, result.output
    assert "smtpProperties[0]" in result.output
    assert sandbox.writes() == []


def test_failed_test_stops_the_walk_and_says_so(ws: Path, sandbox: SandboxServer) -> None:
    text = (ws / "environments" / "okta.yaml").read_text()
    (ws / "environments" / "okta.yaml").write_text(
        text.replace("smtp.okta.example.com", "smtp.okta.invalid")
    )
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 1, result.output
    assert "created disabled" in result.stderr
    assert PASSWORD not in result.output and TOKEN not in result.output
    assert [s["enabled"] for s in _listed(sandbox)] == [False]


def test_secrets_never_leave_the_sandbox_database(
    ws: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    outputs = [promote(ws, "plan", "--to", "okta"), promote(ws, "run", "--to", "okta")]
    write_okta_env(ws, sandbox.url("okta"), port="465")
    outputs += [promote(ws, "run", "--to", "okta"), promote(ws, "status"), promote(ws, "history")]
    outputs += [promote(ws, "plan", "--to", "okta", "--format", f) for f in ("markdown", "json")]
    for result in outputs:
        assert_no_leak(result.output, [PASSWORD, TOKEN], "an output")
    org(sandbox).close()  # checkpoint the WAL into the database file
    in_db = False
    for path in tmp_path.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.parent.name == "okta" and path.name.startswith("okta.sqlite3"):
            in_db = in_db or PASSWORD.encode() in data
            continue
        # Everything else, the Okta record of what promote wrote included: not the value,
        # not its base64, not an unkeyed digest of it.
        assert_no_leak(data, [PASSWORD, TOKEN], str(path))
    assert in_db


def _listed(sandbox: SandboxServer) -> list[dict[str, object]]:
    from promote.sandbox.routes import SandboxRequest

    response = org(sandbox).handle(
        SandboxRequest("GET", API, {}, {"authorization": f"SSWS {TOKEN}"})
    )
    assert response is not None
    return list(response.json["email-servers"])


def test_an_unset_token_names_the_file_and_key(ws: Path) -> None:
    # Added by the aic engineer with the open_okta error fix (same fix as open_aic).
    result = CliRunner().invoke(
        cli, ["--workspace", str(ws), "plan", "--to", "okta"], env={**ENVIRON, "OKTA_TOKEN": None}
    )
    assert result.exit_code == 3, result.output
    assert (
        "environments/okta.yaml: tenant.token: environment variable OKTA_TOKEN is not set "
        "(set it, or point tenant.token at another source)"
    ) in result.stderr


def _server_list_reads(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.requests if r.method == "GET" and r.path == API)


def test_a_plan_stage_reads_the_server_list_once(ws: Path, sandbox: SandboxServer) -> None:
    plan = promote(ws, "plan", "--to", "okta")
    assert plan.exit_code == 0, plan.output
    assert _server_list_reads(sandbox) == 1  # no server yet
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    sandbox.requests.clear()
    plan = promote(ws, "plan", "--to", "okta", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert _server_list_reads(sandbox) == 1  # ids, config and write-only values: one read
    assert len(sandbox.requests) == 1


def test_a_write_reads_the_server_list_afresh(ws: Path, sandbox: SandboxServer) -> None:
    assert promote(ws, "run", "--to", "okta").exit_code == 0
    (server,) = _listed(sandbox)
    write_okta_env(ws, sandbox.url("okta"), port="465")
    sandbox.requests.clear()
    result = promote(ws, "run", "--to", "okta")
    assert result.exit_code == 0, result.output
    # the plan's one read; put_config's own before its PATCH and test; after the writes the
    # engine's record reads again (any write forgets the list)
    assert [(r.method, r.path.replace(str(server["id"]), "ID")) for r in sandbox.requests] == [
        ("GET", API),
        ("GET", API),
        ("PATCH", f"{API}/ID"),
        ("POST", f"{API}/ID/test"),
        ("GET", API),
    ]


def test_a_server_edited_in_the_okta_console_is_drift_and_a_run_puts_it_back(
    ws: Path, sandbox: SandboxServer
) -> None:
    import httpx

    assert promote(ws, "run", "--to", "okta").exit_code == 0
    (server,) = _listed(sandbox)
    # What the Okta admin console sends: the Email Servers API's update (PATCH).
    with httpx.Client(
        base_url=sandbox.url("okta"), headers={"Authorization": f"SSWS {TOKEN}"}
    ) as console:
        edited = {"host": "smtp.console.example.com", "port": 2525}
        console.patch(f"{API}/{server['id']}", json=edited).raise_for_status()
    plan = promote(ws, "plan", "--to", "okta", "--format", "json")
    assert plan.exit_code == 0, plan.output
    okta = json.loads(plan.stdout)["stages"][1]
    assert okta["status"] == "changes"
    assert okta["drift"] == [
        {
            "kind": "config",
            "object": "external.email",
            "path": "host",
            "applied": "smtp.okta.example.com",
            "live": "smtp.console.example.com",
        },
        {
            "kind": "config",
            "object": "external.email",
            "path": "port",
            "applied": 587,
            "live": 2525,
        },
    ]
    paths = {c["path"] for c in okta["config_changes"][0]["changes"]}
    assert paths == {"host", "port"}  # what a run puts back
    text = promote(ws, "plan", "--to", "okta").stdout
    assert "changed outside promote" in text and PASSWORD not in text
    run = promote(ws, "run", "--to", "okta")
    assert run.exit_code == 0, run.output
    (server,) = _listed(sandbox)
    assert (server["host"], server["port"]) == ("smtp.okta.example.com", 587)
    again = json.loads(promote(ws, "plan", "--to", "okta", "--format", "json").stdout)
    assert again["stages"][1]["drift"] == [] and again["stages"][1]["status"] == "in-sync"
    record = (ws / ".promote" / "applied" / "okta.json").read_text()
    # Okta never returns the password: the record holds no trace of it at all.
    assert PASSWORD not in record and "password" not in record
