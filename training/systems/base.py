"""The contract between the one trainer (`training/train.py`) and each trainable system.

A system contributes a config dataclass (model configs, loss weights, optimiser settings), builds
its networks and optimisers, and does one optimisation step per batch. The trainer owns
everything else: accelerate, data, mixed precision, checkpoints, resumption, logging, sample
grids on disk and the final export.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image, ImageDraw


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` in eval mode for a sample grid or a measurement, then back in the mode it was in (on an error too)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass
class TrainConfig:
    """Options every system shares (YAML section ``train``)."""

    system: str = "ganimation_age"
    data_dir: str = "data/utkface128"
    output_dir: str = "runs/ganimation_age"
    image_size: int = 128
    batch_size: int = 16
    max_steps: int = 100_000
    # wall-clock budget of this invocation in minutes (None = none): past it, the run checkpoints, exports
    # and stops; `--resume` continues (how a time-limited GPU lease trains in slices)
    max_minutes: float | None = None
    seed: int = 0
    num_workers: int = 2
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"; bf16 on GPUs
    channels_last: bool = True  # applied on CUDA only (uses_channels_last): CPU instance norm is slower in it
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    sample_every: int = 1000
    log_every: int = 50
    max_train_samples: int | None = None
    # more prepared datasets mixed into every epoch: mix_shares[i] of the draws come from mix_data_dirs[i],
    # the rest from data_dir (e.g. CFEE's coded expressions beside UTKFace's ages)
    mix_data_dirs: list[str] = field(default_factory=list)
    mix_shares: list[float] = field(default_factory=list)
    # warm start: model name -> Hub id or folder whose weights a fresh run starts from (a resumed run's
    # checkpoint wins), e.g. {generator: runs/ganimation_age/export}
    init_weights: dict[str, str] = field(default_factory=dict)
    tracker: str = "auto"  # "auto" (TensorBoard if installed, else JSONL) | "tensorboard" | "jsonl"
    export_dir: str | None = None  # where save_pretrained writes the shipped model at the end
    export_dtype: str = "float16"  # "float16" halves the shipped file (loading upcasts) | "float32"
    hflip: bool = True  # random horizontal flips of training faces
    compile: bool = False  # torch.compile the models a system lists in compile_targets()
    fused_optimizers: bool = True  # fused Adam kernels when training on CUDA (make_adam)
    sample_faces: int = 4  # rows of the sample grids (fixed faces from the test split)
    card_note: str | None = None  # a paragraph under the exported model card's description: what this checkpoint is

    def uses_channels_last(self, device: torch.device) -> bool:
        """channels_last pays on CUDA (tensor-core convs); on CPUs it made a training step 17% slower."""
        return self.channels_last and device.type == "cuda"


Batch = dict[str, torch.Tensor]
"""A training batch: ``image`` (N,3,S,S) in [-1,1]; ``age`` (N,) years; ``age_group`` (N,) long;
``aus`` (N,17) on 0..5; ``pose`` (N,3) yaw/pitch/roll degrees."""


class TrainingSystem(ABC):
    """One trainable system (GANimation-age, AgeTransGAN, RAGAN, reenactment, estimator, AIFD)."""

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any, train: TrainConfig, accelerator: Any) -> None:
        self.config = config
        self.train = train
        self.accelerator = accelerator
        self.models: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        # Helper networks (face recogniser, VGG, estimators): moved to the device, eval mode, no gradients;
        # not wrapped by accelerate (no DDP) and not checkpointed (they are loaded from fixed weights).
        self.frozen: dict[str, torch.nn.Module] = {}
        self._batch_source: Callable[[], Batch] | None = None
        # True when the trainer only loads a checkpoint to export it: build() may skip loss-only helpers.
        self.export_only = False

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    # -- optional hooks (the trainer calls them; the defaults suit most systems) ------------------
    @property
    def wants_partners(self) -> bool:
        """Whether batches should carry same-person partner photos (``PreparedFaces(partners=True)``)."""
        return False

    def state_objects(self) -> list[Any]:
        """Extra objects with state_dict()/load_state_dict() to checkpoint with the models (e.g. EMA weights)."""
        return []

    def compile_targets(self) -> list[str]:
        """Names in ``self.models`` that ``train.compile`` may torch.compile (exclude double-backward users)."""
        return list(self.models)

    def on_prepared(self) -> None:
        """Called once after ``accelerator.prepare`` replaced the entries of models/optimizers/schedulers."""
        return None

    def training_dataset(self, split: str, max_samples: int | None = None) -> Any | None:
        """The system's own data for `split` (e.g. the refiner's pairs), or None: ``train.data_dir``'s prepared faces.

        The dataset must accept the trainer's ``(index, flip)`` keys (see `training.data.prepared.PreparedFaces`).
        """
        return None

    def set_batch_source(self, fetch: Callable[[], Batch]) -> None:
        """The trainer hands over its endless data stream (its position is checkpointed)."""
        self._batch_source = fetch

    def next_batch(self) -> Batch:
        """Another training batch, for systems that use several per step (e.g. fresh batches per critic step)."""
        if self._batch_source is None:
            raise RuntimeError("next_batch() needs the trainer's data stream (set_batch_source)")
        return self._batch_source()

    def optimise(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One update: clear the gradients, backward through accelerate (loss scaling, DDP), step."""
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        optimizer.step()

    def unwrap(self, name: str) -> torch.nn.Module:
        """The bare module behind ``self.models[name]`` (no DDP / compile wrapper), e.g. for export."""
        return self.accelerator.unwrap_model(self.models[name])

    def check_image_sizes(self, **model_configs: Any) -> None:
        """Every model must work at the trainer's resolution; a mismatch would only fail deep inside a step."""
        wrong = {name: cfg.image_size for name, cfg in model_configs.items() if cfg.image_size != self.train.image_size}
        if wrong:
            listed = ", ".join(f"system.{name}.image_size ({size})" for name, size in wrong.items())
            raise ValueError(f"{listed} must equal train.image_size ({self.train.image_size})")

    @abstractmethod
    def build(self) -> None:
        """Create networks (into ``self.models``), optimisers and schedulers; the trainer prepares them."""

    @abstractmethod
    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One full optimisation step (e.g. critic steps then a generator step); returns scalar logs.

        Values may be floats or 0-d tensors: the trainer averages them over the logging interval and
        only then moves them to the CPU, so returning detached tensors avoids a device sync per step.
        The trainer steps ``self.schedulers`` once after each call.
        """

    @abstractmethod
    def sample_grid(self, batch: Batch) -> Image.Image:
        """A picture of what the model does now (inputs and edits), for the sample PNGs."""

    @abstractmethod
    def export(self, folder: Path, card: dict[str, Any]) -> None:
        """``save_pretrained`` the shipped model(s) into a Hub-layout folder with a model card."""


# -- helpers every system shares ------------------------------------------------------------------


def make_adam(
    params: Any, lr: float, betas: tuple[float, float], *, fused: bool = True, weight_decay: float = 0.0
) -> torch.optim.Adam:
    """Adam, with the fused CUDA kernel when asked for and CUDA is what the trainer runs on."""
    use_fused = bool(fused) and torch.cuda.is_available()
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=use_fused or None)


def linear_decay(optimizer: torch.optim.Optimizer, max_steps: int, decay_fraction: float) -> Any:
    """Constant learning rate, then linear decay to 0 over the last `decay_fraction` of `max_steps` (GANimation)."""
    decay_fraction = min(max(decay_fraction, 0.0), 1.0)
    decay_start = max_steps * (1.0 - decay_fraction)
    decay_steps = max(max_steps - decay_start, 1.0)

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] or (N, 1, H, W) masks in [0, 1] -> uint8 (N, H, W, 3)."""
    images = images.detach().float().cpu()
    masks = images.shape[1] == 1
    images = images.clamp(0, 1).repeat(1, 3, 1, 1) if masks else (images.clamp(-1, 1) + 1) / 2
    return (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def image_grid(columns: Sequence[tuple[str, torch.Tensor]], *, pad: int = 2, header: int = 14) -> Image.Image:
    """A labelled grid: one column per (label, batch) pair, one row per face.

    Batches are (N, 3, S, S) images in [-1, 1] or (N, 1, S, S) attention masks in [0, 1].
    """
    if not columns:
        raise ValueError("image_grid needs at least one column")
    tiles = [(label, to_uint8(batch)) for label, batch in columns]
    rows, size = tiles[0][1].shape[0], tiles[0][1].shape[1]
    width = len(tiles) * (size + pad) + pad
    height = header + rows * (size + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for col, (label, batch) in enumerate(tiles):
        x = pad + col * (size + pad)
        draw.text((x + 1, 1), label[: max(1, size // 6)], fill=(0, 0, 0))
        for row in range(min(rows, batch.shape[0])):
            canvas.paste(Image.fromarray(batch[row]), (x, header + pad + row * (size + pad)))
    return canvas


class AdversarialSystem(TrainingSystem):
    """Shared wiring of the systems that train one generator against one discriminator.

    It owns the two Adam optimisers with their linear decay, and an optional exponential moving
    average (EMA) of the generator, which is checkpointed, sampled and exported instead of the raw one.
    Subclasses call :meth:`setup_adversarial` (or :meth:`setup_from_config`) from ``build`` and
    :meth:`update_ema` after each generator update; their config has an ``ema_decay`` field (0 disables
    the EMA).
    """

    ema: torch.nn.Module | None = None

    def setup_adversarial(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        *,
        lr_generator: float,
        lr_discriminator: float,
        betas: tuple[float, float],
        lr_decay_fraction: float,
        ema_decay: float,
    ) -> None:
        import copy

        self.models["generator"] = generator
        self.models["discriminator"] = discriminator
        fused = getattr(self.train, "fused_optimizers", True)
        self.optimizers["generator"] = make_adam(generator.parameters(), lr_generator, betas, fused=fused)
        self.optimizers["discriminator"] = make_adam(discriminator.parameters(), lr_discriminator, betas, fused=fused)
        for name, optimizer in self.optimizers.items():
            self.schedulers[name] = linear_decay(optimizer, self.train.max_steps, lr_decay_fraction)
        self.ema = copy.deepcopy(generator).eval().requires_grad_(False) if ema_decay > 0 else None

    def setup_from_config(self, generator: torch.nn.Module, discriminator: torch.nn.Module) -> None:
        """:meth:`setup_adversarial` from the config's ``g_lr``, ``d_lr``, ``betas``, ``lr_decay_fraction``
        and ``ema_decay``, plus the frozen MobileFaceNet (``recognizer``) when ``lambda_id`` > 0."""
        c = self.config
        self.setup_adversarial(
            generator,
            discriminator,
            lr_generator=c.g_lr,
            lr_discriminator=c.d_lr,
            betas=tuple(c.betas),
            lr_decay_fraction=c.lr_decay_fraction,
            ema_decay=c.ema_decay,
        )
        if c.lambda_id > 0:
            from ganime_age.models.mobilefacenet import FaceRecognizer

            self.frozen["recognizer"] = FaceRecognizer(c.recognizer)

    def on_prepared(self) -> None:
        if self.ema is not None:
            self.ema.to(self.device)

    def state_objects(self) -> list[Any]:
        return [self.ema] if self.ema is not None else []

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema is None:
            return
        source = self.unwrap("generator")
        averaged = list(self.ema.parameters())
        torch._foreach_lerp_(
            averaged,
            [p.detach().to(a.dtype) for p, a in zip(source.parameters(), averaged, strict=True)],
            1.0 - self.config.ema_decay,
        )
        for ema_buffer, buffer in zip(self.ema.buffers(), source.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def shipped_generator(self) -> Any:
        """The EMA generator when there is one (smoother), else the trained one."""
        return self.ema if self.ema is not None else self.unwrap("generator")
