"""Loose strands beyond the parsed hair: flyaways against a wall, wisps over the forehead.

The face parser names the mass of the hair; single strands are too thin for it, and a dark head of hair greyed
without them keeps its flyaways and the wisps hanging over the forehead dark (a young man's, made 75 at 1:1).
A loose strand is a thin line darker than what lies behind it: a grey closing (wider than any strand) takes it out
and gives that background, and how much of the way from the background to the hair's own brightness a pixel is
dark says how much of it is strand. A pixel that much strand greys by that share, as a hairline's mixed pixel
does: over a light wall or skin, strands darker by less than the hair itself (a wrinkle, a faint shadow) are no
strand. Only above the eyes, off the brows and off other faces: below, thin dark lines are lashes, the shadow
between an ear and a cheek, stubble.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ganime_age.engine.frames import channel_mean
from ganime_age.faces.topology import LEFT_BROW, LEFT_EYE_CONTOUR, RIGHT_BROW, RIGHT_EYE_CONTOUR

WISP_REACH = 0.2  # face widths beyond the parsed hair's edge that loose strands are looked for (fading out there)
WISP_WIDTH = 0.012  # face widths: half the closing that takes a strand out of its background (strands are thinner)
WISP_CONTRAST = 30.0  # grey levels the background must be lighter than the hair for its strands to be seen
WISP_FLOOR = 0.12  # of the way to the hair's brightness a pixel must be dark to be strand (twice it: wholly)
BROW_GROW = 0.04  # face widths around the brows that are never a strand (their hairs are the brows')
EYE_LINE_FADE = 0.05  # face widths above the eyes' mean row over which strands fade in
WISP_FULL_FACE = 500  # pixels across a face read at full size (twice as wide: at half size)


def reach(face_width: float) -> int:
    """Photo pixels beyond the parsed hair's edge that loose strands are looked for."""
    return max(2, round(WISP_REACH * face_width))


def wisp_share(
    pixels: np.ndarray,
    share: np.ndarray,
    origin: tuple[int, int],
    points: np.ndarray,
    face_width: float,
    apart: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w) uint8: how much of each pixel of `pixels` (uint8 RGB, the photo crop at `origin`) is a loose strand
    of the hair whose share (uint8, the parser's) is `share` over the same crop; 0 inside that hair. `points`: the
    face's landmarks (photo pixels); `apart`: 0 on the photo's other faces, 1 away from them (float32 over the crop).
    A large face's strands are read at half its size or less (a 12 MP photo's are several pixels wide)."""
    out = np.zeros_like(share)
    xy = np.asarray(points, np.float64)[:, :2] - origin
    eyes = float(xy[list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR), 1].mean())
    rows = min(max(int(np.ceil(eyes)), 0), share.shape[0])  # nothing below the eyes' mean row: read above it only
    if rows < 2 or not (share[:rows] > 200).any():
        return out
    step = max(1, int(face_width // WISP_FULL_FACE))
    width = share.shape[1]
    small = (max(1, width // step), max(1, rows // step))
    shrink = (lambda a: a) if step == 1 else (lambda a: cv2.resize(a, small, interpolation=cv2.INTER_AREA))
    strand = _strands(shrink(pixels[:rows]), shrink(share[:rows]), (xy + 0.5) / step - 0.5, face_width / step)
    if step > 1:
        strand = cv2.resize(strand, (width, rows), interpolation=cv2.INTER_LINEAR)
    strand *= share[:rows] < 128  # inside, the parser's share is the hair's
    if apart is not None:
        strand *= apart[:rows]
    out[:rows] = np.round(255.0 * strand)
    return out


def _strands(pixels: np.ndarray, share: np.ndarray, xy: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32: :func:`wisp_share`'s strands over `pixels` (above the eyes), `xy` the landmarks there."""
    sure = share > 200
    brightness = channel_mean(pixels)
    hair = float(np.median(brightness[sure])) if sure.any() else 0.0
    half = max(1, round(WISP_WIDTH * face_width))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * half + 1, 2 * half + 1))
    background = cv2.morphologyEx(brightness, cv2.MORPH_CLOSE, kernel)
    outside = cv2.distanceTransform((share < 128).astype(np.uint8), cv2.DIST_L2, 3)
    contrast = background - np.float32(hair)
    strand = np.clip((background - brightness) / np.maximum(contrast, 1.0), 0.0, 1.0)
    strand *= np.clip((strand - WISP_FLOOR) / WISP_FLOOR, 0.0, 1.0)  # fainter than this: the background's grain
    strand *= contrast > WISP_CONTRAST
    strand *= np.clip(1.0 - outside / reach(face_width), 0.0, 1.0)  # near the hair, fading out to the reach
    eyes = float(xy[list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR), 1].mean())
    fade = max(EYE_LINE_FADE * face_width, 1.0)
    strand *= np.clip((eyes - np.arange(strand.shape[0], dtype=np.float32)[:, None]) / fade, 0.0, 1.0)
    for brow in (RIGHT_BROW, LEFT_BROW):  # a brow's hairs are the brow's: grown, it is never a strand
        _clear_around(strand, xy[list(brow)], max(1, round(BROW_GROW * face_width)))
    return strand.astype(np.float32)


