from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from tests.helpers.example import edit, okta_uat_without_template_esvs, uat_port_as_secret

SECRETS = {"UAT_SMTP_PASSWORD": "uat-pw-Zq81x", "PROD_SMTP_PASSWORD": "prod-pw-Rk55y"}
INLINE = ("dev-example-password-not-secret", "staging-example-password-not-secret")


@pytest.fixture
def workspace(example: Path) -> Path:
    return example


def invoke(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner(env={**{k: None for k in SECRETS}, **(env or {})})
    return runner.invoke(cli, ["--workspace", str(root), *args], catch_exceptions=False)


def no_secret(result: Result) -> None:
    for value in (*SECRETS.values(), *INLINE):
        assert value not in result.stdout
        assert value not in result.stderr


def test_validate_example(workspace: Path) -> None:
    result = invoke(workspace, "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid: 4 environments (dev -> staging -> uat -> prod)")
    assert "UAT_SMTP_PASSWORD is not set" in result.stderr
    assert "warning:" in result.stderr
    no_secret(result)


def test_validate_reports_every_problem_with_exit_3(workspace: Path) -> None:
    edit(
        workspace / "environments" / "uat.yaml",
        ('{value: "465", type: int}', '{value: "58x", type: int}'),
        ("variables:", "varaibles_extra: 1\nvariables:"),
    )
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert 'environments/uat.yaml: variables.esv-email-provider-port: "58x" is not an int' in (
        result.stderr
    )
    assert "varaibles_extra: unknown key (did you mean 'variables'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_validate_missing_esv_and_conversion_error(workspace: Path) -> None:
    staging = workspace / "environments" / "staging.yaml"
    text = staging.read_text()
    text = text.replace("  esv-brand-name: Acme (staging)\n", "")
    text = text.replace('{value: "true", type: bool}', '{value: "yes", type: string}')
    staging.write_text(text)
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert "ESV esv-brand-name is not defined in environments/staging.yaml" in result.stderr
    assert '$bool of "yes" (from esv-email-provider-use-ssl)' in result.stderr
    assert "$bool over esv-email-provider-use-ssl" in result.stderr  # type mismatch warning
    no_secret(result)


def test_validate_calls_the_email_checks(workspace: Path) -> None:
    (workspace / "config" / "external.email.json").unlink()
    (workspace / "config" / "emailTemplate" / "welcome.json").unlink()
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert "has no external.email" in result.stderr
    assert "[dev]" not in result.stderr  # dev is mutable: the built-in provider is allowed


def test_esv_check(workspace: Path) -> None:
    result = invoke(workspace, "esv", "check", "--env", "prod")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ok: prod: 9 ESVs referenced, 9 defined")
    result = invoke(workspace, "esv", "check", "--env", "nowhere")
    assert result.exit_code == 3
    assert "unknown environment 'nowhere'; the chain is dev -> staging -> uat -> prod" in (
        result.stderr
    )


def test_esv_check_missing_and_unused(workspace: Path) -> None:
    dev = workspace / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text().replace("  esv-email-provider-host: smtp.dev.example.com\n", "")
        + "  esv-spare: {env: SPARE}\n"
    )
    result = invoke(workspace, "esv", "check", "--env", "dev")
    assert result.exit_code == 3
    assert "external.email: host: &{esv.email.provider.host}: ESV esv-email-provider-host" in (
        result.stderr
    )
    assert "warning: environments/dev.yaml: secrets.esv-spare: is defined but" in result.stderr


def test_esv_list_never_shows_secret_values(workspace: Path) -> None:
    for env in ("dev", "staging", "uat", "prod"):
        result = invoke(workspace, "esv", "list", "--env", env, env=SECRETS)
        assert result.exit_code == 0
        assert "esv-email-provider-password" in result.stdout
        no_secret(result)
    result = invoke(workspace, "esv", "list", "--env", "prod", "--format", "json")
    rows = json.loads(result.stdout)
    secret = next(r for r in rows if r["kind"] == "secret")
    assert secret == {
        "id": "esv-email-provider-password",
        "kind": "secret",
        "type": "string",
        "source": "environment variable PROD_SMTP_PASSWORD",
    }
    port = next(r for r in rows if r["id"] == "esv-email-provider-port")
    assert port == {"id": port["id"], "kind": "variable", "type": "int", "value": "465"}


