"""AgeTransGAN: a StyleGAN2-style encoder-decoder that moves a face to any of the 10 age groups.

Pure PyTorch (no custom CUDA ops, so it runs on CPU): equalised learning rate everywhere, modulated
convolutions with weight demodulation, optional noise inputs, toRGB skip connections.

- The input face is concatenated with the (soft) target-group code spread over the pixels and
  encoded by residual blocks down to a 16x16 identity feature map, which replaces StyleGAN2's
  constant input.
- A style branch (convs + global pooling -> 512-d) joined with the group code goes through a
  mapping MLP with learning-rate multiplier 0.01 and gives the style w of every synthesis layer.
- The synthesis network upsamples from 16x16 to the output size (128 by default, 256 supported).

The discriminator is a residual StyleGAN2 discriminator with a realism logit per age group (the
one of the target group is used: a conditional, projection-like output) and an age-group
classification head. Blending adjacent group codes (:func:`soft_group_code`) gives smooth
transitions between groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.conditions import NUM_AGE_GROUPS
from ganime_age.config import bounded
from ganime_age.hub import HubModel
from ganime_age.models.common import EditOutput, soft_group_code

if TYPE_CHECKING:
    from ganime_age.models.aifd import AIFDEncoder

SQRT2 = math.sqrt(2.0)
IDENTITY_RESOLUTION = 16


@dataclass
class AgeTransGANConfig:
    """The generator's architecture; image_size must also be a power of two from 16 (checked when built)."""

    image_size: int = bounded(128, 16, 1024)
    num_groups: int = bounded(NUM_AGE_GROUPS, 2, NUM_AGE_GROUPS)  # the FFHQ-Aging groups of conditions.AGE_GROUPS
    channel_base: int = bounded(16384, 1, 1 << 20)  # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = bounded(256, 1, 4096)
    style_dim: int = bounded(512, 1, 4096)
    mapping_layers: int = bounded(4, 1, 16)
    mapping_lr_mul: float = bounded(0.01, 1e-4, 1.0)
    identity_blocks: int = bounded(2, 0, 64)  # residual blocks at 16x16 after the downsampling encoder
    use_noise: bool = True
    # a refiner of the fitted engine: the output is the input plus the synthesis, whose toRGB layers start at
    # zero, so a fresh model returns its input exactly (training/systems/agetransgan_refiner.py)
    refiner: bool = False


@dataclass
class AgeTransGANDiscriminatorConfig:
    """The critic's architecture; image_size must also be a power of two from 8 (checked when built)."""

    image_size: int = bounded(128, 8, 1024)
    num_groups: int = bounded(NUM_AGE_GROUPS, 2, NUM_AGE_GROUPS)
    channel_base: int = bounded(16384, 1, 1 << 20)
    channel_max: int = bounded(256, 1, 4096)
    mbstd_group_size: int = bounded(4, 0, 64)  # 0 disables the minibatch-stddev feature
    mbstd_channels: int = bounded(1, 1, 64)


