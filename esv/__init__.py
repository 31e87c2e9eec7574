"""esv: what will this environment actually run? Pure answers, no side effects.

Imports nothing from ``promote``.
"""

from __future__ import annotations

from esv.errors import (
    EnvironmentFileError,
    EsvError,
    Problem,
    ResolutionError,
    WorkspaceFileError,
)
from esv.secrets import MASK, SecretValue

__all__ = [
    "MASK",
    "EnvironmentFileError",
    "EsvError",
    "Problem",
    "ResolutionError",
    "SecretValue",
    "WorkspaceFileError",
]
