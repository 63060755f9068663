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


# -- dlib's face chips (Cydral's age network reads them) ------------------------------------------------------
# dlib's 5-point face chip (``get_face_chip_details(shape, size, padding)`` + ``extract_image_chip``), made here
# from MediaPipe's landmarks so that no dlib is needed. Every number below was measured from dlib 20.0.1 (dlib-bin)
# by ``python -m training.tools.measure_dlib_chip template|pyramid|landmarks``:
#
# - The transform: dlib fits a least-squares similarity S (scale s, errors counted in the photo) from the template
#   placed at ``(padding + m) / (1 + 2 padding) * size`` to the 5 points, and makes a chip rectangle centred on
#   S(size/2, size/2), turned by S's angle, whose drectangle width (right - left + 1) is s * size; the chip puts
#   the rectangle's corners on the centres of its first and last pixels, so a chip pixel is (s * size - 1) /
#   (size - 1) photo pixels. (cos, sin) * width and the centre are then exactly linear in the 10 point
#   coordinates (to 1e-15 on 200 random integer point sets): the template was read off that linear map's
#   pseudo-inverse, and came out the same to 10 digits at chip size 64 / padding 0.2, 200 / 0.25 and 150 / 0.
#   The points are, in dlib's order, the image-right eye's outer and inner corners, the image-left eye's outer
#   and inner corners, and the base of the nose.
# - The sampling: bilinear; when the chip rectangle is large, dlib first halves the photo with ``pyramid_down<2>``
#   (a [1 4 6 4 1]/16 filter, output pixel o at input pixel 2o + 2, values truncated to integers) for as long as
#   the halved rectangle's area, (width/2 + 1)^2, stays above size^2. Chips of images whose values are their own
#   coordinates show that each halving moves what a chip pixel sees by -0.5 px in x and +0.5 px in y of the level
#   above (dlib's ``point_down`` assumes x/2 - 1.25, y/2 - 0.75; its filter puts x/2 - 1): -0.5/+0.5, -1.5/+1.5,
#   -3.5/+3.5 photo pixels after 1, 2, 3 halvings. dlib first cuts the photo to the chip corners' bounding box,
#   rounded and grown by 2^(L+2) - 2 pixels for L halvings (where the cut starts decides which pixels a halving
#   keeps), and leaves a chip pixel black unless the four pixels around its sample are all inside. All of it is
#   reproduced here: given dlib's own 5 points, the chips equal dlib's to 0.001-0.003 grey levels on average (60
#   UTKFace photos, 40 CFEE originals scaled 0.25-1.4x: 0 to 3 halvings) and Cydral's network reads them within
#   0.005 years on average (0.05 at most).
DLIB_FACE_TEMPLATE: np.ndarray = np.array(
    [
        [0.8595674596, 0.2134981538],  # image-right eye, outer corner (the subject's left eye)
        [0.6460604764, 0.2289674388],  # image-right eye, inner corner
        [0.1205750621, 0.2137274527],  # image-left eye, outer corner (the subject's right eye)
        [0.3340850614, 0.2290642403],  # image-left eye, inner corner
        [0.4901123136, 0.6277975316],  # base of the nose
    ],
    dtype=np.float64,
)
DLIB_FACE_TEMPLATE.setflags(write=False)

# dlib's 5 points from MediaPipe's: each a blend of two MediaPipe points, one weight for a point and its mirror
# image, fitted by least squares on 393 UTKFace training-split faces and measured on 393 others (dlib's HOG
# detector and 5-point predictor vs the package's YuNet + MediaPipe; ``python -m training.tools.measure_dlib_chip
# landmarks``). Held-out mean distance to dlib's point, in eye distances (~75 px on UTKFace): outer corners
# 0.028-0.029 (MediaPipe's corner alone, 33 / 263: 0.031-0.033), inner corners 0.023-0.025 (133 / 362 alone:
# 0.032-0.034), nose base 0.030 (subnasale 2 alone: 0.045, it sits 0.035 eye distances above dlib's point);
# mean offsets below 0.004 eye distances. What remains is the two predictors' disagreement face by face.
DLIB_POINTS_FROM_LANDMARKS: tuple[dict[int, float], ...] = (
    {263: 0.85, 339: 0.15},  # image-right eye, outer corner
    {362: 0.70, 381: 0.30},  # image-right eye, inner corner
    {33: 0.85, 110: 0.15},  # image-left eye, outer corner
    {133: 0.70, 154: 0.30},  # image-left eye, inner corner
    {2: 0.55, 164: 0.45},  # base of the nose: between the subnasale and the upper lip's top
)
"""dlib's 5 points (its order) as affine combinations (weights summing to one) of MediaPipe's 478 landmarks."""

