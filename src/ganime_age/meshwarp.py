"""Meshes on pixel grids: which triangle covers each pixel, and smooth per-vertex fields over a photo.

The fitted edit engine (``ganime_age.engine``) works on MediaPipe's face mesh (468 vertices,
898 triangles). Everything it moves or paints is a per-vertex quantity (a landmark displacement, a
position in the shape-normalised template) spread over pixels by the mesh's own piecewise-linear
interpolation, and beyond the face by a smooth extension that fades to nothing. Rasterising the mesh
once per photo (a triangle id and barycentric weights per pixel) makes every later field a gather and
a weighted sum, which keeps a slider move to milliseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

_SUBPIXEL_BITS = 4


def signed_areas(triangles: np.ndarray) -> np.ndarray:
    """(T,) twice the signed area of (T, 3, 2) triangles (positive = counter-clockwise in image axes)."""
    a = triangles[:, 1] - triangles[:, 0]
    b = triangles[:, 2] - triangles[:, 0]
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


@dataclass
class MeshRaster:
    """A mesh drawn on a (height, width) grid: per covered pixel its triangle and barycentric weights."""

    shape: tuple[int, int]
    pixels: np.ndarray  # (P,) int64 flat indices of the covered pixels
    corners: np.ndarray  # (P, 3) int32 vertex ids of the triangle covering each pixel
    weights: np.ndarray  # (P, 3) float32 barycentric weights (sum 1)
    triangle: np.ndarray  # (P,) int32 triangle id

    @property
    def mask(self) -> np.ndarray:
        """(height, width) float32: 1 where the mesh covers the grid."""
        out = np.zeros(self.shape[0] * self.shape[1], np.float32)
        out[self.pixels] = 1.0
        return out.reshape(self.shape)

    def interpolate(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(height, width, C) per-pixel interpolation of (V, C) per-vertex values; `fill` off the mesh."""
        values = np.asarray(values, np.float32)
        channels = values.shape[1] if values.ndim == 2 else 1
        out = np.full((*self.shape, channels), fill, np.float32)
        return self.interpolate_into(out, values)

    def interpolate_into(self, out: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Write the interpolation of (V, C) per-vertex values into the pixels the mesh covers of `out`
        ((height, width, C) float32, changed in place and returned); the other pixels keep their values."""
        values = np.asarray(values, np.float32)
        flat = values.reshape(len(values), -1)
        corners, weights = self._columns
        mixed = flat[corners[0]] * weights[0]
        mixed += flat[corners[1]] * weights[1]
        mixed += flat[corners[2]] * weights[2]
        out.reshape(-1, flat.shape[1])[self.pixels] = mixed
        return out

    @functools.cached_property
    def _columns(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each corner's vertex ids and weights as contiguous columns: a slider move gathers them every time."""
        corners = [np.ascontiguousarray(self.corners[:, k]) for k in range(3)]
        weights = [np.ascontiguousarray(self.weights[:, k : k + 1]) for k in range(3)]
        return corners, weights


def rasterise(
    vertices: np.ndarray,
    triangles: np.ndarray,
    shape: tuple[int, int],
    *,
    depth: np.ndarray | None = None,
    reference_areas: np.ndarray | None = None,
) -> MeshRaster:
    """Draw `triangles` over (V, 2) pixel `vertices` on a grid of `shape` (pixel centres at integers).

    With `depth` (V,) the triangles are drawn far to near (larger depth = farther), so the near surface wins
    where a turned head overlaps itself; with `reference_areas` (the signed areas of the same triangles on a
    frontal face) triangles whose orientation flipped are facing away and are not drawn.
    """
    height, width = shape
    vertices = np.asarray(vertices, np.float64)
    tri = np.asarray(triangles, np.int64)
    corners = vertices[tri]  # (T, 3, 2)
    areas = signed_areas(corners)
    drawn = np.abs(areas) > 1e-9
    if reference_areas is not None:
        drawn &= np.sign(areas) == np.sign(reference_areas)
    order = np.arange(len(tri))
    if depth is not None:
        order = np.argsort(-np.asarray(depth, np.float64)[tri].mean(1), kind="stable")
    ids = np.zeros((height, width), np.int32)
    fixed = np.round(corners * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    for t in order:
        if drawn[t]:
            cv2.fillConvexPoly(ids, fixed[t], int(t) + 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    flat = ids.reshape(-1)
    pixels = np.flatnonzero(flat)
    triangle = flat[pixels] - 1
    ys, xs = np.divmod(pixels, width)
    # barycentric weights from each triangle's inverse affine map (pixel -> (w1, w2))
    inverse = _barycentric_maps(corners)
    chosen = inverse[triangle]
    w12 = chosen[:, :, 0] * xs[:, None] + chosen[:, :, 1] * ys[:, None] + chosen[:, :, 2]
    weights = np.concatenate([1.0 - w12.sum(1, keepdims=True), w12], axis=1)
    # pixel snapping may draw a pixel a hair outside its triangle: extrapolate there (exact for affine fields),
    # but never far, which a sliver triangle's huge inverse would do
    weights = np.clip(weights, -1.0, 2.0)
    total = weights.sum(1, keepdims=True)
    weights = np.where(np.abs(total) > 1e-6, weights / np.where(np.abs(total) > 1e-6, total, 1.0), 1.0 / 3.0)
    return MeshRaster(
        shape=(height, width),
        pixels=pixels.astype(np.int64),
        corners=tri[triangle].astype(np.int32),
        weights=weights.astype(np.float32),
        triangle=triangle.astype(np.int32),
    )


def _barycentric_maps(corners: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affine maps from a pixel (x, y, 1) to its weights on the 2nd and 3rd corner of each triangle."""
    e1 = corners[:, 1] - corners[:, 0]
    e2 = corners[:, 2] - corners[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    inv = np.empty((len(corners), 2, 3))
    inv[:, 0, 0] = e2[:, 1] / det
    inv[:, 0, 1] = -e2[:, 0] / det
    inv[:, 1, 0] = -e1[:, 1] / det
    inv[:, 1, 1] = e1[:, 0] / det
    origin = corners[:, 0]
    inv[:, 0, 2] = -(inv[:, 0, 0] * origin[:, 0] + inv[:, 0, 1] * origin[:, 1])
    inv[:, 1, 2] = -(inv[:, 1, 0] * origin[:, 0] + inv[:, 1, 1] * origin[:, 1])
    return inv


def extend_outward(field: np.ndarray, mask: np.ndarray, reach: float, *, coarse: int = 4) -> np.ndarray:
    """A field known where `mask` is 1, continued smoothly beyond it and faded to exactly 0 `reach` pixels out.

    Normalised convolution (blur the masked field, divide by the blurred mask) gives each outside pixel a
    distance-weighted average of the nearby inside values, so the face's edge takes its surroundings along
    (the shadow under a jaw that moves up, the hair at the temples); a taper on the distance to the mask ends
    the motion at `reach`, so the photo beyond is not touched at all (and an edit need not resample it).
    Computed `coarse` times smaller than the grid: the extension is smooth by construction.
    """
    field = np.asarray(field, np.float32)
    squeeze = field.ndim == 2
    if squeeze:
        field = field[..., None]
    height, width = mask.shape
    small = (max(1, width // coarse), max(1, height // coarse))
    m = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    f = cv2.resize(field * mask[..., None], small, interpolation=cv2.INTER_AREA)
    if f.ndim == 2:
        f = f[..., None]
    sigma = max(reach / coarse / 2.0, 0.5)
    blurred_mask = cv2.GaussianBlur(m, (0, 0), sigma)
    blurred = cv2.GaussianBlur(f, (0, 0), sigma)
    if blurred.ndim == 2:
        blurred = blurred[..., None]
    # the average of the inside values nearby, at full strength for the first quarter of `reach` (a jaw's
    # shadow and the hair at the temples move with the face), then smoothly down to nothing at `reach`
    average = blurred / np.maximum(blurred_mask, 1e-6)[..., None]
    outside_mask = (m < 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(outside_mask, cv2.DIST_L2, 3) * coarse
    plateau = 0.25 * reach
    t = np.clip((distance - plateau) / max(reach - plateau, 1e-6), 0.0, 1.0)
    fade = (1.0 - t * t * (3.0 - 2.0 * t))[..., None]  # smoothstep down
    outside = cv2.resize(average * fade, (width, height), interpolation=cv2.INTER_LINEAR)
    if outside.ndim == 2:
        outside = outside[..., None]
    out = field * mask[..., None] + outside * (1.0 - mask[..., None])
    return out[..., 0] if squeeze else out


def invert_displacement(forward: np.ndarray, iterations: int = 3) -> np.ndarray:
    """The backward map of a smooth forward displacement: `v` with v(p) = u(p - v(p)), by fixed-point steps.

    A point q moves to q + u(q); the output pixel p is read from p - v(p). Returns the (H, W, 2) sampling
    positions p - v(p) as float32 maps for ``cv2.remap``.
    """
    forward = np.asarray(forward, np.float32)
    height, width = forward.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    v = forward.copy()
    for _ in range(iterations):
        v = cv2.remap(forward, xs - v[..., 0], ys - v[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.stack([xs - v[..., 0], ys - v[..., 1]], axis=-1)
