"""What a plan is made of: a :class:`Plan` of :class:`Stage` records, each with its config
changes, ESV changes (:class:`EsvChange`), effective values and drift. Frozen records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from esv import Problem
from esv.resolver import Resolved
from promote.engine.diff import (
    Action,
    ObjectDiff,
)
from promote.engine.drift import Drift
from promote.tenants.base import JSON, EsvWrite

__all__ = ["EsvChange", "EsvKind", "Plan", "Stage", "Status"]


Status = Literal["in-sync", "changes", "blocked"]

EsvKind = Literal["variable", "secret"]


@dataclass(frozen=True)
class EsvChange:
    """One ESV to add, modify or delete. ``before``/``after`` are shown for variables only;
    a secret's value is never held here."""

    id: str
    kind: EsvKind
    action: Action
    type: str = "string"
    before: str | None = None
    after: str | None = None
    reason: str | None = None
    """Why a secret is rewritten when it is not known to differ (its fingerprint cannot be
    compared; it changed outside promote)."""


@dataclass(frozen=True)
class Stage:
    """One environment of the walk: what it receives and what applying would change."""

    env: str
    source: str
    """``"config"`` for the first stage, else the environment below."""
    status: Status
    mutable: bool
    protected: bool
    via: Literal["direct", "promotion"]
    """How config arrives: written directly (mutable) or by promotion from ``source``."""
    missing_esvs: tuple[str, ...]
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    config_changes: tuple[ObjectDiff, ...]
    effective_changes: tuple[ObjectDiff, ...]
    esv_changes: tuple[EsvChange, ...]
    restart: bool
    unloaded: tuple[str, ...]
    """ESVs the tenant holds but has not loaded yet (a restart loads them)."""
    tenant_fingerprint: str
    """Hash of the tenant's managed config and ESV states (ids, values, versions, loaded)."""
    inputs_fingerprint: str
    """Hash of what the workspace asks this stage to hold (secrets by keyed fingerprint)."""
    drift: tuple[Drift, ...] = ()
    """What changed in the tenant outside promote since it last applied there (SPEC 4.5)."""
    config_writes: Mapping[str, JSON] = field(default_factory=dict, repr=False, compare=False)
    """Object id -> value to put (resolved for tenants without placeholders)."""
    config_deletes: tuple[str, ...] = ()
    esv_writes: tuple[EsvWrite, ...] = field(default=(), repr=False, compare=False)
    resolved: Mapping[str, Resolved] = field(default_factory=dict, repr=False, compare=False)
    """The config as this environment will run it (for verify gates)."""
    config_after: Mapping[str, JSON] = field(default_factory=dict, repr=False, compare=False)
    """The config the tenant holds once the stage is applied, placeholders kept (the history
    hashes it); empty for tenants without placeholders (theirs is resolved)."""

    @property
    def changed(self) -> bool:
        """Whether applying this stage would change anything."""
        return self.status == "changes"


@dataclass(frozen=True)
class Plan:
    """Every stage of the walk to ``to``, in chain order, in-sync ones included."""

    to: str
    chain: tuple[str, ...]
    stages: tuple[Stage, ...]

    @property
    def blocked(self) -> bool:
        """Whether any stage is blocked by checks."""
        return any(stage.status == "blocked" for stage in self.stages)

    @property
    def pending(self) -> bool:
        """Whether any stage has changes to apply."""
        return any(stage.status == "changes" for stage in self.stages)

    def problems(self) -> list[Problem]:
        """Every error of every blocked stage, in walk order."""
        return [problem for stage in self.stages for problem in stage.errors]

    def stage(self, env: str) -> Stage:
        """The stage of ``env`` (``KeyError`` when not in the walk)."""
        for stage in self.stages:
            if stage.env == env:
                return stage
        raise KeyError(env)
