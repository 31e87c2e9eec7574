"""Open an Okta tenant from an environment file (:func:`open_okta`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from esv.envfile import EnvironmentFile, SecretSource
from esv.errors import EnvironmentFileError, Problem
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.tenants.credentials import read_credential
from promote.tenants.okta.mapping import _AUTH_METHODS, DEFAULT_ALIAS
from promote.tenants.okta.tenant import OktaTenant
from promote.workspace import Workspace

if TYPE_CHECKING:
    import httpx

__all__ = ["open_okta"]


def open_okta(
    env: EnvironmentFile,
    *,
    workspace: Workspace,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
) -> OktaTenant:
    """The Okta tenant of ``env`` (``tenant: {kind: okta, url, token, token_type, alias}``);
    what it remembers of the server goes to ``store`` when given (the shared state store).

    Raises ``EnvironmentFileError`` naming every bad tenant key, and the esv error for an
    unreadable token (by its source, never its value).
    """
    tenant = env.tenant
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(env.relpath, f"tenant.{key}", message))

    url = tenant.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        bad("url", "must be the org's URL, e.g. https://acme.okta.com")
    token = tenant.get("token")
    if not isinstance(token, SecretSource):
        bad("token", "must name where the API token is: {env: OKTA_TOKEN} or {file: path}")
    token_type = tenant.get("token_type", "ssws")
    if token_type not in ("ssws", "bearer"):
        bad("token_type", "must be ssws (API token) or bearer (OAuth access token)")
    alias = tenant.get("alias", DEFAULT_ALIAS)
    if not isinstance(alias, str) or not alias.strip():
        bad("alias", "must be a non-empty string")
    method = tenant.get("token_endpoint_auth_method", _AUTH_METHODS[0])
    if method not in _AUTH_METHODS:
        bad("token_endpoint_auth_method", "must be CLIENT_SECRET_BASIC or CLIENT_SECRET_POST")
    email_test = env.verify.get("email_test") if isinstance(env.verify, Mapping) else None
    test_to = email_test.get("to") if isinstance(email_test, Mapping) else None
    if problems:
        raise EnvironmentFileError(env.relpath, problems)
    assert isinstance(token, SecretSource) and isinstance(url, str)
    secret = read_credential(env, "token", token, workspace=workspace.root, environ=environ)
    return OktaTenant(
        env.name,
        url=url,
        token=secret,
        state_dir=workspace.state_dir / "tenants" / env.name,
        records=store,
        fingerprints=fingerprints,
        token_type=str(token_type),
        alias=str(alias),
        token_endpoint_auth_method=str(method),
        test_to=test_to if isinstance(test_to, str) else None,
        transport=transport,
        clock=clock,
        sleep=sleep,
    )
