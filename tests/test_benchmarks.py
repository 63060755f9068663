"""The benchmark suite as a smoke test (tiny sizes, one iteration; no timing asserts), and the speed change it
measures: the generator's folded condition conv must compute exactly what GANimation's concatenation did."""

from __future__ import annotations

import json
import math
import mmap
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import face_tensor
from torch import nn

from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig, constant_input_conv

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
TINY = GanimationAgeConfig(image_size=64, conv_dim=8, num_residual_blocks=1, age_embedding_dim=16)


def _finite_numbers(row: dict[str, Any]) -> None:
    for key, value in row.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{key} is not finite in {row}"


def _table_header(output: str, heading: str) -> list[str]:
    """Column names of the first Markdown table after `heading`."""
    section = output.split(heading, 1)[1]
    header = next(line for line in section.splitlines() if line.startswith("| "))
    return [cell.strip() for cell in header.strip("|").split("|")]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One `run_all.py --smoke`: both benchmark scripts as subprocesses, JSON into a temporary folder."""
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ)  # conftest already points GANIME_AGE_ASSETS at the shared models
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--smoke", "--threads", "1", "--json-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, out


def test_edit_benchmark_tables_and_json(smoke_run: tuple[str, Path]) -> None:
    from benchmarks import bench_edit

    output, out = smoke_run
    assert _table_header(output, "## Edit latency") == bench_edit.STAGE_COLUMNS
    assert _table_header(output, "## What moved the numbers") == bench_edit.ABLATION_COLUMNS
    assert _table_header(output, "## Generator throughput") == bench_edit.THROUGHPUT_COLUMNS
    assert "FLOPs per face of" in output
    report = json.loads((out / "edit.json").read_text())
    stages = {row["stage"]: row for row in report["stages"]}
    names = " | ".join(stages)
    for stage in (
        "detect (YuNet)",
        "landmarks + AUs (MediaPipe)",
        "align",
        "engine render",
        "paste back",
        "cold",
        "warm",
    ):
        assert stage in names
    for row in report["stages"]:
        assert set(bench_edit.STAGE_COLUMNS) <= set(row)
        _finite_numbers(row)
        assert row["median_ms"] > 0
    assert report["throughput"], "no generator throughput rows"
    for row in report["throughput"]:
        assert set(bench_edit.THROUGHPUT_COLUMNS) <= set(row)
        _finite_numbers(row)
        assert row["faces/s"] > 0 and row["GFLOP/face"] > 0
    assert {row["batch"] for row in report["throughput"]} == {1, 2}
    changes = report["changes"]
    assert "before" in changes[0]["change"] and changes[0]["max abs diff"] == 0
    folded = changes[1]
    assert folded["GFLOP/face"] < changes[0]["GFLOP/face"] and folded["max abs diff"] < 1e-4
    for row in changes:
        _finite_numbers(row)
    assert report["roofline_tflops"]["fp32"] > 0 and report["roofline_tflops"]["bf16"] > 0
    breakdown = next(iter(report["flops_breakdown"].values()))
    assert "bottleneck" in breakdown and "(forward itself)" in breakdown


@pytest.mark.shared  # the real training step has the frozen MobileFaceNet of ../shared
def test_train_benchmark_runs_both_recipes(smoke_run: tuple[str, Path]) -> None:
    from benchmarks import bench_train

    output, out = smoke_run
    assert _table_header(output, "## Training throughput") == bench_train.COLUMNS
    report = json.loads((out / "train.json").read_text())
    results = {row["recipe"]: row for row in report["results"]}
    assert set(results) == {"plain", "project"}
    assert results["plain"]["adam"] == "single-tensor" and results["plain"]["precision"] == "fp32"
    assert report["identity_loss"] is True  # the real step, with the frozen MobileFaceNet
    for row in results.values():
        _finite_numbers(row)
        assert row["images/s"] > 0 and row["peak MB"] > 0
        assert set(row["losses"]) >= {"d_loss", "g_loss", "g_identity"}
    assert math.isfinite(report["ratio_project_vs_plain"])


def test_summary_is_printed_last_with_every_target(smoke_run: tuple[str, Path]) -> None:
    output, out = smoke_run
    summary = output.rsplit("## Summary", 1)[1]
    assert _table_header(output, "## Summary") == ["target", "goal", "measured", "status"]
    assert "## " not in summary  # nothing printed after the summary
    targets = json.loads((out / "summary.json").read_text())["targets"]
    assert [row["goal"] for row in targets] == ["<= 30 ms", "<= 0.5 s", ">= 50% (GPU)", ">= 3x"]
    assert all("smoke" in row["status"] for row in targets)


def test_summary_statuses_follow_the_device() -> None:
    """The pass/fail logic on made-up reports: GPU targets are not judged on a CPU, and thresholds apply."""
    from benchmarks import run_all

    def edit(device: str, cold_ms: float, percent: float, landmarks: bool = True) -> dict[str, Any]:
        suffix = "" if landmarks else " (no landmarks)"
        return {
            "environment": {"device": device, "cpu_threads": 2, "cpu_cores": 2},
            "stages": [
                {"stage": "engine render (1 face, age 30 -> 70)", "median_ms": 5.0, "cpu_ms": 5.0},
                {"stage": f"edit, cold photo 512x512{suffix}", "median_ms": cold_ms, "cpu_ms": cold_ms},
                {"stage": "edit, warm photo 512x512 (slider move)", "median_ms": 1.0, "cpu_ms": 1.0},
            ],
            "throughput": [
                {"model": "ganime-age (default)", "batch": 64, "size": 128, "variant": "bf16", "% of matmul": percent,
                 "TFLOP/s": 1.0, "faces/s": 10.0, "GFLOP/face": 19.5},
            ],
        }  # fmt: skip

    def train(ratio: float) -> dict[str, Any]:
        rows = [{"recipe": "plain", "images/s": 10.0, "vs plain": 1.0}]
        rows.append({"recipe": "project", "images/s": 10.0 * ratio, "vs plain": ratio})
        return {"ratio_project_vs_plain": ratio, "results": rows}

    gpu = run_all.summarise(edit("cuda", 25.0, 60.0), train(3.5), smoke=False)
    assert [row["status"] for row in gpu] == ["pass", "not measured here (needs a CPU run)", "pass", "pass"]
    gpu = run_all.summarise(edit("cuda", 45.0, 20.0), train(2.0), smoke=False)
    assert [row["status"] for row in gpu] == ["fail", "not measured here (needs a CPU run)", "fail", "fail"]
    partial = run_all.summarise(edit("cuda", 10.0, 60.0, landmarks=False), train(3.5), smoke=False)
    assert partial[0]["status"].startswith("not measured")
    cpu = run_all.summarise(edit("cpu", 400.0, 5.0), train(1.0), smoke=False)
    assert cpu[1]["status"] == "pass"
    assert all(row["status"].startswith(run_all.NOT_HERE_GPU) for row in (cpu[0], cpu[2], cpu[3]))
    assert run_all.summarise(edit("cpu", 900.0, 5.0), train(1.0), smoke=False)[1]["status"] == "fail"


# -- the speed changes compute exactly what they replace ----------------------------------------------------


def _reference(model: GanimationAge, image: torch.Tensor, aus: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
    """GANimation's formulation: the condition spread over every pixel and concatenated to the image."""
    n, _, h, w = image.shape
    cond = model.condition(aus, age)
    x = torch.cat([image, cond[:, :, None, None].expand(n, cond.shape[1], h, w)], dim=1)
    features = model.decoder(model.bottleneck(model.encoder(x)))
    attention = model.attention_head(features)
    return attention * image + (1 - attention) * model.color_head(features)


