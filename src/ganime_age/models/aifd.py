"""AIFDEncoder: attention-based decomposition of a face feature map into age and identity parts.

Following the attention-based feature decomposition (AIFD) of age-invariant face recognition, the
last feature map X of a face backbone is split by a channel attention and a spatial attention into
an age component X_age = ½(X·σ_c + X·σ_s) and an identity residual X_id = X − X_age. The age part
feeds an age classifier, the identity part a normalised identity embedding. AgeTransGAN's MI loss
compares the identity embeddings of an input face and its aged output, so that ageing changes the
age component only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.conditions import MAX_AGE
from ganime_age.config import bounded
from ganime_age.hub import HubModel
from ganime_age.models.age_estimator import (
    expected_age,
    init_classifier_weights,
    mean_variance_loss,
    residual_backbone,
    resize_to,
)


@dataclass
class AIFDConfig:
    """The encoder's architecture and loss weights; image_size must also divide by 2**stages (checked when built)."""

    image_size: int = bounded(112, 16, 1024)
    base_channels: int = bounded(32, 1, 1024)
    channel_multipliers: tuple[int, ...] = bounded((1, 2, 4, 8), 1, 64, length=(1, 8))
    blocks_per_stage: int = bounded(1, 1, 64)
    # the size of MobileFaceNet's embedding, which the identity branch learns to match
    embedding_dim: int = bounded(128, 1, 4096)
    num_ages: int = bounded(int(MAX_AGE) + 1, 2, 256)
    attention_grids: tuple[int, ...] = bounded((1, 2, 3), 1, 16, length=(1, 8))  # pooling grids (n x n)
    attention_reduction: int = bounded(8, 1, 1024)
    spatial_kernel: int = bounded(7, 1, 31)
    dropout: float = bounded(0.1, 0.0, 1.0)
    lambda_mean: float = bounded(0.2, 0.0, 100.0)
    lambda_variance: float = bounded(0.05, 0.0, 100.0)


class AIFDOutput(NamedTuple):
    features: torch.Tensor  # X, the backbone's last feature map (N, C, h, w)
    age_features: torch.Tensor  # X_age
    identity_features: torch.Tensor  # X_id = X - X_age
    channel_attention: torch.Tensor  # σ_c (N, C, 1, 1)
    spatial_attention: torch.Tensor  # σ_s (N, 1, h, w)
    age_logits: torch.Tensor  # (N, num_ages)
    embedding: torch.Tensor  # identity embedding (N, embedding_dim), L2-normalised


class ChannelAttention(nn.Module):
    """σ_c: average- and max-pooling over 1x1/2x2/3x3 grids -> shared 1x1-conv MLP -> summed -> BN -> sigmoid.

    The multi-grid pooling keeps some layout (a 3x3 grid separates forehead, eyes, mouth) that a single
    global pool would lose, which matters for age cues such as wrinkles and hair.
    """

    def __init__(self, channels: int, grids: tuple[int, ...], reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.grids = tuple(grids)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for grid in self.grids:
            for pooled in (F.adaptive_avg_pool2d(x, grid), F.adaptive_max_pool2d(x, grid)):
                total = total + self.mlp(pooled).mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.norm(total))


class SpatialAttention(nn.Module):
    """σ_s: [max over channels, mean over channels] -> 7x7 conv -> BN -> sigmoid."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, 1, kernel // 2, bias=False)
        self.norm = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.norm(self.conv(stacked)))


class AIFDEncoder(HubModel):
    """Face crop -> (X_age -> age logits, X_id -> identity embedding) by attention-based decomposition."""

    model_type = "aifd_encoder"
    role = "encoder"
    config_class = AIFDConfig
    card_pipeline_tag = "image-feature-extraction"
    description = (
        "Attention-based feature decomposition (AIFD): a residual face backbone whose last feature map is split "
        "by channel and spatial attention into an age part (age classifier) and an identity part (embedding)."
    )

    def __init__(self, config: AIFDConfig | dict | None = None) -> None:
        super().__init__(config)
        c: AIFDConfig = self.config
        stride = 2 ** len(c.channel_multipliers)
        if c.image_size % stride:
            raise ValueError(f"image_size {c.image_size} must be divisible by {stride}")
        channels = c.base_channels * c.channel_multipliers[-1]
        size = c.image_size // stride
        self.backbone = residual_backbone(c.base_channels, tuple(c.channel_multipliers), c.blocks_per_stage)
        self.channel_attention = ChannelAttention(channels, tuple(c.attention_grids), c.attention_reduction)
        self.spatial_attention = SpatialAttention(c.spatial_kernel)
        self.age_head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(channels, c.num_ages))
        # Identity: a global depthwise conv (MobileFaceNet's GDC) keeps where each feature is, then a linear map.
        self.identity_head = nn.Sequential(
            nn.Conv2d(channels, channels, size, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.Flatten(),
            nn.Dropout(c.dropout),
            nn.Linear(channels, c.embedding_dim, bias=False),
            nn.BatchNorm1d(c.embedding_dim),
        )
        init_classifier_weights(self)

    def decompose(self, images: torch.Tensor) -> AIFDOutput:
        """Everything the decomposition computes, for training and analysis (images of any size, [-1, 1])."""
        x = self.backbone(resize_to(images, self.config.image_size))
        sigma_c = self.channel_attention(x)
        sigma_s = self.spatial_attention(x)
        x_age = 0.5 * (x * sigma_c + x * sigma_s)
        x_id = x - x_age
        age_logits = self.age_head(x_age.mean(dim=(2, 3)))
        embedding = F.normalize(self.identity_head(x_id), dim=1)
        return AIFDOutput(x, x_age, x_id, sigma_c, sigma_s, age_logits, embedding)

    def forward(self, images: torch.Tensor) -> AIFDOutput:
        return self.decompose(images)

    def identity_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """E_A: the L2-normalised identity embedding of X_id (N, embedding_dim)."""
        return self.decompose(images).embedding

    def predict_age(self, images: torch.Tensor) -> torch.Tensor:
        """Expected age in years from the age branch (N,)."""
        return expected_age(self.decompose(images).age_logits)

    def age_loss(self, age_logits: torch.Tensor, ages: torch.Tensor) -> torch.Tensor:
        c: AIFDConfig = self.config
        return mean_variance_loss(age_logits, ages, c.lambda_mean, c.lambda_variance).total
