"""The one trainer: an accelerate loop around any :class:`training.systems.base.TrainingSystem`.

    accelerate launch training/train.py --config training/configs/ganimation_age.yaml [key.path=value ...] [--resume]
    python training/train.py --config ... train.max_steps=10 system.lambda_identity=0
    python training/train.py --config ... --export-only      # export the newest checkpoint

The same code runs on one CPU, one GPU or several GPUs. The YAML holds two sections: ``train``
(:class:`TrainConfig`, shared by every system) and ``system`` (the chosen system's config dataclass).
The trainer owns data (an endless, resumable stream over a prepared dataset), mixed precision,
checkpoints (atomic, newest K kept, resumable mid-epoch), logging, sample grids and the export.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from ganime_age.config import apply_overrides, from_dict, load_yaml, to_dict
from ganime_age.errors import GanimeAgeError
from training.systems import system_class
from training.systems.base import Batch, TrainConfig, TrainingSystem
from training.systems.trackers import build_trackers, flatten_config, read_log

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{7,})$")
CHECKPOINT_INFO = "trainer.json"  # written last into a checkpoint, before the atomic rename


class TrainingError(GanimeAgeError):
    """A training run cannot start or continue as asked (e.g. existing checkpoints without --resume)."""


# -- configuration -------------------------------------------------------------------------------------


@dataclass
class RunConfig:
    """A parsed run: the shared options, the system class and its config."""

    train: TrainConfig
    system_cls: type[TrainingSystem]
    system: Any

    def to_dict(self) -> dict[str, Any]:
        return {"train": to_dict(self.train), "system": to_dict(self.system)}


def load_run_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """YAML (sections ``train`` and ``system``) + ``key.path=value`` overrides -> strict dataclasses."""
    raw = load_yaml(path) if path else {}
    raw = apply_overrides(raw, overrides)
    unknown = sorted(set(raw) - {"train", "system"})
    if unknown:
        raise ValueError(f"unknown config section(s) {', '.join(unknown)}; a config has `train` and `system`")
    train_raw = dict(raw.get("train") or {})
    if train_raw.get("mixed_precision") is False:  # YAML reads a bare `no` (e.g. train.mixed_precision=no) as false
        train_raw["mixed_precision"] = "no"
    train = from_dict(TrainConfig, train_raw)
    choices = {
        "mixed_precision": ("no", "bf16", "fp16"),
        "export_dtype": ("float16", "float32"),
        "tracker": ("auto", "tensorboard", "jsonl"),
    }
    for key, allowed in choices.items():
        if getattr(train, key) not in allowed:
            raise ValueError(f"train.{key} must be one of {', '.join(allowed)}, not {getattr(train, key)!r}")
    if train.batch_size < 1 or train.max_steps < 0:
        raise ValueError("train.batch_size must be positive and train.max_steps not negative")
    cls = system_class(train.system)
    system = from_dict(cls.config_class, raw.get("system") or {})
    return RunConfig(train, cls, system)


# -- data ----------------------------------------------------------------------------------------------


class EpochSampler(Sampler):
    """A shuffled order that depends only on (seed, epoch): the same on every process and after a resume.

    With ``flips`` it also decides each face's horizontal flip, from the same per-epoch generator, and
    yields ``(index, flip)`` keys that `PreparedFaces` understands. Drawing flips here rather than in the
    dataset keeps them off the global torch RNG, so a resumed run flips the same faces and draws the same
    random targets as an uninterrupted one.

    With ``partners`` keys gain a third number, the draw that picks the face's same-person partner
    (`PreparedFaces` with ``partners``), so that pairs too are the same after a resume.

    It also reseeds `loader_generator` (the DataLoader's own generator, from which each epoch's worker
    seeds are drawn) per epoch, so starting an iterator never consumes the global torch RNG either.

    With ``shares`` (one per part of a `MixedFaces`, summing to 1) an epoch is ``length`` draws of which
    part k gets ``round(share_k * length)``, each part walked in its own shuffled order (repeated when it
    is smaller than its share): how a small expression set (CFEE) is mixed into a large age set.
    """

    def __init__(
        self,
        length: int,
        seed: int,
        flips: bool = False,
        sizes: Sequence[int] = (),
        shares: Sequence[float] = (),
        partners: bool = False,
    ) -> None:
        if len(sizes) != len(shares):
            raise TrainingError("one mix share per dataset part is needed")
        if shares and (min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6):
            raise TrainingError(f"dataset mix shares must be >= 0 and sum to 1, got {list(shares)}")
        self.length = length
        self.seed = seed
        self.flips = flips
        self.partners = partners
        self.sizes = list(sizes)
        self.shares = list(shares)
        self.epoch = 0
        self.loader_generator = torch.Generator().manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader_generator.manual_seed(self.seed * 1_000_003 + epoch + 7919)

    def __iter__(self) -> Iterator[int | tuple[int, bool] | tuple[int, bool, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = (
            self._mixed_order(generator) if len(self.sizes) > 1 else torch.randperm(self.length, generator=generator)
        )
        order = order.tolist()
        if not (self.flips or self.partners):
            return iter(order)
        count = len(order)
        flips = (torch.rand(count, generator=generator) < 0.5).tolist() if self.flips else [False] * count
        if not self.partners:
            return iter(zip(order, flips, strict=True))
        draws = torch.randint(1 << 30, (count,), generator=generator).tolist()
        return iter(zip(order, flips, draws, strict=True))

    def _mixed_order(self, generator: torch.Generator) -> torch.Tensor:
        draws, offset = [], 0
        for size, share in zip(self.sizes, self.shares, strict=True):
            count = round(share * self.length)
            repeats = -(-count // size)
            walk = torch.cat([torch.randperm(size, generator=generator) for _ in range(repeats)])[:count]
            draws.append(walk + offset)
            offset += size
        pool = torch.cat(draws)
        return pool[torch.randperm(len(pool), generator=generator)]

    def __len__(self) -> int:
        return sum(round(share * self.length) for share in self.shares) if len(self.sizes) > 1 else self.length


class DataPosition:
    """Where the stream is: epoch and batches already taken from it (checkpointed with the models)."""

    def __init__(self) -> None:
        self.epoch = 0
        self.batches = 0  # batches taken in the current epoch
        self.total = 0  # batches taken since the start of training

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.batches, "total": self.total}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batches, self.total = int(state["epoch"]), int(state["batches"]), int(state["total"])


class DataStream:
    """Endless batches from a prepared DataLoader; resumes exactly at the checkpointed position."""

    def __init__(
        self, accelerator: Any, loader: Any, sampler: EpochSampler, position: DataPosition, channels_last: bool
    ) -> None:
        self.accelerator = accelerator
        self.loader = loader
        self.sampler = sampler
        self.position = position
        self.channels_last = channels_last
        self._iterator: Iterator[Batch] | None = None

    def _start_epoch(self) -> None:
        self.sampler.set_epoch(self.position.epoch)
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(self.position.epoch)  # accelerate re-applies its own epoch counter on iter()
        loader = self.loader
        if self.position.batches:
            loader = self.accelerator.skip_first_batches(self.loader, self.position.batches)
        self._iterator = iter(loader)

    def __call__(self) -> Batch:
        return next(self)

    def __iter__(self) -> DataStream:
        return self

    def __next__(self) -> Batch:
        for _ in range(2):
            if self._iterator is None:
                self._start_epoch()
            try:
                batch = next(self._iterator)  # type: ignore[arg-type]
                break
            except StopIteration:
                self.position.epoch += 1
                self.position.batches = 0
                self._iterator = None
        else:
            raise TrainingError("the training split yields no batch: fewer faces than train.batch_size?")
        self.position.batches += 1
        self.position.total += 1
        if self.channels_last and batch["image"].ndim == 4:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        return batch


def build_loader(train: TrainConfig, partners: bool = False, dataset: Any = None) -> tuple[DataLoader, EpochSampler]:
    """The training stream; `partners` adds same-person partner photos (for a system's paired loss).

    `dataset`: a system's own training data (`TrainingSystem.training_dataset`) instead of the prepared faces.
    """
    from training.data.prepared import MixedFaces, PreparedFaces

    if len(train.mix_data_dirs) != len(train.mix_shares):
        raise TrainingError("train.mix_data_dirs and train.mix_shares need one entry each")
    if dataset is not None and train.mix_data_dirs:
        raise TrainingError(f"system {train.system} reads its own data: train.mix_data_dirs cannot be mixed in")
    # flips are drawn by the sampler (resumable), not by the dataset's own random draw
    if dataset is None:
        dataset = PreparedFaces(
            train.data_dir, "train", image_size=train.image_size, max_samples=train.max_train_samples, partners=partners
        )
    if len(dataset) < train.batch_size:
        raise TrainingError(
            f"{train.data_dir} has {len(dataset)} training faces, fewer than train.batch_size={train.batch_size}"
        )
    sizes: list[int] = []
    shares: list[float] = []
    if train.mix_data_dirs:
        parts = [dataset] + [
            PreparedFaces(path, "train", image_size=train.image_size, partners=partners) for path in train.mix_data_dirs
        ]
        dataset = MixedFaces(parts)
        sizes, shares = dataset.sizes, [1.0 - sum(train.mix_shares), *train.mix_shares]
    sampler = EpochSampler(len(dataset), train.seed, flips=train.hflip, sizes=sizes, shares=shares, partners=partners)
    workers = max(0, train.num_workers)
    loader = DataLoader(
        dataset,
        batch_size=train.batch_size,
        sampler=sampler,
        generator=sampler.loader_generator,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers > 0 else None,
    )
    return loader, sampler


def sample_batch(train: TrainConfig, device: torch.device, system: TrainingSystem | None = None) -> Batch:
    """The fixed faces of the sample grids: the first of the test split (else of the training split)."""
    from torch.utils.data import default_collate

    from training.data.prepared import PreparedFaces

    def read(split: str) -> Any:
        own = system.training_dataset(split, train.sample_faces) if system is not None else None
        if own is not None:
            return own
        return PreparedFaces(train.data_dir, split, image_size=train.image_size, max_samples=train.sample_faces)

    try:
        dataset = read("test")
    except GanimeAgeError:
        dataset = read("train")
    batch = default_collate([dataset[i] for i in range(len(dataset))])
    return {k: v.to(device) for k, v in batch.items()}


# -- checkpoints --------------------------------------------------------------------------------------


class TrainerState:
    """Step counter and bookkeeping, checkpointed with the models (accelerate also saves the RNG states)."""

    def __init__(self) -> None:
        self.step = 0
        self.train_seconds = 0.0
        self.images = 0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "train_seconds": self.train_seconds, "images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        self.images = int(state["images"])


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first (an interrupted save is a hidden .tmp folder, never listed)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir() and (path / CHECKPOINT_INFO).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def newest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def read_checkpoint_step(path: str | Path) -> int:
    return int(json.loads((Path(path) / CHECKPOINT_INFO).read_text(encoding="utf-8"))["step"])


def _fsync_tree(folder: Path) -> None:
    """Flush a checkpoint's files to disk before the rename publishes it (survives power loss too)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    """Delete a folder so that a kill halfway never leaves a partial folder under a checkpoint's name."""
    trash = path.with_name(f".del-{path.name}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clean_checkpoint_leftovers(output_dir: str | Path) -> None:
    """Remove the hidden folders of interrupted saves and deletions."""
    root = checkpoint_root(output_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith((".tmp-", ".del-")):
                shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(accelerator: Any, output_dir: str | Path, state: TrainerState, keep: int) -> Path:
    """accelerator.save_state into a hidden folder, then one atomic rename; prune to the newest `keep`."""
    root = checkpoint_root(output_dir)
    name = f"step-{state.step:07d}"
    final, tmp = root / name, root / f".tmp-{name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        info = {
            "step": state.step,
            "images": state.images,
            "train_seconds": round(state.train_seconds, 3),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        if final.exists():
            _remove_tree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(output_dir)[: -max(1, keep)]:
            _remove_tree(old)
    accelerator.wait_for_everyone()
    return final


# -- the run ----------------------------------------------------------------------------------------------


class StopRequests:
    """Why the loop should stop early: the time budget ran out, or SIGTERM/SIGINT arrived.

    A signal only sets a flag, so the step in flight finishes and a checkpoint is written before the
    process ends (a scheduler's or a lease's SIGTERM loses nothing). Every process must stop at the
    same step, so the decision is reduced over processes. Handlers are restored on exit.
    """

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self, max_minutes: float | None) -> None:
        self.deadline = None if max_minutes is None else time.monotonic() + max_minutes * 60.0
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _on_signal(self, number: int, frame: Any) -> None:
        self.signal_name = signal.Signals(number).name

    def reason(self, accelerator: Any) -> str | None:
        """None to go on; else why to stop, agreed by every process."""
        timed_out = self.deadline is not None and time.monotonic() > self.deadline
        local = 2 if self.signal_name else int(timed_out)
        if accelerator.num_processes > 1:
            flag = torch.tensor([local], device=accelerator.device)
            local = int(accelerator.reduce(flag, reduction="max").item())
        if local == 2:
            return self.signal_name or "a signal on another process"
        return "time budget" if local == 1 else None


def hardware_description(accelerator: Any) -> str:
    if accelerator.device.type == "cuda":
        name = torch.cuda.get_device_name(accelerator.device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        name += f"{torch.get_num_threads()} torch threads)"
    return f"{accelerator.num_processes} x {name}, mixed precision {accelerator.mixed_precision}"


def describe_dataset(data_dir: Path, image_size: int) -> tuple[str, str | None, str | None]:
    """(what the card says the model saw, the source's Hub licence id, its licence note) from a prepared folder."""
    report: dict[str, Any] = {}
    report_path = data_dir / "prepare_report.json"
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            report = {}
    source = report.get("source")
    title, licence, note = source or "a prepared face dataset", None, None
    try:
        from training.data.sources import SOURCES

        if source in SOURCES:
            spec = SOURCES[source]
            title, licence = spec.title, spec.license
            note = f"These weights were trained on {spec.title}. {spec.license_note}"
    except ImportError:
        pass
    rows = report.get("rows", {}).get("train")
    faces = f"{rows} " if rows else ""
    return f"{faces}aligned {image_size} px faces of {title} (prepared dataset `{data_dir.name}`)", licence, note


def model_card(run: RunConfig, state: TrainerState, accelerator: Any) -> dict[str, Any]:
    """model_card_kwargs for the export: data, steps, time, hardware, final losses, evaluation if present."""
    train = run.train
    card: dict[str, Any] = {"note": train.card_note} if train.card_note else {}
    described = [describe_dataset(Path(path), train.image_size) for path in [train.data_dir, *train.mix_data_dirs]]
    shares = [1.0 - sum(train.mix_shares), *train.mix_shares]
    card["trained_on"] = "; ".join(
        text + (f" ({share:.0%} of the draws)" if len(described) > 1 else "")
        for (text, _, _), share in zip(described, shares, strict=True)
    )
    licences = [(spec_licence, note) for _, spec_licence, note in described if note]
    if licences:
        card["license"] = licences[0][0] if len({lic for lic, _ in licences}) == 1 else "other"
        card["license_note"] = " ".join(note for _, note in licences)
    records = [r for r in read_log(train.output_dir) if "step" in r]
    last = records[-1] if records else {}
    bookkeeping = ("step", "time", "epoch", "steps_per_sec", "images_per_sec")
    losses = {
        k: v
        for k, v in last.items()
        if k not in bookkeeping and not k.startswith("lr_") and isinstance(v, (int, float))
    }
    hours = state.train_seconds / 3600
    lines = [
        f"- Trainer: `training/train.py`, system `{train.system}`",
        f"- Steps: {state.step} (batch {train.batch_size} per process, {state.images} images seen)",
        f"- Training time: {hours:.2f} h on {hardware_description(accelerator)}",
    ]
    if losses:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(losses.items()))
        lines.append(f"- Last logged losses (step {last.get('step')}): {shown}")
    if "steps_per_sec" in last:
        lines.append(f"- Speed: {last['steps_per_sec']:.3g} steps/s, {last.get('images_per_sec', 0):.3g} images/s")
    lines.append("\nConfiguration:\n\n```yaml\n" + _yaml(run.to_dict()) + "```")
    card["training"] = "\n".join(lines)
    evaluation = Path(train.output_dir) / "evaluation.md"
    if evaluation.is_file():
        card["evaluation"] = evaluation.read_text(encoding="utf-8")
    return card


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def export(system: TrainingSystem, run: RunConfig, state: TrainerState, accelerator: Any) -> Path:
    folder = Path(run.train.export_dir or Path(run.train.output_dir) / "export")
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "README.md").unlink(missing_ok=True)  # the Hub mixin never overwrites a card: drop the stale one
        system.export(folder, model_card(run, state, accelerator))
        print(f"exported to {folder}")
    accelerator.wait_for_everyone()
    return folder


