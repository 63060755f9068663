"""AgeTransGAN training: conditional StyleGAN2-style GAN with an age head, cycle, reconstruction and MI losses.

One trainer step = one discriminator update then one generator update on the same batch. Each face
gets a random target group different from its own.

- Discriminator: non-saturating logistic loss on the realism logit of the judged group (real faces
  at their own group, fakes at their target group), cross-entropy of its age head on real faces,
  and a lazy R1 penalty on real faces every ``r1_every`` steps (StyleGAN2's γ/2 · R1 · interval).
- Generator: non-saturating adversarial loss, the age-estimation loss (the discriminator's age head
  must classify the fake as the target group), cycle consistency (back to the source group gives the
  input), reconstruction (the source group as target gives the input) and the MI loss
  L_MI = 1 − cos(E_A(I_s), E_A(Î_t)) with a frozen AIFD encoder E_A (weight 0 in the pre-training
  stage, > 0 in the fine-tuning stage, which starts ``init_from`` the pre-trained run).
- An exponential moving average of the generator (StyleGAN's G_ema) is what is sampled and exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.conditions import AGE_GROUP_LABELS
from ganime_age.hub import CONFIG_NAME, WEIGHTS_NAME, load_pretrained, load_weights
from ganime_age.models.agetransgan import (
    AgeTransGAN,
    AgeTransGANConfig,
    AgeTransGANDiscriminator,
    AgeTransGANDiscriminatorConfig,
    mutual_information_loss,
)
from ganime_age.models.aifd import AIFDEncoder
from training.systems.base import AdversarialSystem, Batch, evaluating, image_grid
from training.systems.losses import r1_penalty

CHECKPOINT_INFO = "trainer.json"


@dataclass
class AgeTransGANTrainConfig:
    """YAML section ``system`` for ``train.system: agetransgan``."""

    generator: AgeTransGANConfig = field(default_factory=AgeTransGANConfig)
    discriminator: AgeTransGANDiscriminatorConfig = field(default_factory=AgeTransGANDiscriminatorConfig)
    # optimisation (StyleGAN2: Adam 0.002, betas 0/0.99, equalised learning rate)
    lr_generator: float = 0.002
    lr_discriminator: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    lr_decay_fraction: float = 0.0  # linear decay to 0 over this last fraction of the steps
    ema_decay: float = 0.999  # 0 disables G_ema (then the raw generator is sampled and exported)
    # discriminator objective
    r1_gamma: float = 1.0
    r1_every: int = 4  # lazy regularisation interval (0: no R1)
    lambda_d_age: float = 1.0  # age-group CE of the discriminator's age head on real faces
    # generator objective
    lambda_adv: float = 1.0
    lambda_age: float = 1.0  # the discriminator's age head must see the target group in the output
    lambda_cycle: float = 10.0
    lambda_reconstruction: float = 10.0
    lambda_mi: float = 0.0  # the MI loss; 0 in the pre-training stage
    aifd_path: str | None = None  # an exported AIFDEncoder folder (needed when lambda_mi > 0)
    # stages
    init_from: str | None = None  # a pre-training run folder, one of its checkpoints, or an exported generator
    init_discriminator_from: str | None = None  # exported discriminator folder (default: found next to init_from)
    export_discriminator: bool = True  # also save the discriminator to output_dir/discriminator (for fine-tuning)


def resolve_init(path: str | Path) -> tuple[Path, Path | None]:
    """Generator and discriminator weight files to start from, from a run, a checkpoint or an export folder."""
    from training.train import newest_checkpoint

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"init_from {folder} is not a folder")
    if (folder / "checkpoints").is_dir():
        checkpoint = newest_checkpoint(folder)
        if checkpoint is None:
            raise ValueError(f"init_from {folder} holds no complete checkpoint")
        folder = checkpoint
    if (folder / CHECKPOINT_INFO).is_file():  # accelerate state: models in preparation order
        discriminator = folder / "model_1.safetensors"
        return folder / "model.safetensors", discriminator if discriminator.is_file() else None
    if (folder / CONFIG_NAME).is_file():
        for candidate in (folder / "discriminator", folder.parent / "discriminator"):
            if (candidate / WEIGHTS_NAME).is_file():
                return folder / WEIGHTS_NAME, candidate / WEIGHTS_NAME
        return folder / WEIGHTS_NAME, None
    raise ValueError(f"init_from {folder}: neither a run folder, a checkpoint nor an exported model")


def random_target_groups(source: torch.Tensor, num_groups: int) -> torch.Tensor:
    """A uniformly random group different from each source group."""
    offset = torch.randint(1, num_groups, source.shape, device=source.device)
    return (source + offset) % num_groups


class AgeTransGANSystem(AdversarialSystem):
    """Models ``generator`` and ``discriminator``; frozen ``aifd`` when the MI loss is on."""

    name = "agetransgan"
    config_class = AgeTransGANTrainConfig
    config: AgeTransGANTrainConfig

    def build(self) -> None:
        c = self.config
        self.check_image_sizes(generator=c.generator, discriminator=c.discriminator)
        if c.generator.num_groups != c.discriminator.num_groups:
            raise ValueError("generator and discriminator must use the same number of age groups")
        generator = AgeTransGAN(c.generator)
        discriminator = AgeTransGANDiscriminator(c.discriminator)
        if c.init_from:
            generator_file, discriminator_file = resolve_init(c.init_from)
            if c.init_discriminator_from:
                discriminator_file = Path(c.init_discriminator_from) / WEIGHTS_NAME
            load_weights(generator, generator_file)
            if discriminator_file is not None:
                load_weights(discriminator, discriminator_file)
            print(f"agetransgan: generator from {generator_file}, discriminator from {discriminator_file or 'scratch'}")
        self.setup_adversarial(
            generator,
            discriminator,
            lr_generator=c.lr_generator,
            lr_discriminator=c.lr_discriminator,
            betas=(c.beta1, c.beta2),
            lr_decay_fraction=c.lr_decay_fraction,
            ema_decay=c.ema_decay,
        )
        if c.lambda_mi > 0:
            if not c.aifd_path:
                raise ValueError("lambda_mi > 0 needs system.aifd_path (an exported AIFDEncoder folder)")
            aifd = load_pretrained(c.aifd_path)
            if not isinstance(aifd, AIFDEncoder):
                raise ValueError(f"system.aifd_path {c.aifd_path} holds a {type(aifd).__name__}, not an AIFDEncoder")
            self.frozen["aifd"] = aifd
        self._last_r1 = torch.zeros(())

    def compile_targets(self) -> list[str]:
        return ["generator"]  # R1 needs a double backward through the discriminator

    def on_prepared(self) -> None:
        super().on_prepared()
        self._last_r1 = self._last_r1.to(self.device)

    # -- one trainer step -------------------------------------------------------------------------------
    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        source = batch["age_group"].long()
        target = random_target_groups(source, self.config.generator.num_groups)
        logs = self.discriminator_step(batch["image"], source, target, step)
        logs.update(self.generator_step(batch["image"], source, target))
        self.update_ema()
        return logs

    def discriminator_step(
        self, real: torch.Tensor, source: torch.Tensor, target: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        c = self.config
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        optimizer = self.optimizers["discriminator"]
        with torch.no_grad(), self.accelerator.autocast():
            fake = generator(real, target).to(real.dtype)
        # Real and fake in separate passes so that minibatch-stddev groups never mix them.
        use_r1 = c.r1_every > 0 and c.r1_gamma > 0 and step % c.r1_every == 0
        real_input = real.detach().requires_grad_(True) if use_r1 else real
        with self.accelerator.autocast():
            real_out = discriminator(real_input, source)
            fake_out = discriminator(fake, target)
            real_logit, fake_logit = real_out.realism.float(), fake_out.realism.float()
            adversarial = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
            age_loss = F.cross_entropy(real_out.age_logits.float(), source)
            loss = adversarial + c.lambda_d_age * age_loss
            if use_r1:  # lazy regularisation: every r1_every steps, weighted by the interval
                penalty = r1_penalty(real_out.realism, real_input)
                loss = loss + 0.5 * c.r1_gamma * c.r1_every * penalty
                self._last_r1 = penalty.detach()
        self.optimise(optimizer, loss)
        return {
            "d_loss": loss.detach(),
            "d_real": real_logit.mean().detach(),
            "d_fake": fake_logit.mean().detach(),
            "d_age": age_loss.detach(),
            "d_age_acc": (real_out.age_logits.argmax(dim=1) == source).float().mean().detach(),
            "d_r1": self._last_r1,
        }

    def generator_step(self, real: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        generator = self.models["generator"]
        optimizer = self.optimizers["generator"]
        bare_discriminator = self.unwrap("discriminator")
        bare_discriminator.requires_grad_(False)
        try:
            with self.accelerator.autocast():
                fake = generator(real, target)
                out = bare_discriminator(fake, target)
                adversarial = F.softplus(-out.realism.float()).mean()
                age_loss = F.cross_entropy(out.age_logits.float(), target)
                cycle = F.l1_loss(generator(fake, source).float(), real.float())
                loss = c.lambda_adv * adversarial + c.lambda_age * age_loss + c.lambda_cycle * cycle
                logs = {
                    "g_adv": adversarial.detach(),
                    "g_age": age_loss.detach(),
                    "g_cycle": cycle.detach(),
                    "g_age_acc": (out.age_logits.argmax(dim=1) == target).float().mean().detach(),
                }
                if c.lambda_reconstruction > 0:
                    reconstruction = F.l1_loss(generator(real, source).float(), real.float())
                    loss = loss + c.lambda_reconstruction * reconstruction
                    logs["g_reconstruction"] = reconstruction.detach()
                if "aifd" in self.frozen:
                    mi = mutual_information_loss(self.frozen["aifd"], real, fake)
                    loss = loss + c.lambda_mi * mi
                    logs["g_mi"] = mi.detach()
            self.optimise(optimizer, loss)
        finally:
            bare_discriminator.requires_grad_(True)
        logs["g_loss"] = loss.detach()
        return logs

    # -- pictures -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Rows = faces; columns = input, then the face moved to each of the age groups."""
        real = batch["image"].float()
        columns: list[tuple[str, torch.Tensor]] = [("input", real)]
        with evaluating(self.shipped_generator()) as generator:
            for group, label in enumerate(AGE_GROUP_LABELS[: self.config.generator.num_groups]):
                target = torch.full((real.shape[0],), group, dtype=torch.long, device=real.device)
                columns.append((label, generator(real, target).clamp(-1, 1)))
        return image_grid(columns)

    # -- export -----------------------------------------------------------------------------------------------
    def export(self, folder: Path, card: dict[str, Any]) -> None:
        c = self.config
        stage = "with the MI loss" if c.lambda_mi > 0 else "pre-training stage, no MI loss"
        card = {"model_name": f"AgeTransGAN ({stage})", **card}
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        self.shipped_generator().save_pretrained(folder, dtype=dtype, model_card_kwargs=card)
        if c.export_discriminator:
            target = Path(self.train.output_dir) / "discriminator"
            self.unwrap("discriminator").save_pretrained(
                target, model_card_kwargs={**card, "model_name": "AgeTransGAN discriminator"}
            )
