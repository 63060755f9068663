"""How much hair a pixel along the hairline holds, for greying it.

A soft hairline is sparse hairs over skin: its pixels are part hair, part skin, as their brightness between the
two says. The hair's segmentation runs wide across such a hairline (a pixel two fifths skin read as nine tenths
hair), and greyed by that share a pixel partly skin took nearly all of dark hair's lift to grey: a band paler
than both the grey hair and the forehead. Near the hair's edge, where the hair is darker than what lies beside
it (the forehead's skin just below, not the cheeks': a hairline is often in the hair's shade), a pixel's share is
bounded by the hair its brightness holds; deeper in the hair a lighter strand is hair, lit.
"""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.frames import large_face_blur, row_bands

HAIRLINE_REACH = 0.05  # face widths inside the hair's edge over which a pixel's brightness bounds its share
HAIR_CONTRAST = 30.0  # grey levels: what lies beside the hair this much brighter or more, a pixel's brightness tells


def held_share(share: np.ndarray, brightness: np.ndarray, hair: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32 0..1: each pixel's hair `share` (uint8), bounded near the hair's edge by the hair its
    `brightness` holds between the local `hair` brightness (h, w) and the brightness of what is not hair beside it
    (grey levels all)."""
    # in place, and pixel by pixel in bands of rows where it can be: each (h, w) float32 temporary over a 12 MP
    # photo's hair is 15-25 MB
    fraction = share.astype(np.float32)
    fraction *= np.float32(1.0 / 255.0)
    reach = max(HAIRLINE_REACH * face_width, 2.0)
    near = cv2.distanceTransform((share >= 128).astype(np.uint8), cv2.DIST_L2, 3)  # pixels from the hair's edge
    near *= np.float32(2.0)
    near /= np.float32(reach)
    np.subtract(np.float32(2.0), near, out=near)
    np.clip(near, 0.0, 1.0, out=near)  # whole over the first half of the reach
    bands = row_bands(*share.shape)
    if not any(np.any(near[top:bottom] * fraction[top:bottom] > 0.0) for top, bottom in bands):
        return fraction
    other = 1.0 - fraction
    weight = large_face_blur(other, reach / 2.0)  # a 12 MP photo's hair: 36 px, 0.47 s at full size
    weight += np.float32(1e-3)
    other *= brightness
    beside = large_face_blur(other, reach / 2.0)
    del other
    for top, bottom in bands:
        part, around = fraction[top:bottom], weight[top:bottom]
        held = beside[top:bottom]
        held /= around  # the brightness beside the pixel, then how much of the hair it holds
        contrast = held - hair[top:bottom]
        held -= brightness[top:bottom]
        held /= np.maximum(contrast, 1.0)
        np.clip(held, 0.0, 1.0, out=held)
        held[~((contrast > HAIR_CONTRAST) & (around > 0.05))] = 1.0
        np.subtract(part, held, out=held)
        np.maximum(held, 0.0, out=held)
        held *= near[top:bottom]
        part -= held
    return fraction
