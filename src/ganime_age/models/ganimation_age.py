"""GANimation-age: GANimation's attention generator conditioned on 17 AUs *and* a target age.

The age goes through a small modulation network (years -> 128-d style embedding) and is joined
with the AU intensities into one condition vector, spread over every pixel of the input. Age and
AUs stay independent inputs, so either can change alone.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.conditions import AU_MAX, MAX_AGE, NUM_AUS
from ganime_age.config import bounded
from ganime_age.hub import HubModel
from ganime_age.models.common import EditOutput, holds_values

REFINER_ATTENTION_BIAS = 12.0  # sigmoid(12) = 0.999994: a fresh refiner moves a pixel by under 0.002 levels


@dataclass
class GanimationAgeConfig:
    """The generator's architecture; each field's range is what the architecture and the editor support."""

    image_size: int = bounded(128, 16, 1024)
    num_aus: int = bounded(NUM_AUS, NUM_AUS, NUM_AUS)  # the editor always sends the 17 AUs of conditions.AU_NAMES
    age_embedding_dim: int = bounded(128, 1, 4096)
    conv_dim: int = bounded(64, 1, 1024)
    num_residual_blocks: int = bounded(6, 0, 64)
    max_age: float = bounded(MAX_AGE, 1.0, 200.0)
    age_frequencies: int = bounded(4, 0, 16)
    # a refiner of the fitted engine's edit: its attention starts at "keep the input" (a bias of
    # REFINER_ATTENTION_BIAS), so an untrained refiner returns the engine's edit unchanged
    refiner: bool = False


@dataclass
class GanimationAgeDiscriminatorConfig:
    """The critic's architecture; patch_layers must also not exceed num_layers (checked when it is built)."""

    image_size: int = bounded(128, 16, 1024)
    num_aus: int = bounded(NUM_AUS, 1, 64)
    conv_dim: int = bounded(64, 1, 1024)
    num_layers: int = bounded(6, 1, 10)
    max_age: float = bounded(MAX_AGE, 1.0, 200.0)
    patch_gan: bool = False
    patch_layers: int = bounded(3, 1, 10)


class GeneratorOutput(NamedTuple):
    image: torch.Tensor  # A * input + (1 - A) * C, in [-1, 1]
    attention: torch.Tensor  # A in [0, 1]; 1 keeps the input pixel
    color: torch.Tensor  # C in [-1, 1]


class CriticOutput(NamedTuple):
    realism: torch.Tensor  # WGAN score map (N, 1, h, w)
    aus: torch.Tensor  # AU intensities / AU_MAX, (N, num_aus)
    age: torch.Tensor  # age / max_age, (N,)


def normalise_aus(aus: torch.Tensor) -> torch.Tensor:
    """0..5 intensities -> 0..1, the scale the networks see and the critic predicts."""
    return aus / AU_MAX


