"""Changes to a copy of the shipped example workspace that several tests make."""

from __future__ import annotations

from pathlib import Path


def okta_uat_without_template_esvs(root: Path) -> None:
    """Make ``uat`` an Okta org (which holds only external.email) and drop the ESVs only the
    email template references."""
    path = root / "environments" / "uat.yaml"
    path.write_text(
        path.read_text()
        .replace(
            "tenant:\n  kind: local\n",
            "tenant:\n  kind: okta\n  url: https://acme.okta.com\n  token: {env: OKTA_TOKEN}\n",
        )
        .replace("  esv-brand-name: Acme (UAT)\n", "")
        .replace("  esv-portal-url: https://id.uat.example.com/login\n", "")
    )
