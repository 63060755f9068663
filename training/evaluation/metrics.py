"""Evaluation measures shared by the evaluation commands (GANimation-age, Table I, ...).

Identity: cosine similarity of FaceRecognizer embeddings (image + mirror image, as the
MobileFaceNet authors evaluate), and a verification threshold chosen on different-person pairs
at a fixed false-accept rate. Age: statistics of an AgeEstimator's estimates against target ages.
AUs: the faces/ pipeline (MediaPipe blendshapes -> AUs) run on aligned crops.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import NUM_AUS


def add_report_arguments(parser: argparse.ArgumentParser, samples: str | None = None) -> None:
    """The options every evaluation command writes its results by: ``--json`` and ``--markdown``, and
    ``--samples`` (its grids) where `samples` says what goes there."""
    if samples is not None:
        parser.add_argument("--samples", default=None, help=samples)
    parser.add_argument("--json", dest="json_path", help="write the results as JSON here")
    parser.add_argument("--markdown", help="write the Markdown tables here")


# -- identity -----------------------------------------------------------------------------------------------


def threshold_at_far(impostor_scores: np.ndarray | Sequence[float], far: float = 0.01) -> float:
    """The smallest cosine threshold t with share(impostor score > t) <= `far`.

    With P impostor pairs the achievable rates are multiples of 1/P: with P < 1/far the threshold
    is the largest impostor score (no impostor accepted), so report P next to it.
    """
    scores = np.sort(np.asarray(impostor_scores, np.float64).reshape(-1))[::-1]
    if scores.size == 0:
        raise ValueError("threshold_at_far needs at least one impostor score")
    if not 0.0 <= far < 1.0:
        raise ValueError(f"far must be in [0, 1), got {far}")
    k = math.floor(far * scores.size + 1e-9)  # at most k impostors may lie above the threshold
    return float(scores[min(k, scores.size - 1)])


def accept_rate(scores: np.ndarray | Sequence[float], threshold: float) -> float:
    """Share of scores strictly above the threshold (verified as the same person)."""
    values = np.asarray(scores, np.float64).reshape(-1)
    return float((values > threshold).mean()) if values.size else float("nan")


def different_pairs(count: int, max_pairs: int | None = None, seed: int = 0) -> np.ndarray:
    """Index pairs (i < j) of different images, all of them or a seeded random subset of `max_pairs`.

    For datasets without identity labels (UTKFace) different images are assumed to show different
    people; the few repeated people make the threshold slightly conservative.
    """
    i, j = np.triu_indices(count, k=1)
    pairs = np.stack([i, j], axis=1)
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = pairs[np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)]
    return pairs


@torch.no_grad()
def embed_faces(recognizer: Any, images: torch.Tensor, batch_size: int = 64, flip: bool = True) -> torch.Tensor:
    """Evaluation embeddings (N, D) of aligned crops in [-1, 1], on the CPU."""
    chunks = [
        recognizer.embed(images[i : i + batch_size], flip=flip).float().cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, 256)


def pair_cosines(embeddings: torch.Tensor, pairs: np.ndarray) -> np.ndarray:
    """Cosine of each (i, j) pair of L2-normalised embeddings."""
    if len(pairs) == 0:
        return np.zeros(0)
    a, b = embeddings[torch.as_tensor(pairs[:, 0])], embeddings[torch.as_tensor(pairs[:, 1])]
    return torch.nn.functional.cosine_similarity(a, b, dim=1).numpy()


def matched_cosines(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Cosine between row i of `a` and row i of `b` (input vs edited face)."""
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1).cpu().numpy()


# -- age ------------------------------------------------------------------------------------------------------


def age_stats(
    estimates: np.ndarray | Sequence[float], targets: np.ndarray | Sequence[float] | float
) -> dict[str, float]:
    """Mean and std of the estimated ages, their mean signed error and MAE against the targets."""
    est = np.asarray(estimates, np.float64).reshape(-1)
    tgt = np.broadcast_to(np.asarray(targets, np.float64), est.shape)
    return {
        "estimate_mean": float(est.mean()),
        "estimate_std": float(est.std()),
        "error_mean": float((est - tgt).mean()),
        "mae": float(np.abs(est - tgt).mean()),
    }


