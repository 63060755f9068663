"""The refiner of the fitted engine: GANimation-age (``refiner: true``) trained on the engine's own edits.

The terms every refiner shares (target, change, chroma/checkerboard, the age holds, identity) are computed by
``training/systems/refiner_common.py`` (AgeTransGAN's and RAGAN's refiners use them too); this module adds
GANimation-age's own (colour target and keep, attention, its smoothness, the WGAN-GP critic).

Issue 21, item 4. At inference (``FaceEditor.refine_photo``) the refiner gets the 128 px aligned crop of the
engine's edited photo and the target conditions (it is told the face already is at the target), and its
*change* (output - input) is upsampled and added to the full-resolution photo, so it can add detail but
never blur the photo. A fresh refiner passes its input through (its attention head is biased to "keep").

Training data (``training/data/refiner.py``, read by ``training.data.prepared.RefinerPairs``): the engine's edits of
CFEE training people (Neutral -> posed AUs and posed -> AUs 0), each with the same person's real photo of
that expression as ground truth, and the engine's age edits of UTKFace photos without a ground truth.
One trainer step = one critic step and one generator step on the same batch (one generator forward).

The generator's objective, and why each term is there:

- ``lambda_target``: L1 between the output and the real target photo, both average-pooled to
  ``target_sizes`` (32 and 64 px of a 128 px crop). They are different photos (a moment apart, a head a
  little turned), so shapes and tones are compared, not pixels: what the engine gets wrong at that scale
  (a median mouth interior, the shading of a strong expression) is what the refiner should fix.
- ``lambda_color_target``: the same on the colour image C. A refiner starts by copying its input through a
  saturated attention, where the output's loss barely reaches C; comparing C itself makes it a picture
  worth opening the attention for (the campaign's lesson, training/JOURNAL.md).
- ``lambda_color_keep``: full-resolution L1 between C and the input. C trained at 32/64 px alone is a blur,
  and opening the attention on a blur costs every pixel of detail (``lambda_change``), so a fresh refiner
  closed its attention further step after step (run 1, 170 steps). Held to the input's detail, C becomes
  the input plus low-frequency corrections, and the attention opens where those corrections pay.
- ``lambda_identity``: 1 - cos of frozen MobileFaceNet embeddings of the output and the source photo (the
  judges are dlib's, never in a loss). Skipped, with a warning, when the network's weights are not found
  and ``identity_if_available`` is set. On age rows (``has_target`` 0: UTKFace age edits, no real photo)
  the reference is the engine's edit (``identity_age_reference: edit``), not the source photo: a 75-year-old
  edit is meant to look less like the 25-year-old photo, and run 2's identity against the source pulled the
  refined edit back to it (75 read 42.5 against the engine's 53.1, issue 32). The same person at the target
  age is what the engine made; the refiner must not move away from it.
- ``lambda_age_hold`` (issue 32): on age rows, L1 between the output and the engine's edit, both
  average-pooled to ``hold_sizes`` (16 and 32 px of a 128 px crop: blocks of 8 and 4 px). Where there is no
  ground truth the engine's age change is the target: the refiner may add detail finer than those blocks but
  not undo the engine's structure and tone (run 2 did, with nothing to hold it). Zero at a pass-through start.
- ``lambda_age_reading`` (issue 32): on age rows, |reading of the output - reading of the engine's edit| in
  years, by the project's frozen age estimator (48 px, cheap on a CPU). The engine's reading, not the nominal
  target age: the refiner is held to the engine's age change, neither undoing nor exaggerating it.
- ``lambda_change``: mean |output - input|, so it changes only what it must (pooled L1 gradients are as
  large per pixel as this one's: ``lambda_target`` > ``lambda_change`` lets it move towards the target
  where the move is predictable from its input). Like ``lambda_color_keep`` it compares with the engine's
  edit (the refiner's input), never the source photo, on every row.
- ``lambda_chroma`` / ``lambda_checkerboard``: the fine colour detail (speckles, tints) and the 2-pixel
  hatching the refiner adds to its input (``training.systems.losses``): the artefacts a critic-trained generator
  drew in the campaign.
- ``lambda_mask_smooth``: total variation of the attention (GANimation's), so changes come in smooth patches.
- ``lambda_adv`` (small, 0.1): WGAN-GP realism against real crops (the CFEE targets, the UTKFace sources),
  for the skin of young and old targets that no pair covers. ``lambda_drift`` (1e-3 x the squared real score)
  keeps the critic's scores near 0 (WGAN scores drift freely otherwise: -30 to +2 within 150 steps).
- ``lambda_attention`` (0.1): a cross-entropy of the attention against where the target differs from the
  input by more than ~15 grey levels over 4x4 blocks (where the engine is wrong, or the photos differ), whose
  gradient, unlike the output's, does not vanish where a fresh refiner's attention saturates at "keep"
  (1 - 6e-6: the output's gradients reach its logits scaled by 6e-6). Small: it only holds the attention
  where the other terms can move it; they decide what the refiner puts there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.models.ganimation_age import (
    GanimationAgeConfig,
    GanimationAgeDiscriminatorConfig,
)
from training.systems.base import Batch, evaluating, image_grid
from training.systems.ganimation_age import build_generator_and_critic
from training.systems.losses import (
    critic_score,
    gradient_penalty,
    interpolate,
    total_variation,
    wgan_critic_loss,
    wgan_generator_loss,
)
from training.systems.refiner_common import RefinerBase, RefinerObjective


def _default_generator() -> GanimationAgeConfig:
    return GanimationAgeConfig(refiner=True)


@dataclass
class RefinerTrainConfig(RefinerObjective):
    """YAML section ``system`` for ``train.system: ganimation_refiner`` (the shared terms: RefinerObjective)."""

    generator: GanimationAgeConfig = field(default_factory=_default_generator)
    discriminator: GanimationAgeDiscriminatorConfig = field(default_factory=GanimationAgeDiscriminatorConfig)
    # optimisation (GANimation's Adam, linear decay over the last half)
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_fraction: float = 0.5
    critic_steps: int = 1  # 1: one critic step per generator step, on that step's outputs; 0: no critic
    lambda_gp: float = 10.0
    lambda_drift: float = 1e-3  # Karras et al. 2018's epsilon x D(real)^2: keeps the critic's scores near 0
    # GANimation-age's own generator terms (see the module docstring)
    lambda_color_target: float = 5.0
    lambda_color_keep: float = 1.0  # full-resolution L1 of C to the input: C = the input's detail + corrections
    lambda_mask_smooth: float = 2.5e-4
    lambda_adv: float = 0.1
    lambda_attention: float = 0.1
    attention_pool: int = 4  # the attention target: where the pooled |target - input| exceeds attention_floor,
    attention_floor: float = 0.12  # scaled by attention_gain (cf. ganimation_age's paired_mask_*): ~20% of a pair
    attention_gain: float = 4.0


class RefinerSystem(RefinerBase):
    """Models ``generator`` (a GanimationAge refiner) and ``critic``; frozen ``recognizer`` when available, and
    ``age_estimator`` when ``lambda_age_reading`` > 0."""

    name = "ganimation_refiner"
    config_class = RefinerTrainConfig
    config: RefinerTrainConfig
    model_name = "GANimation-age refiner"
    recipe = "training/configs/ganimation_refiner_cpu.yaml"
    conditions = "the target age and AUs"

    def build(self) -> None:
        c = self.config
        self.check_image_sizes(generator=c.generator, discriminator=c.discriminator)
        if not c.generator.refiner:
            raise ValueError("system.generator.refiner must be true: a refiner starts by passing its input through")
        if c.critic_steps not in (0, 1):
            raise ValueError("system.critic_steps must be 0 (no critic) or 1 (one critic step per generator step)")
        if c.critic_steps == 0 and c.lambda_adv > 0:
            raise ValueError("system.critic_steps 0 trains no critic: lambda_adv must be 0")
        self.check_refiner_config(c.generator.image_size)
        build_generator_and_critic(self, c)
        self.load_judges()

    def compile_targets(self) -> list[str]:
        return ["generator"]  # the critic's gradient penalty needs a double backward

    # -- one trainer step -------------------------------------------------------------------------------
    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        generator = self.models["generator"]
        with self.accelerator.autocast():
            out = generator(batch["image"], batch["aus"].float(), batch["age"].float())
        logs: dict[str, Any] = {}
        if self.config.critic_steps > 0:
            logs.update(self.critic_step(batch, out.image.detach().to(batch["image"].dtype)))
        logs.update(self.generator_step(batch, out))
        return logs

    def critic_step(self, batch: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """One WGAN-GP critic update on real photos vs this step's refined crops (its AU/age heads unused)."""
        c = self.config
        critic = self.models["critic"]
        real = self.real_images(batch)
        n = real.shape[0]
        mixed = interpolate(real, fake)
        with self.accelerator.autocast():
            score = critic_score(critic(torch.cat([real, fake, mixed], dim=0)).realism)
            adversarial = wgan_critic_loss(score[:n], score[n : 2 * n])
            penalty = gradient_penalty(score[2 * n :], mixed)
            drift = score[:n].pow(2).mean()
            loss = adversarial + c.lambda_gp * penalty + c.lambda_drift * drift
        self.optimise(self.optimizers["critic"], loss)
        return {
            "d_loss": loss.detach(),
            "d_wasserstein": -adversarial.detach(),
            "d_gp": penalty.detach(),
            "d_real": score[:n].detach().mean(),
        }

    def attention_loss(
        self, attention: torch.Tensor, source: torch.Tensor, target: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of the attention against 1 - (where the target differs from the input, coarsely)."""
        if not bool(chosen.any()):
            return attention.new_zeros((), dtype=torch.float32)
        c = self.config
        difference = (target[chosen].float() - source[chosen].float()).abs().mean(1, keepdim=True)
        pooled = F.avg_pool2d(difference, c.attention_pool)
        change = F.interpolate(pooled, size=difference.shape[-2:], mode="bilinear")
        keep = 1.0 - (c.attention_gain * (change - c.attention_floor)).clamp(0.0, 1.0)
        # 1e-7, not 1e-4: a fresh refiner's attention is 1 - 6e-6, where a wider clamp would cut the gradient
        a = attention[chosen].float().clamp(1e-7, 1.0 - 1e-7)
        with torch.autocast(a.device.type, enabled=False):  # CUDA autocast refuses BCE on probabilities
            return F.binary_cross_entropy(a, keep.float()) * chosen.float().mean()

    def generator_step(self, batch: Batch, out: Any) -> dict[str, torch.Tensor]:
        bare_critic = self.unwrap("critic")
        bare_critic.requires_grad_(False)  # it only scores here
        loss, logs = self.generator_loss(batch, out)
        self.optimise(self.optimizers["generator"], loss)
        bare_critic.requires_grad_(True)
        logs["g_loss"] = loss.detach()
        return logs

    def generator_loss(self, batch: Batch, out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's objective (the module docstring) for the generator's output `out` (image, attention,
        colour) on `batch`, and its terms for the log."""
        c = self.config
        edit, target = batch["image"], batch["target_image"]
        paired = self.paired_rows(batch)
        with self.accelerator.autocast():
            loss, logs = self.refiner_terms(batch, out.image)  # target, change, artefacts, age holds, identity
            color_loss = self.pooled_l1(out.color, target, paired)
            color_keep = (out.color.float() - edit.float()).abs().mean()
            smooth = total_variation(out.attention)
            loss = (
                loss
                + c.lambda_color_target * color_loss
                + c.lambda_color_keep * color_keep
                + c.lambda_mask_smooth * smooth
            )
            logs.update(
                g_color=color_loss.detach(),
                g_color_keep=color_keep.detach(),
                g_smooth=smooth.detach(),
                attention_open=(1.0 - out.attention.detach().float()).mean(),  # the share of C in the output
            )
            if c.lambda_attention > 0:
                attention = self.attention_loss(out.attention, edit, target, paired)
                loss = loss + c.lambda_attention * attention
                logs["g_attention"] = attention.detach()
            if c.critic_steps > 0:
                adversarial = wgan_generator_loss(critic_score(self.unwrap("critic")(out.image).realism))
                loss = loss + c.lambda_adv * adversarial
                logs["g_adv"] = adversarial.detach()
        return loss, logs

    # -- pictures -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Rows = held-out pairs; columns = source | engine edit | refined | change x4 | attention | C | target."""
        edit = batch["image"].float()
        with evaluating(self.unwrap("generator")) as generator:
            out = generator(edit, batch["aus"].float(), batch["age"].float())
        amplified = ((out.image.float() - edit) * 4.0).clamp(-1.0, 1.0)
        return image_grid(
            [
                ("source", batch["source_image"]),
                ("engine", edit),
                ("refined", out.image),
                ("change x4", amplified),
                ("A", out.attention.float()),
                ("C", out.color),
                ("target", batch["target_image"]),
            ]
        )

    # -- export ---------------------------------------------------------------------------------------------
    def export(self, folder: Path, card: dict[str, Any]) -> None:
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        self.unwrap("generator").save_pretrained(folder, dtype=dtype, model_card_kwargs=self.refiner_card(card))
