"""Reading and repainting the photo's own pixels at its full resolution: the engine's only per-pixel work.

A moved pixel is read from the input (brightness by a cubic, colour by a linear kernel), a repainted one takes
one linear map per pixel (a gain, a brightness change, a colour offset), and both run in row bands shared by
the cores when a face is large.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ganime_age.engine.appearance import TextureChange
from ganime_age.engine.config import LOG_EPSILON
from ganime_age.engine.frames import GridFrame, wide_blur

LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)  # BT.601, as the chroma measure's complement
ENLARGEMENT_SMOOTHING = 2.0  # grid pixels
SHARPEN_SIGMA = 1.2  # photo pixels: the detail a cubic read of a photo enlarged by a fifth to a half softens
SHARPEN_FROM = 1.1  # the enlargement from which a read is sharpened: a tenth's softening goes unseen, and a full-size
# photo made old (enlarged 1.0-1.3 by its sag), sharpened from 1, kept a fifth more fine detail than it had
SHARPEN_MOST = 1.5  # the most of that detail added back (where a map enlarges by half or more)
SHARPEN_FLOOR = 3.0  # grey levels: detail this faint (a scan's halftone screen, sensor noise) takes a half share
SHARPEN_HALO = 8  # pixels beyond a band that its blur (5 at SHARPEN_SIGMA) and its bounds (1) read
HUE_LIFT = (0.1, 0.5)  # a pixel brightened by this share takes the colour of the skin around it from none to all


def resample(rgb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """uint8 RGB read at float (h, w, 2) `positions`: the brightness by a cubic, the colour by a linear kernel.

    OpenCV's cubic overshoots at an edge; in brightness that keeps a moved pixel as sharp as the photo's, but
    at a colour edge (skin against a wall, lips against teeth) it prints a coloured halo, the fine colour
    detail no camera keeps (a cubic remap alone raised a smile's fine colour by a third). So the colour comes
    from a linear read and only the brightness difference of the cubic read is added, equally to R, G and B.
    A large read runs in row bands over the cores, each band's passes on what the previous left in cache.
    """
    height, width = positions.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = np.empty((height, width, 3), np.uint8)

    def band(rows: slice) -> None:
        where = positions[rows]
        linear = cv2.remap(rgb, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        sharp = cv2.remap(grey, where, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        flat = cv2.cvtColor(linear, cv2.COLOR_RGB2GRAY)
        # the brightness difference, as its positive and negative parts in uint8 (one is 0): saturating adds
        # give the exact, clipped sum in a third of the memory traffic of 16-bit arithmetic
        lighter = cv2.cvtColor(cv2.subtract(sharp, flat), cv2.COLOR_GRAY2RGB)
        darker = cv2.cvtColor(cv2.subtract(flat, sharp), cv2.COLOR_GRAY2RGB)
        out[rows] = cv2.subtract(cv2.add(linear, lighter), darker)

    in_row_bands(band, height, width, PARALLEL_RESAMPLE, RESAMPLE_BAND_PIXELS)
    return out


def enlargement(sample: np.ndarray, per: tuple[float, float]) -> np.ndarray:
    """(h, w) float32: how many times a backward map (grid positions read per grid pixel, (h, w, 2)) enlarges the
    photo, along the direction it enlarges most (1 / the smaller singular value of its Jacobian in photo pixels;
    1 where it only moves), smoothed over a few grid pixels so a mesh's triangles leave no steps."""
    per_x, per_y = per
    along_x = np.gradient(sample, axis=1)  # d(read x, read y) / d(grid x), in grid pixels
    along_y = np.gradient(sample, axis=0)
    a, c = along_x[..., 0], along_x[..., 1] * np.float32(per_y / per_x)  # in photo pixels per photo pixel
    b, d = along_y[..., 0] * np.float32(per_x / per_y), along_y[..., 1]
    squares = a * a + b * b + c * c + d * d
    area = a * d - b * c
    smaller = np.sqrt(
        np.maximum(0.5 * (squares - np.sqrt(np.maximum(squares * squares - 4.0 * area * area, 0.0))), 1e-6)
    )
    return cv2.GaussianBlur(1.0 / smaller, (0, 0), ENLARGEMENT_SMOOTHING)


def sharpen_enlarged(pixels: np.ndarray, enlarged: np.ndarray, gain: float) -> None:
    """uint8 RGB read through a map that enlarges it by `enlarged` (h, w): its brightness sharpened in place by
    `gain` times the enlargement's excess over SHARPEN_FROM (at most SHARPEN_MOST), added equally to R, G and B.

    An enlarged photo keeps only its coarser detail: a child's face made grown is a fifth to a half larger, and a
    small photo's lips and eyes, read by the cubic, came out as soft bands. An unsharp mask at the scale the read
    softened gives edges back their steepness; it makes no detail the photo lacks, and a part only moved (1) or
    shrunk keeps its read as it was. Faint detail is cored (d^2 / (d^2 + SHARPEN_FLOOR^2) of it taken): sharpened
    whole, a scanned photo's halftone dots, stretched coarse, came out as a screen over the face."""
    amount = np.clip(np.float32(gain) * (enlarged - np.float32(SHARPEN_FROM)), 0.0, SHARPEN_MOST)
    rows, cols = np.nonzero(amount.max(axis=1) > 0.01)[0], np.nonzero(amount.max(axis=0) > 0.01)[0]
    if not len(rows):
        return
    part = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    target, amounts = pixels[part], amount[part]
    grey = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)  # read once: a band's neighbours are read unsharpened
    height, width = grey.shape

    def band(rows: slice) -> None:
        within = np.nonzero(amounts[rows].max(axis=0) > 0.0)[0]  # a band's own columns: a smile enlarges its mouth
        if not len(within):
            return
        top, bottom = max(rows.start - SHARPEN_HALO, 0), min(rows.stop + SHARPEN_HALO, height)
        left, right = max(within[0] - SHARPEN_HALO, 0), min(within[-1] + 1 + SHARPEN_HALO, width)
        inner = (slice(rows.start - top, rows.stop - top), slice(within[0] - left, within[-1] + 1 - left))
        detail = _unsharp_detail(grey[top:bottom, left:right], amounts[top:bottom, left:right])[inner]
        # as the positive and negative parts in uint8 (one is 0), added and taken by saturating arithmetic
        lighter = cv2.cvtColor(cv2.convertScaleAbs(np.maximum(detail, 0.0)), cv2.COLOR_GRAY2RGB)
        darker = cv2.cvtColor(cv2.convertScaleAbs(np.minimum(detail, 0.0)), cv2.COLOR_GRAY2RGB)
        written = target[rows, within[0] : within[-1] + 1]
        written[:] = cv2.subtract(cv2.add(written, lighter), darker)

    in_row_bands(band, height, width, PARALLEL_PIXELS, RESAMPLE_BAND_PIXELS)


