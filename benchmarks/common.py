"""Shared benchmark helpers: timing with warm-up and device sync, FLOP counting, memory, table/JSON output.

Timings report the median wall time (what a user waits) and the process CPU time of the same calls:
on a shared, loaded machine the wall time includes waiting for a core, while the CPU time does not,
so the two together say how much of a number is the code and how much is the machine.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device, *, warmup: int = 2, repeats: int = 5) -> dict[str, float]:
    """Median and min wall time (ms) of `fn` after warm-up, synchronising the device each time.

    ``cpu_ms`` is the median process CPU time (all threads) of the same calls: on a loaded machine it
    stays put while the wall time grows.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "cpu_ms": statistics.median(cpu),
        "repeats": len(times),
    }


def count_flops(model: nn.Module, *inputs: Any, **kwargs: Any) -> int:
    """FLOPs (2 per multiply-accumulate) of one forward, counted from the convolutions and matrix products it runs.

    Uses torch's FlopCounterMode, which sees every conv / transposed conv / matmul / linear the
    forward actually executes (also functional ones such as modulated or folded convs that
    forward hooks on ``nn.Conv2d`` would miss). Norms, activations and resampling are not counted:
    they are memory-bound and tiny next to the convolutions.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs, **kwargs)
    return int(counter.get_total_flops())


def flops_by_module(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """FLOPs of one forward per top-level submodule, largest first, plus the forward's own ops.

    Ops a forward runs itself (e.g. a conv computed functionally from a child's weight) are listed as
    ``(forward itself)``; a child called only through its sub-children (``encoder[1]``) still counts.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=64)
    with torch.no_grad(), counter:
        model(*inputs, **kwargs)
    counts = {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}
    total = counts.pop("Global", 0)
    rows: dict[str, int] = {}
    for name, flops in counts.items():
        parts = name.split(".")
        if len(parts) < 2 or (len(parts) > 2 and ".".join(parts[:-1]) in counts):
            continue  # the root, or a module whose parent is already counted
        rows[parts[1]] = rows.get(parts[1], 0) + flops
    own = total - sum(rows.values())
    if own > 0:
        rows["(forward itself)"] = own
    return dict(sorted(((k, v) for k, v in rows.items() if v), key=lambda item: -item[1]))


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192, repeats: int = 10) -> float:
    """Measured dense matmul rate: the practical roofline the generator is compared against."""
    if device.type != "cuda":
        size = min(size, 1024)
        repeats = min(repeats, 3)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    timing = time_call(lambda: a @ b, device, warmup=2, repeats=repeats)
    return 2 * size**3 / (timing["min_ms"] / 1000.0) / 1e12


# -- memory -----------------------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident memory of this process now (psutil), else its peak so far (resource)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0: /proc/self/clear_refs, value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _vm_hwm_mb() is not None
    except OSError:
        return False


def _vm_hwm_mb() -> float | None:
    """Peak RSS since the last reset (VmHWM), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak on a GPU; the process's peak RSS on the CPU.

    On Linux the kernel's peak-RSS counter is reset when the block starts (/proc/self/clear_refs), so
    each phase gets its own peak even after a bigger earlier phase, at no cost while it runs. Elsewhere
    a background thread samples the RSS every 50 ms (a sampler that wakes often would take CPU from
    the measured work on a small machine). ``peak_mb`` is the absolute peak, ``delta_mb`` the growth
    over the start of the block.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak_mb = math.nan
        self.delta_mb = math.nan
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_mb = 0.0
        self._kernel_peak = False

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        self._start_mb = rss_mb()
        self.peak_mb = self._start_mb
        self._kernel_peak = _reset_peak_rss()
        if not self._kernel_peak:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._kernel_peak:
            # the kernel's counters are synced lazily (per-thread RSS counting): the peak is at least what is
            # resident now (a full test run once read a 64 MiB block's peak as 0)
            self.peak_mb = max(self.peak_mb, _vm_hwm_mb() or math.nan, rss_mb())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak_mb = max(self.peak_mb, rss_mb())
        self.delta_mb = self.peak_mb - self._start_mb


# -- environment and output ---------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_amx() -> bool:
    """Intel AMX tiles: bf16 matrix units that make CPU bf16 autocast several times faster than fp32."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "device": str(device),
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "amx_bf16": cpu_has_amx(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def describe(env: dict[str, Any]) -> str:
    """One line for table headings: device, CPU, threads and load."""
    where = env.get("gpu") or env.get("cpu", "?")
    text = f"{env['device']} ({where}), torch {env['torch']}, {env['cpu_threads']} torch threads"
    if env.get("omp_wait_policy", "default") != "default":
        text += f", OMP_WAIT_POLICY={env['omp_wait_policy']}"
    if "load_average_1min" in env:
        text += f", load average {env['load_average_1min']} on {env['cpu_cores']} cores"
    return text


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if not math.isfinite(value):
                return "-"
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=str))


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with `count` intra-op threads (None: leave as is)."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_script(doc: str, run: Callable[[Any], dict[str, Any]], *, repeats: int, smoke: bool = False) -> None:
    """A benchmark script's command line: --threads, --repeats, --shared (and --smoke where it has one), then
    `run(args)`, its JSON written where --json says."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    if smoke:
        parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        write_json(args.json, result)
