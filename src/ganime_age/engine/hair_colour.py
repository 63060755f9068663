"""The colour models that tell hair from skin where no face parser is given: the skin's colour (the face's own
pixels) and the hair's (the surest hair above the brows), and each pixel's place between them."""

from __future__ import annotations

import cv2
import numpy as np

PLACE_FLOOR = 0.2  # of the way from the skin's colour to the hair's: below it a pixel is skin in shade
# grey hair regains the person's own colour where at least this share of their surest hair (its share at least
# SURE_OWN_COLOUR) is still pigmented: a blonde's pale, lit strands turned young people's dark brown, a grey blotch
OWN_COLOUR_SHARE, SURE_OWN_COLOUR = 0.2, 0.9


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """float32 CIE Lab (L 0..100) of uint8 RGB."""
    return cv2.cvtColor(rgb.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)


def gaussian(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance (regularised: a few Lab units of spread at least) of (n, 3) samples."""
    mean = samples.mean(axis=0)
    covariance = np.cov(samples, rowvar=False) + np.eye(3) * 4.0
    return mean.astype(np.float32), np.linalg.inv(covariance).astype(np.float32)


def skin_model(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skin's colour model from the face's pixels, without the darkest twelfth (brows, lashes, nostrils, lips'
    gap) and the brightest fiftieth (highlights): its spread keeps skin in shadow (a temple, a forehead's top)
    skin."""
    lightness = samples[:, 0]
    low, high = np.percentile(lightness, [8, 98])
    return gaussian(samples[(lightness >= low) & (lightness <= high)])


def hair_share(lab: np.ndarray, skin: tuple[np.ndarray, np.ndarray], hair: tuple[np.ndarray, np.ndarray]):
    """(h, w) 0..1: each pixel's place between the skin's and the hair's mean colour, where its colour is more
    likely the hair's (the hair model's spread doubled: a mixed pixel is neither's)."""
    skin_mean, skin_inverse = skin
    hair_mean, hair_inverse = hair
    axis = hair_mean - skin_mean
    place = ((lab - skin_mean) @ axis) / max(float(axis @ axis), 1e-6)
    place = np.clip((place - PLACE_FLOOR) / (1.0 - PLACE_FLOOR), 0.0, 1.0)  # skin a little darker is still skin
    d_skin = np.einsum("...i,ij,...j->...", lab - skin_mean, skin_inverse, lab - skin_mean)
    d_hair = np.einsum("...i,ij,...j->...", lab - hair_mean, hair_inverse * 0.5, lab - hair_mean)
    log_ratio = 0.5 * (d_skin - d_hair) + 1.5 * np.log(2.0)  # the broadened model's normalisation
    likely = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -30.0, 30.0)))
    return (place * likely).astype(np.float32)


def own_pigment(values: np.ndarray, share: np.ndarray, pigmented: np.ndarray) -> np.ndarray | None:
    """(3,) the mean colour (of `values`, (h, w, 3) float32) of the person's surest hair (`share` 0..1) that is still
    pigmented (`pigmented`, (h, w) bool), where enough of it is (:data:`OWN_COLOUR_SHARE`); None where it is not."""
    sure = share >= SURE_OWN_COLOUR
    kept = sure & pigmented
    count = int(np.count_nonzero(kept))
    if count == 0 or count < OWN_COLOUR_SHARE * int(np.count_nonzero(sure)):
        return None
    return values[kept].mean(axis=0)
