"""The shipped example workspace: copies of it, and changes to a copy several tests make."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository, which is itself the example workspace."""


def copy_example(root: Path) -> Path:
    """Copy the example's ``environments/`` and ``config/`` into ``root`` (created); return it."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "environments", root / "environments")
    shutil.copytree(REPO / "config", root / "config")
    return root


def edit(path: Path, *replacements: tuple[str, str]) -> None:
    """Replace text in ``path``: each ``(old, new)`` in turn."""
    text = path.read_text()
    for old, new in replacements:
        text = text.replace(old, new)
    path.write_text(text)


def make_okta(root: Path, env: str) -> None:
    """Make ``env``'s tenant an Okta org (token from ``OKTA_TOKEN``)."""
    edit(
        root / "environments" / f"{env}.yaml",
        (
            "tenant:\n  kind: local\n",
            "tenant:\n  kind: okta\n  url: https://acme.okta.com\n  token: {env: OKTA_TOKEN}\n",
        ),
    )


def uat_port_as_secret(root: Path) -> None:
    """Make uat's SMTP port a secret read from ``UAT_SMTP_PORT`` instead of a variable."""
    edit(
        root / "environments" / "uat.yaml",
        ('  esv-email-provider-port: {value: "465", type: int}\n', ""),
        ("secrets:\n", "secrets:\n  esv-email-provider-port: {env: UAT_SMTP_PORT}\n"),
    )


def okta_uat_without_template_esvs(root: Path) -> None:
    """Make ``uat`` an Okta org (which holds only external.email) and drop the ESVs only the
    email template references."""
    make_okta(root, "uat")
    path = root / "environments" / "uat.yaml"
    path.write_text(
        path.read_text()
        .replace("  esv-brand-name: Acme (UAT)\n", "")
        .replace("  esv-portal-url: https://id.uat.example.com/login\n", "")
    )
