"""The order in which a head's strands grey: salt and pepper, not a painted cap.

Hair does not grey as a whole: one strand after another loses its pigment, so half-grey hair is white strands
among dark ones. Greying each pixel a share of the way to grey instead gave one flat colour between the two, and
dense dark hair (a hairline, a fringe), with no strands of its own in view, became a flat band.

Each hair pixel gets a rank (0..255): noise drawn along the hair's own direction (the structure tensor of the
photo's hair, as strands run) into streaks a strand long and a strand wide, equalised so the ranks are uniform.
A greying share `s` greys the pixels ranked below it first (:func:`greyed_weight`); fully grey hair keeps a
little of the rank as lighter and darker strands.
"""

from __future__ import annotations

import cv2
import numpy as np

STRAND_LENGTH = 0.1  # face widths: the length of a streak of the rank's noise
STRAND_WIDTH = 0.001  # face widths: its width (the noise's blur; 0.8 px at least: finer, a streak's edge stepped)
STRAND_FACE = 400.0  # pixels: the ranks are drawn on the hair shrunk to at most this face width, then enlarged
ORIENTATIONS = 16  # directions the noise is streaked along; a pixel's blends its two nearest
DIRECTION_SCALE = 0.02  # face widths: the neighbourhood a pixel's strand direction is read over
GREYING_SOFTNESS = 0.5  # of the ranks: how gradually one strand greys as the share passes its rank
# a photo's pixel holds many strands (on a face 300-400 pixels wide a hair is a seventh of a pixel wide): this share
# of the greying is every pixel's, the rest strand by strand (at 0.6 the rank's streaks, a few pixels wide, drew
# dark hair greyed half way as bold black and white bars at 1:1, a zebra, not salt and pepper)
STRAND_MIX = 0.85
STRAND_LIFTS = (0.3, 1.5)  # grey hair's brightness gain less 1: even greying below the first, strands from the second
# pixels across the face: below the first its hair's strands and locks are finer than a pixel (at 1:1 a rank's
# streaks drew pen hatching), from the second they show
STRAND_RESOLVED = (200.0, 350.0)
STRAIGHT = (0.2, 0.5)  # coherence: hair runs no one way below the first, surely one way from the second
# of grey hair's brightness, times the strandness (at most 1 - STRAND_MIX): the first strands to grey end lighter,
# the last darker, by up to half of this
STRAND_SPREAD = 0.3
SEED = 20260  # the same photo gives the same strands, edit after edit
STRAND_LIFT = 0.35  # share of grey hair's brightness gain that the strands' light and dark deviations keep
STRAND_CEILING = 1.1  # grey hair's brightness: the lightest a greyed strand gets (unless it was lighter)


