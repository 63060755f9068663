"""Face alignment to one template, and pasting edited crops back into the full-resolution photo.

Every model sees faces aligned the same way: a 5-point similarity transform (rotation, uniform scale,
translation) maps the YuNet points onto :data:`ALIGN_TEMPLATE` scaled to the crop size. The template
reproduces the tight crop style of the UTKFace "aligned & cropped" faces (and GANimation's 128x128
crops), so the models train and run on the same framing at any resolution (128, 256, ...).

Coordinates: matrices act on cv2 pixel coordinates (pixel centres at integers). The template is in
*continuous* normalised coordinates (0 = left/top edge, 1 = right/bottom edge), i.e. a template value
t lands on pixel coordinate ``t * size - 0.5``; this makes it resolution-independent and symmetric
under mirroring.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

# Measured, not guessed: YuNet was run on 1,000 randomly chosen UTKFace 200x200 "aligned & cropped"
# faces (numpy default_rng(123), all 1,000 detected, one face each); the 5 points were converted to
# continuous coordinates ((p + 0.5) / 200) and averaged. Raw means (right eye, left eye, nose,
# right mouth corner, left mouth corner; std ~0.02-0.03):
#   (0.2947, 0.2891) (0.6855, 0.2947) (0.4778, 0.5025) (0.3193, 0.6835) (0.6459, 0.6888)
# UTKFace faces sit ~0.02 left of centre; the template below is the mean made mirror-symmetric
# (averaged with its mirror image, left/right points swapped), so that a horizontally flipped aligned
# crop is still aligned (flip augmentation, mirrored embeddings).
ALIGN_TEMPLATE: np.ndarray = np.array(
    [
        [0.3046, 0.2919],  # right eye (image left)
        [0.6954, 0.2919],  # left eye (image right)
        [0.5000, 0.5025],  # nose tip
        [0.3367, 0.6862],  # right mouth corner
        [0.6633, 0.6862],  # left mouth corner
    ],
    dtype=np.float64,
)
ALIGN_TEMPLATE.setflags(write=False)

_MAX_SUPERSAMPLE = 8


@dataclass
class AlignedFace:
    """An aligned face crop and the transform that made it."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    matrix: np.ndarray  # (2, 3) float64: full-image pixel coords -> aligned-crop pixel coords
    size: int


