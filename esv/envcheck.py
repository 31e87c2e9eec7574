"""Checking an environment file's data (text-only YAML, see :mod:`esv.envfile`): every
key, value and type, with every problem collected into one
:class:`~esv.errors.EnvironmentFileError`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from esv.conversions import TYPES, check_type
from esv.envmodel import (
    ENVIRONMENT_KEYS,
    ON_DRIFT,
    SECRET_ENCODINGS,
    SECRET_KEYS,
    TENANT_KEYS,
    EnvironmentFile,
    RestartHook,
    Secret,
    SecretSource,
    Variable,
)
from esv.errors import EnvironmentFileError, Problem
from esv.ids import is_valid_id
from esv.secrets import SecretValue

__all__ = ["check_environment"]

_MAX_VALUE_BYTES = 65535
"""The platform's limit on an ESV value."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed: " + ", ".join(choices)


class _Checker:
    """Collects every problem of one file."""

    def __init__(self, relpath: str) -> None:
        self.relpath = relpath
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(
        self, path: str, message: str, hint: str | None = None, esv_id: str | None = None
    ) -> None:
        self.problems.append(Problem(self.relpath, path, message, "error", esv_id, hint))

    def warn(
        self, path: str, message: str, hint: str | None = None, esv_id: str | None = None
    ) -> None:
        self.warnings.append(Problem(self.relpath, path, message, "warning", esv_id, hint))

    def keys(self, data: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                self.error(f"{prefix}{key}", "unknown key", _did_you_mean(key, allowed))

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        """``value`` as a mapping; ``{}`` for an empty value; ``None`` (with an error) else."""
        if value == "" or value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.error(path, f"must be a mapping, not {_describe(value)}")
        return None

    def text(self, value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return value
        self.error(path, f"must be text, not {_describe(value)}")
        return None

    def boolean(self, value: Any, path: str) -> bool | None:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        shown = f"{value!r}" if isinstance(value, str) else _describe(value)
        self.error(path, f"{shown} must be true or false")
        return None

    def number(self, value: Any, path: str, *, integer: bool = False, minimum: float = 0) -> Any:
        noun = "an integer" if integer else "a number"
        try:
            if not isinstance(value, str):
                raise ValueError
            number: float = int(value) if integer else float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
        except ValueError:
            self.error(path, f"{_shown(value)} is not {noun}")
            return None
        if number < minimum:
            self.error(path, f"{_shown(value)} must be at least {minimum:g}")
            return None
        return number

    def source(self, value: Any, path: str, *, inline: bool) -> SecretSource | None:
        """``{env: NAME}`` / ``{file: path}`` (and ``{value: ...}`` when ``inline``)."""
        kinds = ("env", "file", "value") if inline else ("env", "file")
        forms = "{env: NAME}, {file: path}" + (" or {value: ...}" if inline else "")
        if not isinstance(value, dict) or len(value) != 1:
            # Never show what was written: it may be the secret itself.
            self.error(path, f"must be one of {forms}", "never write a credential in the file")
            return None
        ((kind, ref),) = value.items()
        if kind not in kinds:
            hint = _did_you_mean(kind, list(kinds))
            if kind == "value":
                hint = "credentials are never written in the file"
            self.error(f"{path}.{kind}", f"must be one of {forms}", hint)
            return None
        if not isinstance(ref, str):
            self.error(f"{path}.{kind}", f"must be text, not {_describe(ref)}")
            return None
        if kind == "value":
            return SecretSource("value", "", SecretValue(ref))
        if kind == "env" and _ENV_NAME.fullmatch(ref) is None:
            # Never show what was written: a pasted secret lands here more often than a typo.
            self.error(
                f"{path}.env",
                "is not an environment variable name (letters, digits and _, not starting "
                "with a digit)",
                "write the variable's name here, never its value",
            )
            return None
        if kind == "file" and not ref:
            self.error(f"{path}.file", "must name a file (relative to the workspace)")
            return None
        return SecretSource("env" if kind == "env" else "file", ref)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "text"


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else _describe(value)


def _check_id(check: _Checker, esv_id: str, path: str) -> bool:
    if is_valid_id(esv_id):
        if len(esv_id) > 124:
            check.warn(path, "is longer than 124 characters", "the AIC docs allow 124 in all")
        return True
    hint = "ids match ^esv-[a-z0-9_-]{1,124}$"
    if is_valid_id(esv_id.lower()):
        hint = f"ids are lower case: {esv_id.lower()}"
    elif not esv_id.startswith("esv-"):
        hint = "ids start with esv-"
    check.error(path, f"{esv_id!r} is not a valid ESV id", hint, esv_id)
    return False


def _variables(check: _Checker, data: Any) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    section = check.mapping(data, "variables")
    for esv_id, spec in (section or {}).items():
        path = f"variables.{esv_id}"
        ok = _check_id(check, esv_id, path)
        expression_type = "string"
        if isinstance(spec, dict):
            check.keys(spec, ("value", "type"), f"{path}.")
            if "value" not in spec:
                check.error(path, "has no value", 'write {value: "...", type: ...}')
                continue
            raw_type = spec.get("type", "string")
            value = check.text(spec["value"], f"{path}.value")
            if not isinstance(raw_type, str) or raw_type not in TYPES:
                check.error(
                    f"{path}.type",
                    f"{_shown(raw_type)} is not an ESV type",
                    _did_you_mean(str(raw_type), list(TYPES)),
                )
                continue
            expression_type = raw_type
        else:
            value = check.text(spec, path)
        if value is None or not ok:
            continue
        if len(value.encode("utf-8")) > _MAX_VALUE_BYTES:
            check.error(path, f"is longer than {_MAX_VALUE_BYTES} bytes (the platform's limit)")
            continue
        why = check_type(expression_type, value)
        if why is not None:
            shown = value if len(value) <= 60 else value[:60] + "..."
            check.error(
                path, f'"{shown}" {why}', f"fix the value, or its type: {expression_type}", esv_id
            )
            continue
        if expression_type == "list" and value.lstrip().startswith("["):
            check.warn(
                path,
                "a list is comma-separated text, not a JSON array",
                "use type: array for JSON array text",
                esv_id,
            )
        out[esv_id] = Variable(esv_id, value, expression_type)
    return out


def _secrets(check: _Checker, data: Any, *, protected: bool) -> dict[str, Secret]:
    out: dict[str, Secret] = {}
    section = check.mapping(data, "secrets")
    for esv_id, spec in (section or {}).items():
        path = f"secrets.{esv_id}"
        ok = _check_id(check, esv_id, path)
        options: dict[str, Any] = {}
        if isinstance(spec, dict):
            options = {key: spec[key] for key in SECRET_KEYS if key in spec}
            spec = {key: value for key, value in spec.items() if key not in SECRET_KEYS}
        source = check.source(spec, path, inline=True)
        encoding = options.get("encoding", "generic")
        if encoding not in SECRET_ENCODINGS:
            check.error(
                f"{path}.encoding",
                f"{_shown(encoding)} is not a secret encoding",
                _did_you_mean(str(encoding), list(SECRET_ENCODINGS)),
                esv_id,
            )
            ok = False
        in_placeholders = check.boolean(
            options.get("useInPlaceholders", "true"), f"{path}.useInPlaceholders"
        )
        encoded = check.boolean(options.get("base64", "false"), f"{path}.base64")
        if source is None or not ok or in_placeholders is None or encoded is None:
            continue
        if source.kind == "value":
            if protected:
                check.error(
                    f"{path}.value",
                    "inline secret values are refused in a protected environment",
                    "use {env: NAME} or {file: path}",
                    esv_id,
                )
                continue
            check.warn(
                f"{path}.value",
                "inline secret value (fine for examples, not for real secrets)",
                "use {env: NAME} or {file: path}",
                esv_id,
            )
        out[esv_id] = Secret(esv_id, source, encoding, in_placeholders, encoded)
    return out


def _tenant(check: _Checker, data: Any) -> dict[str, Any]:
    if data is None:
        return {"kind": "local"}
    section = check.mapping(data, "tenant")
    if section is None:
        return {"kind": "local"}
    kind = section.get("kind", "local")
    if kind not in TENANT_KEYS:
        check.error(
            "tenant.kind",
            f"{_shown(kind)} is not a tenant kind",
            _did_you_mean(str(kind), list(TENANT_KEYS)),
        )
        return {"kind": "local"}
    check.keys(section, TENANT_KEYS[kind], "tenant.")
    out: dict[str, Any] = {"kind": kind}
    for key, value in section.items():
        if key == "kind" or key not in TENANT_KEYS[kind]:
            continue
        path = f"tenant.{key}"
        if key == "token":
            out[key] = check.source(value, path, inline=False)
        elif key == "service_account":
            account = check.mapping(value, path)
            if account is None:
                continue
            check.keys(account, ("id", "jwk"), f"{path}.")
            if "id" not in account or "jwk" not in account:
                check.error(path, "needs id and jwk", "jwk: {env: NAME} or {file: path}")
                continue
            out[key] = {
                "id": check.text(account["id"], f"{path}.id"),
                "jwk": check.source(account["jwk"], f"{path}.jwk", inline=False),
            }
        elif key == "restart_seconds" or key == "restart_timeout":
            out[key] = check.number(value, path)
        elif key == "concurrency":
            out[key] = check.number(value, path, integer=True, minimum=1)
        elif key == "token_type":
            if value not in ("ssws", "bearer"):
                check.error(path, f"{_shown(value)} must be ssws or bearer")
            out[key] = value
        elif key == "url":
            url = check.text(value, path)
            if url is not None and not url.startswith(("http://", "https://")):
                check.error(path, f"{url!r} is not an http(s) URL")
            out[key] = url
        else:
            out[key] = check.text(value, path)
    if kind in ("aic", "okta") and "url" not in section:
        check.error("tenant", f"a {kind} tenant needs url")
    return out


def _restart(check: _Checker, data: Any) -> RestartHook | None:
    section = check.mapping(data, "restart")
    if not section:
        return None
    check.keys(section, ("command", "url", "timeout"), "restart.")
    command = section.get("command")
    url = section.get("url")
    if (command is None) == (url is None):
        check.error("restart", "needs exactly one of command (argv list) or url")
        return None
    argv: tuple[str, ...] | None = None
    if command is not None:
        if isinstance(command, str):
            command = [command]
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(a, str) for a in command)
        ):
            check.error("restart.command", "must be a non-empty list of arguments (no shell)")
            return None
        argv = tuple(command)
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            check.error("restart.url", "must be an http(s) URL")
            return None
    timeout = 600.0
    if "timeout" in section:
        number = check.number(section["timeout"], "restart.timeout", minimum=0)
        if number is None:
            return None
        timeout = float(number)
    return RestartHook(argv, url, timeout)


