"""The order in which a head's strands grey: salt and pepper, not a painted cap.

Hair does not grey as a whole: one strand after another loses its pigment, so half-grey hair is white strands
among dark ones. Greying each pixel a share of the way to grey instead gave one flat colour between the two, and
dense dark hair (a hairline, a fringe), with no strands of its own in view, became a flat band.

Each hair pixel gets a rank (0..255): noise drawn along the hair's own direction (the structure tensor of the
photo's hair, as strands run) into streaks a strand long and a strand wide, equalised so the ranks are uniform.
A greying share `s` greys the pixels ranked below it first (:func:`greyed_weight`); fully grey hair keeps a
little of the rank as lighter and darker strands.

Where the photo shows no strands (a small face, a scan's black mass of hair: its light and dark are grain and JPEG
blocks), lifting its own light and dark drew a flat grey cap, or a knit of blocks. There the strands are drawn:
the ranks' streaks run the way hair is combed (away from a point below the chin: up and back over the crown, down
the sides), with a gentle wave, and carry a lock's breadth of light and dark too, and grey hair takes them as its
light and dark (:func:`strand_lightness`).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from ganime_age.engine.frames import channel_mean

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
LOCK = (0.02, 0.2)  # face widths: a drawn lock's breadth (the noise's blur) and length
LOCK_SHARE = 1.2  # a drawn lock's light and dark against a drawn strand's (both scaled to one deviation)
LOCK_FACE = 100.0  # pixels: locks are drawn on the hair shrunk to at most this face width
WAVE = (0.05, 0.6)  # face widths, radians: drawn strands wave along a smooth random turn of this scale and spread
WAVE_LENGTH = 0.08  # face widths: and are this long (a straight streak is STRAND_LENGTH)
# of grey hair's brightness: drawn strands' light and dark (ranks are uniform, so its deviation is 0.29 of this)
DRAWN_SPREAD = 0.35
DRAWN_LIFTS = (0.2, 1.0)  # grey hair's brightness gain less 1: no strands drawn below the first (fair hair greys
# a little and keeps its own), all from the second (dark hair lifted to grey)
UNSEEN_EDGE = 0.05  # face widths inside the hair's outline: where its own strands are looked for
OWN_DETAIL = (0.004, 0.02)  # face widths: the scales between which the hair's own light and dark are read
OWN_SHOWN = (0.15, 0.5)  # the hair's own lifted light and dark over drawn strands': none shown, all shown
# of the hair's own light, dark and colour, the share drawn strands replace: lifted, a scan's JPEG blocks were a
# knit, and kept, their colour still showed through the grey as a grid (021A39)
OWN_YIELD = 0.8


class Comb(NamedTuple):
    """What drawing a head's strands needs (:func:`strand_order`)."""

    origin: tuple[float, float]  # x, y crop pixels below the chin: hair is combed away from here
    hair: np.ndarray  # (h, w) bool over the crop: surely hair
    lift: float  # grey hair's brightness gain over the hair's, less 1 (its median)
    grey: float  # grey hair's brightness (its median)


class StrandOrder(NamedTuple):
    """The greying order of a crop's hair (:func:`strand_order`)."""

    order: np.ndarray  # (h, w) uint8: each pixel's rank in the greying order
    coherence: np.ndarray  # (h, w) uint8: how surely its hair runs one way (the structure tensor's, 0..255)
    drawn_order: np.ndarray | None  # (h, w) uint8: the ranks of drawn strands and locks (None: none drawn)
    drawn: float  # 0..1: how far the photo shows no strands of its own, where they are drawn


