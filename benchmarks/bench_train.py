"""How fast GANimation-age trains: the plain recipe next to the project's, in the same run.

    python benchmarks/bench_train.py --json runs/bench_train.json          # GPU: the shipped config (128 px, batch 25)
    python benchmarks/bench_train.py --device cpu --batch 4                 # CPU
    python benchmarks/bench_train.py --data data/utkface128                 # real prepared faces instead of random ones
    python benchmarks/bench_train.py --smoke                                # CI smoke test (tiny, one step)

What is timed is the real thing: ``training.systems.ganimation_age.GanimationAgeSystem.training_step``
(``critic_steps`` = 5 critic updates, each on its own batch, then one generator update, with the
identity loss through the frozen MobileFaceNet), set up the way ``training/train.py`` sets it up
(Accelerator, frozen helpers on the device, channels_last, compile, accelerate.prepare). Batches are
made once and kept on the device, so data loading is not part of the figure.

Recipes:

- ``plain``: fp32, eager, default memory format, unfused Adam (``foreach=False, fused=False``).
- ``project``: what train.py does with the config on this device: its mixed precision (bf16 in the
  shipped config; on a CPU only with AMX, as the config says), channels_last and fused Adam on CUDA,
  torch.compile if the config (or ``--compile``) enables it.
- ``project+compile`` (on CUDA by default): the project recipe with the generator compiled.
- ``project+bf16`` (on request): the project recipe with bf16 autocast whatever the device.

Reported per recipe: images/s (training faces consumed per second: critic_steps x batch per step),
steps/s, peak memory (CUDA allocator peak on a GPU; sampled process RSS on a CPU) and the speed-up
over ``plain``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import REPO, PeakMemory, cpu_has_amx, describe, environment, markdown_table, sync, write_json
from ganime_age.conditions import NUM_AUS, age_to_group

DEFAULT_CONFIG = REPO / "training" / "configs" / "ganimation_age.yaml"
TINY_CONFIG = REPO / "training" / "configs" / "ganimation_age_tiny.yaml"
SMOKE_OVERRIDES = [
    "system.generator.conv_dim=8",
    "system.generator.num_residual_blocks=1",
    "system.generator.age_embedding_dim=16",
    "system.discriminator.conv_dim=8",
]
COLUMNS = ["recipe", "precision", "channels_last", "adam", "compile", "images/s", "steps/s", "peak MB", "vs plain"]


@dataclasses.dataclass
class Recipe:
    name: str
    mixed_precision: str
    channels_last: bool
    fused_optimizers: bool
    compile: bool
    plain_adam: bool = False  # replace the system's Adam by foreach=False, fused=False


def recipes_for(names: list[str], train: Any, device: torch.device, force_compile: bool) -> list[Recipe]:
    cuda = device.type == "cuda"
    # the config's own advice: bf16 on GPUs, and on CPUs only with AMX (bf16 matmul units)
    project = Recipe(
        "project",
        train.mixed_precision if cuda or cpu_has_amx() else "no",
        train.uses_channels_last(device),
        train.fused_optimizers,
        train.compile or force_compile,
    )
    table = {
        "plain": Recipe("plain", "no", False, False, False, plain_adam=True),
        "project": project,
        "project+compile": dataclasses.replace(project, name="project+compile", compile=True),
        "project+bf16": dataclasses.replace(project, name="project+bf16", mixed_precision="bf16"),
    }
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(table)}")
    return [table[n] for n in names]


def synthetic_batches(count: int, batch: int, size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Batches with the prepared dataset's keys, shapes and value ranges (random faces, real-looking labels)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        age = torch.rand(batch, generator=generator) * 89 + 1
        groups = torch.tensor([age_to_group(a) for a in age.tolist()])
        out.append(
            {
                "image": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
                "age": age,
                "age_group": groups,
                "aus": torch.rand(batch, NUM_AUS, generator=generator) * 2,
                "pose": torch.randn(batch, 3, generator=generator) * 10,
                "landmarks": torch.rand(batch, 478, 2, generator=generator) * size,
            }
        )
    return out


def real_batches(data_dir: str, count: int, batch: int, size: int) -> list[dict[str, torch.Tensor]]:
    from torch.utils.data import default_collate

    from training.data.prepared import PreparedFaces

    dataset = PreparedFaces(data_dir, "train", image_size=size, max_samples=count * batch)
    if len(dataset) < batch:
        raise SystemExit(f"{data_dir} has {len(dataset)} training faces, fewer than one batch of {batch}")
    items = [dataset[i % len(dataset)] for i in range(count * batch)]
    return [default_collate(items[i * batch : (i + 1) * batch]) for i in range(count)]


def reset_accelerate() -> None:
    """A fresh Accelerator per recipe: accelerate keeps its state (mixed precision) in process-wide singletons."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def build_system(run: Any, recipe: Recipe, device: torch.device) -> tuple[Any, Any]:
    """The GANimation-age system prepared the way training/train.py's run_training prepares it."""
    from accelerate import Accelerator

    from training.systems.base import linear_decay

    reset_accelerate()
    train = dataclasses.replace(
        run.train,
        mixed_precision=recipe.mixed_precision,
        channels_last=recipe.channels_last,
        fused_optimizers=recipe.fused_optimizers,
        compile=recipe.compile,
    )
    accelerator = Accelerator(
        mixed_precision=train.mixed_precision, cpu=device.type == "cpu", step_scheduler_with_optimizer=False
    )
    torch.manual_seed(train.seed)
    system = run.system_cls(run.system, train, accelerator)
    system.build()
    if recipe.plain_adam:
        for name, optimizer in list(system.optimizers.items()):
            group = optimizer.param_groups[0]
            plain = torch.optim.Adam(
                [p for g in optimizer.param_groups for p in g["params"]],
                lr=group["lr"],
                betas=group["betas"],
                weight_decay=group["weight_decay"],
                foreach=False,
                fused=False,
            )
            system.optimizers[name] = plain
            system.schedulers[name] = linear_decay(plain, train.max_steps, run.system.lr_decay_fraction)
    # from here on as in training/train.py run_training
    for module in system.frozen.values():
        module.to(accelerator.device).eval().requires_grad_(False)
    if train.channels_last:  # the recipe decided (project: train.uses_channels_last)
        for module in [*system.models.values(), *system.frozen.values()]:
            module.to(memory_format=torch.channels_last)
    if train.compile:
        for name in system.compile_targets():
            system.models[name].compile()
    names = (list(system.models), list(system.optimizers), list(system.schedulers))
    objects = [*system.models.values(), *system.optimizers.values(), *system.schedulers.values()]
    prepared = list(accelerator.prepare(*objects))
    for keys, target in zip(names, (system.models, system.optimizers, system.schedulers), strict=True):
        for key in keys:
            target[key] = prepared.pop(0)
    system.on_prepared()
    for model in system.models.values():
        model.train()
    return system, accelerator


