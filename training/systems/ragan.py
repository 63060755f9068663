"""Training system "ragan": one Re-Aging GAN generator and one discriminator, trained unpaired.

Per step (one batch of real faces x with source ages s and groups):

- a target age t is drawn per face, balanced over the 10 age groups (the data are not);
- discriminator: adversarial (hinge + R1 on reals, or WGAN-GP) on x vs G(x, t), plus age-group
  cross-entropy on the *real* faces only (it learns what ages look like from data, never from fakes);
- generator: adversarial + age-group cross-entropy of D on G(x, t) for t's group; reconstruction
  ``|G(x, s) - x|``; cycle ``|G(G(x, t), s) - x|``; identity ``1 - cos(f(G(x, t)), f(x))`` with a
  frozen face recogniser (MobileFaceNet).

G(x, t) and G(x, s) share one forward pass (the batch is doubled), so a step costs two generator
forwards (the pair, then the cycle) and two discriminator passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.conditions import AGE_GROUPS, NUM_AGE_GROUPS, group_center
from ganime_age.models.ragan import ReAgingDiscriminator, ReAgingDiscriminatorConfig, ReAgingGAN, ReAgingGANConfig
from training.systems import losses
from training.systems.base import AdversarialSystem, Batch, evaluating, image_grid

ADVERSARIAL = ("hinge", "wgan-gp")
SAMPLE_AGES = (5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
DATA_LICENSE_FALLBACK = "These weights inherit the terms of the face data they were trained on."
RECOGNIZER_NOTE = (
    "The identity loss used MobileFaceNet weights trained on CASIA-WebFace (research use only); the shipped "
    "generator does not contain them."
)


@dataclass
class ReAgingGANSystemConfig:
    """YAML section ``system`` of a RAGAN run: networks, loss weights, optimisation."""

    generator: ReAgingGANConfig = field(default_factory=ReAgingGANConfig)
    discriminator: ReAgingDiscriminatorConfig = field(default_factory=ReAgingDiscriminatorConfig)
    adversarial: str = "hinge"  # "hinge" (+ R1 on reals) | "wgan-gp"
    lambda_adv: float = 1.0
    lambda_cls: float = 1.0  # age-group classification of the generated faces (generator step)
    lambda_cls_real: float = 1.0  # age-group classification of real faces (discriminator step)
    lambda_rec: float = 10.0  # G(x, source age) = x
    lambda_cycle: float = 10.0  # G(G(x, t), source age) = x
    lambda_id: float = 1.0  # 1 - cos of face-recognition embeddings of G(x, t) and x
    lambda_gp: float = 10.0  # WGAN-GP gradient penalty
    r1_gamma: float = 1.0  # R1 penalty weight (gamma / 2 * |grad D(real)|^2) with hinge; 0 disables
    r1_every: int = 4  # lazy R1 (StyleGAN2): every k steps, scaled by k
    critic_steps: int = 1  # discriminator updates per generator update
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    lr_decay_fraction: float = 0.5  # linear decay to 0 over this last fraction of max_steps
    ema_decay: float = 0.999  # EMA of generator weights, exported and sampled; 0 disables
    recognizer: str | None = None  # MobileFaceNet safetensors; None = ganime_age.assets resolves it
    target_max_age: float = 90.0  # the oldest target drawn for the open-ended 70+ group


def sample_target_ages(
    n: int, *, continuous: bool, max_age: float, device: torch.device, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target ages balanced over the age groups: a uniform group, then (continuous) a uniform age inside it
    or (groups) its centre. Returns (ages in years, groups)."""
    groups = torch.randint(0, NUM_AGE_GROUPS, (n,), generator=generator)
    if continuous:
        lo = torch.tensor([float(AGE_GROUPS[g][0]) for g in range(NUM_AGE_GROUPS)])
        hi = torch.tensor([min(float(AGE_GROUPS[g][1]) + 1.0, max_age) for g in range(NUM_AGE_GROUPS)])
        u = torch.rand(n, generator=generator)
        ages = lo[groups] + u * (hi[groups] - lo[groups])
        # stay inside the group whose label the classifier is trained with (e.g. 19.99, not 20.0)
        ages = torch.minimum(ages, hi[groups] - 1e-3)
    else:
        ages = torch.tensor([group_center(int(g)) for g in groups])
    return ages.to(device), groups.to(device)


