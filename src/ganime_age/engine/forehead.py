"""An old forehead's lines, smoothed away up to the hair when a face is made decades younger.

MediaPipe's mesh ends about two thirds of the way up the forehead, and an age edit's skin change (the fitted tables,
the matched young faces, whose features fade out above the brows) is drawn inside it. So an old face made young kept
its forehead's lines, and made a child, the taller cranium of growth stretched them over a child's forehead. Once per
photo, the forehead's skin, from a little above the brows (which keep their own detail) up to the hair, inside the
mesh and above it, loses its lines: the detail between the photo's finest grain and a fold's width (a band-pass of
its lightness), which is what a forehead's lines are, is taken out, in every channel alike, so the skin keeps its
grain, its shading and its colour. A slider move scales the change (:class:`.frames.PhotoLift`).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ganime_age.engine.frames import PhotoLift, arc_band, wide_blur
from ganime_age.faces.topology import BROW_TOPS, CHIN, FACE_LEFT, FACE_OVAL, FACE_RIGHT

REACH = 0.45  # face widths above the mesh's edge the forehead may reach (its hair and the photo's top end it first)
BROW_CLEAR = 0.06  # face widths above the brows' tops where the forehead begins
FEATHER = 0.03  # face widths: the soft edge of the region
LINE_SCALES = (0.006, 0.035)  # face widths: the photo's grain (kept) and the widest line (taken out) of a forehead
YOUNGER = (15.0, 40.0)  # years younger from which the lines go, and wholly


class Forehead(PhotoLift):
    """The skin above the face's mesh and its lines' removal at the photo's resolution (`change`: all of it)."""


def forehead_share(source_age: float, target_age: float) -> float:
    """0..1: how much of an old forehead's lines an edit from `source_age` to `target_age` takes away."""
    return float(np.clip((source_age - target_age - YOUNGER[0]) / (YOUNGER[1] - YOUNGER[0]), 0.0, 1.0))


def find_forehead(
    rgb: np.ndarray,
    points: np.ndarray,
    person: Callable[[int, int, int, int], np.ndarray],
    hair: Callable[[tuple[int, int, int, int], tuple[int, int]], np.ndarray],
) -> Forehead | None:
    """The forehead of the face with landmarks `points` (photo pixels) in `rgb`, or None where no skin of it is in
    view. `person` and `hair` as for :func:`.beard.find_beard`: the lines go only on this person's
    skin, never on hair (a fringe's strands are not lines)."""
    height, width = rgb.shape[:2]
    points = np.asarray(points, np.float64)
    face_width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    ring = [pair[0] for pair in FACE_OVAL]
    ring = ring[ring.index(CHIN) :] + ring[: ring.index(CHIN)]  # from the chin round: the upper arc is one run
    brow_row = float(points[list(BROW_TOPS), 1].min())
    arc = points[[i for i in ring if points[i, 1] < brow_row], :2]
    if len(arc) < 3:
        return None
    up = points[ring, :2].mean(axis=0) - points[CHIN, :2]  # from the chin to the face's centre
    up /= max(float(np.linalg.norm(up)), 1e-6)
    raised = arc + REACH * face_width * up
    x0 = max(int(min(arc[:, 0].min(), raised[:, 0].min())), 0)
    x1 = min(int(np.ceil(max(arc[:, 0].max(), raised[:, 0].max()))) + 1, width)
    y0 = max(int(min(arc[:, 1].min(), raised[:, 1].min())), 0)
    y1 = min(int(np.ceil(brow_row)) + 1, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    shape = (y1 - y0, x1 - x0)
    offset = np.array([x0, y0], np.float64)
    above = arc_band(arc, raised, offset, shape)  # the band between the mesh's upper edge and its raised copy
    inside = np.zeros(shape, np.uint8)  # and the mesh's own forehead
    cv2.fillPoly(inside, [np.round(points[ring, :2] - offset).astype(np.int32)], 1)
    feather = max(FEATHER * face_width, 1.0)
    rows = np.arange(shape[0], dtype=np.float32)[:, None] + y0
    clear = np.clip((brow_row - BROW_CLEAR * face_width - rows) / feather, 0.0, 1.0)  # the brows keep their own
    region = wide_blur((above | inside).astype(np.float32), feather, border=cv2.BORDER_REFLECT_101) * clear
    weight = region * person(x0, y0, x1, y1) * (1.0 - np.clip(hair((x0, y0, x1, y1), shape), 0.0, 1.0))
    if float(weight.max()) < 0.05:
        return None
    return Forehead.lines_out(rgb, (x0, y0, x1, y1), weight, (LINE_SCALES[0] * face_width, LINE_SCALES[1] * face_width))
