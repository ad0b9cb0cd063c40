"""Run the aiokatcp benchmark suite, optionally comparing implementations in one run.

Usage::

    python benchmarks/run.py [--python PATH ...] [--scenario NAME ...] [--repeat N]
                             [--quick] [--impl-only] [--json FILE] [--timeout S] [--verbose]

By default the aiokatcp importable by the interpreter running this script is measured
(labelled ``ours``). Each ``--python PATH`` adds another interpreter (e.g. a venv with
upstream ``aiokatcp==2.3.0``); with ``--impl-only`` only those are measured. Runs of the
implementations alternate (A B, B A, A B, ...) so that drift on the machine affects them
equally; the table shows the median of the repeats and the ratio of the first
implementation to each other one. JSON lines (medians per scenario and implementation,
and ratios) follow the table; ``--json FILE`` also saves every individual run.

The harness itself (this script, ``scenarios.py`` and the load generators) needs only the
standard library, so it can be run by an interpreter without aiokatcp (with
``--impl-only``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from _benchutil import BENCH_DIR
from scenarios import SCENARIOS


class Impl(NamedTuple):
    label: str
    python: str
    version: str


def probe_version(python: str) -> Optional[str]:
    """Return the ``aiokatcp.__version__`` that `python` imports, or None."""
    try:
        proc = subprocess.run(
            [python, "-c", "import aiokatcp; print(aiokatcp.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=BENCH_DIR,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_impls(args: argparse.Namespace) -> List[Impl]:
    candidates = [] if args.impl_only else [("ours", sys.executable)]
    # Resolve now: scenarios.py and the probe run with other working directories.
    candidates += [("", shutil.which(path) or os.path.abspath(path)) for path in args.python]
    impls: List[Impl] = []
    for label, python in candidates:
        version = probe_version(python)
        if version is None:
            sys.exit(f"error: {python} cannot import aiokatcp")
        label = label or version
        taken = {impl.label for impl in impls}
        if label in taken:
            label = next(f"{label}#{i}" for i in range(2, 100) if f"{label}#{i}" not in taken)
        impls.append(Impl(label, python, version))
    return impls


def run_one(
    scenario: str, impl: Impl, quick: bool, timeout: float, verbose: bool
) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.join(BENCH_DIR, "scenarios.py"), scenario]
    cmd += ["--python", impl.python] + ["--quick"] * quick
    record: Dict[str, Any] = {"scenario": scenario, "impl": impl.label}
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        record["error"] = f"timed out after {timeout} s"
        return record
    lines = proc.stdout.strip().splitlines()
    try:
        record.update(json.loads(lines[-1]))
    except (IndexError, ValueError):
        record["error"] = f"no result (exit code {proc.returncode})"
    if "error" in record and proc.stderr:
        record["stderr_tail"] = proc.stderr.strip().splitlines()[-10:]
    return record


def median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else float("nan")


def json_safe(obj: Any) -> Any:
    """Replace NaN (no result) by None so that the JSON lines are strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value.is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def summarise(
    impls: Sequence[Impl], scenarios: Sequence[str], runs: Sequence[Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """One summary record per (scenario, metric): medians per implementation and ratios."""
    rows: List[Dict[str, Any]] = []
    base = impls[0].label
    for scenario in scenarios:
        ok = [r for r in runs if r["scenario"] == scenario and "metrics" in r]
        units: Dict[str, str] = {}
        for r in ok:
            for name, unit in r["units"].items():
                units.setdefault(name, unit)
        for metric, unit in units.items():
            samples = {
                impl.label: [r["metrics"][metric] for r in ok if r["impl"] == impl.label]
                for impl in impls
            }
            medians = {label: median(values) for label, values in samples.items()}
            ratios = {}
            for impl in impls[1:]:
                a, b = medians[base], medians[impl.label]
                ratios[f"{base}/{impl.label}"] = a / b if b and not math.isnan(a + b) else None
            rows.append(
                {
                    "scenario": scenario,
                    "metric": metric,
                    "unit": unit,
                    "higher_is_better": unit.endswith("/s"),
                    "median": medians,
                    "samples": samples,
                    "ratio": ratios,
                }
            )
    return rows


def print_table(impls: Sequence[Impl], rows: Sequence[Dict[str, Any]]) -> None:
    base = impls[0].label
    header = ["scenario", "metric", "unit"] + [impl.label for impl in impls]
    header += [f"{base}/{impl.label}" for impl in impls[1:]]
    table = [header]
    for row in rows:
        cells = [row["scenario"], row["metric"], row["unit"]]
        cells += [fmt(row["median"][impl.label]) for impl in impls]
        cells += ["-" if ratio is None else f"{ratio:.2f}" for ratio in row["ratio"].values()]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, cells in enumerate(table):
        left = cells[:3]
        right = cells[3:]
        line = "  ".join(c.ljust(w) for c, w in zip(left, widths))
        line += "  " + "  ".join(c.rjust(w) for c, w in zip(right, widths[3:]))
        print(line.rstrip())
        if i == 0:
            print("-" * len(line))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="PATH",
        help="another interpreter with an aiokatcp implementation to measure (repeatable)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"scenario to run (repeatable; default all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--repeat", type=int, help="runs per implementation [5; --quick: 3]")
    parser.add_argument("--quick", action="store_true", help="smaller counts (suite < ~2 min)")
    parser.add_argument(
        "--impl-only", action="store_true", help="measure only the --python interpreters"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every run as JSON lines")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="limit per run [%(default)s s]"
    )
    parser.add_argument("--verbose", action="store_true", help="show scenario stderr")
    args = parser.parse_args()
    if args.impl_only and not args.python:
        parser.error("--impl-only needs at least one --python")
    repeat = args.repeat or (3 if args.quick else 5)
    scenarios = args.scenario or list(SCENARIOS)
    impls = find_impls(args)

    config = {
        "type": "config",
        "impls": [impl._asdict() for impl in impls],
        "scenarios": scenarios,
        "repeat": repeat,
        "quick": args.quick,
        "harness_python": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for impl in impls:
        print(f"# {impl.label}: aiokatcp {impl.version} ({impl.python})", file=sys.stderr)
    runs: List[Dict[str, Any]] = []
    total = len(scenarios) * repeat * len(impls)
    for scenario in scenarios:
        for rep in range(repeat):
            for impl in impls if rep % 2 == 0 else impls[::-1]:
                start = time.perf_counter()
                record = run_one(scenario, impl, args.quick, args.timeout, args.verbose)
                record["repeat"] = rep
                runs.append(record)
                status = f"ERROR {record['error']}" if "error" in record else "ok"
                print(
                    f"[{len(runs):3d}/{total}] {scenario:15s} {impl.label:10s} "
                    f"{time.perf_counter() - start:6.1f} s  {status}",
                    file=sys.stderr,
                )
                if record.get("stderr_tail"):  # the exception, usually (--verbose: all)
                    print(f"    {record['stderr_tail'][-1]}", file=sys.stderr)

    rows = summarise(impls, scenarios, runs)
    ratio_note = f"; ratio = {impls[0].label}/other" if len(impls) > 1 else ""
    print(
        f"\naiokatcp benchmarks: median of {repeat} run(s){' (quick)' if args.quick else ''}"
        f"{ratio_note}. Units ending in /s: higher is better; others: lower is better;"
        " 'count' must be 0."
    )
    print_table(impls, rows)
    print()
    summary_lines: List[Dict[str, Any]] = [config]
    summary_lines += [{"type": "summary", **row} for row in rows]
    errors = [r for r in runs if "error" in r]
    summary_lines += [{"type": "error", **r} for r in errors]
    for line in summary_lines:
        print(json.dumps(json_safe(line)))
    if args.json:
        with open(args.json, "w") as f:
            for line in summary_lines + [{"type": "run", **r} for r in runs]:
                f.write(json.dumps(json_safe(line)) + "\n")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
