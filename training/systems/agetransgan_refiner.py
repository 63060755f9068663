"""AgeTransGAN as a refiner of the fitted engine (issue 32), with or without its MI loss.

The generator is AgeTransGAN with ``refiner: true`` (``ganime_age.models.agetransgan``): its output is its input
(the engine's edit, 128 px) plus the synthesis network's output, whose toRGB layers start at zero, so a fresh
refiner returns the engine's edit exactly. It keeps its conditioning: the soft code of the target age's group
(told, like every refiner, that the face already is at the target). One trainer step = one discriminator step
and one generator step on the same batch (``refiner_common.AdversarialRefiner``).

AgeTransGAN's own parts:

- the discriminator (``AgeTransGANDiscriminator``): non-saturating logistic loss on the realism logit of the
  judged group (real photos at their own age's soft group code, refined crops at the target's), the
  cross-entropy of its age-group head on real photos (``lambda_d_age``), lazy R1 on real photos;
- the generator's adversarial term (``lambda_adv``) and age-classification term (``lambda_age``: the
  discriminator's age head must read the target group, as a soft code, in the refined crop);
- the MI loss (``lambda_mi``) L_MI = 1 - cos(E_A(reference), E_A(output)) with the identity embedding E_A of a
  frozen AIFD encoder (``aifd_path``, an export of ``training/configs/aifd_cpu.yaml``); the reference is the
  identity term's (the source photo; on age rows the engine's edit, issue 32). ``lambda_mi: 0`` is the same
  refiner without it;
- the reconstruction of the real source photo at its own age (``lambda_reconstruction``); AgeTransGAN's cycle is
  left out (the refiner never moves a face between groups).

The shared terms (target, change, chroma/checkerboard, age hold and reading, MobileFaceNet identity against the
engine's edit on age rows) are ``refiner_common.RefinerBase.refiner_terms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganime_age.hub import load_pretrained
from ganime_age.models.agetransgan import (
    AgeTransGAN,
    AgeTransGANConfig,
    AgeTransGANDiscriminator,
    AgeTransGANDiscriminatorConfig,
    mutual_information_loss,
)
from ganime_age.models.aifd import AIFDEncoder
from ganime_age.models.common import soft_group_code
from training.systems.base import Batch
from training.systems.losses import r1_penalty
from training.systems.refiner_common import AdversarialRefiner, AdversarialRefinerObjective


def _default_generator() -> AgeTransGANConfig:
    return AgeTransGANConfig(refiner=True)


@dataclass
class AgeTransGANRefinerConfig(AdversarialRefinerObjective):
    """YAML section ``system`` for ``train.system: agetransgan_refiner`` (shared terms: RefinerObjective)."""

    generator: AgeTransGANConfig = field(default_factory=_default_generator)
    discriminator: AgeTransGANDiscriminatorConfig = field(default_factory=AgeTransGANDiscriminatorConfig)
    lr_generator: float = 1e-3
    lr_discriminator: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.99
    lambda_d_age: float = 1.0  # age-group cross-entropy of the discriminator's age head on real photos
    lambda_adv: float = 0.1  # non-saturating logistic loss of the target group's realism logit
    lambda_age: float = 0.1  # the discriminator's age head must read the target group in the refined crop
    lambda_mi: float = 0.0  # 1 - cos of the frozen AIFD identity embeddings (0: the refiner without MI)
    aifd_path: str | None = None  # an exported AIFDEncoder folder (needed when lambda_mi > 0)


class AgeTransGANRefinerSystem(AdversarialRefiner):
    """Models ``generator`` (AgeTransGAN, ``refiner: true``) and ``discriminator``; frozen ``aifd`` (MI),
    ``recognizer`` and ``age_estimator`` as the weights of their terms ask."""

    name = "agetransgan_refiner"
    config_class = AgeTransGANRefinerConfig
    config: AgeTransGANRefinerConfig
    model_name = "AgeTransGAN refiner"
    recipe = "training/configs/agetransgan_mi_refiner_cpu.yaml"

    def build(self) -> None:
        c = self.config
        self.check_image_sizes(generator=c.generator, discriminator=c.discriminator)
        if not c.generator.refiner:
            raise ValueError("system.generator.refiner must be true: a refiner starts by passing its input through")
        if c.generator.num_groups != c.discriminator.num_groups:
            raise ValueError("generator and discriminator must use the same number of age groups")
        self.check_refiner_config(c.generator.image_size)
        self.setup_adversarial(
            AgeTransGAN(c.generator),
            AgeTransGANDiscriminator(c.discriminator),
            lr_generator=c.lr_generator,
            lr_discriminator=c.lr_discriminator,
            betas=(c.beta1, c.beta2),
            lr_decay_fraction=c.lr_decay_fraction,
            ema_decay=c.ema_decay,
        )
        if c.lambda_mi > 0 and not c.aifd_path:
            raise ValueError("lambda_mi > 0 needs system.aifd_path (an exported AIFDEncoder folder)")
        if c.lambda_mi > 0 and not self.export_only:
            aifd = load_pretrained(c.aifd_path)
            if not isinstance(aifd, AIFDEncoder):
                raise ValueError(f"system.aifd_path {c.aifd_path} holds a {type(aifd).__name__}, not an AIFDEncoder")
            self.frozen["aifd"] = aifd.eval().requires_grad_(False)
        self.load_judges()
        self._last_r1 = torch.zeros(())

    def code(self, ages: torch.Tensor) -> torch.Tensor:
        """Years -> the soft code of the two nearest age groups (the generator's and discriminator's condition)."""
        return soft_group_code(ages.reshape(-1), self.config.generator.num_groups)

    def refine(self, generator: torch.nn.Module, images: torch.Tensor, ages: torch.Tensor) -> torch.Tensor:
        return generator(images, self.code(ages).to(images.device))

    def discriminator_loss(
        self, real: torch.Tensor, real_ages: torch.Tensor, fake: torch.Tensor, fake_ages: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        discriminator = self.models["discriminator"]
        use_r1 = c.r1_every > 0 and c.r1_gamma > 0 and step % c.r1_every == 0
        real = real.detach().requires_grad_(use_r1)
        real_code = self.code(real_ages).to(real.device)
        # real and refined in separate passes, so that minibatch-stddev groups never mix them
        real_out = discriminator(real, real_code)
        fake_out = discriminator(fake.detach(), self.code(fake_ages).to(real.device))
        real_logit, fake_logit = real_out.realism.float(), fake_out.realism.float()
        adversarial = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        age_loss = F.cross_entropy(real_out.age_logits.float(), real_code)
        loss = adversarial + c.lambda_d_age * age_loss
        if use_r1:  # lazy regularisation: every r1_every steps, weighted by the interval
            penalty = r1_penalty(real_out.realism, real)
            loss = loss + 0.5 * c.r1_gamma * c.r1_every * penalty
            self._last_r1 = penalty.detach()
        return loss, {
            "d_real": real_logit.mean().detach(),
            "d_fake": fake_logit.mean().detach(),
            "d_age": age_loss.detach(),
            "d_r1": self._last_r1.to(loss.device),
        }

    def generator_terms(self, batch: Batch, output: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        target_code = self.code(batch["age"].float()).to(output.device)
        judged = self.unwrap("discriminator")(output, target_code)
        adversarial = F.softplus(-judged.realism.float()).mean()
        age_loss = F.cross_entropy(judged.age_logits.float(), target_code)
        loss = c.lambda_adv * adversarial + c.lambda_age * age_loss
        logs = {"g_adv": adversarial.detach(), "g_age": age_loss.detach()}
        if "aifd" in self.frozen:
            mi = mutual_information_loss(self.frozen["aifd"], self.identity_reference(batch).float(), output.float())
            loss = loss + c.lambda_mi * mi
            logs["g_mi"] = mi.detach()
        return loss, logs

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        self.model_name = "AgeTransGAN refiner" + (" (with the MI loss)" if self.config.lambda_mi > 0 else "")
        super().export(folder, card)