# -- AUs ------------------------------------------------------------------------------------------------------


def aligned_face_detection(size: int) -> Any:
    """A DetectedFace for a crop aligned with ALIGN_TEMPLATE: the template points and a box around them.

    Lets the MediaPipe landmarker run on aligned crops (model outputs) without re-detecting the face,
    which YuNet does not reliably do on small or generated crops.
    """
    from ganime_age.faces import DetectedFace, template_points

    points = template_points(size).astype(np.float32)
    margin = 0.1 * size
    box = np.array([margin, margin, size - 2 * margin, size - 2 * margin], np.float32)
    return DetectedFace(box=box, points=points, score=1.0)


def measure_blendshapes(landmarker: Any, crops: np.ndarray) -> np.ndarray:
    """MediaPipe's 52 blendshape scores (N, 52) of aligned uint8 crops (N, S, S, 3); NaN rows where it finds no face."""
    from ganime_age.faces.aus import NUM_BLENDSHAPES, blendshape_vector

    out = np.full((len(crops), NUM_BLENDSHAPES), np.nan, np.float32)
    if len(crops) == 0:
        return out
    face = aligned_face_detection(crops.shape[1])
    for index, crop in enumerate(crops):
        result = landmarker.analyze(np.ascontiguousarray(crop), face)
        if result is not None:
            out[index] = blendshape_vector(result.blendshapes)
    return out


def aus_from_blendshapes(scores: np.ndarray) -> np.ndarray:
    """(N, 52) blendshape rows -> (N, 17) AU intensities with the current read-out; NaN rows stay NaN."""
    from ganime_age.faces import blendshapes_to_aus
    from ganime_age.faces.aus import blendshape_mapping

    out = np.full((len(scores), NUM_AUS), np.nan, np.float32)
    for index, row in enumerate(scores):
        if np.all(np.isfinite(row)):
            out[index] = blendshapes_to_aus(blendshape_mapping(row))
    return out


def measure_aus(landmarker: Any, crops: np.ndarray) -> np.ndarray:
    """AU intensities (N, 17) of aligned uint8 crops (N, S, S, 3); rows of NaN where MediaPipe finds no face."""
    return aus_from_blendshapes(measure_blendshapes(landmarker, crops))


