"""Face detection with OpenCV's YuNet: every face, from 10-pixel group-photo faces to full-frame close-ups.

YuNet (OpenCV Zoo, MIT) runs through OpenCV's built-in ``cv2.FaceDetectorYN``, so no extra runtime is
needed, and unlike MediaPipe's short-range detector it finds small faces. Its five points feed the
alignment; its boxes tell the landmarker where to look.

YuNet is reliable for faces of roughly 10-250 pixels. So the photo is searched twice: at up to
`max_side` pixels (small faces) and at `coarse_side` pixels (faces filling the frame, which YuNet
misses or cuts at full size); duplicates are resolved in favour of the scale where the face is closest
to YuNet's sweet spot. Large faces are then re-detected on a copy where their box is `refine_size`
pixels (192: the median YuNet box of the 200x200 UTKFace crops on which
:data:`~ganime_age.faces.align.ALIGN_TEMPLATE` was measured), so their 5 points behave like the template's.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.assets import resolve_asset
from ganime_age.errors import ModelFileNotFoundError

POINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")
"""YuNet's five points, named from the subject's point of view (the right eye is on the image's left)."""

_SWEET_SPOT = 128.0  # face size (pixels) at which YuNet's boxes and points are most dependable


@dataclass
class DetectedFace:
    """One detection in full-image pixel coordinates (cv2 convention: pixel centres at integers)."""

    box: np.ndarray  # (4,) float32 x, y, w, h
    points: np.ndarray  # (5, 2) float32, order of POINT_NAMES
    score: float

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = (float(v) for v in self.box)
        return x + w / 2.0, y + h / 2.0


class FaceDetector:
    """YuNet face detector; reuse one instance (creation loads the network). Thread-safe.

    `max_side`: photos are searched for small faces on a copy at most this many pixels long (YuNet's cost
    grows with pixels); `coarse_side`: the second, small copy used for frame-filling faces;
    `refine_size`: faces wider than 1.4 x this are re-detected at this width (0 disables refinement).
    All results are in full-resolution coordinates.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.6,
        *,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        max_side: int = 1280,
        coarse_side: int = 320,
        refine_size: int = 192,
    ) -> None:
        self.model_path = resolve_asset("yunet", model_path)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)
        self.coarse_side = int(coarse_side)
        self.refine_size = int(refine_size)
        self._lock = threading.Lock()
        self._size: tuple[int, int] | None = None
        previous = cv2.utils.logging.getLogLevel()
        # OpenCV 5 warns on every net creation that its new graph engine ignores target selection.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path), "", (320, 320), self.score_threshold, float(nms_threshold), int(top_k)
            )
        except cv2.error as error:
            raise ModelFileNotFoundError(f"{self.model_path} is not a usable YuNet ONNX model: {error}") from error
        finally:
            cv2.utils.logging.setLogLevel(previous)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces in a uint8 RGB image, sorted left to right by box centre; empty list if none."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"detect expects uint8 RGB (H, W, 3); got {rgb.dtype} {rgb.shape} (use load_image)")
        height, width = rgb.shape[:2]
        longest = max(height, width)
        main = _resized(rgb, min(1.0, self.max_side / longest))
        passes = [main]
        if self.coarse_side and max(main.shape[:2]) > 1.25 * self.coarse_side:
            passes.append(_resized(main, self.coarse_side / max(main.shape[:2])))  # from the copy: cheap
        candidates: list[tuple[float, DetectedFace]] = []
        for image in passes:
            scale = image.shape[1] / width
            for face in self._detect_scaled(image, image.shape[1] / width, image.shape[0] / height):
                size_there = max(float(face.box[2]), float(face.box[3])) * scale
                candidates.append((abs(math.log(max(size_there, 1.0) / _SWEET_SPOT)), face))
        # Greedy de-duplication: the most dependable scale first; a box mostly inside a kept one is the same face.
        candidates.sort(key=lambda item: item[0])
        faces: list[DetectedFace] = []
        for _, face in candidates:
            if all(_overlap(face.box, kept.box) < 0.5 for kept in faces):
                faces.append(face)
        if self.refine_size:
            faces = [self._refine(rgb, face) for face in faces]
        faces.sort(key=lambda face: face.center[0])
        return faces

    def _detect_scaled(
        self, image: np.ndarray, sx: float, sy: float, offset: tuple[int, int] = (0, 0)
    ) -> list[DetectedFace]:
        """Run YuNet on `image`, a copy resized by (sx, sy), and map results back (+ offset of a crop)."""
        with self._lock:
            size = (image.shape[1], image.shape[0])
            if size != self._size:
                self._net.setInputSize(size)
                self._size = size
            _, rows = self._net.detect(np.ascontiguousarray(image[..., ::-1]))
        if rows is None:
            return []
        faces = []
        for row in np.asarray(rows, np.float64):
            # pixel-centre coordinates: p -> (p + 0.5) / s - 0.5 maps exactly between resolutions
            box = np.array(
                [(row[0] + 0.5) / sx - 0.5 + offset[0], (row[1] + 0.5) / sy - 0.5 + offset[1], row[2] / sx, row[3] / sy]
            )
            points = row[4:14].reshape(5, 2)
            points = np.stack(
                [(points[:, 0] + 0.5) / sx - 0.5 + offset[0], (points[:, 1] + 0.5) / sy - 0.5 + offset[1]], 1
            )
            faces.append(
                DetectedFace(box=box.astype(np.float32), points=points.astype(np.float32), score=float(row[14]))
            )
        return faces

    def _refine(self, rgb: np.ndarray, face: DetectedFace) -> DetectedFace:
        """Re-detect a big face on a copy of its surroundings where it is `refine_size` pixels wide.

        YuNet's points drift for faces much larger than ~200 px, while ALIGN_TEMPLATE was measured on
        faces of about this size: a second look at the right scale keeps the 5 points of high-resolution
        portraits consistent with the template.
        """
        x, y, w, h = (float(v) for v in face.box)
        side = max(w, h)
        if side <= 1.4 * self.refine_size:
            return face
        cx, cy = x + w / 2.0, y + h / 2.0
        height, width = rgb.shape[:2]
        x0, y0 = max(int(cx - 1.2 * side), 0), max(int(cy - 1.2 * side), 0)
        x1, y1 = min(math.ceil(cx + 1.2 * side), width), min(math.ceil(cy + 1.2 * side), height)
        if min(x1 - x0, y1 - y0) * self.refine_size / side < 32:
            return face
        crop = _resized(rgb[y0:y1, x0:x1], self.refine_size / side)
        sx, sy = crop.shape[1] / (x1 - x0), crop.shape[0] / (y1 - y0)
        best, best_iou = face, 0.3
        for candidate in self._detect_scaled(crop, sx, sy, (x0, y0)):
            overlap = _iou(candidate.box, face.box)
            if overlap > best_iou:
                best, best_iou = DetectedFace(candidate.box, candidate.points, face.score), overlap
        return best


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    """Area-averaged downscale (no-op for scale >= 1)."""
    if scale >= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    inter = _intersection(a, b)
    union = float(a[2] * a[3] + b[2] * b[3]) - inter
    return inter / union if union > 0 else 0.0


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: 1 when one box lies inside the other."""
    smaller = float(min(a[2] * a[3], b[2] * b[3]))
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return float(max(0.0, width) * max(0.0, height))
