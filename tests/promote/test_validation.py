from __future__ import annotations

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
