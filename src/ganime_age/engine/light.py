"""The colour of the light a head is lit by: grey hair takes it (grey under a warm lamp is warm, not blue-grey).

The whites of the eyes are white under white light, whatever the skin's colour and the backdrop's paint: their
colour is the light's (on CFEE's studio photos their red over blue runs 0.96-1.15; under a lamp that warms red
over blue 1.51 times, 1.31-1.65), read from warm to cool only. Where a face's whites are not resolved (a small,
blurred or enlarged face's take the skin's colour through JPEG's colour blur: they are as red as the lids around
them), the background around the person, averaged (grey world), says it; skin and hair would say every light is
warm. But a backdrop's colour is partly its own paint: a blue studio backdrop greyed hair blue, a red-tinted scan
pink. The face in front of it is lit by the same light, so the background's cast is taken only as far as the
face's skin is cast the same way from skin under white light (a fair face under a warm lamp is less cast than a
typical one: its grey hair came out blue-grey beside a beige wall), and the whites' only as far as the
background's is.
"""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.config import LOG_EPSILON
from ganime_age.engine.frames import Template, template_blur
from ganime_age.faces.topology import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

HEADROOM_SCALE = 0.05  # face widths over which the skin's headroom is read

LIGHT_RANGE = (0.8, 1.25)  # the light's colour per channel (mean 1), clipped
LIGHT_TRUST = 0.6  # the power the background's colour is taken to: a backdrop is partly its own colour
# a face's skin colour under white light, per channel over their geometric mean (UTKFace's test faces aged 15-70,
# every race, the median; red over blue runs 1.2 to 2.0 from the tenth to the ninetieth percentile)
TYPICAL_SKIN = (1.343, 0.949, 0.794)
MIN_BACKGROUND = 0.05  # the share of the head's surroundings that must be background for it to say anything
# the whites of the eyes under white light, per channel over their geometric mean (CFEE's 101 studio photos, the
# median of each face's brightest two fifths of its whites)
TYPICAL_WHITES = (1.065, 0.925, 1.015)
WHITES_BRIGHTEST = 0.4  # the share of the eyes' whites read: the brightest (not lashes, the lids' shadow, veins)
# resolved pixels of the eyes' whites (:func:`eye_whites`): below the first they say nothing, from the second all.
# A small or blurred face's whites take the skin's colour through JPEG's colour blur: on UTKFace's held-out grey-
# haired people 70 and over, the whites read red over blue 1.46 times a studio's while the hair read 1.11, with no
# correlation (0.11). Resolved (and whiter than the lids), CFEE's 101 studio faces have a median 95 (84% at 70 or
# more), UTKFace's held-out chips 12 (4%), and enlarged three times, with nine times the pixels of white, 18 (7%)
WHITES_SURE = (40.0, 70.0)
WHITES_WHITER = (0.03, 0.09)  # how much redder (log red over blue) the lids' skin must be than the whites: none, all
WHITES_CONTRAST = 12.0  # grey levels the whites must be lighter than the iris to be seen at all
# the whites' brightness over the skin's: nothing below the first (a closed eye's lashes, dark glasses), all from
# the second (the whites lie in the lids' shade: on CFEE's studio photos at 0.7 of the skin's)
WHITES_LIT = (0.35, 0.55)
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473  # MediaPipe's iris points: the centre, then four on the rim


def head_light(
    grid: np.ndarray, person: np.ndarray, skin: np.ndarray, whites: tuple[np.ndarray, float] | None = None
) -> np.ndarray:
    """(3,) float32 per channel with mean 1: the light's colour around a head, from `grid` (uint8 RGB around it),
    `person` (0..1 on the same grid; below 0.05 is background), the face's mean `skin` colour (RGB 0..255) and the
    eyes' `whites` (:func:`eye_whites`). White where too little background is in view."""
    background = person < 0.05
    if background.mean() < MIN_BACKGROUND:
        return np.ones(3, np.float32)
    log_mean = np.log(grid[background].astype(np.float64).mean(axis=0) + 1.0)
    seen = log_mean - log_mean.mean()
    cast = LIGHT_TRUST * seen
    skin_log = np.log(np.asarray(skin, np.float64) + 1.0)
    skin_cast = skin_log - skin_log.mean() - np.log(TYPICAL_SKIN)
    # each channel's cast only towards the skin's and no further: the skin would show the light's colour too
    cast = np.clip(cast, np.minimum(skin_cast, 0.0), np.maximum(skin_cast, 0.0))
    if whites is not None:
        colour, resolved = whites
        lit = float(np.mean(colour)) / max(float(np.mean(skin)), 1.0)
        trust = _ramp(resolved, WHITES_SURE) * _ramp(lit, WHITES_LIT)
        whites_log = np.log(np.asarray(colour, np.float64) + 1.0)
        whites_cast = whites_log - whites_log.mean() - np.log(TYPICAL_WHITES)
        # warm to cool only (red against blue, as lamps, daylight and shade differ: an old print's yellowed whites,
        # or an old person's, read a green-yellow light that turned white hair blond), and only as far as the
        # background is cast the same way: one person's whites are bluer or redder than another's by as much as a
        # mild cast (a young woman's bluish whites in a studio greyed her hair blue)
        warmth, around = 0.5 * (whites_cast[0] - whites_cast[2]), 0.5 * (seen[0] - seen[2])
        agreed = np.sign(warmth) * min(abs(warmth), abs(around)) if warmth * around > 0.0 else 0.0
        cast += trust * (np.array([agreed, 0.0, -agreed]) - cast)
    light = np.exp(cast)
    return np.clip(light / light.mean(), *LIGHT_RANGE).astype(np.float32)