def _verify(check: _Checker, data: Any) -> dict[str, Any]:
    section = check.mapping(data, "verify")
    if not section:
        return {}
    check.keys(section, ("email_test",), "verify.")
    out: dict[str, Any] = {}
    if "email_test" in section:
        gate = check.mapping(section["email_test"], "verify.email_test")
        if gate is not None:
            check.keys(gate, ("to",), "verify.email_test.")
            if "to" not in gate:
                check.error("verify.email_test", "needs to: ADDRESS")
            elif check.text(gate["to"], "verify.email_test.to") is not None:
                out["email_test"] = {"to": gate["to"]}
    return out


def check_environment(data: Any, *, name: str, path: Path, relpath: str) -> EnvironmentFile:
    """Check an environment file's data (as :mod:`esv.envfile` reads it: text-only YAML);
    :class:`EnvironmentFileError` lists every problem."""
    check = _Checker(relpath)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EnvironmentFileError(
            relpath,
            [Problem(relpath, "", f"the top level must be a mapping, not {_describe(data)}")],
        )
    check.keys(data, ENVIRONMENT_KEYS, "")
    description = check.text(data.get("description", ""), "description") or ""
    mutable = check.boolean(data["mutable"], "mutable") if "mutable" in data else None
    protected = (
        bool(check.boolean(data["protected"], "protected")) if "protected" in data else False
    )
    tenant = _tenant(check, data.get("tenant"))
    restart = _restart(check, data.get("restart"))
    verify = _verify(check, data.get("verify"))
    variables = _variables(check, data.get("variables"))
    secrets = _secrets(check, data.get("secrets"), protected=protected)
    on_drift = data.get("on_drift", "overwrite")
    if on_drift not in ON_DRIFT:
        shown = repr(on_drift) if isinstance(on_drift, str) else _describe(on_drift)
        check.error("on_drift", f"{shown} is not overwrite or block")
        on_drift = "overwrite"
    for esv_id in sorted(set(variables) & set(secrets)):
        check.error(
            f"secrets.{esv_id}",
            "is also a variable; an ESV is a variable or a secret",
            "remove one of them",
            esv_id,
        )
    if check.problems:
        raise EnvironmentFileError(relpath, check.problems)
    return EnvironmentFile(
        name=name,
        path=path,
        relpath=relpath,
        description=description,
        tenant=tenant,
        mutable=mutable,
        protected=protected,
        verify=verify,
        restart=restart,
        variables=variables,
        secrets=secrets,
        warnings=tuple(check.warnings),
        on_drift=on_drift,
    )
