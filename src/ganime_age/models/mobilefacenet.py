"""MobileFaceNet (Chen et al., 2018) face recognition: identity embeddings for losses and evaluation.

:class:`MobileFaceNet` reproduces the network whose CASIA-WebFace weights are in
``mobilefacenet_casia.safetensors`` (tensor names unchanged from the authors' PyTorch checkpoint), as a
:class:`~ganime_age.hub.HubModel`. :class:`FaceRecognizer` wraps it for use on *our* aligned crops:
it warps ALIGN_TEMPLATE crops of any size to the network's 112x96 SphereFace framing with a fixed,
differentiable affine resampling, so identity losses can back-propagate into a generator.

The weights are research-only (CASIA-WebFace): use them for losses and evaluation, never ship them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.config import bounded, bounded_records
from ganime_age.hub import HubModel, load_weights

# SphereFace / MobileFaceNet 5-point template in the 96 (wide) x 112 (high) input, pixel coordinates, in
# YuNet's point order: the subject's right eye (image left), left eye, nose tip, right and left mouth corners.
SPHEREFACE_TEMPLATE: np.ndarray = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float64,
)

BottleneckSetting = tuple[int, int, int, int]  # expansion t, output channels c, repeats n, first stride s


@dataclass
class MobileFaceNetConfig:
    """Architecture of MobileFaceNet; the defaults are the published network (1.0 M parameters)."""

    embedding_size: int = bounded(128, 1, 4096)
    input_height: int = bounded(112, 16, 1024)
    input_width: int = bounded(96, 16, 1024)
    stem_channels: int = bounded(64, 1, 1024)
    bottlenecks: tuple[BottleneckSetting, ...] = bounded_records(
        ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)),
        (1, 16),  # expansion t
        (1, 1024),  # output channels c
        (1, 32),  # repeats n
        (1, 2),  # first stride s
        length=(1, 16),
    )
    last_channels: int = bounded(512, 1, 4096)


class ConvBlock(nn.Module):
    """conv -> BatchNorm -> (PReLU unless linear); names match the checkpoint (conv, bn, prelu)."""

    def __init__(
        self,
        inp: int,
        out: int,
        kernel: int | tuple[int, int],
        stride: int,
        padding: int,
        *,
        depthwise: bool = False,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, padding, groups=inp if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.prelu = None if linear else nn.PReLU(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride s), 1x1 linear projection (+ skip when shapes allow)."""

    def __init__(self, inp: int, out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        self.residual = stride == 1 and inp == out
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(HubModel):
    """MobileFaceNet: (N, 3, 112, 96) faces scaled as (pixel - 127.5) / 128 -> (N, 128) embeddings (not normalised)."""

    model_type = "mobilefacenet"
    role = "recogniser"
    card_pipeline_tag = "image-feature-extraction"
    config_class = MobileFaceNetConfig
    description = "MobileFaceNet face-recognition embeddings (Chen et al. 2018), used for identity losses and metrics."

    def __init__(self, config: MobileFaceNetConfig | dict | None = None) -> None:
        super().__init__(config)
        cfg: MobileFaceNetConfig = self.config
        stem = cfg.stem_channels
        self.conv1 = ConvBlock(3, stem, 3, 2, 1)
        self.dw_conv1 = ConvBlock(stem, stem, 3, 1, 1, depthwise=True)
        blocks: list[nn.Module] = []
        channels = stem
        for expansion, out, repeats, stride in cfg.bottlenecks:
            for index in range(repeats):
                blocks.append(Bottleneck(channels, out, stride if index == 0 else 1, expansion))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(channels, cfg.last_channels, 1, 1, 0)
        total_stride = 2 * 2 ** sum(1 for setting in cfg.bottlenecks if setting[3] == 2)
        kernel = (cfg.input_height // total_stride, cfg.input_width // total_stride)  # 7x6 for 112x96
        self.linear7 = ConvBlock(cfg.last_channels, cfg.last_channels, kernel, 1, 0, depthwise=True, linear=True)
        self.linear1 = ConvBlock(cfg.last_channels, cfg.embedding_size, 1, 1, 0, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv1(self.conv1(x))
        x = self.conv2(self.blocks(x))
        x = self.linear1(self.linear7(x))
        return x.flatten(1)


def _template_to_sphereface() -> np.ndarray:
    """(2, 3) similarity from continuous normalised ALIGN_TEMPLATE coordinates to continuous 96x112 pixels."""
    from ganime_age.faces.align import ALIGN_TEMPLATE, similarity_transform

    # SphereFace points are cv2 pixel coordinates; +0.5 makes them continuous like ALIGN_TEMPLATE.
    return similarity_transform(ALIGN_TEMPLATE, SPHEREFACE_TEMPLATE + 0.5)


class FaceRecognizer(nn.Module):
    """Frozen MobileFaceNet applied to ALIGN_TEMPLATE-aligned crops in [-1, 1] of any size.

    Always in eval mode with requires_grad off for its parameters, but differentiable w.r.t. the
    input images (use it as an identity loss). `weights` defaults to the ``mobilefacenet`` asset.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str | torch.device | None = None) -> None:
        super().__init__()
        from ganime_age.assets import resolve_asset

        self.weights_path = resolve_asset("mobilefacenet", weights)
        self.net = MobileFaceNet()
        load_weights(self.net, self.weights_path, strict=True)
        self.net.requires_grad_(False)
        cfg = self.net.config
        self.output_size = (cfg.input_height, cfg.input_width)
        forward = _template_to_sphereface()
        self.register_buffer(
            "theta", torch.tensor(_affine_grid_theta(forward, self.output_size), dtype=torch.float32), persistent=False
        )
        # Crop side (pixels) at which the warp is ~1:1; larger crops are pre-shrunk with anti-aliasing.
        self.native_size = float(np.sqrt(abs(np.linalg.det(forward[:, :2]))))
        self.eval()
        if device is not None:
            self.to(device)

    def train(self, mode: bool = True) -> FaceRecognizer:
        """Stays in eval mode: BatchNorm statistics must never change (frozen network)."""
        return super().train(False)

    def to_network_input(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) aligned crops in [-1, 1] -> (N, 3, 112, 96) network input (SphereFace framing, scaled)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected aligned faces (N, 3, S, S), got {tuple(images.shape)}")
        images = images.to(self.theta.device, torch.float32)
        side = min(images.shape[-2:])
        if side > 1.5 * self.native_size:
            target = round(self.native_size)
            images = F.interpolate(images, size=(target, target), mode="bilinear", antialias=True, align_corners=False)
        theta = self.theta.unsqueeze(0).expand(images.shape[0], 2, 3)
        grid = F.affine_grid(theta, [images.shape[0], 3, *self.output_size], align_corners=False)
        warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        # [-1, 1] -> pixel p = x * 127.5 + 127.5 -> (p - 127.5) / 128
        return warped * (127.5 / 128.0)

    def embed_aligned(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 128) L2-normalised identity embeddings of aligned crops in [-1, 1]; differentiable."""
        return F.normalize(self.net(self.to_network_input(images)), dim=1)

    def embed(self, images: torch.Tensor, flip: bool = True) -> torch.Tensor:
        """Evaluation embedding: with `flip`, the image's and its mirror's embeddings concatenated, (N, 256)."""
        x = self.to_network_input(images)
        features = self.net(x)
        if flip:
            features = torch.cat([features, self.net(x.flip(-1))], dim=1)
        return F.normalize(features, dim=1)

    forward = embed_aligned

    @staticmethod
    def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity along the last dimension (1 = same direction)."""
        return cosine(a, b)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of embeddings along the last dimension."""
    return F.cosine_similarity(a, b, dim=-1)


def _affine_grid_theta(forward: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """theta for F.affine_grid (align_corners=False) sampling a crop with the `forward` warp.

    `forward` maps normalised crop coordinates t in [0, 1]^2 to continuous output pixels. affine_grid
    gives, for each output pixel, normalised output coordinates n_out in [-1, 1]; we need the input's
    normalised coordinates n_in = 2 t - 1 with t = forward^-1(c_out) and c_out = (n_out + 1) * size / 2.
    """
    height, width = output_size
    to_pixels = np.array([[width / 2.0, 0.0, width / 2.0], [0.0, height / 2.0, height / 2.0], [0.0, 0.0, 1.0]])
    forward3 = np.vstack([forward, [0.0, 0.0, 1.0]])
    to_normalised = np.array([[2.0, 0.0, -1.0], [0.0, 2.0, -1.0], [0.0, 0.0, 1.0]])
    return (to_normalised @ np.linalg.inv(forward3) @ to_pixels)[:2]
