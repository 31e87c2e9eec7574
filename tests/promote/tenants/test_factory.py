"""open_tenant: the environment file's tenant section decides which tenant opens where."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from esv.errors import Problem
from esv.resolver import Resolved, resolve
from promote.errors import BlockedError
from promote.tenants import Tenant, open_tenant
from promote.tenants.factory import config_problems
from promote.tenants.local import DB_NAME, LocalTenant
from promote.workspace import Workspace, load_workspace


def _workspace(root: Path, files: dict[str, str]) -> Workspace:
    (root / "config").mkdir(parents=True)
    (root / "environments").mkdir()
    for name, text in files.items():
        (root / "environments" / f"{name}.yaml").write_text(text)
    return load_workspace(root)


def test_local_tenants_default_to_the_workspace_state_dir(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, {"dev": "variables: {}\n", "staging": "variables: {}\n"})
    dev = open_tenant(workspace.environments["dev"], workspace=workspace, environ={})
    staging = open_tenant(workspace.environments["staging"], workspace=workspace, environ={})
    try:
        assert isinstance(dev, LocalTenant) and isinstance(staging, LocalTenant)
        assert isinstance(dev, Tenant)
        assert dev.path == tmp_path / ".promote" / "tenants" / "dev" / DB_NAME
        assert not (tmp_path / ".promote").exists()  # created by the first write
        assert (dev.mutable, staging.mutable) == (True, False)
        assert (dev.env, staging.env) == ("dev", "staging")
        assert dev.restart_seconds == 0.0
    finally:
        dev.close()
        staging.close()


def test_local_tenant_settings_come_from_the_file(tmp_path: Path) -> None:
    workspace = _workspace(
        tmp_path,
        {
            "dev": "tenant: {kind: local, path: state/dev-tenant, restart_seconds: 2.5}\n",
            "staging": "mutable: true\n",
        },
    )
    dev = open_tenant(workspace.environments["dev"], workspace=workspace)
    staging = open_tenant(workspace.environments["staging"], workspace=workspace)
    try:
        assert isinstance(dev, LocalTenant) and isinstance(staging, LocalTenant)
        assert dev.state_dir == tmp_path / "state" / "dev-tenant"
        assert dev.restart_seconds == 2.5
        assert staging.mutable is True
        staging.put_config("external.email", {"host": "x"})
    finally:
        dev.close()
        staging.close()


def test_reopening_sees_the_same_state(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, {"dev": "variables: {}\n"})
    env = workspace.environments["dev"]
    first = open_tenant(env, workspace=workspace)
    first.put_config("external.email", {"host": "x"})
    first.close()
    again = open_tenant(env, workspace=workspace)
    assert again.read_config(["external.email"]) == {"external.email": {"host": "x"}}
    again.close()


def _with_tenant(workspace: Workspace, env: str, tenant: dict[str, object]) -> Workspace:
    changed = dataclasses.replace(workspace.environments[env], tenant=tenant)
    return dataclasses.replace(workspace, environments={**workspace.environments, env: changed})


def test_unknown_kind_is_blocked_with_the_file_and_key(tmp_path: Path) -> None:
    workspace = _with_tenant(_workspace(tmp_path, {"dev": "{}\n"}), "dev", {"kind": "azure"})
    with pytest.raises(BlockedError) as caught:
        open_tenant(workspace.environments["dev"], workspace=workspace)
    assert caught.value.exit_code == 3
    assert "environments/dev.yaml" in str(caught.value)
    (problem,) = caught.value.problems
    assert problem.path == "tenant.kind" and "local, aic, okta" in str(problem)
    assert not (tmp_path / ".promote").exists()


@pytest.mark.parametrize("value", [-1, "soon", float("nan"), None])
def test_bad_restart_seconds_is_blocked(tmp_path: Path, value: object) -> None:
    workspace = _with_tenant(
        _workspace(tmp_path, {"dev": "{}\n"}), "dev", {"kind": "local", "restart_seconds": value}
    )
    with pytest.raises(BlockedError) as caught:
        open_tenant(workspace.environments["dev"], workspace=workspace)
    assert caught.value.problems[0].path == "tenant.restart_seconds"
    assert not (tmp_path / ".promote").exists()


def test_remote_kinds_go_to_their_modules(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, {"dev": "{}\n"})
    for kind in ("aic", "okta"):
        remote = _with_tenant(workspace, "dev", {"kind": kind})  # no url: their own error
        with pytest.raises(Exception) as caught:
            open_tenant(remote.environments["dev"], workspace=remote, environ={})
        assert "url" in str(caught.value)
        assert caught.value.exit_code == 3  # type: ignore[attr-defined]


def _resolved(email: dict[str, object]) -> dict[str, Resolved]:
    return {"external.email": resolve(email, {}, object_id="external.email")}


OKTA_EMAIL: dict[str, object] = {
    "host": "smtp.example.com",
    "port": 2525,
    "from": "noreply@example.com",
    "auth": {"enable": True, "username": "mailer", "password": "pw-Factory-9"},
    "smtpProperties": ["mail.smtp.x=1"],
}


def test_config_problems_dispatch_by_kind() -> None:
    resolved = _resolved(OKTA_EMAIL)
    found = config_problems("okta", resolved, location="environments/okta.yaml")
    assert [(p.location, p.path, p.severity) for p in found] == [
        ("external.email", "port", "warning"),
        ("external.email", "smtpProperties[0]", "error"),
    ]
    assert all("pw-Factory-9" not in str(p) for p in found)
    for kind in ("local", "aic"):
        assert config_problems(kind, resolved, location="environments/x.yaml") == []
    assert config_problems("okta", {}, location="environments/okta.yaml") == []


def test_config_problems_leave_out_what_the_email_checks_reported() -> None:
    reported = [Problem("external.email", "port", "odd port", severity="warning")]
    found = config_problems(
        "okta", _resolved(OKTA_EMAIL), location="environments/okta.yaml", reported=reported
    )
    assert [p.path for p in found] == ["smtpProperties[0]"]


def test_email_knows_no_tenant_kind_module() -> None:
    kinds = {"promote.tenants.okta", "promote.tenants.aic", "promote.tenants.local"}
    email = Path(__file__).resolve().parents[3] / "promote" / "email"
    for path in sorted(email.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not names & kinds, f"{path.name} imports {names & kinds}"
