"""Fine texture at the photo's resolution: what tells hair (its strands) from skin of the same colour.

Facial hair is found by it (:mod:`.beard`: rougher than the cheeks), and grey hair regains a colour only where
it is rougher than the face's skin (:mod:`.hair`: a pale bald crown is as grey as white hair, but smooth).
"""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.frames import channel_mean, large_face_blur

TEXTURE_SCALES = (0.006, 0.03)  # face widths: the finest band's blur, and the neighbourhood its energy is read over
LOG_FLOOR = 1.0  # grey levels squared added to a pixel's fine energy before its log (less is the photo's noise)


def fine_band(lightness: np.ndarray, face_width: float, in_place: bool = False) -> np.ndarray:
    """(h, w) float32: a lightness image less its blur at TEXTURE_SCALES[0] face widths (strands, pores); with
    `in_place`, made in `lightness` itself."""
    blur = cv2.GaussianBlur(lightness, (0, 0), max(TEXTURE_SCALES[0] * face_width, 0.7))
    if in_place:
        return np.subtract(lightness, blur, out=lightness)
    return lightness - blur


def local_mean(image: np.ndarray, face_width: float) -> np.ndarray:
    """`image` averaged over TEXTURE_SCALES[1] face widths (a 12 MP photo's face: 39 px, 0.37 s a pass over its
    beard's box at full size, shrunk: :func:`.frames.large_face_blur`)."""
    return large_face_blur(image, max(TEXTURE_SCALES[1] * face_width, 1.0))


def log_energy(rgb: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32: per pixel, the log of the square of `rgb`'s finest brightness detail (plus LOG_FLOOR)."""
    # in place: over a 12 MP photo's head box each float32 copy is 44 MB (a float32 copy of the RGB, 133 MB)
    band = fine_band(channel_mean(rgb), face_width, in_place=True)
    band *= band
    band += np.float32(LOG_FLOOR)
    return np.log(band, out=band)


def roughness(rgb: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32: :func:`log_energy` averaged over TEXTURE_SCALES[1] face widths (in the log, so a glasses'
    frame or a brow's edge nearby does not make the skin around it rough): hair is rougher than skin."""
    return local_mean(log_energy(rgb, face_width), face_width)
