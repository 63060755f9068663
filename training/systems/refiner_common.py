"""What every refiner of the fitted engine shares: data, the issue-32 holds, identity, artefact terms, the card.

A refiner (GANimation-age ``training/systems/refiner.py``, AgeTransGAN ``agetransgan_refiner.py``, RAGAN
``ragan_refiner.py``) gets the 128 px aligned crop of the engine's edit and the target condition, starts by
passing it through, and learns on ``training.data.prepared.RefinerPairs``: CFEE expression edits with the same person's
real photo as the target (``has_target`` 1), UTKFace age edits without one (``has_target`` 0, "age rows").
:class:`RefinerObjective` holds the settings of the terms they share and :class:`RefinerBase` computes them
(:meth:`RefinerBase.refiner_terms`); why each term is there is in refiner.py's docstring:

- ``lambda_target``: pooled L1 to the real target photo on paired rows (shapes and tones, not pixels);
- ``lambda_change``: mean |output - input| on every row (change only what must change);
- ``lambda_chroma`` / ``lambda_checkerboard``: the speckles, tints and 2-pixel hatching added to the input;
- ``lambda_age_hold``: on age rows, pooled L1 to the engine's edit (its age change is the target there);
- ``lambda_age_reading``: on age rows, |age estimator(output) - age estimator(engine's edit)| in years, or with
  ``age_reading_reference: real`` - what real faces of the target age read (the engine's 75 reads younger than real
  75-year-olds do, so that target asks for more ageing than the engine gives; the output is shifted a few pixels
  before it is read, so that pixel-exact patterns cannot fool the estimator); with ``age_reading_colour: grey``
  the estimator reads grey copies (of the output, the edit and the real faces alike), so no colour can buy years
  (run 8 bought them with red irises, pink brows and magenta hair);
- ``lambda_chroma_hold``: pooled L1 of the output's colour (Cb, Cr) to the engine's edit's, on every row: the
  refiner changes brightness (folds, shading), the engine owns the colour;
- ``lambda_eye_hold``: on age rows, L1 of the output to the engine's edit at full resolution inside a disc around
  each eye of the aligned crop (``eye_hold_radius`` of the crop): with the reading grey, refiner run 9 bought years
  with a bright spectacle rim around each eye, finer than the pooled hold sees;
- ``lambda_identity``: 1 - cos of frozen MobileFaceNet embeddings against :meth:`RefinerBase.identity_reference`
  (the source photo on paired rows, the engine's edit on age rows with ``identity_age_reference: edit``).

:class:`AdversarialRefiner` is the skeleton of the refiners trained against one discriminator with an EMA
generator (AgeTransGAN, RAGAN): one discriminator step and one generator step per batch, on the real photos
(the CFEE targets, the UTKFace sources) at their own ages against the refined crops at the target ages, plus
the reconstruction of the real source photo at its own age (``lambda_reconstruction``: a real face already at
the asked age is left alone). Each subclass adds its own networks and adversarial/age/MI terms.
"""

from __future__ import annotations

import functools
import json
import logging
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.errors import ModelFileNotFoundError
from ganime_age.faces.align import template_points
from training.systems.base import AdversarialSystem, Batch, TrainingSystem, evaluating, image_grid
from training.systems.losses import (
    checkerboard_loss,
    chroma,
    chroma_detail_loss,
    grey_copy,
    identity_loss,
    random_shift,
)

log = logging.getLogger(__name__)

LICENSE_NOTE = (
    "Trained on the fitted engine's edits of CFEE (Ohio State University research dataset, no licence "
    "file: non-commercial research only) and UTKFace (non-commercial research only) photos; these "
    "weights inherit both restrictions."
)


