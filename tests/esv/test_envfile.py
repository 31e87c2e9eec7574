from __future__ import annotations

from pathlib import Path

import pytest

from esv.envfile import (
    EnvironmentFile,
    Secret,
    SecretSource,
    esv_values,
    load_environment,
    parse_environment,
    read_secret,
    read_secrets,
)
from esv.errors import EnvironmentFileError, EsvError, WorkspaceFileError

REL = "environments/uat.yaml"


def parse(text: str) -> EnvironmentFile:
    return parse_environment(text, name="uat", path=Path("uat.yaml"), relpath=REL)


def problems(text: str) -> list[str]:
    with pytest.raises(EsvError) as caught:
        parse(text)
    assert caught.value.exit_code == 3
    return [str(p) for p in caught.value.problems]


def test_values_are_kept_exactly_as_written() -> None:
    env = parse(
        "variables:\n"
        "  esv-a: NO\n  esv-b: 0755\n  esv-c: 1.10\n  esv-d: ~\n  esv-e: yes\n"
        "  esv-f: {value: 0x1F, type: string}\n  esv-g: ''\n  esv-h: null\n"
    )
    assert {k: v.value for k, v in env.variables.items()} == {
        "esv-a": "NO",
        "esv-b": "0755",
        "esv-c": "1.10",
        "esv-d": "~",
        "esv-e": "yes",
        "esv-f": "0x1F",
        "esv-g": "",
        "esv-h": "null",
    }


def test_full_file() -> None:
    env = parse(
        """
description: UAT
tenant: {kind: aic, url: "https://openam-x.forgeblocks.com", token: {env: UAT_TOKEN},
         concurrency: "4", restart_timeout: "900",
         service_account: {id: abc, jwk: {file: secrets/uat.jwk}}}
mutable: FALSE
protected: true
verify: {email_test: {to: ops@example.com}}
restart: {command: ["./restart.sh", "--now"], timeout: 30}
variables:
  esv-port: {value: "587", type: int}
  esv-ssl: {value: "True", type: bool}
  esv-hosts: {value: "a,b", type: list}
  esv-arr: {value: '["a"]', type: array}
  esv-obj: {value: '{"en": "x"}', type: object}
  esv-kv: {value: '{"k": "v"}', type: keyvaluelist}
  esv-b64: {value: "aGk=", type: base64encodedinlined}
  esv-num: {value: "1.5", type: number}
secrets:
  esv-password: {env: UAT_SMTP_PASSWORD}
  esv-key: {file: secrets/key.pem}
"""
    )
    assert env.description == "UAT"
    assert env.mutable is False and env.protected is True
    assert env.tenant["kind"] == "aic" and env.tenant["concurrency"] == 4
    assert env.tenant["token"] == SecretSource("env", "UAT_TOKEN")
    assert env.tenant["service_account"]["jwk"] == SecretSource("file", "secrets/uat.jwk")
    assert env.tenant["restart_timeout"] == 900.0
    assert env.verify == {"email_test": {"to": "ops@example.com"}}
    assert env.restart is not None and env.restart.command == ("./restart.sh", "--now")
    assert env.restart.timeout == 30.0
    assert env.variables["esv-port"].type == "int"
    assert env.secrets["esv-password"].source.describe() == "environment variable UAT_SMTP_PASSWORD"
    assert env.secrets["esv-key"].source.describe() == "file secrets/key.pem"
    assert env.warnings == ()


def test_empty_file_is_a_local_tenant_without_esvs() -> None:
    env = parse("")
    assert env.tenant == {"kind": "local"} and not env.variables and env.mutable is None


def test_all_problems_at_once() -> None:
    found = problems(
        """
varaibles: {}
tenant: {kind: local, url: "http://x"}
protected: yes
variables:
  esv-email-provider-port: {value: "58x", type: int}
  esv-ok: {value: "1", type: integer}
  esv-UPPER: x
  notesv: x
  esv-nested: [a, b]
  esv-noval: {type: int}
secrets:
  esv-ok: {env: OK}
  esv-two: {env: A, file: b}
  esv-bad-env: {env: "not a name"}
  esv-plain: hunter2
"""
    )
    assert found == [
        f"{REL}: varaibles: unknown key (did you mean 'variables'?)",
        f"{REL}: protected: 'yes' must be true or false",
        f"{REL}: tenant.url: unknown key (allowed: kind, path, restart_seconds, restart_timeout)",
        f'{REL}: variables.esv-email-provider-port: "58x" is not an int '
        "(fix the value, or its type: int)",
        f"{REL}: variables.esv-ok.type: \"integer\" is not an ESV type (did you mean 'int'?)",
        f"{REL}: variables.esv-UPPER: 'esv-UPPER' is not a valid ESV id "
        "(ids are lower case: esv-upper)",
        f"{REL}: variables.notesv: 'notesv' is not a valid ESV id (ids start with esv-)",
        f"{REL}: variables.esv-nested: must be text, not a list",
        f'{REL}: variables.esv-noval: has no value (write {{value: "...", type: ...}})',
        f"{REL}: secrets.esv-two: must be one of {{env: NAME}}, {{file: path}} or {{value: ...}} "
        "(never write a credential in the file)",
        f"{REL}: secrets.esv-bad-env.env: is not an environment variable name (letters, "
        "digits and _, not starting with a digit) (write the variable's name here, never its "
        "value)",
        f"{REL}: secrets.esv-plain: must be one of {{env: NAME}}, {{file: path}} or {{value: ...}} "
        "(never write a credential in the file)",
    ]
    assert not any("hunter2" in p for p in found)