def strand_order(rgb: np.ndarray, face_width: float, comb: Comb | None = None) -> StrandOrder:
    """The greying order of the hair in `rgb` (a crop of the photo). Given how the hair is combed (`comb`), it
    draws strands too: as far as the head shows none of its own (:func:`unseen_strands`), its ranks run the
    combed way, waved (:func:`_waved`), and the drawn ones have locks."""
    height, width = rgb.shape[:2]
    scale = min(1.0, STRAND_FACE / max(face_width, 1.0))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    pixels_across = face_width * scale
    lightness = channel_mean(small)
    angle, coherence = _strand_direction(lightness, pixels_across)
    rng = np.random.default_rng(SEED)
    noise = rng.standard_normal((small_h, small_w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(STRAND_WIDTH * pixels_across, 0.8))
    drawn = 0.0
    if comb is not None:
        away = max(1, round(UNSEEN_EDGE * pixels_across))  # the hair's outline is an edge, not strands
        hair = cv2.erode(_shrunk(comb.hair, (small_w, small_h)).astype(np.uint8), np.ones((2 * away + 1,) * 2)) > 0
        shown = _own_strands_shown(lightness, hair, pixels_across, comb)
        drawn = unseen_strands(coherence, hair, face_width, shown)
        # where the head shows no strands its coherent lines are its outline and hairline: combed across them
        straight = _straightness(coherence) * np.float32(1.0 - drawn)
        origin = (comb.origin[0] * scale, comb.origin[1] * scale)
        angle = _blended_direction(angle, _combed_direction((small_h, small_w), origin), straight)
        if drawn > 0.0:
            angle = _waved(angle, drawn * (1.0 - straight), pixels_across)
    length = STRAND_LENGTH + drawn * (WAVE_LENGTH - STRAND_LENGTH)  # waved strands are shorter
    streaks = _streaked(noise, angle, max(3, round(length * pixels_across) | 1))
    ranks = _equalised(streaks)
    drawn_order = None
    if comb is not None and drawn > 0.0:  # the drawn strands have locks where the hair runs no one way
        unsure = 1.0 - _straightness(coherence)
        locks = unsure * _locks(angle, pixels_across, rng)
        drawn_order = _equalised(streaks / max(float(streaks.std()), 1e-6) + locks)
    coherence = np.round(255.0 * coherence).astype(np.uint8)
    if scale < 1.0:
        ranks, coherence = (cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR) for a in (ranks, coherence))
        if drawn_order is not None:
            drawn_order = cv2.resize(drawn_order, (width, height), interpolation=cv2.INTER_LINEAR)
    return StrandOrder(ranks, coherence, drawn_order, drawn)


