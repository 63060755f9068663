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

    def interpolate_at(self, values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat pixel indices (K,), (K, C) interpolated values) at the covered pixels where `where` ((height,
        width) bool) holds: a field only some pixels need costs only those pixels."""
        select = np.flatnonzero(np.asarray(where).reshape(-1)[self.pixels])
        flat = np.asarray(values, np.float32).reshape(len(values), -1)
        corners, weights = self._columns
        mixed = flat[corners[0][select]] * weights[0][select]
        mixed += flat[corners[1][select]] * weights[1][select]
        mixed += flat[corners[2][select]] * weights[2][select]
        return self.pixels[select], mixed

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
    # barycentric weights from each triangle's inverse linear map, applied to the offset from its first corner
    # (small numbers: single precision is exact enough, and a photo's million pixels cost half as much)
    inverse = _barycentric_maps(corners)
    origin = corners[:, 0].astype(np.float32)
    dx = xs.astype(np.float32) - origin[triangle, 0]
    dy = ys.astype(np.float32) - origin[triangle, 1]
    weights = np.empty((len(pixels), 3), np.float32)
    for k in (1, 2):
        row = inverse[:, k - 1].astype(np.float32)
        weights[:, k] = row[triangle, 0] * dx + row[triangle, 1] * dy
    weights[:, 0] = 1.0 - weights[:, 1] - weights[:, 2]
    # pixel snapping may draw a pixel a hair outside its triangle: extrapolate there (exact for affine fields),
    # but never far, which a sliver triangle's huge inverse would do
    far = np.flatnonzero(((weights < -1.0) | (weights > 2.0)).any(axis=1))
    if len(far):
        clipped = np.clip(weights[far], -1.0, 2.0)
        total = clipped.sum(1, keepdims=True)
        ok = np.abs(total) > 1e-6
        weights[far] = np.where(ok, clipped / np.where(ok, total, 1.0), 1.0 / 3.0)
    return MeshRaster(
        shape=(height, width),
        pixels=pixels.astype(np.int64),
        corners=tri[triangle].astype(np.int32),
        weights=weights,
        triangle=triangle.astype(np.int32),
    )


def _barycentric_maps(corners: np.ndarray) -> np.ndarray:
    """(T, 2, 2) linear maps from a pixel's offset to each triangle's first corner to its weights on the 2nd and
    3rd corner."""
    e1 = corners[:, 1] - corners[:, 0]
    e2 = corners[:, 2] - corners[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    inv = np.empty((len(corners), 2, 2))
    inv[:, 0, 0] = e2[:, 1] / det
    inv[:, 0, 1] = -e2[:, 0] / det
    inv[:, 1, 0] = -e1[:, 1] / det
    inv[:, 1, 1] = e1[:, 0] / det
    return inv


def extend_outward(field: np.ndarray, mask: np.ndarray, reach: float, *, coarse: int = 4) -> np.ndarray:
    """A field known where `mask` is 1, continued smoothly beyond it and faded to exactly 0 out of reach.

    Each outside pixel first takes the value at the nearest inside pixel, so the motion is continuous across
    the mask's edge: the face's edge takes its surroundings along (the shadow under a jaw that moves up, the
    neck below it, the hair at the temples) and no old outline is left behind. Farther out that value is
    smoothed (the creases of a nearest-value map are not a motion), and after a plateau of a quarter of
    `reach` it tapers to nothing, so the photo beyond is not touched at all (and an edit need not resample
    it). The taper is never steeper than a third of the motion per pixel: a chin pulled far up stretches the
    neck over a longer run rather than folding it (the map's Jacobian stays positive). Computed `coarse`
    times smaller than the grid: the extension is smooth by construction.
    """
    field = np.asarray(field, np.float32)
    squeeze = field.ndim == 2
    if squeeze:
        field = field[..., None]
    height, width = mask.shape
    channels = field.shape[2]
    small = (max(1, width // coarse), max(1, height // coarse))
    m = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    f = cv2.resize(field * mask[..., None], small, interpolation=cv2.INTER_AREA).reshape(small[1], small[0], channels)
    inside = m >= 0.5
    if not inside.any():
        return np.zeros_like(field[..., 0] if squeeze else field)
    f = f / np.maximum(m, 1e-6)[..., None]  # the inside's own values (the edge cells are part outside)
    distance, labels = cv2.distanceTransformWithLabels(
        (~inside).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    nearest = f.reshape(-1, channels)[np.flatnonzero(inside.ravel())][labels - 1]  # labels: inside cells in order
    distance = distance * coarse  # grid pixels
    sigma = max(reach / coarse / 4.0, 0.5)
    smoothed = cv2.GaussianBlur(nearest, (0, 0), sigma).reshape(nearest.shape)
    settle = np.clip(distance / (2.0 * sigma * coarse), 0.0, 1.0)[..., None]  # nearest at the edge, smooth beyond
    extended = nearest * (1.0 - settle) + smoothed * settle
    peak = float(np.sqrt((f[inside] ** 2).sum(axis=-1)).max())
    plateau = 0.25 * reach
    run = max(reach - plateau, 3.0 * peak, 1e-6)  # a smoothstep's steepest slope is 1.5 / run
    t = np.clip((distance - plateau) / run, 0.0, 1.0)
    fade = (1.0 - t * t * (3.0 - 2.0 * t))[..., None]  # smoothstep down
    outside = cv2.resize(extended * fade, (width, height), interpolation=cv2.INTER_LINEAR)
    outside = outside.reshape(height, width, channels)
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


def integrate_flow(velocity: np.ndarray, *, step: float = 0.5, coarse: int = 2) -> np.ndarray:
    """The displacement of the flow of a stationary velocity field after unit time (scaling and squaring).

    The field is divided by 2^k until no step moves more than `step` pixels, and the small displacement is
    then composed with itself k times. Each small step is a near-identity map whose Jacobian stays positive,
    so the result is smooth and invertible however large or compressive the field (the flow of ``-velocity``
    is its inverse), unlike the field added to the grid as it is, which folds where it compresses by more
    than its own length. Computed `coarse` times smaller than the grid (the field is smooth) and enlarged.
    """
    velocity = np.asarray(velocity, np.float32)
    height, width = velocity.shape[:2]
    small_w, small_h = max(1, width // coarse), max(1, height // coarse)
    sx, sy = small_w / width, small_h / height
    field = cv2.resize(velocity, (small_w, small_h), interpolation=cv2.INTER_AREA).reshape(small_h, small_w, 2)
    field = field * np.array([sx, sy], np.float32)
    peak = float(np.sqrt((field**2).sum(axis=-1)).max()) if field.size else 0.0
    squarings = int(np.clip(np.ceil(np.log2(max(peak / step, 1.0))), 0, 12)) + 1
    field = field * np.float32(0.5**squarings)
    xs, ys = np.meshgrid(np.arange(small_w, dtype=np.float32), np.arange(small_h, dtype=np.float32))
    for _ in range(squarings):
        field = field + cv2.remap(
            field, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    if (small_w, small_h) == (width, height):
        return field
    # pixel centres: small pixel u covers grid (u + 0.5) / s - 0.5
    big = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, 2)
    return big * np.array([1.0 / sx, 1.0 / sy], np.float32)


def flow_points(velocity: np.ndarray, points: np.ndarray, steps: int = 8) -> np.ndarray:
    """(n, 2) where the flow of `velocity` (the field :func:`integrate_flow` integrates) carries (n, 2) grid
    `points` after unit time, less where they started (midpoint steps along the field)."""
    start = np.asarray(points, np.float32)[:, :2]
    position = start.copy()
    h = np.float32(1.0 / steps)

    def at(p: np.ndarray) -> np.ndarray:
        return cv2.remap(velocity, p[None, :, 0], p[None, :, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]

    for _ in range(steps):
        position = position + h * at(position + 0.5 * h * at(position))
    return (position - start).astype(np.float64)
