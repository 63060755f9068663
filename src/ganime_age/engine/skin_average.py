"""Matched faces averaged where each shows skin (:func:`skin_mean`).

The bank's strangers, or a person's own photos (:mod:`.own_photos`), are averaged into one view of the target age,
each pixel of each face counted by how much it looks like that face's skin or is one of its features: a child's
fringe, hair over a cheek, glasses or a bright background are left out rather than averaged into a smudge.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ganime_age.engine.descriptors import lower_face_skin_tone
from ganime_age.engine.frames import Template
from ganime_age.faces.topology import BROW_TOPS

SKIN_TOLERANCE = 0.5  # log distance from a face's cheek colour at which a pixel stops counting as its skin
SKIN_QUORUM = 0.5  # of the exemplars showing skin at a pixel for the mean there to be taken in full
ABOVE_BROWS = 10  # template pixels: the band above the brows whose skin says the brows are seen (no fringe)
SKIN_BLUR = 6.0  # template pixels: the skin weights are smooth (patchy weights printed blobs on unevenly lit faces)


def skin_weights(template: Template, views: list[np.ndarray]) -> list[np.ndarray]:
    """(R, R) per view: how much each pixel counts in :func:`skin_mean` (:func:`skin_likeness` against the views'
    mean lower-face skin tone), before any count of the face."""
    tone = np.stack([lower_face_skin_tone(template, view) for view in views]).mean(axis=0)
    return [skin_likeness(template, view, tone) for view in views]


def skin_mean(
    template: Template, views: list[np.ndarray], counts: Any = None, likeness: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The exemplars' mean log view, each pixel of each face counted by how much it looks like that face's skin
    (outside the eyes, brows and lips, whose features are wanted whatever their colour): a child's fringe over the
    forehead, hair over a cheek, glasses or a bright background at the outline are left out rather than averaged
    into a dark or grey smudge. Also (R, R) how sure the mean is there (0 where too few faces show skin: the
    person's own pixels then stay). The views come with their skin tones levelled to one (the person's).
    `counts`: how much each face counts (a person's own photos, by how near their age is), default one each;
    `likeness`: the views' :func:`skin_weights`, where known."""
    total = np.zeros_like(views[0])
    weights = np.zeros(views[0].shape[:2], np.float32)
    for n, (view, weight) in enumerate(zip(views, likeness or skin_weights(template, views), strict=True)):
        if counts is not None:
            weight = weight * np.float32(counts[n])
        total += weight[..., None] * view
        weights += weight
    mean = total / np.maximum(weights, 1e-6)[..., None]
    quorum = len(views) if counts is None else max(float(np.sum(counts)), 1e-6)
    confidence = np.clip(weights / (SKIN_QUORUM * quorum), 0.0, 1.0)
    return mean.astype(np.float32), confidence.astype(np.float32)


def skin_likeness(template: Template, view: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """(R, R) how much each pixel of a log template view looks like skin of the colour `tone` (log distance, the
    farthest channel, against SKIN_TOLERANCE; smooth: patchy weights printed blobs), or is one of the features
    (eyes, brows, lips, mouth), which count whatever their colour; a face's brows count only as far as the skin
    just above them shows skin (a child's fringe over its brows, averaged in as brows, printed dark smudges above
    the eyes of adults made children)."""
    regions = template.regions
    away = np.abs(view - tone).max(axis=2)
    skin = cv2.GaussianBlur(np.exp(-((away / SKIN_TOLERANCE) ** 2)).astype(np.float32), (0, 0), SKIN_BLUR)
    band = _above_brows(template)
    brows_seen = float(np.clip((skin * band).sum() / max(float(band.sum()), 1.0) / SKIN_QUORUM, 0.0, 1.0))
    features = np.maximum.reduce(
        [regions["eyes_wide"], brows_seen * regions["brows"], regions["lips"], regions["mouth"]]
    )
    return np.maximum(features, skin).astype(np.float32)


def _above_brows(template: Template) -> np.ndarray:
    """(R, R) the band of forehead just above the brows (ABOVE_BROWS template pixels high), across them."""
    brows = template.vertices[list(BROW_TOPS)]
    band = np.zeros((template.size, template.size), np.float32)
    top, x0, x1 = int(brows[:, 1].min()), int(brows[:, 0].min()), int(np.ceil(brows[:, 0].max()))
    band[max(top - ABOVE_BROWS, 0) : max(top - 2, 0), x0 : x1 + 1] = 1.0
    return band