def eye_whites(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The whites of the eyes of the face with MediaPipe's 478 `points` (photo pixels) in `rgb`: the mean RGB of
    their brightest (WHITES_BRIGHTEST) pixels, and how many of them are resolved (each eye's pixels of white over
    the square of its iris edge's width: a blurred or enlarged photo's are the skin's colour bled in). None without
    the iris points or any white in view."""
    if len(points) <= LEFT_IRIS_CENTRE + 4:
        return None
    xy = np.asarray(points, np.float64)[:, :2]
    whites, resolved = [], 0.0
    for contour, centre in ((RIGHT_EYE_CONTOUR, RIGHT_IRIS_CENTRE), (LEFT_EYE_CONTOUR, LEFT_IRIS_CENTRE)):
        corners = xy[list(contour)]
        x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 3, (rgb.shape[1], rgb.shape[0]))
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        crop = rgb[y0:y1, x0:x1]
        eye = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillPoly(eye, [np.round(corners - (x0, y0)).astype(np.int32)], 1)
        radius = float(np.linalg.norm(xy[centre + 1 : centre + 5] - xy[centre], axis=1).mean())
        middle = tuple(int(v) for v in np.round(xy[centre] - (x0, y0)))
        white, iris, ring = eye.copy(), np.zeros_like(eye), np.zeros_like(eye)
        cv2.circle(white, middle, int(np.ceil(1.15 * radius)), 0, -1)  # the iris's rim blurs into the white
        cv2.circle(iris, middle, max(1, round(0.8 * radius)), 1, -1)
        cv2.circle(ring, middle, max(2, round(1.6 * radius)), 1, -1)
        cv2.circle(ring, middle, max(1, round(0.7 * radius)), 0, -1)
        white, iris, ring = (m.astype(bool) & eye.astype(bool) for m in (white, iris, ring))
        if white.sum() < 3 or iris.sum() < 3 or ring.sum() < 3:
            continue
        grey = crop.astype(np.float32).mean(axis=2)
        contrast = float(np.percentile(grey[white], 70) - np.percentile(grey[iris], 30))
        if contrast < WHITES_CONTRAST:  # no white seen beside the iris (a shaded or shut eye, a pale iris)
            continue
        edge = _edge_width(grey, contrast, ring)  # pixels from the iris to the white
        # the white must be whiter than the lids' skin: JPEG keeps colour at half the resolution or less, and a
        # small face's whites take the skin's colour (UTKFace's chips: as red over blue as the lids, or redder)
        redness = np.log(crop[..., 0].astype(np.float32) + 1.0) - np.log(crop[..., 2].astype(np.float32) + 1.0)
        reach = max(2, round(0.5 * radius))
        lids = cv2.dilate(eye, np.ones((2 * reach + 1,) * 2, np.uint8)).astype(bool) & ~eye.astype(bool)
        if not lids.any():  # an eye filling its crop at the photo's edge: no skin to compare its white with
            continue
        redder = float(np.median(redness[lids]) - np.median(redness[white]))
        whites.append(crop[white].astype(np.float64))
        resolved += int(white.sum()) / edge**2 * _ramp(redder, WHITES_WHITER)
    if not whites:
        return None
    pixels = np.concatenate(whites)
    brightness = pixels.mean(axis=1)
    brightest = pixels[brightness >= np.quantile(brightness, 1.0 - WHITES_BRIGHTEST)]
    return brightest.mean(axis=0), resolved


def _edge_width(grey: np.ndarray, contrast: float, where: np.ndarray) -> float:
    """Pixels an edge of `contrast` takes to rise in `grey` (float32), from its steepest slopes `where`."""
    slope = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    return max(contrast / max(float(np.percentile(slope[where], 95)), 1e-3), 1.0)


def _ramp(value: float, span: tuple[float, float]) -> float:
    return float(np.clip((value - span[0]) / (span[1] - span[0]), 0.0, 1.0))


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(3,) RGB 0..255 of one CIE Lab colour (L 0..100)."""
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.clip(rgb, 0.0, 1.0) * 255.0


def skin_headroom(template: Template, log_view: np.ndarray) -> np.ndarray:
    """The log of a face's brightest channel relative to white (0 at white, negative below it), as
    :func:`within_headroom` reads it: (R, R) from its log template view, blurred over HEADROOM_SCALE of a face (a
    region's headroom, not a pore's)."""
    brightest = log_view.max(axis=2)[..., None] - np.float32(np.log(1.0 + LOG_EPSILON))
    return template_blur(template, brightest, HEADROOM_SCALE)[..., 0]


def within_headroom(tone: np.ndarray, brightest: np.ndarray, room: float) -> np.ndarray:
    """`tone` (a log change, (H, W, 3)) with its brightening taken only as far as the skin under it has headroom.

    `brightest` is the log of the skin's brightest channel relative to white (0 at white, below 0 under it): the
    rise stays whole where that is `room` or more below white and goes where the skin is white already. A grown
    face's relief brightens its centre; on a flash-lit child made grown that centre had no headroom and went pale.
    """
    if room <= 0.0:
        return tone
    kept = np.clip(-brightest / np.float32(room), 0.0, 1.0)
    rise = np.maximum(tone.mean(axis=2), 0.0)
    return tone - (rise * (1.0 - kept))[..., None].astype(np.float32)
