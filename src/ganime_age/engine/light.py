"""The colour of the light a head is lit by: grey hair takes it (grey under a warm lamp is warm, not blue-grey).

The background around the person, averaged (grey world), says the light's colour; skin and hair would say every
light is warm. But a backdrop's colour is partly its own paint: a blue studio backdrop greyed hair blue, a
red-tinted scan pink. The face in front of it is lit by the same light, so the background's cast is taken only as
far as the face's skin is cast the same way from skin under white light.
"""

from __future__ import annotations

import cv2
import numpy as np

LIGHT_RANGE = (0.8, 1.25)  # the light's colour per channel (mean 1), clipped
LIGHT_TRUST = 0.6  # the power the background's colour is taken to: a backdrop is partly its own colour
# a face's skin colour under white light, per channel over their geometric mean (UTKFace's test faces aged 15-70,
# every race, the median; red over blue runs 1.2 to 2.0 from the tenth to the ninetieth percentile)
TYPICAL_SKIN = (1.343, 0.949, 0.794)
MIN_BACKGROUND = 0.05  # the share of the head's surroundings that must be background for it to say anything


def head_light(grid: np.ndarray, person: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(3,) float32 per channel with mean 1: the light's colour around a head, from `grid` (uint8 RGB around it),
    `person` (0..1 on the same grid; below 0.05 is background) and the face's mean `skin` colour (RGB 0..255).
    White where too little background is in view."""
    background = person < 0.05
    if background.mean() < MIN_BACKGROUND:
        return np.ones(3, np.float32)
    log_mean = np.log(grid[background].astype(np.float64).mean(axis=0) + 1.0)
    cast = LIGHT_TRUST * (log_mean - log_mean.mean())
    skin_log = np.log(np.asarray(skin, np.float64) + 1.0)
    skin_cast = skin_log - skin_log.mean() - np.log(TYPICAL_SKIN)
    # each channel's cast only towards the skin's and no further: the skin would show the light's colour too
    cast = np.clip(cast, np.minimum(skin_cast, 0.0), np.maximum(skin_cast, 0.0))
    light = np.exp(cast)
    return np.clip(light / light.mean(), *LIGHT_RANGE).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(3,) RGB 0..255 of one CIE Lab colour (L 0..100)."""
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.clip(rgb, 0.0, 1.0) * 255.0
