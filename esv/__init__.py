"""esv: what will this environment actually run? Pure answers, no side effects.

Imports nothing from ``promote``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esv.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time each name loads on first use
    from esv.envfile import (
        EnvironmentFile,
        RestartHook,
        Secret,
        SecretSource,
        Variable,
        esv_values,
        load_environment,
        parse_environment,
        read_secret,
        read_secrets,
    )
    from esv.errors import (
        EnvironmentFileError,
        EsvError,
        Problem,
        ResolutionError,
        WorkspaceFileError,
    )
    from esv.ids import ESV_ID_PATTERN, id_to_token, is_valid_id, token_to_id
    from esv.jsonfile import load_json, parse_json
    from esv.references import (
        Reference,
        ReferenceIndex,
        build_index,
        check_environment,
        index_references,
    )
    from esv.resolver import (
        JSON,
        MAX_DEPTH,
        EsvValue,
        Resolved,
        json_path,
        resolve,
        resolve_objects,
    )
    from esv.secrets import MASK, SecretValue

__all__ = [
    "ESV_ID_PATTERN",
    "JSON",
    "MASK",
    "MAX_DEPTH",
    "EnvironmentFile",
    "EnvironmentFileError",
    "EsvError",
    "EsvValue",
    "Problem",
    "Reference",
    "ReferenceIndex",
    "ResolutionError",
    "Resolved",
    "RestartHook",
    "Secret",
    "SecretSource",
    "SecretValue",
    "Variable",
    "WorkspaceFileError",
    "build_index",
    "check_environment",
    "esv_values",
    "id_to_token",
    "index_references",
    "is_valid_id",
    "json_path",
    "load_environment",
    "load_json",
    "parse_environment",
    "parse_json",
    "read_secret",
    "read_secrets",
    "resolve",
    "resolve_objects",
    "token_to_id",
]

_EXPORTS = {
    "EnvironmentFile": "esv.envfile",
    "RestartHook": "esv.envfile",
    "Secret": "esv.envfile",
    "SecretSource": "esv.envfile",
    "Variable": "esv.envfile",
    "esv_values": "esv.envfile",
    "load_environment": "esv.envfile",
    "parse_environment": "esv.envfile",
    "read_secret": "esv.envfile",
    "read_secrets": "esv.envfile",
    "EnvironmentFileError": "esv.errors",
    "EsvError": "esv.errors",
    "Problem": "esv.errors",
    "ResolutionError": "esv.errors",
    "WorkspaceFileError": "esv.errors",
    "ESV_ID_PATTERN": "esv.ids",
    "id_to_token": "esv.ids",
    "is_valid_id": "esv.ids",
    "token_to_id": "esv.ids",
    "load_json": "esv.jsonfile",
    "parse_json": "esv.jsonfile",
    "Reference": "esv.references",
    "ReferenceIndex": "esv.references",
    "build_index": "esv.references",
    "check_environment": "esv.references",
    "index_references": "esv.references",
    "JSON": "esv.resolver",
    "MAX_DEPTH": "esv.resolver",
    "EsvValue": "esv.resolver",
    "Resolved": "esv.resolver",
    "json_path": "esv.resolver",
    "resolve": "esv.resolver",
    "resolve_objects": "esv.resolver",
    "MASK": "esv.secrets",
    "SecretValue": "esv.secrets",
}
"""Where each public name lives: importing ``esv`` (or ``esv.errors``) loads nothing else, so
``promote --help`` stays fast; ``from esv import resolve`` loads the resolver then."""


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