def test_esv_usage(workspace: Path) -> None:
    result = invoke(workspace, "esv", "usage", "esv.email.provider.port")
    assert result.exit_code == 0
    assert result.stdout.split() == ["esv-email-provider-port", "external.email", "port", "($int)"]
    result = invoke(workspace, "esv", "usage")
    assert "esv-support-email" in result.stdout and "(defaulted)" in result.stdout
    result = invoke(workspace, "esv", "usage", "esv-unused-one")
    assert result.exit_code == 0 and result.stdout == ""
    assert "not referenced" in result.stderr
    assert invoke(workspace, "esv", "usage", "Bad Id").exit_code == 3


def test_resolve_one_object_masked(workspace: Path) -> None:
    result = invoke(workspace, "resolve", "--env", "uat", "external.email", env=SECRETS)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["auth"]["password"] == "********"
    assert doc["port"] == 465 and doc["ssl"] == {"enable": True}
    assert doc["host"] == "smtp.uat.example.com"
    no_secret(result)


def test_resolve_all_and_several(workspace: Path) -> None:
    result = invoke(workspace, "resolve", "--env", "staging")
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == {"external.email", "emailTemplate/welcome"}
    result = invoke(
        workspace, "resolve", "--env", "staging", "external.email", "emailTemplate/welcome"
    )
    assert set(json.loads(result.stdout)) == {"external.email", "emailTemplate/welcome"}
    no_secret(result)


def test_resolve_show_secrets(workspace: Path) -> None:
    result = invoke(
        workspace, "resolve", "--env", "prod", "external.email", "--show-secrets", env=SECRETS
    )
    assert json.loads(result.stdout)["auth"]["password"] == SECRETS["PROD_SMTP_PASSWORD"]


def test_resolve_unset_secret_is_named_not_shown(workspace: Path) -> None:
    result = invoke(workspace, "resolve", "--env", "prod", "external.email")
    assert result.exit_code == 3
    assert "environment variable PROD_SMTP_PASSWORD is not set" in result.stderr
    result = invoke(
        workspace, "resolve", "--env", "prod", "external.email", env={"PROD_SMTP_PASSWORD": ""}
    )
    assert result.exit_code == 3 and "PROD_SMTP_PASSWORD is empty" in result.stderr
    # the template needs no secret: resolving it needs none
    result = invoke(workspace, "resolve", "--env", "prod", "emailTemplate/welcome")
    assert result.exit_code == 0


def test_resolve_unknown_object_and_usage_errors(workspace: Path) -> None:
    result = invoke(workspace, "resolve", "--env", "dev", "external.emial")
    assert result.exit_code == 3
    assert "unknown config object: external.emial" in result.stderr
    result = invoke(workspace, "resolve")
    assert result.exit_code == 2
    result = invoke(workspace, "esv", "list", "--bogus")
    assert result.exit_code == 2


def test_resolve_unresolved_lists_every_problem(workspace: Path) -> None:
    email = workspace / "config" / "external.email.json"
    doc = json.loads(email.read_text())
    doc["a"] = "&{esv.nope.one}"
    doc["b"] = {"$int": "&{esv.nope.two}"}
    email.write_text(json.dumps(doc))
    result = invoke(workspace, "resolve", "--env", "dev")
    assert result.exit_code == 3
    assert "2 values cannot be resolved" in result.stderr
    assert "external.email: a:" in result.stderr and "external.email: b:" in result.stderr
    no_secret(result)


