"""Re-Aging GAN (RAGAN): identity encoder, personalised age modulator, skip-connected decoder.

Following the idea of Makhmudkhujaev et al. (ICCV 2021), the target age does not enter the generator
as a plain condition. An *age modulator* at the bottleneck mixes the target-age embedding with the
pooled statistics of the person's identity features through multiplicative (high-order) terms, so
the same target age yields a different modulation for different people ("personalised" ageing).
The modulation restyles the identity features (per-channel scale/shift), gates them with a channel
attention (which identity channels are kept untouched) and drives adaptive normalisation in the
decoder. Skip connections from the encoder carry background, hair and expression to the output.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ganime_age.conditions import MAX_AGE, NUM_AGE_GROUPS
from ganime_age.config import bounded, one_of
from ganime_age.hub import HubModel
from ganime_age.models.common import EditOutput, soft_group_code
from ganime_age.models.ganimation_age import AgeModulation, ResidualBlock, conv_norm_relu, init_gan_weights

AGE_CONDITIONS = ("continuous", "groups")
OUTPUT_MODES = ("residual", "direct")


@dataclass
class ReAgingGANConfig:
    """The generator's architecture; image_size must also divide by 2**num_down (checked when built)."""

    image_size: int = bounded(128, 16, 1024)
    conv_dim: int = bounded(32, 1, 1024)  # channels at full resolution; doubled at every downsampling
    max_channels: int = bounded(256, 1, 4096)
    num_down: int = bounded(3, 1, 8)  # encoder downsamplings: the bottleneck is image_size / 2**num_down
    num_identity_blocks: int = bounded(2, 0, 64)  # residual blocks that finish the identity encoder
    num_modulated_blocks: int = bounded(2, 0, 64)  # age-modulated residual blocks after the modulator
    # "continuous" (Fourier features of years) | "groups" (10 soft groups)
    age_condition: str = one_of("continuous", *AGE_CONDITIONS)
    age_embedding_dim: int = bounded(64, 1, 4096)
    age_frequencies: int = bounded(6, 0, 16)
    modulator_dim: int = bounded(128, 1, 4096)  # width of the identity x age interaction
    # highest polynomial order of identity terms multiplying the age embedding
    interaction_order: int = bounded(3, 1, 8)
    # "residual": input + tanh(atanh(input) + delta) - tanh(atanh(input)) (a zero delta returns the input) | "direct"
    output_mode: str = one_of("residual", *OUTPUT_MODES)
    max_age: float = bounded(MAX_AGE, 1.0, 200.0)
    num_groups: int = bounded(NUM_AGE_GROUPS, 2, NUM_AGE_GROUPS)


@dataclass
class ReAgingDiscriminatorConfig:
    """The critic's architecture; image_size must also divide by 2**num_layers (checked when built)."""

    image_size: int = bounded(128, 16, 1024)
    conv_dim: int = bounded(64, 1, 1024)
    max_channels: int = bounded(512, 1, 4096)
    num_layers: int = bounded(5, 1, 10)  # stride-2 convs; the realism map is image_size / 2**num_layers per side
    num_groups: int = bounded(NUM_AGE_GROUPS, 2, NUM_AGE_GROUPS)


class Modulation(NamedTuple):
    """What the age modulator produces for one (identity, target age) pair."""

    code: torch.Tensor  # (N, modulator_dim) personalised age code, drives the decoder's adaptive norms
    scale: torch.Tensor  # (N, C) multiplicative restyling of the normalised identity features (1 + scale)
    shift: torch.Tensor  # (N, C) additive restyling
    attention: torch.Tensor  # (N, C) in [0, 1]; 1 keeps an identity channel untouched


class ReAgingOutput(NamedTuple):
    image: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    modulation: Modulation


class DiscriminatorOutput(NamedTuple):
    realism: torch.Tensor  # (N, 1, h, w) patch realism scores
    group_logits: torch.Tensor  # (N, num_groups) age-group classification


