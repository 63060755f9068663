"""AgeEstimator: a compact residual CNN trained with the mean-variance loss (Pan et al., CVPR 2018).

The network classifies over the integer ages 0..100; the prediction is the expectation of that
distribution. The mean-variance loss adds to the cross-entropy a penalty on the distance between
the distribution's mean and the label (so the expectation, not only the mode, is right) and on the
distribution's variance (so it is sharp). It is small enough to train on a CPU at 64 px and is
used to relabel datasets and to score ageing models (the gates' second age reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.conditions import MAX_AGE
from ganime_age.config import bounded
from ganime_age.hub import HubModel
from ganime_age.models.common import (
    ReadingCalibration,
    check_reading_curve,
    holds_values,
    reading_curve_ages_field,
    reading_curve_field,
)


@dataclass
class AgeEstimatorConfig:
    """The estimator's architecture and loss weights; the image must also hold 2**stages pixels (checked when built)."""

    image_size: int = bounded(64, 8, 1024)
    base_channels: int = bounded(32, 1, 1024)
    channel_multipliers: tuple[int, ...] = bounded((1, 2, 4, 8), 1, 64, length=(1, 8))  # one stage each
    blocks_per_stage: int = bounded(1, 1, 64)
    num_ages: int = bounded(int(MAX_AGE) + 1, 2, 256)  # classes 0..100 years
    dropout: float = bounded(0.1, 0.0, 1.0)
    lambda_mean: float = bounded(0.2, 0.0, 100.0)
    lambda_variance: float = bounded(0.05, 0.0, 100.0)
    # mean reading of real faces at these true ages (UTKFace training split): calibrated_age inverts it
    reading_curve_ages: tuple[float, ...] = reading_curve_ages_field()
    reading_curve: tuple[float, ...] = reading_curve_field()

    def validate(self) -> None:
        check_reading_curve(self)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + BN) with a strided 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


def residual_backbone(base_channels: int, multipliers: tuple[int, ...], blocks_per_stage: int) -> nn.Sequential:
    """A 3x3 stem then one stride-2 stage per multiplier: the feature extractor of the estimator and AIFD."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, base_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(base_channels),
        nn.ReLU(inplace=True),
    ]
    cin = base_channels
    for multiplier in multipliers:
        cout = base_channels * multiplier
        for index in range(blocks_per_stage):
            layers.append(BasicBlock(cin, cout, stride=2 if index == 0 else 1))
            cin = cout
    return nn.Sequential(*layers)


def init_classifier_weights(module: nn.Module) -> None:
    """He init for convs (ReLU nets), small normal for linears; zero the last BN of each block (identity start)."""
    if not holds_values(module):
        return
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    for layer in module.modules():
        if isinstance(layer, BasicBlock):
            nn.init.zeros_(layer.body[-1].weight)


def resize_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize square face crops to the network's resolution (antialiased when shrinking)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got {tuple(images.shape)}")
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrinking = images.shape[-1] > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


class MeanVarianceLoss(NamedTuple):
    total: torch.Tensor
    softmax: torch.Tensor
    mean: torch.Tensor
    variance: torch.Tensor


def expected_age(logits: torch.Tensor) -> torch.Tensor:
    """Expectation of the softmax over the integer ages 0..K-1."""
    ages = torch.arange(logits.shape[-1], device=logits.device, dtype=torch.float32)
    return (logits.float().softmax(dim=-1) * ages).sum(dim=-1)


def mean_variance_loss(
    logits: torch.Tensor, ages: torch.Tensor, lambda_mean: float = 0.2, lambda_variance: float = 0.05
) -> MeanVarianceLoss:
    """Softmax CE + λ1·½(E[a]−y)² + λ2·Var[a], each averaged over the batch (Pan et al. 2018)."""
    logits = logits.float()
    num_ages = logits.shape[-1]
    target = ages.float().reshape(-1).clamp(0, num_ages - 1)
    support = torch.arange(num_ages, device=logits.device, dtype=torch.float32)
    probabilities = logits.softmax(dim=-1)
    mean = (probabilities * support).sum(dim=-1)
    variance = (probabilities * (support[None, :] - mean[:, None]) ** 2).sum(dim=-1)
    softmax_loss = F.cross_entropy(logits, target.round().long())
    mean_loss = 0.5 * ((mean - target) ** 2).mean()
    variance_loss = variance.mean()
    total = softmax_loss + lambda_mean * mean_loss + lambda_variance * variance_loss
    return MeanVarianceLoss(total, softmax_loss, mean_loss, variance_loss)


class AgeEstimator(ReadingCalibration, HubModel):
    """Face crop -> distribution over ages 0..100; `predict` gives its expectation in years, `calibrated_age` maps
    that reading to the age of the real faces that read so (its config's reading curve)."""

    model_type = "age_estimator"
    role = "age_estimator"
    config_class = AgeEstimatorConfig
    card_pipeline_tag = "image-classification"  # logits over the ages 0..100
    description = (
        "Compact residual CNN age estimator trained with the mean-variance loss (softmax over ages 0..100, "
        "prediction = expectation)."
    )

    def __init__(self, config: AgeEstimatorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: AgeEstimatorConfig = self.config
        if c.image_size < 2 ** len(c.channel_multipliers):
            raise ValueError(f"image_size {c.image_size} is too small for {len(c.channel_multipliers)} stages")
        self.features = residual_backbone(c.base_channels, tuple(c.channel_multipliers), c.blocks_per_stage)
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.base_channels * c.channel_multipliers[-1], c.num_ages)
        init_classifier_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`images` in [-1, 1] at `config.image_size` -> logits (N, num_ages)."""
        pooled = self.features(images).mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Expected age in years (N,) of face crops of any size in [-1, 1] (differentiable; wrap in no_grad)."""
        return expected_age(self(resize_to(images, self.config.image_size)))

    def read_face(self, rgb: np.ndarray, face: Any) -> float:
        """The reading (years) of one analysed face (a ``FaceAnalysis``): its aligned crop, as the editor reads it.
        `rgb` is not needed (the crop holds the face); it is taken so that every age estimator reads alike."""
        return self.read_distribution(rgb, face).age

    def face_probabilities(self, rgb: np.ndarray, face: Any) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over the ages 0..100, those ages) of one analysed face, read on its aligned crop."""
        crop = torch.from_numpy(np.ascontiguousarray(face.aligned.image)).permute(2, 0, 1)[None].float()
        images = resize_to(crop.to(self.classifier.weight.device) / 127.5 - 1.0, self.config.image_size)
        with torch.inference_mode():
            probabilities = self(images).float().softmax(dim=-1)[0]
        return probabilities.double().cpu().numpy(), np.arange(probabilities.shape[-1], dtype=np.float64)

    def loss(self, images: torch.Tensor, ages: torch.Tensor) -> MeanVarianceLoss:
        """The training objective with the configured λ1, λ2 (images already at `image_size`)."""
        c: AgeEstimatorConfig = self.config
        return mean_variance_loss(self(images), ages, c.lambda_mean, c.lambda_variance)
