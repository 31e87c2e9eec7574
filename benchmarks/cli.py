"""promote measured as users run it: the installed ``promote`` command, one whole process each.

Every figure is the wall time of one process from ``exec`` to exit (median of ``--runs`` after
one warm-up), measured by a small wrapper process that starts the command and reads the
command's peak resident memory from ``resource.getrusage(RUSAGE_CHILDREN)``; nothing is timed
inside promote. Each ratio compares two commands measured alternately in the same run, so a
busy machine slows both. Corpora are generated with a fixed seed.

    python benchmarks/cli.py [--runs 5] [--only startup,resolve,plan,aic]

Rows and the goals they are held to (issue 10):

- startup: ``promote --help`` <= 150 ms and <= 40 MiB (``python -c pass`` for scale);
- resolve: ``promote resolve --env staging`` on 5,000 objects with ~21 placeholders each
  (about half inside longer strings, typed wrappers, defaults; 2,000 ESVs) <= 1.5x a script
  that only ``json.load``s the same files and ``json.dump``s them;
- plan: ``promote plan --to staging --format json`` at 20,000 objects, 1% changed, <= 1 s
  and >= 20x faster than one whole-tree ``DeepDiff`` of the same objects; also 20k/0% and
  40k/1% (the 1% rows within 25% of each other: the cost follows the change, not the tree);
- floor (no goal): a process that only lists ``config/`` and ``stat``s each file, at 100,
  20,000 and 40,000 objects, and how far apart the 1% rows would be if a plan did that and
  nothing else per file (a plan of 100 objects, plus what the stats of the others cost);
- aic: the first ``promote run`` of 500 ESVs (450 variables, 50 secrets) into an AIC tenant
  served by ``promote sandbox serve`` with 20 ms per request, concurrency 8 vs 1 (>= 6x);
  and the unchanged ``promote plan`` of those ESVs (<= 0.3 s plus its requests).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROMOTE = shutil.which("promote") or str(Path(sys.executable).parent / "promote")
SEED = 20261204

# The wrapper: start the command, wait, print its wall time and its peak RSS (KiB on Linux).
_WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE)
elapsed = time.perf_counter() - start
if done.returncode not in (0, 5):
    sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
    sys.exit(done.returncode)
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@dataclass
class Sample:
    """Medians of one command's runs."""

    seconds: float
    peak_mib: float