def chroma_high_frequency(crops: np.ndarray, border: float = 0.15) -> np.ndarray:
    """Per-crop energy (N,) of the fine colour detail (``training.systems.losses.chroma_detail``) inside the face.

    uint8 crops (N, S, S, 3) on the 0..255 scale; the outer `border` share of the crop (hair, background)
    is left out. An edit's energy over its input's is the speckle/tint artefact score.
    """
    from training.systems.losses import chroma_detail

    images = torch.from_numpy(np.asarray(crops, np.float32)).permute(0, 3, 1, 2)
    size = images.shape[-1]
    inner = slice(int(border * size), size - int(border * size))
    detail = chroma_detail(images)[:, :, inner, inner].double()
    return (detail**2).mean(dim=(2, 3)).sum(dim=1).numpy()


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8 RGB."""
    return (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    )


# -- reporting ------------------------------------------------------------------------------------------------


def finite_mean(values: np.ndarray | Sequence[float]) -> float:
    """Mean over the finite entries (NaN marks faces a measurement failed on); NaN if none."""
    array = np.asarray(values, np.float64).reshape(-1)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else float("nan")


def percent(value: float) -> str:
    """A share as a whole percentage, "n/a" where it could not be measured (NaN)."""
    return f"{value:.0%}" if math.isfinite(value) else "n/a"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub Markdown table; floats rounded to `digits` significant decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def json_ready(value: Any) -> Any:
    """Nested results with NaN/inf as None (strict JSON) and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def bootstrap_difference(a: np.ndarray, b: np.ndarray, draws: int, seed: int = 0) -> dict[str, float]:
    """Mean of `a` minus mean of `b` (per input, NaN = not read) and its 95% percentile interval over inputs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)

    def difference(rows: np.ndarray) -> float:
        x, y = a[rows], b[rows]
        if not np.isfinite(x).any() or not np.isfinite(y).any():
            return float("nan")
        return float(np.nanmean(x) - np.nanmean(y))

    rng = np.random.default_rng(seed)
    samples = np.array([difference(rng.integers(0, len(a), len(a))) for _ in range(draws)])
    samples = samples[np.isfinite(samples)]
    low, high = (float(v) for v in np.percentile(samples, [2.5, 97.5])) if samples.size else (np.nan, np.nan)
    return {"difference": difference(np.arange(len(a))), "low": low, "high": high}


def age_reading_curve(readings: np.ndarray, ages: np.ndarray, bandwidth: float = 3.0, max_age: int = 100) -> np.ndarray:
    """An estimator's mean reading of real faces at each age 0..max_age (Gaussian-smoothed over true ages).

    Age estimators regress to the mean (a real 75-year-old reads ~65), so an edit to age 75 should read what
    real 75-year-olds read, not 75: this curve is that target, for the gates and for the estimator loss.
    """
    readings = np.asarray(readings, np.float64)
    ages = np.asarray(ages, np.float64)
    grid = np.arange(max_age + 1, dtype=np.float64)
    log_weights = -0.5 * ((grid[:, None] - ages[None, :]) / bandwidth) ** 2
    # each age's weights relative to its nearest face's, so an age far from every face takes the nearest ones'
    # readings instead of underflowing to 0 (a few hundred faces leave gaps at the ends of life)
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    return ((weights @ readings) / weights.sum(axis=1)).astype(np.float32)


# -- realism of aged skin: regions against the same face's cheeks -------------------------------------------------
SKIN_REGIONS = ("sockets", "forehead_top")


def _polygon(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[:, :2]).astype(np.int32)], 1)
    return mask


def skin_region_masks(shape: tuple[int, ...], landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """(H, W) bool masks from MediaPipe's 478 landmarks: the cheeks (discs at CHEEK_POINTS), the eye sockets (a
    ring around each eye, from the lids to a tenth of a face width out, brows left out) and the forehead's top
    band (the top third of the forehead between the brows' tops and the mesh's top, across the brows' span)."""
    import cv2

    from ganime_age.faces.topology import (
        BROW_TOPS,
        CHEEK_POINTS,
        FACE_LEFT,
        FACE_OVAL,
        FACE_RIGHT,
        LEFT_BROW,
        LEFT_EYE_CONTOUR,
        RIGHT_BROW,
        RIGHT_EYE_CONTOUR,
    )

    points = np.asarray(landmarks, np.float64)
    width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    cheeks = np.zeros(shape[:2], np.uint8)
    for index in CHEEK_POINTS:
        x, y = points[index, :2]
        cv2.circle(cheeks, (round(x), round(y)), max(1, round(0.04 * width)), 1, -1)
    eyes = _polygon(shape, points[list(RIGHT_EYE_CONTOUR)]) | _polygon(shape, points[list(LEFT_EYE_CONTOUR)])
    brows = _polygon(shape, points[list(RIGHT_BROW)]) | _polygon(shape, points[list(LEFT_BROW)])

    def grown(mask: np.ndarray, by: float) -> np.ndarray:
        radius = max(1, round(by * width))
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))

    sockets = grown(eyes, 0.1) & ~grown(eyes, 0.02) & ~grown(brows, 0.02)
    brow_top = float(points[list(BROW_TOPS), 1].min())
    top = float(points[10, 1])  # the mesh's highest point, mid-forehead
    x0 = float(points[list(RIGHT_BROW) + list(LEFT_BROW), 0].min())
    x1 = float(points[list(RIGHT_BROW) + list(LEFT_BROW), 0].max())
    band = np.zeros(shape[:2], np.uint8)
    y_top, y_low = top, top + (brow_top - top) / 3.0
    cv2.rectangle(band, (round(x0), round(y_top)), (round(x1), round(y_low)), 1, -1)
    oval = _polygon(shape, points[[a for a, _ in FACE_OVAL]])
    # where a beard or a moustache grows: the chin below the lower lip, and the skin between nose and lip
    lower = np.zeros(shape[:2], np.uint8)
    half = 0.1 * width
    for top, bottom in ((17, 152), (2, 0)):  # the lower lip's bottom to the chin; the nose's base to the lip
        y0, y1 = float(points[top, 1]), float(points[bottom, 1])
        y0, y1 = y0 + 0.2 * (y1 - y0), y1 - 0.2 * (y1 - y0)
        x = float(points[[top, bottom], 0].mean())
        cv2.rectangle(lower, (round(x - half), round(y0)), (round(x + half), round(y1)), 1, -1)
    return {
        "cheeks": cheeks.astype(bool),
        "sockets": sockets.astype(bool),
        "forehead_top": (band & oval).astype(bool),
        "lower_face": (lower & oval).astype(bool),
    }


