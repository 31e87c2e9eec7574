"""A local, AIC-compatible (and Okta-compatible) HTTP sandbox for rehearsing pipelines."""

from __future__ import annotations

from promote.sandbox.routes import SandboxRequest, SandboxResponse
from promote.sandbox.server import EnvSpec, FailureRule, SandboxServer, start_sandbox

__all__ = [
    "EnvSpec",
    "FailureRule",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "start_sandbox",
]