def _clear_around(field: np.ndarray, polygon: np.ndarray, grow: int) -> None:
    """Zero `field` inside `polygon` (pixels) grown by `grow` pixels, in place (drawn in the polygon's own box)."""
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - grow - 1
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + grow + 2
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, field.shape[1]), min(y1, field.shape[0])
    if cx0 >= cx1 or cy0 >= cy1:
        return
    outside = np.ones((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(outside, [np.round(polygon - (x0, y0)).astype(np.int32)], 0)
    near = cv2.distanceTransform(outside, cv2.DIST_L2, 3) <= grow  # grown by a distance: a wide dilation is slow
    field[cy0:cy1, cx0:cx1][near[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]] = 0.0


def add_wisps(layer: Any, rgb: np.ndarray, points: np.ndarray) -> None:
    """Grow a :class:`.hair.HairLayer`'s hair box by the strands' reach (inside its person's box) and add the loose
    strands of the photo `rgb` (landmarks `points`) to its hair share there, keeping them apart (`wisps`): they are
    the person's too, beyond the parse's outline."""
    grow = reach(layer.face_width)
    hx0, hy0, hx1, hy1 = layer.hair_box
    bx0, by0, bx1, by1 = layer.box
    x0, y0, x1, y1 = max(hx0 - grow, bx0), max(hy0 - grow, by0), min(hx1 + grow, bx1), min(hy1 + grow, by1)
    share = np.zeros((y1 - y0, x1 - x0), np.uint8)
    share[hy0 - y0 : hy1 - y0, hx0 - x0 : hx1 - x0] = layer.share
    apart = layer.apart_on((x0, y0, x1, y1), share.shape)
    strands = wisp_share(rgb[y0:y1, x0:x1], share, (x0, y0), points, layer.face_width, apart)
    share = np.maximum(share, strands)
    rows, cols = np.nonzero(share.any(axis=1))[0], np.nonzero(share.any(axis=0))[0]  # the box shrunk to them
    if not len(rows):
        return
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    layer.hair_box = (x0 + left, y0 + top, x0 + right, y0 + bottom)
    layer.share, layer.wisps = share[top:bottom, left:right], strands[top:bottom, left:right]


def read_box(field: np.ndarray, field_box: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) float32 0..1: a uint8 `field` over the photo box `field_box` read over the photo box `box` (0 outside
    it)."""
    x0, y0, x1, y1 = box
    fx0, fy0, fx1, fy1 = field_box
    out = np.zeros((y1 - y0, x1 - x0), np.float32)
    ix0, iy0, ix1, iy1 = max(x0, fx0), max(y0, fy0), min(x1, fx1), min(y1, fy1)
    if ix0 < ix1 and iy0 < iy1:
        out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = field[iy0 - fy0 : iy1 - fy0, ix0 - fx0 : ix1 - fx0] / 255.0
    return out
