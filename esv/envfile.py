"""Environment files (``environments/<env>.yaml``): where a tenant is and its ESV values.

The only module that imports ``yaml``. Every scalar is kept as the text written: YAML's
implicit typing never applies (``NO``, ``0755``, ``1.10``, ``yes``, ``~`` stay those
characters). Aliases are refused, so an alias bomb is an error, not a hang. All problems of
a file are collected and raised together as one :class:`~esv.errors.EnvironmentFileError`.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from esv.conversions import TYPES, check_type
from esv.errors import EnvironmentFileError, Problem, WorkspaceFileError
from esv.ids import is_valid_id
from esv.jsonfile import SURROGATE_MESSAGE, is_encodable, read_text, unencodable_text
from esv.resolver import EsvValue, json_path
from esv.secrets import SecretValue

__all__ = [
    "ENVIRONMENT_KEYS",
    "SECRET_ENCODINGS",
    "TENANT_KEYS",
    "EnvironmentFile",
    "RestartHook",
    "Secret",
    "SecretSource",
    "Variable",
    "esv_values",
    "load_environment",
    "parse_environment",
    "read_secret",
    "read_secrets",
    "read_yaml",
]

ENVIRONMENT_KEYS = (
    "description",
    "tenant",
    "mutable",
    "protected",
    "verify",
    "restart",
    "variables",
    "secrets",
    "on_drift",
)
"""Keys allowed at the top of an environment file."""

ON_DRIFT = ("overwrite", "block")
"""What a plan does with changes made outside promote: put them back, or block the stage."""

TENANT_KEYS: dict[str, tuple[str, ...]] = {
    "local": ("kind", "path", "restart_seconds", "restart_timeout"),
    "aic": ("kind", "url", "token", "service_account", "concurrency", "restart_timeout"),
    "okta": ("kind", "url", "token", "token_type", "alias", "token_endpoint_auth_method"),
}
"""Keys allowed under ``tenant:`` for each tenant kind."""

_MAX_VALUE_BYTES = 65535
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Variable:
    """An ESV variable: its text exactly as written, and its ``expressionType``."""

    id: str
    value: str
    type: str = "string"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret's value comes from: an env var name, a file path (relative to the
    workspace), or ``""`` for an inline value (kept privately, never in ``repr``)."""

    kind: Literal["env", "file", "value"]
    ref: str
    _inline: SecretValue | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """Human name of the source, never the value."""
        if self.kind == "env":
            return f"environment variable {self.ref}"
        if self.kind == "file":
            return f"file {self.ref}"
        return "inline value"


SECRET_ENCODINGS = ("generic", "pem", "base64hmac", "base64aes")
"""A secret's ``encoding`` on the platform (fixed when the secret is created)."""

SECRET_KEYS = ("encoding", "useInPlaceholders", "base64")
"""Keys a secret's mapping may hold beside its source."""


@dataclass(frozen=True)
class Secret:
    """An ESV secret: its id, where its value comes from, and how the platform keeps it.

    ``encoding`` and ``use_in_placeholders`` are the platform's ``encoding`` and
    ``useInPlaceholders``, set when the secret is created. ``base64`` says the source holds
    the value base64-encoded (fr-config-manager's ``${BASE64:NAME}``); it is decoded on read.
    """

    id: str
    source: SecretSource
    encoding: str = "generic"
    use_in_placeholders: bool = True
    base64: bool = False


@dataclass(frozen=True)
class RestartHook:
    """What to run after this environment's ESVs changed: argv (no shell) or an HTTP POST."""

    command: tuple[str, ...] | None
    url: str | None
    timeout: float = 600.0


