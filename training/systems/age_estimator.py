"""AgeEstimator training: the mean-variance loss on aligned faces with their age labels.

One trainer step = one AdamW-style update on one batch (warm-up, then cosine decay). Light
augmentation (random shift/scale, the trainer's horizontal flips) keeps a small CNN from
memorising a small dataset in a few epochs. The export measures the MAE on the test split of the
same prepared dataset and writes it into the model card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ganime_age.conditions import AGE_GROUP_LABELS, NUM_AGE_GROUPS, age_to_group
from ganime_age.errors import GanimeAgeError
from ganime_age.models.age_estimator import AgeEstimator, AgeEstimatorConfig, expected_age, mean_variance_loss
from training.systems.base import Batch, TrainingSystem, evaluating, image_grid, make_adam


@dataclass
class AgeEstimatorTrainConfig:
    """YAML section ``system`` for ``train.system: age_estimator``."""

    model: AgeEstimatorConfig = field(default_factory=AgeEstimatorConfig)
    lr: float = 2e-3
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    min_lr_fraction: float = 0.02  # cosine decay ends at this fraction of `lr`
    shift: float = 0.06  # random translation, as a fraction of the image side
    scale: float = 0.08  # random zoom in [1 - scale, 1 + scale]
    eval_faces: int | None = None  # test-split faces for the MAE in the card (None: all of them)
    eval_batch_size: int = 128


def warmup_cosine(optimizer: torch.optim.Optimizer, max_steps: int, warmup: int, floor: float) -> Any:
    """Linear warm-up, then cosine decay to `floor`·lr at `max_steps`."""
    warmup = max(0, min(warmup, max_steps - 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def random_affine(
    images: torch.Tensor, shift: float, scale: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random shift and zoom (border pixels replicated), a cheap crop-style augmentation.

    Random numbers are drawn on the CPU (from `generator` if given, for repeatable evaluations).
    """
    if shift <= 0 and scale <= 0:
        return images
    n = images.shape[0]
    zoom = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * shift  # grid units span 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = offset
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(
        images.dtype
    )


@torch.no_grad()
def evaluate_estimator(
    model: AgeEstimator,
    data_dir: str | Path,
    *,
    split: str = "test",
    max_faces: int | None = None,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """MAE (years) of `model` on a prepared split, overall and per FFHQ-Aging group of the true age."""
    from training.data.prepared import PreparedFaces

    dataset = PreparedFaces(data_dir, split, image_size=model.config.image_size, max_samples=max_faces)
    errors, truths = [], []
    with evaluating(model):
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            images = torch.stack([item["image"] for item in items]).to(device)
            ages = torch.stack([item["age"] for item in items])
            predicted = model.predict(images).cpu()
            errors.append((predicted - ages).abs())
            truths.append(ages)
    error, truth = torch.cat(errors), torch.cat(truths)
    groups = torch.tensor([age_to_group(float(a)) for a in truth])
    per_group = {
        AGE_GROUP_LABELS[g]: round(float(error[groups == g].mean()), 2)
        for g in range(NUM_AGE_GROUPS)
        if (groups == g).any()
    }
    return {"split": split, "faces": len(dataset), "mae": float(error.mean()), "mae_per_group": per_group}


def evaluation_markdown(result: dict[str, Any]) -> str:
    groups = result["mae_per_group"]
    lines = [
        f"Mean absolute error on the **{result['split']} split** ({result['faces']} faces, not seen in training): "
        f"**MAE {result['mae']:.2f} years**.",
        "",
        "| true age group | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
        "| MAE (years) | " + " | ".join(f"{v:.1f}" for v in groups.values()) + " |",
    ]
    return "\n".join(lines)


class AgeEstimatorSystem(TrainingSystem):
    """Model ``estimator``; optimiser and scheduler of the same name."""

    name = "age_estimator"
    config_class = AgeEstimatorTrainConfig
    config: AgeEstimatorTrainConfig

    def build(self) -> None:
        c = self.config
        if c.model.image_size != self.train.image_size:
            raise ValueError(
                f"system.model.image_size ({c.model.image_size}) must equal train.image_size ({self.train.image_size})"
            )
        self.models["estimator"] = AgeEstimator(c.model)
        self.optimizers["estimator"] = make_adam(
            self.models["estimator"].parameters(),
            c.lr,
            (c.beta1, c.beta2),
            fused=self.train.fused_optimizers,
            weight_decay=c.weight_decay,
        )
        self.schedulers["estimator"] = warmup_cosine(
            self.optimizers["estimator"], self.train.max_steps, c.warmup_steps, c.min_lr_fraction
        )

    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        c = self.config
        estimator, optimizer = self.models["estimator"], self.optimizers["estimator"]
        images = random_affine(batch["image"], c.shift, c.scale)
        ages = batch["age"].float()
        with self.accelerator.autocast():
            logits = estimator(images)
            loss = mean_variance_loss(logits, ages, c.model.lambda_mean, c.model.lambda_variance)
        self.optimise(optimizer, loss.total)
        with torch.no_grad():
            mae = (expected_age(logits.detach()) - ages).abs().mean()
        return {
            "loss": loss.total.detach(),
            "loss_softmax": loss.softmax.detach(),
            "loss_mean": loss.mean.detach(),
            "loss_variance": loss.variance.detach(),
            "mae": mae,
        }

    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """The fixed faces with their true and estimated ages written under each."""
        with evaluating(self.unwrap("estimator")) as estimator:
            predicted = estimator.predict(batch["image"].float()).cpu()
        grid = image_grid([("faces", batch["image"].float())])
        size, pad, header = batch["image"].shape[-1], 2, 14
        canvas = Image.new("RGB", (grid.width + 90, grid.height), (255, 255, 255))
        canvas.paste(grid, (0, 0))
        draw = ImageDraw.Draw(canvas)
        for row, (truth, guess) in enumerate(zip(batch["age"].cpu().tolist(), predicted.tolist(), strict=True)):
            y = header + pad + row * (size + pad) + size // 2 - 6
            draw.text((grid.width + 4, y), f"{truth:.0f} -> {guess:.1f}", fill=(0, 0, 0))
        return canvas

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        c = self.config
        estimator = self.unwrap("estimator")
        card = {"model_name": "ganime-age age estimator", **card}
        if "evaluation" not in card:
            try:
                result = evaluate_estimator(
                    estimator,
                    self.train.data_dir,
                    max_faces=c.eval_faces,
                    batch_size=c.eval_batch_size,
                    device=self.device,
                )
            except (GanimeAgeError, OSError) as error:  # no test split: the export must still happen
                print(f"age estimator: no test-split evaluation ({error})")
            else:
                card["evaluation"] = evaluation_markdown(result)
                print(f"age estimator: MAE {result['mae']:.2f} years on {result['faces']} {result['split']} faces")
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        estimator.save_pretrained(folder, dtype=dtype, model_card_kwargs=card)