def skin_contrasts(rgb: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per region (SKIN_REGIONS), its mean CIE Lab minus the cheeks' (L 0..100): how much darker, redder or bluer
    the eye sockets and the forehead's top are than the same face's cheeks. NaN where a region is empty."""
    import cv2

    masks = skin_region_masks(rgb.shape, landmarks)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    if not masks["cheeks"].any():
        return {name: np.full(3, np.nan) for name in SKIN_REGIONS}
    cheeks = lab[masks["cheeks"]].mean(axis=0)
    return {
        name: (lab[masks[name]].mean(axis=0) - cheeks) if masks[name].any() else np.full(3, np.nan)
        for name in SKIN_REGIONS
    }


def lower_face_contrast(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(3,) the CIE Lab of the chin and the skin between nose and lip minus the cheeks': a beard or stubble makes
    it darker (NaN where a region is empty)."""
    import cv2

    masks = skin_region_masks(rgb.shape, landmarks)
    if not masks["cheeks"].any() or not masks["lower_face"].any():
        return np.full(3, np.nan)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return lab[masks["lower_face"]].mean(axis=0) - lab[masks["cheeks"]].mean(axis=0)


def forehead_profile(rgb: np.ndarray, landmarks: np.ndarray, samples: int = 40) -> np.ndarray:
    """CIE L along the forehead's centre line (a strip a tenth of a face wide), from the brows' tops up to a tenth
    of a face width above the mesh's top (where a face's change used to end in a band): `samples` values."""
    import cv2

    from ganime_age.faces.topology import BROW_TOPS, FACE_LEFT, FACE_RIGHT

    points = np.asarray(landmarks, np.float64)
    width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    grey = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]
    low = float(points[list(BROW_TOPS), 1].min())
    high = float(points[10, 1]) - 0.1 * width
    centre = float(points[[10, 151, 9, 8], 0].mean())
    half = max(1, round(0.05 * width))
    x0, x1 = max(round(centre) - half, 0), min(round(centre) + half + 1, rgb.shape[1])
    rows = np.clip(np.round(np.linspace(low, high, samples)).astype(int), 0, rgb.shape[0] - 1)
    return np.array([grey[r, x0:x1].mean() for r in rows])


def forehead_step(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> float:
    """The largest jump (CIE L, between neighbouring points a hundredth of a face apart, lightly smoothed) of what
    an edit changed along the forehead's profile (:func:`forehead_profile`, both photos read at the input's
    landmarks): an even change of the forehead has none, a band's edge has one."""
    change = forehead_profile(after, landmarks) - forehead_profile(before, landmarks)
    smooth = np.convolve(change, np.array([0.25, 0.5, 0.25]), mode="valid")
    return float(np.abs(np.diff(smooth)).max())
