"""`promote import fr-config-manager` and `promote import frodo`, end to end through the CLI
on fixture repositories written for these tests (tests/promote/adopt/fixtures/)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from tests.helpers.leaks import assert_no_leak

FIXTURES = Path(__file__).parent / "fixtures"
FR = FIXTURES / "fr-config-manager"
FRODO = FIXTURES / "frodo-separate"
FRODO_ALL = FIXTURES / "frodo-all.json"

# The secret values the fixture's .env holds, or the environment gives: never to be written.
DOTENV_SECRET = "fixture-dev-smtp-password-v2"
SECRETS_ENV = {
    "ESV_EMAIL_PROVIDER_PASSWORD_2": "env-wins-not-this-one",
    "ESV_EMAIL_PROVIDER_PASSWORD": "frodo-dev-smtp-pw-5521",
    "ESV_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----fixture-----END PRIVATE KEY-----",
    "ESV_HMAC_KEY_B64": base64.b64encode(b"hmac-key-fixture-value-77").decode(),
    "SMTP_USERNAME": "dev-mailer-user",
}


def promote(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], env=env or {})


def import_fr(root: Path, *extra: str, source: Path = FR) -> Result:
    return promote(
        root,
        "import",
        "fr-config-manager",
        str(source),
        "--env",
        "dev",
        "--env-file",
        str(source / ".env"),
        *extra,
    )


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".promote" not in p.parts
    }


def works_end_to_end(root: Path, environ: dict[str, str]) -> None:
    """validate, esv check, resolve and plan all succeed on the imported workspace."""
    for args in (("validate",), ("esv", "check", "--env", "dev"), ("resolve", "--env", "dev")):
        result = promote(root, *args, env=environ)
        assert result.exit_code == 0, (args, result.output)
    plan = promote(root, "plan", "--to", "dev", "--format", "json", env=environ)
    assert plan.exit_code == 0, plan.output
    (stage,) = json.loads(plan.stdout)["stages"]
    assert stage["env"] == "dev" and stage["status"] == "changes"  # the tenant is empty
    run = promote(root, "run", "--to", "dev", env=environ)
    assert run.exit_code == 0, run.output
    again = promote(root, "plan", "--to", "dev", env=environ)
    assert again.exit_code == 0, again.output


# -- fr-config-manager -------------------------------------------------------------------


def test_fr_config_manager_into_an_empty_directory(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    result = import_fr(root)
    assert result.exit_code == 0, result.output
    env = (root / "environments" / "dev.yaml").read_text()
    # Every value form: ${NAME} (base64-encoded at push), ${BASE64:NAME}, literal base64.
    assert "esv-email-provider-host: smtp.dev.example.com\n" in env
    assert 'esv-email-provider-port: {value: "587", type: int}' in env
    assert 'esv-email-provider-use-ssl: {value: "false", type: bool}' in env
    assert "esv-brand-name: Acme (dev)\n" in env
    assert "esv-email-provider-from-email: noreply@dev.example.com\n" in env
    assert 'esv-ldap-hosts: {value: "ldap1:1389,ldap2:1389", type: list}' in env
    assert 'esv-session-timeout: {value: "30.5", type: number}' in env
    # Secrets: the last version is the active one; encoding and useInPlaceholders kept.
    assert "esv-email-provider-password: {env: ESV_EMAIL_PROVIDER_PASSWORD_2}" in env
    assert "esv-signing-key: {env: ESV_SIGNING_KEY, encoding: pem, useInPlaceholders: false}" in env
    assert "esv-hmac-key: {env: ESV_HMAC_KEY_B64, encoding: base64hmac, base64: true}" in env
    email = json.loads((root / "config" / "external.email.json").read_text())
    assert "_id" not in email
    assert email["auth"]["username"] == "&{esv.smtp.username}"
    assert email["smtpProperties"] == ["mail.smtp.localhost=${HOSTNAME} is kept literally"]
    welcome = json.loads((root / "config" / "emailTemplate" / "welcome.json").read_text())
    assert welcome["html"]["en"].startswith('<div class="content">')
    assert welcome["message"]["en"] == "Welcome, {{object.givenName}}.\n"
    assert welcome["styles"] == "body { color: #455469; }\n"
    assert (root / "config" / "access.json").is_file()
    assert "realms/: AM realm config" in result.stdout
    assert "scripts/onCreate.js: not a JSON config object" in result.stdout
    assert "ESV_SIGNING_KEY  (esv-signing-key)" in result.stdout
    works_end_to_end(root, SECRETS_ENV)


def test_an_import_writes_no_secret_value_anywhere(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    result = promote(
        root,
        "import",
        "fr-config-manager",
        str(FR),
        "--env",
        "dev",
        "--env-file",
        str(FR / ".env"),
        env=SECRETS_ENV,
    )
    assert result.exit_code == 0, result.output
    texts = [result.stdout, result.stderr, *(b.decode() for b in files(root).values())]
    for index, text in enumerate(texts):
        assert_no_leak(text, [DOTENV_SECRET, *SECRETS_ENV.values()], f"text {index}")


def test_importing_twice_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert import_fr(root).exit_code == 0
    before = files(root)
    again = import_fr(root)
    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.stdout
    assert files(root) == before


def test_an_existing_file_is_overwritten_only_with_force(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert import_fr(root).exit_code == 0
    env_path = root / "environments" / "dev.yaml"
    env_path.write_text(
        env_path.read_text()
        .replace("kind: local", "kind: aic\n  url: https://dev.example.com\n  token: {env: T}")
        .replace("smtp.dev.example.com", "smtp.changed.example.com")
    )
    email = root / "config" / "external.email.json"
    email.write_text(email.read_text().replace("30000", "1"))
    before = files(root)
    refused = import_fr(root)
    assert refused.exit_code == 3
    assert "config/external.email.json" in refused.stderr
    assert "environments/dev.yaml" in refused.stderr
    assert "--force" in refused.stderr
    assert files(root) == before
    forced = import_fr(root, "--force")
    assert forced.exit_code == 0, forced.output
    text = env_path.read_text()
    assert "smtp.dev.example.com" in text
    assert "url: https://dev.example.com" in text  # the tenant block is kept
    assert '"timeout": 30000' in email.read_text()


def test_an_existing_workspace_gets_the_environment_in_its_chain(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "environments").mkdir(parents=True)
    (root / "promote.yaml").write_text("chain: [qa, live]\n")
    for name in ("qa", "live"):
        (root / "environments" / f"{name}.yaml").write_text("variables: {}\n")
    outside = promote(root, "import", "frodo", str(FRODO), "--env", "dev")
    assert outside.exit_code == 3
    assert "'dev' is not in the chain (qa -> live)" in outside.stderr
    assert not (root / "environments" / "dev.yaml").exists()
    inside = promote(root, "import", "frodo", str(FRODO), "--env", "qa")
    assert inside.exit_code == 0, inside.output  # qa.yaml only gains ESVs: no --force
    assert "esv-email-provider-host" in (root / "environments" / "qa.yaml").read_text()


def test_invalid_input_writes_nothing_and_lists_every_problem(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    shutil.copytree(FR, source)
    (source / "esvs" / "variables" / "esv-broken.json").write_text("{ not json")
    (source / "esvs" / "variables" / "esv-email-provider-port.json").write_text(
        json.dumps(
            {
                "_id": "esv-email-provider-port",
                "expressionType": "int",
                "valueBase64": base64.b64encode(b"58x").decode(),
            }
        )
    )
    (source / ".env").write_text((source / ".env").read_text().replace("ESV_LDAP_HOSTS", "#"))
    root = tmp_path / "ws"
    result = import_fr(root, source=source)
    assert result.exit_code == 3
    assert "esvs/variables/esv-broken.json" in result.stderr
    assert "esvs/variables/esv-email-provider-port.json: valueBase64: the value" in result.stderr
    assert "${ESV_LDAP_HOSTS} is not set" in result.stderr
    assert "nothing was written" in result.stderr
    assert not root.exists() or files(root) == {}


def test_two_ids_with_one_environment_name_are_an_error_naming_both(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    shutil.copytree(FR, source)
    for esv_id in ("esv-a-b", "esv-a_b"):
        (source / "esvs" / "variables" / f"{esv_id}.json").write_text(
            json.dumps({"_id": esv_id, "valueBase64": base64.b64encode(b"x").decode()})
        )
    result = import_fr(tmp_path / "ws", source=source)
    assert result.exit_code == 3
    assert "ESVs esv-a-b and esv-a_b both map to the environment variable ESV_A_B" in result.stderr


def test_encrypted_config_values_are_named_with_the_placeholder_to_use(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    shutil.copytree(FR, source)
    path = source / "email-provider" / "external.email.json"
    email = json.loads(path.read_text())
    blob = {"$crypto": {"type": "x-simple-encryption", "value": {"data": "c2VhbGVkYmxvYg=="}}}
    email["auth"]["password"] = blob
    path.write_text(json.dumps(email))
    root = tmp_path / "ws"
    result = import_fr(root, source=source)
    assert result.exit_code == 0, result.output
    assert "config/external.email.json: auth.password: holds a value IDM encrypted" in result.stderr
    assert '"&{esv.email.provider.password}"' in result.stderr
    assert "c2VhbGVkYmxvYg==" not in (root / "environments" / "dev.yaml").read_text()


def test_a_write_that_fails_midway_leaves_the_workspace_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    assert import_fr(root).exit_code == 0
    email = root / "config" / "external.email.json"
    email.write_text(email.read_text().replace("30000", "1"))
    (root / "config" / "access.json").unlink()
    before = files(root)
    real = os.replace
    calls = {"n": 0}

    def failing(src: object, dst: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # after the first file was moved into place
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    result = import_fr(root, "--force")
    monkeypatch.setattr(os, "replace", real)
    assert result.exit_code == 1
    assert "nothing was changed" in result.stderr
    assert files(root) == before
    assert not [p for p in root.iterdir() if p.name.startswith(".promote-import-")]


# -- frodo -------------------------------------------------------------------------------


def test_frodo_separate_files_into_an_empty_directory(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    result = promote(root, "import", "frodo", str(FRODO), "--env", "dev")
    assert result.exit_code == 0, result.output
    env = (root / "environments" / "dev.yaml").read_text()
    for line in (
        "esv-email-provider-host: smtp.dev.example.com",  # decoded value
        'esv-email-provider-port: {value: "587", type: int}',  # valueBase64
        "esv-email-provider-from-email: noreply@dev.example.com",  # expressionType ""
        "type: object}",
        "type: keyvaluelist}",
        "type: base64encodedinlined}",
        "type: number}",
        "type: array}",
        "type: list}",
        "type: bool}",
        "esv-email-provider-password: {env: ESV_EMAIL_PROVIDER_PASSWORD}",
        "esv-signing-key: {env: ESV_SIGNING_KEY, encoding: pem, useInPlaceholders: false}",
    ):
        assert line in env
    goodbye = json.loads((root / "config" / "emailTemplate" / "goodbye.json").read_text())
    assert goodbye["subject"] == {"en": "Your account was closed"}  # a template under idm
    hello = json.loads((root / "config" / "endpoint" / "hello.json").read_text())
    assert hello["source"].startswith("(function ()")  # the extracted script read back in
    assert "trees: frodo's trees export is not config promote manages" in result.stdout
    assert "c2VhbGVk" not in env  # a secret's activeValue is never copied
    works_end_to_end(root, SECRETS_ENV)


def test_a_single_file_export_imports_the_same_workspace(tmp_path: Path) -> None:
    separate, single = tmp_path / "a", tmp_path / "b"
    assert promote(separate, "import", "frodo", str(FRODO), "--env", "dev").exit_code == 0
    result = promote(single, "import", "frodo", str(FRODO_ALL), "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "realm: AM realm config is not managed by promote" in result.stdout
    assert files(separate) == files(single)


def test_frodo_import_is_idempotent_and_reproducible_across_paths(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "elsewhere" / "two"
    assert promote(first, "import", "frodo", str(FRODO), "--env", "dev").exit_code == 0
    copy = tmp_path / "copy-of-export"
    shutil.copytree(FRODO, copy)
    assert promote(second, "import", "frodo", str(copy), "--env", "dev").exit_code == 0
    assert files(first) == files(second)
    again = promote(first, "import", "frodo", str(FRODO), "--env", "dev")
    assert "nothing changed" in again.stdout


def test_a_bad_frodo_export_lists_every_problem(tmp_path: Path) -> None:
    export = tmp_path / "export.variable.json"
    export.write_text(
        json.dumps(
            {
                "variable": {
                    "esv-a": {"_id": "esv-a", "expressionType": "int", "value": "x"},
                    "esv-b": {"_id": "esv-b", "expressionType": "colour", "value": "red"},
                    "esv-c": {"_id": "esv-c", "expressionType": "string"},
                    "ESV-D": {"_id": "ESV-D", "value": "d"},
                }
            }
        )
    )
    result = promote(tmp_path / "ws", "import", "frodo", str(export), "--env", "dev")
    assert result.exit_code == 3
    for text in (
        "variable.esv-a: value: the value",
        "'colour' is not an ESV type",
        "variable.esv-c: has neither value nor valueBase64",
        "'ESV-D' is not a valid ESV id",
    ):
        assert text in result.stderr
    assert not (tmp_path / "ws").exists()