def test_bad_workspace_files_are_clear_errors(workspace: Path) -> None:
    (workspace / "environments" / "dev.yaml").write_text("- just\n- a list\n")
    (workspace / "config" / "broken.json").write_text('{"a": 1,\n "b": }')
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert "environments/dev.yaml: the top level must be a mapping" in result.stderr
    assert "config/broken.json: invalid JSON: Expecting value at line 2, column 7" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_scaffolds_a_valid_workspace(tmp_path: Path) -> None:
    root = tmp_path / "new"
    result = CliRunner().invoke(cli, ["init", str(root)])
    assert result.exit_code == 0, result.stderr
    assert (root / "environments" / "dev.yaml").exists()
    assert "created" in result.stdout
    check = invoke(root, "validate", env={"DEV_SMTP_PASSWORD": "x"})
    assert check.exit_code == 0, check.stderr
    again = CliRunner().invoke(cli, ["init", str(root)])
    assert again.exit_code == 3
    assert "nothing was written" in again.stderr


def test_lone_surrogates_are_clear_errors_not_tracebacks(workspace: Path) -> None:
    edit(
        workspace / "environments" / "uat.yaml",
        ("variables:\n", 'variables:\n  esv-sur: "a\\ud800b"\n'),
    )
    edit(
        workspace / "config" / "external.email.json",
        ('"debug": false', '"debug": false, "x": "a\\ud800b"'),
    )
    for args in (("validate",), ("esv", "check", "--env", "dev"), ("resolve", "--env", "dev")):
        result = invoke(workspace, *args)
        assert result.exit_code == 3, result.stderr
        assert result.stdout == ""
        assert "environments/uat.yaml: variables.esv-sur: the text holds a lone surrogate" in (
            result.stderr
        )
        assert "config/external.email.json: x: the text holds a lone surrogate" in result.stderr
        assert "Traceback" not in result.stderr


def test_secret_env_var_that_is_not_utf8(workspace: Path) -> None:
    result = invoke(
        workspace, "resolve", "--env", "uat", "external.email", env={"UAT_SMTP_PASSWORD": "x\udcff"}
    )
    assert result.exit_code == 3
    assert "environment variable UAT_SMTP_PASSWORD is not UTF-8 text" in result.stderr
    assert result.stdout == ""


def test_validate_names_every_environment_an_error_holds_for(workspace: Path) -> None:
    (workspace / "config" / "extra.json").write_text('{"x": {"$int": "&{esv.count}"}}')
    for env in ("dev", "staging", "uat", "prod"):
        path = workspace / "environments" / f"{env}.yaml"
        extra = "{value: abc}" if env in ("dev", "staging") else "{env: COUNT}"
        path.write_text(path.read_text() + f"  esv-count: {extra}\n")
    result = invoke(workspace, "validate", env={"COUNT": "12x"})
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if "extra: x:" in line]
    assert lines == [
        "error: [dev, staging, uat, prod] extra: x: $int of a secret value (from esv-count): "
        "is not an int (fix the ESV's value or the wrapper)"
    ]
    assert "12x" not in result.stderr
    # unset in uat and prod: checked with a stand-in, a warning there, the error stays named
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert "error: [dev, staging] extra: x: $int of a secret value" in result.stderr
    assert "environments/uat.yaml: secrets.esv-count: environment variable COUNT is not set" in (
        result.stderr
    )
    assert "[uat" not in result.stderr and "prod]" not in result.stderr


def test_validate_typed_wrapper_over_an_unset_secret(workspace: Path) -> None:
    uat_port_as_secret(workspace)
    result = invoke(workspace, "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid: 4 environments")
    assert "secrets.esv-email-provider-port: environment variable UAT_SMTP_PORT is not set" in (
        result.stderr
    )
    assert "is not an int" not in result.stderr
    result = invoke(workspace, "validate", env={"UAT_SMTP_PORT": "abc"})
    assert result.exit_code == 3
    assert "error: [uat] external.email: port: $int of a secret value" in result.stderr