def init_gan_weights(module: nn.Module) -> None:
    """GANimation's initialisation: N(0, 0.02) for conv/linear weights, zero biases, unit norms."""
    if not holds_values(module):
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.InstanceNorm2d, nn.BatchNorm2d)) and layer.weight is not None:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class AgeModulation(nn.Module):
    """Target age (years, continuous) -> style embedding; Fourier features keep nearby ages distinct."""

    def __init__(self, embedding_dim: int = 128, max_age: float = MAX_AGE, frequencies: int = 4) -> None:
        super().__init__()
        self.max_age = max_age
        self.frequencies = frequencies
        in_features = 1 + 2 * frequencies
        self.net = nn.Sequential(
            nn.Linear(in_features, embedding_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(embedding_dim, embedding_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(embedding_dim, embedding_dim),
        )

    def forward(self, age: torch.Tensor) -> torch.Tensor:
        a = (age.reshape(-1, 1).float() / self.max_age).clamp(0.0, 1.0)
        bands = [a]
        for k in range(self.frequencies):
            bands += [torch.sin(math.pi * (2**k) * a), torch.cos(math.pi * (2**k) * a)]
        return self.net(torch.cat(bands, dim=1))


def constant_input_conv(
    weight: torch.Tensor, values: torch.Tensor, height: int, width: int, padding: int
) -> torch.Tensor:
    """conv2d (stride 1, zero padding) of input channels that are constant over the image, without building them.

    GANimation conditions its generator by spreading the condition vector over every pixel, so the
    first 7x7 conv sees ``values.shape[1]`` extra channels that hold one number each. Because they are
    constant, output pixel (y, x) is the sum, over the kernel taps that land inside the image, of
    ``weight . values``: an (N, O, kh, kw) tensor contracted with two 0/1 masks of valid taps (one per
    row, one per column). Exactly the same result as the convolution (up to float rounding) for a
    fraction of a percent of its cost; with 145 condition channels that convolution was 45% of the
    whole generator's FLOPs. `weight` (O, C, kh, kw); `values` (N, C); the input is height x width ->
    (N, O, height + 2 * padding - kh + 1, width + 2 * padding - kw + 1), as ``F.conv2d`` gives.
    """
    n = values.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    taps = values @ weight.transpose(0, 1).reshape(in_channels, out_channels * kh * kw)
    rows = _valid_taps(height, kh, padding, values.device, taps.dtype)
    cols = _valid_taps(width, kw, padding, values.device, taps.dtype)
    return rows @ taps.reshape(n, out_channels, kh, kw) @ cols.T


def _valid_taps(size: int, kernel: int, padding: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(outputs, kernel) 0/1: does kernel tap k of output position i read a pixel inside the `size` input?"""
    outputs = size + 2 * padding - kernel + 1
    index = torch.arange(outputs, device=device)[:, None] + torch.arange(kernel, device=device)[None, :] - padding
    return ((index >= 0) & (index < size)).to(dtype)


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GanimationAge(HubModel):
    """GANimation-age generator: image + (AUs, target age) -> attention-blended edited face."""

    model_type = "ganime_age"
    role = "refiner"
    config_class = GanimationAgeConfig
    uses_aus = True
    description = (
        "GANimation generator (colour + attention heads) conditioned on 17 FACS AU intensities "
        "and a 128-d age style from an age modulation network."
    )

    def __init__(self, config: GanimationAgeConfig | dict | None = None) -> None:
        super().__init__(config)
        c: GanimationAgeConfig = self.config
        if c.image_size % 4:
            raise ValueError("image_size must be a multiple of 4")
        self.age_modulation = AgeModulation(c.age_embedding_dim, c.max_age, c.age_frequencies)
        condition_dim = c.num_aus + c.age_embedding_dim
        d = c.conv_dim
        self.encoder = nn.Sequential(
            conv_norm_relu(3 + condition_dim, d, 7, 1, 3),
            conv_norm_relu(d, 2 * d, 4, 2, 1),
            conv_norm_relu(2 * d, 4 * d, 4, 2, 1),
        )
        self.bottleneck = nn.Sequential(*[ResidualBlock(4 * d) for _ in range(c.num_residual_blocks)])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(2 * d, affine=True),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * d, d, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(d, affine=True),
            nn.ReLU(inplace=True),
        )
        self.color_head = nn.Sequential(nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention_head = nn.Sequential(nn.Conv2d(d, 1, 7, 1, 3, bias=c.refiner), nn.Sigmoid())
        init_gan_weights(self)
        if c.refiner:
            nn.init.constant_(self.attention_head[0].bias, REFINER_ATTENTION_BIAS)

    def condition(self, aus: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """The joint condition vector: AUs scaled to 0..1, then the age style embedding."""
        if aus.shape[-1] != self.config.num_aus:
            raise ValueError(f"expected {self.config.num_aus} AU intensities, got {aus.shape[-1]}")
        return torch.cat([normalise_aus(aus.float()), self.age_modulation(age)], dim=1)

    def forward(self, image: torch.Tensor, aus: torch.Tensor, age: torch.Tensor) -> GeneratorOutput:
        """`image` in [-1, 1] (N, 3, H, W); `aus` (N, num_aus) on 0..5; `age` (N,) in years."""
        n, channels, h, w = image.shape
        cond = self.condition(aus.reshape(n, -1), age.reshape(n)).to(image.dtype)
        # = encoder[0][0](cat([image, cond spread over every pixel])), with the constant part computed cheaply
        first = self.encoder[0][0]
        pad = int(first.padding[0])
        x = F.conv2d(image, first.weight[:, :channels], first.bias, 1, pad)
        x = x + constant_input_conv(first.weight[:, channels:], cond, h, w, pad).to(x.dtype)
        for layer in self.encoder[0][1:]:  # its norm and ReLU
            x = layer(x)
        features = self.decoder(self.bottleneck(self.encoder[2](self.encoder[1](x))))
        color = self.color_head(features)
        # float32 from the logit: in bf16 a refiner's start, sigmoid(12), is exactly 1 and its gradient 0, so a
        # GPU's mixed-precision run could never open the attention (lent-GPU runs 5 and 6, training/JOURNAL.md)
        conv, sigmoid = self.attention_head
        with torch.autocast(features.device.type, enabled=False):
            attention = sigmoid(conv(features.to(conv.weight.dtype)).float())
        return GeneratorOutput(attention * image + (1.0 - attention) * color, attention, color)

    def edit_faces(
        self,
        images: torch.Tensor,
        *,
        source_age: torch.Tensor,
        target_age: torch.Tensor,
        source_aus: torch.Tensor,
        target_aus: torch.Tensor,
    ) -> EditOutput:
        """The ageing-model interface: GANimation-age needs only the targets (it edits from the pixels)."""
        out = self(images, target_aus, target_age)
        return EditOutput(out.image, out.attention)


class GanimationAgeDiscriminator(HubModel):
    """WGAN-GP critic with realism, AU-regression and age-regression heads (PatchGAN option)."""

    model_type = "ganime_age_discriminator"
    role = "critic"
    config_class = GanimationAgeDiscriminatorConfig
    description = "GANimation critic: six stride-2 convs, a realism patch map, AU and age regression heads."

    def __init__(self, config: GanimationAgeDiscriminatorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: GanimationAgeDiscriminatorConfig = self.config
        final_size = c.image_size // (2**c.num_layers)
        if final_size < 1 or c.image_size % (2**c.num_layers):
            raise ValueError(f"image_size {c.image_size} must be divisible by 2**num_layers ({2**c.num_layers})")
        if not 1 <= c.patch_layers <= c.num_layers:
            raise ValueError("patch_layers must be between 1 and num_layers")
        layers: list[nn.Module] = []
        channels = [3] + [c.conv_dim * 2**i for i in range(c.num_layers)]
        for cin, cout in itertools.pairwise(channels):
            layers.append(nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)))
        self.layers = nn.ModuleList(layers)
        top = channels[-1]
        # PatchGAN variant: realism judged on a finer map from an earlier layer (local texture, wrinkles).
        realism_channels = channels[c.patch_layers] if c.patch_gan else top
        self.realism_head = nn.Conv2d(realism_channels, 1, 3, 1, 1, bias=False)
        self.au_head = nn.Conv2d(top, c.num_aus, final_size, bias=False)
        self.age_head = nn.Conv2d(top, 1, final_size, bias=False)
        init_gan_weights(self)

    def forward(self, image: torch.Tensor) -> CriticOutput:
        c: GanimationAgeDiscriminatorConfig = self.config
        x = image
        patch_features = None
        for index, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if c.patch_gan and index == c.patch_layers:
                patch_features = x
        realism = self.realism_head(patch_features if patch_features is not None else x)
        n = image.shape[0]
        return CriticOutput(realism, self.au_head(x).reshape(n, -1), self.age_head(x).reshape(n))
