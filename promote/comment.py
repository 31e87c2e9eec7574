"""One plan comment per pull request (GitHub) or merge request (GitLab), kept up to date.

``promote plan --comment github|gitlab`` posts the Markdown plan once, then edits that same
comment on every later push: the comment is found by a hidden marker naming the workspace
and the target environment, so several chains planned in one pull request keep one comment
each. Everything it needs comes from the CI runner's standard variables:

- GitHub Actions: ``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, the pull request number from
  ``GITHUB_REF`` (``refs/pull/N/merge``) or the event file (``GITHUB_EVENT_PATH``), and
  ``GITHUB_TOKEN`` (``permissions: pull-requests: write``).
- GitLab CI: ``CI_API_V4_URL``, ``CI_PROJECT_ID``, ``CI_MERGE_REQUEST_IID`` and a token with
  the ``api`` scope in ``GITLAB_TOKEN`` (the job token cannot write notes).

The body is the plan as ``plan --format markdown`` writes it (secrets masked there),
truncated with a note past :data:`MAX_BODY` characters (GitHub's limit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from promote.errors import PromoteError, TenantError
from promote.http import HttpClient, RetryPolicy, StaticAuth

__all__ = [
    "MAX_BODY",
    "CommentError",
    "CommentTarget",
    "comment_body",
    "post_comment",
    "target_from",
]

MAX_BODY = 65_536
"""The longest comment body GitHub accepts, in characters; GitLab takes more, but a plan
that long is read from the artifact, not the comment."""

Provider = Literal["github", "gitlab"]
_PER_PAGE = 100


class CommentError(PromoteError):
    """The plan comment could not be posted (exit 1); the plan itself was made and printed."""


@dataclass(frozen=True)
class CommentTarget:
    """Where the comment goes: the API, the credential header, and the comment collection."""

    provider: Provider
    api_url: str
    headers: Mapping[str, str]
    list_path: str
    """Comments of the pull / merge request: GET lists them, POST creates one."""
    token: str

    def item_path(self, comment_id: int) -> str:
        if self.provider == "github":
            return re.sub(
                r"/issues/\d+/comments$", f"/issues/comments/{comment_id}", self.list_path
            )
        return f"{self.list_path}/{comment_id}"


def _need(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise CommentError(f"{name} is not set: {what}")
    return value


def _github_number(environ: Mapping[str, str]) -> str:
    match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", environ.get("GITHUB_REF", ""))
    if match:
        return match.group(1)
    event_path = environ.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
            number = (event.get("pull_request") or {}).get("number") or event.get("number")
            if number:
                return str(int(number))
        except (OSError, ValueError, AttributeError):
            pass
    raise CommentError(
        "no pull request here: GITHUB_REF is not refs/pull/N/merge and the event has no "
        "pull_request (run the plan job on pull_request events)"
    )


def target_from(provider: Provider, environ: Mapping[str, str]) -> CommentTarget:
    """The comment target the runner's standard variables name; :class:`CommentError`
    naming the first missing one."""
    if provider == "github":
        repository = _need(environ, "GITHUB_REPOSITORY", "the owner/name of the repository")
        token = _need(
            environ, "GITHUB_TOKEN", "pass it to the step: env: GITHUB_TOKEN: ${{ github.token }}"
        )
        number = _github_number(environ)
        return CommentTarget(
            "github",
            environ.get("GITHUB_API_URL") or "https://api.github.com",
            {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
            f"/repos/{repository}/issues/{number}/comments",
            f"Bearer {token}",
        )
    api = _need(environ, "CI_API_V4_URL", "run inside GitLab CI")
    project = _need(environ, "CI_PROJECT_ID", "run inside GitLab CI")
    iid = _need(environ, "CI_MERGE_REQUEST_IID", "run the plan job in a merge request pipeline")
    token = _need(environ, "GITLAB_TOKEN", "a project access token with the api scope")
    return CommentTarget(
        "gitlab",
        api,
        {"PRIVATE-TOKEN": token},
        f"/projects/{project}/merge_requests/{iid}/notes",
        "",
    )


def marker(key: str) -> str:
    """The hidden line that identifies this workspace's plan comment for ``key``."""
    return f"<!-- promote-plan: {key} -->"


def comment_body(markdown: str, key: str, *, limit: int = MAX_BODY) -> str:
    """The marker, then the plan; cut at a line with a note when longer than ``limit``."""
    head = marker(key) + "\n"
    body = head + markdown
    if len(body) <= limit:
        return body
    note = (
        f"\n\n> **Truncated**: the plan is {len(markdown):,} characters; this comment shows "
        "the start. The whole plan is in the job's log and its plan.json artifact.\n"
    )
    room = limit - len(head) - len(note)
    cut = markdown.rfind("\n", 0, room)
    return head + markdown[: cut if cut > 0 else room] + note


_REASONS = {
    401: "the token was refused (unset, expired or revoked)",
    403: "the token may not write comments here (GitHub: permissions: pull-requests: write; "
    "GitLab: a token with the api scope)",
    404: "the repository, project or pull/merge request was not found, or the token cannot see it",
}


def _failed(target: CommentTarget, error: TenantError) -> CommentError:
    status = error.status
    if status is None:
        reason = "cannot reach the API"
    elif status >= 500:
        reason = f"the API failed ({status}); the plan is fine: rerun the job"
    else:
        reason = _REASONS.get(status, f"the API answered {status}")
    name = "GitHub" if target.provider == "github" else "GitLab"
    return CommentError(
        f"cannot post the plan comment to {name} ({error.method} {target.api_url}"
        f"{error.path}): {reason}"
    )


def _find(client: HttpClient, target: CommentTarget, tag: str) -> int | None:
    page = 1
    while True:
        params = {"per_page": str(_PER_PAGE), "page": str(page)}
        if target.provider == "gitlab":
            params.update({"sort": "asc", "order_by": "created_at"})
        items: Any = client.get_json(target.list_path, params=params, headers=target.headers)
        if not isinstance(items, list):
            return None
        for item in items:
            if isinstance(item, dict) and tag in str(item.get("body", "")):
                return int(item["id"])
        if len(items) < _PER_PAGE:
            return None
        page += 1


def post_comment(
    provider: Provider,
    markdown: str,
    key: str,
    environ: Mapping[str, str],
    *,
    client_factory: Callable[[CommentTarget], HttpClient] | None = None,
) -> tuple[Literal["created", "updated"], str]:
    """Create or update this workspace's plan comment; returns what was done and the
    comment's API path. :class:`CommentError` names what failed and how to fix it."""
    target = target_from(provider, environ)
    body = comment_body(markdown, key)
    client = (client_factory or _client)(target)
    try:
        existing = _find(client, target, marker(key))
        if existing is None:
            response = client.request(
                "POST", target.list_path, json_body={"body": body}, headers=target.headers
            )
            created = client.json_of(response)
            return "created", target.item_path(int(created["id"]))
        method = "PATCH" if provider == "github" else "PUT"
        client.request(
            method, target.item_path(existing), json_body={"body": body}, headers=target.headers
        )
        return "updated", target.item_path(existing)
    except TenantError as error:
        raise _failed(target, error) from None
    finally:
        client.close()


RETRY = RetryPolicy(attempts=3, base=0.25, cap=2.0, max_retry_after=60.0)
"""A comment is not worth a long wait: two quick retries of a read, then a clear error."""


def _client(target: CommentTarget) -> HttpClient:
    auth = StaticAuth(target.token) if target.token else None
    return HttpClient(target.api_url, auth=auth, timeout=30.0, retry=RETRY)