def template_points(size: int) -> np.ndarray:
    """ALIGN_TEMPLATE in cv2 pixel coordinates of a size x size crop."""
    return ALIGN_TEMPLATE * float(size) - 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991, no reflection) mapping points `src` onto `dst`; (2, 3)."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError("the source points are all at one place; cannot estimate a transform")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum() / src_var)
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    matrix = np.asarray(matrix, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix (e.g. aligned crop -> full image)."""
    matrix = np.asarray(matrix, np.float64)
    linear = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear, (-linear @ matrix[:, 2])[:, None]], axis=1)


def affine_scale(matrix: np.ndarray) -> float:
    """Uniform scale factor of a similarity matrix (output pixels per input pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def _warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    """warpAffine that anti-aliases strong downscaling: warp at k x the size, then area-average down."""
    scale = affine_scale(matrix)
    factor = int(min(_MAX_SUPERSAMPLE, np.floor(1.0 / scale))) if scale < 0.75 else 1
    if factor <= 1:
        return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=border)
    # Pixel centres: big-grid coordinate u maps to small-grid coordinate (u + 0.5) / factor - 0.5.
    big = np.asarray(matrix, np.float64) * factor
    big[:, 2] += (factor - 1) / 2.0
    warped = cv2.warpAffine(image, big, (size[0] * factor, size[1] * factor), flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.resize(warped, size, interpolation=cv2.INTER_AREA)


def align_face(rgb: np.ndarray, points5: np.ndarray, size: int = 128) -> AlignedFace:
    """Warp the face with 5 points (YuNet order) to a size x size crop in the ALIGN_TEMPLATE framing.

    Parts of the crop outside the photo are filled by reflecting the photo at its edge, which looks
    more natural to the models than black corners.
    """
    size = int(size)
    if size < 8:
        raise ValueError(f"aligned crop size must be at least 8 pixels, got {size}")
    points5 = np.asarray(points5, np.float64).reshape(5, 2)
    matrix = similarity_transform(points5, template_points(size))
    image = _warp(rgb, matrix, (size, size), cv2.BORDER_REFLECT_101)
    return AlignedFace(image=np.ascontiguousarray(image, dtype=np.uint8), matrix=matrix, size=size)


@functools.lru_cache(maxsize=16)
def _feather_mask(size: int, feather: float) -> np.ndarray:
    """(size, size) float32 mask: 0 at the crop border, smoothly rising to 1 over `feather * size` pixels."""
    ramp = max(feather * size, 1e-6)
    coords = np.arange(size, dtype=np.float32) + 0.5
    edge = np.minimum(coords, size - coords)  # distance of each pixel centre to the nearest border
    if feather <= 0:
        profile = np.ones(size, np.float32)
    else:
        t = np.clip(edge / ramp, 0.0, 1.0)
        profile = t * t * (3.0 - 2.0 * t)  # smoothstep
    mask = np.minimum(profile[:, None], profile[None, :]).astype(np.float32)
    mask.setflags(write=False)
    return mask


def _crop_footprint(
    shape: tuple[int, ...], size: int, matrix: np.ndarray
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The photo box an aligned crop covers (x0, y0, x1, y1) and the crop -> box affine, or None off-photo."""
    height, width = shape[:2]
    inverse = invert_affine(matrix)
    corners = transform_points(
        np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]]), inverse
    )
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = inverse.copy()
    local[:, 2] -= (x0, y0)  # crop -> region-of-interest coordinates
    return (int(x0), int(y0), int(x1), int(y1)), local


def _feathered_footprint(size: int, feather: float, local: np.ndarray, roi: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(
        _feather_mask(size, float(feather)),
        local,
        roi,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )[..., None]


def paste_back(rgb_full: np.ndarray, edited: np.ndarray, matrix: np.ndarray, *, feather: float = 0.1) -> np.ndarray:
    """Blend an edited aligned crop back into the full-resolution photo; returns a new uint8 image.

    The crop is warped with the inverse of `matrix` (from :func:`align_face`) and blended through a
    feathered mask that is 0 at the crop border and 1 inside, so no seam shows. Only the region the
    crop covers is touched, so this stays cheap on large photos.
    """
    rgb_full = np.asarray(rgb_full)
    edited = np.asarray(edited)
    if edited.ndim != 3 or edited.shape[0] != edited.shape[1] or edited.shape[2] != 3:
        raise ValueError(f"edited crop must be (S, S, 3); got {edited.shape}")
    if not 0.0 <= feather <= 0.5:
        raise ValueError(f"feather must be in [0, 0.5], got {feather}")
    size = edited.shape[0]
    out = rgb_full.copy()
    footprint = _crop_footprint(rgb_full.shape, size, matrix)
    if footprint is None:
        return out
    (x0, y0, x1, y1), local = footprint
    roi = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(edited, local, roi, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    mask = _feathered_footprint(size, feather, local, roi)
    region = out[y0:y1, x0:x1].astype(np.float32)
    blended = region + mask * (warped.astype(np.float32) - region)
    out[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def add_crop_change(
    rgb_full: np.ndarray, change: np.ndarray, matrix: np.ndarray, *, feather: float = 0.1
) -> np.ndarray:
    """Add a change computed on an aligned crop ((S, S, 3) float, in 0..255 levels) to the full photo.

    Why a change and not an image: a refiner runs at 128 px, the photo may be 12 MP. Upsampling its
    *difference* from the crop it was given and adding that keeps every pixel of detail the photo has,
    where pasting its image back would replace the face by a 128 px copy.
    """
    change = np.asarray(change, np.float32)
    if change.ndim != 3 or change.shape[0] != change.shape[1] or change.shape[2] != 3:
        raise ValueError(f"the change must be (S, S, 3); got {change.shape}")
    size = change.shape[0]
    out = np.asarray(rgb_full).copy()
    footprint = _crop_footprint(out.shape, size, matrix)
    if footprint is None:
        return out
    (x0, y0, x1, y1), local = footprint
    roi = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(change, local, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = _feathered_footprint(size, feather, local, roi)
    region = out[y0:y1, x0:x1].astype(np.float32) + mask * warped
    out[y0:y1, x0:x1] = np.clip(np.round(region), 0, 255).astype(np.uint8)
    return out