class ReAgingGANSystem(AdversarialSystem):
    name = "ragan"
    config_class = ReAgingGANSystemConfig

    def __init__(self, config: ReAgingGANSystemConfig, train: Any, accelerator: Any) -> None:
        super().__init__(config, train, accelerator)
        if config.adversarial not in ADVERSARIAL:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL}, got {config.adversarial!r}")
        self.check_image_sizes(generator=config.generator, discriminator=config.discriminator)
        self.ema: ReAgingGAN | None = None

    # -- construction ------------------------------------------------------------------------------
    def build(self) -> None:
        c: ReAgingGANSystemConfig = self.config
        self.setup_from_config(ReAgingGAN(c.generator), ReAgingDiscriminator(c.discriminator))
        for module in self.frozen.values():
            module.to(self.device).eval().requires_grad_(False)

    def compile_targets(self) -> list[str]:
        # the discriminator's R1 / gradient penalty needs double backward, which compiled graphs lack
        return ["generator"]

    # -- one step ------------------------------------------------------------------------------------
    def _adv_d(self, real_realism: torch.Tensor, fake_realism: torch.Tensor) -> torch.Tensor:
        if self.config.adversarial == "hinge":
            return losses.hinge_critic_loss(real_realism, fake_realism)
        return losses.wgan_critic_loss(losses.critic_score(real_realism), losses.critic_score(fake_realism))

    def _adv_g(self, fake_realism: torch.Tensor) -> torch.Tensor:
        if self.config.adversarial == "hinge":
            return losses.hinge_generator_loss(fake_realism)
        return losses.wgan_generator_loss(losses.critic_score(fake_realism))

    def _targets(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        return sample_target_ages(
            n, continuous=c.generator.age_condition == "continuous", max_age=c.target_max_age, device=self.device
        )

    def discriminator_step(self, real: torch.Tensor, groups: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        c: ReAgingGANSystemConfig = self.config
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        optimizer = self.optimizers["discriminator"]
        target_age, _ = self._targets(real.shape[0])
        with torch.no_grad(), self.accelerator.autocast():
            fake = generator(real, target_age).image
        lazy_r1 = c.adversarial == "hinge" and c.r1_gamma > 0 and step % max(c.r1_every, 1) == 0
        wgan_gp = c.adversarial == "wgan-gp" and c.lambda_gp > 0
        n = real.shape[0]
        real_in = real.detach().requires_grad_(lazy_r1)
        parts = [real_in, fake.detach().to(real.dtype)]
        if wgan_gp:
            mixed = losses.interpolate(real, fake.to(real.dtype))
            parts.append(mixed)
        with self.accelerator.autocast():
            # one pass over real | fake (| interpolated): no batch norm, so batching changes nothing, and DDP
            # sees a single forward per backward
            judged = discriminator(torch.cat(parts, dim=0))
            real_realism, fake_realism = judged.realism[:n], judged.realism[n : 2 * n]
            group_logits = judged.group_logits[:n]
            adv = self._adv_d(real_realism, fake_realism)
            cls = F.cross_entropy(group_logits.float(), groups)
            loss = c.lambda_adv * adv + c.lambda_cls_real * cls
            logs = {"d_adv": adv.detach(), "d_cls_real": cls.detach()}
            if wgan_gp:
                gp = losses.gradient_penalty(losses.critic_score(judged.realism[2 * n :]), mixed)
                loss = loss + c.lambda_gp * gp
                logs["d_gp"] = gp.detach()
            elif lazy_r1:
                r1 = losses.r1_penalty(losses.critic_score(real_realism), real_in)
                loss = loss + 0.5 * c.r1_gamma * max(c.r1_every, 1) * r1
                logs["d_r1"] = r1.detach()
        self.optimise(optimizer, loss)
        with torch.no_grad():
            logs["d_acc_real"] = (group_logits.argmax(dim=1) == groups).float().mean()
        logs["d_loss"] = loss.detach()
        return logs

    def generator_step(self, real: torch.Tensor, source_age: torch.Tensor) -> dict[str, torch.Tensor]:
        c: ReAgingGANSystemConfig = self.config
        generator = self.models["generator"]
        # D only scores here: called unwrapped (DDP must not wait for gradients it never gets), weights frozen.
        discriminator = self.unwrap("discriminator")
        optimizer = self.optimizers["generator"]
        n = real.shape[0]
        target_age, target_group = self._targets(n)
        discriminator.requires_grad_(False)
        try:
            with self.accelerator.autocast():
                both = generator(torch.cat([real, real]), torch.cat([target_age, source_age])).image
                fake, rec = both[:n], both[n:]
                cycle = generator(fake, source_age).image
                judged = discriminator(fake)
                adv = self._adv_g(judged.realism)
                cls = F.cross_entropy(judged.group_logits.float(), target_group)
                rec_loss = F.l1_loss(rec.float(), real.float())
                cycle_loss = F.l1_loss(cycle.float(), real.float())
                loss = c.lambda_adv * adv + c.lambda_cls * cls + c.lambda_rec * rec_loss + c.lambda_cycle * cycle_loss
            logs = {
                "g_adv": adv.detach(),
                "g_cls": cls.detach(),
                "g_rec": rec_loss.detach(),
                "g_cycle": cycle_loss.detach(),
            }
            if c.lambda_id > 0:
                identity = losses.identity_loss(self.frozen["recognizer"], real, fake)
                loss = loss + c.lambda_id * identity
                logs["g_id"] = identity.detach()
            self.optimise(optimizer, loss)
        finally:
            discriminator.requires_grad_(True)
        logs["g_loss"] = loss.detach()
        return logs

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real = batch["image"].to(self.device)
        source_age = batch["age"].to(self.device).float()
        groups = batch["age_group"].to(self.device).long()
        logs: dict[str, torch.Tensor] = {}
        for index in range(max(self.config.critic_steps, 1)):
            if index > 0 and self._batch_source is not None:  # fresh reals for every extra critic step
                extra = self.next_batch()
                real_d, groups_d = extra["image"].to(self.device), extra["age_group"].to(self.device).long()
            else:
                real_d, groups_d = real, groups
            logs.update(self.discriminator_step(real_d, groups_d, step * max(self.config.critic_steps, 1) + index))
        logs.update(self.generator_step(real, source_age))
        self.update_ema()
        return logs

    # -- pictures and export ---------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Input | the same faces at ages 5 .. 90 (one column per age)."""
        with evaluating(self.shipped_generator()) as generator:
            real = batch["image"].to(self.device)
            columns = [("input", real)]
            for age in SAMPLE_AGES:
                ages = torch.full((real.shape[0],), age, device=self.device)
                columns.append((f"{age:g}", generator(real, ages).image))
        return image_grid(columns)

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        """The EMA generator (fp16 by default) with a card; the trainer's card says what data it saw."""
        dtype = torch.float16 if getattr(self.train, "export_dtype", "float16") == "float16" else None
        notes = [card.get("license_note") or DATA_LICENSE_FALLBACK]
        if self.config.lambda_id > 0:
            notes.append(RECOGNIZER_NOTE)
        details = {
            "model_name": "RAGAN (Re-Aging GAN)",
            "tags": ["ragan", "age-progression", "age-regression"],
            **card,
            "license_note": " ".join(notes),
        }
        self.shipped_generator().save_pretrained(folder, dtype=dtype, model_card_kwargs=details)


__all__ = ["ReAgingGANSystem", "ReAgingGANSystemConfig", "sample_target_ages"]