@dataclass(frozen=True)
class EnvironmentFile:
    """One parsed and checked environment file.

    ``tenant`` holds ``kind`` and that kind's keys; numbers are converted (``restart_seconds``,
    ``concurrency``, ``restart_timeout``), credentials are :class:`SecretSource` objects
    (``token``; ``service_account`` is ``{"id": str, "jwk": SecretSource}``).
    ``mutable`` is ``None`` when the file does not say (the workspace decides).
    """

    name: str
    path: Path
    relpath: str
    description: str
    tenant: Mapping[str, Any]
    mutable: bool | None
    protected: bool
    verify: Mapping[str, Any]
    restart: RestartHook | None
    variables: Mapping[str, Variable]
    secrets: Mapping[str, Secret]
    warnings: tuple[Problem, ...] = ()
    on_drift: str = "overwrite"
    """``overwrite`` (a run puts drift back) or ``block`` (the stage is blocked until
    ``run --accept-drift ENV``)."""


# -- YAML: text only, no aliases ------------------------------------------------------


class _TextLoader(yaml.BaseLoader):
    """BaseLoader (every scalar is text) that refuses aliases, so alias bombs cannot expand."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not supported in environment files",
                event.start_mark,
            )
        return super().compose_node(parent, index)


_FastLoader: Any = getattr(yaml, "CBaseLoader", None)
"""libyaml's loader when PyYAML has it: the same nodes, an order of magnitude faster."""


def _compose(text: str) -> Any:
    """The YAML node tree of ``text``, aliases refused.

    libyaml composes first when available. It cannot refuse an alias while composing, but an
    alias shows as a node met twice; then, or on any error, the pure loader composes again,
    so what is refused and how it is reported never depend on libyaml being there.
    """
    if _FastLoader is not None:
        try:
            node = yaml.compose(text, Loader=_FastLoader)
        except yaml.YAMLError:
            node = None
        else:
            if node is None or not _reuses_nodes(node):
                return node
    return yaml.compose(text, Loader=_TextLoader)


