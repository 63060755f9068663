"""Shared benchmark helpers: timing with warm-up and device sync, FLOP counting, table/JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device, *, warmup: int = 2, repeats: int = 5) -> dict[str, float]:
    """Median and min wall time (ms) of `fn` after warm-up, synchronising the device each time."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


def count_flops(model: nn.Module, *inputs: Any, **kwargs: Any) -> int:
    """Multiply-accumulate FLOPs (2 per MAC) of conv, transposed conv and linear layers in one forward."""
    total = 0

    def conv_hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            x = args[0]
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * x.numel() * module.out_channels // module.groups * kernel
        else:
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * output.numel() * module.in_features

    handles = []
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192, repeats: int = 10) -> float:
    """Measured dense matmul rate: the practical roofline the generator is compared against."""
    if device.type != "cuda":
        size = min(size, 1024)
        repeats = min(repeats, 3)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    timing = time_call(lambda: a @ b, device, warmup=2, repeats=repeats)
    return 2 * size**3 / (timing["min_ms"] / 1000.0) / 1e12


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "device": str(device),
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=str))