_PYRAMID_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def dlib_points_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) photo pixels: dlib's 5 points (its order) from MediaPipe's (478, 2 or 3) landmarks."""
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 2 or points.shape[0] < 478 or points.shape[1] < 2:
        raise ValueError(f"expected MediaPipe's (478, 2|3) landmarks, got {points.shape}")
    return np.array([sum(w * points[i, :2] for i, w in mix.items()) for mix in DLIB_POINTS_FROM_LANDMARKS])


def dlib_chip_matrix(points5: np.ndarray, size: int = 64, padding: float = 0.2) -> np.ndarray:
    """(2, 3) photo pixels -> chip pixels of dlib's chip around its 5 points (dlib's order)."""
    if int(size) < 8 or not 0.0 <= float(padding) <= 4.0:
        raise ValueError(f"a dlib chip needs a size of at least 8 and a padding in [0, 4], got {size}, {padding}")
    size = int(size)
    template = (float(padding) + DLIB_FACE_TEMPLATE) / (1.0 + 2.0 * float(padding)) * size
    fit = similarity_transform(template, np.asarray(points5, np.float64).reshape(5, 2))  # template -> photo
    scale = affine_scale(fit)
    rotation = fit[:, :2] / scale
    centre = fit[:, :2] @ np.array([size / 2.0, size / 2.0]) + fit[:, 2]
    step = max(scale * size - 1.0, 1e-3) / (size - 1)  # photo pixels per chip pixel
    to_photo = np.concatenate([rotation * step, (centre - rotation @ np.full(2, (size - 1) / 2.0) * step)[:, None]], 1)
    return invert_affine(to_photo)


def _pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>``: a [1 4 6 4 1]/16 blur, then every other pixel from the third on (valid only)."""
    blurred = cv2.sepFilter2D(image, -1, _PYRAMID_KERNEL, _PYRAMID_KERNEL, borderType=cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    return np.ascontiguousarray(blurred[2 : height - 2 : 2, 2 : width - 2 : 2])


def extract_dlib_chip(rgb: np.ndarray, points5: np.ndarray, size: int = 64, padding: float = 0.2) -> AlignedFace:
    """dlib's face chip (``extract_image_chip(img, get_face_chip_details(shape, size, padding))``) of a face with
    dlib's 5 points, made without dlib: its transform, its pyramid, its sampling and its truncation to integers
    (black where the chip leaves the photo). On photos where dlib is given the same integer points the two chips
    are equal to within a grey level."""
    size = int(size)
    matrix = dlib_chip_matrix(points5, size, padding)
    to_photo = invert_affine(matrix)
    levels, span = 0, affine_scale(to_photo) * (size - 1)
    while (span / 2 ** (levels + 1) + 1.0) ** 2 > size * size and levels < 16:
        levels += 1
    height, width = rgb.shape[:2]
    edge = float(size - 1)
    corners = transform_points(np.array([[0.0, 0.0], [edge, 0.0], [0.0, edge], [edge, edge]]), to_photo)
    # dlib's crop: the chip's corners, rounded, grown by 2 pixels, 6 with one halving, 14 with two, ...; where it
    # starts decides which pixels the halvings keep, where it ends what is black
    grow = 2 ** (levels + 2) - 2
    x0, y0 = np.maximum(np.floor(corners.min(0) + 0.5).astype(int) - grow, 0)
    x1, y1 = np.minimum(np.floor(corners.max(0) + 0.5).astype(int) + grow + 1, (width, height))
    sample = to_photo.copy()
    sample[:, 2] -= (x0, y0)
    region = np.asarray(rgb[y0:y1, x0:x1], np.float32) if x1 - x0 >= 2 and y1 - y0 >= 2 else None
    for _ in range(levels):
        if region is None or min(region.shape[:2]) < 5:
            region = None
            break
        region = np.floor(_pyramid_down(region))
        sample = sample / 2.0
        sample[:, 2] += (-1.25, -0.75)  # dlib's point_down (its filter sits at x/2 - 1: the content moves)
    if region is None or min(region.shape[:2]) < 2:
        return AlignedFace(image=np.zeros((size, size, 3), np.uint8), matrix=matrix, size=size)
    warp = {"flags": cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    chip = cv2.warpAffine(region, sample, (size, size), **warp)
    # dlib leaves a chip pixel black unless all four photo pixels around its sample lie inside the photo
    inside = cv2.warpAffine(np.ones(region.shape[:2], np.float32), sample, (size, size), **warp) > 0.999
    image = np.where(inside[..., None], np.floor(chip + 1e-3), 0.0)
    return AlignedFace(image=np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8)), matrix=matrix, size=size)


def dlib_face_chip(rgb: np.ndarray, landmarks: np.ndarray, size: int = 64, padding: float = 0.2) -> AlignedFace:
    """The chip Cydral's age network reads (dlib's 5-point chip, 64 px, padding 0.2 by default), from MediaPipe's
    478 landmarks (``face.landmarks.landmarks``, photo pixels) of the face in the RGB uint8 photo `rgb`."""
    return extract_dlib_chip(rgb, dlib_points_from_landmarks(landmarks), size, padding)


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


PORTRAIT_SPAN = (2.2, 2.75)  # face boxes: a portrait's width and height around the face (hair above, neck below)
PORTRAIT_MAX_SIDE = 1024  # pixels: a portrait larger than this is shrunk (a 50 MP photo's face would be 4,000)


def portrait(rgb: np.ndarray, box: tuple[float, float, float, float], max_side: int = PORTRAIT_MAX_SIDE) -> np.ndarray:
    """A head-and-shoulders crop of the photo at its own resolution around the face box (x, y, w, h): 4:5, the
    face a little above the centre, shifted (never squeezed) to stay inside the photo, shrunk only past
    `max_side`. What a strip of the same face at several ages shows, each as sharp as the photo."""
    height, width = rgb.shape[:2]
    x, y, w, h = (float(v) for v in box)
    side = max(w, h)
    fit = min(1.0, width / (PORTRAIT_SPAN[0] * side), height / (PORTRAIT_SPAN[1] * side))  # keep 4:5 inside
    crop_w = min(max(1, round(PORTRAIT_SPAN[0] * side * fit)), width)
    crop_h = min(max(1, round(PORTRAIT_SPAN[1] * side * fit)), height)
    centre_x, centre_y = x + w / 2.0, y + h / 2.0 + 0.1 * side
    x0 = int(np.clip(round(centre_x - crop_w / 2.0), 0, width - crop_w))
    y0 = int(np.clip(round(centre_y - crop_h / 2.0), 0, height - crop_h))
    crop = rgb[y0 : y0 + crop_h, x0 : x0 + crop_w]
    scale = max_side / max(crop_w, crop_h)
    if scale < 1.0:
        size = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
        return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)
