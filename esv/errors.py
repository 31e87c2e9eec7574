"""Errors raised by the esv library.

Every error carries ``exit_code`` (the CLI exits with it) and keeps its context in
attributes, not only in its text::

    EsvError                      exit_code 3: invalid input, nothing was changed
    ├── WorkspaceFileError        a file cannot be read or parsed (JSON, YAML), or is too deep
    ├── EnvironmentFileError      problems of one environment file, all of them at once
    └── ResolutionError           unresolved references and failed conversions, all at once

Messages name what went wrong, where (file, key path, object, JSON path) and how to fix it.
They never contain a secret value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MISSING_ESV",
    "EnvironmentFileError",
    "EsvError",
    "Problem",
    "ReportedError",
    "ResolutionError",
    "Severity",
    "WorkspaceFileError",
]

Severity = Literal["error", "warning"]

MISSING_ESV = "missing-esv"
"""``Problem.code`` of a placeholder whose ESV is not defined and has no default."""


@dataclass(frozen=True)
class Problem:
    """One finding about the input: where it is, what is wrong, and how to fix it.

    ``location`` is a file (``environments/uat.yaml``) or a config object
    (``external.email``); ``path`` is a key path or JSON path inside it (``variables.esv-x``,
    ``auth.password``), empty when the finding is about the whole file or object.
    """

    location: str
    path: str
    message: str
    severity: Severity = "error"
    esv_id: str | None = None
    hint: str | None = None
    code: str | None = None
    """A stable machine-readable kind (``"missing-esv"``) for code that acts on findings;
    messages are for people and may change."""

    def __str__(self) -> str:
        where = f"{self.location}: {self.path}" if self.path else self.location
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ReportedError(Exception):
    """An error that lists its problems under a one-line head; shared by esv and promote."""

    exit_code = 1

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)

    def __str__(self) -> str:
        head = str(self.args[0]) if self.args else type(self).__name__
        return "\n".join([head] + [f"  - {p}" for p in self.problems])


class EsvError(ReportedError):
    """Base of every esv error; ``exit_code`` is what the CLI exits with."""

    exit_code = 3


class WorkspaceFileError(EsvError):
    """A workspace file cannot be read or parsed."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}", [Problem(path, "", message)])
        self.path = path


class EnvironmentFileError(EsvError):
    """An environment file has problems; ``problems`` lists every one of them."""

    def __init__(self, path: str, problems: Iterable[Problem]) -> None:
        problems = tuple(problems)
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{path}: {count} {noun}", problems)
        self.path = path


class ResolutionError(EsvError):
    """Values that cannot be resolved (undefined placeholders, failed conversions);
    ``problems`` lists every one of them."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        problems = tuple(problems)
        count = len(problems)
        noun = "value" if count == 1 else "values"
        super().__init__(f"{count} {noun} cannot be resolved", problems)
