"""A stage's ESV changes: variables compared by value and type, secrets compared by the tenant
(never read back), a few at once (:func:`esv_changes`, :func:`compare_secrets`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

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
    """What ``envfile`` changes in the tenant's ESVs: deletes first (an id that moves from
    variable to secret, or back, is deleted, then added), then variables by value and type,
    then secrets as the tenant compares them (``rotated_outside``: written again)."""
    changes: list[EsvChange] = []
    writes: list[EsvWrite] = []
    _deletes(envfile, variables, secret_states, changes, writes)
    _variables(envfile, variables, changes, writes)
    _secrets(envfile, secrets, secret_states, tenant, rotated_outside, changes, writes)
    return changes, writes


def _deletes(
    envfile: EnvironmentFile,
    variables: Mapping[str, VariableState],
    secret_states: Mapping[str, SecretState],
    changes: list[EsvChange],
    writes: list[EsvWrite],
) -> None:
    for key, state in sorted(variables.items()):
        if state.managed and key not in envfile.variables:
            changes.append(EsvChange(key, "variable", "delete", state.type, before=state.value))
            writes.append(EsvWrite(key, "variable", "delete", None, state.type))
    for key, secret_state in sorted(secret_states.items()):
        if secret_state.managed and key not in envfile.secrets:
            changes.append(EsvChange(key, "secret", "delete"))
            writes.append(EsvWrite(key, "secret", "delete"))


def _variables(
    envfile: EnvironmentFile,
    variables: Mapping[str, VariableState],
    changes: list[EsvChange],
    writes: list[EsvWrite],
) -> None:
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


def _secrets(
    envfile: EnvironmentFile,
    secrets: Mapping[str, SecretValue],
    secret_states: Mapping[str, SecretState],
    tenant: Tenant,
    rotated_outside: Collection[str],
    changes: list[EsvChange],
    writes: list[EsvWrite],
) -> None:
    # Secrets the tenant holds are compared by the tenant (never read back), a few at once.
    known = {key: secrets[key] for key in sorted(envfile.secrets) if key in secret_states}
    matching = compare_secrets(tenant, known)
    for key in sorted(envfile.secrets):
        value = secrets[key]
        if key not in secret_states:
            declared = envfile.secrets[key]
            changes.append(EsvChange(key, "secret", "add"))
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
    from concurrent.futures import ThreadPoolExecutor  # ~4 ms to load: only here

    with ThreadPoolExecutor(max_workers=min(workers, len(secrets))) as pool:
        results = pool.map(lambda item: tenant.secret_matches(*item), secrets.items())
        return dict(zip(secrets, results, strict=True))
