"""Errors raised by promote.

Every error carries ``exit_code`` (SPEC 4.1) and keeps its context in attributes::

    PromoteError                 exit_code 1: failed while acting
    ├── BlockedError             3: blocked by checks (problems listed), nothing was changed
    │   └── StalePlanError       3: ``run --plan``: an environment changed since the plan was made
    ├── LockedError              4: an environment is locked by another promotion
    ├── TenantError              1: a tenant refused or failed a request (method, path, status)
    │   └── ImmutableError       1: a direct config write to an immutable environment
    ├── ApplyError               1: a stage failed while applying; ``states`` says what each
    │                               environment was left in
    ├── InterruptedRun           130: interrupted (Ctrl-C)
    ├── HookError                1: a restart hook failed or timed out (promote.engine.hooks)
    ├── StateFileError           1: a file under ``.promote/`` cannot be written (promote.files)
    ├── EmailError               1: a test email could not be sent (promote.email.errors)
    └── VerifyError              1: a ``verify`` gate failed (promote.email.errors)

esv errors (``esv.EsvError``, exit code 3) pass through unchanged; ``promote.workspace``
raises ``WorkspaceError``, an ``EsvError``, for workspace layout problems. No message contains
a secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from esv.errors import ReportedError

__all__ = [
    "ApplyError",
    "BlockedError",
    "ImmutableError",
    "InterruptedRun",
    "LockedError",
    "PromoteError",
    "StalePlanError",
    "TenantError",
    "one_line",
]


def one_line(error: Exception) -> str:
    """``error``'s text on one line (for a note or a problem that quotes it)."""
    return " ".join(line.strip() for line in str(error).splitlines())


class PromoteError(ReportedError):
    """Base of every promote error; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class BlockedError(PromoteError):
    """Checks failed; nothing was changed."""

    exit_code = 3


class StalePlanError(BlockedError):
    """A saved plan no longer matches the environments it was made for."""


class LockedError(PromoteError):
    """An environment is locked by another promotion; nothing was changed."""

    exit_code = 4

    def __init__(self, env: str, holder: str | None = None, detail: str = "") -> None:
        who = f" by {holder}" if holder else ""
        text = f"environment {env!r} is locked{who}"
        if detail:
            text += f": {detail}"
        super().__init__(text + "; wait for that promotion to finish, then run again")
        self.env = env
        self.holder = holder


class TenantError(PromoteError):
    """A tenant request failed. ``status`` is the HTTP status when there is one; ``url`` is
    the tenant's base URL (``scheme://host:port/prefix``) when the request had one."""

    def __init__(
        self,
        message: str,
        *,
        env: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        body: str | None = None,
        url: str | None = None,
    ) -> None:
        where = " ".join(filter(None, [env, f"({url})" if env and url else url]))
        parts = [f"{where}: " if where else ""]
        if method and path:
            parts.append(f"{method} {path}")
            if status is not None:
                parts.append(f" -> {status}")
            parts.append(": ")
        parts.append(message)
        if body:
            parts.append(f" [{body}]")
        super().__init__("".join(parts))
        self.env = env
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.url = url


class ImmutableError(TenantError):
    """Config of an immutable environment changes only by promotion from the stage below."""


class ApplyError(PromoteError):
    """A stage failed while applying. ``states`` maps each environment of the walk to
    what it was left in (``"applied"``, ``"untouched"``, ``"partially applied: ..."``)."""

    def __init__(self, message: str, states: Mapping[str, str]) -> None:
        lines = [message] + [f"  {env}: {state}" for env, state in states.items()]
        super().__init__("\n".join(lines))
        self.states = dict(states)


class InterruptedRun(PromoteError):
    """The run was interrupted; the journal lets the next run finish or undo it."""

    exit_code = 130