def test_variable_and_secret_may_not_share_an_id() -> None:
    found = problems("variables: {esv-x: a}\nsecrets: {esv-x: {env: X}}\n")
    assert found == [
        f"{REL}: secrets.esv-x: is also a variable; an ESV is a variable or a secret "
        "(remove one of them)"
    ]


def test_inline_secret_warns_and_is_refused_when_protected() -> None:
    env = parse("secrets: {esv-x: {value: hunter2}}\n")
    assert [w.severity for w in env.warnings] == ["warning"]
    assert "hunter2" not in repr(env)
    assert "hunter2" not in str(env.warnings)
    found = problems("protected: true\nsecrets: {esv-x: {value: hunter2}}\n")
    assert "inline secret values are refused in a protected environment" in found[0]
    assert "hunter2" not in str(found)


def test_tenant_credentials_are_never_inline() -> None:
    found = problems("tenant: {kind: okta, url: 'https://x.okta.com', token: 00abcSECRET}\n")
    assert found == [
        f"{REL}: tenant.token: must be one of {{env: NAME}}, {{file: path}} "
        "(never write a credential in the file)"
    ]
    found = problems("tenant: {kind: okta, url: 'https://x', token: {value: 00abcSECRET}}\n")
    assert "00abcSECRET" not in str(found)
    found = problems("tenant: {kind: okta, token_type: basic}\n")
    assert f'{REL}: tenant.token_type: "basic" must be ssws or bearer' in found
    assert f"{REL}: tenant: a okta tenant needs url" in found
    assert problems("tenant: {kind: aws}\n") == [
        f'{REL}: tenant.kind: "aws" is not a tenant kind (allowed: local, aic, okta)'
    ]


def test_restart_and_verify_checks() -> None:
    assert problems("restart: {command: [a], url: 'https://x'}\n") == [
        f"{REL}: restart: needs exactly one of command (argv list) or url"
    ]
    assert problems("restart: {url: 'https://x', timeout: soon}\n") == [
        f'{REL}: restart.timeout: "soon" is not a number'
    ]
    assert problems("verify: {email_tset: {to: a@b.c}}\n") == [
        f"{REL}: verify.email_tset: unknown key (did you mean 'email_test'?)"
    ]


def test_list_type_warns_about_json_arrays() -> None:
    env = parse("variables: {esv-l: {value: '[\"a\"]', type: list}}\n")
    assert "use type: array" in str(env.warnings[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("variables: [\n", "invalid YAML"),
        ("a: 'unterminated\n", "invalid YAML"),
        ("- a\n- b\n", "the top level must be a mapping, not a list"),
        ("just text\n", "the top level must be a mapping, not text"),
        ("variables: {esv-a: 1, esv-a: 2}\n", "key 'esv-a' appears twice (line 1)"),
        (
            "variables:\n  {a: 1}: x\n",
            "invalid YAML: a key is a mapping; keys must be text (line 2)",
        ),
        ("? [a, b]\n: x\n", "invalid YAML: a key is a list; keys must be text (line 1)"),
        ("a: &x 1\nb: *x\n", "aliases (*name) are not supported"),
    ],
)
def test_malformed_yaml(text: str, expected: str) -> None:
    with pytest.raises(EsvError) as caught:
        parse(text)
    assert expected in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_yaml_error_never_quotes_the_line() -> None:
    with pytest.raises(WorkspaceFileError) as caught:
        parse("secrets:\n  esv-x: {value: 'hunter2-and-more\n")
    assert "hunter2" not in str(caught.value)
    assert "line" in str(caught.value)


def test_alias_bomb_is_refused_fast() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for index in range(1, 10):
        prev = chr(ord("a") + index - 1)
        name = chr(ord("a") + index)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    # 9**10 strings if expanded: refused at the first alias instead.
    with pytest.raises(WorkspaceFileError, match="aliases"):
        parse("\n".join(lines) + "\n")


def test_deep_yaml_is_a_clear_error() -> None:
    with pytest.raises(WorkspaceFileError, match="invalid YAML"):
        parse("a: " + "[" * 10_000 + "]" * 10_000 + "\n")


