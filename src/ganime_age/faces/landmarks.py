"""Dense landmarks, blendshapes and head pose from the MediaPipe Face Landmarker (mediapipe 1.x Tasks API).

MediaPipe's own face detector is short-range: small faces in group photos go unseen. So we never let it
search the whole photo; it runs on a padded square crop around each YuNet box, resized to a fixed
resolution, and its results are mapped back to full-image pixels.

Head pose (degrees) comes from the rotation part R of MediaPipe's facial transformation matrix
(canonical face model -> camera space; x right, y up, z towards the viewer), decomposed as
R = Ry(yaw) @ Rx(-pitch) @ Rz(roll). Sign conventions, as seen in the photo:

- yaw > 0: the face is turned towards the image's right side (the subject's own left);
  mirroring the photo flips the sign;
- pitch > 0: the face is tilted up (chin up), pitch < 0: looking down;
- roll > 0: the head is tilted counter-clockwise in the image (top of the head towards the image's left).

The pose is relative to the crop's virtual camera, i.e. "as if the face were centred in the view".
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ganime_age.assets import resolve_asset
from ganime_age.errors import ModelFileNotFoundError
from ganime_age.faces.align import invert_affine, transform_points
from ganime_age.faces.detect import DetectedFace
from ganime_age.faces.topology import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS

logger = logging.getLogger(__name__)


UNMEASURED = (
    "the face is turned too far to the side (or is too small or blurred) for its landmarks to be measured, so it "
    "cannot be edited; a more frontal photo of it works"
)  # what a user is told of a face that was found but whose landmarks were not: the usual cause and the remedy

WIDER = 1.45  # the last crop tried: this much wider than the usual (a face cut close by the detector's box)
MIRROR_X = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)  # a mirrored face's pose, flipped back


@dataclass
class LandmarkResult:
    """MediaPipe results for one face, in full-image coordinates."""

    landmarks: np.ndarray  # (478, 3) float32: x, y full-image pixels; z in the same pixel scale (smaller = nearer)
    blendshapes: dict[str, float]  # the 52 MediaPipe blendshape scores in [0, 1]
    matrix: np.ndarray  # (4, 4) float32 facial transformation matrix (canonical face -> crop camera)
    pose: np.ndarray  # (3,) float32 yaw, pitch, roll in degrees (conventions in the module docstring)


def pose_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees from a 4x4 (or 3x3) MediaPipe transformation matrix."""
    rotation = np.asarray(matrix, np.float64)[:3, :3]
    # Remove any uniform scale so the decomposition sees a pure rotation.
    rotation = rotation / np.cbrt(max(np.linalg.det(rotation), 1e-12))
    # R = Ry(yaw) Rx(b) Rz(roll): R[0,2] = sin(yaw)cos(b), R[1,2] = -sin(b), R[2,2] = cos(yaw)cos(b),
    # R[1,0] = cos(b)sin(roll), R[1,1] = cos(b)cos(roll). Positive b turns the face down (y is up), so pitch = -b.
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    b = math.atan2(-rotation[1, 2], math.hypot(rotation[0, 2], rotation[2, 2]))
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return np.degrees(np.array([yaw, -b, roll])).astype(np.float32)


@dataclass
class CapturedText:
    """What a :func:`native_stderr_captured` block wrote to the process's stderr."""

    text: str = ""


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[CapturedText]:
    """Hold back what native code (glog, TFLite) writes to file descriptor 2 inside the block.

    Creating the MediaPipe graph prints five lines of INFO/WARNING noise from C++ that Python's
    ``sys.stderr`` never sees and no environment variable of mediapipe 1.x silences. The text is kept
    (and logged at DEBUG) so that a failure can still show it. Other threads' stderr is held back too
    while the block runs (about 0.1 s, once per landmarker).
    """
    captured = CapturedText()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace").strip()
            if captured.text:
                logger.debug("MediaPipe native log:\n%s", captured.text)


