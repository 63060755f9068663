"""Hair greys with age: found inside the person's silhouette, outside the face and unlike its skin, and moved
towards the fitted grey hair's brightness by the share of it that greys between two ages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ganime_age.engine.config import HAIR_MAX_LIFT, HAIR_SKIN_DISTANCE, LOG_EPSILON

if TYPE_CHECKING:
    from ganime_age.engine.model import FittedEngine

Segmenter = Callable[[np.ndarray], np.ndarray]  # uint8 RGB (h, w, 3) -> the person's silhouette (h, w) in 0..1


def hair_weight(
    roi: np.ndarray, grid_rgb: np.ndarray, face_mask: np.ndarray, mouth_row: float, segment: Segmenter
) -> np.ndarray:
    """(h, w) float32 on the engine grid: how surely each pixel is the person's hair, 0 where that is unsure.

    Hair is what is inside the person's silhouette (`segment`, the face analysis's selfie segmenter, on the photo
    region `roi`),
    outside the face, above the mouth (below it are the neck, beards and clothes) and unlike the face's skin
    in colour (ears, a bald crown and blond hair as pale as the skin are left alone).
    """
    grid_h, grid_w = grid_rgb.shape[:2]
    silhouette = cv2.resize(segment(roi), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    silhouette = np.clip((silhouette - 0.3) / 0.4, 0.0, 1.0)  # the segmenter's faint doubts (a wall) count as none
    lab = cv2.cvtColor(np.ascontiguousarray(grid_rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = face_mask > 0.5
    if not inside.any():
        return np.zeros((grid_h, grid_w), np.float32)
    distance = np.sqrt(((lab - np.median(lab[inside], axis=0)) ** 2).sum(axis=2))
    near, far = HAIR_SKIN_DISTANCE
    unlike_skin = np.clip((distance - near) / (far - near), 0.0, 1.0)
    outside_face = 1.0 - np.clip(2.0 * cv2.GaussianBlur(face_mask, (0, 0), 2.0), 0.0, 1.0)
    rows = np.arange(grid_h, dtype=np.float32)[:, None]
    above_mouth = np.clip((mouth_row - rows) / max(0.05 * grid_h, 1.0), 0.0, 1.0)
    weight = (silhouette * unlike_skin * outside_face * above_mouth).astype(np.float32)
    # a grid pixel astride the hairline is half skin: greyed, its skin would light up as a seam
    weight = cv2.erode(weight, np.ones((3, 3), np.uint8))
    weight[weight < 0.02] = 0.0  # so the repainted box ends where the hair does
    return weight


def grey_hair(level: float, grid_rgb: np.ndarray, hair: np.ndarray, skin: float) -> tuple[np.ndarray, np.ndarray]:
    """The way from the hair's colours to grey hair's (`level`, the fitted brightness relative to the
    `skin`, no colour), weighted by `hair`: a colour change ((h, w, 3) log ratios of mean 0) and a brightness change
    ((h, w) log, the same light added to R, G and B, so the photo's colour noise in dark hair is not scaled
    up into teal speckles). An edit takes a share of both; they are made once per photo.

    Both start from the hair's colours at the grid's own sharpness (a grid pixel is a few photo pixels):
    from colours blurred across the hairline, a lift meant for dark hair lit the skin beside it into a
    bright seam. Strands finer than a grid pixel keep their light and dark, brightened.
    """
    offset = np.float32(255.0 * LOG_EPSILON)
    level = np.float32(level * skin) + offset
    sharp = cv2.GaussianBlur(grid_rgb.astype(np.float32), (0, 0), 1.0).reshape(grid_rgb.shape)
    ratio = np.log(level) - np.log(sharp + offset)
    mean = ratio.mean(axis=2, keepdims=True)
    return (ratio - mean) * hair[..., None], np.clip(mean[..., 0], 0.0, HAIR_MAX_LIFT) * hair


def hair_greying_share(engine: FittedEngine, source_age: float, target_age: float) -> float:
    """The share of the hair still pigmented at `source_age` that greys by `target_age` (0 when getting
    younger: grey hair's lost colour cannot be told from the photo)."""
    table = engine.tables["hair_greying"]
    if target_age <= source_age or engine.config.hair_greying_gain <= 0.0 or not table.any():
        return 0.0
    before, after = np.interp([source_age, target_age], engine.centres, table)
    share = engine.config.hair_greying_gain * (after - before) / max(1.0 - before, 1e-3)
    return float(np.clip(share, 0.0, 1.0))
