"""Is the workspace valid for each environment? The checks behind ``validate``.

Per environment, on the config objects its tenant receives (:func:`received_config`: all of
``config/``, unless the capabilities of its tenant or of the stage below restrict them, as
``plan`` restricts them; Okta receives only ``external.email``): the environment file's
warnings, :func:`esv.check_environment` (missing, mistyped and unused ESVs, text that is not
a placeholder), resolution with that environment's values, and the email checks as ``plan``
makes them (:func:`promote.email.email_problems`: the provider and templates against the
capabilities of the environment's tenant, and what that tenant cannot hold), without opening
the tenant. Nothing is changed and no secret value appears in any problem. A secret whose
source is not available here (a CI without prod's variables) is a warning; the checks go on
with a stand-in value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace

from esv import (
    JSON,
    MASK,
    EsvError,
    EsvValue,
    Problem,
    ResolutionError,
    Resolved,
    check_environment,
    esv_values,
    index_references,
    read_secret,
    read_secrets,
    resolve_objects,
)
from esv.encrypted import encrypted_values
from esv.envfile import EnvironmentFile
from esv.errors import EnvironmentFileError
from esv.secrets import SecretValue
from promote.tenants.factory import capabilities_for
from promote.workspace import Workspace

__all__ = [
    "available_secrets",
    "check_workspace",
    "environment_values",
    "received_config",
    "resolve_environment",
]


def received_config(workspace: Workspace, env: str) -> dict[str, JSON]:
    """The config objects of ``config/`` that ``env``'s tenant receives.

    Restricted, as ``plan`` restricts them, to the ``config_ids`` of ``env``'s tenant and of
    the stage below it in the chain (when their capabilities name any); capabilities come
    from :func:`promote.tenants.factory.capabilities_for`, so no tenant is opened.
    """
    config = dict(workspace.config)
    below = workspace.lower(env) if env in workspace.chain else None
    for name in (below, env):
        if name is None:
            continue
        allowed = capabilities_for(workspace.environments[name]).config_ids
        if allowed is not None:
            config = {key: value for key, value in config.items() if key in allowed}
    return config


def environment_values(
    workspace: Workspace,
    env: str,
    *,
    environ: Mapping[str, str] = os.environ,
    only: Iterable[str] | None = None,
) -> dict[str, EsvValue]:
    """Every ESV value of ``env`` (secrets: only those in ``only`` when given).

    Raises EnvironmentFileError naming each unreadable secret source, never a value.
    """
    file = workspace.environments[env]
    if only is not None:
        wanted = set(only)
        file = replace(file, secrets={k: v for k, v in file.secrets.items() if k in wanted})
    secrets = read_secrets(file, workspace=workspace.root, environ=environ)
    return esv_values(file, secrets)


def resolve_environment(
    workspace: Workspace,
    env: str,
    object_ids: Iterable[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Resolved]:
    """The config objects (all, or ``object_ids``) as ``env`` runs them.

    Reads only the secrets those objects reference. Raises EsvError (exit 3) for unknown
    object ids, unreadable secrets, and every unresolved reference or failed conversion.
    """
    ids = list(workspace.config) if object_ids is None else list(object_ids)
    unknown = [i for i in ids if i not in workspace.config]
    if unknown:
        known = ", ".join(sorted(workspace.config)) or "none"
        raise EsvError(
            f"unknown config object{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(config/ holds: {known})"
        )
    objects = {i: workspace.config[i] for i in ids}
    try:
        values = environment_values(workspace, env, environ=environ)
    except EnvironmentFileError:
        # Some secret cannot be read here: that matters only if these objects use it, which
        # takes indexing their references (skipped when every secret can be read).
        referenced = {ref.esv_id for ref in index_references(objects)}
        values = environment_values(workspace, env, environ=environ, only=referenced)
    return resolve_objects(objects, values, source=workspace.environments[env].relpath)


def available_secrets(
    workspace: Workspace, file: EnvironmentFile, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, SecretValue], list[Problem]]:
    """The secrets of ``file`` that can be read here, and a warning for each that cannot.

    The warning names the source and why (never a value); ``validate`` and ``esv check``
    report it alike, since ``promote plan`` and ``promote run`` stop on it.
    """
    secrets: dict[str, SecretValue] = {}
    problems: list[Problem] = []
    for esv_id, secret in file.secrets.items():
        try:
            secrets[esv_id] = read_secret(secret, workspace=workspace.root, environ=environ)
        except EsvError as error:
            reason = error.problems[0].message if error.problems else str(error)
            problems.append(
                Problem(
                    file.relpath,
                    f"secrets.{esv_id}",
                    reason,
                    severity="warning",
                    esv_id=esv_id,
                    hint="`promote plan` and `promote run` need it; "
                    "until it is set, checks use a stand-in value",
                )
            )
    return secrets, problems


def _values_with_stand_ins(
    workspace: Workspace, file: EnvironmentFile, environ: Mapping[str, str]
) -> tuple[dict[str, EsvValue], list[Problem]]:
    secrets, problems = available_secrets(workspace, file, environ)
    values = esv_values(file, secrets)
    for problem in problems:
        assert problem.esv_id is not None
        values[problem.esv_id] = EsvValue(problem.esv_id, MASK, secret=True, stand_in=True)
    return values, problems


def _under(problem: Problem, resolved: Mapping[str, Resolved]) -> bool:
    """Whether ``problem`` is about a value that derives from a stand-in (not known here)."""
    found = resolved.get(problem.location)
    if found is None:
        return False
    for path in found.unknown_paths:
        if not path or problem.path == path or problem.path.startswith((path + ".", path + "[")):
            return True
    return False


def _check_one(workspace: Workspace, env: str, environ: Mapping[str, str]) -> list[Problem]:
    file = workspace.environments[env]
    objects = received_config(workspace, env)
    problems = list(file.warnings) + encrypted_values(objects)
    found = check_environment(objects, file)
    problems += found
    if any(p.severity == "error" for p in found):
        return problems
    values, stand_ins = _values_with_stand_ins(workspace, file, environ)
    problems += stand_ins
    try:
        resolved = resolve_objects(objects, values, source=file.relpath)
    except ResolutionError as error:
        return problems + list(error.problems)
    # A typed wrapper over a stand-in is left as written; checks of what it holds would be
    # guesses (the warning that the secret is not set already stands).
    from promote.email import email_problems

    found = email_problems(resolved, env=file, mutable=workspace.is_mutable(env))
    problems += [p for p in found if not _under(p, resolved)]
    return problems


def check_workspace(
    workspace: Workspace,
    envs: Iterable[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, list[Problem]]:
    """Every problem of every environment (default: the whole chain), errors and warnings.

    A problem that holds for several environments is listed under each of them (printers
    show it once, naming them all); within one environment each problem appears once.
    """
    return {
        env: list(dict.fromkeys(_check_one(workspace, env, environ)))
        for env in (workspace.chain if envs is None else envs)
    }
