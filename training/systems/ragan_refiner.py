"""The Re-Aging GAN as a refiner of the fitted engine (issue 32).

The generator is RAGAN (``ganime_age.models.ragan``) with ``output_mode: residual``: its zero-initialised head
adds nothing, so a fresh refiner returns the engine's edit (its input, 128 px) exactly. Its parts stay: the
identity encoder, the personalised age modulator (identity features x the target age's embedding), the
skip-connected decoder with age-adaptive normalisation; it is told the target age (the face already is there,
the engine moved it). One trainer step = one discriminator step and one generator step on the same batch
(``refiner_common.AdversarialRefiner``).

RAGAN's own parts:

- the discriminator (``ReAgingDiscriminator``): hinge loss on its patch realism map (real photos against refined
  crops), lazy R1 on the real photos, and the cross-entropy of its age-group head on real photos only
  (``lambda_cls_real``: it learns what ages look like from data, never from fakes);
- the generator's hinge term (``lambda_adv``), its age-group classification (``lambda_cls``: the discriminator
  must read the target age's group in the refined crop) and reconstruction (``lambda_reconstruction``: the real
  source photo at its own age comes back unchanged); RAGAN's cycle is left out (a refiner never moves a face
  between ages);
- its identity term is the shared MobileFaceNet one, against the engine's edit on age rows (issue 32).

The shared terms (target, change, chroma/checkerboard, age hold and reading, identity) are
``refiner_common.RefinerBase.refiner_terms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ganime_age.conditions import AGE_GROUPS
from ganime_age.models.ragan import ReAgingDiscriminator, ReAgingDiscriminatorConfig, ReAgingGAN, ReAgingGANConfig
from training.systems import losses
from training.systems.base import Batch
from training.systems.refiner_common import AdversarialRefiner, AdversarialRefinerObjective


def _default_generator() -> ReAgingGANConfig:
    return ReAgingGANConfig(output_mode="residual")


@dataclass
class ReAgingRefinerConfig(AdversarialRefinerObjective):
    """YAML section ``system`` for ``train.system: ragan_refiner`` (shared terms: RefinerObjective)."""

    generator: ReAgingGANConfig = field(default_factory=_default_generator)
    discriminator: ReAgingDiscriminatorConfig = field(default_factory=ReAgingDiscriminatorConfig)
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    lambda_adv: float = 0.1  # hinge loss of the refined crop's patch realism
    lambda_cls: float = 0.1  # the discriminator's age-group head must read the target group in the refined crop
    lambda_cls_real: float = 1.0  # age-group cross-entropy of the discriminator on real photos


def age_groups(ages: torch.Tensor) -> torch.Tensor:
    """Years -> the index of the FFHQ-Aging group holding them (ganime_age.conditions.AGE_GROUPS)."""
    starts = torch.tensor([float(low) for low, _ in AGE_GROUPS[1:]], device=ages.device)
    return torch.bucketize(ages.float().reshape(-1), starts, right=True)


class ReAgingRefinerSystem(AdversarialRefiner):
    """Models ``generator`` (RAGAN, residual output) and ``discriminator``; frozen ``recognizer`` and
    ``age_estimator`` as the weights of their terms ask."""

    name = "ragan_refiner"
    config_class = ReAgingRefinerConfig
    config: ReAgingRefinerConfig
    model_name = "RAGAN (Re-Aging GAN) refiner"
    recipe = "training/configs/ragan_refiner_cpu.yaml"

    def build(self) -> None:
        c = self.config
        self.check_image_sizes(generator=c.generator, discriminator=c.discriminator)
        if c.generator.output_mode != "residual":
            raise ValueError("system.generator.output_mode must be residual: a refiner starts by passing its input")
        self.check_refiner_config(c.generator.image_size)
        self.setup_adversarial(
            ReAgingGAN(c.generator),
            ReAgingDiscriminator(c.discriminator),
            lr_generator=c.g_lr,
            lr_discriminator=c.d_lr,
            betas=tuple(c.betas),
            lr_decay_fraction=c.lr_decay_fraction,
            ema_decay=c.ema_decay,
        )
        self.load_judges()

    def refine(self, generator: torch.nn.Module, images: torch.Tensor, ages: torch.Tensor) -> torch.Tensor:
        return generator(images, ages).image

    def discriminator_loss(
        self, real: torch.Tensor, real_ages: torch.Tensor, fake: torch.Tensor, fake_ages: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        n = real.shape[0]
        lazy_r1 = c.r1_gamma > 0 and c.r1_every > 0 and step % c.r1_every == 0
        real = real.detach().requires_grad_(lazy_r1)
        judged = self.models["discriminator"](torch.cat([real, fake.detach().to(real.dtype)]))
        real_realism, fake_realism = judged.realism[:n], judged.realism[n:]
        groups = age_groups(real_ages)
        adversarial = losses.hinge_critic_loss(real_realism, fake_realism)
        classification = F.cross_entropy(judged.group_logits[:n].float(), groups)
        loss = adversarial + c.lambda_cls_real * classification
        logs = {"d_adv": adversarial.detach(), "d_cls_real": classification.detach()}
        if lazy_r1:
            r1 = losses.r1_penalty(losses.critic_score(real_realism), real)
            loss = loss + 0.5 * c.r1_gamma * c.r1_every * r1
            logs["d_r1"] = r1.detach()
        logs["d_acc_real"] = (judged.group_logits[:n].detach().argmax(dim=1) == groups).float().mean()
        return loss, logs

    def generator_terms(self, batch: Batch, output: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        judged = self.unwrap("discriminator")(output)
        adversarial = losses.hinge_generator_loss(judged.realism)
        classification = F.cross_entropy(judged.group_logits.float(), age_groups(batch["age"]))
        loss = c.lambda_adv * adversarial + c.lambda_cls * classification
        return loss, {"g_adv": adversarial.detach(), "g_cls": classification.detach()}
