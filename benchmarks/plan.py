"""Plan time against the number of config objects, with 1% of them changed.

For each size (default 1,000 / 5,000 / 20,000 objects) a workspace with one local
environment is applied once, then 1% of its config objects are changed and the plan is
timed (median of several runs), together with the differ alone and one whole-tree DeepDiff
of the same before/after, the naive alternative.

    python benchmarks/plan.py [--sizes 1000 5000 20000] [--runs 5]

Aim: the diff grows with the changed objects, not the total (last column: the differ with a
fixed 10 changed objects at every size; only its equality pass is linear). The rest of a
plan reads every object once (tenant read, reference check, resolution): linear but cheap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff

from promote.engine.apply import Ambient, run
from promote.engine.diff import diff_objects
from promote.engine.plan import build_plan
from promote.engine.session import Tenants
from promote.workspace import load_workspace

ENV = """\
tenant: {kind: local}
variables:
  esv-email-provider-host: smtp.example.com
  esv-email-provider-port: {value: "587", type: int}
  esv-brand: Acme
"""


def _object(n: int, *, changed: bool = False) -> dict[str, Any]:
    return {
        "enabled": True,
        "name": f"object {n}",
        "host": "&{esv.email.provider.host}",
        "port": {"$int": "&{esv.email.provider.port}"},
        "subject": {"en": f"Hello {n} from &{{esv.brand}}", "fr": f"Bonjour {n}"},
        "limits": [n, n + 1, n + 2],
        "note": "changed" if changed else "original",
    }


def _median(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "environments").mkdir()
        (root / "environments" / "dev.yaml").write_text(ENV)
        config = root / "config" / "bench"
        config.mkdir(parents=True)
        for n in range(size):
            (config / f"o{n:05d}.json").write_text(json.dumps(_object(n)))
        workspace = load_workspace(root)
        with Tenants(workspace) as tenants:
            run(workspace, "dev", tenants, ambient=Ambient(environ={}))
        step = 100  # 1% changed
        for n in range(0, size, step):
            (config / f"o{n:05d}.json").write_text(json.dumps(_object(n, changed=True)))
        workspace = load_workspace(root)
        with Tenants(workspace) as tenants:
            tenant = tenants["dev"]
            plan_time = _median(lambda: build_plan(workspace, "dev", tenants, environ={}), runs)
            plan = build_plan(workspace, "dev", tenants, environ={})
            before = tenant.read_config(sorted(tenant.list_config_ids()))
        after = dict(workspace.config)
        diff_time = _median(lambda: diff_objects(before, after), runs)
        # The same differ with a fixed 10 changed objects, whatever the total.
        ten = dict(before)
        for key in sorted(ten)[:: max(1, size // 10)][:10]:
            ten[key] = {**ten[key], "note": "changed"}
        diff10_time = _median(lambda: diff_objects(before, ten), runs)
        whole_time = _median(lambda: DeepDiff(before, after), max(1, runs // 2))
        changed = len(plan.stages[0].config_changes)
    return {
        "objects": size,
        "changed": changed,
        "plan": plan_time,
        "diff": diff_time,
        "diff10": diff10_time,
        "whole": whole_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'objects':>8} {'changed':>8} {'plan s':>9} {'differ s':>9} "
        f"{'DeepDiff s':>11} {'plan/DeepDiff':>14} {'differ/DeepDiff':>16} "
        f"{'differ s, 10 changed':>21}"
    )
    for size in args.sizes:
        r = measure(size, args.runs)
        print(
            f"{r['objects']:>8} {r['changed']:>8} {r['plan']:>9.3f} {r['diff']:>9.4f} "
            f"{r['whole']:>11.3f} {r['plan'] / r['whole']:>14.2f} "
            f"{r['diff'] / r['whole']:>16.3f} {r['diff10']:>21.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
