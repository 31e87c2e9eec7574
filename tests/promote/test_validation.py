from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from esv import EnvironmentFileError, EsvError, ResolutionError
from promote.validation import check_workspace, environment_values, resolve_environment
from promote.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path


def test_environment_values_reads_only_what_is_asked(root: Path) -> None:
    ws = load_workspace(root)
    values = environment_values(ws, "prod", environ={}, only=["esv-brand-name"])
    assert values["esv-brand-name"].text == "Acme"
    assert "esv-email-provider-password" not in values
    with pytest.raises(EnvironmentFileError, match="PROD_SMTP_PASSWORD is not set"):
        environment_values(ws, "prod", environ={})


def test_resolve_environment(root: Path) -> None:
    ws = load_workspace(root)
    got = resolve_environment(ws, "uat", ["external.email"], environ={"UAT_SMTP_PASSWORD": "pw1"})
    assert got["external.email"].value["auth"]["password"] == "pw1"
    assert got["external.email"].masked["auth"]["password"] == "********"
    with pytest.raises(EsvError, match="unknown config objects: a, b"):
        resolve_environment(ws, "uat", ["a", "b"], environ={})
    (root / "config" / "extra.json").write_text('{"x": {"$int": "&{esv.brand.name}"}}')
    ws = load_workspace(root)
    with pytest.raises(ResolutionError, match='extra: x: \\$int of "Acme \\(dev\\)"'):
        resolve_environment(ws, "dev", environ={})


def test_check_workspace_stand_ins_and_dedupe(root: Path) -> None:
    (root / "config" / "odd.json").write_text('{"x": "&{esv.my-var}"}')
    ws = load_workspace(root)
    results = check_workspace(ws, environ={})
    assert list(results) == ["dev", "staging", "uat", "prod"]
    invalid = [p for found in results.values() for p in found if "&{esv.my-var}" in p.message]
    assert len(invalid) == 1  # reported once, not once per environment
    assert any("checked with a stand-in value" in p.message for p in results["prod"])
    assert not [p for found in results.values() for p in found if p.severity == "error"]
    only = check_workspace(ws, ["staging"], environ={})
    assert list(only) == ["staging"]


def test_an_okta_environment_gets_the_checks_of_its_tenant_kind(root: Path) -> None:
    path = root / "environments" / "uat.yaml"
    path.write_text(
        path.read_text().replace(
            "tenant:\n  kind: local\n",
            "tenant:\n  kind: okta\n  url: https://acme.okta.com\n  token: {env: OKTA_TOKEN}\n",
        )
    )
    email = json.loads((root / "config" / "external.email.json").read_text())
    email["smtpProperties"] = ["mail.smtp.x=1"]
    (root / "config" / "external.email.json").write_text(json.dumps(email))
    results = check_workspace(load_workspace(root), environ={})
    okta = [(p.location, p.path) for p in results["uat"] if p.severity == "error"]
    assert okta == [("external.email", "smtpProperties[0]")]
    assert not [p for p in results["staging"] if p.path == "smtpProperties[0]"]
