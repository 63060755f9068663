"""Training system "reenact": the reenacting generator, self-supervised on single photos.

UTKFace (like most ageing data) has one photo per person, so the pairs are made: the *target* is the
prepared face with its MediaPipe landmarks; the *source* is the same face pushed through a random
warp — a thin-plate spline that moves the face by a random affine (roll, scale, shift, horizontal
squeeze) plus per-point jitter while the image border stays put — with its landmarks moved by the
inverse warp. The generator must undo the warp from the landmarks alone:

- discriminator: hinge loss of the conditional PatchGAN (image + target heatmaps) on real targets vs
  generated faces;
- generator: L1 to the target, L1 of the warped source to the target (teaches the motion field
  directly), identity ``1 - cos`` of MobileFaceNet embeddings of output and target, hinge adversarial
  loss, and (optional) VGG19 perceptual loss.

Flips: ``train.hflip`` mirrors whole faces (source and target together). A flip *between* source and
target would mirror the background too, which reenactment never asks for (the background stays, only
the face moves), so pairs are not flipped against each other. Mirrored faces do not re-pair left/right
landmark indices; the heatmaps merge left and right parts into shared channels, so that is consistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.models.reenact import (
    ReenactDiscriminator,
    ReenactDiscriminatorConfig,
    Reenactor,
    ReenactorConfig,
    frame_points,
    grid_to_pixels,
    identity_grid,
    pixels_to_grid,
    tps_solve,
    tps_transform,
)
from training.systems import losses
from training.systems.base import AdversarialSystem, Batch, evaluating, image_grid

UTKFACE_LICENSE_NOTE = (
    "Trained on UTKFace, which is released for non-commercial research only; these weights inherit that "
    "restriction. The identity loss used MobileFaceNet weights trained on CASIA-WebFace (research use)."
)


@dataclass
class WarpConfig:
    """How far the random source warps go (grid units: the image spans [-1, 1])."""

    rotation_degrees: float = 15.0  # head roll, about the face centre
    scale: float = 0.1  # face scale drawn from [1 - scale, 1 + scale]
    translation: float = 0.06  # face shift
    squeeze: float = 0.12  # horizontal squeeze/stretch of the face, a crude yaw
    tps_strength: float = 0.04  # extra jitter of the spline's control points, relative to the face size
    tps_grid: int = 5  # control points per side of the face box


@dataclass
class ReenactSystemConfig:
    """YAML section ``system`` of a reenactment run."""

    generator: ReenactorConfig = field(default_factory=ReenactorConfig)
    discriminator: ReenactDiscriminatorConfig = field(default_factory=ReenactDiscriminatorConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    lambda_l1: float = 10.0
    lambda_warp: float = 1.0  # L1 of the motion-warped source to the target
    lambda_id: float = 1.0
    lambda_adv: float = 1.0
    lambda_perceptual: float = 1.0  # only when vgg19_weights is set
    vgg19_weights: str | None = None
    recognizer: str | None = None  # MobileFaceNet safetensors; None = ganime_age.assets resolves it
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_fraction: float = 0.5
    ema_decay: float = 0.999  # 0 disables


def random_pairs(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    warp: WarpConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random warped copies of `images` (N, 3, S, S) and their landmarks (N, 478, 2) pixels.

    Like a head moving in front of a still background: a thin-plate spline pins the image border and
    moves a control grid over the face box by a random similarity (plus a horizontal squeeze and a
    per-point jitter). The source pixel at p is read from the original at ``T(p)``; landmarks move by the
    spline through the swapped controls (exact at the controls, close in between). The control grid is
    not the generator's own landmark prior, so the prior alone never undoes the warp exactly.
    """
    n, _, size, _ = images.shape
    device = images.device

    def uniform(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * 2.0 - 1.0).to(device)

    points = pixels_to_grid(landmarks[..., :2].float(), size)
    low, high = points.amin(1), points.amax(1)
    centre, half = (low + high) / 2.0, (high - low) / 2.0
    k = max(warp.tps_grid, 2)
    axis = torch.linspace(-1.0, 1.0, k, device=device)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    unit = torch.stack([gx, gy], -1).reshape(1, -1, 2)
    controls = centre[:, None, :] + unit * half[:, None, :]  # in the original image

    angle = uniform(n) * math.radians(warp.rotation_degrees)
    scale = 1.0 + uniform(n) * warp.scale
    squeeze = 1.0 + uniform(n) * warp.squeeze
    cos, sin = torch.cos(angle), torch.sin(angle)
    linear = torch.stack([torch.stack([cos * squeeze, -sin], 1), torch.stack([sin * squeeze, cos], 1)], 1)
    linear = linear * scale[:, None, None]
    shift = uniform(n, 2) * warp.translation
    jitter = uniform(n, k * k, 2) * (warp.tps_strength * 2.0 * half.mean(1))[:, None, None]
    moved = (controls - centre[:, None, :]) @ linear.transpose(1, 2) + (centre + shift)[:, None, :] + jitter

    frame = frame_points(n, per_side=4, device=device)
    in_source = torch.cat([moved, frame], 1)
    in_original = torch.cat([controls, frame], 1)
    to_original = tps_solve(in_source, in_original)
    to_source = tps_solve(in_original, in_source)
    grid = identity_grid(n, size, size, device).reshape(n, -1, 2)
    sample_at = tps_transform(to_original, in_source, grid).reshape(n, size, size, 2)
    source = F.grid_sample(
        images, sample_at.to(images.dtype), mode="bilinear", padding_mode="reflection", align_corners=False
    )
    source_landmarks = grid_to_pixels(tps_transform(to_source, in_original, points), size)
    return source, source_landmarks


