"""Throw-away workspaces whose email provider points at a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SMTP_CONFIG: dict[str, Any] = {
    "host": "&{esv.email.provider.host}",
    "port": {"$int": "&{esv.email.provider.port}"},
    "auth": {
        "enable": True,
        "username": "mailer",
        "password": "&{esv.email.provider.password}",
    },
    "from": '"Acme" <&{esv.email.provider.from}>',
    "starttls": {"enable": {"$bool": "&{esv.email.provider.starttls|false}"}},
    "ssl": {"enable": False},
    "connectiontimeout": 5000,
    "timeout": 5000,
    "writetimeout": 5000,
    "threadPoolSize": 20,
}


def env_file(
    *,
    port: int,
    mutable: bool | None = None,
    host: str = "127.0.0.1",
    password_var: str = "SMTP_PASSWORD",
    extra: str = "",
    starttls: bool = False,
) -> str:
    lines = ["tenant:", "  kind: local"]
    if mutable is not None:
        lines.append(f"mutable: {'true' if mutable else 'false'}")
    lines += [
        "variables:",
        f"  esv-email-provider-host: {host}",
        f'  esv-email-provider-port: {{value: "{port}", type: int}}',
        "  esv-email-provider-from: noreply@example.com",
        f'  esv-email-provider-starttls: {{value: "{str(starttls).lower()}", type: bool}}',
        "secrets:",
        f"  esv-email-provider-password: {{env: {password_var}}}",
    ]
    return "\n".join(lines) + "\n" + extra


def make_workspace(
    root: Path,
    envs: dict[str, str],
    *,
    config: dict[str, Any] | None = SMTP_CONFIG,
) -> Path:
    """A workspace with ``environments/<name>.yaml`` for each entry (chain in dict order)."""
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "promote.yaml").write_text("chain: [" + ", ".join(envs) + "]\n")
    for name, text in envs.items():
        (root / "environments" / f"{name}.yaml").write_text(text)
    if config is not None:
        (root / "config" / "external.email.json").write_text(json.dumps(config, indent=2))
    return root
