"""GANimation-age training: WGAN-GP critic with AU and age heads, attention generator, cycle and identity losses.

One trainer step = ``critic_steps`` (5) critic updates, each on a fresh batch from the trainer's
data stream, then one generator update on the last of those batches (after the critic has been
updated on it), as GANimation trains D on every batch and G on every fifth. A step therefore
consumes ``critic_steps`` batches.

Loss weights are per-sample averages. GANimation's defaults (batch 25) divide its AU-regression MSE
(already a mean over batch and AUs) by the batch size again and weight it by 4000, i.e. an
effective weight of 4000 / 25 = 160 on the mean squared error of AU/5: that is ``lambda_au`` and
``lambda_critic_au`` here, independent of our batch size. Its mask smoothness term sums the total
variation over the whole batch with weight 1e-5, i.e. 1e-5 x 25 = 2.5e-4 on the per-image summed TV
averaged over the batch (``lambda_mask_smooth``). Age is regressed like the AUs: MSE on age/100.

Options for learning more per unit of compute (all off by default, i.e. GANimation's recipe):
``reuse_fakes`` lets a single critic step train on the generator step's own fakes (one generator
forward fewer per step); ``gp_every`` makes the gradient penalty lazy; ``lambda_estimator_age`` adds a
frozen age estimator as a second age teacher (as SAM does with its age classifier), its target being
what real faces of the target age read (``training.evaluation.metrics.age_reading_curve``) and its input randomly
shifted so that pixel-exact patterns cannot fool it; ``lambda_chroma`` penalises the fine colour detail an
edit adds (speckles, tinted blotches) and ``lambda_checkerboard`` the 2-pixel hatching of the transposed
convolutions; ``strong_au_share`` asks for strong single-AU edits,
which a mostly neutral or smiling dataset rarely provides; ``paired_share`` turns a share of the faces
that have a same-person partner (CFEE: one person posing many expressions) into supervised edits:
the target AUs are the partner's coded AUs and the edit should look like the partner photo, compared
at low resolution (``shape_pool``) so that it teaches where brows, lids and lips go, not the pixels.
A generator that mostly copies its input (attention near 1) learns little from that: its colour image
C is poor where it is not used, so copying stays the better answer; ``color_share`` also
compares C itself with the partner (and with the anchor's edit, and penalises its hatching), so that C
becomes worth using, and
``lambda_paired_mask`` tells a saturated attention where the pair differs (a cross-entropy, whose
gradient does not vanish at A near 1 as the attention's sigmoid does). ``critic_steps`` 0 makes a
supervised phase without the critic, with ``lambda_anchor`` keeping age-only edits what a frozen
generator (the previous checkpoint) made them. Samples whose age is an estimate (CFEE) do
not train the critic's age head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.conditions import AU_MAX, AU_NAMES, MAX_AGE
from ganime_age.models.ganimation_age import (
    GanimationAge,
    GanimationAgeConfig,
    GanimationAgeDiscriminator,
    GanimationAgeDiscriminatorConfig,
    normalise_aus,
)
from training.systems.base import Batch, TrainingSystem, evaluating, image_grid, linear_decay, make_adam
from training.systems.losses import (
    VGG19Features,
    checkerboard_loss,
    chroma_detail_loss,
    critic_score,
    gradient_penalty,
    identity_loss,
    interpolate,
    mask_mean,
    perceptual_loss,
    random_shift,
    total_variation,
    wgan_critic_loss,
    wgan_generator_loss,
)

# The sample grid: an age ramp with the source AUs, then AU edits at the source age.
SAMPLE_AGES: tuple[float, ...] = (5, 15, 30, 50, 70, 90)
SAMPLE_AU_EDITS: tuple[tuple[str, str, float], ...] = (
    ("smile", "AU12", 4.0),
    ("jaw drop", "AU26", 4.0),
    ("brow low", "AU04", 4.0),
)
SAMPLE_MASKS: tuple[str, ...] = ("age 5", "age 90", "smile")


@dataclass
class GanimationAgeTrainConfig:
    """YAML section ``system`` for ``train.system: ganimation_age``."""

    generator: GanimationAgeConfig = field(default_factory=GanimationAgeConfig)
    discriminator: GanimationAgeDiscriminatorConfig = field(default_factory=GanimationAgeDiscriminatorConfig)
    # optimisation (GANimation: Adam 1e-4, betas 0.5/0.999, linear decay to 0 over the last half)
    critic_steps: int = 5  # 0: a supervised phase, the critic neither learns nor teaches (lambda_adv/au/age 0)
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_fraction: float = 0.5
    # critic objective
    lambda_gp: float = 10.0
    lambda_critic_au: float = 160.0  # = GANimation's 4000 / batch 25, on the batch-mean MSE of AU/5
    lambda_critic_age: float = 160.0  # MSE of age/100 on real faces (10 years off costs as much as 0.5 AU)
    # generator objective
    lambda_adv: float = 1.0
    lambda_au: float = 160.0
    lambda_age: float = 160.0
    lambda_cycle: float = 10.0
    lambda_mask: float = 0.1
    lambda_mask_smooth: float = 2.5e-4  # = GANimation's 1e-5 on a TV summed over its batch of 25
    lambda_identity: float = 1.0  # 1 - cos of frozen MobileFaceNet embeddings, input vs output
    lambda_identity_features: float = 0.0  # L1 between MobileFaceNet feature maps (after its bottlenecks)
    lambda_perceptual: float = 1.0  # VGG19 feature L1, only when vgg19_weights is set
    recognizer_weights: str | None = None  # MobileFaceNet safetensors; None: resolve_asset("mobilefacenet")
    vgg19_weights: str | None = None  # torchvision-layout VGG19 file; None: no perceptual loss
    # targets
    au_noise: float = 0.5  # uniform ±noise (AU intensity units) on the borrowed target AUs (GANimation: ±0.1 of AU/5)
    keep_aus_share: float = 0.3  # samples whose target AUs are their own (age-only edits)
    keep_age_share: float = 0.3  # samples whose target age is their own (AU-only edits)
    target_age_min: float = 0.0
    target_age_max: float = 100.0
    export_critic: bool = False  # also save the critic (<export>/critic) so that warm starts keep it
    # sample efficiency
    reuse_fakes: bool = False  # with critic_steps 1: the critic trains on the generator step's fakes
    gp_every: int = 1  # lazy gradient penalty: on every k-th critic step, weighted by k
    lambda_estimator_age: float = 0.0  # MSE (years/100) of a frozen estimator's reading vs real faces' reading
    age_estimator: str | None = None  # AgeEstimator folder or Hub id; None: the embedded one
    estimator_shift: int = 4  # random translation in pixels of the edit before the frozen estimator
    strong_au_share: float = 0.0  # targets = source AUs with 1-2 random AUs set to 2.5..5
    critic_warmup_steps: int = 0  # first steps train only the critic's AU/age heads on real faces (no generator)
    lambda_chroma: float = 0.0  # fine colour detail the edit adds (losses.chroma_detail_loss): speckles
    lambda_checkerboard: float = 0.0  # 2-pixel hatching the edit adds (losses.checkerboard_loss)
    paired_share: float = 0.0  # faces with a same-person partner edited towards the partner's AUs (supervised)
    lambda_paired: float = 10.0  # L1 between the paired edit and the partner photo, both average-pooled
    lambda_paired_mask: float = 0.0  # BCE of the attention against where the partner photo differs
    paired_mask_gain: float = 4.0  # attention target = 1 - clamp(gain x (|partner - source| - floor)),
    paired_mask_floor: float = 0.08  # the difference averaged over paired_mask_pool pixels: what moved, not
    paired_mask_pool: int = 8  # the noise of two photos (pixel shifts, compression)
    color_share: float = 0.0  # the paired, anchor and checkerboard terms also on the colour image C (weight)
    shape_pool: int = 4  # pooling factor of the paired and anchor comparisons (4: 128 -> 32 px, shapes not texture)
    anchor_generator: str | None = None  # frozen GanimationAge folder whose age-only edits are kept (lambda_anchor)
    lambda_anchor: float = 0.0  # L1 (pooled) between age-only edits and the anchor generator's


def build_generator_and_critic(system: TrainingSystem, c: Any) -> None:
    """GANimation-age's generator and critic (models ``generator`` and ``critic``) with their Adam optimisers and
    linear decay, from a config with ``generator``, ``discriminator``, ``lr_generator``, ``lr_critic``, ``beta1``,
    ``beta2`` and ``lr_decay_fraction`` (this system's and the engine refiner's)."""
    system.models["generator"] = GanimationAge(c.generator)
    system.models["critic"] = GanimationAgeDiscriminator(c.discriminator)
    betas = (c.beta1, c.beta2)
    for name, lr in (("generator", c.lr_generator), ("critic", c.lr_critic)):
        optimizer = make_adam(system.models[name].parameters(), lr, betas, fused=system.train.fused_optimizers)
        system.optimizers[name] = optimizer
        system.schedulers[name] = linear_decay(optimizer, system.train.max_steps, c.lr_decay_fraction)


class GanimationAgeSystem(TrainingSystem):
    """The GANimation-age system: models ``generator`` and ``critic``, frozen ``recognizer`` (+ ``vgg``)."""

    name = "ganimation_age"
    config_class = GanimationAgeTrainConfig
    config: GanimationAgeTrainConfig

    def build(self) -> None:
        c = self.config
        self.check_image_sizes(generator=c.generator, discriminator=c.discriminator)
        if c.critic_steps < 0:
            raise ValueError("system.critic_steps must be at least 0")
        if c.critic_steps == 0 and max(c.lambda_adv, c.lambda_au, c.lambda_age) > 0:
            raise ValueError("system.critic_steps 0 trains no critic: lambda_adv, lambda_au and lambda_age must be 0")
        if c.lambda_anchor > 0 and not c.anchor_generator:
            raise ValueError("system.lambda_anchor needs system.anchor_generator (a GanimationAge folder)")
        if c.reuse_fakes and c.critic_steps != 1:
            raise ValueError("system.reuse_fakes needs critic_steps 1")
        if c.gp_every < 1:
            raise ValueError("system.gp_every must be at least 1")
        if not 0.0 <= c.paired_share <= 1.0 or c.shape_pool < 1:
            raise ValueError("system.paired_share must be in 0..1 and system.shape_pool at least 1")
        build_generator_and_critic(self, c)
        if self.export_only:  # the loss helpers below are not needed to export a checkpoint
            return
        if c.lambda_identity > 0 or c.lambda_identity_features > 0:
            from ganime_age.models.mobilefacenet import FaceRecognizer

            self.frozen["recognizer"] = FaceRecognizer(c.recognizer_weights)
        if c.vgg19_weights:
            self.frozen["vgg"] = VGG19Features().load_file(c.vgg19_weights)
        if c.lambda_anchor > 0:
            self.frozen["anchor"] = self.load_anchor(c.anchor_generator)
        if c.lambda_estimator_age > 0:
            self.frozen["age_estimator"] = self.load_age_estimator()
            self.age_curve = self.estimator_reading_curve(self.frozen["age_estimator"])

    def load_age_estimator(self) -> torch.nn.Module:
        from ganime_age.editing import DEFAULT_ESTIMATOR_DIR
        from ganime_age.hub import load_pretrained

        estimator = load_pretrained(self.config.age_estimator or str(DEFAULT_ESTIMATOR_DIR))
        if getattr(estimator, "model_type", None) != "age_estimator":
            raise ValueError(f"system.age_estimator must be an AgeEstimator, got {type(estimator).__name__}")
        return estimator.eval().requires_grad_(False)

    @staticmethod
    def load_anchor(source: str) -> torch.nn.Module:
        from ganime_age.hub import load_pretrained

        anchor = load_pretrained(source)
        if not isinstance(anchor, GanimationAge):
            raise ValueError(f"system.anchor_generator must be a GanimationAge folder, got {type(anchor).__name__}")
        return anchor.eval().requires_grad_(False)

    def estimator_reading_curve(self, estimator: torch.nn.Module, max_faces: int = 4000) -> torch.Tensor:
        """The frozen estimator's mean reading of real training faces at each age 0..100 (the loss target)."""
        from training.data.prepared import PreparedFaces
        from training.evaluation.metrics import age_reading_curve

        faces = PreparedFaces(self.train.data_dir, "train", image_size=estimator.config.image_size)
        picks = np.linspace(0, len(faces) - 1, min(max_faces, len(faces))).round().astype(int)
        readings = []
        with torch.no_grad():
            for start in range(0, len(picks), 256):
                batch = torch.stack([faces[int(i)]["image"] for i in picks[start : start + 256]])
                readings.append(estimator.predict(batch).float())
        curve = age_reading_curve(torch.cat(readings).numpy(), faces.ages[picks], max_age=int(MAX_AGE))
        return torch.from_numpy(curve)

    @property
    def wants_partners(self) -> bool:
        return self.config.paired_share > 0

    def compile_targets(self) -> list[str]:
        # The critic's gradient penalty needs a double backward, which torch.compile does not support.
        return ["generator"]

    # -- conditions ---------------------------------------------------------------------------------
    def sample_targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Target AUs, ages and which samples are paired edits.

        Targets are another face's AUs (rolled by one, plus noise) and a uniform age, some kept as the
        source's; with ``strong_au_share`` some are strong 1-2 AU edits; with ``paired_share`` some faces
        that have a partner take the partner's AUs at their own age (the returned mask marks them).
        """
        c = self.config
        aus, age = batch["aus"].float(), batch["age"].float()
        n = aus.shape[0]
        noise = (torch.rand_like(aus) * 2 - 1) * c.au_noise
        target_aus = (aus.roll(1, dims=0) + noise).clamp(0, AU_MAX)
        keep_aus = torch.rand(n, 1, device=aus.device) < c.keep_aus_share
        target_aus = torch.where(keep_aus, aus, target_aus)
        target_age = c.target_age_min + torch.rand(n, device=age.device) * (c.target_age_max - c.target_age_min)
        keep_age = torch.rand(n, device=age.device) < c.keep_age_share
        target_age = torch.where(keep_age, age, target_age)
        if c.strong_au_share > 0:
            target_aus = self.strong_au_edits(aus, target_aus, c.strong_au_share)
        paired = torch.zeros(n, dtype=torch.bool, device=aus.device)
        if c.paired_share > 0 and "has_partner" in batch:
            paired = (batch["has_partner"] > 0) & (torch.rand(n, device=aus.device) < c.paired_share)
            target_aus = torch.where(paired[:, None], batch["partner_aus"].float(), target_aus)
            target_age = torch.where(paired, age, target_age)
        return target_aus, target_age, paired

    @staticmethod
    def strong_au_edits(aus: torch.Tensor, target_aus: torch.Tensor, share: float) -> torch.Tensor:
        """For `share` of the samples: the source's AUs with one or two random AUs raised to 2.5..5."""
        n, count = aus.shape
        chosen = torch.rand(n, 1, device=aus.device) < share
        first = torch.randint(count, (n,), device=aus.device)
        second = torch.randint(count, (n,), device=aus.device)
        picked = F.one_hot(first, count).bool() | (
            F.one_hot(second, count).bool() & (torch.rand(n, 1, device=aus.device) < 0.5)
        )
        strong = torch.where(picked, 2.5 + 2.5 * torch.rand_like(aus), aus)
        return torch.where(chosen, strong, target_aus)

    # -- one trainer step -----------------------------------------------------------------------------
    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        logs: dict[str, torch.Tensor] = {}
        c = self.config
        if c.critic_steps == 0:  # a supervised phase: pairs, cycle, anchor and penalties only
            return self.generator_step(batch)
        if step < c.critic_warmup_steps:  # a fresh critic's AU/age heads are useless teachers: fit them first
            return self.critic_step(batch, step, regression_only=True)
        if c.reuse_fakes:  # one generator forward serves the critic step and the generator step
            targets = self.sample_targets(batch)
            with self.accelerator.autocast():
                fake = self.models["generator"](batch["image"], targets[0], targets[1])
            logs.update(self.critic_step(batch, step, fake.image.detach().to(batch["image"].dtype)))
            logs.update(self.generator_step(batch, (*targets, fake)))
            return logs
        for index in range(c.critic_steps):
            if index > 0:
                batch = self.next_batch()
            for key, value in self.critic_step(batch, step * c.critic_steps + index).items():
                logs[key] = logs.get(key, 0) + value / c.critic_steps
        logs.update(self.generator_step(batch))
        return logs

    def critic_step(
        self, batch: Batch, count: int = 0, fake: torch.Tensor | None = None, regression_only: bool = False
    ) -> dict[str, torch.Tensor]:
        """One critic update; `count` numbers critic steps (for the lazy penalty), `fake` reuses given fakes.

        `regression_only`: only the AU and age heads learn, on real faces (the warm-up).
        """
        c = self.config
        generator, critic = self.models["generator"], self.models["critic"]
        optimizer = self.optimizers["critic"]
        real, aus, age = batch["image"], batch["aus"].float(), batch["age"].float()
        age_known = batch.get("age_known", torch.ones_like(age)).float()
        n = real.shape[0]
        if regression_only:
            fake = real[:0]
        elif fake is None:
            target_aus, target_age, _ = self.sample_targets(batch)
            with torch.no_grad(), self.accelerator.autocast():
                fake = generator(real, target_aus, target_age).image.to(real.dtype)
        with_penalty = count % c.gp_every == 0 and not regression_only
        mixed = interpolate(real, fake) if with_penalty else real[:0]
        with self.accelerator.autocast():
            # one critic pass over real | fake | interpolated (no batch norm, so batching changes nothing)
            out = critic(torch.cat([real, fake, mixed], dim=0))
            score = critic_score(out.realism)
            real_score, fake_score, mixed_score = score[:n], score[n : 2 * n], score[2 * n :]
            adversarial = wgan_critic_loss(real_score, fake_score) if not regression_only else real.new_zeros(())
            penalty = gradient_penalty(mixed_score, mixed) if with_penalty else real.new_zeros(())
            au_loss = F.mse_loss(out.aus[:n].float(), normalise_aus(aus))
            age_error = (out.age[:n].float() - age / MAX_AGE) ** 2
            age_loss = (age_error * age_known).sum() / age_known.sum().clamp(min=1.0)
            loss = (
                adversarial
                + c.lambda_gp * c.gp_every * penalty
                + c.lambda_critic_au * au_loss
                + c.lambda_critic_age * age_loss
            )
        self.optimise(optimizer, loss)
        logs = {
            "d_loss": loss.detach(),
            "d_wasserstein": -adversarial.detach(),
            "d_au": au_loss.detach(),
            "d_age": age_loss.detach(),
        }
        if with_penalty:
            logs["d_gp"] = penalty.detach()
        return logs

    def generator_step(
        self, batch: Batch, given: tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any] | None = None
    ) -> dict[str, torch.Tensor]:
        """One generator update; `given` = (target AUs, ages, paired mask, generator output) already computed."""
        c = self.config
        generator = self.models["generator"]
        optimizer = self.optimizers["generator"]
        real, aus, age = batch["image"], batch["aus"].float(), batch["age"].float()
        target_aus, target_age, paired, fake = given if given is not None else (*self.sample_targets(batch), None)
        # The critic only scores here: no gradients into its weights (its own step zeroes them anyway),
        # and called unwrapped so DDP does not wait for a gradient reduction that never comes.
        bare_critic = self.unwrap("critic")
        bare_critic.requires_grad_(False)
        with self.accelerator.autocast():
            if fake is None:
                fake = generator(real, target_aus, target_age)
            rec = generator(fake.image, aus, age)
            cycle = F.l1_loss(rec.image.float(), real.float())
            mask = mask_mean(fake.attention) + mask_mean(rec.attention)
            smooth = total_variation(fake.attention) + total_variation(rec.attention)
            loss = c.lambda_cycle * cycle + c.lambda_mask * mask + c.lambda_mask_smooth * smooth
            logs = {"g_cycle": cycle.detach(), "g_mask": mask.detach(), "g_smooth": smooth.detach()}
            if c.critic_steps > 0:
                out = bare_critic(fake.image)
                adversarial = wgan_generator_loss(critic_score(out.realism))
                au_loss = F.mse_loss(out.aus.float(), normalise_aus(target_aus))
                age_loss = F.mse_loss(out.age.float(), target_age / MAX_AGE)
                loss = loss + c.lambda_adv * adversarial + c.lambda_au * au_loss + c.lambda_age * age_loss
                logs.update(g_adv=adversarial.detach(), g_au=au_loss.detach(), g_age=age_loss.detach())
            if "recognizer" in self.frozen:
                identity, features = self.identity_losses(real, fake.image)
                loss = loss + c.lambda_identity * identity + c.lambda_identity_features * features
                logs["g_identity"] = identity.detach()
                if c.lambda_identity_features > 0:
                    logs["g_identity_features"] = features.detach()
            if "vgg" in self.frozen:
                perceptual = perceptual_loss(self.frozen["vgg"], real, fake.image)
                loss = loss + c.lambda_perceptual * perceptual
                logs["g_perceptual"] = perceptual.detach()
            if c.lambda_chroma > 0:
                chroma = chroma_detail_loss(fake.image, real)
                loss = loss + c.lambda_chroma * chroma
                logs["g_chroma"] = chroma.detach()
            if c.lambda_checkerboard > 0:
                hatching = checkerboard_loss(fake.image, real) + c.color_share * checkerboard_loss(fake.color, real)
                loss = loss + c.lambda_checkerboard * hatching
                logs["g_checkerboard"] = hatching.detach()
            if self.wants_partners:  # the colour head too: so that it is worth opening the attention for
                partner = batch["partner_image"]
                paired_loss = self.pooled_l1(fake.image, partner, paired)
                paired_loss = paired_loss + c.color_share * self.pooled_l1(fake.color, partner, paired)
                if c.lambda_paired_mask > 0:
                    attention_loss = self.paired_attention_loss(fake.attention, real, partner, paired)
                    loss = loss + c.lambda_paired_mask * attention_loss
                    logs["g_paired_mask"] = attention_loss.detach()
                loss = loss + c.lambda_paired * paired_loss
                logs["g_paired"] = paired_loss.detach()
            if "anchor" in self.frozen:  # age-only edits (own AUs, not paired) stay what the anchor made them
                age_only = (target_aus == aus).all(dim=1) & ~paired
                anchor_loss = fake.image.new_zeros((), dtype=torch.float32)
                if age_only.any():
                    with torch.no_grad():
                        anchor = self.frozen["anchor"]
                        kept = anchor(real[age_only], target_aus[age_only], target_age[age_only]).image
                    anchor_loss = self.pooled_l1(fake.image, kept, age_only)
                    anchor_loss = anchor_loss + c.color_share * self.pooled_l1(fake.color, kept, age_only)
                loss = loss + c.lambda_anchor * anchor_loss
                logs["g_anchor"] = anchor_loss.detach()
            if "age_estimator" in self.frozen:
                reading = self.frozen["age_estimator"].predict(random_shift(fake.image, c.estimator_shift))
                expected = self.age_curve.to(reading.device)[target_age.round().long().clamp(0, int(MAX_AGE))]
                estimator_age = F.mse_loss(reading.float() / MAX_AGE, expected / MAX_AGE)
                loss = loss + c.lambda_estimator_age * estimator_age
                logs["g_estimator_age"] = estimator_age.detach()
        self.optimise(optimizer, loss)
        bare_critic.requires_grad_(True)
        logs["g_loss"] = loss.detach()
        return logs

    def paired_attention_loss(
        self,
        attention: torch.Tensor,
        real: torch.Tensor,
        partner: torch.Tensor,
        paired: torch.Tensor,
    ) -> torch.Tensor:
        """Batch mean of the cross-entropy between the attention and 1 - (where the partner differs)."""
        if not paired.any():
            return attention.new_zeros((), dtype=torch.float32)
        c = self.config
        difference = (partner[paired].float() - real[paired].float()).abs().mean(1, keepdim=True)
        change = F.interpolate(
            F.avg_pool2d(difference, c.paired_mask_pool), size=difference.shape[-2:], mode="bilinear"
        )
        keep = 1.0 - (c.paired_mask_gain * (change - c.paired_mask_floor)).clamp(0.0, 1.0)
        a = attention[paired].float().clamp(1e-4, 1 - 1e-4)
        return F.binary_cross_entropy(a, keep) * paired.float().mean()

    def pooled_l1(self, fake: torch.Tensor, wanted: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Batch mean of the pooled L1 between the chosen edits and what they should look like (0 if none).

        `wanted` holds one image per sample, or one per chosen sample.
        """
        if not chosen.any():
            return fake.new_zeros((), dtype=torch.float32)
        if wanted.shape[0] == fake.shape[0]:
            wanted = wanted[chosen]
        pool = self.config.shape_pool
        shapes = F.avg_pool2d(fake[chosen].float(), pool)
        return F.l1_loss(shapes, F.avg_pool2d(wanted.float(), pool)) * chosen.float().mean()

    def identity_losses(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1 - cos(embeddings) and (if weighted) the L1 between feature maps of the frozen MobileFaceNet."""
        recognizer = self.frozen["recognizer"]
        maps: list[torch.Tensor] = []
        handle = None
        if self.config.lambda_identity_features > 0:
            handle = recognizer.net.blocks.register_forward_hook(lambda _m, _i, out: maps.append(out))
        try:
            identity = identity_loss(recognizer, real, fake)
        finally:
            if handle is not None:
                handle.remove()
        features = F.l1_loss(maps[1].float(), maps[0].float()) if maps else real.new_zeros(())
        return identity, features

    # -- pictures -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Rows = faces; columns = input | age ramp | AU edits | attention masks of some of them."""
        real, aus, age = batch["image"].float(), batch["aus"].float(), batch["age"].float()
        columns: list[tuple[str, torch.Tensor]] = [("input", real)]
        masks: dict[str, torch.Tensor] = {}
        with evaluating(self.unwrap("generator")) as generator:
            for target in SAMPLE_AGES:
                out = generator(real, aus, torch.full_like(age, float(target)))
                columns.append((f"age {target:g}", out.image))
                masks[f"age {target:g}"] = out.attention
            for label, au, value in SAMPLE_AU_EDITS:
                edited = aus.clone()
                edited[:, AU_NAMES.index(au)] = value
                out = generator(real, edited, age)
                columns.append((label, out.image))
                masks[label] = out.attention
        columns += [(f"A {name}", masks[name].float()) for name in SAMPLE_MASKS if name in masks]
        return image_grid(columns)

    # -- export -----------------------------------------------------------------------------------------
    def export(self, folder: Path, card: dict[str, Any]) -> None:
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        card = {"model_name": "GANimation-age", **card}
        self.unwrap("generator").save_pretrained(folder, dtype=dtype, model_card_kwargs=card)
        if self.config.export_critic:
            critic_card = {**card, "model_name": "GANimation-age critic"}
            self.unwrap("critic").save_pretrained(folder / "critic", dtype=dtype, model_card_kwargs=critic_card)