def test_load_environment_reads_files(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    path = tmp_path / "environments" / "dev.yaml"
    path.write_text("variables: {esv-a: x}\n")
    env = load_environment(path, workspace=tmp_path)
    assert env.name == "dev" and env.relpath == "environments/dev.yaml"
    with pytest.raises(WorkspaceFileError, match="cannot be read"):
        load_environment(tmp_path / "environments" / "nope.yaml", workspace=tmp_path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(WorkspaceFileError, match="not UTF-8"):
        load_environment(path, workspace=tmp_path)


def test_read_secrets_from_every_source(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("from-file\n")
    env = parse(
        "secrets:\n  esv-a: {env: A_PW}\n  esv-b: {file: secrets/pw}\n  esv-c: {value: inline}\n"
    )
    got = read_secrets(env, workspace=tmp_path, environ={"A_PW": "from-env"})
    assert {k: v.reveal() for k, v in got.items()} == {
        "esv-a": "from-env",
        "esv-b": "from-file",
        "esv-c": "inline",
    }
    values = esv_values(env, got)
    assert values["esv-a"].secret and values["esv-a"].text == "from-env"
    assert read_secret(env.secrets["esv-b"], workspace=tmp_path, environ={}).reveal() == "from-file"


def test_unreadable_secrets_are_all_named_never_shown(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    (tmp_path / "dir").mkdir()
    env = parse(
        "secrets:\n  esv-a: {env: UNSET}\n  esv-b: {env: EMPTY}\n  esv-c: {file: missing}\n"
        "  esv-d: {file: empty}\n  esv-e: {file: dir}\n  esv-f: {env: FINE}\n"
    )
    with pytest.raises(EnvironmentFileError) as caught:
        read_secrets(env, workspace=tmp_path, environ={"EMPTY": "", "FINE": "s3cr3t-value"})
    text = str(caught.value)
    assert [p.path for p in caught.value.problems] == [
        "secrets.esv-a",
        "secrets.esv-b",
        "secrets.esv-c",
        "secrets.esv-d",
        "secrets.esv-e",
    ]
    assert "environment variable UNSET is not set" in text
    assert "environment variable EMPTY is empty" in text
    assert "file missing cannot be read: No such file or directory" in text
    assert "file empty is empty" in text
    assert "s3cr3t" not in text
    with pytest.raises(EnvironmentFileError, match="UNSET is not set"):
        read_secret(SecretSource("env", "UNSET"), workspace=tmp_path, environ={})
    with pytest.raises(EnvironmentFileError, match="esv-a"):
        read_secret(Secret("esv-a", SecretSource("env", "UNSET")), workspace=tmp_path, environ={})


def test_lone_surrogate_escapes_are_refused_by_key_path_never_shown() -> None:
    text = (
        'variables:\n  esv-sur: "a\\ud800b"\n'
        'secrets:\n  esv-p: {value: "hunter2\\udfff"}\n  "esv-\\udc00": {env: X}\n'
    )
    with pytest.raises(EnvironmentFileError) as caught:
        parse(text)
    assert caught.value.exit_code == 3
    assert [p.path for p in caught.value.problems] == [
        "variables.esv-sur",
        "secrets.esv-p.value",
        'secrets["esv-\\udc00"]',
    ]
    message = str(caught.value)
    assert "the text holds a lone surrogate" in message and "the key holds" in message
    assert "\\UXXXXXXXX" in message
    assert "hunter2" not in message
    message.encode("utf-8")
    # YAML's \U escape (and the character itself) is fine
    env = parse('variables:\n  esv-ok: "\\U0001F600 \U0001f600"\n')
    assert env.variables["esv-ok"].value == "\U0001f600 \U0001f600"


def test_secret_env_var_that_is_not_utf8_is_named_never_shown(tmp_path: Path) -> None:
    # os.environ holds bytes that are not UTF-8 as lone surrogates (surrogateescape)
    with pytest.raises(EnvironmentFileError) as caught:
        read_secret(SecretSource("env", "PW"), workspace=tmp_path, environ={"PW": "hunter2\udcff"})
    assert "environment variable PW is not UTF-8 text" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_value_pasted_where_a_variable_name_belongs_is_never_shown() -> None:
    with pytest.raises(EnvironmentFileError) as error:
        parse_environment(
            'secrets:\n  esv-a: {env: "hunter2-P@ss"}\n',
            name="uat",
            path=Path("environments/uat.yaml"),
            relpath=REL,
        )
    assert "hunter2" not in str(error.value)
    assert "secrets.esv-a.env: is not an environment variable name" in str(error.value)


def test_a_surrogate_made_by_the_long_escape_is_refused_too() -> None:
    # Text without a \u or \U escape cannot hold one, so only such text is searched.
    with pytest.raises(EnvironmentFileError) as caught:
        parse('variables:\n  esv-sur: "a\\U0000D800b"\n')
    assert [p.path for p in caught.value.problems] == ["variables.esv-sur"]