class Averager:
    """Sums of the step logs between two log lines; moved to the CPU (one sync) only when logged."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1

    def pop(self, accelerator: Any) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        stacked = torch.stack([self.sums[k].to(accelerator.device).reshape(()) for k in keys]) / max(self.count, 1)
        stacked = accelerator.reduce(stacked, reduction="mean") if accelerator.num_processes > 1 else stacked
        self.sums, self.count = {}, 0
        return dict(zip(keys, stacked.cpu().tolist(), strict=True))


def warm_start(system: TrainingSystem, init_weights: dict[str, str]) -> None:
    """Load each named model's weights from a saved model (strictly: same class, same tensor shapes)."""
    from ganime_age.hub import load_pretrained

    for name, source in init_weights.items():
        if name not in system.models:
            raise TrainingError(
                f"train.init_weights names {name!r}; this system's models are {', '.join(system.models)}"
            )
        loaded = load_pretrained(source)
        model = system.models[name]
        if type(loaded) is not type(model):
            raise TrainingError(
                f"train.init_weights.{name}: {source} holds a {type(loaded).__name__}, not a {type(model).__name__}"
            )
        try:
            model.load_state_dict(loaded.state_dict())
        except RuntimeError as error:
            raise TrainingError(f"train.init_weights.{name}: {source} does not fit this config: {error}") from None