def _unsharp_detail(grey: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """float32 (h, w): `amount` times uint8 `grey`'s detail finer than SHARPEN_SIGMA, faint detail cored, bounded so
    that adding it brightens no pixel past the brightest beside it nor darkens one past the darkest: an edge
    steepens without a halo (unbounded, the skin beside dark hair and the upper lip's rim overshot into white
    lines)."""
    detail = grey.astype(np.float32)
    detail -= cv2.GaussianBlur(detail, (0, 0), SHARPEN_SIGMA)
    cored = detail * detail
    cored /= cored + np.float32(SHARPEN_FLOOR * SHARPEN_FLOOR)
    detail *= cored
    detail *= amount
    around = np.ones((3, 3), np.uint8)
    np.minimum(detail, cv2.dilate(grey, around).astype(np.float32) - grey, out=detail)
    np.maximum(detail, cv2.erode(grey, around).astype(np.float32) - grey, out=detail)
    return detail


def soften_colour(rgb: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """float32 RGB whose colour (each channel minus the BT.601 brightness) is blurred by `sigma` pixels where
    `weight` (h, w), spread by the blur, reaches; the brightness is kept exactly."""
    if sigma < 0.3:
        return rgb
    brightness = cv2.transform(rgb, LUMA)[..., None]
    colour = rgb - brightness
    soft = wide_blur(colour, sigma)
    reach = np.clip(2.0 * wide_blur(weight, sigma), 0.0, 1.0)[..., None]
    return brightness + colour + reach * (soft - colour)


def repaint_table(texture: TextureChange, smooth_rgb: np.ndarray) -> np.ndarray:
    """(h, w, 5) float32, 0 where nothing changes: the coefficients of one linear map per pixel,
    out = (1 + a) p + b luma(p) + c (a, b, then c per channel), see :func:`apply_factor`.

    They fold the repaint into one pass over the photo: the ratio image's brightness (a gain; a brightening one on
    the brightness alone), the fine brightness change (added equally to R, G and B, so deepened or smoothed wrinkles
    keep the skin's colour), and the ratio image's colour as an offset computed from the face's *blurred* colours,
    so a tint is as smooth as the ratio image itself: multiplying each channel by its own factor would also scale
    the photo's fine brightness detail differently per channel, printing wrinkles and edges in colour. Then a
    pixel brightened by much takes the colour around it, and a filled one (``texture.fill``) the skin around it
    (:func:`_towards`). (All act on p + eps, the log domain's offset: luma(p + eps) = luma(p) + eps.)
    """
    eps = np.float32(255.0 * LOG_EPSILON)
    grey = texture.ratio.mean(axis=2)
    gain = cv2.exp(grey)
    fine = cv2.exp(texture.fine) - np.float32(1.0)
    tint = cv2.exp(texture.ratio - grey[..., None]) - np.float32(1.0)
    brightness = gain * fine
    offset = (smooth_rgb + eps) * (gain[..., None] * tint)
    offset += (eps * (gain + brightness) - eps)[..., None]
    # a brightening gain lifts each pixel's brightness (its luma, added to R, G and B alike) and keeps its colour
    # offsets: scaling all three channels scaled a dark, saturated crease or nostril's colour with it, into an
    # orange line on an old face made young; a darkening gain stays a ratio (a deepened fold keeps its hue)
    lift = cv2.max(gain - np.float32(1.0), 0.0)
    scale, added = gain - np.float32(1.0) - lift, brightness + lift
    # a pixel brightened by much takes the colour of the skin around it, in proportion: lifted by its brightness
    # alone, a dark brow's or crease's low colour came out a bluish grey beside warm skin
    raised = gain * (fine + np.float32(1.0)) - np.float32(1.0)
    hue = np.clip((raised - HUE_LIFT[0]) / (HUE_LIFT[1] - HUE_LIFT[0]), 0.0, 1.0).astype(np.float32)
    lit = smooth_rgb + eps
    lit_luma = cv2.transform(lit, LUMA)[..., None]
    if np.any(hue):  # the colour around: the blurred colour less its luma
        scale, added, offset = _towards(scale, added, offset, hue, lit - lit_luma, keep_brightness=True)
    if texture.fill is not None:
        # a replaced pixel takes the skin around it, with the ratio's change: its blurred colour, brightened as a
        # brightening gain brightens, by its luma (scaled, a saturated skin's red clipped into an orange blotch)
        around = lit * cv2.min(gain, 1.0)[..., None] + lit_luma * lift[..., None] + lit * (gain[..., None] * tint)
        scale, added, offset = _towards(scale, added, offset, texture.fill, around - eps, keep_brightness=False)
    return cv2.merge([scale, added, *cv2.split(offset)])


def _towards(
    scale: np.ndarray,
    added: np.ndarray,
    offset: np.ndarray,
    weight: np.ndarray,
    colour: np.ndarray,
    keep_brightness: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The map out = (1 + scale) p + added luma(p) + offset blended, by `weight` (h, w), with `colour` (h, w, 3) added
    to the mapped pixel's own brightness (`keep_brightness`: its colour replaced) or alone (the pixel replaced)."""
    keep = np.float32(1.0) - weight
    new_added = keep * added
    new_offset = keep[..., None] * offset + weight[..., None] * colour
    if keep_brightness:  # luma(out) = (1 + scale + added) luma(p) + luma(offset)
        new_added += weight * (scale + np.float32(1.0) + added)
        new_offset += weight[..., None] * cv2.transform(offset, LUMA)[..., None]
    return keep * (scale + np.float32(1.0)) - np.float32(1.0), new_added, new_offset


def apply_factor(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels repainted by a :func:`repaint_table`: out = (1 + a) p + b luma(p) + c, rounded."""
    scaled = pixels.astype(np.float32)
    brightness = cv2.transform(scaled, LUMA).reshape(*scaled.shape[:2], 1)  # (h, w, 1): added to each channel
    brightness *= table[..., 1:2]
    scaled *= table[..., :1] + np.float32(1.0)
    scaled += brightness
    scaled += table[..., 2:]
    cv2.max(scaled, 0.0, dst=scaled)  # convertScaleAbs would turn a negative value into its absolute value
    return cv2.convertScaleAbs(scaled)  # rounds and saturates at 255


PARALLEL_PIXELS = 120_000  # a repaint this large is split into row bands over the cores
BAND_PIXELS = 32_768  # pixels per band: its float32 temporaries (~0.4 MB each) stay in the core's cache
PARALLEL_RESAMPLE = 1_500_000  # a resample this large runs in bands (below it OpenCV's own threads do as well)
RESAMPLE_BAND_PIXELS = 65_536


@functools.lru_cache(maxsize=1)
def _band_pool() -> tuple[ThreadPoolExecutor, int]:
    workers = max(1, min(os.cpu_count() or 1, 4))
    return ThreadPoolExecutor(workers, thread_name_prefix="ganime-bands"), workers


def in_row_bands(band: Callable[[slice], None], height: int, width: int, parallel: int, band_pixels: int) -> None:
    """Call `band` on row slices covering `height` rows: one slice below `parallel` pixels (or on one core),
    else slices of about `band_pixels` shared by the cores, each small enough to stay in a core's cache."""
    pool, workers = _band_pool()
    if height * width < parallel or workers < 2:
        band(slice(0, height))
        return
    step = max(1, band_pixels // max(width, 1))
    list(pool.map(band, [slice(start, min(start + step, height)) for start in range(0, height, step)]))


def repaint(pixels: np.ndarray, factor: np.ndarray, to_grid: np.ndarray) -> None:
    """:func:`apply_factor` in place with the grid's `factor` table read at each pixel (`to_grid`: the (2, 3)
    affine map from these pixels to grid positions). A large face runs in row bands shared by the cores
    (NumPy's passes release the GIL and run on one core each); each band warps its own rows of the table, and
    is small enough that every pass reads what the previous one left in cache instead of going back to memory
    (a 12 MP face's table alone is 100 MB)."""
    height, width = pixels.shape[:2]

    def band(rows: slice) -> None:
        shifted = np.array(to_grid, np.float64)
        shifted[:, 2] += shifted[:, 1] * rows.start  # the band's first row is its row 0
        table = cv2.warpAffine(
            factor,
            shifted,
            (width, rows.stop - rows.start),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        pixels[rows] = apply_factor(pixels[rows], table)

    in_row_bands(band, height, width, PARALLEL_PIXELS, BAND_PIXELS)


def repaint_field(
    texture: TextureChange | None, smooth_rgb: np.ndarray, sample: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The repaint table on the engine grid (painted on the input's shape, then moved by `sample`) from the face's
    blurred colours `smooth_rgb`, and where it paints (a change below half a grey level rounds back to the input's
    pixel; the table is masked by the face, so this is also where it is not zero); (None, None) when nothing is
    repainted."""
    if texture is None:
        return None, None
    factor = repaint_table(texture, smooth_rgb)
    if sample is None:
        return factor, texture.mask
    factor = cv2.remap(factor, sample, None, cv2.INTER_LINEAR, borderValue=0.0)
    return factor, cv2.remap(texture.mask, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR)


def repaint_box(
    edited: np.ndarray, factor: np.ndarray, painted: np.ndarray, frame: GridFrame, box: tuple[int, int, int, int]
) -> None:
    """Repaint `edited` (the photo's `box`) in place, only where the colour change reaches (the face; the
    geometry's box is wider)."""
    x0, y0, x1, y1 = box
    painted_rows, painted_cols = np.nonzero(painted > 0.0)
    if not len(painted_rows):
        return
    px0, py0, px1, py1 = frame.photo_box(
        (int(painted_rows.min()) - 1, int(painted_rows.max()) + 2),
        (int(painted_cols.min()) - 1, int(painted_cols.max()) + 2),
    )
    px0, py0, px1, py1 = max(px0, x0), max(py0, y0), min(px1, x1), min(py1, y1)
    repaint(edited[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0], factor, frame.grid_affine(px0, py0))