def strand_order(rgb: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) uint8 each: each pixel's rank in the greying order of the hair in `rgb` (a crop of the photo), and
    how surely its hair runs one way there (the structure tensor's coherence, 0..255)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, STRAND_FACE / max(face_width, 1.0))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    pixels_across = face_width * scale
    angle, coherence = _strand_direction(small.astype(np.float32).mean(axis=2), pixels_across)
    noise = np.random.default_rng(SEED).standard_normal((small_h, small_w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(STRAND_WIDTH * pixels_across, 0.8))
    length = max(3, round(STRAND_LENGTH * pixels_across) | 1)
    streaks = np.zeros_like(noise)
    for index in range(ORIENTATIONS):
        theta = np.pi * index / ORIENTATIONS
        # each pixel's weight for this direction: 1 on it, falling to 0 at the next one either side
        apart = np.abs(np.angle(np.exp(2j * (angle - theta)))) * (ORIENTATIONS / (2.0 * np.pi))
        weight = np.clip(1.0 - apart, 0.0, 1.0).astype(np.float32)
        if weight.any():
            streaks += weight * cv2.filter2D(noise, -1, _line_kernel(length, theta), borderType=cv2.BORDER_REFLECT)
    ranks = _equalised(streaks)
    coherence = np.round(255.0 * coherence).astype(np.uint8)
    if scale < 1.0:
        ranks = cv2.resize(ranks, (width, height), interpolation=cv2.INTER_LINEAR)
        coherence = cv2.resize(coherence, (width, height), interpolation=cv2.INTER_LINEAR)
    return ranks, coherence


def greyed_weight(order: np.ndarray, strandness: np.ndarray, amount: float) -> np.ndarray:
    """(h, w) int16 0..255: how grey each pixel of rank `order` (uint8) is when `amount` of the hair has greyed:
    all of it at amount 1, none at 0, in between the pixels ranked lowest first as far as their `strandness`
    (uint8, :func:`strandness`) says, the rest of the way evenly. In integers, with a table per amount: a slider
    move pays a few passes over the hair for it."""
    reach = float(amount) * (1.0 + GREYING_SOFTNESS)
    by_rank = np.clip((reach - np.arange(256) / 255.0) / GREYING_SOFTNESS, 0.0, 1.0)
    strands = cv2.LUT(order, np.round(255.0 * by_rank).astype(np.uint8)).astype(np.int16)
    level = np.int16(round(255.0 * float(amount)))
    return cv2.multiply(strands - level, strandness.astype(np.int16), scale=1.0 / 255.0, dtype=cv2.CV_16S) + level


def strand_lightness(order: np.ndarray, strandness: np.ndarray) -> np.ndarray:
    """(h, w) float32: each fully grey pixel's lightness relative to grey hair's brightness, from its rank `order`
    and `strandness` (uint8 both): the first strands to grey are the whitest."""
    ranks = order.astype(np.float32) * np.float32(1.0 / 255.0)
    return (0.5 - ranks) * strandness.astype(np.float32) * np.float32(2.0 * STRAND_SPREAD / 255.0)


def grey_change(
    fields: np.ndarray, brightness: np.ndarray, share: np.ndarray, order: np.ndarray, strandness: np.ndarray
) -> np.ndarray:
    """(h, w, 3) int16: what fully greying adds to hair pixels of `brightness` (h, w) with their held hair `share`,
    the strands' `order` and `strandness` there and the hair's `fields` (:meth:`.hair.HairLayer.fields_at`): the
    whole box's :meth:`.hair.HairLayer.full_change`, a band of rows at a time."""
    # strands' light and dark grow with the brightness inside the hair only: a hairline pixel part skin is
    # bright for its skin, and its lift printed a pale band along the hairline
    inside = np.clip((share - 0.6) / 0.3, 0.0, 1.0)
    strands = (brightness - fields[..., 3]) * fields[..., 4] * inside * np.float32(STRAND_LIFT)
    grey = fields[..., 3] + fields[..., :3].mean(axis=2)  # grey hair's brightness
    strands += strand_lightness(order, strandness) * grey * inside  # fully grey hair has strands
    added = share[..., None] * (fields[..., :3] + strands[..., None])
    # and no pixel ends brighter than grey hair's lightest strands, or than it was
    ceiling = np.maximum(grey * np.float32(STRAND_CEILING), brightness)
    lift = added.mean(axis=2)
    over = brightness + lift - ceiling
    added -= (np.clip(over, 0.0, None) / np.maximum(lift, 1e-3) * (lift > 0))[..., None] * added
    return np.round(added).astype(np.int16)


def strandness(lift: np.ndarray, coherence: np.ndarray, face_width: float) -> np.ndarray:
    """uint8: how far hair greys strand by strand, from grey hair's brightness gain over the hair's, less 1
    (`lift`): dark hair's white strands stand out (salt and pepper), fair hair's hardly do and it greys evenly
    (its shaded locks left dark among white strands looked like crumpled foil). A small face's strands and locks
    are finer than its pixels, which average them, and curls or a scan's grain (low `coherence`, uint8) run no one
    way (streaked along them they drew contour lines): those grey evenly too."""
    resolved = float(np.clip((face_width - STRAND_RESOLVED[0]) / (STRAND_RESOLVED[1] - STRAND_RESOLVED[0]), 0.0, 1.0))
    share = (1.0 - STRAND_MIX) * np.clip((lift - STRAND_LIFTS[0]) / (STRAND_LIFTS[1] - STRAND_LIFTS[0]), 0.0, 1.0)
    straight = (coherence.astype(np.float32) * np.float32(1.0 / 255.0) - STRAIGHT[0]) / (STRAIGHT[1] - STRAIGHT[0])
    share *= resolved * np.clip(straight, 0.0, 1.0)
    return np.round(255.0 * share).astype(np.uint8)


def _strand_direction(lightness: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) float32 radians in [0, pi): the direction strands run at each pixel (across the lightness's
    strongest change, from its structure tensor), and (h, w) float32 0..1 how surely they run one way (curls and a
    scan's grain: hardly)."""
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    sigma = max(DIRECTION_SCALE * face_width, 1.0)
    xx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    xy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    yy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    across = 0.5 * np.arctan2(2.0 * xy, xx - yy)  # the gradient's direction
    coherence = np.sqrt((xx - yy) ** 2 + 4.0 * xy * xy) / (xx + yy + 1e-3)
    return np.mod(across + np.pi / 2.0, np.pi).astype(np.float32), np.clip(coherence, 0.0, 1.0).astype(np.float32)


def _line_kernel(length: int, theta: float) -> np.ndarray:
    """A `length`-pixel line through the kernel's centre at angle `theta` (image x right, y down), summing to 1."""
    kernel = np.zeros((length, length), np.float32)
    centre = (length - 1) / 2.0
    reach = (length - 1) / 2.0
    dx, dy = np.cos(theta) * reach, np.sin(theta) * reach
    shift = 4  # sub-pixel bits: the line's ends are drawn anti-aliased where they fall
    ends = [(centre - dx, centre - dy), (centre + dx, centre + dy)]
    start, end = ((round(x * (1 << shift)), round(y * (1 << shift))) for x, y in ends)
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, shift)
    return kernel / max(float(kernel.sum()), 1e-6)


def _equalised(values: np.ndarray) -> np.ndarray:
    """uint8 ranks of `values`, spread uniformly over 0..255 (a histogram's cumulative share)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.full(values.shape, 128, np.uint8)
    scaled = ((values - low) * np.float32(4095.0 / (high - low))).astype(np.int32)
    counts = np.bincount(scaled.ravel(), minlength=4096)
    cumulative = np.cumsum(counts).astype(np.float64)
    lookup = np.round(255.0 * (cumulative - counts / 2.0) / cumulative[-1]).astype(np.uint8)
    return lookup[scaled]
