"""Classical landmark-driven face warp: move a photo's face to new 3D landmarks without any learned model.

This is the untrained fallback of reenactment (``ganime_age.editing.reenactment``) and a baseline for the
learned :class:`ganime_age.models.reenact.Reenactor`:

- inside the face, a piecewise-affine warp over MediaPipe's canonical mesh triangles (898 of them),
  rasterised back to front by the target depth with back-facing triangles culled, so a turned head hides
  its far side instead of folding over it;
- outside the face, a thin-plate spline from the face outline to a fixed frame around it, so hair, ears
  and neck follow the face smoothly and the rest of the photo stays exactly as it was;
- a mouth that opens wider than the source's gets a dark mouth-cavity shade (a warp can only stretch the
  lips' pixels; teeth and tongue come from the ageing model's AU path).

Everything is one backward map per output pixel and one ``cv2.remap``, on a region around the face.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ganime_age.face_model import CanonicalFace, canonical_face
from ganime_age.faces import mesh as face_mesh

_OVAL = [a for a, _ in face_mesh.FACE_OVAL]  # ordered around the face
_INNER_LIPS = {78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415}
MOUTH_CAVITY_RGB = np.array([40.0, 18.0, 20.0])


def tps_fit(control_src: np.ndarray, control_dst: np.ndarray, regularisation: float = 1e-3) -> np.ndarray:
    """Thin-plate-spline coefficients mapping 2D `control_src` points onto `control_dst`; (N+3, 2)."""
    p = np.asarray(control_src, np.float64)
    q = np.asarray(control_dst, np.float64)
    n = len(p)
    k = _tps_kernel(p, p) + regularisation * np.eye(n)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = k
    system[:n, n] = 1.0
    system[:n, n + 1 :] = p
    system[n, :n] = 1.0
    system[n + 1 :, :n] = p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = q
    return np.linalg.solve(system, rhs)


def tps_apply(coefficients: np.ndarray, control_src: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Evaluate a fitted thin-plate spline at (M, 2) points."""
    p = np.asarray(control_src, np.float64)
    x = np.asarray(points, np.float64)
    n = len(p)
    return _tps_kernel(x, p) @ coefficients[:n] + coefficients[n] + x @ coefficients[n + 1 :]


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return 0.5 * r2 * np.log(np.maximum(r2, 1e-12))


