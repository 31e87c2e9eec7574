"""Is an environment's email setup valid with that environment's values?

:func:`check_email` looks at the *resolved* config objects of one environment (what the
environment would run): ``external.email`` (SMTP or Microsoft Graph, or its absence: the
built-in provider) and every ``emailTemplate/*``. It returns every problem at once, errors
and warnings, each naming the object (or environment file), the JSON path, what is wrong and
how to fix it. Messages quote ``Resolved.masked``, never ``Resolved.value``, so no secret can
appear in them. A problem about an object does not name the environment in its text (the
caller does: ``validate`` tags it ``[dev, staging]``, ``plan`` lists it under its stage), so
the same problem in several environments is the same :class:`Problem` and is printed once.

The rules each object is checked against are in :mod:`promote.email.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from esv.errors import Problem
from promote.email.model import parse_address
from promote.email.rules import ObjectCheck, international_refusal
from promote.tenants.factory import capabilities_for, env_config_problems

if TYPE_CHECKING:
    from esv.envfile import EnvironmentFile
    from esv.resolver import Resolved
    from promote.tenants.base import Capabilities

__all__ = [
    "EMAIL_OBJECT",
    "TEMPLATE_PREFIX",
    "check_email",
    "check_recipient",
    "email_problems",
    "recipients_of",
]

EMAIL_OBJECT = "external.email"
TEMPLATE_PREFIX = "emailTemplate/"


def check_email(
    resolved: Mapping[str, Resolved],
    *,
    env: str,
    location: str,
    mutable: bool,
    capabilities: Capabilities,
    recipients: Sequence[str] = (),
) -> list[Problem]:
    """Every problem of ``env``'s email provider and templates, errors and warnings.

    ``resolved``: the environment's resolved config objects (ids as in ``config/``);
    ``location``: its environment file (``environments/uat.yaml``), named by problems that
    are about the environment rather than an object; ``capabilities``: its tenant's (ports,
    Graph, what the built-in provider is); ``recipients``: test addresses (the env file's
    ``verify.email_test.to``), checked against the provider. No ``external.email`` means the
    built-in provider: an error unless ``mutable`` or the built-in email is the platform's
    own (``capabilities.builtin_email == "platform"``: Okta without a custom server).
    """
    problems: list[Problem] = []
    email = resolved.get(EMAIL_OBJECT)
    config: Mapping[str, Any] | None = None
    if email is not None:
        checker = ObjectCheck(email, env=env, location=location)
        config = checker.check_provider(capabilities)
        problems += checker.problems
    elif capabilities.builtin_email != "platform" and not mutable:
        problems.append(
            Problem(
                location,
                "",
                f"{env} has no external.email: it would run on the built-in email provider, "
                "which is for testing only and exists only in mutable environments",
                hint="add config/external.email.json with ESV placeholders and define its "
                f"ESVs in {location}",
            )
        )
    for address in recipients:
        problems += check_recipient(
            address, config, location=location, path="verify.email_test.to", env=env
        )
    for object_id in sorted(resolved):
        if object_id.startswith(TEMPLATE_PREFIX):
            checker = ObjectCheck(resolved[object_id], env=env, location=location)
            checker.check_template(config)
            problems += checker.problems
    return problems


def email_problems(
    resolved: Mapping[str, Resolved],
    *,
    env: EnvironmentFile,
    mutable: bool,
    capabilities: Capabilities | None = None,
) -> list[Problem]:
    """The email problems of one environment: :func:`check_email` with its file's
    ``verify.email_test.to`` as recipient, plus what its tenant cannot hold of the resolved
    config (:func:`promote.tenants.factory.env_config_problems`).

    ``capabilities``: the open tenant's; default :func:`capabilities_for` the file (no
    connection). What ``plan``, ``validate`` and ``email test`` check alike.
    """
    problems = check_email(
        resolved,
        env=env.name,
        location=env.relpath,
        mutable=mutable,
        capabilities=capabilities if capabilities is not None else capabilities_for(env),
        recipients=recipients_of(env),
    )
    return problems + env_config_problems(env, resolved, reported=problems)


def recipients_of(env: EnvironmentFile) -> list[str]:
    """The test address of ``env``'s ``verify.email_test.to``, when it is text."""
    gate = (env.verify or {}).get("email_test")
    to = gate.get("to") if isinstance(gate, Mapping) else None
    return [to] if isinstance(to, str) else []


def check_recipient(
    address: str,
    config: Mapping[str, Any] | None,
    *,
    location: str,
    path: str,
    env: str,
) -> list[Problem]:
    """Problems sending to ``address`` through ``config`` (``None``: the built-in provider)."""
    parsed = parse_address(address)
    if parsed is None:
        return [
            Problem(
                location,
                path,
                f"{address!r} is not an email address",
                hint="write it as name@example.com",
            )
        ]
    reason = international_refusal(parsed, config, env=env)
    return [Problem(location, path, reason[0], hint=reason[1])] if reason else []
