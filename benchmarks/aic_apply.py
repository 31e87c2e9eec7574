"""How fast the aic tenant pushes and re-checks ESVs against the sandbox with added latency.

Scenario (issue 5): 500 ESVs (450 variables, 50 secrets) against ``promote sandbox`` on
127.0.0.1 with 20 ms added per request.

- first push: ``write_esvs`` of all 500 into an empty environment;
- unchanged re-run: what a run does when nothing changed: one bulk read of variables and of
  secrets, a local comparison (secrets by their stored fingerprint), no write;
- baseline: the one-by-one approach of existing tools, one GET per ESV, sequentially.

Each figure is the median of ``--runs`` runs (fresh environment for every first push).
Usage: ``python benchmarks/aic_apply.py [--count 500] [--secrets 50] [--latency-ms 20]
[--runs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from esv.secrets import SecretValue
from promote.engine.plan import compare_secrets
from promote.http import StaticAuth
from promote.sandbox import SandboxServer, start_sandbox
from promote.tenants.aic import AicTenant
from promote.tenants.base import EsvWrite

TOKEN = "bench-token"
DEFAULT_CONCURRENCY = 8


def _writes(count: int, secrets: int) -> list[EsvWrite]:
    writes = [
        EsvWrite(f"esv-bench-var-{i:04d}", "variable", "add", f"value-{i}")
        for i in range(count - secrets)
    ]
    writes += [
        EsvWrite(f"esv-bench-secret-{i:04d}", "secret", "add", SecretValue(f"s3cret-{i}"))
        for i in range(secrets)
    ]
    return writes


def _tenant(server: SandboxServer, env: str, concurrency: int) -> AicTenant:
    return AicTenant(
        env,
        server.url(env),
        auth=StaticAuth(f"Bearer {TOKEN}"),
        mutable=True,
        concurrency=concurrency,
    )


def _unchanged_run(tenant: AicTenant, writes: list[EsvWrite]) -> int:
    """The comparison a run makes; returns how many ESVs differ (0 expected)."""
    variables = tenant.list_variables()
    tenant.list_secrets()
    changed = 0
    secrets: dict[str, SecretValue] = {}
    for write in writes:
        if write.kind == "variable":
            held = variables.get(write.id)
            changed += held is None or held.value != write.value
        else:
            assert isinstance(write.value, SecretValue)
            secrets[write.id] = write.value
    # Secrets as the plan compares them: a few fingerprints at once (the engine's helper).
    matching = compare_secrets(tenant, secrets)
    return changed + sum(result is not True for result in matching.values())


def _bulk_reads(tenant: AicTenant) -> None:
    tenant.list_variables()
    tenant.list_secrets()


def _one_by_one(tenant: AicTenant, writes: list[EsvWrite]) -> None:
    for write in writes:
        kind = "variables" if write.kind == "variable" else "secrets"
        tenant._http.get_json(f"/environment/{kind}/{write.id}")  # the baseline needs raw GETs


def _timed(call: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    writes = _writes(args.count, args.secrets)
    levels = (1, DEFAULT_CONCURRENCY)
    envs = [f"push-c{c}-r{r}" for c in levels for r in range(args.runs)]
    push: dict[int, list[float]] = {c: [] for c in levels}
    rerun: dict[int, list[float]] = {c: [] for c in levels}
    baseline: list[float] = []
    reads: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        server = start_sandbox([*envs], Path(state), tokens=TOKEN, latency_ms=args.latency_ms)
        try:
            for concurrency in levels:
                for run in range(args.runs):
                    tenant = _tenant(server, f"push-c{concurrency}-r{run}", concurrency)
                    try:
                        push[concurrency].append(_timed(tenant.write_esvs, writes))
                        assert _unchanged_run(tenant, writes) == 0
                        rerun[concurrency].append(_timed(_unchanged_run, tenant, writes))
                    finally:
                        tenant.close()
            tenant = _tenant(server, envs[0], 1)
            try:
                for _ in range(args.runs):
                    baseline.append(_timed(_one_by_one, tenant, writes))
                    reads.append(_timed(_bulk_reads, tenant))
            finally:
                tenant.close()
            puts = sum(1 for r in server.requests if r.method != "GET")
        finally:
            server.stop()

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(
        f"aic_apply: {args.count} ESVs ({args.count - args.secrets} variables, "
        f"{args.secrets} secrets), sandbox latency {args.latency_ms:g} ms/request, "
        f"median of {args.runs} runs"
    )
    print(f"  first push, sequential (concurrency 1):   {median(push[1]):7.2f} s")
    print(
        f"  first push, concurrency {DEFAULT_CONCURRENCY} (default):     "
        f"{median(push[DEFAULT_CONCURRENCY]):7.2f} s   "
        f"speed-up x{median(push[1]) / median(push[DEFAULT_CONCURRENCY]):.1f}"
    )
    print(f"  unchanged re-run, concurrency 1:          {median(rerun[1]):7.2f} s   0 writes")
    print(
        f"  unchanged re-run, concurrency {DEFAULT_CONCURRENCY}:          "
        f"{median(rerun[DEFAULT_CONCURRENCY]):7.2f} s   0 writes"
    )
    print(f"    of which the two bulk list requests:    {median(reads):7.2f} s")
    print(
        f"  baseline: one GET per ESV, sequential:    {median(baseline):7.2f} s   "
        f"unchanged re-run is x{median(baseline) / median(rerun[DEFAULT_CONCURRENCY]):.1f} faster"
    )
    print(f"  write requests sent in total: {puts} (pushes only)")


if __name__ == "__main__":
    main()
