"""The CI templates under examples/ci/: valid against the official schemas (check-jsonschema's
bundled vendor schemas, offline), and their promote steps, run as the CI would run them,
work on the example workspace (with a local fake of the comment APIs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.ci_api import GITHUB_TOKEN, GITLAB_TOKEN, FakeCiApi
from tests.helpers.example import REPO

CI = REPO / "examples" / "ci"
WORKFLOW = CI / "github" / "promote.yml"
ACTION = CI / "github" / "actions" / "setup-promote" / "action.yml"
GITLAB = CI / "gitlab" / ".gitlab-ci.yml"
SECRETS = {
    "DEV_SMTP_PASSWORD": "ci-dev-pw-1001",
    "STAGING_SMTP_PASSWORD": "ci-staging-pw-2002",
    "UAT_SMTP_PASSWORD": "ci-uat-pw-3003",
    "PROD_SMTP_PASSWORD": "ci-prod-pw-4004",
    "AIC_TOKEN": "ci-aic-token-5005",
}
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-workflows", WORKFLOW),
        ("vendor.github-actions", ACTION),
        ("vendor.gitlab-ci", GITLAB),
    ],
)
def test_templates_are_valid_against_the_official_schemas(schema: str, path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _github_value(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression.startswith("secrets."):
            return SECRETS[expression.removeprefix("secrets.")]
        return {"github.token": GITHUB_TOKEN, "matrix.chain": "."}[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", replace, text)


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-ec", command],
        cwd=cwd,
        env={"PATH": path, "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
    )


def test_the_github_workflow_steps_plan_and_run_the_example(
    example: Path, ci_api: FakeCiApi
) -> None:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    runner = {
        "GITHUB_API_URL": ci_api.url,
        "GITHUB_REPOSITORY": "acme/identity",
        "GITHUB_REF": "refs/pull/12/merge",
    }
    ran = []
    for name in ("plan", "dev", "staging", "uat", "prod", "plan"):
        job = workflow["jobs"][name]
        assert job["concurrency"]["group"]
        if name in ("uat", "prod"):
            assert job["environment"] == name  # required reviewers guard it
        for step in job["steps"]:
            if "promote " not in step.get("run", ""):
                continue
            env = {k: _github_value(str(v), runner) for k, v in step.get("env", {}).items()}
            cwd = example / _github_value(step.get("working-directory", "."), runner)
            done = _run(_github_value(step["run"], runner), cwd, {**runner, **env})
            assert done.returncode == 0, (name, done.stdout, done.stderr)
            ran.append(step["run"])
    assert len(ran) == 6
    assert (example / "plan.json").is_file()
    notes = [c["body"] for items in ci_api.comments.values() for c in items]
    assert len(notes) == 1 and notes[0].startswith("<!-- promote-plan: ")
    for value in SECRETS.values():
        assert value not in notes[0]


def test_the_gitlab_jobs_plan_and_run_the_example(example: Path, ci_api: FakeCiApi) -> None:
    pipeline: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    runner = {
        "CI_API_V4_URL": f"{ci_api.url}/api/v4",
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "4",
        "GITLAB_TOKEN": GITLAB_TOKEN,
        **SECRETS,
    }
    for name in ("plan", "run-dev", "run-staging", "run-uat", "run-prod"):
        job = pipeline[name]
        script = job.get("script") or pipeline[job["extends"]]["script"]
        (matrix,) = (job.get("parallel") or pipeline[job.get("extends", name)]["parallel"])[
            "matrix"
        ]
        variables = {k: str(v) for k, v in job.get("variables", {}).items()}
        variables["CHAIN"] = matrix["CHAIN"][0]
        if name.startswith("run-"):
            assert job["resource_group"] == f"promote-{variables['STAGE']}"
        if name in ("run-uat", "run-prod"):
            assert job["rules"][0]["when"] == "manual"
        done = _run("\n".join(script), example, {**runner, **variables})
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    assert (example / "plan.json").is_file()
    notes = [c["body"] for items in ci_api.comments.values() for c in items]
    assert len(notes) == 1 and "promote-plan" in notes[0]


def test_a_blocked_plan_fails_the_check_and_still_comments(
    example: Path, ci_api: FakeCiApi
) -> None:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    (step,) = [s for s in workflow["jobs"]["plan"]["steps"] if "promote " in s.get("run", "")]
    runner = {
        "GITHUB_API_URL": ci_api.url,
        "GITHUB_REPOSITORY": "acme/identity",
        "GITHUB_REF": "refs/pull/12/merge",
        "GITHUB_TOKEN": GITHUB_TOKEN,
    }
    done = _run(_github_value(step["run"], runner), example, runner)  # no UAT/PROD secrets
    assert done.returncode == 3, done.stderr
    (note,) = [c["body"] for items in ci_api.comments.values() for c in items]
    assert "UAT_SMTP_PASSWORD" in note and "blocked" in note.lower()
