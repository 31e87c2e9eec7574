"""A stage's ESV changes: variables compared by value and type, secrets compared by the tenant
(never read back), a few at once (:func:`esv_changes`, :func:`compare_secrets`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor

from esv import SecretValue
from esv.envfile import EnvironmentFile
from promote.engine.model import EsvChange
from promote.tenants.base import EsvWrite, SecretState, Tenant, VariableState

__all__ = ["SECRET_WORKERS", "compare_secrets", "esv_changes"]


SECRET_WORKERS = 4
"""Secrets compared with the tenant at once while planning (see :func:`compare_secrets`)."""


def esv_changes(
    envfile: EnvironmentFile,
    secrets: Mapping[str, SecretValue],
    variables: Mapping[str, VariableState],
    secret_states: Mapping[str, SecretState],
    tenant: Tenant,
    rotated_outside: Collection[str] = (),
) -> tuple[list[EsvChange], list[EsvWrite]]:
    changes: list[EsvChange] = []
    writes: list[EsvWrite] = []
    # Deletes first: an id that moves from variable to secret (or back) is deleted, then added.
    for key, state in sorted(variables.items()):
        if state.managed and key not in envfile.variables:
            changes.append(EsvChange(key, "variable", "delete", state.type, before=state.value))
            writes.append(EsvWrite(key, "variable", "delete", None, state.type))
    for key, secret_state in sorted(secret_states.items()):
        if secret_state.managed and key not in envfile.secrets:
            changes.append(EsvChange(key, "secret", "delete"))
            writes.append(EsvWrite(key, "secret", "delete"))
    for key, variable in sorted(envfile.variables.items()):
        held = variables.get(key)
        if held is None:
            changes.append(EsvChange(key, "variable", "add", variable.type, after=variable.value))
            writes.append(EsvWrite(key, "variable", "add", variable.value, variable.type))
        elif held.value != variable.value or held.type != variable.type:
            changes.append(
                EsvChange(
                    key,
                    "variable",
                    "modify",
                    variable.type,
                    before=held.value,
                    after=variable.value,
                )
            )
            writes.append(EsvWrite(key, "variable", "modify", variable.value, variable.type))
    # Secrets the tenant holds are compared by the tenant (never read back), a few at once.
    known = {key: secrets[key] for key in sorted(envfile.secrets) if key in secret_states}
    matching = compare_secrets(tenant, known)
    for key in sorted(envfile.secrets):
        value = secrets[key]
        if key not in secret_states:
            changes.append(EsvChange(key, "secret", "add"))
            declared = envfile.secrets[key]
            writes.append(
                EsvWrite(
                    key,
                    "secret",
                    "add",
                    value,
                    encoding=declared.encoding,
                    use_in_placeholders=declared.use_in_placeholders,
                )
            )
        elif matching[key] is not True or key in rotated_outside:
            reason = None
            if key in rotated_outside:
                reason = "changed outside promote: written again from the workspace"
            elif matching[key] is None:
                reason = _UNCOMPARABLE
            changes.append(EsvChange(key, "secret", "modify", reason=reason))
            writes.append(EsvWrite(key, "secret", "modify", value))
    return changes, writes


_UNCOMPARABLE = (
    "cannot be compared: the tenant holds no fingerprint promote can check (written outside "
    "promote, before keyed fingerprints, or with another fingerprint key); written once again"
)


def compare_secrets(
    tenant: Tenant, secrets: Mapping[str, SecretValue], *, workers: int = SECRET_WORKERS
) -> dict[str, bool | None]:
    """``tenant.secret_matches`` for each secret (id -> True/False/None, in ``secrets``' order).

    A comparison may read the tenant (a local tenant's database), so up to ``workers`` run at
    once; the first error raised by one is raised here.
    """
    if len(secrets) <= 1 or workers <= 1:
        return {key: tenant.secret_matches(key, value) for key, value in secrets.items()}
    with ThreadPoolExecutor(max_workers=min(workers, len(secrets))) as pool:
        results = pool.map(lambda item: tenant.secret_matches(*item), secrets.items())
        return dict(zip(secrets, results, strict=True))
