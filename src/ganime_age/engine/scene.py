"""The whole photo's person silhouette: where any edit may change the photo at all.

The selfie segmenter reads the whole photo (shrunk: the network reads 256 pixels anyway) once; each face's edit
then ends where the scene's person does, so walls and the space between people keep their pixels. Fields on a
coarse grid over a photo box are read at the photo's own pixels with :func:`read_grid`. The segmenter sees a
group as one silhouette; :func:`own_side` splits it among the faces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT, NUM_MESH_VERTICES

Segmenter = Callable[[np.ndarray], np.ndarray]  # uint8 RGB (h, w, 3) -> the person's silhouette (h, w) in 0..1

WHOLE_PHOTO_SIDE = 512  # pixels: the photo's longest side when the whole scene is segmented
SCENE_THRESHOLD = 0.05  # the whole photo's silhouette below this is no person's: an edit never changes it there
# between two faces, a distance below a face counts this much less than one beside it (its hair and shoulders
# hang below it), each in its own face's widths; and the split between two people is this soft (face widths)
HANG = 2.0
SIDE_SOFTNESS = 0.3


@dataclass
class Scene:
    """The selfie segmenter's silhouette of the whole photo, read from the photo shrunk to WHOLE_PHOTO_SIDE
    pixels (the network reads 256 pixels anyway): a crop's view alone put hair wisps where the scene sees a wall."""

    silhouette: np.ndarray  # (h, w) float32 0..1 over the whole photo, at most WHOLE_PHOTO_SIDE pixels a side
    photo_shape: tuple[int, int]  # the photo's (height, width)

    def at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The silhouette at the photo pixels of the box (x0, y0, x1, y1)."""
        height, width = self.photo_shape
        return read_grid(self.silhouette, (0, 0, width, height), (x0, y0, x1, y1))

    def agrees(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """0..1: how surely the scene sees a person at the photo pixels of the box (0 below SCENE_THRESHOLD)."""
        return np.clip((self.at(x0, y0, x1, y1) - SCENE_THRESHOLD) / 0.25, 0.0, 1.0)


def scene_silhouette(rgb: np.ndarray, segment: Segmenter) -> Scene:
    """The whole photo's silhouette (:class:`Scene`)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, WHOLE_PHOTO_SIDE / max(height, width))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return Scene(np.asarray(segment(small), np.float32), (height, width))


def read_grid(field: np.ndarray, box: tuple[int, int, int, int], onto: tuple[int, int, int, int]) -> np.ndarray:
    """A field on a grid spanning the photo box `box`, read at the pixels of the photo box `onto` (pixel centres
    at integers; 0 outside `box`): linear where the photo is finer than the grid, an area average where coarser."""
    bx0, by0, bx1, by1 = box
    ox0, oy0, ox1, oy1 = onto
    grid_h, grid_w = field.shape[:2]
    sx, sy = grid_w / (bx1 - bx0), grid_h / (by1 - by0)
    # photo pixel (x, y) -> grid ((x - bx0 + 0.5) * sx - 0.5, ...)
    matrix = np.array([[sx, 0.0, (ox0 - bx0 + 0.5) * sx - 0.5], [0.0, sy, (oy0 - by0 + 0.5) * sy - 0.5]])
    flags = (cv2.INTER_AREA if sx > 1.0 or sy > 1.0 else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(field.astype(np.float32, copy=False), matrix, (ox1 - ox0, oy1 - oy0), flags=flags)
    return out.reshape(oy1 - oy0, ox1 - ox0, *field.shape[2:])


def own_side(
    points: np.ndarray,
    others: Sequence[np.ndarray],
    to_grid: Callable[[np.ndarray], np.ndarray],
    shape: tuple[int, int],
) -> np.ndarray | None:
    """(h, w) float32 0..1 on a grid (`to_grid` maps photo pixels to it): where the person of the face with
    landmarks `points` lies nearer than any of the `others` faces' (each distance in its own face's widths,
    one below a face counting HANG times less), None without others. In a group photo the segmenter's one
    silhouette let a face's hair take the neighbours' hair and a navy shirt as its own, and grey them."""
    if not len(others):
        return None
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    def distance(face: np.ndarray) -> np.ndarray:
        local = to_grid(np.asarray(face, np.float64)[:NUM_MESH_VERTICES])
        centre = local.mean(axis=0)
        width = max(float(np.linalg.norm(local[FACE_RIGHT] - local[FACE_LEFT])), 1.0)
        below = np.maximum(rows - centre[1], 0.0) / HANG + np.minimum(rows - centre[1], 0.0)
        return np.hypot(cols - centre[0], below) / width

    own = distance(points)
    nearer = np.ones(shape, np.float32)
    for other in others:
        nearer = np.minimum(nearer, np.clip((distance(other) - own) / SIDE_SOFTNESS + 0.5, 0.0, 1.0))
    return nearer