def channels_at(resolution: int, base: int, maximum: int) -> int:
    return max(1, min(maximum, base // resolution))


def check_resolution(image_size: int, lowest: int) -> int:
    """log2 of the image size; it must be a power of two not below `lowest`."""
    log = round(math.log2(image_size)) if image_size > 0 else -1
    if image_size < lowest or 2**log != image_size:
        raise ValueError(f"image_size must be a power of two >= {lowest}, got {image_size}")
    return log


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def as_group_code(target: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(N,) long group indices or an (N, G) float code -> an (N, G) float code."""
    if target.ndim == 1 and not target.is_floating_point():
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_groups):
            raise ValueError(f"age groups must be in 0..{num_groups - 1}")
        return F.one_hot(target, num_groups).float()
    if target.ndim != 2 or target.shape[1] != num_groups:
        raise ValueError(f"expected group indices (N,) or a group code (N, {num_groups}), got {tuple(target.shape)}")
    return target.float()


# -- equalised-learning-rate building blocks --------------------------------------------------------
class EqualLinear(nn.Module):
    """Linear layer with runtime weight scaling (equalised lr) and an optional learning-rate multiplier."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        out = F.linear(x, self.weight * self.scale, bias)
        return F.leaky_relu(out, 0.2) * SQRT2 if self.activation else out


class EqualConv2d(nn.Module):
    """Conv layer with equalised lr; `activation` adds the gain-corrected leaky ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int, *, bias: bool = True, activation: bool = False, down: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.padding = kernel // 2
        self.activation = activation
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)
        if self.down:
            out = F.avg_pool2d(out, 2)
        return F.leaky_relu(out, 0.2) * SQRT2 if self.activation else out


class ResidualDown(nn.Module):
    """StyleGAN2 residual block: two 3x3 convs (the second halves the resolution) + a 1x1 skip, / sqrt(2)."""

    def __init__(self, cin: int, cout: int, down: bool = True) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(cin, cin, 3, activation=True)
        self.conv2 = EqualConv2d(cin, cout, 3, activation=True, down=down)
        self.skip = EqualConv2d(cin, cout, 1, bias=False, down=down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution with weight demodulation.

    Written as (x · s) ⊛ w followed by a per-sample, per-output-channel demodulation factor, which is
    mathematically the per-sample modulated weight of the paper but needs no grouped convolution.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, style_dim: int, *, demodulate: bool = True, upsample: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.modulation(w)  # (N, cin)
        weight = self.weight * self.scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # sum_{i,k} (w_oik s_i)^2 = (w^2 summed over k) @ s^2
            demod = torch.rsqrt(styles.float().pow(2) @ weight.float().pow(2).sum(dim=(2, 3)).t() + 1e-8)
            out = out * demod[:, :, None, None].to(out.dtype)
        return out


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength. Random in training; a fixed pattern in eval so edits repeat."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.training:
            noise = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
        else:
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            noise = torch.randn(1, 1, h, w, generator=generator).to(x.device, x.dtype).expand(n, 1, h, w)
        return x + self.weight.to(x.dtype) * noise


class StyledConv(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int, *, upsample: bool = False, noise_seed: int | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection(noise_seed) if noise_seed is not None else None
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = self.conv(x, w)
        if self.noise is not None:
            out = self.noise(out)
        return F.leaky_relu(out + self.bias[None, :, None, None].to(out.dtype), 0.2) * SQRT2


class ToRGB(nn.Module):
    def __init__(self, cin: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias[None, :, None, None].to(x.dtype)
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out


class Encoded(NamedTuple):
    identity: torch.Tensor  # (N, C, 16, 16) identity feature map (the synthesis input)
    w: torch.Tensor  # (N, style_dim) style for every synthesis layer


# -- generator ------------------------------------------------------------------------------------------
class AgeTransGAN(HubModel):
    """Face + target age group -> the face at that age (StyleGAN2-style encoder-decoder)."""

    model_type = "agetransgan"
    role = "refiner"
    config_class = AgeTransGANConfig
    uses_aus = False
    description = (
        "AgeTransGAN generator: residual encoder to a 16x16 identity map, a style branch with a 0.01-lr mapping "
        "MLP conditioned on the target age group, and a StyleGAN2 synthesis network (modulated convolutions)."
    )

    def __init__(self, config: AgeTransGANConfig | dict | None = None) -> None:
        super().__init__(config)
        c: AgeTransGANConfig = self.config
        log_size = check_resolution(c.image_size, IDENTITY_RESOLUTION)
        log_id = int(math.log2(IDENTITY_RESOLUTION))

        def ch(resolution: int) -> int:
            return channels_at(resolution, c.channel_base, c.channel_max)

        # Encoder: image + spread code -> 16x16 identity map.
        self.from_rgb = EqualConv2d(3 + c.num_groups, ch(c.image_size), 1, activation=True)
        self.down_blocks = nn.ModuleList(ResidualDown(ch(2**r), ch(2 ** (r - 1))) for r in range(log_size, log_id, -1))
        id_ch = ch(IDENTITY_RESOLUTION)
        self.identity_blocks = nn.Sequential(
            *[ResidualDown(id_ch, id_ch, down=False) for _ in range(c.identity_blocks)]
        )

        # Style branch: conv + global pooling -> style_dim, joined with the code, through the mapping MLP.
        self.style_conv = nn.Sequential(
            ResidualDown(id_ch, ch(IDENTITY_RESOLUTION // 2)),
            EqualConv2d(ch(IDENTITY_RESOLUTION // 2), c.style_dim, 3, activation=True),
        )
        self.style_fc = EqualLinear(c.style_dim, c.style_dim, activation=True)
        self.code_embed = EqualLinear(c.num_groups, c.style_dim)
        mapping: list[nn.Module] = []
        for index in range(c.mapping_layers):
            cin = 2 * c.style_dim if index == 0 else c.style_dim
            mapping.append(EqualLinear(cin, c.style_dim, lr_mul=c.mapping_lr_mul, activation=True))
        self.mapping = nn.Sequential(*mapping)

        # Synthesis: 16x16 identity map -> image, with toRGB skips.
        seeds = iter(range(10_000))
        self.conv_first = StyledConv(id_ch, id_ch, c.style_dim, noise_seed=next(seeds) if c.use_noise else None)
        self.rgb_first = ToRGB(id_ch, c.style_dim)
        self.up_convs = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for r in range(log_id + 1, log_size + 1):
            cin, cout = ch(2 ** (r - 1)), ch(2**r)
            self.up_convs.append(
                StyledConv(cin, cout, c.style_dim, upsample=True, noise_seed=next(seeds) if c.use_noise else None)
            )
            self.convs.append(StyledConv(cout, cout, c.style_dim, noise_seed=next(seeds) if c.use_noise else None))
            self.to_rgbs.append(ToRGB(cout, c.style_dim))
        if c.refiner:  # every toRGB adds to the image (skips), so all start at zero: the synthesis adds nothing
            for to_rgb in (self.rgb_first, *self.to_rgbs):
                nn.init.zeros_(to_rgb.conv.weight)

    @property
    def num_ws(self) -> int:
        """How many synthesis layers take a style (all share the one w)."""
        return 2 + 3 * len(self.convs)

    def group_code(self, age: torch.Tensor) -> torch.Tensor:
        """Target ages in years -> the soft code blending the two nearest groups."""
        return soft_group_code(age, self.config.num_groups)

    def encode(self, images: torch.Tensor, target: torch.Tensor) -> Encoded:
        """The 16x16 identity map and the style w for `images` moved to `target` (groups (N,) or a code)."""
        c: AgeTransGANConfig = self.config
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != c.image_size:
            raise ValueError(f"expected images (N, 3, {c.image_size}, {c.image_size}), got {tuple(images.shape)}")
        n, _, h, w = images.shape
        code = as_group_code(target, c.num_groups).to(images.device, images.dtype)
        x = self.from_rgb(torch.cat([images, code[:, :, None, None].expand(n, c.num_groups, h, w)], dim=1))
        for block in self.down_blocks:
            x = block(x)
        identity = self.identity_blocks(x)
        style = self.style_fc(self.style_conv(identity).mean(dim=(2, 3)))
        joined = torch.cat([normalize_2nd_moment(style), normalize_2nd_moment(self.code_embed(code))], dim=1)
        return Encoded(identity, self.mapping(joined))

    def synthesize(self, identity: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv_first(identity, w)
        rgb = self.rgb_first(x, w, None)
        for up, conv, to_rgb in zip(self.up_convs, self.convs, self.to_rgbs, strict=True):
            x = conv(up(x, w), w)
            rgb = to_rgb(x, w, rgb)
        return rgb

    def forward(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`images` in [-1, 1] (N, 3, S, S); `target` group indices (N,) long or a group code (N, G).

        Returns the raw synthesis output (not clamped, as StyleGAN2 trains it); `edit_faces` clamps. A refiner
        returns `images` plus the synthesis output (its change).
        """
        encoded = self.encode(images, target)
        synthesis = self.synthesize(encoded.identity, encoded.w)
        return images + synthesis.to(images.dtype) if self.config.refiner else synthesis

    def edit_faces(
        self,
        images: torch.Tensor,
        *,
        source_age: torch.Tensor,
        target_age: torch.Tensor,
        source_aus: torch.Tensor | None = None,
        target_aus: torch.Tensor | None = None,
    ) -> EditOutput:
        """The ageing-model interface: years -> soft group code -> output clamped to [-1, 1]; AUs are ignored."""
        code = self.group_code(target_age.to(images.device).reshape(-1))
        return EditOutput(self(images, code).clamp(-1.0, 1.0), None)


# -- discriminator ------------------------------------------------------------------------------------------
class DiscriminatorOutput(NamedTuple):
    realism: torch.Tensor  # (N,) the realism logit of the requested group (code-weighted for soft codes)
    group_logits: torch.Tensor  # (N, G) realism logit per group
    age_logits: torch.Tensor  # (N, G) age-group classification logits


class MinibatchStd(nn.Module):
    """Appends the average standard deviation over groups of samples (helps against mode collapse)."""

    def __init__(self, group_size: int, channels: int) -> None:
        super().__init__()
        self.group_size = group_size
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        f = self.channels
        y = x.float().reshape(group, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt()  # (n/group, f, c/f, h, w)
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(group, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class AgeTransGANDiscriminator(HubModel):
    """Residual StyleGAN2 discriminator with per-group realism logits and an age-group head."""

    model_type = "agetransgan_discriminator"
    role = "critic"
    config_class = AgeTransGANDiscriminatorConfig
    description = (
        "AgeTransGAN discriminator: residual StyleGAN2 blocks, minibatch stddev, a realism logit per age group "
        "(the target group's is used) and an age-group classifier."
    )

    def __init__(self, config: AgeTransGANDiscriminatorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: AgeTransGANDiscriminatorConfig = self.config
        log_size = check_resolution(c.image_size, 8)

        def ch(resolution: int) -> int:
            return channels_at(resolution, c.channel_base, c.channel_max)

        self.from_rgb = EqualConv2d(3, ch(c.image_size), 1, activation=True)
        self.blocks = nn.Sequential(*[ResidualDown(ch(2**r), ch(2 ** (r - 1))) for r in range(log_size, 2, -1)])
        top = ch(4)
        if c.mbstd_group_size > 0 and top % c.mbstd_channels:
            raise ValueError("the last block's channels must be divisible by mbstd_channels")
        self.mbstd = MinibatchStd(c.mbstd_group_size, c.mbstd_channels) if c.mbstd_group_size > 0 else None
        extra = c.mbstd_channels if self.mbstd is not None else 0
        self.final_conv = EqualConv2d(top + extra, top, 3, activation=True)
        self.final_fc = EqualLinear(top * 16, top, activation=True)
        self.realism_head = EqualLinear(top, c.num_groups)
        self.age_head = EqualLinear(top, c.num_groups)

    def forward(self, images: torch.Tensor, target: torch.Tensor) -> DiscriminatorOutput:
        """`target`: the group each image is judged as (N,) long, or a (soft) code (N, G)."""
        c: AgeTransGANDiscriminatorConfig = self.config
        x = self.blocks(self.from_rgb(images))
        if self.mbstd is not None:
            x = self.mbstd(x)
        features = self.final_fc(self.final_conv(x).flatten(1))
        group_logits = self.realism_head(features)
        code = as_group_code(target, c.num_groups).to(group_logits.dtype)
        return DiscriminatorOutput((group_logits * code).sum(dim=1), group_logits, self.age_head(features))


# -- the MI loss ----------------------------------------------------------------------------------------------
def mutual_information_loss(encoder: AIFDEncoder, source: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """L_MI = 1 − cos(E_A(I_s), E_A(Î_t)), batch mean: ageing must keep the AIFD identity embedding.

    `encoder` should be a frozen AIFDEncoder in eval mode; gradients flow into `output` only.
    """
    with torch.no_grad():
        source_embedding = encoder.identity_embedding(source)
    output_embedding = encoder.identity_embedding(output)
    cosine = F.cosine_similarity(source_embedding.float(), output_embedding.float(), dim=1)
    return (1.0 - cosine).mean()