@pytest.mark.parametrize("kernel,padding", [(7, 3), (3, 1), (5, 0), (4, 2)])
def test_constant_input_conv_equals_the_convolution(kernel: int, padding: int) -> None:
    torch.manual_seed(0)
    weight = torch.randn(6, 5, kernel, kernel)
    values = torch.randn(3, 5)
    height, width = 11, 9
    expected = F.conv2d(values[:, :, None, None].expand(3, 5, height, width), weight, padding=padding)
    torch.testing.assert_close(constant_input_conv(weight, values, height, width, padding), expected)


def test_folded_generator_matches_ganimation_formulation_on_real_faces(utk_sample: list[Path]) -> None:
    torch.manual_seed(0)
    model = GanimationAge(TINY)
    image = face_tensor(utk_sample[:3], 64)
    aus = torch.rand(3, 17) * 5
    age = torch.tensor([4.0, 35.0, 88.0])
    out = model(image, aus, age).image
    expected = _reference(model, image, aus, age)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)
    names = [name for name, _ in model.named_parameters()]
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    expected_grads = torch.autograd.grad(expected.square().sum(), list(model.parameters()))
    for name, got, want in zip(names, grads, expected_grads, strict=True):
        error = float((got - want).abs().max() / want.abs().max().clamp_min(1e-8))
        assert error < 1e-4, f"gradient of {name} differs by {error:.2e} of its largest value"
    with torch.no_grad():
        channels_last = model.to(memory_format=torch.channels_last)
        laid_out = channels_last(image.contiguous(memory_format=torch.channels_last), aus, age).image
    torch.testing.assert_close(laid_out, expected.detach(), atol=2e-5, rtol=1e-4)
    assert np.isfinite(laid_out.numpy()).all()


def test_flop_counter_and_peak_memory_helpers() -> None:
    from benchmarks.common import PeakMemory, count_flops, flops_by_module

    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, torch.randn(1, 3, 16, 16)) == 2 * 16 * 16 * 8 * 3 * 9
    model = GanimationAge(TINY)
    inputs = (torch.rand(1, 3, 64, 64), torch.zeros(1, 17), torch.tensor([30.0]))
    parts = flops_by_module(model, *inputs)
    assert sum(parts.values()) == count_flops(model, *inputs)
    with PeakMemory(torch.device("cpu")) as memory:
        # 64 MiB of fresh pages, touched: an anonymous mapping of its own, as allocators (torch's, and after a full
        # test run even NumPy's malloc) may hand back memory an earlier test freed, which is resident already
        block = mmap.mmap(-1, 64 * 2**20)
        block.write(b"\x01" * len(block))
    assert memory.delta_mb > 48, memory.delta_mb
    block.close()


@pytest.mark.shared  # CFEE originals
def test_the_memory_benchmark_fits_a_line_per_request_kind(tmp_path: Path) -> None:
    """`bench_memory.py --smoke`: the age edit on a 1 and a 4 MP photo, each in its own process; the peak grows
    with the pixels and the fitted line lies on or above both rows (the Space's budget must not fall short)."""
    out = tmp_path / "memory.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_memory.py"), "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    small, large = sorted(report["rows"], key=lambda row: row["pixels"])
    assert large["pixels"] > 3 * small["pixels"] and large["peak_bytes"] > small["peak_bytes"] > 0
    line = report["lines"]["age"]
    for row in (small, large):
        assert line["bytes_per_pixel"] * row["pixels"] + line["fixed_mb"] * 1e6 >= row["peak_bytes"] - 1