def measure(
    run: Any, recipe: Recipe, device: torch.device, batches: list[dict[str, torch.Tensor]], steps: int, warmup: int
) -> dict[str, Any]:
    system, accelerator = build_system(run, recipe, device)
    on_device = []
    for batch in batches:
        moved = {k: v.to(accelerator.device) for k, v in batch.items()}
        if recipe.channels_last:
            moved["image"] = moved["image"].contiguous(memory_format=torch.channels_last)  # as train.DataStream
        on_device.append(moved)
    taken = 0

    def next_batch() -> dict[str, torch.Tensor]:
        nonlocal taken
        taken += 1
        return on_device[(taken - 1) % len(on_device)]

    system.set_batch_source(next_batch)
    step_index = 0

    def one_step() -> dict[str, Any]:
        nonlocal step_index
        logs = system.training_step(next_batch(), step_index)
        for scheduler in system.schedulers.values():
            scheduler.step()
        step_index += 1
        return logs

    for _ in range(warmup):
        one_step()
    sync(accelerator.device)
    taken_before = taken
    with PeakMemory(accelerator.device) as memory:
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            logs = one_step()
        sync(accelerator.device)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - start_cpu
    values = {k: float(v) for k, v in logs.items()}
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    if bad:
        raise RuntimeError(f"{recipe.name}: non-finite losses {bad}")
    images = (taken - taken_before) * int(run.train.batch_size)
    optimizer = next(iter(system.optimizers.values()))
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    defaults = optimizer.defaults
    adam = "fused" if defaults.get("fused") else ("foreach" if defaults.get("foreach") else "single-tensor")
    if defaults.get("foreach") is None and not defaults.get("fused"):
        adam = "default (foreach on CUDA)" if device.type == "cuda" else "default (single-tensor on CPU)"
    result = {
        "recipe": recipe.name,
        "precision": recipe.mixed_precision if recipe.mixed_precision != "no" else "fp32",
        "channels_last": recipe.channels_last,
        "adam": adam,
        "compile": recipe.compile,
        "steps": steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "images/s": images / seconds,
        "steps/s": steps / seconds,
        "peak MB": memory.peak_mb,
        "peak delta MB": memory.delta_mb,
        "losses": values,
    }
    return result