def _triangle_affines(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affine maps taking each destination triangle (T, 3, 2) onto its source triangle."""
    ones = np.ones((len(dst), 3, 1))
    a = np.concatenate([dst, ones], axis=2)  # (T, 3, 3) rows [x, y, 1]
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-6
    out = np.zeros((len(dst), 2, 3))
    out[ok] = np.transpose(np.linalg.solve(a[ok], src[ok]), (0, 2, 1))
    return out


def warp_face(
    rgb: np.ndarray,
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    *,
    face: CanonicalFace | None = None,
    margin: float = 0.5,
    grid_step: int = 4,
    mouth_shading: bool = True,
) -> np.ndarray:
    """The photo with its face moved from `source_landmarks` to `target_landmarks` ((478|468, 3) pixels).

    `margin` is the frame around the face (a fraction of the face size) over which the surroundings
    bend; beyond it the photo is untouched. Returns a new uint8 image of the same size.
    """
    image = np.asarray(rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"warp_face expects a uint8 RGB image, got {image.dtype} {image.shape}")
    face = face or canonical_face()
    src = np.asarray(source_landmarks, np.float64)
    dst = np.asarray(target_landmarks, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < len(face.vertices):
        raise ValueError(f"need matching (478, 3) landmark sets, got {src.shape} and {dst.shape}")
    height, width = image.shape[:2]
    both = np.concatenate([src[:, :2], dst[:, :2]])
    size = float(max(np.ptp(both[:, 0]), np.ptp(both[:, 1]), 4.0))
    x0, y0 = np.floor(both.min(0) - margin * size).astype(int)
    x1, y1 = np.ceil(both.max(0) + margin * size).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image.copy()
    offset = np.array([x0, y0], np.float64)
    src2, dst2 = src[:, :2] - offset, dst[:, :2] - offset
    roi_w, roi_h = x1 - x0, y1 - y0

    # 1. outside the face: TPS from the target outline to the source outline, fixed at the ROI frame.
    frame = _frame_points(roi_w, roi_h, per_side=6)
    # only frame points clearly outside both faces, so the spline never has to fold
    frame = frame[_outside(frame, src2[_OVAL], 0.1 * size) & _outside(frame, dst2[_OVAL], 0.1 * size)]
    control_dst = np.concatenate([dst2[_OVAL], frame])
    control_src = np.concatenate([src2[_OVAL], frame])
    coefficients = tps_fit(control_dst, control_src, regularisation=1e-6 * size**2)
    map_xy = _dense_map(lambda points: tps_apply(coefficients, control_dst, points), roi_w, roi_h, grid_step)

    # 2. inside the face: piecewise affine, drawn back to front, back faces culled.
    triangles = face.triangles
    tri_dst = dst2[triangles]
    tri_src = src2[triangles]
    canonical = face.vertices[triangles][:, :, :2]
    facing = np.sign(_signed_area(canonical)) == np.sign(_signed_area(tri_dst))
    order = np.argsort(-dst[triangles, 2].mean(1))  # far (large z) first
    ids = np.zeros((roi_h, roi_w), np.int32)
    fixed = 4  # sub-pixel bits for cv2.fillConvexPoly
    for t in order:
        if facing[t]:
            cv2.fillConvexPoly(
                ids, np.round(tri_dst[t] * (1 << fixed)).astype(np.int32), int(t) + 1, lineType=cv2.LINE_8, shift=fixed
            )
    affines = _triangle_affines(tri_dst, tri_src)
    inside = ids > 0
    ys, xs = np.nonzero(inside)
    chosen = affines[ids[inside] - 1]
    pixel = np.stack([xs, ys, np.ones_like(xs)], -1).astype(np.float64)
    map_xy[inside] = np.einsum("nij,nj->ni", chosen, pixel).astype(np.float32)

    roi = np.ascontiguousarray(image[y0:y1, x0:x1])
    warped = cv2.remap(roi, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if mouth_shading:
        warped = _shade_mouth(warped, ids, triangles, src2, dst2)
    out = image.copy()
    out[y0:y1, x0:x1] = warped
    return out


def _dense_map(function: Callable[[np.ndarray], np.ndarray], width: int, height: int, step: int) -> np.ndarray:
    """(height, width, 2) float32 values of a smooth map, evaluated on a coarse grid and bilinearly upsampled.

    Coarse samples sit at cell centres one cell beyond each side, so cv2.resize's pixel-centre convention
    lands every output pixel exactly on its own coordinate, borders included.
    """
    step = max(int(step), 1)
    offset = (step - 1) / 2.0 - step
    xs = np.arange(width // step + 3) * step + offset
    ys = np.arange(height // step + 3) * step + offset
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    coarse = function(grid).reshape(len(ys), len(xs), 2).astype(np.float32)
    dense = cv2.resize(coarse, (len(xs) * step, len(ys) * step), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(dense[step : step + height, step : step + width])


def _signed_area(tri: np.ndarray) -> np.ndarray:
    a = tri[:, 1] - tri[:, 0]
    b = tri[:, 2] - tri[:, 0]
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


def _frame_points(width: int, height: int, per_side: int) -> np.ndarray:
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])


def _outside(points: np.ndarray, polygon: np.ndarray, distance: float) -> np.ndarray:
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) < -distance for x, y in points])


def _shade_mouth(
    warped: np.ndarray, ids: np.ndarray, triangles: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> np.ndarray:
    """Darken the opened part of the mouth: pixels of the lip-gap triangles, by how much the gap grew."""
    mouth = np.array([all(int(v) in _INNER_LIPS for v in tri) for tri in triangles])
    area_src = np.abs(_signed_area(src[triangles[mouth]])).sum()
    area_dst = np.abs(_signed_area(dst[triangles[mouth]])).sum()
    if area_dst <= 1e-6 or area_dst <= area_src * 1.2:
        return warped
    strength = float(np.clip(1.0 - area_src / area_dst, 0.0, 0.9))
    mask = np.isin(ids - 1, np.nonzero(mouth)[0]) & (ids > 0)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=1.0)[..., None] * strength
    return np.clip(warped * (1.0 - soft) + MOUTH_CAVITY_RGB * soft, 0, 255).astype(np.uint8)