def _reuses_nodes(root: Any) -> bool:
    """Whether a node appears twice in the tree (what an alias composes to)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


class _BadKey(Exception):
    """A mapping key that is repeated, or is not text; ``message`` says which."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _to_data(node: yaml.Node) -> Any:
    """Plain dicts, lists and strings from a composed node; duplicate keys are refused."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item) for item in node.value]
    assert isinstance(node, yaml.MappingNode)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            raise _BadKey(f"a key is {kind}; keys must be text", line)
        key = str(key_node.value)
        if key in out:
            raise _BadKey(f"key {key!r} appears twice", line)
        out[key] = _to_data(value_node)
    return out


def _parse_yaml(text: str, relpath: str) -> Any:
    try:
        node = _compose(text)
        data = None if node is None else _to_data(node)
    except yaml.MarkedYAMLError as error:
        # Only the problem and its position: the mark's snippet could show a secret's line.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = ", ".join(p for p in (error.context, error.problem) if p) or "invalid YAML"
        raise WorkspaceFileError(relpath, f"invalid YAML: {problem}{where}") from None
    except yaml.YAMLError:
        raise WorkspaceFileError(relpath, "invalid YAML") from None
    except _BadKey as error:
        raise WorkspaceFileError(
            relpath, f"invalid YAML: {error.message} (line {error.line})"
        ) from None
    except RecursionError:
        raise WorkspaceFileError(relpath, "invalid YAML: nested too deeply") from None
    # "\ud800" escapes decode to lone surrogates: no tenant can store them, and printing
    # them fails. Name the key path only: the text may be a secret.
    problems = [
        Problem(
            relpath,
            json_path(parts),
            f"{'the key' if is_key else 'the text'} {SURROGATE_MESSAGE}",
            hint="write the character itself, or \\UXXXXXXXX (8 hex digits) beyond \\uffff",
        )
        for parts, is_key in unencodable_text(data)
    ]
    if problems:
        raise EnvironmentFileError(relpath, problems)
    return data


# -- checking --------------------------------------------------------------------------


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


def parse_environment(text: str, *, name: str, path: Path, relpath: str) -> EnvironmentFile:
    """Check the text of an environment file; :class:`EnvironmentFileError` lists every problem."""
    data = _parse_yaml(text, relpath)
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


def load_environment(path: Path, *, workspace: Path) -> EnvironmentFile:
    """Load and check one environment file; :class:`EnvironmentFileError` lists every problem.

    Unreadable or unparsable files raise :class:`~esv.errors.WorkspaceFileError`.
    """
    relpath = _relpath(path, workspace)
    text = read_text(path, relpath=relpath)
    return parse_environment(text, name=path.stem, path=path, relpath=relpath)


def read_yaml(path: Path, *, relpath: str) -> Any:
    """Any YAML file of the workspace (``promote.yaml``) as text-only data, aliases refused.

    Raises :class:`~esv.errors.WorkspaceFileError` when it cannot be read or parsed.
    """
    return _parse_yaml(read_text(path, relpath=relpath), relpath)


def _relpath(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)


# -- secrets ---------------------------------------------------------------------------


def _read(src: SecretSource, workspace: Path, environ: Mapping[str, str]) -> SecretValue | str:
    """The value, or why it cannot be read (never the value)."""
    if src.kind == "value":
        if src._inline is None:
            return "has no inline value"
        return src._inline
    if src.kind == "env":
        value = environ.get(src.ref)
        if value is None:
            return f"{src.describe()} is not set"
        if value == "":
            return f"{src.describe()} is empty"
        if not is_encodable(value):  # bytes that are not UTF-8 arrive as lone surrogates
            return f"{src.describe()} is not UTF-8 text"
        return SecretValue(value)
    try:
        text = (workspace / src.ref).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"{src.describe()} is not UTF-8 text"
    except OSError as error:
        return f"{src.describe()} cannot be read: {error.strerror}"
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if text == "":
        return f"{src.describe()} is empty"
    return SecretValue(text)


def _decoded(secret: Secret, value: SecretValue) -> SecretValue | str:
    """The value itself when the source holds it base64-encoded, else ``value``; or why it
    cannot be decoded (never the value)."""
    if not secret.base64:
        return value
    try:
        raw = base64.b64decode(value.reveal().strip(), validate=True)
        return SecretValue(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        return f"{secret.source.describe()} is not base64 text (base64: true)"
    except UnicodeDecodeError:
        return f"{secret.source.describe()} does not decode to UTF-8 text (base64: true)"


def read_secret(
    source: SecretSource | Secret, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> SecretValue:
    """The value of one secret source (a file's one trailing newline dropped).

    Raises :class:`EnvironmentFileError` naming the source (never a value) when it is unset,
    empty or unreadable.
    """
    src = source.source if isinstance(source, Secret) else source
    result = _read(src, workspace, environ)
    if isinstance(result, SecretValue) and isinstance(source, Secret):
        result = _decoded(source, result)
    if isinstance(result, SecretValue):
        return result
    where = source.id if isinstance(source, Secret) else src.describe()
    raise EnvironmentFileError(
        where, [Problem(where, "", result, hint="set it, or change the source")]
    )


def read_secrets(
    env: EnvironmentFile, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, SecretValue]:
    """Every secret of ``env``; one :class:`EnvironmentFileError` naming each absent source."""
    out: dict[str, SecretValue] = {}
    problems: list[Problem] = []
    for esv_id, secret in env.secrets.items():
        result = _read(secret.source, workspace, environ)
        if isinstance(result, SecretValue):
            result = _decoded(secret, result)
        if isinstance(result, SecretValue):
            out[esv_id] = result
        else:
            problems.append(
                Problem(
                    env.relpath,
                    f"secrets.{esv_id}",
                    result,
                    esv_id=esv_id,
                    hint="set it, or change the secret's source",
                )
            )
    if problems:
        raise EnvironmentFileError(env.relpath, problems)
    return out


def esv_values(env: EnvironmentFile, secrets: Mapping[str, SecretValue]) -> dict[str, EsvValue]:
    """The values the resolver uses: variables as written, secrets revealed but marked."""
    values = {v.id: EsvValue(v.id, v.value, v.type) for v in env.variables.values()}
    for esv_id, secret in secrets.items():
        values[esv_id] = EsvValue(esv_id, secret.reveal(), "string", secret=True)
    return values
