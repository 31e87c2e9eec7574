"""The promotion engine: plan (pure), render (pure), apply (the only step that changes tenants).

``build_plan`` reads the workspace and the tenants and returns a :class:`Plan`;
``render_plan`` turns it into text, Markdown or JSON; ``run`` applies the walk with a journal,
the workspace run lock and recovery of unfinished runs; ``rollback`` undoes an environment's
last promotion; ``environment_status`` and ``read_history`` answer ``status`` and ``history``.
"""

from __future__ import annotations

from promote.engine.apply import Ambient, RunResult, check_saved_plan, rollback, run, run_plan
from promote.engine.diff import ABSENT, ObjectDiff, PathChange, diff_object, diff_objects
from promote.engine.plan import EsvChange, Plan, Stage, build_plan
from promote.engine.render import MARKDOWN_LIMIT, PLAN_FORMAT, plan_to_json, render_plan
from promote.engine.session import Tenants
from promote.engine.status import EnvironmentStatus, environment_status
from promote.state.history import HistoryRecord, read_history

__all__ = [
    "ABSENT",
    "MARKDOWN_LIMIT",
    "PLAN_FORMAT",
    "Ambient",
    "EnvironmentStatus",
    "EsvChange",
    "HistoryRecord",
    "ObjectDiff",
    "PathChange",
    "Plan",
    "RunResult",
    "Stage",
    "Tenants",
    "build_plan",
    "check_saved_plan",
    "diff_object",
    "diff_objects",
    "environment_status",
    "plan_to_json",
    "read_history",
    "render_plan",
    "rollback",
    "run",
    "run_plan",
]
