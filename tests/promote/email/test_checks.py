"""Validation of the resolved email provider and templates, per environment."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from esv.resolver import EsvValue, resolve
from promote.email import check_email
from promote.tenants.aic import AicTenant
from promote.tenants.base import Capabilities
from promote.tenants.local import LOCAL_CAPABILITIES
from promote.tenants.okta import OKTA_CAPABILITIES
from tests.promote.email.workspaces import SMTP_CONFIG

SECRET = "Pa55-not-for-logs"

# The loopback workspaces' provider, with STARTTLS always on, real timeouts and a property.
SMTP: dict[str, Any] = {
    **SMTP_CONFIG,
    "starttls": {"enable": True},
    "timeout": 30000,
    "writetimeout": 30000,
    "connectiontimeout": 30000,
    "smtpProperties": ["mail.smtp.ssl.protocols=TLSv1.2"],
}

GRAPH: dict[str, Any] = {
    "type": "msgraph",
    "mailEndpoint": "https://graph.microsoft.com/v1.0/users/me@acme.onmicrosoft.com/sendMail",
    "from": "me@acme.onmicrosoft.com",
    "auth": {
        "enable": True,
        "type": "oauth2",
        "clientId": "client-1",
        "clientSecret": "&{esv.email.provider.password}",
        "tokenEndpoint": "https://login.microsoftonline.com/acme/oauth2/v2.0/token",
        "scope": ["https://graph.microsoft.com/.default"],
    },
    "threadPoolSize": 20,
}

TEMPLATE: dict[str, Any] = {
    "_id": "emailTemplate/welcome",
    "defaultLocale": "en",
    "from": "",
    "subject": {"en": "Welcome", "fr": "Bienvenue"},
    "message": {"en": "<p>Hi {{object.userName}}</p>", "fr": "<p>Salut</p>"},
}

STAGING = {
    "esv-email-provider-host": EsvValue("esv-email-provider-host", "smtp.staging.example.com"),
    "esv-email-provider-port": EsvValue("esv-email-provider-port", "587", "int"),
    "esv-email-provider-from": EsvValue("esv-email-provider-from", "noreply@example.com"),
    "esv-email-provider-password": EsvValue("esv-email-provider-password", SECRET, secret=True),
}


def _values(**overrides: str) -> dict[str, EsvValue]:
    values = dict(STAGING)
    for key, text in overrides.items():
        esv_id = "esv-email-provider-" + key.replace("_", "-")
        old = values[esv_id]
        values[esv_id] = EsvValue(esv_id, text, old.type, old.secret)
    return values


_CAPABILITIES = {
    "local": LOCAL_CAPABILITIES,
    "aic": AicTenant.capabilities,
    "okta": OKTA_CAPABILITIES,
}


def _check(
    objects: dict[str, Any],
    values: dict[str, EsvValue] | None = None,
    *,
    mutable: bool = False,
    tenant_kind: str = "local",
    capabilities: Capabilities | None = None,
    recipients: tuple[str, ...] = (),
    env: str = "staging",
):
    values = STAGING if values is None else values
    resolved = {oid: resolve(doc, values, object_id=oid) for oid, doc in objects.items()}
    return check_email(
        resolved,
        env=env,
        location=f"environments/{env}.yaml",
        mutable=mutable,
        capabilities=capabilities or _CAPABILITIES[tenant_kind],
        recipients=recipients,
    )


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    node = doc
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()


def _errors(problems):
    return [(p.path, p.message) for p in problems if p.severity == "error"]


def _warnings(problems):
    return [(p.path, p.message) for p in problems if p.severity == "warning"]


def test_valid_smtp_and_graph_have_no_problems():
    assert _check({"external.email": SMTP}) == []
    assert _check({"external.email": GRAPH}) == []


def test_problem_names_object_path_and_hint_but_not_the_environment():
    [problem] = _check({"external.email": SMTP}, _values(port="70000"))
    assert problem.location == "external.email"
    assert problem.path == "port"
    assert "70000" in problem.message and "1–65535" in problem.message
    assert "staging" not in str(problem)  # the caller names it ([staging], or the plan stage)


def test_same_config_valid_in_one_environment_invalid_in_another():
    assert _check({"external.email": SMTP}, _values(port="587"), env="uat") == []
    problems = _check({"external.email": SMTP}, _values(port="0"), env="prod")
    assert _errors(problems) == [("port", "is 0; it must be 1–65535")]


def test_the_same_problem_in_several_environments_is_one_problem():
    email = {k: v for k, v in SMTP.items() if k != "host"}
    email["auth"] = {**SMTP["auth"], "password": "literal-pw"}
    found = [
        _check({"external.email": email}, _values(), env=env) for env in ("dev", "staging", "prod")
    ]
    assert found[0] == found[1] == found[2]
    assert [p.path for p in found[0]] == ["host", "auth.password"]


@pytest.mark.parametrize(
    ("path", "value", "expected_path"),
    [
        ("host", _DELETE, "host"),
        ("host", "", "host"),
        ("host", "smtp example.com", "host"),
        ("port", _DELETE, "port"),
        ("port", 65536, "port"),
        ("port", True, "port"),
        ("port", "587", "port"),
        ("auth", _DELETE, "auth"),
        ("auth", "yes", "auth"),
        ("auth.enable", "true", "auth.enable"),
        ("auth.username", "", "auth.username"),
        ("auth.password", _DELETE, "auth.password"),
        ("auth.type", "oauth2", "auth.type"),
        ("from", "not an address", "from"),
        ("from", '"Acme" noreply@example.com', "from"),
        ("starttls", True, "starttls"),
        ("ssl.enable", "false", "ssl.enable"),
        ("timeout", -1, "timeout"),
        ("writetimeout", 1.5, "writetimeout"),
        ("connectiontimeout", "300000", "connectiontimeout"),
        ("threadPoolSize", 0, "threadPoolSize"),
        ("smtpProperties", "mail.mime.allowutf8=true", "smtpProperties"),
        ("smtpProperties", ["mail.mime.allowutf8"], "smtpProperties[0]"),
        ("smtpProperties", ["ok=1", "=x"], "smtpProperties[1]"),
        ("smtpProperties", ["mail.mime.allowutf8=yes"], "smtpProperties[0]"),
        ("debug", "no", "debug"),
        ("type", "sendgrid", "type"),
    ],
)
def test_smtp_errors(path, value, expected_path):
    problems = _check({"external.email": _with(SMTP, path, value)})
    assert [p for p, _ in _errors(problems)] == [expected_path]


def test_port_given_as_text_suggests_int_wrapper():
    doc = _with(SMTP, "port", "&{esv.email.provider.port}")
    [problem] = _check({"external.email": doc})
    assert problem.path == "port" and '"$int"' in (problem.hint or "")


def test_auth_disabled_needs_no_credentials():
    doc = _with(SMTP, "auth", {"enable": False, "username": "", "password": ""})
    assert _check({"external.email": doc}) == []


@pytest.mark.parametrize("ok", [{"from": "a@b.example"}, {"from": "Acme <a@b.example>"}])
def test_from_forms(ok):
    assert _check({"external.email": {**SMTP, **ok}}) == []


def test_smtp_warnings():
    doc = _with(_with(SMTP, "ssl.enable", True), "port", 25)
    warnings = _warnings(_check({"external.email": doc}))
    assert [path for path, _ in warnings] == ["port", "ssl.enable"]
    assert _errors(_check({"external.email": doc})) == []


def test_missing_from_is_a_warning():
    problems = _check({"external.email": _with(SMTP, "from", _DELETE)})
    assert [p for p, _ in _warnings(problems)] == ["from"] and not _errors(problems)


def test_literal_password_warns_without_showing_it():
    doc = _with(SMTP, "auth.password", "hunter2-literal")
    problems = _check({"external.email": doc})
    assert [p for p, _ in _warnings(problems)] == ["auth.password"]
    assert all("hunter2-literal" not in str(p) for p in problems)


def test_password_from_a_plain_variable_warns_too():
    doc = _with(SMTP, "auth.password", "&{esv.email.provider.host}")
    assert [p for p, _ in _warnings(_check({"external.email": doc}))] == ["auth.password"]


def test_password_from_platform_token_is_not_a_literal():
    doc = _with(SMTP, "auth.password", "&{sendgrid.api.key}")
    assert _check({"external.email": doc}) == []


def test_secret_never_appears_in_messages():
    doc = _with(SMTP, "host", "&{esv.email.provider.password}")
    problems = _check({"external.email": _with(doc, "from", "&{esv.email.provider.password}")})
    assert problems
    assert all(SECRET not in str(p) for p in problems)
    assert any("********" in str(p) for p in problems)


def test_okta_ports_and_msgraph():
    doc = _with(SMTP, "port", 2525)
    assert [p for p, _ in _warnings(_check({"external.email": doc}, tenant_kind="okta"))] == [
        "port"
    ]
    assert _check({"external.email": doc}, tenant_kind="aic") == []
    assert [p for p, _ in _errors(_check({"external.email": GRAPH}, tenant_kind="okta"))] == [
        "type"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected_path"),
    [
        ("mailEndpoint", _DELETE, "mailEndpoint"),
        ("mailEndpoint", "graph.microsoft.com/sendMail", "mailEndpoint"),
        ("mailEndpoint", "ftp://graph.microsoft.com/x", "mailEndpoint"),
        ("auth", _DELETE, "auth"),
        ("auth.type", "basic", "auth.type"),
        ("auth.type", _DELETE, "auth.type"),
        ("auth.clientId", "", "auth.clientId"),
        ("auth.clientSecret", _DELETE, "auth.clientSecret"),
        ("auth.tokenEndpoint", "login", "auth.tokenEndpoint"),
        ("auth.scope", [], "auth.scope"),
        ("auth.scope", "https://graph.microsoft.com/.default", "auth.scope"),
        ("auth.scope", [""], "auth.scope"),
        ("auth.grantType", "password", "auth.grantType"),
        ("threadPoolSize", -3, "threadPoolSize"),
        ("from", "nobody", "from"),
    ],
)
def test_graph_errors(path, value, expected_path):
    problems = _check({"external.email": _with(GRAPH, path, value)})
    assert [p for p, _ in _errors(problems)] == [expected_path]


def test_graph_warnings():
    doc = {**GRAPH, "host": "smtp.example.com", "mailEndpoint": "http://graph.example.com/send"}
    doc = _with(doc, "auth.clientSecret", "literal-client-secret")
    warnings = [p for p, _ in _warnings(_check({"external.email": doc}))]
    assert sorted(warnings) == ["auth.clientSecret", "host", "mailEndpoint"]


def test_graph_on_loopback_http_is_fine():
    doc = {**GRAPH, "mailEndpoint": "http://127.0.0.1:8025/send"}
    assert _check({"external.email": doc}) == []


def test_builtin_provider_only_in_mutable_environments():
    assert _check({}, mutable=True, env="dev") == []
    [problem] = _check({}, mutable=False, env="prod")
    assert problem.location == "environments/prod.yaml"
    assert "built-in" in problem.message and problem.severity == "error"


def test_okta_without_external_email_means_no_custom_server():
    assert _check({}, mutable=False, tenant_kind="okta") == []


def test_the_checks_follow_the_capabilities_not_a_kind():
    doc = _with(SMTP, "port", 2525)
    smtp_only = Capabilities(email_ports=(2525,), graph_email=False, builtin_email="platform")
    assert _check({"external.email": doc}, capabilities=smtp_only) == []
    strict = Capabilities(email_ports=(465,))
    ((path, message),) = _warnings(_check({"external.email": doc}, capabilities=strict))
    assert path == "port" and "supports ports 465" in message
    assert [p for p, _ in _errors(_check({"external.email": GRAPH}, capabilities=smtp_only))] == [
        "type"
    ]
    assert _check({}, mutable=False, capabilities=smtp_only) == []
    for builtin in ("outbox", "test-only"):
        problems = _check({}, mutable=False, capabilities=Capabilities(builtin_email=builtin))
        assert [(p.path, p.severity) for p in problems] == [("", "error")]


def test_international_from_needs_allowutf8_on_smtp():
    values = _values(**{"from": "jürgen@example.com"})
    [problem] = _check({"external.email": SMTP}, values)
    assert problem.path == "from" and "allowutf8" in problem.message
    allowed = _with(SMTP, "smtpProperties", ["mail.mime.allowutf8=true"])
    assert _check({"external.email": allowed}, values) == []
    graph = _with(GRAPH, "from", "jürgen@example.com")
    assert [p for p, _ in _errors(_check({"external.email": graph}))] == ["from"]


def test_international_recipient_per_provider():
    to = ("用户@example.com",)
    assert [p.path for p in _check({"external.email": SMTP}, recipients=to)] == [
        "verify.email_test.to"
    ]
    allowed = _with(SMTP, "smtpProperties", ["mail.mime.allowutf8=TRUE"])
    assert _check({"external.email": allowed}, recipients=to) == []
    [builtin] = _check({}, mutable=True, recipients=to)
    assert "built-in" in builtin.message
    assert _check({}, mutable=True, recipients=("ops@example.com",)) == []
    [bad] = _check({}, mutable=True, recipients=("ops",))
    assert "not an email address" in bad.message


def test_international_domain_needs_no_allowutf8_on_smtp_or_graph():
    values = _values(**{"from": "noreply@bücher.example"})
    to = ("ops@例え.jp",)
    assert _check({"external.email": SMTP}, values, recipients=to) == []
    graph = _with(GRAPH, "from", "me@bücher.example")
    assert _check({"external.email": graph}, recipients=to) == []


def test_international_domain_is_refused_by_the_builtin_provider():
    [builtin] = _check({}, mutable=True, recipients=("ops@bücher.example",))
    assert builtin.path == "verify.email_test.to" and "built-in" in builtin.message


def test_unencodable_domain_is_an_error_naming_the_address_not_the_reason_text():
    to = ("ops@" + "ü" * 70 + ".example",)
    [problem] = _check({"external.email": SMTP}, recipients=to)
    assert problem.severity == "error" and problem.path == "verify.email_test.to"
    assert "cannot be IDNA-encoded (a label is empty or longer than 63" in problem.message


def test_international_local_part_still_needs_allowutf8_with_an_idna_domain():
    to = ("jürgen@bücher.example",)
    [problem] = _check({"external.email": SMTP}, recipients=to)
    assert "allowutf8" in problem.message and problem.hint and "allowutf8" in problem.hint
    allowed = _with(SMTP, "smtpProperties", ["mail.mime.allowutf8=true"])
    assert _check({"external.email": allowed}, recipients=to) == []


def test_valid_template():
    assert _check({"external.email": SMTP, "emailTemplate/welcome": TEMPLATE}) == []


@pytest.mark.parametrize(
    ("path", "value", "expected_path"),
    [
        ("defaultLocale", _DELETE, "defaultLocale"),
        ("defaultLocale", "english!", "defaultLocale"),
        ("defaultLocale", "de", "subject"),
        ("subject", "Welcome", "subject"),
        ("message.en", _DELETE, "message"),
        ("subject.en_GB", "Hello", "subject.en_GB"),
        ("message.fr", 3, "message.fr"),
        ("html", {"en-": "<p/>"}, "html.en-"),
        ("from", "Acme", "from"),
    ],
)
def test_template_errors(path, value, expected_path):
    problems = _check(
        {"external.email": SMTP, "emailTemplate/welcome": _with(TEMPLATE, path, value)}
    )
    errors = _errors(problems)
    assert expected_path in [p for p, _ in errors]
    assert all(p.location == "emailTemplate/welcome" for p in problems)


def test_template_default_locale_missing_in_both():
    doc = _with(TEMPLATE, "defaultLocale", "de")
    assert [p for p, _ in _errors(_check({"emailTemplate/welcome": doc}, mutable=True))] == [
        "subject",
        "message",
    ]


def test_template_locale_hint_and_language_tags():
    doc = _with(TEMPLATE, "subject.en_GB", "Hello")
    [problem] = _check({"emailTemplate/welcome": doc}, mutable=True)
    assert problem.hint == 'use "en-GB"'
    ok = _with(_with(TEMPLATE, "subject.zh-Hant-TW", "x"), "message.es-419", "y")
    assert _check({"emailTemplate/welcome": ok}, mutable=True) == []


def test_template_international_from():
    doc = _with(TEMPLATE, "from", "jürgen@example.com")
    assert [p for p, _ in _errors(_check({"external.email": SMTP, "emailTemplate/w": doc}))] == [
        "from"
    ]
    # the built-in provider replaces every sender: nothing to refuse
    assert _check({"emailTemplate/w": doc}, mutable=True) == []


def test_external_email_not_an_object():
    [problem] = _check({"external.email": ["host"]})
    assert problem.path == "" and "JSON object" in problem.message


def test_email_problems_are_what_plan_validate_and_email_test_check(tmp_path):
    from esv.envfile import esv_values, read_secrets
    from promote.email import email_problems
    from promote.workspace import load_workspace
    from tests.promote.email.workspaces import env_file, make_workspace

    okta = env_file(port=2525, extra="verify:\n  email_test: {to: not-an-address}\n").replace(
        "  kind: local", "  kind: okta\n  url: https://acme.okta.com\n  token: {env: OKTA_TOKEN}"
    )
    config = {**SMTP_CONFIG, "smtpProperties": ["mail.smtp.x=1"]}
    ws = load_workspace(make_workspace(tmp_path, {"dev": okta}, config=config))
    env = ws.environments["dev"]
    values = esv_values(env, read_secrets(env, workspace=ws.root, environ={"SMTP_PASSWORD": "pw"}))
    resolved = {
        "external.email": resolve(ws.config["external.email"], values, object_id="external.email")
    }
    found = [
        (p.location, p.path, p.severity) for p in email_problems(resolved, env=env, mutable=True)
    ]
    assert found == [
        ("external.email", "port", "warning"),  # from the capabilities, reported once
        ("environments/dev.yaml", "verify.email_test.to", "error"),  # the gate's recipient
        ("external.email", "smtpProperties[0]", "error"),  # what an Okta server cannot hold
    ]


def _unknown(problems):
    return [(p.path, p.hint) for p in problems if "is not a key promote knows" in p.message]


def test_a_misspelt_key_gets_a_warning_with_a_did_you_mean():
    doc = {k: v for k, v in SMTP.items() if k != "host"}
    doc["hots"] = SMTP["host"]
    problems = _check({"external.email": doc})
    assert [p for p, _ in _errors(problems)] == ["host"]
    [warning] = [p for p in problems if p.path == "hots"]
    assert warning.severity == "warning"
    assert str(warning) == (
        "external.email: hots: is not a key promote knows for an SMTP provider; "
        "the platform may ignore it (did you mean host?)"
    )


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        (SMTP, "connectionTimeout", ("connectionTimeout", "did you mean connectiontimeout?")),
        (SMTP, "auth.usrname", ("auth.usrname", "did you mean auth.username?")),
        (SMTP, "start_tls", ("start_tls", "did you mean starttls?")),
        (GRAPH, "mailendpoint", ("mailendpoint", "did you mean mailEndpoint?")),
        (GRAPH, "auth.clientID", ("auth.clientID", "did you mean auth.clientId?")),
        (GRAPH, "auth.scopes", ("auth.scopes", "did you mean auth.scope?")),
    ],
)
def test_unknown_keys_of_either_shape_and_of_auth(base, path, expected):
    problems = _check({"external.email": _with(base, path, "x")})
    assert _unknown(problems) == [expected]
    assert [p.severity for p in problems if p.path == path] == ["warning"]


def test_an_unknown_key_with_nothing_close_lists_the_known_keys():
    [(path, hint)] = _unknown(_check({"external.email": _with(SMTP, "auth.zzz", 1)}))
    assert (path, hint) == (
        "auth.zzz",
        "known keys: auth.enable, auth.password, auth.type, auth.username",
    )


def test_a_key_of_the_other_shape_is_named_as_such_once():
    smtp = _with(_with(SMTP, "mailEndpoint", "https://graph.example.com"), "auth.clientId", "c")
    warnings = [(p.path, p.message) for p in _check({"external.email": smtp})]
    assert warnings == [
        ("mailEndpoint", 'is a key of a "msgraph" provider; an SMTP provider ignores it'),
        ("auth.clientId", 'is a key of a "msgraph" provider; an SMTP provider ignores it'),
    ]
    graph = _with(_with(GRAPH, "port", 587), "auth.password", "&{esv.email.provider.password}")
    warnings = [(p.path, p.message) for p in _check({"external.email": graph})]
    assert warnings == [
        ("port", 'is ignored by type "msgraph" (SMTP only)'),
        ("auth.password", 'is a key of an SMTP provider; a "msgraph" provider ignores it'),
    ]


def test_known_keys_are_not_warned_about():
    full = {**SMTP, "_id": "external.email", "type": "smtp", "debug": False}
    assert _check({"external.email": full}) == []
    graph = _with(_with(GRAPH, "auth.scopeDelimiter", " "), "auth.grantType", "client_credentials")
    graph = {**graph, "_id": "external.email", "timeout": 1000, "connectiontimeout": 1000}
    assert _check({"external.email": graph}) == []


def test_okta_names_a_misspelt_key_once():
    from esv.envfile import EnvironmentFile
    from promote.email import email_problems

    doc = {**SMTP, "port": 587, "hots": "smtp.example.com"}
    resolved = {"external.email": resolve(doc, STAGING, object_id="external.email")}
    env = EnvironmentFile(
        name="uat",
        path=Path("environments/uat.yaml"),
        relpath="environments/uat.yaml",
        description="",
        tenant={"kind": "okta"},
        mutable=None,
        protected=False,
        verify={},
        restart=None,
        variables={},
        secrets={},
        warnings=(),
    )
    problems = email_problems(resolved, env=env, mutable=False)
    assert [(p.path, p.severity) for p in problems if p.path == "hots"] == [("hots", "warning")]
