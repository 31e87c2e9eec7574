"""`promote plan --comment github|gitlab` against a local fake of both comment APIs: the
first plan creates the comment, the next edits it in place; long plans are truncated with a
note; no secret reaches the API; 401, 404 and 5xx are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from promote.comment import MAX_BODY, comment_body
from tests.helpers.ci_api import GITHUB_TOKEN, GITLAB_TOKEN, FakeCiApi
from tests.helpers.leaks import assert_no_leak

SECRET = "staging-example-password-not-secret"


def github_env(ci_api: FakeCiApi, number: int = 7) -> dict[str, str]:
    return {
        "GITHUB_API_URL": ci_api.url,
        "GITHUB_REPOSITORY": "acme/identity",
        "GITHUB_REF": f"refs/pull/{number}/merge",
        "GITHUB_TOKEN": GITHUB_TOKEN,
    }


def gitlab_env(ci_api: FakeCiApi) -> dict[str, str]:
    return {
        "CI_API_V4_URL": f"{ci_api.url}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "3",
        "GITLAB_TOKEN": GITLAB_TOKEN,
    }


def plan(example: Path, provider: str, env: dict[str, str], *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--workspace", str(example), "plan", "--to", "staging", "--comment", provider, *extra],
        env=env,
    )


def bodies(ci_api: FakeCiApi) -> list[str]:
    return [c["body"] for items in ci_api.comments.values() for c in items]


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_the_first_plan_creates_the_comment_and_the_next_edits_it(
    example: Path, ci_api: FakeCiApi, provider: str
) -> None:
    env = github_env(ci_api) if provider == "github" else gitlab_env(ci_api)
    collection = (
        "/repos/acme/identity/issues/7/comments"
        if provider == "github"
        else "/api/v4/projects/42/merge_requests/3/notes"
    )
    ci_api.add(collection, "an unrelated review comment")
    first = plan(example, provider, env)
    assert first.exit_code == 0, first.output
    assert "plan comment created" in first.stderr
    (ours,) = [b for b in bodies(ci_api) if "promote-plan" in b]
    assert ours.startswith("<!-- promote-plan: ")
    assert "staging" in ours and "dev" in ours
    # A change in the workspace, pushed: the same comment is edited, no second one.
    env_file = example / "environments" / "dev.yaml"
    env_file.write_text(env_file.read_text().replace("smtp.dev.", "smtp2.dev."))
    second = plan(example, provider, env)
    assert second.exit_code == 0, second.output
    assert "plan comment updated" in second.stderr
    ours_now = [b for b in bodies(ci_api) if "promote-plan" in b]
    assert len(ours_now) == 1 and "smtp2.dev.example.com" in ours_now[0]
    assert "an unrelated review comment" in bodies(ci_api)
    methods = [r.method for r in ci_api.requests]
    assert methods == ["GET", "POST", "GET", "PATCH" if provider == "github" else "PUT"]
    for index, text in enumerate([*bodies(ci_api), first.output, second.output]):
        assert_no_leak(text, [SECRET, GITHUB_TOKEN, GITLAB_TOKEN], f"text {index}")


def test_the_comment_is_found_past_the_first_page(example: Path, ci_api: FakeCiApi) -> None:
    collection = "/repos/acme/identity/issues/7/comments"
    for index in range(150):
        ci_api.add(collection, f"review comment {index}")
    assert plan(example, "github", github_env(ci_api)).exit_code == 0
    assert plan(example, "github", github_env(ci_api)).exit_code == 0
    assert len([b for b in bodies(ci_api) if "promote-plan" in b]) == 1


def test_two_chains_keep_one_comment_each(example: Path, tmp_path: Path, ci_api: FakeCiApi) -> None:
    other = tmp_path / "other-chain"
    shutil.copytree(example, other)
    for root in (example, other, example, other):
        assert plan(root, "github", github_env(ci_api)).exit_code == 0
    assert len([b for b in bodies(ci_api) if "promote-plan" in b]) == 2


def test_a_long_plan_is_truncated_with_a_note() -> None:
    markdown = "".join(f"| line {i} | {'x' * 80} |\n" for i in range(2000))
    body = comment_body(markdown, "ws:prod")
    assert len(body) <= MAX_BODY
    assert body.startswith("<!-- promote-plan: ws:prod -->\n")
    assert "**Truncated**" in body and f"{len(markdown):,} characters" in body
    short = comment_body("| a |\n", "ws:prod")
    assert short == "<!-- promote-plan: ws:prod -->\n| a |\n"


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (401, "the token was refused"),
        (404, "was not found, or the token cannot see it"),
        (502, "the API failed (502); the plan is fine: rerun the job"),
    ],
)
def test_api_failures_are_clear_errors(
    example: Path, ci_api: FakeCiApi, status: int, text: str
) -> None:
    ci_api.fail_with = status
    result = plan(example, "github", github_env(ci_api))
    assert result.exit_code == 1
    assert "cannot post the plan comment to GitHub" in result.stderr
    assert text in result.stderr
    assert "## " in result.stdout or "staging" in result.stdout  # the plan itself was printed
    assert GITHUB_TOKEN not in result.output


def test_a_wrong_token_is_a_401_error(example: Path, ci_api: FakeCiApi) -> None:
    result = plan(example, "gitlab", {**gitlab_env(ci_api), "GITLAB_TOKEN": "glpat-wrong"})
    assert result.exit_code == 1
    assert "cannot post the plan comment to GitLab" in result.stderr
    assert "the token was refused" in result.stderr
    assert "glpat-wrong" not in result.output


def test_missing_runner_variables_are_named(example: Path, ci_api: FakeCiApi) -> None:
    env = github_env(ci_api)
    del env["GITHUB_TOKEN"]
    result = plan(example, "github", env)
    assert result.exit_code == 1
    assert "GITHUB_TOKEN is not set" in result.stderr
    env = {**github_env(ci_api), "GITHUB_REF": "refs/heads/main"}
    result = plan(example, "github", env)
    assert "no pull request here" in result.stderr
    event = example / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 9}}))
    result = plan(example, "github", {**env, "GITHUB_EVENT_PATH": str(event)})
    assert result.exit_code == 0, result.output
    assert "/issues/9/comments" in ci_api.requests[-1].path
