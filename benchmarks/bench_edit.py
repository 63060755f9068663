"""How fast an edit is: per-stage latency of FaceEditor.edit and batched generator throughput.

Runs on CPU or GPU in one call, prints Markdown tables and writes JSON:

    python benchmarks/bench_edit.py --json runs/bench_edit.json            # full run
    python benchmarks/bench_edit.py --smoke                                 # CI smoke test (tiny, 1 iteration)

Stages: load, detect (YuNet), landmarks (MediaPipe), align, generator, paste-back, and the
end-to-end edit with a cold and a warm (cached analysis, as when a slider moves) photo. The
generator part compares fp32 / bf16 / fp16, channels_last and torch.compile at 128 and 256 px,
counts the generator's FLOPs per face and reports achieved TFLOP/s against the measured matmul rate.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import numpy as np
import torch
from common import count_flops, environment, markdown_table, matmul_tflops, time_call, write_json

from ganime_age.hub import load_pretrained
from ganime_age.pipeline import WEIGHTS_DIR, FaceEditor, default_ageing_model, pick_device

AGEING = ("ganime_age", "agetransgan", "ragan")


def example_photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def stage_latency(editor: FaceEditor, photo: np.ndarray, repeats: int) -> list[dict[str, Any]]:
    """Each stage of one edit, timed on its own, then the whole edit cold and warm."""
    from ganime_age.faces import align_face, load_image, paste_back

    device = editor.device
    analyzer = editor.analyzer
    rgb = load_image(photo)
    faces = analyzer.detector.detect(rgb)
    face = faces[0]
    aligned = align_face(rgb, face.points, editor.image_size)
    crop = aligned.image
    aus = np.zeros(17, np.float32)
    rows = [
        {"stage": "load image", **time_call(lambda: load_image(photo), torch.device("cpu"), repeats=repeats)},
        {
            "stage": "detect (YuNet)",
            **time_call(lambda: analyzer.detector.detect(rgb), torch.device("cpu"), repeats=repeats),
        },
        {
            "stage": "landmarks + AUs (MediaPipe)",
            **time_call(lambda: analyzer.landmarker.analyze(rgb, face), torch.device("cpu"), repeats=repeats),
        },
        {
            "stage": "align",
            **time_call(lambda: align_face(rgb, face.points, editor.image_size), torch.device("cpu"), repeats=repeats),
        },
        {
            "stage": "generator (1 face)",
            **time_call(lambda: editor._generate([crop], [30.0], [70.0], [aus], [aus]), device, repeats=repeats),
        },
        {
            "stage": "paste back",
            **time_call(lambda: paste_back(rgb, crop, aligned.matrix), torch.device("cpu"), repeats=repeats),
        },
    ]

    def cold() -> None:
        editor._cache.clear()
        editor.edit(rgb, age=70.0, aus=aus, face=0)

    rows.append({"stage": "edit, cold photo (all stages)", **time_call(cold, device, warmup=1, repeats=repeats)})
    rows.append(
        {
            "stage": "edit, warm photo (slider move)",
            **time_call(lambda: editor.edit(rgb, age=70.0, aus=aus, face=0), device, repeats=repeats),
        }
    )
    return rows


def shipped_models() -> list[tuple[str, Any]]:
    models: list[tuple[str, Any]] = []
    for folder in sorted(WEIGHTS_DIR.glob("*/config.json")) if WEIGHTS_DIR.is_dir() else []:
        model = load_pretrained(folder.parent)
        if model.model_type in AGEING:
            models.append((folder.parent.name, model))
    if not any(m.model_type == "ganime_age" for _, m in models):
        models.append(("ganime-age (untrained default)", default_ageing_model()))
    return models


def generator_throughput(
    name: str,
    model: Any,
    device: torch.device,
    sizes: list[int],
    batch: int,
    variants: list[str],
    repeats: int,
    roofline: dict[str, float],
) -> list[dict[str, Any]]:
    import dataclasses

    rows = []
    for size in sizes:
        net = type(model)(dataclasses.replace(model.config, image_size=size))
        net.load_state_dict(model.state_dict())
        net = net.to(device).eval()
        images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
        ages = torch.full((batch,), 70.0, device=device)
        aus = torch.zeros(batch, 17, device=device)
        flops = count_flops(_Wrapper(net, ages, aus), images) / batch
        for variant in variants:
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(variant.split("+")[0])
            if dtype is torch.float16 and device.type == "cpu":
                continue
            layout = torch.channels_last if "channels_last" in variant else torch.contiguous_format
            runner: Any = _Wrapper(net.to(memory_format=layout), ages, aus)
            if "compile" in variant:
                runner = torch.compile(runner)
            x = images.contiguous(memory_format=layout)
            autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

            def run(runner: Any = runner, x: torch.Tensor = x, autocast: Any = autocast) -> None:
                with torch.inference_mode(), autocast:
                    runner(x)

            timing = time_call(run, device, warmup=3 if "compile" in variant else 1, repeats=repeats)
            faces_per_s = batch / (timing["median_ms"] / 1000.0)
            achieved = flops * faces_per_s / 1e12
            peak = roofline["bf16" if dtype is not None else "fp32"]
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "batch": batch,
                    "variant": variant,
                    "ms/batch": timing["median_ms"],
                    "faces/s": faces_per_s,
                    "GFLOP/face": flops / 1e9,
                    "TFLOP/s": achieved,
                    "% of matmul": 100.0 * achieved / peak,
                }
            )
    return rows


class _Wrapper(torch.nn.Module):
    """Lets the FLOP counter and torch.compile see edit_faces as a plain forward(images)."""

    def __init__(self, model: Any, ages: torch.Tensor, aus: torch.Tensor) -> None:
        super().__init__()
        self.model, self.ages, self.aus = model, ages, aus

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.edit_faces(
            images, source_age=self.ages, target_age=self.ages, source_aus=self.aus, target_aus=self.aus
        ).image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=None, help="generator batch (default 64 on GPU, 8 on CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="fp32 bf16 fp16 fp32+channels_last bf16+channels_last bf16+channels_last+compile",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one iteration (CI)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    variants = args.variants or (
        ["fp32", "fp32+channels_last", "bf16", "fp16", "bf16+channels_last", "bf16+channels_last+compile"]
        if cuda
        else ["fp32", "fp32+channels_last", "bf16"]
    )
    batch = args.batch or (64 if cuda else 8)
    repeats = args.repeats
    sizes = args.sizes
    if args.smoke:
        variants, batch, repeats, sizes = ["fp32"], 1, 1, [64]
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    roofline = {
        "fp32": matmul_tflops(device, torch.float32, repeats=2 if args.smoke else 10),
        "bf16": matmul_tflops(device, torch.bfloat16, repeats=2 if args.smoke else 10),
    }
    editor = FaceEditor(default_ageing_model()) if args.smoke else FaceEditor.from_pretrained(device=str(device))
    photo = example_photo()
    stages = stage_latency(editor, photo, repeats)
    throughput: list[dict[str, Any]] = []
    for name, model in shipped_models():
        throughput += generator_throughput(name, model, device, sizes, batch, variants, repeats, roofline)

    print(f"## Edit latency ({environment(device)})\n")
    print(markdown_table(stages, ["stage", "median_ms", "min_ms"]))
    print(
        f"\n## Generator throughput (matmul roofline: fp32 {roofline['fp32']:.1f}, bf16 {roofline['bf16']:.1f} TFLOP/s)\n"
    )
    print(
        markdown_table(
            throughput,
            ["model", "size", "batch", "variant", "ms/batch", "faces/s", "GFLOP/face", "TFLOP/s", "% of matmul"],
        )
    )
    write_json(
        args.json,
        {"environment": environment(device), "roofline_tflops": roofline, "stages": stages, "throughput": throughput},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
