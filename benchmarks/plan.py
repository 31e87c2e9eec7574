"""Plan time against the number of config objects and against the number changed.

A workspace with one local environment is applied once, then some of its config objects are
changed and ``build_plan`` is timed (median of ``--runs``). Three series:

- at a fixed total (default 20,000 objects): 0.1% / 1% / 10% of the objects changed, and one
  ESV every object references changed (its effective value changes everywhere);
- at 1% changed: 1,000 / 5,000 / 20,000 objects, with the differ alone and one whole-tree
  ``DeepDiff`` of the same before/after (the naive alternative) for comparison.

    python benchmarks/plan.py [--total 20000] [--sizes 1000 5000 20000] [--runs 5]

What should grow with the changes, not the total: the diff (DeepDiff runs per changed
object), resolution (only objects that changed, reference a changed ESV or a secret, and the
email objects) and the effective-value diff. What stays linear in the total: reading the
tenant, the equality pass, the reference check of every object (``check_environment``) and
the fingerprints; ``--profile`` prints where one plan at the fixed total spends its time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff

from promote.engine.apply import Ambient, run
from promote.engine.diff import diff_objects
from promote.engine.plan import Plan, build_plan
from promote.engine.session import Tenants
from promote.workspace import load_workspace

ENV = """\
tenant: {{kind: local}}
variables:
  esv-email-provider-host: smtp.example.com
  esv-email-provider-port: {{value: "587", type: int}}
  esv-brand: {brand}
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


class Bench:
    """A workspace of ``size`` objects applied to its local environment ``dev``."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size
        (root / "environments").mkdir()
        self._env("Acme")
        self.config = root / "config" / "bench"
        self.config.mkdir(parents=True)
        for n in range(size):
            self._write(n, changed=False)
        workspace = load_workspace(root)
        with Tenants(workspace) as tenants:
            run(workspace, "dev", tenants, ambient=Ambient(environ={}))

    def _env(self, brand: str) -> None:
        (self.root / "environments" / "dev.yaml").write_text(ENV.format(brand=brand))

    def _write(self, n: int, *, changed: bool) -> None:
        (self.config / f"o{n:05d}.json").write_text(json.dumps(_object(n, changed=changed)))

    def changed(self, count: int) -> list[int]:
        """Change ``count`` objects, spread evenly; returns them (see :meth:`restore`)."""
        step = max(1, self.size // count) if count else self.size
        chosen = list(range(0, self.size, step))[:count]
        for n in chosen:
            self._write(n, changed=True)
        return chosen

    def restore(self, chosen: list[int]) -> None:
        for n in chosen:
            self._write(n, changed=False)
        self._env("Acme")

    def plan_time(self, runs: int) -> tuple[float, Plan]:
        workspace = load_workspace(self.root)
        with Tenants(workspace) as tenants:
            seconds = _median(lambda: build_plan(workspace, "dev", tenants, environ={}), runs)
            plan = build_plan(workspace, "dev", tenants, environ={})
        return seconds, plan

    def profile(self, top: int) -> None:
        workspace = load_workspace(self.root)
        with Tenants(workspace) as tenants:
            profiler = cProfile.Profile()
            profiler.enable()
            build_plan(workspace, "dev", tenants, environ={})
            profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def fixed_total(total: int, runs: int, profile: bool) -> None:
    print(f"\nAt a fixed total of {total:,} objects (plan: median of {runs}):")
    print(f"{'changed':>16} {'config changes':>15} {'effective':>10} {'plan s':>8}")
    with tempfile.TemporaryDirectory() as temp:
        bench = Bench(Path(temp), total)
        for label, count in (("0.1%", total // 1000), ("1%", total // 100), ("10%", total // 10)):
            chosen = bench.changed(count)
            seconds, plan = bench.plan_time(runs)
            stage = plan.stages[0]
            print(
                f"{label + f' ({count:,})':>16} {len(stage.config_changes):>15,} "
                f"{len(stage.effective_changes):>10,} {seconds:>8.3f}",
                flush=True,
            )
            if profile and label == "1%":
                bench.profile(25)
            bench.restore(chosen)
        bench._env("Acme Corp")  # every object references esv-brand
        seconds, plan = bench.plan_time(runs)
        stage = plan.stages[0]
        print(
            f"{'1 ESV (all use)':>16} {len(stage.config_changes):>15,} "
            f"{len(stage.effective_changes):>10,} {seconds:>8.3f}",
            flush=True,
        )
        bench.restore([])


def by_size(sizes: list[int], runs: int) -> None:
    print(f"\nWith 1% changed (plan, differ: medians of {runs}; DeepDiff: of {max(1, runs // 2)}):")
    print(
        f"{'objects':>8} {'changed':>8} {'plan s':>8} {'differ s':>9} {'DeepDiff s':>11} "
        f"{'plan/DeepDiff':>14} {'differ/DeepDiff':>16}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory() as temp:
            bench = Bench(Path(temp), size)
            bench.changed(size // 100)
            seconds, plan = bench.plan_time(runs)
            workspace = load_workspace(bench.root)
            with Tenants(workspace) as tenants:
                tenant = tenants["dev"]
                before = tenant.read_config(sorted(tenant.list_config_ids()))
        differ, whole = _compare(before, dict(workspace.config), runs)
        changed = len(plan.stages[0].config_changes)
        print(
            f"{size:>8,} {changed:>8,} {seconds:>8.3f} {differ:>9.4f} {whole:>11.3f} "
            f"{seconds / whole:>14.2f} {differ / whole:>16.3f}",
            flush=True,
        )


def _compare(before: dict[str, Any], after: dict[str, Any], runs: int) -> tuple[float, float]:
    """The differ alone, and one whole-tree DeepDiff, on the same before/after."""
    differ = _median(lambda: diff_objects(before, after), runs)
    whole = _median(lambda: DeepDiff(before, after), max(1, runs // 2))
    return differ, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=20000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one plan (1%%)")
    args = parser.parse_args()
    fixed_total(args.total, args.runs, args.profile)
    by_size(args.sizes, args.runs)


if __name__ == "__main__":
    main()