def load_run(config: Path, overrides: list[str], batch: int | None, size: int | None) -> tuple[Any, list[str]]:
    """The run config with the benchmark's sizes; the identity loss switched off (and said so) without its weights."""
    from ganime_age.assets import resolve_asset
    from ganime_age.errors import ModelFileNotFoundError
    from training.train import load_run_config

    extra = list(overrides)
    if batch:
        extra.append(f"train.batch_size={batch}")
    if size:
        extra += [f"train.image_size={size}", f"system.generator.image_size={size}"]
        extra.append(f"system.discriminator.image_size={size}")
    run = load_run_config(config, extra)
    notes = []
    if run.system.lambda_identity > 0 or run.system.lambda_identity_features > 0:
        try:
            resolve_asset("mobilefacenet", run.system.recognizer_weights, download=False)
        except ModelFileNotFoundError:
            run.system.lambda_identity = 0.0
            run.system.lambda_identity_features = 0.0
            notes.append("MobileFaceNet weights not found (set GANIME_AGE_ASSETS): measured WITHOUT the identity loss")
    return run, notes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None)
    parser.add_argument("--config", default=None, help=f"training YAML (default {DEFAULT_CONFIG.relative_to(REPO)})")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's on GPU, 4 on CPU)")
    parser.add_argument("--image-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per recipe (default 20 GPU, 2 CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3 GPU, 1 CPU)")
    parser.add_argument("--recipes", nargs="+", default=None, help="plain project project+compile project+bf16")
    parser.add_argument(
        "--compile", action="store_true", help="compile in the project recipe even if the config does not"
    )
    parser.add_argument("--data", default=None, help="prepared dataset folder: real faces instead of random ones")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 64 px, batch 2, one step (CI)")
    parser.add_argument("--json", default=None)
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="config overrides, as for train.py")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ganime_age.editing import pick_device

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    config = Path(args.config) if args.config else (TINY_CONFIG if args.smoke else DEFAULT_CONFIG)
    overrides = list(args.overrides) + (SMOKE_OVERRIDES if args.smoke else [])
    batch = args.batch or (2 if args.smoke else (None if cuda else 4))
    run, notes = load_run(config, overrides, batch, args.image_size)
    steps = args.steps or (1 if args.smoke else (20 if cuda else 2))
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else (3 if cuda else 1))
    names = args.recipes or ["plain", "project"]
    if args.recipes is None and not args.smoke and cuda:
        names.append("project+compile")
    recipes = recipes_for(names, run.train, device, args.compile)
    size = run.train.image_size
    per_step = run.system.critic_steps
    count = max(per_step * 2, 2)
    if args.data:
        batches = real_batches(args.data, count, run.train.batch_size, size)
        source = f"real faces from {args.data}"
    else:
        batches = synthetic_batches(count, run.train.batch_size, size)
        source = "synthetic batches (random pixels, plausible labels)"

    env = environment(device)
    results = []
    for recipe in recipes:
        print(f"measuring {recipe.name} ...", flush=True)
        try:
            results.append(measure(run, recipe, device, batches, steps, warmup))
        except Exception as error:  # one failing recipe (e.g. compile without a compiler) must not hide the others
            message = f"{recipe.name} failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
            print(message)
            notes.append(message)
        gc.collect()  # the recipe's models and optimiser state go before the next one is built
        if cuda:
            torch.cuda.empty_cache()
    plain = next((r for r in results if r["recipe"] == "plain"), None)
    for row in results:
        row["vs plain"] = row["images/s"] / plain["images/s"] if plain else math.nan
    project = next((r for r in results if r["recipe"] == "project"), None)
    ratio = project["images/s"] / plain["images/s"] if project and plain else math.nan

    print(f"\n## Training throughput: GANimation-age, {describe(env)}\n")
    print(
        f"One step = {per_step} critic updates + 1 generator update, batch {run.train.batch_size}, {size} px, "
        f"{source}; {steps} timed steps after {warmup} warm-up.\n"
    )
    for note in notes:
        print(f"Note: {note}\n")
    print(markdown_table(results, COLUMNS))
    print(f"\nproject recipe / plain recipe: {ratio:.2f}x images/s")
    write_json(
        args.json,
        {
            "environment": env,
            "config": str(config),
            "overrides": overrides,
            "batch_size": run.train.batch_size,
            "image_size": size,
            "critic_steps": per_step,
            "identity_loss": run.system.lambda_identity > 0,
            "data": source,
            "steps": steps,
            "warmup": warmup,
            "notes": notes,
            "results": results,
            "ratio_project_vs_plain": ratio,
        },
    )
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