def _shrunk(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool `mask` at `size` (width, height)."""
    if mask.shape[::-1] == size:
        return mask
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


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


def strand_lightness(
    order: np.ndarray,
    strandness: np.ndarray,
    drawn: float = 0.0,
    lift: np.ndarray | None = None,
    drawn_order: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w) float32: each fully grey pixel's lightness relative to grey hair's brightness, from its rank `order`
    and `strandness` (uint8 both): the first strands to grey are the whitest. Where the photo shows no strands
    (`drawn`, 0..1, :func:`unseen_strands`) and the hair is lifted to grey (`lift`, its brightness gain less 1),
    the drawn strands' ranks (`drawn_order`, uint8) are its light and dark."""
    ranks = order.astype(np.float32) * np.float32(1.0 / 255.0)
    lightness = (0.5 - ranks) * strandness.astype(np.float32) * np.float32(2.0 * STRAND_SPREAD / 255.0)
    if drawn > 0.0 and lift is not None and drawn_order is not None:
        drawn_ranks = drawn_order.astype(np.float32) * np.float32(1.0 / 255.0)
        lightness += (0.5 - drawn_ranks) * _dark(lift) * np.float32(drawn * DRAWN_SPREAD)
    return lightness


def unseen_strands(coherence: np.ndarray, hair: np.ndarray, face_width: float, shown: float = 0.0) -> float:
    """0..1: how far the photo shows no strands of its own in its hair (`hair`, bool, away from its outline), where
    :func:`strand_lightness` draws them: it shows them as far as its own light and dark, lifted to grey, show as
    strands (`shown`, 0..1), curls too, or the face is large enough for strands (STRAND_RESOLVED) and its hair runs
    one way (the structure tensor's `coherence`, its median there). Curly hair whose own curls show kept none of
    them: straight strands were drawn over them like a veil (FG-NET 082A31 made 75). One number for the whole head:
    read pixel by pixel, the hair's own outline (a strong edge, so coherent) kept a flat grey band round drawn
    hair."""
    if not hair.any():
        return 1.0 - max(_resolved(face_width), shown)
    straight = float(_straightness(np.asarray(np.median(coherence[hair]), coherence.dtype)))
    return 1.0 - max(_resolved(face_width) * straight, shown)


def _own_strands_shown(lightness: np.ndarray, hair: np.ndarray, face_width: float, comb: Comb) -> float:
    """0..1: how far the hair's own light and dark (`lightness` over a crop `face_width` pixels across the face,
    between OWN_DETAIL's scales, over `hair`), lifted as greying lifts them, show as grey hair's strands would
    (OWN_SHOWN: their deviation over drawn strands'). A small face's lit, swept blonde hair has its own; a scan's
    black mass only grain."""
    if not hair.any() or comb.grey <= 0.0:
        return 0.0
    fine, coarse = (max(floor, scale * face_width) for floor, scale in zip((0.7, 2.0), OWN_DETAIL, strict=True))
    detail = cv2.GaussianBlur(lightness, (0, 0), fine) - cv2.GaussianBlur(lightness, (0, 0), coarse)
    own = float(detail[hair].std()) * (1.0 + comb.lift * STRAND_LIFT)
    drawn = DRAWN_SPREAD / np.sqrt(12.0) * comb.grey  # uniform ranks' deviation
    return float(np.clip((own / drawn - OWN_SHOWN[0]) / (OWN_SHOWN[1] - OWN_SHOWN[0]), 0.0, 1.0))


def grey_change(
    fields: np.ndarray,
    pixels: np.ndarray,
    brightness: np.ndarray,
    share: np.ndarray,
    order: np.ndarray,
    strandness: np.ndarray,
    drawn: float = 0.0,
    drawn_order: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w, 3) int16: what fully greying adds to hair `pixels` (uint8 RGB) of `brightness` (h, w) with their held
    hair `share`, the strands' `order`, `strandness`, how far they are `drawn` (:func:`unseen_strands`) and the
    drawn ones' ranks (`drawn_order`) there and the hair's `fields` (:meth:`.hair.HairLayer.fields_at`): the whole
    box's :meth:`.hair.HairLayer.full_change`, a band of rows at a time."""
    # strands' light and dark grow with the brightness inside the hair only: a hairline pixel part skin is
    # bright for its skin, and its lift printed a pale band along the hairline
    inside = np.clip((share - 0.6) / 0.3, 0.0, 1.0)
    strands = (brightness - fields[..., 3]) * fields[..., 4] * inside * np.float32(STRAND_LIFT)
    replaced = None
    if drawn > 0.0 and drawn_order is not None:  # there they are grain and JPEG blocks: drawn strands replace them
        replaced = np.float32(OWN_YIELD * drawn) * _dark(fields[..., 4]) * inside
        strands *= 1.0 - replaced
    shift = channel_mean(fields)  # the brightness the local hair colour gains
    grey = fields[..., 3] + shift  # grey hair's brightness
    # grey hair has strands (drawn ones up to the hair's edge: they add no light on average, so no band there)
    lightness = strand_lightness(order, strandness * inside, drawn, fields[..., 4], drawn_order)
    strands += lightness * grey
    # each pixel takes grey hair's tint at its new brightness in place of its own colour: the local hair's colour
    # taken from its shadows, which hold less, turned a blonde's shadowed locks blue-violet (the astronaut made 70)
    tint = (fields[..., :3] + fields[..., 5:8]) / np.maximum(grey, 1.0)[..., None] - 1.0  # grey hair's, mean 0
    values = pixels.astype(np.float32)
    added = (brightness + shift)[..., None] * tint - (values - brightness[..., None]) + (shift + strands)[..., None]
    if replaced is not None:  # the hair's own colour and light less the local hair's (a scan's chroma blocks too)
        added -= replaced[..., None] * (values - fields[..., 5:8])
    added *= share[..., None]
    # and no pixel ends brighter than grey hair's lightest strands, or than it was (a drawn strand is as light as
    # it was drawn: capped, the light ones were lost and the drawn hair was dark strokes on grey)
    ceiling = np.maximum(grey * np.maximum(np.float32(STRAND_CEILING), 1.0 + lightness), brightness)
    lift = channel_mean(added)
    over = brightness + lift - ceiling
    added -= (np.clip(over, 0.0, None) / np.maximum(lift, 1e-3) * (lift > 0))[..., None] * added
    return np.round(added).astype(np.int16)


def strandness(lift: np.ndarray, coherence: np.ndarray, face_width: float) -> np.ndarray:
    """uint8: how far hair greys strand by strand, from grey hair's brightness gain over the hair's, less 1
    (`lift`): dark hair's white strands stand out (salt and pepper), fair hair's hardly do and it greys evenly
    (its shaded locks left dark among white strands looked like crumpled foil). A small face's strands and locks
    are finer than its pixels, which average them, and curls or a scan's grain (low `coherence`, uint8) run no one
    way (streaked along them they drew contour lines): those grey evenly too."""
    share = (1.0 - STRAND_MIX) * np.clip((lift - STRAND_LIFTS[0]) / (STRAND_LIFTS[1] - STRAND_LIFTS[0]), 0.0, 1.0)
    share *= _resolved(face_width) * _straightness(coherence)
    return np.round(255.0 * share).astype(np.uint8)


def _dark(lift: np.ndarray) -> np.ndarray:
    """(h, w) float32 0..1: how far hair whose grey brightness gain less 1 is `lift` is dark hair lifted to grey
    (DRAWN_LIFTS): as far as strands are drawn on it."""
    return np.clip((lift - DRAWN_LIFTS[0]) / (DRAWN_LIFTS[1] - DRAWN_LIFTS[0]), 0.0, 1.0)


def _resolved(face_width: float) -> float:
    """How far a face `face_width` pixels wide shows its hair's strands and locks (STRAND_RESOLVED)."""
    return float(np.clip((face_width - STRAND_RESOLVED[0]) / (STRAND_RESOLVED[1] - STRAND_RESOLVED[0]), 0.0, 1.0))


def _straightness(coherence: np.ndarray) -> np.ndarray:
    """(h, w) float32 0..1: how surely hair runs one way, from the structure tensor's `coherence` (uint8 0..255
    or float32 0..1)."""
    scale = np.float32(1.0 / 255.0) if coherence.dtype == np.uint8 else np.float32(1.0)
    return np.clip((coherence.astype(np.float32) * scale - STRAIGHT[0]) / (STRAIGHT[1] - STRAIGHT[0]), 0.0, 1.0)


def _combed_direction(shape: tuple[int, int], origin: tuple[float, float]) -> np.ndarray:
    """(h, w) float32 radians in [0, pi): the way hair is combed at each pixel of a crop, away from `origin` (x, y,
    crop pixels; below the chin): up and back over the crown, down the sides, with no whorl inside the hair."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    return np.mod(np.arctan2(rows - np.float32(origin[1]), cols - np.float32(origin[0])), np.pi).astype(np.float32)


def _waved(angle: np.ndarray, amount: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32 radians in [0, pi): `angle` turned by a smooth random field (WAVE: its scale and deviation)
    as far as `amount` (0..1) says. Drawn combed dead straight, every head without strands of its own was a fan
    of comb strokes, a curly one too (FG-NET 007A26, 026A06 made 75); waved, it reads as hair with a wave."""
    field = np.random.default_rng(SEED + 1).standard_normal(angle.shape).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), max(WAVE[0] * face_width, 0.8))
    field *= np.float32(WAVE[1] / max(float(field.std()), 1e-6))
    return np.mod(angle + field * amount, np.pi).astype(np.float32)


