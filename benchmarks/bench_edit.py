"""How fast an edit is: per-stage latency of FaceEditor.edit and generator throughput of every model.

Runs on CPU or GPU in one call, prints Markdown tables and writes JSON:

    python benchmarks/bench_edit.py --json runs/bench_edit.json            # full run
    python benchmarks/bench_edit.py --smoke                                 # CI smoke test (tiny, 1 iteration)

Stages (on a real photo, space/examples/astronaut.jpg): load + decode, detect (YuNet), landmarks +
AUs (MediaPipe), align, generator, paste-back, and the whole edit with a cold photo (everything) and a
warm one (analysis cached, as when a slider moves), also on a 12 MP version of the photo. Without
MediaPipe (the GPU machine) the landmark stage is skipped, said so, and the edits run without it.

Generator throughput (faces/s) at batch 1 and batched, at 128 and 256 px, for every model: the
shipped folders under src/ganime_age/weights/, the untrained default GANimation-age while none is
shipped, and freshly initialised AgeTransGAN, ReAgingGAN and reenactment generators (labelled so;
for speed the weights do not matter). Variants: fp32 eager under no_grad (the plain baseline), fp32
under inference_mode, channels_last, bf16/fp16 autocast and torch.compile. FLOPs per face are
counted from the layers the forward runs (printed per module for the default model) and the
achieved TFLOP/s is compared with the measured dense matmul rate of the device (the roofline).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    REPO,
    count_flops,
    cpu_has_amx,
    describe,
    environment,
    flops_by_module,
    markdown_table,
    matmul_tflops,
    time_call,
    write_json,
)
from ganime_age.editing import WEIGHTS_DIR, FaceEditor, pick_device
from ganime_age.hub import load_pretrained

AGEING = ("ganime_age", "agetransgan", "ragan")
PHOTO = REPO / "space" / "examples" / "astronaut.jpg"
LARGE_PHOTO = (4000, 3000)  # a 12 MP phone photo: shows what per-call work scales with the photo size
GPU_VARIANTS = [
    "fp32+no_grad",
    "fp32",
    "fp32+channels_last",
    "bf16",
    "fp16",
    "bf16+channels_last",
    "fp16+channels_last",
    "bf16+channels_last+compile",
]
CPU_VARIANTS = ["fp32+no_grad", "fp32", "fp32+channels_last", "bf16", "bf16+channels_last"]
SHORT_VARIANTS = {"cuda": ["fp32", "bf16+channels_last"], "cpu": ["fp32", "bf16+channels_last"]}
STAGE_COLUMNS = ["stage", "median_ms", "min_ms", "cpu_ms"]
ABLATION_COLUMNS = ["change", "median_ms", "min_ms", "cpu_ms", "GFLOP/face", "max abs diff"]
THROUGHPUT_COLUMNS = [
    "model",
    "weights",
    "size",
    "batch",
    "variant",
    "ms/batch",
    "faces/s",
    "GFLOP/face",
    "TFLOP/s",
    "% of matmul",
]


def mediapipe_missing() -> str | None:
    """Why the landmark stage cannot run here, or None when it can."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except ImportError:
        spec = None
    if spec is None:
        return "mediapipe is not installed here: landmark stage skipped, edits run on YuNet points with zero AUs"
    from ganime_age.assets import resolve_asset
    from ganime_age.errors import ModelFileNotFoundError

    try:
        resolve_asset("face_landmarker", download=False)
    except ModelFileNotFoundError:
        return "face_landmarker.task not found (set GANIME_AGE_ASSETS): landmark stage skipped"
    return None


def detector_missing() -> str | None:
    from ganime_age.assets import resolve_asset
    from ganime_age.errors import ModelFileNotFoundError

    try:
        resolve_asset("yunet", download=False)
    except ModelFileNotFoundError:
        return "YuNet face_detection_yunet_2023mar.onnx not found (set GANIME_AGE_ASSETS): edit stages skipped"
    return None


