"""Tenants: a lazy mapping env -> open tenant, closed together."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from promote.engine.session import Tenants
from promote.tenants.base import Tenant
from promote.tenants.factory import open_tenant
from promote.workspace import Workspace, load_workspace
from tests.promote.engine.workspaces import ENVIRON, write_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return load_workspace(write_workspace(tmp_path / "ws"))


class _Recorder:
    """An opener that opens real tenants and records what it opened and what was closed."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.environ: list[Mapping[str, str]] = []

    def __call__(self, workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        self.opened.append(env)
        self.environ.append(environ)
        tenant = open_tenant(workspace.environments[env], workspace=workspace, environ=environ)
        close = tenant.close

        def closing() -> None:
            self.closed.append(env)
            close()

        tenant.close = closing  # type: ignore[method-assign]
        return tenant


def test_opens_each_tenant_once_on_first_use(ws: Workspace) -> None:
    recorder = _Recorder()
    with Tenants(ws, environ=ENVIRON, opener=recorder) as tenants:
        assert recorder.opened == []
        first = tenants["staging"]
        assert tenants["staging"] is first
        assert recorder.opened == ["staging"]
        assert recorder.environ == [ENVIRON]
    assert recorder.closed == ["staging"]


def test_iterates_the_chain_without_opening_anything(ws: Workspace) -> None:
    recorder = _Recorder()
    tenants = Tenants(ws, environ=ENVIRON, opener=recorder)
    assert list(tenants) == ["dev", "staging", "prod"] and len(tenants) == 3
    assert "prod" in tenants and "qa" not in tenants
    assert recorder.opened == []


def test_unknown_environment_is_a_key_error(ws: Workspace) -> None:
    tenants = Tenants(ws, environ=ENVIRON, opener=_Recorder())
    with pytest.raises(KeyError):
        tenants["qa"]
    assert tenants.get("qa") is None


def test_close_closes_every_opened_tenant_and_allows_reopening(ws: Workspace) -> None:
    recorder = _Recorder()
    tenants = Tenants(ws, environ=ENVIRON, opener=recorder)
    tenants["dev"], tenants["prod"]
    tenants.close()
    assert sorted(recorder.closed) == ["dev", "prod"]
    tenants.close()  # nothing left open: closes nothing twice
    assert sorted(recorder.closed) == ["dev", "prod"]
    tenants["dev"]
    assert recorder.opened == ["dev", "prod", "dev"]
    tenants.close()


def test_closed_also_when_the_block_raises(ws: Workspace) -> None:
    recorder = _Recorder()
    with pytest.raises(RuntimeError), Tenants(ws, environ=ENVIRON, opener=recorder) as tenants:
        tenants["dev"]
        raise RuntimeError("boom")
    assert recorder.closed == ["dev"]


def test_default_opener_uses_the_factory(ws: Workspace) -> None:
    with Tenants(ws, environ=ENVIRON) as tenants:
        tenant = tenants["dev"]
        assert tenant.read_config(["external.email"]) == {}
        assert tenant.capabilities.placeholders
