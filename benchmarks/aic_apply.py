"""How fast promote pushes and re-checks ESVs of an aic tenant served by the sandbox.

Scenario (issue 5): 500 ESVs (450 variables, 50 secrets) in one environment file, against
``promote sandbox`` on 127.0.0.1 with 20 ms added per request. Every phase goes through the
engine (``promote.engine``), as ``promote plan`` / ``promote run`` do:

- first run: ``run`` into an empty environment (plan, 500 ESV writes, restart, record);
- unchanged plan: ``build_plan`` when nothing changed (two bulk lists, config, fingerprints);
- unchanged run: ``run`` when nothing changed (the plan, then nothing to apply);
- baseline: the one-by-one approach of existing tools, one GET per ESV, sequentially.

Writes are counted from the sandbox's request log for each phase (every request but GET),
and the most requests the sandbox answered at once shows the concurrency each phase really
had. The first run and the unchanged phases are measured with ``tenant.concurrency`` 1 and 8.
Each figure is the median of ``--runs`` runs (a fresh environment and workspace each).
Usage: ``python benchmarks/aic_apply.py [--count 500] [--secrets 50] [--latency-ms 20]
[--runs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from promote.engine.apply import Ambient, run
from promote.engine.plan import build_plan
from promote.http import StaticAuth
from promote.sandbox import SandboxServer, start_sandbox
from promote.tenants.aic import AicTenant
from promote.tenants.base import Tenant
from promote.tenants.factory import open_tenant
from promote.workspace import Workspace, load_workspace

TOKEN = "bench-token"
LEVELS = (1, 8)
ENV = "bench"


@dataclass
class Phase:
    """Seconds, writes and peak in-flight requests of every run of one phase."""

    seconds: list[float]
    writes: list[int]
    peak: list[int]

    def line(self, label: str) -> str:
        writes = sorted(set(self.writes))
        shown = str(writes[0]) if len(writes) == 1 else f"{writes[0]}-{writes[-1]}"
        return (
            f"  {label:<40}{statistics.median(self.seconds):7.2f} s   {shown:>4} writes   "
            f"{max(self.peak)} in flight"
        )


def _workspace(root: Path, url: str, count: int, secrets: int, concurrency: int) -> Path:
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    lines = [
        "description: benchmark",
        "tenant:",
        "  kind: aic",
        f"  url: {url}",
        "  token: {env: BENCH_TOKEN}",
        f"  concurrency: {concurrency}",
        "mutable: true",
        "variables:",
    ]
    lines += [f"  esv-bench-var-{i:04d}: value-{i}" for i in range(count - secrets)]
    lines += ["secrets:"]
    lines += [f"  esv-bench-secret-{i:04d}: {{env: BENCH_SECRET_{i}}}" for i in range(secrets)]
    (root / "environments" / f"{ENV}.yaml").write_text("\n".join(lines) + "\n")
    (root / "promote.yaml").write_text(f"chain: [{ENV}]\n")
    return root


def _measure(server: SandboxServer, env: str, call: Callable[[], object]) -> tuple[float, int, int]:
    """Seconds, writes sent to ``env`` and peak in-flight requests while ``call`` runs."""
    before = len(server.requests)
    server.peak_in_flight = 0
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    writes = sum(
        1 for r in server.requests[before:] if r.env == env and r.method not in ("GET", "HEAD")
    )
    return seconds, writes, server.peak_in_flight


def _one_by_one(tenant: AicTenant, ids: list[str]) -> None:
    for esv_id in ids:
        kind = "secrets" if "secret" in esv_id else "variables"
        tenant._http.get_json(  # the baseline needs raw GETs
            f"/environment/{kind}/{esv_id}", api_version="protocol=1.0,resource=1.0"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    names = {(c, r): f"c{c}-r{r}" for c in LEVELS for r in range(args.runs)}
    phases = {(name, c): Phase([], [], []) for name in ("first", "plan", "rerun") for c in LEVELS}
    baseline = Phase([], [], [])
    with tempfile.TemporaryDirectory() as state:
        server = start_sandbox(
            list(names.values()), Path(state) / "sandbox", tokens=TOKEN, latency_ms=args.latency_ms
        )
        try:
            for (concurrency, _), env in names.items():
                _bench_environment(
                    server, env, concurrency, Path(state) / f"ws-{env}", args, phases, baseline
                )
        finally:
            server.stop()

    def median(name: str, concurrency: int) -> float:
        return statistics.median(phases[(name, concurrency)].seconds)

    print(
        f"aic_apply: {args.count} ESVs ({args.count - args.secrets} variables, "
        f"{args.secrets} secrets), sandbox latency {args.latency_ms:g} ms/request, "
        f"median of {args.runs} runs, through promote.engine"
    )
    for concurrency in LEVELS:
        print(phases[("first", concurrency)].line(f"first run, concurrency {concurrency}:"))
    print(f"    speed-up x{median('first', 1) / median('first', 8):.1f} at concurrency 8")
    for concurrency in LEVELS:
        print(phases[("plan", concurrency)].line(f"unchanged plan, concurrency {concurrency}:"))
    for concurrency in LEVELS:
        print(phases[("rerun", concurrency)].line(f"unchanged run, concurrency {concurrency}:"))
    print(baseline.line("baseline: one GET per ESV, sequential:"))
    print(
        f"    the unchanged run is x{statistics.median(baseline.seconds) / median('rerun', 8):.1f}"
        " faster than the baseline"
    )


def _bench_environment(
    server: SandboxServer,
    env: str,
    concurrency: int,
    root: Path,
    args: argparse.Namespace,
    phases: dict[tuple[str, int], Phase],
    baseline: Phase,
) -> None:
    """The phases of one fresh environment and workspace, appended to ``phases``."""
    environ = _environ(args.secrets)
    ambient = Ambient(environ=environ, sleep=lambda _: time.sleep(0.01), poll_seconds=0.01)
    workspace = load_workspace(
        _workspace(root, server.url(env), args.count, args.secrets, concurrency)
    )
    tenants = _open(workspace, environ)
    try:
        steps: dict[str, Callable[[], object]] = {
            "first": partial(run, workspace, ENV, tenants, ambient=ambient),
            "plan": partial(_unchanged_plan, workspace, tenants, environ),
            "rerun": partial(_unchanged_run, workspace, tenants, ambient),
        }
        if concurrency == 1:
            ids = [*workspace.environments[ENV].variables, *workspace.environments[ENV].secrets]
            tenant = tenants[ENV]
            assert isinstance(tenant, AicTenant)
            steps["baseline"] = partial(_one_by_one, tenant, ids)
        for name, step in steps.items():
            seconds, writes, peak = _measure(server, env, step)
            phase = baseline if name == "baseline" else phases[(name, concurrency)]
            phase.seconds.append(seconds)
            phase.writes.append(writes)
            phase.peak.append(peak)
    finally:
        for tenant in tenants.values():
            tenant.close()


def _environ(secrets: int) -> dict[str, str]:
    return {"BENCH_TOKEN": TOKEN, **{f"BENCH_SECRET_{i}": f"s3cret-{i}" for i in range(secrets)}}


def _open(workspace: Workspace, environ: Mapping[str, str]) -> dict[str, Tenant]:
    tenant = open_tenant(workspace.environments[ENV], workspace=workspace, environ=environ)
    assert isinstance(tenant, AicTenant) and isinstance(tenant._auth, StaticAuth)
    return {ENV: tenant}


def _unchanged_plan(
    workspace: Workspace, tenants: Mapping[str, Tenant], environ: Mapping[str, str]
) -> None:
    plan = build_plan(workspace, ENV, tenants, environ=environ)
    assert not any(stage.changed for stage in plan.stages), "the plan found changes"


def _unchanged_run(workspace: Workspace, tenants: Mapping[str, Tenant], ambient: Ambient) -> None:
    result = run(workspace, ENV, tenants, ambient=ambient)
    assert result.applied == (), f"the unchanged run applied {result.applied}"


if __name__ == "__main__":
    main()
