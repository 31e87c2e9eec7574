from __future__ import annotations

import json
from pathlib import Path

import pytest

from esv import EnvironmentFileError, EsvError, ResolutionError
from promote.validation import check_workspace, environment_values, resolve_environment
from promote.workspace import load_workspace
from tests.helpers.example import (
    copy_example,
    make_okta,
    okta_uat_without_template_esvs,
    uat_port_as_secret,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


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


def test_check_workspace_stand_ins_and_every_environment(root: Path) -> None:
    (root / "config" / "odd.json").write_text('{"x": "&{esv.my-var}"}')
    ws = load_workspace(root)
    results = check_workspace(ws, environ={})
    assert list(results) == ["dev", "staging", "uat", "prod"]
    for found in results.values():  # about the config: it holds for every environment
        assert len([p for p in found if "&{esv.my-var}" in p.message]) == 1
    assert any(p.message.endswith("PROD_SMTP_PASSWORD is not set") for p in results["prod"])
    assert not [p for found in results.values() for p in found if p.severity == "error"]
    only = check_workspace(ws, ["staging"], environ={})
    assert list(only) == ["staging"]


def test_an_okta_environment_gets_the_checks_of_its_tenant_kind(root: Path) -> None:
    make_okta(root, "uat")
    email = json.loads((root / "config" / "external.email.json").read_text())
    email["smtpProperties"] = ["mail.smtp.x=1"]
    (root / "config" / "external.email.json").write_text(json.dumps(email))
    results = check_workspace(load_workspace(root), environ={})
    okta = [(p.location, p.path) for p in results["uat"] if p.severity == "error"]
    assert okta == [("external.email", "smtpProperties[0]")]
    assert not [p for p in results["staging"] if p.path == "smtpProperties[0]"]


def test_typed_wrapper_over_an_unset_secret_is_not_an_error(root: Path) -> None:
    uat_port_as_secret(root)
    ws = load_workspace(root)
    uat = check_workspace(ws, ["uat"], environ={})["uat"]
    assert [str(p) for p in uat if p.severity == "error"] == []
    warned = [p for p in uat if p.esv_id == "esv-email-provider-port"]
    assert [p.severity for p in warned] == ["warning"]
    assert str(warned[0]) == (
        "environments/uat.yaml: secrets.esv-email-provider-port: "
        "environment variable UAT_SMTP_PORT is not set (`promote plan` and `promote run` "
        "need it; until it is set, checks use a stand-in value)"
    )
    # the set value is checked, by the resolver and by the email checks
    bad = check_workspace(ws, ["uat"], environ={"UAT_SMTP_PORT": "abc"})["uat"]
    errors = [str(p) for p in bad if p.severity == "error"]
    assert errors == [
        "external.email: port: $int of a secret value (from esv-email-provider-port): "
        "is not an int (fix the ESV's value or the wrapper)"
    ]
    high = check_workspace(ws, ["uat"], environ={"UAT_SMTP_PORT": "70000"})["uat"]
    assert [p.path for p in high if p.severity == "error"] == ["port"]
    fine = check_workspace(ws, ["uat"], environ={"UAT_SMTP_PORT": "465"})["uat"]
    assert [p for p in fine if p.severity == "error"] == []


def test_the_same_error_in_several_environments_is_listed_for_each(root: Path) -> None:
    (root / "config" / "extra.json").write_text('{"x": {"$int": "&{esv.count}"}}')
    for env in ("dev", "staging"):
        path = root / "environments" / f"{env}.yaml"
        path.write_text(path.read_text() + "  esv-count: {value: abc}\n")
    results = check_workspace(load_workspace(root), environ={})
    for env in ("dev", "staging"):
        errors = [str(p) for p in results[env] if p.severity == "error"]
        assert errors == [
            "extra: x: $int of a secret value (from esv-count): is not an int "
            "(fix the ESV's value or the wrapper)"
        ], env


def test_validate_uses_the_tenant_capabilities_without_opening_it(root: Path) -> None:
    from promote.tenants.factory import capabilities_for, open_tenant
    from promote.tenants.okta import OKTA_CAPABILITIES

    make_okta(root, "prod")
    (root / "config" / "external.email.json").unlink()  # Okta's own email: fine when immutable
    ws = load_workspace(root)
    assert capabilities_for(ws.environments["prod"]) == OKTA_CAPABILITIES  # no token needed
    dev = open_tenant(ws.environments["dev"], workspace=ws, environ={})
    try:
        assert capabilities_for(ws.environments["dev"]) == dev.capabilities
    finally:
        dev.close()
    results = check_workspace(ws, environ={})
    assert not [p for p in results["prod"] if p.severity == "error"]
    assert [p.location for p in results["staging"] if "built-in email" in p.message] == [
        "environments/staging.yaml"
    ]


def test_an_okta_environment_is_checked_only_on_what_it_receives(root: Path) -> None:
    from promote.validation import received_config

    okta_uat_without_template_esvs(root)
    ws = load_workspace(root)
    assert sorted(received_config(ws, "dev")) == ["emailTemplate/welcome", "external.email"]
    assert list(received_config(ws, "uat")) == ["external.email"]
    assert list(received_config(ws, "prod")) == ["external.email"]  # promoted from Okta, as plan
    results = check_workspace(ws, environ={"UAT_SMTP_PASSWORD": "pw", "PROD_SMTP_PASSWORD": "pw"})
    uat = results["uat"]
    assert [str(p) for p in uat if p.severity == "error"] == []
    assert not [p for p in uat if p.location == "emailTemplate/welcome"]
    assert not [p for p in uat if p.esv_id in ("esv-brand-name", "esv-portal-url")]
    # the objects it receives are still checked with its values
    path = root / "environments" / "uat.yaml"
    path.write_text(
        path.read_text().replace("  esv-email-provider-host: smtp.uat.example.com\n", "")
    )
    uat = check_workspace(load_workspace(root), ["uat"], environ={})["uat"]
    assert [(p.location, p.esv_id) for p in uat if p.severity == "error"] == [
        ("external.email", "esv-email-provider-host")
    ]
