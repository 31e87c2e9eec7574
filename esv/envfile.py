"""Environment files (``environments/<env>.yaml``): where a tenant is and its ESV values.

This module reads them; :mod:`esv.envmodel` holds what they say, :mod:`esv.envcheck` checks
it and :mod:`esv.secretread` reads secret values from their sources (all re-exported here).
The only module that imports ``yaml``. Every scalar is kept as the text written: YAML's
implicit typing never applies (``NO``, ``0755``, ``1.10``, ``yes``, ``~`` stay those
characters). Aliases are refused, so an alias bomb is an error, not a hang. All problems of
a file are collected and raised together as one :class:`~esv.errors.EnvironmentFileError`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from esv.envcheck import check_environment
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
from esv.errors import EnvironmentFileError, Problem, WorkspaceFileError
from esv.jsonfile import SURROGATE_MESSAGE, may_hold_surrogates, read_text, unencodable_text
from esv.resolver import json_path
from esv.secretread import esv_values, read_secret, read_secrets

if TYPE_CHECKING:
    import yaml

__all__ = [
    "ENVIRONMENT_KEYS",
    "ON_DRIFT",
    "SECRET_ENCODINGS",
    "SECRET_KEYS",
    "TENANT_KEYS",
    "EnvironmentFile",
    "RestartHook",
    "Secret",
    "SecretSource",
    "Variable",
    "YamlMemo",
    "esv_values",
    "load_environment",
    "parse_environment",
    "parse_yaml",
    "read_secret",
    "read_secrets",
    "read_yaml",
]

# -- YAML: text only, no aliases ------------------------------------------------------


@functools.cache
def _loaders() -> tuple[Any, Any]:
    """The pure loader, and libyaml's (``None`` without it); ``yaml`` is imported here, the
    first time a text is parsed (~13 ms: a command whose files were parsed before, by a
    ``memo``, never loads it)."""
    import yaml

    class TextLoader(yaml.BaseLoader):
        """BaseLoader (every scalar is text) that refuses aliases, so alias bombs cannot
        expand."""

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

    if not hasattr(yaml, "CBaseLoader"):
        return TextLoader, None

    class CTextLoader(yaml.CBaseLoader):
        """libyaml's BaseLoader (the same nodes, an order of magnitude faster), tagging each
        node as BaseResolver does (it has no implicit or path resolvers: every scalar is
        text) without its lookups per node."""

        _TAGS: dict[type[Any], str] = {
            yaml.ScalarNode: yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG,
            yaml.SequenceNode: yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
            yaml.MappingNode: yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        }

        def resolve(self, kind: type[Any], value: Any, implicit: Any) -> str:
            return self._TAGS[kind]

    return TextLoader, CTextLoader


def _compose(text: str) -> Any:
    """The YAML node tree of ``text``, aliases refused.

    libyaml composes first when available. It cannot refuse an alias while composing, but an
    alias shows as a node met twice; then, or on any error, the pure loader composes again,
    so what is refused and how it is reported never depend on libyaml being there.
    """
    import yaml

    text_loader, fast_loader = _loaders()
    if fast_loader is not None:
        try:
            node = yaml.compose(text, Loader=fast_loader)
        except yaml.YAMLError:
            node = None
        else:
            # An alias is written *name: text without a "*" holds none.
            if node is None or "*" not in text or not _reuses_nodes(node):
                return node
    return yaml.compose(text, Loader=text_loader)


def _reuses_nodes(root: Any) -> bool:
    """Whether a node appears twice in the tree (what an alias composes to)."""
    import yaml

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
    import yaml

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
    import yaml

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
    if not may_hold_surrogates(text):
        return data
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


class YamlMemo(Protocol):
    """What an earlier command parsed (a cache the caller keeps): ``get`` the data of a text
    parsed before (``None``: not known), ``put`` the data of a text that may be kept. Only
    mappings are offered, and never a file's that holds an inline secret value."""

    def get(self, text: str) -> dict[str, Any] | None: ...

    def put(self, text: str, data: dict[str, Any]) -> None: ...


# -- environment files -----------------------------------------------------------------


def parse_environment(
    text: str, *, name: str, path: Path, relpath: str, memo: YamlMemo | None = None
) -> EnvironmentFile:
    """Check the text of an environment file; :class:`EnvironmentFileError` lists every
    problem. ``memo``: where a text parsed before is found, and the data of a text that
    checks and holds no inline secret value is put."""
    data = memo.get(text) if memo is not None else None
    if data is not None:
        return check_environment(data, name=name, path=path, relpath=relpath)
    parsed = _parse_yaml(text, relpath)
    found = check_environment(parsed, name=name, path=path, relpath=relpath)
    if memo is not None and isinstance(parsed, dict) and not _has_inline_secret(found):
        memo.put(text, parsed)
    return found


def _has_inline_secret(env: EnvironmentFile) -> bool:
    """Whether a secret's value is written in the file itself (a tenant credential never
    is: the check refuses it)."""
    return any(secret.source.kind == "value" for secret in env.secrets.values())


def load_environment(
    path: Path, *, workspace: Path, memo: YamlMemo | None = None
) -> EnvironmentFile:
    """Load and check one environment file; :class:`EnvironmentFileError` lists every problem.

    Unreadable or unparsable files raise :class:`~esv.errors.WorkspaceFileError`. ``memo``:
    see :func:`parse_environment`.
    """
    relpath = _relpath(path, workspace)
    text = read_text(path, relpath=relpath)
    return parse_environment(text, name=path.stem, path=path, relpath=relpath, memo=memo)


def read_yaml(path: Path, *, relpath: str) -> Any:
    """Any YAML file of the workspace (``promote.yaml``) as text-only data, aliases refused.

    Raises :class:`~esv.errors.WorkspaceFileError` when it cannot be read or parsed.
    """
    return parse_yaml(read_text(path, relpath=relpath), relpath=relpath)


def parse_yaml(text: str, *, relpath: str) -> Any:
    """The text of a YAML file of the workspace as :func:`read_yaml` reads it (for a caller
    that keeps the text's data itself, once it has checked it)."""
    return _parse_yaml(text, relpath)


def _relpath(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)