def measure(cwd: Path, argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """One whole-process run of ``argv`` in ``cwd``: (seconds, peak MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(cwd), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    seconds, kib = done.stdout.split()
    return float(seconds), int(kib) / 1024


def alternate(
    runs: int, commands: Sequence[tuple[Path, Sequence[str], dict[str, str]]]
) -> list[Sample]:
    """Each command once as a warm-up, then ``runs`` rounds, the commands taking turns."""
    for cwd, argv, env in commands:
        measure(cwd, argv, env)
    results: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for index, (cwd, argv, env) in enumerate(commands):
            results[index].append(measure(cwd, argv, env))
    return [
        Sample(statistics.median(s for s, _ in found), statistics.median(m for _, m in found))
        for found in results
    ]


def _env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PROMOTE_CACHE_DIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


# -- corpora ----------------------------------------------------------------------------------


def _env_file(path: Path, name: str, variables: dict[str, str], secrets: dict[str, str]) -> None:
    lines = [f"description: {name}", "tenant: {kind: local}"]
    if name == "dev":
        lines.append("mutable: true")
    lines.append("variables:")
    lines += [f"  {key}: {value}" for key, value in variables.items()]
    if secrets:
        lines.append("secrets:")
        lines += [f"  {key}: {{env: {var}}}" for key, var in secrets.items()]
    path.write_text("\n".join(lines) + "\n")


def dense_corpus(root: Path, *, objects: int = 5000, esvs: int = 2000) -> dict[str, str]:
    """The resolve corpus; returns the environment its secrets need."""
    rng = random.Random(SEED)
    (root / "environments").mkdir(parents=True)
    (root / "config" / "app").mkdir(parents=True)
    (root / "promote.yaml").write_text("chain: [dev, staging]\n")
    variables: dict[str, str] = {}
    for i in range(esvs):
        kind = i % 4
        if kind == 0:
            variables[f"esv-v{i}"] = f"host{i}.example.com"
        elif kind == 1:
            variables[f"esv-v{i}"] = f'{{value: "{1000 + i}", type: int}}'
        elif kind == 2:
            variables[f"esv-v{i}"] = '{value: "true", type: bool}'
        else:
            variables[f"esv-v{i}"] = f'{{value: \'["a{i}", "b"]\', type: array}}'
    secrets = {"esv-smtp-password": "BENCH_SMTP_PASSWORD"}
    for name in ("dev", "staging"):
        _env_file(root / "environments" / f"{name}.yaml", name, variables, secrets)

    def pick(kind: int) -> int:
        return rng.randrange(esvs // 4) * 4 + kind

    for n in range(objects):
        document = {
            "name": f"object-{n}",
            "url": f"https://&{{esv.v{pick(0)}}}/path?x=&{{esv.v{pick(0)}|d}}",
            "from": f'"App {n}" <noreply@&{{esv.v{pick(0)}}}>',
            "port": {"$int": f"&{{esv.v{pick(1)}}}"},
            "enabled": {"$bool": f"&{{esv.v{pick(2)}}}"},
            "items": {"$array": f"&{{esv.v{pick(3)}}}"},
            "fallback": f"&{{esv.missing.{n}|default-{n}}}",
            "password": "&{esv.smtp.password}",
            "hosts": [f"&{{esv.v{pick(0)}}}" for _ in range(4)],
            "links": [f"https://&{{esv.v{pick(0)}}}/a/{k}" for k in range(4)],
            "limits": {f"l{k}": {"$int": f"&{{esv.v{pick(1)}}}"} for k in range(3)},
            "notes": "plain text with no placeholder at all, as most of a config object is",
            "retries": 3,
        }
        (root / "config" / "app" / f"o{n:05d}.json").write_text(json.dumps(document, indent=2))
    return {"BENCH_SMTP_PASSWORD": "bench-Secret-pw-1"}


_LOAD_DUMP = """
import json, sys
from pathlib import Path
root = Path("config")
out = {}
for path in sorted(root.rglob("*.json")):
    out[path.relative_to(root).as_posix()[:-5]] = json.loads(path.read_text())
sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\\n")
"""


def plan_corpus(root: Path, *, objects: int) -> dict[str, str]:
    """A workspace of ``objects`` small config objects, applied to dev and staging."""
    rng = random.Random(SEED + objects)
    (root / "environments").mkdir(parents=True)
    (root / "config" / "obj").mkdir(parents=True)
    (root / "promote.yaml").write_text("chain: [dev, staging]\n")
    variables = {f"esv-p{i}": f"value-{i}" for i in range(200)}
    variables["esv-email-host"] = "smtp.example.com"
    variables["esv-email-port"] = '{value: "587", type: int}'
    for name in ("dev", "staging"):
        _env_file(root / "environments" / f"{name}.yaml", name, variables, {})
    email = {
        "host": "&{esv.email.host}",
        "port": {"$int": "&{esv.email.port}"},
        "from": "noreply@example.com",
        "auth": {"enable": False},
        "starttls": {"enable": True},
        "smtpProperties": [],
    }
    (root / "config" / "external.email.json").write_text(json.dumps(email, indent=2))
    for n in range(objects):
        document = {
            "id": n,
            "label": f"object {n}",
            "endpoint": f"https://&{{esv.p{rng.randrange(200)}}}/v1",
            "options": {"timeout": 30, "retries": rng.randrange(5), "tags": ["a", "b"]},
            "enabled": True,
        }
        (root / "config" / "obj" / f"{n:06d}.json").write_text(json.dumps(document))
    return {}


def change_fraction(root: Path, fraction: float) -> None:
    """Modify ``fraction`` of the objects (deterministically)."""
    paths = sorted((root / "config" / "obj").rglob("*.json"))
    rng = random.Random(SEED)
    for path in rng.sample(paths, int(len(paths) * fraction)):
        document = json.loads(path.read_text())
        document["options"]["timeout"] = 60
        path.write_text(json.dumps(document))


_DEEPDIFF = """
import json, sys
from pathlib import Path
from deepdiff import DeepDiff
def load(root):
    root = Path(root)
    return {p.relative_to(root).as_posix()[:-5]: json.loads(p.read_text())
            for p in sorted(root.rglob("*.json"))}
held, wanted = load("applied-config"), load("config")
print(len(DeepDiff(held, wanted, view="tree")))
"""


# -- rows -----------------------------------------------------------------------------------


def row(what: str, value: str, goal: str, met: bool | None) -> tuple[str, str, str, str]:
    verdict = "" if met is None else ("met" if met else "NOT met")
    return what, value, goal, verdict


def bench_startup(runs: int, tmp: Path) -> list[tuple[str, str, str, str]]:
    help_, bare = alternate(
        runs,
        [(tmp, [PROMOTE, "--help"], _env()), (tmp, [sys.executable, "-c", "pass"], _env())],
    )
    return [
        row(
            "promote --help",
            f"{help_.seconds * 1000:.0f} ms, {help_.peak_mib:.1f} MiB "
            f"(python -c pass: {bare.seconds * 1000:.0f} ms)",
            "<= 150 ms and <= 40 MiB",
            help_.seconds <= 0.150 and help_.peak_mib <= 40,
        )
    ]


def bench_resolve(runs: int, tmp: Path) -> list[tuple[str, str, str, str]]:
    root = tmp / "dense"
    environ = _env(**dense_corpus(root))
    resolve, floor = alternate(
        runs,
        [
            (root, [PROMOTE, "resolve", "--env", "staging"], environ),
            (root, [sys.executable, "-c", _LOAD_DUMP], environ),
        ],
    )
    ratio = resolve.seconds / floor.seconds
    return [
        row(
            "promote resolve --env staging (5,000 objects, 2,000 ESVs)",
            f"{resolve.seconds:.2f} s = {ratio:.2f}x json load+dump ({floor.seconds:.2f} s), "
            f"{resolve.peak_mib:.0f} MiB",
            "<= 1.5x",
            ratio <= 1.5,
        )
    ]


def _applied_plan_workspace(tmp: Path, objects: int, fraction: float) -> Path:
    root = tmp / f"plan-{objects}-{fraction}"
    plan_corpus(root, objects=objects)
    done = subprocess.run(
        [PROMOTE, "run", "--to", "staging"], cwd=root, env=_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"setting up the plan corpus failed:\n{done.stderr}")
    shutil.copytree(root / "config", root / "applied-config")
    change_fraction(root, fraction)
    # promote never trusts its cache for a file written in the last two seconds (a clock
    # tick may hide a second write): wait that out, so every case measures the same steady
    # state (a plan some time after the edits), whether or not its runs are spaced by others.
    time.sleep(2.1)
    return root


_STAT_ONLY = """
import os
def walk(directory):
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.is_dir():
                walk(entry.path)
            elif entry.name.endswith(".json"):
                os.stat(entry.path)
walk("config")
"""
"""The least any plan that looks at the files does: list ``config/`` and ``stat`` each file."""


def bench_plan(runs: int, tmp: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    cases = [(20000, 0.0), (20000, 0.01), (40000, 0.01)]
    figures: dict[tuple[int, float], Sample] = {}
    stat_only: dict[int, Sample] = {}
    plan_argv = [PROMOTE, "plan", "--to", "staging", "--format", "json"]
    stat_argv = [sys.executable, "-c", _STAT_ONLY]
    for objects, fraction in [(100, 0.01), *cases]:
        root = _applied_plan_workspace(tmp, objects, fraction)
        if (objects, fraction) == (20000, 0.01):
            plan, deep, stat_only[objects] = alternate(
                runs,
                [
                    (root, plan_argv, _env()),
                    (root, [sys.executable, "-c", _DEEPDIFF], _env()),
                    (root, stat_argv, _env()),
                ],
            )
            faster = deep.seconds / plan.seconds
            rows.append(
                row(
                    "promote plan --to staging --format json (20,000 objects, 1% changed)",
                    f"{plan.seconds:.2f} s, {plan.peak_mib:.0f} MiB; {faster:.1f}x faster than "
                    f"one whole-tree DeepDiff ({deep.seconds:.2f} s)",
                    "<= 1 s and >= 20x",
                    plan.seconds <= 1.0 and faster >= 20,
                )
            )
        elif fraction:  # 100 and 40,000 objects: the plan and the stat-only floor
            plan, stat_only[objects] = alternate(
                runs, [(root, plan_argv, _env()), (root, stat_argv, _env())]
            )
        else:
            (plan,) = alternate(runs, [(root, plan_argv, _env())])
        figures[(objects, fraction)] = plan
        shutil.rmtree(root)
    small, large = figures[(20000, 0.01)], figures[(40000, 0.01)]
    spread = large.seconds / small.seconds - 1
    # From the same medians, without a model: what the 20,000 more objects of 40k/1% add per
    # object, and what changing 200 of 20,000 objects adds.
    per_object = (large.seconds - small.seconds) / 20000
    changing = small.seconds - figures[(20000, 0.0)].seconds
    rows.append(
        row(
            "plan at 20k/0%, 20k/1%, 40k/1%",
            " / ".join(f"{figures[c].seconds:.2f} s" for c in cases)
            + f" (40k vs 20k at 1%: {spread:+.0%}; {per_object * 1e6:.1f} us per object more;"
            f" changing 200 objects adds {changing * 1e3:.0f} ms)",
            "1% rows within 25%",
            abs(spread) <= 0.25,
        )
    )
    rows.append(_floor_row(figures[(100, 0.01)], stat_only))
    return rows


def _floor_row(tiny_plan: Sample, stat_only: dict[int, Sample]) -> tuple[str, str, str, str]:
    """How far apart the 1% rows would be if a plan did nothing per file but ``stat`` it:
    promote's own fixed cost (a plan of 100 objects) plus what ``stat``ing the 19,900 or
    39,900 more files costs a process that does only that."""
    tiny, mid, big = stat_only[100], stat_only[20000], stat_only[40000]
    best_mid = tiny_plan.seconds + mid.seconds - tiny.seconds
    best_big = tiny_plan.seconds + big.seconds - tiny.seconds
    return row(
        "floor: a process that only lists and stats each file",
        f"20k {mid.seconds * 1e3:.0f} ms, 40k {big.seconds * 1e3:.0f} ms "
        f"({big.seconds / mid.seconds - 1:+.0%}); a plan of 100 objects "
        f"({tiny_plan.seconds * 1e3:.0f} ms) plus a stat per file: "
        f"{best_mid * 1e3:.0f} / {best_big * 1e3:.0f} ms ({best_big / best_mid - 1:+.0%})",
        "(none: for the row above)",
        None,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sandbox:
    """``promote sandbox serve`` in its own process, with fresh state each time."""

    def __init__(self, tmp: Path, latency_ms: float) -> None:
        self.tmp = tmp
        self.latency_ms = latency_ms
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> str:
        self.stop()
        state = Path(tempfile.mkdtemp(dir=self.tmp, prefix="sandbox-"))
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                PROMOTE,
                "sandbox",
                "serve",
                "--env",
                "bench",
                "--port",
                str(self.port),
                "--latency-ms",
                str(self.latency_ms),
                "--state",
                str(state),
            ],
            cwd=self.tmp,
            env=_env(PROMOTE_SANDBOX_TOKEN="bench-token"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return f"http://127.0.0.1:{self.port}/bench"
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the sandbox did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def _aic_workspace(root: Path, url: str, concurrency: int) -> dict[str, str]:
    if root.exists():
        shutil.rmtree(root)
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "promote.yaml").write_text("chain: [bench]\n")
    lines = [
        "tenant:",
        "  kind: aic",
        f"  url: {url}",
        "  token: {env: BENCH_TOKEN}",
        f"  concurrency: {concurrency}",
        "mutable: true",
        "variables:",
    ]
    lines += [f"  esv-bench-var-{i}: value-{i}" for i in range(450)]
    lines.append("secrets:")
    lines += [f"  esv-bench-secret-{i}: {{env: BENCH_SECRET_{i}}}" for i in range(50)]
    (root / "environments" / "bench.yaml").write_text("\n".join(lines) + "\n")
    secrets = {f"BENCH_SECRET_{i}": f"bench-secret-value-{i}-x" for i in range(50)}
    return {"BENCH_TOKEN": "bench-token", **secrets}


def bench_aic(runs: int, tmp: Path, latency_ms: float = 20.0) -> list[tuple[str, str, str, str]]:
    sandbox = Sandbox(tmp, latency_ms)
    first: dict[int, list[float]] = {1: [], 8: []}
    try:
        # First runs need an empty tenant each: a fresh sandbox per run, levels alternating.
        for attempt in range(runs + 1):
            for level in (1, 8):
                url = sandbox.start()
                root = tmp / f"aic-{level}"
                environ = _env(**_aic_workspace(root, url, level))
                seconds, _ = measure(root, [PROMOTE, "run", "--to", "bench"], environ)
                if attempt:  # the first round is the warm-up
                    first[level].append(seconds)
        # Unchanged plan: the tenant holds all 500 ESVs already.
        url = sandbox.start()
        root = tmp / "aic-8"
        environ = _env(**_aic_workspace(root, url, 8))
        measure(root, [PROMOTE, "run", "--to", "bench"], environ)
        (unchanged,) = alternate(
            runs, [(root, [PROMOTE, "plan", "--to", "bench", "--detailed-exitcode"], environ)]
        )
    finally:
        sandbox.stop()
    one, eight = statistics.median(first[1]), statistics.median(first[8])
    requests = 2 * latency_ms / 1000
    return [
        row(
            "first run of 500 ESVs into AIC, 20 ms per request",
            f"concurrency 8: {eight:.2f} s, 1: {one:.2f} s = {one / eight:.1f}x",
            ">= 6x",
            one / eight >= 6,
        ),
        row(
            "unchanged plan of those 500 ESVs",
            f"{unchanged.seconds:.2f} s",
            f"<= 0.3 s + two requests ({0.3 + requests:.2f} s)",
            unchanged.seconds <= 0.3 + requests,
        ),
    ]


BENCHES: dict[str, Callable[[int, Path], list[tuple[str, str, str, str]]]] = {
    "startup": bench_startup,
    "resolve": bench_resolve,
    "plan": bench_plan,
    "aic": bench_aic,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per command")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated rows")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="promote-bench-") as name:
        # promote's cache of config digests, as a user's would be, but thrown away after.
        os.environ["PROMOTE_CACHE_DIR"] = str(Path(name) / "cache")
        for key in args.only.split(","):
            print(f"measuring {key} ...", file=sys.stderr, flush=True)
            rows += BENCHES[key](args.runs, Path(name))
    widths = [max(len(r[i]) for r in [("what", "measured", "goal", ""), *rows]) for i in range(4)]
    header = ("what", f"measured (median of {args.runs}, whole processes)", "goal", "")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