class FaceLandmarker:
    """MediaPipe Face Landmarker run on a crop around a detected face; create once and reuse.

    `padding` is the crop side as a multiple of the larger side of the YuNet box (MediaPipe needs some
    context around the face); `crop_size` is the resolution the crop is resampled to, so small faces
    are upsampled and huge ones downsampled to what the network likes.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        padding: float = 1.8,
        crop_size: int = 256,
        max_candidates: int = 3,
    ) -> None:
        self.model_path = resolve_asset("face_landmarker", model_path)
        self.padding = float(padding)
        self.crop_size = int(crop_size)
        self.max_candidates = int(max_candidates)
        self._lock = threading.Lock()
        self._task: Any = None
        self._finalizer: weakref.finalize | None = None

    def _landmarker(self) -> Any:
        """The MediaPipe object, created on first use (about 0.3 s) and closed when this object goes away."""
        if self._task is None:
            from mediapipe.tasks.python import BaseOptions, vision

            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(self.model_path)),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=self.max_candidates,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            try:
                with native_stderr_captured() as native_log, _mediapipe_call():
                    task = vision.FaceLandmarker.create_from_options(options)
            except Exception as error:  # mediapipe raises RuntimeError/ValueError for bad model files
                raise ModelFileNotFoundError(
                    f"{self.model_path} is not a usable MediaPipe face landmarker: {error} {native_log.text}".strip()
                ) from error
            # Close it explicitly while the interpreter is still intact: mediapipe's own __del__ raises
            # a noisy traceback when it runs during interpreter shutdown. finalize also runs at exit.
            self._finalizer = weakref.finalize(self, _release, task)
            self._task = task
        return self._task

    def close(self) -> None:
        """Release the MediaPipe graph now (it is also released automatically)."""
        if self._finalizer is not None:
            self._finalizer()
        self._task = None
        self._finalizer = None

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def crop_matrix(self, face: DetectedFace, padding: float | None = None) -> np.ndarray:
        """(2, 3) matrix from full-image pixels to the square landmarker crop around `face` (`padding` times its
        box's larger side; default the landmarker's)."""
        x, y, w, h = (float(v) for v in face.box)
        side = max(w, h, 1.0) * (self.padding if padding is None else padding)
        cx, cy = x + w / 2.0, y + h / 2.0
        scale = self.crop_size / side
        # continuous coordinates: full c -> crop (c - (cx - side/2)) * scale; cv2 pixel p = c - 0.5
        offset_x = -(cx - side / 2.0) * scale + 0.5 * scale - 0.5
        offset_y = -(cy - side / 2.0) * scale + 0.5 * scale - 0.5
        return np.array([[scale, 0.0, offset_x], [0.0, scale, offset_y]])

    def _crop(self, rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Resample the crop; when shrinking a big face, low-pass only the region used (not the whole photo)."""
        size = self.crop_size
        scale = float(matrix[0, 0])
        sigma = 0.5 / scale
        if sigma <= 0.8:
            return cv2.warpAffine(
                rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
            )
        # warpAffine has no area filter: blur the needed region first so that downscaling does not alias.
        corners = transform_points(
            np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64), invert_affine(matrix)
        )
        margin = int(np.ceil(3 * sigma)) + 2
        height, width = rgb.shape[:2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - margin, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + margin, (width, height))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((size, size, 3), np.uint8)
        region = cv2.GaussianBlur(rgb[y0:y1, x0:x1], (0, 0), sigmaX=sigma)
        local = matrix.copy()
        local[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
        return cv2.warpAffine(
            region, local, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
        )

    def analyze(self, rgb: np.ndarray, face: DetectedFace) -> LandmarkResult | None:
        """Landmarks, blendshapes and pose for one detected face; None if MediaPipe finds no face there.

        MediaPipe's own detector inside the crop misses some faces YuNet finds, most of them turned (a profile
        cut close, an old man turned 40 degrees in a crowd); the crop mirrored, then a wider crop, are tried
        before the face is given up (of 2,113 UTKFace and FG-NET faces, 4 were missed: the mirrored crop found
        three, a turned profile cut close, a blurred face and a baby's; the fourth is half out of the photo)."""
        for padding, mirrored in ((self.padding, False), (self.padding, True), (self.padding * WIDER, False)):
            result = self._analyze(rgb, face, padding, mirrored)
            if result is not None:
                return result
        return None

    def _analyze(self, rgb: np.ndarray, face: DetectedFace, padding: float, mirrored: bool) -> LandmarkResult | None:
        """:meth:`analyze` on one crop: `padding` times the face's box, `mirrored` left to right (the mesh read
        off it is reindexed to the face's own sides, its x, blendshapes and pose flipped back)."""
        import mediapipe as mp

        matrix = self.crop_matrix(face, padding)
        crop = self._crop(rgb, matrix)
        if mirrored:
            crop = crop[:, ::-1]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        with self._lock:
            landmarker = self._landmarker()
            with _mediapipe_call():
                result = landmarker.detect(image)
        if not result.face_landmarks:
            return None
        meshes = [np.array([[p.x, p.y, p.z] for p in points], np.float64) for points in result.face_landmarks]
        if mirrored:
            from ganime_age.face_model import mirror_indices  # (importing ganime_age.faces imports this module)

            order = mirror_indices(self.model_path)
            meshes = [mesh[order] * np.array([-1.0, 1.0, 1.0]) + np.array([1.0, 0.0, 0.0]) for mesh in meshes]
        # Several faces can share a padded crop (group photos): keep the one whose eyes match YuNet's.
        eyes = transform_points(face.points[:2], matrix) / self.crop_size
        best, best_distance = 0, float("inf")
        for index, mesh in enumerate(meshes):
            right_eye = mesh[list(_RIGHT_EYE), :2].mean(0)
            left_eye = mesh[list(_LEFT_EYE), :2].mean(0)
            distance = float(np.linalg.norm(right_eye - eyes[0]) + np.linalg.norm(left_eye - eyes[1]))
            if distance < best_distance:
                best, best_distance = index, distance
        crop_xyz = meshes[best] * self.crop_size
        crop_xyz[:, :2] -= 0.5  # continuous -> cv2 pixel coordinates
        inverse = invert_affine(matrix)
        full = np.empty_like(crop_xyz)
        full[:, :2] = transform_points(crop_xyz[:, :2], inverse)
        full[:, 2] = crop_xyz[:, 2] / matrix[0, 0]
        blendshapes = {c.category_name: float(c.score) for c in result.face_blendshapes[best]}
        transform = np.asarray(result.facial_transformation_matrixes[best], np.float32).reshape(4, 4)
        if mirrored:  # the face's left is the mirrored face's right; the camera's x and the face's x flip
            blendshapes = {_other_side(name): score for name, score in blendshapes.items()}
            transform = MIRROR_X @ transform @ MIRROR_X
        return LandmarkResult(
            landmarks=full.astype(np.float32),
            blendshapes=blendshapes,
            matrix=transform,
            pose=pose_from_matrix(transform),
        )


def _other_side(name: str) -> str:
    """A blendshape's name for the face's other side (eyeBlinkLeft <-> eyeBlinkRight); others as they are."""
    if name.endswith("Left"):
        return name[: -len("Left")] + "Right"
    if name.endswith("Right"):
        return name[: -len("Right")] + "Left"
    return name


# Eye-corner landmark indices of the MediaPipe face mesh, named from the subject's point of view
# (the subject's right eye is on the image's left, like YuNet's first point).
_RIGHT_EYE, _LEFT_EYE = RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS


_calls = threading.local()  # .depth: how many MediaPipe calls this thread is inside
_deferred: list[Any] = []  # tasks released inside a MediaPipe call, closed when it returns


@contextlib.contextmanager
def _mediapipe_call() -> Iterator[None]:
    """Mark a call into MediaPipe on this thread; close the tasks released during it once it has returned."""
    _calls.depth = getattr(_calls, "depth", 0) + 1
    try:
        yield
    finally:
        _calls.depth -= 1
        if _calls.depth == 0:
            while _deferred:
                with contextlib.suppress(IndexError):  # another thread took the last one
                    _close_quietly(_deferred.pop())


def _release(task: Any) -> None:
    """A landmarker's finalizer: close its task now, or after the MediaPipe call this thread is inside.

    The garbage collector runs finalizers at any allocation, also inside mediapipe 1.2's dispatch, which
    holds ``concurrent.futures``' global lock while it submits a call to its thread; closing a task
    there submits again, takes that lock a second time and hangs the thread for good.
    """
    if getattr(_calls, "depth", 0):
        _deferred.append(task)
    else:
        _close_quietly(task)


def _close_quietly(task: Any) -> None:
    """Close a MediaPipe task; at interpreter exit, make sure its __del__ cannot print a traceback.

    At exit, Python shuts down the thread pools mediapipe dispatches through *before* atexit/finalize
    callbacks run, so close() fails there; mediapipe's __del__ would then retry during module teardown
    and print "Exception ignored in ... __del__". Dropping the handle makes that retry a no-op; the
    operating system frees the native graph with the process.
    """
    try:
        task.close()
    except Exception:  # executor already shut down (interpreter exit) or already closed
        pass
    finally:
        with contextlib.suppress(Exception):
            task._handle = None
