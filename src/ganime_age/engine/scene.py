"""The whole photo's person silhouette: where any edit may change the photo at all.

The selfie segmenter reads the whole photo (shrunk: the network reads 256 pixels anyway) once; each face's edit
then ends where the scene's person does, so walls and the space between people keep their pixels. Fields on a
coarse grid over a photo box are read at the photo's own pixels with :func:`read_grid`. The segmenter sees a
group as one silhouette; :func:`own_side` splits it among the faces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT, NUM_MESH_VERTICES

Segmenter = Callable[[np.ndarray], np.ndarray]  # uint8 RGB (h, w, 3) -> the person's silhouette (h, w) in 0..1

WHOLE_PHOTO_SIDE = 512  # pixels: the photo's longest side when the whole scene is segmented
SCENE_THRESHOLD = 0.05  # the whole photo's silhouette below this is no person's: an edit never changes it there
SCENE_MISSES = 0.5  # the share of the face the whole photo's silhouette must see for its outline to be trusted
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
    _closed: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # closed silhouettes by radius

    def agrees(
        self,
        x0: int,
        y0: int,
        x1: int,
        y1: int,
        notch: float = 0.0,
        hair_box: tuple[int, int, int, int] | None = None,
        hair: np.ndarray | None = None,
    ) -> np.ndarray:
        """0..1: how surely the scene sees a person at the photo pixels of the box (0 below SCENE_THRESHOLD); and
        with a `hair` share (uint8 over the photo box `hair_box`), the hair in its outline's notches up to `notch`
        photo pixels deep too: the segmenter bites into lit or thin hair beside a jaw, and that hair stayed a
        brown chunk with a jagged edge in grey hair (a wall between two heads is no hair, and stays out)."""
        agrees = self._agreement(self.silhouette, (x0, y0, x1, y1))
        radius = round(notch * self.silhouette.shape[1] / self.photo_shape[1])
        if radius <= 0 or hair is None or hair_box is None:
            return agrees
        hx0, hy0, hx1, hy1 = hair_box
        cx0, cy0, cx1, cy1 = max(x0, hx0), max(y0, hy0), min(x1, hx1), min(y1, hy1)
        if cx1 <= cx0 or cy1 <= cy0:
            return agrees
        if radius not in self._closed:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
            self._closed[radius] = cv2.morphologyEx(self.silhouette, cv2.MORPH_CLOSE, kernel)
        held = np.zeros_like(agrees)
        held[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = hair[cy0 - hy0 : cy1 - hy0, cx0 - hx0 : cx1 - hx0]
        held *= self._agreement(self._closed[radius], (x0, y0, x1, y1)) * np.float32(1.0 / 255.0)
        return np.maximum(agrees, held)

    def _agreement(self, silhouette: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        height, width = self.photo_shape
        return agreement(read_grid(silhouette, (0, 0, width, height), box))


def agreement(seen: np.ndarray) -> np.ndarray:
    """0..1 per value of the whole photo's silhouette: how surely the scene sees a person (0 below
    SCENE_THRESHOLD)."""
    return np.clip((seen - SCENE_THRESHOLD) / 0.25, 0.0, 1.0).astype(np.float32)


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


def unseen_face(face: np.ndarray, agreed: np.ndarray, apart: np.ndarray | None) -> np.ndarray | None:
    """The face's own mask where the whole photo's silhouette misses most of it (a tight crop of a bearded face,
    where the segmenter saw no person at all and no edit showed), else None: where the scene sees the face, its
    outline is the edit's (the face mask's soft edge reaches past it, onto the wall)."""
    seen = float((agreed * face).sum()) / max(float(face.sum()), 1e-6)
    if seen >= SCENE_MISSES:
        return None
    return face * apart if apart is not None else face
