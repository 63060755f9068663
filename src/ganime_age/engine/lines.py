"""An old face's lines where it has none yet: a fixed layout of forehead, frown, crow's-feet, under-eye,
nasolabial, marionette and upper-lip lines drawn in the template as a log-brightness pattern, and how deep they are
at an age. The appearance adds them to the skin's fine change (:mod:`.appearance`).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ganime_age.engine.config import WRINKLE_AGES, WRINKLE_RIDGE, WRINKLE_WIDTH, FittedEngineConfig
from ganime_age.engine.frames import Template

# where an old face's lines run (canonical cm: x right, y down, the face's origin between the ears; one side,
# mirrored): forehead lines, frown lines, crow's feet, lines under the eyes, nasolabial and marionette folds,
# lines above the upper lip and down the cheeks. Each: (points of the line, relative depth, width in cm). The
# forehead's are faint: deeper, three of them read as a darker band across the forehead (the gates' forehead step).
_LINES: tuple[tuple[tuple[tuple[float, float], ...], float, float], ...] = (
    (((0.0, -5.9), (1.6, -5.95), (3.2, -6.15), (4.4, -6.45)), 0.4, 0.06),
    (((0.0, -6.6), (1.7, -6.65), (3.3, -6.85), (4.3, -7.1)), 0.35, 0.06),
    (((0.0, -7.3), (1.5, -7.35), (2.9, -7.5)), 0.25, 0.06),
    (((0.55, -4.7), (0.6, -4.2), (0.7, -3.7)), 0.8, 0.06),
    (((4.8, -2.75), (5.6, -2.95), (6.2, -3.15)), 0.5, 0.06),
    (((4.8, -2.45), (5.7, -2.35), (6.3, -2.3)), 0.5, 0.06),
    (((4.7, -2.1), (5.4, -1.7), (5.9, -1.35)), 0.45, 0.06),
    (((4.9, -3.05), (5.5, -3.5), (5.9, -3.85)), 0.35, 0.06),
    (((1.9, -1.75), (2.7, -1.5), (3.6, -1.5), (4.4, -1.8)), 0.6, 0.07),
    (((2.1, -1.1), (3.0, -0.85), (4.0, -0.95), (4.8, -1.3)), 0.4, 0.08),
    (((1.55, 1.1), (2.1, 2.3), (2.6, 3.5), (3.0, 4.6)), 1.0, 0.1),
    (((2.75, 4.75), (2.95, 5.6), (3.2, 6.5)), 0.55, 0.07),
    (((0.5, 2.75), (0.55, 3.2)), 0.4, 0.05),
    (((1.15, 2.8), (1.25, 3.3)), 0.4, 0.05),
    (((5.2, 0.4), (4.8, 2.2), (4.5, 3.9)), 0.4, 0.1),
)


@functools.lru_cache(maxsize=4)
def _wrinkle_pattern(size: int, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """(R, R) float32: an old face's lines as a log-brightness pattern in the template, darkest -1 in each line's
    trough, with a faint lit ridge above it (a fold is shaded below and lit above under a light from above).
    Each line's depth varies along it, and it tapers at both ends, as a real line does."""
    pattern = np.zeros((size, size), np.float32)
    rng = np.random.default_rng(7)
    for points, depth, width in _LINES:
        for side in (1.0, -1.0):
            line = np.array(points, np.float64) * np.array([side, 1.0])
            # densely along the line, with a slow irregular depth and the ends tapered
            steps = max(int(np.ceil(np.linalg.norm(np.diff(line, axis=0), axis=1).sum() * scale * 2)), 2)
            t = np.linspace(0.0, 1.0, steps)
            length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
            path = np.stack([np.interp(t * length[-1], length, line[:, k]) for k in range(2)], axis=1)
            taper = np.sin(np.pi * t) ** 0.5
            wobble = 0.8 + 0.2 * np.sin(2.0 * np.pi * (t * rng.uniform(1.5, 3.0) + rng.uniform()))
            pixels = path * scale + np.asarray(centre)
            trough = np.zeros((size, size), np.float32)
            for (x, y), value in zip(pixels, depth * taper * wobble, strict=True):
                xi, yi = int(np.rint(x)), int(np.rint(y))
                if 0 <= xi < size and 0 <= yi < size:
                    trough[yi, xi] = max(trough[yi, xi], float(value))
            sigma = max(WRINKLE_WIDTH * width * scale, 0.6)
            # a trough of the line's width, normalised so that its centre is the line's depth
            trough = cv2.GaussianBlur(trough, (0, 0), sigma) * np.float32(np.sqrt(2.0 * np.pi) * sigma)
            ridge = np.roll(trough, -max(int(np.rint(2.0 * sigma)), 1), axis=0)
            pattern += -trough + WRINKLE_RIDGE * ridge
    return np.clip(pattern, -1.0, WRINKLE_RIDGE)


def wrinkle_depth(config: FittedEngineConfig, age: float) -> float:
    """The log darkness of an old face's lines at `age`: none until WRINKLE_AGES[0], all of
    ``wrinkle_depth`` from WRINKLE_AGES[1]."""
    t = float(np.clip((age - WRINKLE_AGES[0]) / (WRINKLE_AGES[1] - WRINKLE_AGES[0]), 0.0, 1.0))
    return config.wrinkle_depth * t * t * (3.0 - 2.0 * t)


def wrinkle_pattern(template: Template) -> np.ndarray:
    """:func:`_wrinkle_pattern` for this template, off the eyes, brows and lips (made once)."""
    from ganime_age.face_model import canonical_face

    canonical = canonical_face().vertices[:, :2]
    scale = float(np.ptp(template.vertices[:, 0]) / np.ptp(canonical[:, 0]))
    origin = (template.vertices - scale * canonical).mean(axis=0)
    pattern = _wrinkle_pattern(template.size, round(scale, 4), (round(float(origin[0]), 3), round(float(origin[1]), 3)))
    regions = template.regions
    keep = 1.0 - np.maximum(np.maximum(regions["eyes"], regions["brows"]), regions["lips"])
    return pattern * keep * template.mask
