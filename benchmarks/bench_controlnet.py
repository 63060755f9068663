"""Throughput of the multi-pose augmentation's generator: SD1.5 + ControlNet images/s.

The UNet, ControlNet, VAE and CLIP text encoder are built from the real SD1.5 configs with RANDOM weights
(``training/multipose/random_pipeline.py``): the compute is that of the real checkpoints and nothing is
downloaded. Every variant runs the real ``StableDiffusionControlNetPipeline`` call (classifier-free guidance,
DDIM, VAE decode) at 512 px, 20 steps, batch 1 and 8:

    fp32 + classic attention | fp32 + SDPA | fp16 + classic attention | fp16 + SDPA
    | fp16 + SDPA + channels_last | fp16 + SDPA + channels_last + torch.compile

Run on a GPU machine in one call; prints a Markdown table and writes JSON:

    python benchmarks/bench_controlnet.py --json runs/bench_controlnet.json
    python benchmarks/bench_controlnet.py --smoke          # tiny random pipeline on CPU in seconds (CI)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import environment, markdown_table, time_call, write_json
from training.multipose.random_pipeline import build_random_pipeline

# name -> (dtype, attention, channels_last, compile)
VARIANTS: dict[str, tuple[torch.dtype, str, bool, bool]] = {
    "fp32": (torch.float32, "classic", False, False),
    "fp32+sdpa": (torch.float32, "sdpa", False, False),
    "fp16": (torch.float16, "classic", False, False),
    "fp16+sdpa": (torch.float16, "sdpa", False, False),
    "fp16+sdpa+channels_last": (torch.float16, "sdpa", True, False),
    "fp16+sdpa+channels_last+compile": (torch.float16, "sdpa", True, True),
}
COLUMNS = ("variant", "batch", "seconds_per_call", "images_per_s", "s_per_image", "first_call_s", "peak_gib")


def set_attention(pipe: Any, kind: str) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processor = AttnProcessor2_0() if kind == "sdpa" else AttnProcessor()
    for name in ("unet", "controlnet", "vae"):
        module = getattr(pipe, name)
        module = getattr(module, "_orig_mod", module)
        module.set_attn_processor(processor)


def configure(pipe: Any, dtype: torch.dtype, attention: str, channels_last: bool, compile_models: bool) -> Any:
    """Put the shared pipeline in one variant's state (weights are random: dtype round trips do not matter)."""
    for name in ("unet", "controlnet"):  # undo an earlier compile
        module = getattr(pipe, name)
        setattr(pipe, name, getattr(module, "_orig_mod", module))
    pipe.to(dtype=dtype)
    set_attention(pipe, attention)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    for name in ("unet", "controlnet", "vae"):
        getattr(pipe, name).to(memory_format=memory)
    if compile_models:
        for name in ("unet", "controlnet"):
            setattr(pipe, name, torch.compile(getattr(pipe, name), fullgraph=False))
    return pipe


def run_variant(pipe: Any, name: str, batch: int, resolution: int, steps: int, repeats: int) -> dict[str, Any]:
    from PIL import Image

    device = pipe.device
    rng = np.random.default_rng(0)
    control = Image.fromarray(rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8))

    def call() -> Any:
        generators = [torch.Generator(device=device).manual_seed(i) for i in range(batch)]
        return pipe(
            prompt=["a photo of the face of a 34 year old person"] * batch,
            negative_prompt=["blurry, low quality"] * batch,
            image=[control] * batch,
            num_inference_steps=steps,
            guidance_scale=7.5,
            height=resolution,
            width=resolution,
            generator=generators,
            output_type="np",
        )

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    call()  # first call: includes compilation / autotuning / allocator warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    first = time.perf_counter() - start
    timing = time_call(call, device, warmup=0, repeats=repeats)
    seconds = timing["median_ms"] / 1000.0
    row = {
        "variant": name,
        "batch": batch,
        "seconds_per_call": seconds,
        "images_per_s": batch / seconds,
        "s_per_image": seconds / batch,
        "first_call_s": first,
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan"),
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row (after one untimed call)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=None, help="default: all (GPU)")
    parser.add_argument("--smoke", action="store_true", help="tiny random pipeline, 64 px, 2 steps, CPU (CI)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # dtype casts of random weights warn about nothing useful

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = "full"
    if args.smoke:
        size, args.resolution, args.steps, args.batches, args.repeats = "tiny", 64, 2, [1], 1
    variants = args.variants or [v for v in VARIANTS if device.type == "cuda" or VARIANTS[v][0] == torch.float32]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows measure true fp32
        torch.backends.cudnn.benchmark = True

    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        pipe = build_random_pipeline(size, work, device=device).to(device)  # ~1.4 B parameters made on the device
        pipe.set_progress_bar_config(disable=True)
        build_s = time.perf_counter() - start
        parameters = {
            name: sum(p.numel() for p in getattr(pipe, name).parameters())
            for name in ("unet", "controlnet", "vae", "text_encoder")
        }
        rows = []
        for name in variants:
            dtype, attention, channels_last, compile_models = VARIANTS[name]
            configure(pipe, dtype, attention, channels_last, compile_models)
            for batch in args.batches:
                row = run_variant(pipe, name, batch, args.resolution, args.steps, args.repeats)
                rows.append(row)
                print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)

    title = (
        f"SD1.5 + ControlNet ({size}, random weights), {args.resolution} px, {args.steps} DDIM steps, "
        f"CFG 7.5, on {environment(device).get('gpu', device)}"
    )
    print(f"\n### {title}\n")
    print(markdown_table(rows, COLUMNS))
    write_json(
        args.json,
        {
            "title": title,
            "environment": environment(device),
            "size": size,
            "resolution": args.resolution,
            "steps": args.steps,
            "parameters": parameters,
            "build_seconds": build_s,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
