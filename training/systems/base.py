"""The contract between the one trainer (`training/train.py`) and each trainable system.

A system contributes a config dataclass (model configs, loss weights, optimiser settings), builds
its networks and optimisers, and does one optimisation step per batch. The trainer owns
everything else: accelerate, data, mixed precision, checkpoints, resumption, logging, sample
grids on disk and the final export.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image


@dataclass
class TrainConfig:
    """Options every system shares (YAML section ``train``)."""

    system: str = "ganimation_age"
    data_dir: str = "data/utkface128"
    output_dir: str = "runs/ganimation_age"
    image_size: int = 128
    batch_size: int = 16
    max_steps: int = 100_000
    seed: int = 0
    num_workers: int = 2
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"; bf16 on GPUs
    channels_last: bool = True
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    sample_every: int = 1000
    log_every: int = 50
    max_train_samples: int | None = None
    tracker: str = "auto"  # "auto" (TensorBoard if installed, else JSONL) | "tensorboard" | "jsonl"
    export_dir: str | None = None  # where save_pretrained writes the shipped model at the end


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

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @abstractmethod
    def build(self) -> None:
        """Create networks (into ``self.models``), optimisers and schedulers; the trainer prepares them."""

    @abstractmethod
    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One full optimisation step (e.g. critic steps then a generator step); returns scalar logs."""

    @abstractmethod
    def sample_grid(self, batch: Batch) -> Image.Image:
        """A picture of what the model does now (inputs and edits), for the sample PNGs."""

    @abstractmethod
    def export(self, folder: Path, card: dict[str, Any]) -> None:
        """``save_pretrained`` the shipped model(s) into a Hub-layout folder with a model card."""