def refiner_note(recipe: str, conditions: str) -> str:
    """The card's paragraph on what a refiner is, for a network given `conditions` trained by `recipe`."""
    return (
        "**A refiner of the fitted edit engine**, not an editor on its own: `FaceEditor` runs the engine "
        f"(`weights/ganime-age-engine`) on the photo, gives this network the 128 px aligned crop of the engine's edit "
        f"with {conditions}, and adds its *change* (output minus input), upsampled, to the full-resolution "
        "edit. Load it with `FaceEditor.from_pretrained(<this folder>)`. Trained on the engine's edits of CFEE "
        f"training people against the same person's real posed photos (`{recipe}`)."
        " `training/ship_refiner.py` ships it by name with its Table I; it becomes the default only where the gates "
        "(`python training/evaluate.py gates --model <this folder>`) say that engine + refiner beats the engine alone."
    )


@functools.lru_cache(maxsize=4)
def eye_discs(size: int, radius: float) -> torch.Tensor:
    """(size, size) 1 inside a disc of `radius` (of the side) around each eye of the aligned crop's framing
    (``ganime_age.faces.ALIGN_TEMPLATE``), else 0. Made once per crop size and radius, not on every training step
    (read only: callers never write into it)."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    discs = torch.zeros(size, size)
    for x, y in template_points(size)[:2]:
        discs = torch.maximum(discs, (((xs - float(x)) ** 2 + (ys - float(y)) ** 2) <= (radius * size) ** 2).float())
    return discs


@dataclass
class RefinerObjective:
    """The ``system`` settings every refiner shares (its own config class adds its networks and terms)."""

    # data: train.data_dir is a refiner dataset (training/data/refiner.py); people held out for the sample grids
    test_fraction: float = 0.1
    lambda_target: float = 10.0
    target_sizes: list[int] = field(default_factory=lambda: [32, 64])  # pooled sizes of the target comparison
    lambda_identity: float = 1.0
    identity_if_available: bool = True  # no MobileFaceNet weights: warn and train without the identity term
    recognizer_weights: str | None = None  # MobileFaceNet safetensors; None: resolve_asset("mobilefacenet")
    lambda_change: float = 1.0
    lambda_chroma: float = 3.0e4
    lambda_checkerboard: float = 1.0e4
    # issue 32: age rows (no real photo) are held to the engine's age change
    lambda_age_hold: float = 10.0  # pooled L1 of the output to the engine's edit on age rows
    hold_sizes: list[int] = field(default_factory=lambda: [16, 32])  # pooled sizes of the hold (128 px crop)
    identity_age_reference: str = "edit"  # age rows' identity reference: "edit" (the engine's) or "source"
    lambda_age_reading: float = 0.05  # |estimator(output) - reading target| in years, on age rows
    age_reading_reference: str = "edit"  # the target: "edit" (the engine's edit's reading) or "real" (real faces')
    estimator_shift: int = 4  # "real": random translation in pixels of the output before the estimator reads it
    age_reading_colour: str = "colour"  # "grey": the estimator reads grey copies, so colour cannot buy years
    lambda_chroma_hold: float = 0.0  # pooled L1 of the output's Cb, Cr to the edit's, on every row
    chroma_hold_sizes: list[int] = field(default_factory=lambda: [32, 64])  # an iris is ~8 px of the 128 px crop
    lambda_eye_hold: float = 0.0  # full-resolution L1 to the edit around the eyes, on age rows
    eye_hold_radius: float = 0.14  # of the crop's side: the socket, the brow's underside and a spectacle rim
    age_estimator: str | None = None  # AgeEstimator folder or Hub id; None: the embedded one


class RefinerBase(TrainingSystem):
    """The shared half of a refiner system: checks, frozen judges, data, the shared terms, the card."""

    model_name: ClassVar[str] = "refiner"
    recipe: ClassVar[str] = "training/configs/"
    conditions: ClassVar[str] = "the target age"

    def check_refiner_config(self, image_size: int) -> None:
        c = self.config
        if not c.target_sizes or min(c.target_sizes) < 1 or max(c.target_sizes) > image_size:
            raise ValueError("system.target_sizes must be 1..image_size pixels")
        if not c.hold_sizes or min(c.hold_sizes) < 1 or max(c.hold_sizes) > image_size:
            raise ValueError("system.hold_sizes must be 1..image_size pixels")
        if c.identity_age_reference not in ("edit", "source"):
            raise ValueError("system.identity_age_reference must be 'edit' or 'source'")
        if c.age_reading_reference not in ("edit", "real"):
            raise ValueError("system.age_reading_reference must be 'edit' or 'real'")
        if c.age_reading_colour not in ("colour", "grey"):
            raise ValueError("system.age_reading_colour must be 'colour' or 'grey'")
        if not c.chroma_hold_sizes or min(c.chroma_hold_sizes) < 1 or max(c.chroma_hold_sizes) > image_size:
            raise ValueError("system.chroma_hold_sizes must be 1..image_size pixels")
        if not 0.0 < c.eye_hold_radius <= 0.5:
            raise ValueError("system.eye_hold_radius must be in (0, 0.5] of the crop")
        if not 0.0 <= c.test_fraction < 1.0:
            raise ValueError("system.test_fraction must be in [0, 1)")

    def load_judges(self) -> None:
        """The frozen age estimator (``lambda_age_reading`` > 0) and MobileFaceNet (``lambda_identity`` > 0)."""
        c = self.config
        if self.export_only:
            return
        if c.lambda_age_reading > 0:
            self.frozen["age_estimator"] = self.load_age_estimator()
            if c.age_reading_reference == "real":
                self.real_readings = self.real_reading_curve(self.frozen["age_estimator"])
        if c.lambda_identity <= 0:
            return
        from ganime_age.models.mobilefacenet import FaceRecognizer

        try:
            self.frozen["recognizer"] = FaceRecognizer(c.recognizer_weights)
        except ModelFileNotFoundError as error:
            if not c.identity_if_available:
                raise
            log.warning("training the refiner without the identity term: %s", error)

    def load_age_estimator(self) -> torch.nn.Module:
        """The frozen AgeEstimator of ``age_estimator`` (default: the one embedded in the package)."""
        from ganime_age.editing import DEFAULT_ESTIMATOR_DIR
        from ganime_age.hub import load_pretrained

        estimator = load_pretrained(self.config.age_estimator or str(DEFAULT_ESTIMATOR_DIR))
        if getattr(estimator, "model_type", None) != "age_estimator":
            raise ValueError(f"system.age_estimator must be an AgeEstimator, got {type(estimator).__name__}")
        return estimator.eval().requires_grad_(False)

    def real_reading_curve(self, estimator: torch.nn.Module) -> torch.Tensor:
        """(101,) the frozen estimator's mean reading of the training split's real UTKFace photos at each age 0..100,
        by their labelled ages: what an edit to that age should read (``age_reading_reference: real``)."""
        from training.evaluation.metrics import age_reading_curve

        pairs = self.training_dataset("train")
        ages = pairs.labelled_source_ages()
        rows = [int(i) for i in np.flatnonzero(np.isfinite(ages))]
        if len(rows) < 5:
            raise ValueError(
                f"age_reading_reference 'real' needs labelled UTKFace rows, {self.train.data_dir} has {len(rows)}"
            )
        device = next(estimator.parameters()).device
        readings = []
        with torch.no_grad():
            for start in range(0, len(rows), 128):
                photos = torch.stack([pairs[i]["source_image"] for i in rows[start : start + 128]]).to(device)
                readings.append(estimator.predict(self.reading_view(photos)).float().cpu())
        curve = age_reading_curve(torch.cat(readings).numpy(), ages[rows])
        return torch.from_numpy(curve)

    def training_dataset(self, split: str, max_samples: int | None = None) -> Any:
        """The refiner's pairs (``training.data.prepared.RefinerPairs``) in ``train.data_dir``, split by person."""
        from training.data.prepared import RefinerPairs

        return RefinerPairs(
            self.train.data_dir,
            split,
            test_fraction=self.config.test_fraction,
            image_size=self.train.image_size,
            max_samples=max_samples,
        )

    # -- the rows -----------------------------------------------------------------------------------------
    @staticmethod
    def paired_rows(batch: Batch) -> torch.Tensor:
        """(N,) bool: rows with a real target photo (CFEE); the others are age rows (UTKFace, no photo)."""
        return batch["has_target"].reshape(-1) > 0.5

    @classmethod
    def real_images(cls, batch: Batch) -> torch.Tensor:
        """The critic's real photos: the target where there is one (CFEE), else the source (UTKFace)."""
        return torch.where(cls.paired_rows(batch).reshape(-1, 1, 1, 1), batch["target_image"], batch["source_image"])

    @classmethod
    def real_ages(cls, batch: Batch) -> torch.Tensor:
        """The ages of :meth:`real_images`: a CFEE target keeps its source's age, a UTKFace source has its own."""
        return torch.where(cls.paired_rows(batch), batch["age"].float(), batch["source_age"].float())

    def identity_reference(self, batch: Batch) -> torch.Tensor:
        """Who the output must still be: the source photo, or on age rows the engine's edit (issue 32)."""
        if self.config.identity_age_reference != "edit":
            return batch["source_image"]
        age_rows = ~self.paired_rows(batch)
        return torch.where(age_rows.reshape(-1, 1, 1, 1), batch["image"], batch["source_image"])

    # -- the shared terms -------------------------------------------------------------------------------
    def pooled_l1(
        self, images: torch.Tensor, wanted: torch.Tensor, chosen: torch.Tensor, sizes: list[int] | None = None
    ) -> torch.Tensor:
        """Mean over `sizes` (default `target_sizes`) of the L1 between the chosen images and targets, both
        pooled to that size.

        Scaled by the share of chosen samples, so the term's weight per sample does not depend on the batch mix.
        """
        if not bool(chosen.any()):
            return images.new_zeros((), dtype=torch.float32)
        sizes = sizes or self.config.target_sizes
        a, b = images[chosen].float(), wanted[chosen].float()
        total = sum(F.l1_loss(F.adaptive_avg_pool2d(a, size), F.adaptive_avg_pool2d(b, size)) for size in sizes)
        return total / len(sizes) * chosen.float().mean()

    def eye_hold_loss(self, output: torch.Tensor, edit: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Mean |output - edit| inside the eye discs of the aligned crop over the chosen rows, scaled by their share."""
        if not bool(chosen.any()):
            return output.new_zeros((), dtype=torch.float32)
        weight = eye_discs(output.shape[-1], self.config.eye_hold_radius).to(output.device)
        change = (output[chosen].float() - edit[chosen].float()).abs().mean(dim=1)
        return (change * weight).sum(dim=(1, 2)).mean() / weight.sum() * chosen.float().mean()

    def reading_view(self, images: torch.Tensor) -> torch.Tensor:
        """What the frozen estimator is shown of `images`: themselves, or grey copies (``age_reading_colour``)."""
        return grey_copy(images) if self.config.age_reading_colour == "grey" else images

    def age_reading_loss(
        self, output: torch.Tensor, edit: torch.Tensor, chosen: torch.Tensor, ages: torch.Tensor
    ) -> torch.Tensor:
        """Mean |estimated age of the output - the wanted reading| in years over the chosen rows, scaled by their
        share (the frozen estimator's gradient reaches the output; the wanted reading is fixed): the engine's
        edit's reading, or what real faces of the target `ages` read (``age_reading_reference: real``)."""
        if not bool(chosen.any()):
            return output.new_zeros((), dtype=torch.float32)
        estimator = self.frozen["age_estimator"]
        chosen_output = self.reading_view(output[chosen].float())
        if self.config.age_reading_reference == "real":
            curve = self.real_readings.to(output.device)
            wanted = curve[ages[chosen].float().round().long().clamp(0, len(curve) - 1)]
            chosen_output = random_shift(chosen_output, self.config.estimator_shift)
        else:
            with torch.no_grad():
                wanted = estimator.predict(self.reading_view(edit[chosen].float()))
        reading = estimator.predict(chosen_output)
        return (reading - wanted).abs().mean() * chosen.float().mean()

    def refiner_terms(self, batch: Batch, output: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted sum of the shared terms for the refined crops `output` of `batch`, and each for the log."""
        c = self.config
        edit, target = batch["image"], batch["target_image"]
        paired = self.paired_rows(batch)
        age_rows = ~paired  # UTKFace age edits: no real photo, the engine's edit is what to keep
        output = output.float()
        target_loss = self.pooled_l1(output, target, paired)
        change = (output - edit.float()).abs().mean()
        loss = c.lambda_target * target_loss + c.lambda_change * change
        logs = {"g_target": target_loss.detach(), "g_change": change.detach()}
        if c.lambda_chroma > 0:
            speckles = chroma_detail_loss(output, edit)
            loss = loss + c.lambda_chroma * speckles
            logs["g_chroma"] = speckles.detach()
        if c.lambda_checkerboard > 0:
            hatching = checkerboard_loss(output, edit)
            loss = loss + c.lambda_checkerboard * hatching
            logs["g_checkerboard"] = hatching.detach()
        if c.lambda_chroma_hold > 0:
            every_row = torch.ones_like(paired)
            colour_hold = self.pooled_l1(chroma(output), chroma(edit), every_row, c.chroma_hold_sizes)
            loss = loss + c.lambda_chroma_hold * colour_hold
            logs["g_chroma_hold"] = colour_hold.detach()
        if c.lambda_age_hold > 0:
            hold = self.pooled_l1(output, edit, age_rows, c.hold_sizes)
            loss = loss + c.lambda_age_hold * hold
            logs["g_age_hold"] = hold.detach()
        if c.lambda_eye_hold > 0:
            eyes = self.eye_hold_loss(output, edit, age_rows)
            loss = loss + c.lambda_eye_hold * eyes
            logs["g_eye_hold"] = eyes.detach()
        if "age_estimator" in self.frozen:
            reading = self.age_reading_loss(output, edit, age_rows, batch["age"])
            loss = loss + c.lambda_age_reading * reading
            logs["g_age_reading"] = reading.detach()
        if "recognizer" in self.frozen:
            identity = identity_loss(self.frozen["recognizer"], self.identity_reference(batch), output)
            loss = loss + c.lambda_identity * identity
            logs["g_identity"] = identity.detach()
        return loss, logs

    # -- the card ---------------------------------------------------------------------------------------------
    def refiner_card(self, card: dict[str, Any]) -> dict[str, Any]:
        note = refiner_note(self.recipe, self.conditions) + (f"\n\n{card['note']}" if card.get("note") else "")
        return {
            "model_name": self.model_name,
            **card,
            "note": note,
            "trained_on": self.describe_data(),
            "license": "other",
            "license_note": LICENSE_NOTE,
        }

    def describe_data(self) -> str:
        """What the card says the refiner saw, from the dataset's manifest."""
        from training.data.prepared import REFINER_MANIFEST

        path = Path(self.train.data_dir) / REFINER_MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return f"the refiner dataset `{Path(self.train.data_dir).name}` (training/data/refiner.py)"
        kinds = manifest.get("kinds", {})
        return (
            f"the fitted engine's edits of {manifest.get('cfee_people', '?')} CFEE training people "
            f"({kinds.get('forward', 0)} Neutral -> posed and {kinds.get('reverse', 0)} posed -> Neutral edits, each "
            f"against the same person's real photo) and {kinds.get('age', 0)} age edits of UTKFace training photos, "
            f"as {manifest.get('size', '?')} px aligned crops (refiner dataset `{Path(self.train.data_dir).name}`)"
        )


@dataclass
class AdversarialRefinerObjective(RefinerObjective):
    """The shared settings of the refiners trained against a discriminator with an EMA generator."""

    lambda_reconstruction: float = 10.0  # L1 of G(real source photo, its own age) to that photo
    ema_decay: float = 0.99  # EMA of the generator, sampled and exported; 0: the raw generator
    lr_decay_fraction: float = 0.5  # linear decay to 0 over this last fraction of max_steps
    r1_gamma: float = 1.0  # R1 penalty on real photos (gamma / 2 x |grad D(real)|^2); 0 disables
    r1_every: int = 4  # lazy R1 (StyleGAN2): every k steps, scaled by k


class AdversarialRefiner(RefinerBase, AdversarialSystem):
    """One discriminator step, then one generator step (refined crops + reconstructions in one forward)."""

    @abstractmethod
    def refine(self, generator: torch.nn.Module, images: torch.Tensor, ages: torch.Tensor) -> torch.Tensor:
        """`generator`'s output for `images` told they are at `ages` (years)."""

    @abstractmethod
    def discriminator_loss(
        self, real: torch.Tensor, real_ages: torch.Tensor, fake: torch.Tensor, fake_ages: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's objective on real photos at their ages and refined crops at the target ages."""

    @abstractmethod
    def generator_terms(self, batch: Batch, output: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The system's own generator terms (adversarial, age, MI) for the refined crops `output` of `batch`."""

    def compile_targets(self) -> list[str]:
        return ["generator"]  # R1 needs a double backward through the discriminator

    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        edit, target_ages = batch["image"], batch["age"].float()
        with torch.no_grad(), self.accelerator.autocast():
            fake = self.refine(self.models["generator"], edit, target_ages).to(edit.dtype)
        with self.accelerator.autocast():
            d_loss, logs = self.discriminator_loss(
                self.real_images(batch), self.real_ages(batch), fake, target_ages, step
            )
        self.optimise(self.optimizers["discriminator"], d_loss)
        logs["d_loss"] = d_loss.detach()
        logs.update(self.generator_step(batch))
        self.update_ema()
        return logs

    def generator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        edit, source = batch["image"], batch["source_image"]
        n = edit.shape[0]
        bare_discriminator = self.unwrap("discriminator")
        bare_discriminator.requires_grad_(False)  # it only scores here
        try:
            with self.accelerator.autocast():
                if c.lambda_reconstruction > 0:
                    images = torch.cat([edit, source])
                    ages = torch.cat([batch["age"].float(), batch["source_age"].float()])
                    both = self.refine(self.models["generator"], images, ages)
                    output, rebuilt = both[:n], both[n:]
                else:
                    output, rebuilt = self.refine(self.models["generator"], edit, batch["age"].float()), None
                loss, logs = self.refiner_terms(batch, output)
                own, own_logs = self.generator_terms(batch, output)
                loss = loss + own
                logs.update(own_logs)
                if rebuilt is not None:
                    reconstruction = F.l1_loss(rebuilt.float(), source.float())
                    loss = loss + c.lambda_reconstruction * reconstruction
                    logs["g_reconstruction"] = reconstruction.detach()
            self.optimise(self.optimizers["generator"], loss)
        finally:
            bare_discriminator.requires_grad_(True)
        logs["g_loss"] = loss.detach()
        return logs

    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Rows = held-out pairs; columns = source | engine edit | refined | change x4 | target."""
        edit = batch["image"].float()
        with evaluating(self.shipped_generator()) as generator:
            refined = self.refine(generator, edit, batch["age"].float()).float().clamp(-1.0, 1.0)
        amplified = ((refined - edit) * 4.0).clamp(-1.0, 1.0)
        columns = [("source", batch["source_image"]), ("engine", edit), ("refined", refined)]
        return image_grid([*columns, ("change x4", amplified), ("target", batch["target_image"])])

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        self.shipped_generator().save_pretrained(folder, dtype=dtype, model_card_kwargs=self.refiner_card(card))
