"""esv: what will this environment actually run? Pure answers, no side effects.

Imports nothing from ``promote``.
"""

from __future__ import annotations

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
