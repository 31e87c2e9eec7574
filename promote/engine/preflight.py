"""A stage's checks, all problems at once: mutability, secrets that can be read, every
reference and type, the email provider and templates for that environment, drift under
``on_drift: block`` (:func:`preflight`, :func:`resolve_checked`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from esv import EnvironmentFileError, EsvError, Problem, SecretValue
from esv.envfile import EnvironmentFile, esv_values, read_secrets
from esv.errors import MISSING_ESV
from esv.references import ReferenceIndex, check_environment
from esv.resolver import Resolved, resolve_objects
from promote.email.checks import EMAIL_OBJECT, TEMPLATE_PREFIX, email_problems
from promote.tenants.base import JSON, Capabilities, Tenant
from promote.workspace import Workspace

__all__ = [
    "Checks",
    "drift_problem",
    "email_objects",
    "immutable_problem",
    "is_email_object",
    "preflight",
    "read_stage_secrets",
    "resolve_checked",
    "unique",
]


@dataclass
class Checks:
    """Preflight of one stage: problems, and what was read and resolved on the way."""

    errors: list[Problem]
    warnings: list[Problem]
    missing: list[str]
    secrets: dict[str, SecretValue] = field(repr=False)
    secrets_ok: bool
    resolved: dict[str, Resolved] = field(default_factory=dict, repr=False)
    resolved_ok: bool = False
    """Resolution succeeded (``resolved`` may be empty and fine: nothing to resolve)."""


def preflight(
    workspace: Workspace,
    envfile: EnvironmentFile,
    desired: Mapping[str, JSON],
    lower: str | None,
    tenant: Tenant,
    mutable: bool,
    environ: Mapping[str, str],
    references: ReferenceIndex,
) -> Checks:
    """Every problem of the stage at once: mutability, secrets, references, types, email."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if not tenant.capabilities.promotion and envfile.mutable is False:
        errors.append(immutable_problem(envfile, promotion=False))
    elif not mutable and lower is None:
        errors.append(immutable_problem(envfile, promotion=True))
    secrets, secret_problems = read_stage_secrets(envfile, workspace, environ)
    errors.extend(secret_problems)
    missing: set[str] = set()
    for problem in check_environment(desired, envfile, index=references):
        (errors if problem.severity == "error" else warnings).append(problem)
        if problem.code == MISSING_ESV and problem.esv_id:
            missing.add(problem.esv_id)
    return Checks(
        errors=errors,
        warnings=warnings,
        missing=sorted(missing),
        secrets=secrets,
        secrets_ok=not secret_problems,
    )


def resolve_checked(
    checks: Checks,
    envfile: EnvironmentFile,
    objects: Mapping[str, JSON],
    mutable: bool,
    capabilities: Capabilities,
) -> None:
    """Resolve ``objects`` with the stage's values and check the email objects among them;
    problems and results go into ``checks`` (nothing is resolved without the secrets)."""
    errors, warnings = checks.errors, checks.warnings
    if checks.secrets_ok:
        try:
            resolved = resolve_objects(objects, esv_values(envfile, checks.secrets))
        except EsvError as error:
            # The resolver finds again what the reference check reported (in other words).
            seen = {(p.location, p.path, p.esv_id) for p in errors}
            errors.extend(p for p in error.problems if (p.location, p.path, p.esv_id) not in seen)
        else:
            checks.resolved, checks.resolved_ok = resolved, True
            found = email_problems(
                resolved, env=envfile, mutable=mutable, capabilities=capabilities
            )
            for problem in found:
                (errors if problem.severity == "error" else warnings).append(problem)
    checks.errors, checks.warnings = unique(errors), unique(warnings)


def email_objects(ids: Iterable[str]) -> list[str]:
    """The email objects among ``ids`` (one pass without a call per id: 20,000 ids)."""
    return [key for key in ids if key.startswith(_EMAIL_PREFIXES) and is_email_object(key)]


_EMAIL_PREFIXES = (EMAIL_OBJECT, TEMPLATE_PREFIX)


def is_email_object(object_id: str) -> bool:
    # The email checks read the provider and every template together.
    return object_id == EMAIL_OBJECT or object_id.startswith(TEMPLATE_PREFIX)


def immutable_problem(envfile: EnvironmentFile, *, promotion: bool) -> Problem:
    if promotion:
        return Problem(
            envfile.relpath,
            "mutable",
            "the first stage of the chain receives config/ directly, so it must be mutable",
            hint="remove 'mutable: false' from this file",
        )
    return Problem(
        envfile.relpath,
        "mutable",
        "this tenant cannot receive promotions, "
        "so config reaches it only by direct writes; it cannot be immutable",
        hint="remove 'mutable: false' from this file",
    )


def read_stage_secrets(
    envfile: EnvironmentFile, workspace: Workspace, environ: Mapping[str, str]
) -> tuple[dict[str, SecretValue], list[Problem]]:
    try:
        return read_secrets(envfile, workspace=workspace.root, environ=environ), []
    except EnvironmentFileError as error:
        return {}, list(error.problems)


def unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str, str]] = set()
    result = []
    for problem in problems:
        key = (problem.location, problem.path, problem.message)
        if key not in seen:
            seen.add(key)
            result.append(problem)
    return result


def drift_problem(envfile: EnvironmentFile, count: int) -> Problem:
    return Problem(
        envfile.relpath,
        "on_drift",
        f"{count} change{'s' if count != 1 else ''} made outside promote (listed under "
        "drift); on_drift: block stops the stage",
        hint=f"review them; to put them back run: promote run --accept-drift {envfile.name} "
        "(or copy them into the workspace first)",
    )
