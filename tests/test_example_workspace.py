"""The shipped example (environments/, config/) resolves completely for every environment."""

from __future__ import annotations

import json

import pytest

from esv import check_environment, index_references
from promote.validation import check_workspace, resolve_environment
from promote.workspace import load_workspace
from tests.helpers.example import REPO

ENVIRON = {"UAT_SMTP_PASSWORD": "uat-example-Pw9", "PROD_SMTP_PASSWORD": "prod-example-Pw7"}


def test_chain_and_objects() -> None:
    ws = load_workspace(REPO)
    assert ws.chain == ("dev", "staging", "uat", "prod")
    assert set(ws.config) >= {"external.email", "emailTemplate/welcome"}
    assert [ws.is_mutable(e) for e in ws.chain] == [True, False, False, False]
    assert [ws.environments[e].protected for e in ws.chain] == [False, False, True, True]
    assert all(ws.environments[e].tenant["kind"] == "local" for e in ws.chain)


@pytest.mark.parametrize("env", ["dev", "staging", "uat", "prod"])
def test_every_object_resolves_in_every_environment(env: str) -> None:
    ws = load_workspace(REPO)
    assert [
        p for p in check_environment(ws.config, ws.environments[env]) if p.severity == "error"
    ] == []
    resolved = resolve_environment(ws, env, environ=ENVIRON)
    assert set(resolved) == set(ws.config)
    for result in resolved.values():
        text = json.dumps(result.value)
        assert "&{esv." not in text
        for secret in ENVIRON.values():
            assert secret not in json.dumps(result.masked)
    email = resolved["external.email"].value
    assert isinstance(email["port"], int) and isinstance(email["ssl"]["enable"], bool)
    assert env in email["host"] or env == "prod"
    assert resolved["external.email"].secret_paths == frozenset({"auth.password"})


def test_dev_and_staging_need_no_environment_variable() -> None:
    ws = load_workspace(REPO)
    for env in ("dev", "staging"):
        assert resolve_environment(ws, env, environ={})


def test_example_validates_without_errors() -> None:
    ws = load_workspace(REPO)
    results = check_workspace(ws, environ=ENVIRON)
    errors = [str(p) for found in results.values() for p in found if p.severity == "error"]
    assert errors == []


def test_every_defined_esv_is_referenced() -> None:
    ws = load_workspace(REPO)
    used = {r.esv_id for r in index_references(ws.config)}
    for env in ws.environments.values():
        assert set(env.variables) | set(env.secrets) <= used