def pooled_statistics(features: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation: a size-independent summary of who the person is."""
    flat = features.float().flatten(2)
    return torch.cat([flat.mean(dim=2), (flat.var(dim=2, unbiased=False) + 1e-5).sqrt()], dim=1)


class GroupAgeEmbedding(nn.Module):
    """Years -> soft one-hot over the 10 age groups (blended between centres) -> embedding."""

    def __init__(self, embedding_dim: int, num_groups: int = NUM_AGE_GROUPS) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.net = nn.Sequential(
            nn.Linear(num_groups, embedding_dim), nn.LeakyReLU(0.2), nn.Linear(embedding_dim, embedding_dim)
        )

    def forward(self, age: torch.Tensor) -> torch.Tensor:
        return self.net(soft_group_code(age, self.num_groups))


class AgeModulator(nn.Module):
    """Identity features x target-age embedding -> personalised modulation (scale, shift, channel attention).

    The interaction is a polynomial in the identity projections multiplied into the age embedding
    (v, v*W1u, v*W1u*W2u, ...), so the effect of changing the age depends on who the person is; a
    purely additive condition could not do that.
    """

    def __init__(self, channels: int, age_dim: int, hidden: int, order: int) -> None:
        super().__init__()
        if order < 1:
            raise ValueError("interaction_order must be at least 1")
        # LayerNorm removes what every face shares (the instance-normalised features' common level), so the
        # person-specific pattern across channels is what reaches the interaction.
        self.identity_in = nn.Sequential(nn.LayerNorm(2 * channels), nn.Linear(2 * channels, hidden), nn.LeakyReLU(0.2))
        self.age_in = nn.Sequential(nn.Linear(age_dim, hidden), nn.LeakyReLU(0.2))
        self.identity_factors = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(order - 1))
        self.mix = nn.Sequential(nn.Linear(hidden * (order + 1), hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden))
        self.to_scale = nn.Linear(hidden, channels)
        self.to_shift = nn.Linear(hidden, channels)
        self.to_attention = nn.Linear(hidden, channels)

    def forward(self, identity: torch.Tensor, age_embedding: torch.Tensor) -> Modulation:
        u = self.identity_in(pooled_statistics(identity)).to(age_embedding.dtype)
        term = self.age_in(age_embedding)
        terms = [u, term]
        for factor in self.identity_factors:
            term = term * factor(u)
            terms.append(term)
        code = self.mix(torch.cat(terms, dim=1))
        return Modulation(code, self.to_scale(code), self.to_shift(code), torch.sigmoid(self.to_attention(code)))


class AdaptiveNorm(nn.Module):
    """Instance norm whose scale and shift come from the personalised age code."""

    def __init__(self, channels: int, code_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(code_dim, 2 * channels)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(code).to(x.dtype).chunk(2, dim=1)
        return self.norm(x) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


class ModulatedResidualBlock(nn.Module):
    def __init__(self, channels: int, code_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm1 = AdaptiveNorm(channels, code_dim)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = AdaptiveNorm(channels, code_dim)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x), code))
        return x + self.norm2(self.conv2(h), code)


class DecoderBlock(nn.Module):
    """Upsample (nearest + conv, no checkerboard), age-adaptive norm, then fuse the encoder skip."""

    def __init__(self, cin: int, cout: int, code_dim: int) -> None:
        super().__init__()
        self.up = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.norm = AdaptiveNorm(cout, code_dim)
        self.fuse = conv_norm_relu(2 * cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.relu(self.norm(self.up(x), code))
        return self.fuse(torch.cat([x, skip], dim=1))


class ReAgingGAN(HubModel):
    """RAGAN generator: image + target age -> the same person at that age."""

    model_type = "ragan"
    role = "refiner"
    config_class = ReAgingGANConfig
    uses_aus = False

    description = (
        "Re-Aging GAN: a conv identity encoder, an age modulator that mixes the target age with the person's "
        "pooled identity features through multiplicative high-order terms (personalised scale/shift and channel "
        "attention), and a skip-connected decoder with age-adaptive normalisation."
    )

    def __init__(self, config: ReAgingGANConfig | dict | None = None) -> None:
        super().__init__(config)
        c: ReAgingGANConfig = self.config
        if c.age_condition not in AGE_CONDITIONS:
            raise ValueError(f"age_condition must be one of {AGE_CONDITIONS}, got {c.age_condition!r}")
        if c.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {c.output_mode!r}")
        if c.num_down < 1 or c.image_size % (2**c.num_down):
            raise ValueError(f"image_size {c.image_size} must be divisible by 2**num_down ({2**c.num_down})")
        channels = [min(c.conv_dim * 2**i, c.max_channels) for i in range(c.num_down + 1)]
        bottleneck = channels[-1]
        if c.age_condition == "continuous":
            self.age_embedding: nn.Module = AgeModulation(c.age_embedding_dim, c.max_age, c.age_frequencies)
        else:
            self.age_embedding = GroupAgeEmbedding(c.age_embedding_dim, c.num_groups)
        self.stem = conv_norm_relu(3, channels[0], 7, 1, 3)
        self.down = nn.ModuleList(conv_norm_relu(cin, cout, 4, 2, 1) for cin, cout in itertools.pairwise(channels))
        self.identity_blocks = nn.Sequential(*[ResidualBlock(bottleneck) for _ in range(c.num_identity_blocks)])
        self.modulator = AgeModulator(bottleneck, c.age_embedding_dim, c.modulator_dim, c.interaction_order)
        self.restyle_norm = nn.InstanceNorm2d(bottleneck, affine=False)
        self.modulated_blocks = nn.ModuleList(
            ModulatedResidualBlock(bottleneck, c.modulator_dim) for _ in range(c.num_modulated_blocks)
        )
        self.up = nn.ModuleList(
            DecoderBlock(cin, cout, c.modulator_dim)
            for cin, cout in zip(reversed(channels[1:]), reversed(channels[:-1]), strict=True)
        )
        self.head = nn.Conv2d(channels[0], 3, 7, 1, 3)
        init_gan_weights(self)
        # The conditioning MLPs keep PyTorch's fan-in scaled init: N(0, 0.02) through several linear layers
        # would shrink the age signal to ~1e-3 and the generator would start out blind to the target age.
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        if c.output_mode == "residual":
            nn.init.zeros_(self.head.weight)  # start as the identity map; training learns only the change

    # -- the three parts, public so tests and analysis can look inside ---------------------------
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Identity encoder: the bottleneck identity features and the skip features (full res first)."""
        x = self.stem(image)
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        return self.identity_blocks(x), skips[:-1]

    def embed_age(self, age: torch.Tensor) -> torch.Tensor:
        return self.age_embedding(age.reshape(-1).float())

    def modulate(self, identity: torch.Tensor, age: torch.Tensor) -> Modulation:
        """The personalised modulation of `identity` (bottleneck features) for target `age` (years)."""
        return self.modulator(identity, self.embed_age(age).to(identity.dtype))

    def decode(
        self, image: torch.Tensor, identity: torch.Tensor, skips: list[torch.Tensor], modulation: Modulation
    ) -> torch.Tensor:
        scale, shift, attention = (t.to(identity.dtype)[:, :, None, None] for t in modulation[1:])
        restyled = self.restyle_norm(identity) * (1 + scale) + shift
        x = attention * identity + (1 - attention) * restyled
        code = modulation.code.to(identity.dtype)
        for block in self.modulated_blocks:
            x = block(x, code)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(x, skip, code)
        delta = self.head(x)
        if self.config.output_mode == "residual":
            # Residual in tanh space, added as a change: a zero delta returns the input exactly (saturated pixels
            # too: the engine's refiners pass their input through), and the output stays in [-1, 1].
            base = torch.atanh(image.float().clamp(-0.999, 0.999))
            change = torch.tanh(base + delta.float()) - torch.tanh(base)
            return (image.float() + change).clamp(-1.0, 1.0).to(image.dtype)
        return torch.tanh(delta)

    def forward(self, image: torch.Tensor, age: torch.Tensor) -> ReAgingOutput:
        """`image` in [-1, 1] (N, 3, S, S) with S divisible by 2**num_down; `age` (N,) target years."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(image.shape)}")
        n = image.shape[0]
        age = torch.as_tensor(age, device=image.device).reshape(-1)
        if age.numel() == 1 and n > 1:
            age = age.expand(n)
        if age.shape[0] != n:
            raise ValueError(f"got {n} images but {age.shape[0]} target ages")
        identity, skips = self.encode(image)
        modulation = self.modulate(identity, age)
        return ReAgingOutput(self.decode(image, identity, skips, modulation), modulation)

    def edit_faces(
        self,
        images: torch.Tensor,
        *,
        source_age: torch.Tensor,
        target_age: torch.Tensor,
        source_aus: torch.Tensor,
        target_aus: torch.Tensor,
    ) -> EditOutput:
        """The ageing-model interface: RAGAN needs only the target age (no AUs, no source age)."""
        return EditOutput(self(images, target_age).image, None)


class ReAgingDiscriminator(HubModel):
    """Patch realism map + age-group classifier on shared stride-2 conv features."""

    model_type = "ragan_discriminator"
    role = "critic"
    config_class = ReAgingDiscriminatorConfig
    description = "RAGAN discriminator: stride-2 convs, a patch realism map and a 10-way age-group classifier."

    def __init__(self, config: ReAgingDiscriminatorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: ReAgingDiscriminatorConfig = self.config
        if c.num_layers < 1 or c.image_size % (2**c.num_layers):
            raise ValueError(f"image_size {c.image_size} must be divisible by 2**num_layers ({2**c.num_layers})")
        channels = [3] + [min(c.conv_dim * 2**i, c.max_channels) for i in range(c.num_layers)]
        self.layers = nn.Sequential(
            *[
                nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
                for cin, cout in itertools.pairwise(channels)
            ]
        )
        self.realism_head = nn.Conv2d(channels[-1], 1, 3, 1, 1)
        self.group_head = nn.Linear(channels[-1], c.num_groups)
        init_gan_weights(self)

    def forward(self, image: torch.Tensor) -> DiscriminatorOutput:
        x = self.layers(image)
        return DiscriminatorOutput(self.realism_head(x), self.group_head(x.mean(dim=(2, 3))))