class ReenactSystem(AdversarialSystem):
    name = "reenact"
    config_class = ReenactSystemConfig

    def __init__(self, config: ReenactSystemConfig, train: Any, accelerator: Any) -> None:
        super().__init__(config, train, accelerator)
        self.check_image_sizes(generator=config.generator, discriminator=config.discriminator)
        self.ema: Reenactor | None = None

    def build(self) -> None:
        c: ReenactSystemConfig = self.config
        self.setup_from_config(Reenactor(c.generator), ReenactDiscriminator(c.discriminator))
        if c.vgg19_weights and c.lambda_perceptual > 0:
            self.frozen["vgg"] = losses.VGG19Features().load_file(c.vgg19_weights)
        for module in self.frozen.values():
            module.to(self.device).eval().requires_grad_(False)

    # -- one step -----------------------------------------------------------------------------------
    def make_pairs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(source, source landmarks, target, target landmarks) on the device."""
        target = batch["image"].to(self.device).float().contiguous()
        target_landmarks = batch["landmarks"].to(self.device).float()
        with torch.no_grad():
            source, source_landmarks = random_pairs(target, target_landmarks, self.config.warp)
        return source, source_landmarks, target, target_landmarks

    def discriminator_step(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor) -> dict[str, Any]:
        discriminator = self.models["discriminator"]
        optimizer = self.optimizers["discriminator"]
        with self.accelerator.autocast():
            real_score = discriminator(real, landmarks).float()
            fake_score = discriminator(fake.detach(), landmarks).float()
            loss = F.relu(1.0 - real_score).mean() + F.relu(1.0 + fake_score).mean()
        self.optimise(optimizer, self.config.lambda_adv * loss)
        return {"d_loss": loss.detach(), "d_real": real_score.mean().detach(), "d_fake": fake_score.mean().detach()}

    def generator_losses(
        self, output: Any, target: torch.Tensor, target_landmarks: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: ReenactSystemConfig = self.config
        image = output.image.float()
        l1 = F.l1_loss(image, target)
        warp_l1 = F.l1_loss(output.warped.float(), target)
        loss = c.lambda_l1 * l1 + c.lambda_warp * warp_l1
        logs = {"g_l1": l1.detach(), "g_warp": warp_l1.detach()}
        if c.lambda_adv > 0:
            discriminator = self.unwrap("discriminator")
            discriminator.requires_grad_(False)
            try:
                with self.accelerator.autocast():
                    adv = -discriminator(output.image, target_landmarks).float().mean()
            finally:
                discriminator.requires_grad_(True)
            loss = loss + c.lambda_adv * adv
            logs["g_adv"] = adv.detach()
        if "recognizer" in self.frozen:
            identity = losses.identity_loss(self.frozen["recognizer"], target, image)
            loss = loss + c.lambda_id * identity
            logs["g_id"] = identity.detach()
        if "vgg" in self.frozen:
            perceptual = losses.perceptual_loss(self.frozen["vgg"], image, target)
            loss = loss + c.lambda_perceptual * perceptual
            logs["g_perceptual"] = perceptual.detach()
        logs["g_loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        source, source_landmarks, target, target_landmarks = self.make_pairs(batch)
        generator = self.models["generator"]
        with self.accelerator.autocast():
            output = generator(source, source_landmarks, target_landmarks)
        logs: dict[str, Any] = {}
        if self.config.lambda_adv > 0:
            logs.update(self.discriminator_step(output.image, target, target_landmarks))
        loss, g_logs = self.generator_losses(output, target, target_landmarks)
        optimizer = self.optimizers["generator"]
        self.optimise(optimizer, loss)
        self.update_ema()
        logs.update(g_logs)
        return logs

    # -- pictures and export --------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Source (warped copy) | output | warped by the motion field | attention | target; plus a cross pair."""
        with evaluating(self.shipped_generator()) as generator:
            torch.manual_seed(0)  # the same warps at every sampling step
            source, source_landmarks, target, target_landmarks = self.make_pairs(batch)
            out = generator(source, source_landmarks, target_landmarks)
            # cross-identity: each source driven by the next face's landmarks
            driven = generator(source, source_landmarks, target_landmarks.roll(1, dims=0))
        return image_grid(
            [
                ("source", source),
                ("output", out.image),
                ("warped", out.warped),
                ("attn", out.attention),
                ("target", target),
                ("driver", target.roll(1, dims=0)),
                ("driven", driven.image),
            ]
        )

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        dtype = torch.float16 if getattr(self.train, "export_dtype", "float16") == "float16" else None
        details = {
            "model_name": "ganime-age reenactor",
            "license": "other",
            "license_name": "utkface-non-commercial",
            "license_note": UTKFACE_LICENSE_NOTE,
            "datasets": ["UTKFace"],
            "tags": ["reenactment", "face-reenactment"],
            **card,
        }
        self.shipped_generator().save_pretrained(folder, dtype=dtype, model_card_kwargs=details)


__all__ = ["ReenactSystem", "ReenactSystemConfig", "WarpConfig", "random_pairs"]
