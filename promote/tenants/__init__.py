"""Tenants: where environments live. The engine asks :func:`open_tenant` for one."""

from __future__ import annotations

from promote.tenants.base import (
    JSON,
    Capabilities,
    EsvWrite,
    LockState,
    PromotionReport,
    SecretState,
    Tenant,
    VariableState,
)
from promote.tenants.factory import open_tenant

__all__ = [
    "JSON",
    "Capabilities",
    "EsvWrite",
    "LockState",
    "PromotionReport",
    "SecretState",
    "Tenant",
    "VariableState",
    "open_tenant",
]
