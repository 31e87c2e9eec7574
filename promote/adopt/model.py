"""What an import or a pull collected, before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from esv.encrypted import encrypted_values
from esv.envfile import Secret, SecretSource, Variable
from esv.errors import Problem
from esv.ids import is_valid_id
from esv.jsonfile import canonical_bytes

__all__ = ["Collected", "env_name", "env_secret"]

_OBJECT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.@+-]*)*")


def env_name(esv_id: str) -> str:
    """fr-config-manager's environment-variable name for an ESV: upper case, ``-`` as ``_``
    (``esv-ldap-port`` -> ``ESV_LDAP_PORT``)."""
    return esv_id.upper().replace("-", "_")


@dataclass
class Collected:
    """Config objects, variables and secrets for one environment, with where each came from,
    what was imported and skipped (and why), warnings and problems. Problems mean nothing
    will be written."""

    env: str
    origin: str
    """What was read, for messages (``fr-config-manager repository /path``)."""
    label: str = ""
    """What was read, without paths, for the environment file's description."""
    config: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    """``config:<id>`` / ``esv:<id>`` -> the file (or tenant) it came from."""
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    to_set: dict[str, str] = field(default_factory=dict)
    """Environment variables the workspace now reads secrets from -> the secret's id."""

    def problem(self, where: str, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, path, message, hint=hint))

    def warn(self, where: str, path: str, message: str, hint: str | None = None) -> None:
        self.warnings.append(Problem(where, path, message, "warning", hint=hint))

    def add_config(self, object_id: str, value: Any, source: str) -> None:
        """One config object; the same id from two sources must be the same object."""
        if not isinstance(object_id, str) or _OBJECT_ID.fullmatch(object_id) is None:
            self.problem(
                source,
                "_id",
                f"{object_id!r} is not a config object id promote can place",
                "ids are paths like external.email or emailTemplate/welcome",
            )
            return
        if not isinstance(value, dict):
            self.problem(source, "", "a config object must be a JSON object")
            return
        # The id is the file's path: the tenant's _id and _rev are not part of the object
        # (the tenants return objects without them).
        value = {k: v for k, v in value.items() if k not in ("_id", "_rev")}
        key = f"config:{object_id}"
        if object_id in self.config:
            if canonical_bytes(self.config[object_id]) != canonical_bytes(value):
                self.problem(
                    source,
                    "",
                    f"config object {object_id} is also in {self.sources[key]}, different",
                    "keep one of them",
                )
            return
        self.config[object_id] = value
        self.sources[key] = source
        self.imported.append(f"{source} -> config/{object_id}.json")
        for problem in encrypted_values({object_id: value}):
            self.warnings.append(replace(problem, location=f"config/{object_id}.json"))

    def add_variable(self, variable: Variable, source: str) -> None:
        if not self._new_esv(variable.id, source):
            return
        self.variables[variable.id] = variable
        self.imported.append(f"{source} -> variable {variable.id} ({variable.type})")

    def add_secret(self, secret: Secret, source: str, *, note: str = "") -> None:
        if not self._new_esv(secret.id, source):
            return
        self.secrets[secret.id] = secret
        if secret.source.kind == "env":
            self.to_set[secret.source.ref] = secret.id
        shown = (
            f"secret {secret.id} from ${secret.source.ref}"
            if secret.source.kind == "env"
            else f"secret {secret.id}"
        )
        self.imported.append(f"{source} -> {shown}{note}")

    def _new_esv(self, esv_id: str, source: str) -> bool:
        if not is_valid_id(esv_id):
            self.problem(
                source,
                "_id",
                f"{esv_id!r} is not a valid ESV id",
                "ids match ^esv-[a-z0-9_-]{1,124}$",
            )
            return False
        key = f"esv:{esv_id}"
        if key in self.sources:
            self.problem(
                source,
                "_id",
                f"ESV {esv_id} is also defined in {self.sources[key]}",
                "keep one of them",
            )
            return False
        self.sources[key] = source
        return True

    def check_env_names(self) -> None:
        """Two ESV ids with one fr-config-manager variable name (``esv-a-b``, ``esv-a_b``)
        cannot both take their values from the environment: one problem naming both."""
        seen: dict[str, str] = {}
        for esv_id in sorted({*self.variables, *self.secrets}):
            name = env_name(esv_id)
            if name in seen:
                self.problem(
                    self.sources[f"esv:{esv_id}"],
                    "_id",
                    f"ESVs {seen[name]} and {esv_id} both map to the environment variable {name}",
                    "rename one of them: fr-config-manager cannot tell them apart",
                )
            else:
                seen[name] = esv_id


def env_secret(
    esv_id: str,
    *,
    encoding: str = "generic",
    in_placeholders: bool = True,
    name: str | None = None,
    base64: bool = False,
) -> Secret:
    """A secret read from an environment variable (its fr-config-manager name by default)."""
    return Secret(
        esv_id, SecretSource("env", name or env_name(esv_id)), encoding, in_placeholders, base64
    )
