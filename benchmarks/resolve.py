"""Resolve throughput against the parse-and-serialize floor.

Generates a config corpus (default 20,000 objects, 200,000 placeholders, half of them inside
typed wrappers, plus secrets and embedded tokens), then times ``resolve_objects`` and
``json.loads`` + ``json.dumps`` of the same corpus, median of several runs.

    python benchmarks/resolve.py [--objects 20000] [--runs 5]

Aim: resolve costs at most 2x the parse-and-serialize floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from esv import EsvValue, resolve_objects

ESVS = 2000


def _values() -> dict[str, EsvValue]:
    values: dict[str, EsvValue] = {}
    for i in range(ESVS):
        values[f"esv-host-{i}"] = EsvValue(f"esv-host-{i}", f"smtp{i}.example.com")
        values[f"esv-port-{i}"] = EsvValue(f"esv-port-{i}", str(1000 + i), "int")
        values[f"esv-flag-{i}"] = EsvValue(f"esv-flag-{i}", "true", "bool")
        values[f"esv-list-{i}"] = EsvValue(f"esv-list-{i}", "a,b,c", "list")
        values[f"esv-pass-{i}"] = EsvValue(f"esv-pass-{i}", f"pw-{i}-xyz", secret=True)
    return values


def _object(n: int) -> dict[str, Any]:
    """One object with 10 placeholders: 5 in typed wrappers, 5 in strings."""
    k = n % ESVS
    return {
        "auth": {
            "enable": True,
            "password": f"&{{esv.pass.{k}}}",
            "username": f"user-{n}",
        },
        "from": f'"Example {n}" <noreply@&{{esv.host.{k}}}>',
        "host": f"&{{esv.host.{k}}}",
        "url": f"https://&{{esv.host.{(k + 1) % ESVS}}}:443/path",
        "fallback": f"&{{esv.undefined.{k}|default-{n}}}",
        "port": {"$int": f"&{{esv.port.{k}}}"},
        "ssl": {"enable": {"$bool": f"&{{esv.flag.{k}}}"}},
        "starttls": {"enable": {"$bool": f"&{{esv.flag.{(k + 7) % ESVS}}}"}},
        "servers": {"$list": f"&{{esv.list.{k}}}"},
        "timeout": {"$int": f"&{{esv.port.{(k + 3) % ESVS}}}"},
        "connectiontimeout": 30000,
        "smtpProperties": ["mail.smtp.x=1", f"mail.id={n}"],
        "threadPoolSize": 20,
        "debug": False,
        "description": "A config object with no placeholder in this text at all.",
    }


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    objects = {f"obj/{n}": _object(n) for n in range(args.objects)}
    values = _values()
    text = json.dumps(objects)
    megabytes = len(text.encode()) / 1e6
    placeholders = text.count("&{")
    typed = sum(text.count(f'"${w}"') for w in ("int", "bool", "list"))

    load_before = os.getloadavg()[0]
    # Alternate the two measurements so load from other processes hits both alike.
    floors, resolves = [], []
    for _ in range(args.runs):
        floors.append(_timed(lambda: json.dumps(json.loads(text))))
        resolves.append(_timed(lambda: resolve_objects(objects, values)))
    floor = statistics.median(floors)
    resolve_time = statistics.median(resolves)
    ratio = statistics.median(r / f for r, f in zip(resolves, floors, strict=True))

    print(
        f"corpus: {args.objects} objects, {placeholders} placeholders ({typed} typed), "
        f"{megabytes:.1f} MB of JSON"
    )
    print(f"json.loads + json.dumps: {floor * 1000:8.1f} ms  ({megabytes / floor:6.1f} MB/s)")
    print(
        f"resolve_objects:         {resolve_time * 1000:8.1f} ms  "
        f"({megabytes / resolve_time:6.1f} MB/s)"
    )
    print(f"ratio resolve / floor:   {ratio:8.2f}  (aim: <= 2.00; median of {args.runs} runs)")
    print(f"load average (1 min):    {load_before:8.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