class DetectionOnlyAnalyzer:
    """FaceAnalyzer's results without MediaPipe (YuNet + alignment, zero AUs and pose), for machines without it."""

    def __init__(self, size: int) -> None:
        from ganime_age.faces import FaceDetector

        self.detector = FaceDetector()
        self.landmarker = None
        self.size = size

    def analyze(self, rgb: Any, *, landmarks: bool = True) -> list[Any]:
        from ganime_age.errors import NoFaceError
        from ganime_age.faces import FaceAnalysis, align_face, load_image

        image = load_image(rgb)
        detections = self.detector.detect(image)
        if not detections:
            raise NoFaceError("no face found")
        return [
            FaceAnalysis(
                i, d, None, np.zeros(17, np.float32), np.zeros(3, np.float32), align_face(image, d.points, self.size)
            )
            for i, d in enumerate(detections)
        ]


def stage_latency(
    editor: FaceEditor, photo: Path, repeats: int, *, large: bool = True
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each stage of one edit timed on its own, then the whole edit with a cold and a warm photo."""
    from ganime_age.faces import align_face, load_image, paste_back

    notes: list[str] = []
    missing = detector_missing()
    if missing:
        return [], [missing]
    no_landmarks = mediapipe_missing()
    if no_landmarks:  # the edit engine moves landmarks: without MediaPipe there is no edit to time
        notes.append(no_landmarks)
        editor._analyzer = DetectionOnlyAnalyzer(editor.image_size)
    device, cpu = editor.device, torch.device("cpu")
    analyzer = editor.analyzer
    rgb = load_image(photo)
    face = analyzer.detector.detect(rgb)[0]
    aligned = align_face(rgb, face.points, editor.image_size)
    crop = aligned.image
    aus = np.zeros(17, np.float32)
    rows = [
        {"stage": "load + decode JPEG", **time_call(lambda: load_image(photo), cpu, repeats=repeats)},
        {"stage": "detect (YuNet)", **time_call(lambda: analyzer.detector.detect(rgb), cpu, repeats=repeats)},
    ]
    if not no_landmarks:
        rows.append(
            {
                "stage": "landmarks + AUs (MediaPipe)",
                **time_call(lambda: analyzer.landmarker.analyze(rgb, face), cpu, repeats=repeats),
            }
        )
    rows += [
        {
            "stage": "align",
            **time_call(lambda: align_face(rgb, face.points, editor.image_size), cpu, repeats=repeats),
        },
        {"stage": "paste back", **time_call(lambda: paste_back(rgb, crop, aligned.matrix), cpu, repeats=repeats)},
    ]
    if no_landmarks:
        return rows, notes
    session = editor.session(rgb)
    prepared = session.engine_face(session.faces[0])
    rows.append(
        {
            "stage": "engine render (1 face, age 30 -> 70)",
            **time_call(
                lambda: editor.engine.edit_photo(rgb, [prepared], [30.0], [70.0], [aus], [aus]), cpu, repeats=repeats
            ),
        }
    )
    suffix = ""

    def cold(image: np.ndarray = rgb) -> None:
        editor.sessions.clear()
        editor.edit(image, age=70.0, aus=aus, face=0)

    def warm(image: np.ndarray = rgb) -> None:
        editor.edit(image, age=70.0, aus=aus, face=0)

    height, width = rgb.shape[:2]
    rows.append(
        {"stage": f"edit, cold photo {width}x{height}{suffix}", **time_call(cold, device, warmup=1, repeats=repeats)}
    )
    rows.append(
        {"stage": f"edit, warm photo {width}x{height} (slider move)", **time_call(warm, device, repeats=repeats)}
    )
    if device.type == "cuda" or cpu_has_amx():  # EditorConfig(precision="bf16"): the same edit, bf16 generator
        config = dataclasses.replace(editor.config, precision="bf16")
        fast = FaceEditor(
            editor.model,
            age_estimator=editor.age_estimator,
            second_age_estimator=editor.second_age_estimator,
            analyzer=analyzer,
            config=config,
        )
        fast.edit(rgb, age=70.0, aus=aus, face=0)  # analyse once: the timed calls are slider moves
        fast_warm = time_call(lambda: fast.edit(rgb, age=70.0, aus=aus, face=0), device, repeats=repeats)
        rows.append({"stage": f"edit, warm photo {width}x{height} (slider move), precision bf16", **fast_warm})
    if large:
        import cv2

        big = cv2.resize(rgb, LARGE_PHOTO, interpolation=cv2.INTER_CUBIC)
        big_warm = time_call(lambda: warm(big), device, warmup=1, repeats=repeats)
        rows.append({"stage": f"edit, warm photo {LARGE_PHOTO[0]}x{LARGE_PHOTO[1]} (slider move)", **big_warm})
    editor.sessions.clear()
    return rows, notes


# -- generator throughput -----------------------------------------------------------------------------------


def fresh_generator() -> Any:
    """The full-size GANimation-age generator, seeded: the refiner's architecture (speed does not need weights)."""
    from ganime_age.models.ganimation_age import GanimationAge

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return GanimationAge().eval()


def candidate_models(smoke: bool) -> list[tuple[str, str, Any]]:
    """(name, weights label, model) for every model to measure; see the module docstring."""
    if smoke:
        from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig

        tiny = GanimationAgeConfig(image_size=64, conv_dim=8, num_residual_blocks=1, age_embedding_dim=16)
        return [("ganime-age (tiny)", "fresh init", GanimationAge(tiny).eval())]
    models: list[tuple[str, str, Any]] = []
    shipped_types = set()
    shipped_configs = [*WEIGHTS_DIR.glob("*/config.json"), *WEIGHTS_DIR.glob("refiners/*/config.json")]
    for config in sorted(shipped_configs):
        try:
            model = load_pretrained(config.parent)
        except Exception as error:  # a folder that is not a model of ours (age estimator is fine to skip too)
            print(f"skipping {config.parent.name}: {error}")
            continue
        if model.model_type in (*AGEING, "reenactor"):
            models.append((config.parent.name, "shipped", model.eval()))
            shipped_types.add(model.model_type)
    if "ganime_age" not in shipped_types:  # the refiner architecture, fresh (where no GANimation-age ships)
        from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig

        models.append(
            ("ganime-age refiner", "fresh init (not shipped)", GanimationAge(GanimationAgeConfig(refiner=True)).eval())
        )
    fresh: list[tuple[str, str, str]] = [
        ("agetransgan", "ganime_age.models.agetransgan", "AgeTransGAN"),
        ("ragan", "ganime_age.models.ragan", "ReAgingGAN"),
        ("reenactor", "ganime_age.models.reenact", "Reenactor"),
    ]
    for model_type, module, name in fresh:
        if model_type in shipped_types:
            continue
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            models.append((name, "fresh init (not shipped)", cls().eval()))
    return models


def resized(model: Any, size: int) -> tuple[Any, str | None]:
    """The same architecture at `size` px, with the model's weights when they fit (else fresh: speed is the same)."""
    if int(model.config.image_size) == size:
        return model, None
    net = type(model)(dataclasses.replace(model.config, image_size=size)).eval()
    try:
        net.load_state_dict(model.state_dict())
    except RuntimeError:
        return net, "fresh init at this size"
    return net, None


class Runner(torch.nn.Module):
    """One generator call as forward(images): edit_faces for ageing models, forward for the reenactor.

    Lets the FLOP counter and torch.compile see every model through the same plain interface.
    """

    def __init__(self, model: Any, batch: int, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.reenactor = getattr(model, "model_type", "") == "reenactor"
        size = int(model.config.image_size)
        generator = torch.Generator().manual_seed(0)
        self.source_age = torch.full((batch,), 30.0, device=device)
        self.target_age = torch.full((batch,), 70.0, device=device)
        self.aus = (torch.rand(batch, 17, generator=generator) * 2).to(device)
        # plausible landmark sets for the reenactor: points spread over the face area, slightly moved
        points = torch.rand(batch, 478, 2, generator=generator) * 0.6 * size + 0.2 * size
        self.source_points = points.to(device)
        self.target_points = (points + torch.randn(batch, 478, 2, generator=generator)).to(device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.reenactor:
            return self.model(images, self.source_points, self.target_points).image
        return self.model.edit_faces(
            images,
            source_age=self.source_age,
            target_age=self.target_age,
            source_aus=self.aus,
            target_aus=self.aus,
        ).image


def generator_throughput(
    name: str,
    weights: str,
    model: Any,
    device: torch.device,
    sizes: list[int],
    batches: list[int],
    variants: list[str],
    repeats: int,
    roofline: dict[str, float],
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    rows: list[dict[str, Any]] = []
    breakdown: dict[str, dict[str, int]] = {}
    for size in sizes:
        try:
            net, note = resized(model, size)
        except ValueError as error:  # e.g. a size the architecture does not support
            print(f"{name}: {size} px skipped ({error})")
            continue
        net = net.to(device)
        label = f"{weights}, {note}" if note else weights
        flops_per_face: float | None = None
        for batch in batches:
            runner = Runner(net, batch, device)
            images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
            if flops_per_face is None:
                flops_per_face = count_flops(runner, images) / batch
                if getattr(net, "model_type", "") == "ganime_age" and size == sizes[0]:
                    breakdown[f"{name} @ {size} px"] = {
                        k: v // batch for k, v in flops_by_module(runner.model, *_inputs(runner, images)).items()
                    }
            for variant in variants:
                if "compile" in variant and size != sizes[0]:
                    continue  # compiling costs about a minute per shape: done at the first size only
                row = _run_variant(runner, images, variant, device, repeats)
                if row is None:
                    continue
                faces_per_s = batch / (row["median_ms"] / 1000.0)
                achieved = flops_per_face * faces_per_s / 1e12
                peak = roofline["fp32" if variant.startswith("fp32") else "bf16"]
                rows.append(
                    {
                        "model": name,
                        "weights": label,
                        "size": size,
                        "batch": batch,
                        "variant": variant,
                        "ms/batch": row["median_ms"],
                        "cpu_ms": row["cpu_ms"],
                        "faces/s": faces_per_s,
                        "GFLOP/face": flops_per_face / 1e9,
                        "TFLOP/s": achieved,
                        "% of matmul": 100.0 * achieved / peak,
                    }
                )
            net.to(memory_format=torch.contiguous_format)
    return rows, breakdown


def _inputs(runner: Runner, images: torch.Tensor) -> tuple[Any, ...]:
    if runner.reenactor:
        return images, runner.source_points, runner.target_points
    return images, runner.aus, runner.target_age


def _run_variant(
    runner: Runner, images: torch.Tensor, variant: str, device: torch.device, repeats: int
) -> dict[str, float] | None:
    parts = set(variant.split("+"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(variant.split("+")[0])
    if dtype is torch.float16 and device.type == "cpu":
        return None
    layout = torch.channels_last if "channels_last" in parts else torch.contiguous_format
    runner.model.to(memory_format=layout)
    module: Any = runner
    if "compile" in parts:
        torch._dynamo.reset()
        module = torch.compile(runner)
    x = images.contiguous(memory_format=layout)
    grad_mode = torch.no_grad if "no_grad" in parts else torch.inference_mode

    def run() -> None:
        autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with grad_mode(), autocast:
            module(x)

    try:
        return time_call(run, device, warmup=3 if "compile" in parts else 1, repeats=repeats)
    except Exception as error:  # e.g. torch.compile without a working compiler on this machine
        print(f"{variant} failed here: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        return None


# -- what moved the generator's numbers ----------------------------------------------------------------------


class ReferenceGenerator(torch.nn.Module):
    """GANimation-age computed the way it was first written, for the before/after rows.

    The condition vector is concatenated over every pixel and convolved (145 extra input channels for
    the first 7x7 conv) instead of the generator's folded computation. Same weights, same maths.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, aus: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        m = self.model
        n, _, h, w = image.shape
        cond = m.condition(aus.reshape(n, -1), age.reshape(n)).to(image.dtype)
        x = torch.cat([image, cond[:, :, None, None].expand(n, cond.shape[1], h, w)], dim=1)
        features = m.decoder(m.bottleneck(m.encoder(x)))
        attention = m.attention_head(features)
        return attention * image + (1.0 - attention) * m.color_head(features)


def ablation(model: Any, device: torch.device, repeats: int, photo: Path, smoke: bool) -> list[dict[str, Any]]:
    """The default generator at batch 1 before and after each change, plus the photo cache key's cost."""
    import hashlib

    from ganime_age.faces import load_image

    model = model.to(device).eval()
    size = int(model.config.image_size)
    generator = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, size, size, generator=generator) * 2 - 1).to(device)
    aus = (torch.rand(1, 17, generator=generator) * 3).to(device)
    age = torch.tensor([70.0], device=device)
    before = ReferenceGenerator(model)
    steps: list[tuple[str, Any, str, torch.dtype | None]] = [
        ("before: condition concatenated over the pixels", before, "fp32", None),
        ("now: folded condition conv", model, "fp32", None),
        ("now + channels_last", model, "fp32+channels_last", None),
        ("now + bf16 autocast", model, "bf16", torch.bfloat16),
        ("now + bf16 autocast + channels_last", model, "bf16+channels_last", torch.bfloat16),
        ("before + bf16 autocast + channels_last", before, "bf16+channels_last", torch.bfloat16),
    ]
    with torch.inference_mode():
        reference = before(image, aus, age).float()
    flops = {id(before): count_flops(before, image, aus, age), id(model): count_flops(model, image, aus, age)}
    rows = []
    for label, net, variant, dtype in steps:
        layout = torch.channels_last if "channels_last" in variant else torch.contiguous_format
        net = net.to(device).to(memory_format=layout)
        x = image.contiguous(memory_format=layout)

        def run(net: Any = net, x: torch.Tensor = x, dtype: torch.dtype | None = dtype) -> torch.Tensor:
            autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with torch.inference_mode(), autocast:
                out = net(x, aus, age)
                return out.image if hasattr(out, "image") else out

        timing = time_call(run, device, warmup=1, repeats=repeats)
        difference = float((run().float() - reference).abs().max())
        net.to(memory_format=torch.contiguous_format)
        gflop = flops.get(id(net), flops[id(model)]) / 1e9
        rows.append(
            {
                "change": f"generator {size} px, batch 1: {label}",
                "variant": variant,
                **timing,
                "GFLOP/face": gflop,
                "max abs diff": difference,
            }
        )
    rgb = load_image(photo)
    if not smoke:
        import cv2

        rgb = np.ascontiguousarray(cv2.resize(rgb, LARGE_PHOTO, interpolation=cv2.INTER_CUBIC))
    height, width = rgb.shape[:2]
    cpu = torch.device("cpu")
    old_key = time_call(lambda: hashlib.sha1(rgb.tobytes() + str(rgb.shape).encode()).hexdigest(), cpu, repeats=repeats)
    new_key = time_call(lambda: hashlib.sha1(rgb).hexdigest(), cpu, repeats=repeats)
    rows.append({"change": f"photo cache key {width}x{height}: before, sha1(rgb.tobytes())", "variant": "", **old_key})
    rows.append(
        {"change": f"photo cache key {width}x{height}: now, sha1 of the array's buffer", "variant": "", **new_key}
    )
    return rows


# -- command line ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=None, help="the batched size (default 64 on GPU, 4 on CPU)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 and --batch")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 10 GPU, 3 CPU)")
    parser.add_argument("--variants", nargs="+", default=None, help=" ".join(GPU_VARIANTS))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: leave as is)")
    parser.add_argument("--photo", default=str(PHOTO))
    parser.add_argument(
        "--model", default=None, help="editor model folder/Hub id for the stage part (default: embedded)"
    )
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-ablation", action="store_true", help="skip the before/after rows of the speed changes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one iteration (CI)")
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (64 if cuda else 4)
    batches = args.batches or sorted({1, batch})
    repeats = args.repeats or (10 if cuda else 3)
    sizes = args.sizes
    if args.smoke:
        batches, repeats, sizes = [1, 2], 1, [64]
    env = environment(device)
    roofline = {
        "fp32": matmul_tflops(device, torch.float32, repeats=2 if args.smoke else 10),
        "bf16": matmul_tflops(device, torch.bfloat16, repeats=2 if args.smoke else 10),
    }

    stages: list[dict[str, Any]] = []
    notes: list[str] = []
    if not args.skip_stages:
        # The editor exactly as the product builds it (no global backend flags set yet).
        editor = FaceEditor.from_pretrained(args.model, device=str(device))
        stages, notes = stage_latency(editor, Path(args.photo), repeats, large=not args.smoke)
        del editor

    changes: list[dict[str, Any]] = []
    if not args.skip_ablation:
        base = candidate_models(True)[0][2] if args.smoke else fresh_generator()
        changes = ablation(base, device, repeats, Path(args.photo), args.smoke)

    throughput: list[dict[str, Any]] = []
    breakdown: dict[str, dict[str, int]] = {}
    if not args.skip_throughput:
        if cuda:
            torch.backends.cudnn.benchmark = True  # the best this device does with fixed shapes
        for name, weights, model in candidate_models(args.smoke):
            default = getattr(model, "model_type", "") == "ganime_age"
            variants = args.variants or (
                (GPU_VARIANTS if cuda else CPU_VARIANTS) if default else SHORT_VARIANTS[device.type]
            )
            if args.smoke:
                variants = ["fp32"]
            rows, parts = generator_throughput(
                name, weights, model, device, sizes, batches, variants, repeats, roofline
            )
            throughput += rows
            breakdown.update(parts)

    print(f"## Edit latency: {describe(env)}\n")
    for note in notes:
        print(f"Note: {note}\n")
    if stages:
        print(markdown_table(stages, STAGE_COLUMNS))
    else:
        print("(edit stages not measured)")
    if changes:
        print("\n## What moved the numbers (before/after each speed change; max abs diff vs before, [-1, 1] scale)\n")
        print(markdown_table(changes, ABLATION_COLUMNS))
    print(
        f"\n## Generator throughput (measured matmul roofline: fp32 {roofline['fp32']:.3g}, "
        f"bf16 {roofline['bf16']:.3g} TFLOP/s)\n"
    )
    print(markdown_table(throughput, THROUGHPUT_COLUMNS))
    for label, parts in breakdown.items():
        total = sum(parts.values())
        print(f"\nFLOPs per face of {label}: {total / 1e9:.2f} GFLOP (convolutions and matrix products)\n")
        rows = [{"module": k, "GFLOP/face": v / 1e9, "share %": 100.0 * v / total} for k, v in parts.items()]
        print(markdown_table(rows, ["module", "GFLOP/face", "share %"]))
    _check_finite(stages, changes, throughput)
    write_json(
        args.json,
        {
            "environment": env,
            "roofline_tflops": roofline,
            "notes": notes,
            "stages": stages,
            "changes": changes,
            "throughput": throughput,
            "flops_breakdown": breakdown,
        },
    )
    return 0


def _check_finite(*tables: list[dict[str, Any]]) -> None:
    for row in [row for table in tables for row in table]:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise RuntimeError(f"non-finite {key} in {row}")


if __name__ == "__main__":
    raise SystemExit(main())