def _blended_direction(seen: np.ndarray, combed: np.ndarray, straight: np.ndarray) -> np.ndarray:
    """(h, w) float32 radians in [0, pi): the photo's own direction `seen` as far as it is `straight` (0..1),
    else the `combed` one (blended as doubled angles: a direction and its opposite are one; in OpenCV's polar
    conversions, a fifth of complex exponentials' time)."""
    seen_x, seen_y = cv2.polarToCart(straight, 2.0 * seen)
    combed_x, combed_y = cv2.polarToCart(1.0 - straight, 2.0 * combed)
    return np.float32(0.5) * cv2.phase(seen_x + combed_x, seen_y + combed_y)


def _streaked(noise: np.ndarray, angle: np.ndarray, length: int) -> np.ndarray:
    """`noise` smeared along each pixel's direction `angle` over `length` pixels (ORIENTATIONS line filters, each
    pixel blending its two nearest). Each filter runs over the box of the pixels that take it, and only they take
    it (weighting every pixel for every filter, and filtering the whole crop, took 2-3 times as long)."""
    height, width = noise.shape
    steps = np.asarray(angle, np.float32) * np.float32(ORIENTATIONS / np.pi)  # in orientations, 0..ORIENTATIONS
    below = np.floor(steps)
    beyond = (steps - below).ravel()  # the share of the next orientation up (directions wrap round)
    lower = np.mod(below, ORIENTATIONS).astype(np.int8).ravel()
    taking = [np.flatnonzero(lower == index) for index in range(ORIENTATIONS)]
    streaks = np.zeros(height * width, np.float32)
    reach = length // 2
    for index in range(ORIENTATIONS):
        own, under = taking[index], taking[index - 1]  # 1 - beyond of this filter, and beyond of the one below's
        if not len(own) and not len(under):
            continue
        rows, cols = np.divmod(np.concatenate([own, under]), width)
        y0, y1 = max(int(rows.min()) - reach, 0), min(int(rows.max()) + reach + 1, height)
        x0, x1 = max(int(cols.min()) - reach, 0), min(int(cols.max()) + reach + 1, width)
        kernel = _line_kernel(length, np.pi * index / ORIENTATIONS)
        filtered = cv2.filter2D(noise[y0:y1, x0:x1], -1, kernel, borderType=cv2.BORDER_REFLECT)
        for pixels, weight in ((own, 1.0 - beyond[own]), (under, beyond[under])):
            if len(pixels):
                pixel_rows, pixel_cols = np.divmod(pixels, width)
                streaks[pixels] += weight * filtered[pixel_rows - y0, pixel_cols - x0]
    return streaks.reshape(height, width)


def _locks(angle: np.ndarray, pixels_across: float, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 of deviation LOCK_SHARE: streaks a lock broad and long along `angle`, drawn shrunk to at
    most LOCK_FACE pixels across the face (`pixels_across` at `angle`'s size) and enlarged."""
    height, width = angle.shape
    scale = min(1.0, LOCK_FACE / max(pixels_across, 1.0))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    across = pixels_across * scale
    small_angle = cv2.resize(angle, (small_w, small_h), interpolation=cv2.INTER_NEAREST) if scale < 1.0 else angle
    noise = rng.standard_normal((small_h, small_w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(LOCK[0] * across, 0.8))
    locks = _streaked(noise, small_angle, max(3, round(LOCK[1] * across) | 1))
    locks *= np.float32(LOCK_SHARE / max(float(locks.std()), 1e-6))
    return cv2.resize(locks, (width, height), interpolation=cv2.INTER_CUBIC) if scale < 1.0 else locks


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
