"""AIFD encoder training: identity distilled from a frozen MobileFaceNet, age from the labels.

UTKFace has no identity labels, so the identity branch (X_id -> embedding) learns to match the
frozen MobileFaceNet embedding of the same face, averaged with that of its mirror image (a
mirror-invariant identity target; cosine loss). The age branch (X_age -> logits over 0..100) is
trained with the mean-variance loss on the age labels. Because both branches read the same
backbone features through complementary attention masks, what is useful for age is pushed into
X_age and what is useful for identity into X_id.

:func:`evaluate_aifd` checks the decomposition: a ridge probe on pooled X_id should predict age
poorly (compared with one on X_age), while the identity embedding should still verify the same face
under augmentation against different faces at FAR 1%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.errors import GanimeAgeError
from ganime_age.models.aifd import AIFDConfig, AIFDEncoder
from training.evaluation.metrics import (
    accept_rate,
    different_pairs,
    markdown_table,
    matched_cosines,
    pair_cosines,
    threshold_at_far,
)
from training.systems.age_estimator import random_affine, warmup_cosine
from training.systems.base import Batch, TrainingSystem, evaluating, image_grid, make_adam
from training.systems.losses import cosine_distance


@dataclass
class AIFDTrainConfig:
    """YAML section ``system`` for ``train.system: aifd``."""

    model: AIFDConfig = field(default_factory=AIFDConfig)
    lr: float = 2e-3
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    min_lr_fraction: float = 0.02
    lambda_identity: float = 10.0  # 1 - cos(embedding, MobileFaceNet target)
    lambda_age: float = 1.0  # mean-variance loss of the age branch
    shift: float = 0.04
    scale: float = 0.05
    recognizer_weights: str | None = None  # MobileFaceNet safetensors; None: resolve_asset("mobilefacenet")
    eval_faces: int | None = 512  # test-split faces (spread over it) for the probe/verification in the card (0: skip)


# -- evaluation ---------------------------------------------------------------------------------------------


def ridge_probe_mae(
    features: np.ndarray, ages: np.ndarray, *, alpha: float = 1.0, train_fraction: float = 0.5, seed: int = 0
) -> float:
    """Fit ridge regression features -> age on a random part, return the MAE (years) on the rest."""
    n = len(ages)
    if n < 4:
        raise ValueError("a probe needs at least 4 faces")
    order = np.random.default_rng(seed).permutation(n)
    cut = min(max(2, round(train_fraction * n)), n - 1)
    fit, held = order[:cut], order[cut:]
    mean, std = features[fit].mean(axis=0), features[fit].std(axis=0) + 1e-6
    x = (features - mean) / std
    x_fit = np.concatenate([x[fit], np.ones((len(fit), 1))], axis=1)
    regulariser = alpha * np.eye(x_fit.shape[1])
    regulariser[-1, -1] = 0.0  # no penalty on the intercept
    weights = np.linalg.solve(x_fit.T @ x_fit + regulariser, x_fit.T @ ages[fit])
    predicted = np.concatenate([x[held], np.ones((len(held), 1))], axis=1) @ weights
    return float(np.abs(predicted - ages[held]).mean())


@torch.no_grad()
def evaluate_aifd(
    encoder: AIFDEncoder,
    images: torch.Tensor,
    ages: torch.Tensor,
    *,
    far: float = 0.01,
    batch_size: int = 64,
    ridge_alpha: float = 10.0,
    max_pairs: int = 20000,
    seed: int = 0,
) -> dict[str, Any]:
    """How well X_id / X_age predict age (ridge probes) and how well the identity embedding verifies faces.

    Verification: each face against an augmented copy of itself (mirror, small shift/zoom, brightness)
    as genuine pairs; pairs of different faces as impostors (the data has no identity labels, so
    different photos are taken as different people). Reports the accept rate at FAR `far`.
    """
    generator = torch.Generator().manual_seed(seed)
    pooled_id, pooled_age, embeddings, augmented, predicted = [], [], [], [], []
    device = next(encoder.parameters()).device
    with evaluating(encoder):
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device).float()
            out = encoder.decompose(batch)
            pooled_id.append(out.identity_features.mean(dim=(2, 3)).cpu())
            pooled_age.append(out.age_features.mean(dim=(2, 3)).cpu())
            embeddings.append(out.embedding.cpu())
            predicted.append(
                torch.softmax(out.age_logits.float(), dim=1).cpu()
                @ torch.arange(out.age_logits.shape[1], dtype=torch.float32)
            )
            brightness = 1.0 + (torch.rand(batch.shape[0], 1, 1, 1, generator=generator) * 2 - 1) * 0.15
            copy = random_affine(batch.flip(-1), 0.03, 0.04, generator) * brightness.to(device)
            augmented.append(encoder.identity_embedding(copy.clamp(-1, 1)).cpu())
    age = ages.float().numpy()
    ids, ages_features = torch.cat(pooled_id).numpy(), torch.cat(pooled_age).numpy()
    embedding, copies = torch.cat(embeddings), torch.cat(augmented)
    impostor = pair_cosines(embedding, different_pairs(len(age), max_pairs, seed))
    genuine = matched_cosines(embedding, copies)
    threshold = threshold_at_far(impostor, far)
    constant = float(np.abs(age - np.median(age)).mean())
    return {
        "faces": len(age),
        "probe_mae_from_identity": ridge_probe_mae(ids, age, alpha=ridge_alpha, seed=seed),
        "probe_mae_from_age": ridge_probe_mae(ages_features, age, alpha=ridge_alpha, seed=seed),
        "constant_mae": constant,  # predicting the median age for everyone
        "age_head_mae": float(np.abs(torch.cat(predicted).numpy() - age).mean()),
        "far": far,
        "threshold": threshold,
        "impostor_pairs": int(impostor.size),
        "verification_rate": accept_rate(genuine, threshold),
        "genuine_cosine": float(genuine.mean()),
        "impostor_cosine": float(impostor.mean()),
    }


def aifd_markdown(result: dict[str, Any]) -> str:
    rows = [
        ["ridge probe on pooled X_id (should be poor)", f"{result['probe_mae_from_identity']:.2f}"],
        ["ridge probe on pooled X_age", f"{result['probe_mae_from_age']:.2f}"],
        ["age head (X_age, mean-variance)", f"{result['age_head_mae']:.2f}"],
        ["constant (median age)", f"{result['constant_mae']:.2f}"],
    ]
    return "\n".join(
        [
            f"On {result['faces']} test-split faces (probes fit on half, scored on the other half):",
            "",
            markdown_table(["age MAE (years) from", "MAE"], rows),
            "",
            f"Identity embedding (from X_id): verification rate **{result['verification_rate']:.1%}** at FAR "
            f"{result['far']:.0%} (threshold {result['threshold']:.3f} on {result['impostor_pairs']} pairs of different "
            f"faces; genuine pairs = each face vs a mirrored, shifted, brightness-jittered copy; mean cosine genuine "
            f"{result['genuine_cosine']:.3f}, impostor {result['impostor_cosine']:.3f}).",
        ]
    )


# -- the system --------------------------------------------------------------------------------------------


class AIFDSystem(TrainingSystem):
    """Model ``aifd``; frozen ``recognizer`` (MobileFaceNet) gives the identity targets."""

    name = "aifd"
    config_class = AIFDTrainConfig
    config: AIFDTrainConfig

    def build(self) -> None:
        from ganime_age.models.mobilefacenet import FaceRecognizer

        c = self.config
        recognizer = FaceRecognizer(c.recognizer_weights)
        if recognizer.net.config.embedding_size != c.model.embedding_dim:
            raise ValueError(
                f"system.model.embedding_dim ({c.model.embedding_dim}) must equal the recogniser's "
                f"embedding size ({recognizer.net.config.embedding_size}): it learns to match it"
            )
        self.models["aifd"] = AIFDEncoder(c.model)
        self.optimizers["aifd"] = make_adam(
            self.models["aifd"].parameters(),
            c.lr,
            (c.beta1, c.beta2),
            fused=self.train.fused_optimizers,
            weight_decay=c.weight_decay,
        )
        self.schedulers["aifd"] = warmup_cosine(
            self.optimizers["aifd"], self.train.max_steps, c.warmup_steps, c.min_lr_fraction
        )
        self.frozen["recognizer"] = recognizer

    def identity_target(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen recogniser's embedding of the face and of its mirror image, averaged and normalised."""
        recognizer = self.frozen["recognizer"]
        with torch.no_grad():
            both = recognizer.embed_aligned(images.float()) + recognizer.embed_aligned(images.float().flip(-1))
        return F.normalize(both, dim=1)

    def training_step(self, batch: Batch, step: int) -> dict[str, Any]:
        c = self.config
        aifd, optimizer = self.models["aifd"], self.optimizers["aifd"]
        images = random_affine(batch["image"], c.shift, c.scale)
        ages = batch["age"].float()
        target = self.identity_target(images)
        with self.accelerator.autocast():
            out = aifd(images)
            identity = cosine_distance(out.embedding, target)
            age = self.unwrap("aifd").age_loss(out.age_logits, ages)
            loss = c.lambda_identity * identity + c.lambda_age * age
        self.optimise(optimizer, loss)
        with torch.no_grad():
            support = torch.arange(out.age_logits.shape[1], device=ages.device, dtype=torch.float32)
            mae = ((out.age_logits.detach().float().softmax(dim=1) @ support) - ages).abs().mean()
        return {
            "loss": loss.detach(),
            "identity": identity.detach(),
            "age": age.detach(),
            "age_mae": mae,
            "spatial_attention": out.spatial_attention.detach().mean(),
            "channel_attention": out.channel_attention.detach().mean(),
        }

    @torch.no_grad()
    def sample_grid(self, batch: Batch) -> Image.Image:
        """Inputs next to the spatial attention (where the age part is taken from), upsampled."""
        with evaluating(self.unwrap("aifd")) as aifd:
            out = aifd(batch["image"].float())
        size = batch["image"].shape[-1]
        attention = F.interpolate(out.spatial_attention.float(), size=(size, size), mode="bilinear")
        return image_grid([("input", batch["image"].float()), ("sigma_s", attention)])

    def export(self, folder: Path, card: dict[str, Any]) -> None:
        c = self.config
        aifd = self.unwrap("aifd")
        card = {"model_name": "ganime-age AIFD encoder", **card}
        if "evaluation" not in card and c.eval_faces != 0:
            try:
                from training.data.prepared import PreparedFaces
                from training.evaluate import decode_faces, spread_indices

                dataset = PreparedFaces(self.train.data_dir, "test", image_size=self.train.image_size)
                faces = decode_faces(dataset, spread_indices(len(dataset), c.eval_faces))
                result = evaluate_aifd(aifd, faces["image"], faces["age"])
            except (GanimeAgeError, OSError, ValueError) as error:  # no usable test split: still export
                print(f"aifd: no test-split evaluation ({error})")
            else:
                card["evaluation"] = aifd_markdown(result)
                print(aifd_markdown(result))
        dtype = torch.float16 if self.train.export_dtype == "float16" else None
        aifd.save_pretrained(folder, dtype=dtype, model_card_kwargs=card)