def test_esv_check_warns_about_an_absent_secret_source(workspace: Path) -> None:
    result = invoke(workspace, "esv", "check", "--env", "uat")
    assert result.exit_code == 0
    assert result.stdout == "ok: uat: 9 ESVs referenced, 8 defined: 0 errors, 1 warning\n"
    warning = (
        "warning: environments/uat.yaml: secrets.esv-email-provider-password: "
        "environment variable UAT_SMTP_PASSWORD is not set (`promote plan` and `promote run` "
        "need it; until it is set, checks use a stand-in value)"
    )
    assert result.stderr.splitlines() == [warning]
    assert warning in invoke(workspace, "validate").stderr  # validate's wording is the same
    result = invoke(workspace, "esv", "check", "--env", "uat", env=SECRETS)
    assert result.stdout == "ok: uat: 9 ESVs referenced, 8 defined: 0 errors, 0 warnings\n"
    assert result.stderr == ""
    no_secret(result)


def test_resolve_messages_name_the_file_and_count_values(workspace: Path) -> None:
    email = workspace / "config" / "external.email.json"
    doc = json.loads(email.read_text())
    doc["a"] = {"$int": "abc"}
    doc["b"] = "&{esv.nope}"
    email.write_text(json.dumps(doc))
    result = invoke(workspace, "resolve", "--env", "staging", "external.email")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "error: 2 values cannot be resolved" in result.stderr
    assert "define esv-nope under variables: or secrets: in environments/staging.yaml" in (
        result.stderr
    )


def test_init_writes_files_readable_by_the_team(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["init", str(tmp_path / "new")])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert f"created {tmp_path / 'new' / 'environments' / 'dev.yaml'}" in result.stdout
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new").rglob("*") if p.is_file()}
    assert modes == {0o644}


def test_validate_int_outside_java_integer(workspace: Path) -> None:
    edit(workspace / "environments" / "uat.yaml", ('{value: "465", type: int}', "99999999999"))
    edit(
        workspace / "environments" / "staging.yaml",
        ('{value: "465", type: int}', '{value: "2147483648", type: int}'),
    )
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert (
        'environments/staging.yaml: variables.esv-email-provider-port: "2147483648" is outside '
        "-2147483648..2147483647, the range of an int (a Java Integer)"
    ) in result.stderr
    edit(workspace / "environments" / "staging.yaml", ('"2147483648"', '"2147483647"'))
    result = invoke(workspace, "validate")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert (
        'external.email: port: $int of "99999999999" (from esv-email-provider-port): is outside '
        "-2147483648..2147483647"
    ) in result.stderr
    assert "fix the value in environments/uat.yaml or the wrapper" in result.stderr


def test_validate_and_esv_check_of_okta_see_only_external_email(workspace: Path) -> None:
    okta_uat_without_template_esvs(workspace)
    result = invoke(workspace, "validate", env=SECRETS)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid: 4 environments")
    assert "emailTemplate/welcome" not in result.stderr
    result = invoke(workspace, "esv", "check", "--env", "uat", env=SECRETS)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: uat: 6 ESVs referenced, 6 defined: 0 errors, 0 warnings\n"
    assert "esv-brand-name" not in result.stderr
    # a local environment still checks every object: the template's ESVs are required there
    staging = workspace / "environments" / "staging.yaml"
    staging.write_text(staging.read_text().replace("  esv-brand-name: Acme (staging)\n", ""))
    result = invoke(workspace, "esv", "check", "--env", "staging")
    assert result.exit_code == 3
    assert "emailTemplate/welcome" in result.stderr and "esv-brand-name" in result.stderr
    no_secret(result)


def test_an_email_problem_in_every_environment_is_printed_once(workspace: Path) -> None:
    path = workspace / "config" / "external.email.json"
    email = json.loads(path.read_text())
    del email["host"]
    path.write_text(json.dumps(email))
    result = invoke(workspace, "validate", env=SECRETS)
    assert result.exit_code == 3
    lines = [line for line in result.stderr.splitlines() if " host:" in line]
    assert lines == [
        "error: [dev, staging, uat, prod] external.email: host: is missing; it must be a "
        "non-empty string (the SMTP server's hostname or IP address)"
    ]
    assert "1 error," in result.stderr
    no_secret(result)