def keep_configured_learning_rates(
    system: TrainingSystem, configured: dict[str, list[float]], report: Callable[[str], Any]
) -> None:
    """After a resume, the config's learning rates (not the checkpoint's) at the schedule's current factor.

    A checkpoint stores its optimisers' rates, so without this a rate changed on the command line for the
    rest of a run would be silently ignored.
    """
    for name, scheduler in system.schedulers.items():
        inner = getattr(scheduler, "scheduler", scheduler)  # accelerate wraps schedulers
        for group, base in zip(inner.optimizer.param_groups, configured[name], strict=True):
            factor = group["lr"] / group["initial_lr"] if group.get("initial_lr") else 1.0
            if group.get("initial_lr") not in (None, base):
                report(f"{name} learning rate: {group['initial_lr']:g} in the checkpoint, {base:g} from the config")
            group["initial_lr"] = base
            group["lr"] = base * factor
        inner.base_lrs = list(configured[name])


def run_training(run: RunConfig, *, resume: bool = False, export_only: bool = False) -> dict[str, Any]:
    """Train (or only export) as configured; returns a summary (steps, resumed_from, export folder)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    train = run.train
    output = Path(train.output_dir)
    try:
        trackers = build_trackers(train.tracker, output)
    except ValueError as error:
        raise TrainingError(str(error)) from error
    accelerator = Accelerator(
        mixed_precision=train.mixed_precision,
        log_with=trackers,
        project_dir=str(output),
        step_scheduler_with_optimizer=False,  # max_steps counts optimiser steps whatever the number of GPUs
    )
    set_seed(train.seed, device_specific=True)
    existing = newest_checkpoint(output)
    if existing is not None and not (resume or export_only):
        raise TrainingError(
            f"{output} already holds checkpoints (newest {existing.name}); pass --resume to "
            "continue, or choose another train.output_dir"
        )
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        clean_checkpoint_leftovers(output)
        (output / "config.yaml").write_text(_yaml(run.to_dict()), encoding="utf-8")
    accelerator.wait_for_everyone()

    system = run.system_cls(run.system, train, accelerator)
    system.export_only = export_only
    try:
        system.build()
    except ValueError as error:  # inconsistent sizes or options in the config: a user mistake, not a crash
        raise TrainingError(f"system {train.system}: {error}") from error
    if not export_only:
        warm_start(system, train.init_weights)
    for module in system.frozen.values():
        module.to(accelerator.device).eval().requires_grad_(False)
    channels_last = train.uses_channels_last(accelerator.device)
    if channels_last:
        for module in [*system.models.values(), *system.frozen.values()]:
            module.to(memory_format=torch.channels_last)
    if train.compile:
        for name in system.compile_targets():
            system.models[name].compile()  # in place: state_dict keys (and so checkpoints) stay unchanged

    state, position = TrainerState(), DataPosition()
    model_names, opt_names, sched_names = list(system.models), list(system.optimizers), list(system.schedulers)
    objects = [*system.models.values(), *system.optimizers.values(), *system.schedulers.values()]
    loader = sampler = None
    if not export_only:
        own = system.training_dataset("train", train.max_train_samples)
        loader, sampler = build_loader(train, partners=system.wants_partners, dataset=own)
        objects.append(loader)
    prepared = accelerator.prepare(*objects) if len(objects) > 1 else [accelerator.prepare(*objects)]
    prepared = list(prepared)
    for names, target in (
        (model_names, system.models),
        (opt_names, system.optimizers),
        (sched_names, system.schedulers),
    ):
        for name in names:
            target[name] = prepared.pop(0)
    if loader is not None:
        loader = prepared.pop(0)
    system.on_prepared()
    accelerator.register_for_checkpointing(state, position, *system.state_objects())

    resumed_from = None
    if resume or export_only:
        checkpoint = newest_checkpoint(output)
        if checkpoint is not None:
            configured = {name: [g["lr"] for g in o.param_groups] for name, o in system.optimizers.items()}
            accelerator.load_state(str(checkpoint))
            keep_configured_learning_rates(system, configured, accelerator.print)
            resumed_from = state.step
            accelerator.print(f"resumed from {checkpoint} at step {state.step}")
        elif export_only:
            raise TrainingError(f"--export-only: no checkpoint in {checkpoint_root(output)}")
        else:
            accelerator.print(f"--resume: no checkpoint in {checkpoint_root(output)}; starting at step 0")
    if export_only:
        folder = export(system, run, state, accelerator)
        return {"step": state.step, "resumed_from": resumed_from, "export_dir": str(folder)}

    stream = DataStream(accelerator, loader, sampler, position, channels_last)  # type: ignore[arg-type]
    system.set_batch_source(stream)
    accelerator.init_trackers("tensorboard", config=flatten_config(run.to_dict()))
    samples = sample_batch(train, accelerator.device, system) if train.sample_every > 0 else None
    for model in system.models.values():
        model.train()

    averager = Averager()
    last_log_time, last_log_step, last_log_batches = time.perf_counter(), state.step, position.total
    batch_images = train.batch_size * accelerator.num_processes
    saved_step = state.step if resumed_from is not None else -1
    stopped: str | None = None
    folder: Path | None = None
    try:
        with StopRequests(train.max_minutes) as stop:
            while state.step < train.max_steps and stopped is None:
                started = time.perf_counter()
                batches_before = position.total
                logs = system.training_step(next(stream), state.step)
                for scheduler in system.schedulers.values():
                    scheduler.step()
                state.step += 1
                state.images += (position.total - batches_before) * batch_images
                averager.add(logs)
                state.train_seconds += time.perf_counter() - started

                if train.log_every > 0 and (state.step % train.log_every == 0 or state.step == train.max_steps):
                    values = averager.pop(accelerator)
                    now = time.perf_counter()
                    elapsed = max(now - last_log_time, 1e-9)
                    values["steps_per_sec"] = (state.step - last_log_step) / elapsed
                    values["images_per_sec"] = (position.total - last_log_batches) * batch_images / elapsed
                    values["epoch"] = position.epoch
                    for name, scheduler in system.schedulers.items():
                        values[f"lr_{name}"] = float(scheduler.get_last_lr()[0])
                    bad = [k for k, v in values.items() if not math.isfinite(v)]
                    accelerator.log(values, step=state.step)
                    if bad:
                        raise TrainingError(f"non-finite training values at step {state.step}: {', '.join(bad)}")
                    accelerator.print(
                        f"step {state.step}/{train.max_steps} "
                        + " ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()) if not k.startswith("lr_"))
                    )
                if samples is not None and state.step % train.sample_every == 0 and accelerator.is_main_process:
                    sample_dir = output / "samples"
                    sample_dir.mkdir(parents=True, exist_ok=True)
                    system.sample_grid(samples).save(sample_dir / f"step-{state.step:07d}.png")
                if train.checkpoint_every > 0 and state.step % train.checkpoint_every == 0:
                    save_checkpoint(accelerator, output, state, train.keep_checkpoints)
                    saved_step = state.step
                if train.log_every > 0 and state.step % train.log_every == 0:
                    last_log_time, last_log_step, last_log_batches = time.perf_counter(), state.step, position.total
                if state.step < train.max_steps:  # checked after the step: every invocation makes progress
                    stopped = stop.reason(accelerator)
        if saved_step != state.step:
            save_checkpoint(accelerator, output, state, train.keep_checkpoints)
        if stopped is None or stopped == "time budget":  # a signal asks to end soon: the checkpoint is enough
            folder = export(system, run, state, accelerator)
        if stopped is not None:
            accelerator.print(
                f"stopped at step {state.step}/{train.max_steps} ({stopped}); checkpoint saved, continue with --resume"
            )
    finally:
        accelerator.end_training()
    return {
        "step": state.step,
        "resumed_from": resumed_from,
        "export_dir": str(folder) if folder is not None else None,
        "stopped": stopped,
    }


# -- command line -----------------------------------------------------------------------------------------


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="train.py", description="Train a ganime-age system (GANimation-age, AgeTransGAN, ...) with accelerate."
    )
    parser.add_argument("--config", required=True, help="YAML with sections `train` and `system`")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="config overrides, e.g. train.batch_size=8 system.lambda_identity=0",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    parser.add_argument(
        "--export-only", action="store_true", help="only export the newest checkpoint (save_pretrained + model card)"
    )
    return parser


def run_cli(args: argparse.Namespace) -> int:
    try:
        run = load_run_config(args.config, args.overrides)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        summary = run_training(run, resume=args.resume, export_only=args.export_only)
    except GanimeAgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stopped = summary.get("stopped")
    if stopped in StopRequests.SIGNALS:  # interrupted (checkpoint saved): the shell's code for that signal
        return 128 + int(getattr(signal, stopped))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser().parse_intermixed_args(argv))


if __name__ == "__main__":
    sys.exit(main())
