"""The whole benchmark suite in one call: edit latency, generator throughput, hardware limit, training throughput.

    python benchmarks/run_all.py --threads 2 --json-dir runs/benchmarks      # CPU, 2 torch threads
    python benchmarks/run_all.py --json-dir "$OUT"                           # GPU machine (benchmarks/gpu_run.sh)
    python benchmarks/run_all.py --smoke                                     # CI: tiny sizes, one iteration

Each part runs in its own process (bench_edit.py, then bench_train.py), so global settings of one
(cuDNN autotuning, accelerate's state, compile caches, the allocator's peak) cannot colour the other.
Their tables stream through; the JSON files land in --json-dir (edit.json, train.json, summary.json).
The last thing printed is the summary: each target of issue 10, the measured value, and
pass / fail / not measured here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, describe, markdown_table, write_json

HERE = Path(__file__).resolve().parent
SUMMARY_COLUMNS = ["target", "goal", "measured", "status"]
NOT_HERE_GPU = "not measured here (needs GPU)"


def run_part(script: str, args: list[str], json_path: Path, *, omp_passive: bool = False) -> int:
    """Run one benchmark script in a fresh interpreter; its output streams through."""
    env = dict(os.environ)
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # read once when OpenMP starts, hence set for the child
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [sys.executable, str(HERE / script), *args, "--json", str(json_path)]
    print(f"\n$ {' '.join(command[1:])}\n", flush=True)
    return subprocess.call(command, env=env, cwd=REPO)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _status(ok: bool) -> str:
    return "pass" if ok else "fail"


def summarise(edit: dict[str, Any] | None, train: dict[str, Any] | None, smoke: bool) -> list[dict[str, Any]]:
    """One row per target: what it asks, what was measured, and whether it holds (never guessed)."""
    env = (edit or train or {}).get("environment", {})
    cuda = str(env.get("device", "cpu")).startswith("cuda")
    threads = env.get("cpu_threads")
    rows: list[dict[str, Any]] = []
    stages = {row["stage"]: row for row in (edit or {}).get("stages", [])}
    cold = next((r for name, r in stages.items() if name.startswith("edit, cold photo")), None)
    warm = next((r for name, r in stages.items() if name.startswith("edit, warm photo") and "4000" not in name), None)
    engine = next((name for name in stages if name.startswith("engine render")), "")
    partial = cold is not None and "no landmarks" in next(n for n in stages if n.startswith("edit, cold photo"))

    def edit_value() -> str:
        if cold is None:
            return "-"
        text = f"cold {cold['median_ms']:.1f} ms (CPU time {cold['cpu_ms']:.0f} ms)"
        if warm is not None:
            text += f"; warm (slider) {warm['median_ms']:.1f} ms"
        return text

    # 1. GPU end-to-end edit
    if not cuda:
        status = NOT_HERE_GPU
    elif cold is None:
        status = "not measured (edit stages skipped, see notes)"
    elif partial:
        status = "not measured: no MediaPipe here, the cold edit lacks the landmark stage"
    else:
        status = _status(cold["median_ms"] <= 30.0)
    rows.append(
        {
            "target": "GPU end-to-end edit of a photo",
            "goal": "<= 30 ms",
            "measured": edit_value() if cuda else "-",
            "status": status,
        }
    )

    # 2. CPU edit of one face, 2 cores
    if cuda:
        value, status = "-", "not measured here (needs a CPU run)"
    elif cold is None:
        value, status = "-", "not measured (edit stages skipped, see notes)"
    else:
        value = edit_value() + f", {threads} torch threads"
        if not engine:
            status = "not measured here (the edit engine's render was not timed)"
        elif partial:
            status = "not measured: no MediaPipe, the cold edit lacks the landmark stage"
        else:
            status = _status(cold["median_ms"] <= 500.0)
            if threads != 2:
                status += f" (at {threads} threads, not 2)"
            load = env.get("load_average_1min")
            if load is not None and load > (env.get("cpu_cores") or 1):
                status += f"; machine loaded (load {load})"
    rows.append({"target": "CPU (2 cores) edit of one face", "goal": "<= 0.5 s", "measured": value, "status": status})

    # 3. Hardware limit: batched generator against the measured matmul roofline
    throughput = [
        r for r in (edit or {}).get("throughput", []) if r["model"].startswith("ganime-age") and r["batch"] > 1
    ]
    best = max(throughput, key=lambda r: r["% of matmul"], default=None)
    if best is None:
        value = "-"
    else:
        value = (
            f"{best['% of matmul']:.1f}% ({best['TFLOP/s']:.3g} TFLOP/s, {best['faces/s']:.0f} faces/s, "
            f"{best['variant']}, batch {best['batch']}, {best['size']} px, {best['GFLOP/face']:.1f} GFLOP/face)"
        )
    if cuda:
        status = _status(best["% of matmul"] >= 50.0) if best else "not measured"
    else:
        status = NOT_HERE_GPU + (" (CPU figure shown for information)" if best else "")
    rows.append(
        {
            "target": "Batched generator vs measured matmul roofline",
            "goal": ">= 50% (GPU)",
            "measured": value,
            "status": status,
        }
    )

    # 4. Training: project recipe vs plain
    ratio = (train or {}).get("ratio_project_vs_plain", math.nan)
    results = {r["recipe"]: r for r in (train or {}).get("results", [])}
    if train is None or not math.isfinite(ratio):
        value, status = "-", "not measured"
    else:
        value = f"{ratio:.2f}x ({results['project']['images/s']:.3g} vs {results['plain']['images/s']:.3g} images/s)"
        extra = [f"{name} {r['vs plain']:.2f}x" for name, r in results.items() if name not in ("plain", "project")]
        if extra:
            value += "; " + ", ".join(extra)
        status = _status(ratio >= 3.0) if cuda else NOT_HERE_GPU + " (CPU figure shown for information)"
    rows.append(
        {"target": "Training: project recipe vs plain (images/s)", "goal": ">= 3x", "measured": value, "status": status}
    )

    if smoke:
        for row in rows:
            row["status"] = "smoke run (tiny sizes, one iteration): not a measurement"
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads in both parts")
    parser.add_argument(
        "--json-dir", default=None, help="where edit.json, train.json, summary.json go (default runs/benchmarks/<time>)"
    )
    parser.add_argument(
        "--data", default=None, help="prepared dataset for the training part (default: synthetic batches)"
    )
    parser.add_argument("--skip-edit", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--edit-args", default="", help="extra arguments for bench_edit.py, one string")
    parser.add_argument("--train-args", default="", help="extra arguments for bench_train.py, one string")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for both parts: on a shared, oversubscribed CPU OpenMP's spin-waiting "
        "threads otherwise steal the cores the work needs (measured 6x slower here)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one iteration (CI)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.json_dir or REPO / "runs" / "benchmarks" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    common_args: list[str] = []
    if args.device:
        common_args += ["--device", args.device]
    if args.threads:
        common_args += ["--threads", str(args.threads)]
    if args.smoke:
        common_args.append("--smoke")
    codes = {}
    if not args.skip_edit:
        codes["edit"] = run_part(
            "bench_edit.py", common_args + args.edit_args.split(), out / "edit.json", omp_passive=args.omp_passive
        )
    if not args.skip_train:
        extra = args.train_args.split() + (["--data", args.data] if args.data else [])
        codes["train"] = run_part(
            "bench_train.py", common_args + extra, out / "train.json", omp_passive=args.omp_passive
        )
    edit = None if args.skip_edit else _load(out / "edit.json")
    train = None if args.skip_train else _load(out / "train.json")
    rows = summarise(edit, train, args.smoke)
    env = (edit or train or {}).get("environment", {})
    print("\n## Summary: targets of issue 10\n")
    print(f"Machine: {describe(env)}; JSON in {out}\n" if env else f"JSON in {out}\n")
    print(markdown_table(rows, SUMMARY_COLUMNS))
    failed = [name for name, code in codes.items() if code != 0]
    if failed:
        print(f"\nparts that failed: {', '.join(failed)} (see their output above)")
    write_json(out / "summary.json", {"environment": env, "targets": rows, "exit_codes": codes})
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
