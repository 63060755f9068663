"""What a face is matched to other faces by (the bank's, a person's own): its lower face's skin tone, an open or a
closed mouth, a smile, and its sex; and how unlike two faces are by it."""

from __future__ import annotations

import numpy as np

from ganime_age.engine.frames import Template
from ganime_age.faces.topology import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS

DESCRIPTOR = 6  # per face: mean log R, G, B of the lower face's skin, the lips' gap (cm), the smile, female
MOUTH_CORNERS = (61, 291)  # the mesh's mouth corners
LIPS_CENTRE = (13, 14)  # the inner lips' centres, upper and lower
SEX_WEIGHT = 10.0  # the other sex's distance: more than any skin tone's, mouth's or smile's


def descriptor_distance(bank: np.ndarray, person: np.ndarray, sex_weight: float = SEX_WEIGHT) -> np.ndarray:
    """How unlike the person each bank face is: skin tone (its colour counts twice its brightness), an open
    against a closed mouth, a smile against none, and the other sex (which outweighs everything else)."""
    tone = bank[:, :3] - person[:3]
    brightness = tone.mean(axis=1)
    colour = tone - brightness[:, None]
    return (
        np.abs(brightness)
        + 2.0 * np.linalg.norm(colour, axis=1)
        + 0.3 * np.abs(bank[:, 3] - person[3])
        + 0.3 * np.abs(bank[:, 4] - person[4])
        + sex_weight * np.abs(bank[:, 5] - person[5])
    )


def lower_face_skin(template: Template) -> np.ndarray:
    """(R, R) the lower face's skin in the template (cheeks and chin; no eyes, brows or lips): where a face's
    tone is read."""
    regions = template.regions
    skin = template.raster.mask * (1.0 - np.maximum(regions["eyes_wide"], regions["brows"])) * (1.0 - regions["lips"])
    rows = np.arange(template.size, dtype=np.float32)[:, None]
    return (skin * (rows > float(template.vertices[:, 1].mean()))).astype(np.float32)


def smile(points: np.ndarray) -> float:
    """How far the mouth's corners rise above the lips' centre, in face widths times ten (0 for a neutral mouth,
    about 1 for a broad smile), measured along the eyes' line so that a tilted head reads the same."""
    xy = np.asarray(points, np.float64)[:, :2]
    across = xy[LEFT_EYE_CORNERS[1]] - xy[RIGHT_EYE_CORNERS[0]]
    width = max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]]) / width  # perpendicular to the eyes' line, pointing down the face
    corners = xy[list(MOUTH_CORNERS)].mean(axis=0) @ down
    centre = xy[list(LIPS_CENTRE)].mean(axis=0) @ down
    return float(10.0 * (centre - corners) / width)


def lower_face_skin_tone(template: Template, log_view: np.ndarray) -> np.ndarray:
    """(3,) a face's mean log colour over its lower face's skin."""
    skin = lower_face_skin(template)
    return (log_view * skin[..., None]).sum(axis=(0, 1)) / max(float(skin.sum()), 1.0)


def describe(template: Template, log_view: np.ndarray, mouth_gap: float, smiling: float, female: float) -> np.ndarray:
    """A face's descriptor (:data:`DESCRIPTOR`) from its log template view and its mouth."""
    return np.array([*lower_face_skin_tone(template, log_view), mouth_gap, smiling, female], np.float32)
