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
    """A mesh drawn on a (height, width) grid: per covered pixel its triangle (and, when asked, its vertex ids and
    barycentric weights).

    A per-vertex field is affine on each triangle, so it is evaluated as each pixel's triangle's plane (one
    gather a pixel); only pixels of triangles thin enough for a snapped pixel to lie far outside them in
    barycentric terms take clipped barycentric weights (:attr:`weights`).
    """

    shape: tuple[int, int]
    pixels: np.ndarray  # (P,) int64 flat indices of the covered pixels
    triangle: np.ndarray  # (P,) int32 the triangle covering each pixel (an index into `triangles`)
    triangles: np.ndarray  # (T, 3) int64 vertex ids of the drawn mesh's triangles
    corner_xy: np.ndarray  # (T, 3, 2) float64 their corners, in the frame of `xy`
    xy: np.ndarray  # (2, P) float32 each covered pixel's x and y in the frame the mesh was drawn in (rows: contiguous)

    @property
    def mask(self) -> np.ndarray:
        """(height, width) float32: 1 where the mesh covers the grid."""
        out = np.zeros(self.shape[0] * self.shape[1], np.float32)
        out[self.pixels] = 1.0
        return out.reshape(self.shape)

    @functools.cached_property
    def corners(self) -> np.ndarray:
        """(P, 3) int32 vertex ids of the triangle covering each pixel."""
        return self.triangles[self.triangle].astype(np.int32)

    @functools.cached_property
    def weights(self) -> np.ndarray:
        """(P, 3) float32 barycentric weights (sum 1), clipped near sliver triangles."""
        return _barycentric_weights(self.corner_xy, self.triangle, self.xy)

    def interpolate(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(height, width, C) per-pixel interpolation of (V, C) per-vertex values; `fill` off the mesh."""
        values = np.asarray(values, np.float32)
        channels = values.shape[1] if values.ndim == 2 else 1
        out = np.full((*self.shape, channels), fill, np.float32)
        return self.interpolate_into(out, values)

    def interpolate_into(self, out: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Write the interpolation of (V, C) per-vertex values into the pixels the mesh covers of `out`
        ((height, width, C) float32, changed in place and returned); the other pixels keep their values."""
        flat = np.asarray(values, np.float32).reshape(len(values), -1)
        out.reshape(-1, flat.shape[1])[self.pixels] = self._evaluate(flat, None)
        return out

    def interpolate_at(self, values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat pixel indices (K,), (K, C) interpolated values) at the covered pixels where `where` ((height,
        width) bool) holds: a field only some pixels need costs only those pixels."""
        select = np.flatnonzero(np.asarray(where).reshape(-1)[self.pixels])
        flat = np.asarray(values, np.float32).reshape(len(values), -1)
        return self.pixels[select], self._evaluate(flat, select)

    def subsample(self, step: int, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> MeshRaster:
        """The raster on a grid every `step` pixels of this one, sample (i, j) at pixel (ox + step j, oy + step i)
        for `origin` (ox, oy); samples off this grid are not covered. The same triangles, without drawing the
        mesh again."""
        height, width = self.shape
        xs = origin[0] + step * np.arange(shape[1])
        ys = origin[1] + step * np.arange(shape[0])
        cols, rows = np.flatnonzero((xs >= 0) & (xs < width)), np.flatnonzero((ys >= 0) & (ys < height))
        index = np.full(height * width, -1, np.int64)
        index[self.pixels] = np.arange(len(self.pixels))
        at = index[(ys[rows][:, None] * width + xs[cols][None, :]).reshape(-1)]
        coarse = (rows[:, None] * shape[1] + cols[None, :]).reshape(-1)
        found = at >= 0
        at = at[found]
        return MeshRaster(
            shape=shape,
            pixels=coarse[found],
            triangle=self.triangle[at],
            triangles=self.triangles,
            corner_xy=self.corner_xy,
            xy=self.xy[:, at],
        )

    def _evaluate(self, flat: np.ndarray, select: np.ndarray | None) -> np.ndarray:
        """(K, C) the per-vertex values (V, C) at the covered pixels `select` (all when None)."""
        triangle = self.triangle if select is None else self.triangle[select]
        x, y = (self.xy[0], self.xy[1]) if select is None else (self.xy[0][select], self.xy[1][select])
        planes = _planes(self.corner_xy, self._inverse, flat[self.triangles])  # (3, C, T): x, y, constant
        # one channel at a time on contiguous rows (numpy's loops over a last axis of 2 or 3 are slow), each
        # coefficient gathered with np.take (several times faster than fancy indexing)
        out = np.empty((len(triangle), flat.shape[1]), np.float32)
        for channel in range(flat.shape[1]):
            column = np.take(planes[0, channel], triangle) * x
            column += np.take(planes[1, channel], triangle) * y
            column += np.take(planes[2, channel], triangle)
            out[:, channel] = column
        thin = self._thin[triangle]
        if thin.any():  # a sliver's plane extrapolates far at a snapped pixel: clipped weights there
            rows = np.flatnonzero(thin)
            weights = _barycentric_weights(self.corner_xy, triangle[rows], np.stack([x[rows], y[rows]]))
            corners = self.triangles[triangle[rows]]
            out[rows] = np.einsum("pk,pkc->pc", weights, flat[corners])
        return out

    @functools.cached_property
    def _inverse(self) -> np.ndarray:
        return _barycentric_maps(self.corner_xy)

    @functools.cached_property
    def _thin(self) -> np.ndarray:
        """(T,) bool: triangles whose barycentric weights change by more than half a unit a pixel."""
        return np.abs(self._inverse).reshape(len(self.corner_xy), -1).max(axis=1) > 0.5


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
    for t in order[drawn[order]]:
        cv2.fillConvexPoly(ids, fixed[t], int(t) + 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    flat = ids.reshape(-1)
    pixels = np.flatnonzero(flat)
    ys, xs = np.divmod(pixels, width)
    return MeshRaster(
        shape=(height, width),
        pixels=pixels.astype(np.int64),
        triangle=(flat[pixels] - 1).astype(np.int32),
        triangles=tri,
        corner_xy=corners,
        xy=np.stack([xs, ys]).astype(np.float32),
    )


def _planes(corners: np.ndarray, inverse: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(3, C, T) float32 per triangle the plane through its corners' (T, 3, C) `values`, value = a x + b y + c, as
    rows of a, b and c per channel; `inverse`: the triangles' :func:`_barycentric_maps`."""
    d1 = values[:, 1] - values[:, 0]
    d2 = values[:, 2] - values[:, 0]
    a = inverse[:, 0, 0:1] * d1 + inverse[:, 1, 0:1] * d2
    b = inverse[:, 0, 1:2] * d1 + inverse[:, 1, 1:2] * d2
    c = values[:, 0] - a * corners[:, 0, 0:1] - b * corners[:, 0, 1:2]
    return np.ascontiguousarray(np.stack([a, b, c]).transpose(0, 2, 1), dtype=np.float32)


def _barycentric_weights(corners: np.ndarray, triangle: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(P, 3) float32 barycentric weights of pixels at `xy` (2, P) in their triangles; a pixel snapped a hair outside
    its triangle extrapolates (exact for affine fields), but never far, which a sliver's huge inverse would do."""
    # from each triangle's inverse linear map, applied to the offset from its first corner (small numbers: single
    # precision is exact enough)
    inverse = _barycentric_maps(corners)
    origin = corners[:, 0].astype(np.float32)
    dx = xy[0] - origin[triangle, 0]
    dy = xy[1] - origin[triangle, 1]
    weights = np.empty((len(triangle), 3), np.float32)
    for k in (1, 2):
        row = inverse[:, k - 1].astype(np.float32)
        weights[:, k] = row[triangle, 0] * dx + row[triangle, 1] * dy
    weights[:, 0] = 1.0 - weights[:, 1] - weights[:, 2]
    far = np.flatnonzero(((weights < -1.0) | (weights > 2.0)).any(axis=1))
    if len(far):
        clipped = np.clip(weights[far], -1.0, 2.0)
        total = clipped.sum(1, keepdims=True)
        ok = np.abs(total) > 1e-6
        weights[far] = np.where(ok, clipped / np.where(ok, total, 1.0), 1.0 / 3.0)
    return weights


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
