"""MediaPipe face-mesh geometry for pose augmentation: rotate the 3D landmarks, project them, draw them.

Two conditioning drawings are supported, each matching what a public ControlNet was trained on:

- :func:`draw_mediapipe_face` — the "MediaPipe face" annotation of ``CrucibleAI/ControlNetMediaPipeFace``:
  face oval, eyebrows, eyes and lips as 2-pixel polylines plus 4x4 pupil squares on black, in that model's
  colours. Its annotator draws with the BGR tuples of MediaPipe's ``DrawingSpec`` into an array that is then
  channel-reversed, so the RGB colours below are those tuples reversed (the eyes and brows swap red/blue).
- :func:`draw_openpose_face` — the OpenPose face keypoints (68 dlib-style points + 2 pupils) as filled white
  circles of radius 3 on black, as used by ``lllyasviel/control_v11p_sd15_openpose``.

Landmarks are MediaPipe's 478 points in pixel coordinates: x right, y down, z away from the camera in the same
scale as x. That frame is right-handed, so rotations are plain 3x3 matrices, and yaw/pitch/roll here mean exactly
what the ``pose`` of :class:`ganime_age.faces.landmarks.LandmarkResult` means (tests check this on real faces).

No MediaPipe import is needed: the connection lists are MediaPipe's published face-mesh topology (the test
suite compares them with ``mediapipe.tasks.python.vision.FaceLandmarksConnections``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ganime_age.faces.topology import (  # noqa: F401  (the mesh's parts are part of this module's drawing API)
    FACE_OVAL,
    LEFT_EYE,
    LEFT_EYEBROW,
    LEFT_IRIS,
    LEFT_PUPIL,
    LIPS,
    NUM_LANDMARKS,
    RIGHT_EYE,
    RIGHT_EYEBROW,
    RIGHT_IRIS,
    RIGHT_PUPIL,
    Connection,
)

RGB = tuple[int, int, int]


class MeshPart(NamedTuple):
    name: str
    connections: tuple[Connection, ...]
    colour: RGB


# The ControlNetMediaPipeFace annotation, in its drawing order, with the final RGB colours.
MEDIAPIPE_FACE_PARTS: tuple[MeshPart, ...] = (
    MeshPart("face_oval", FACE_OVAL, (10, 200, 10)),
    MeshPart("left_eye", LEFT_EYE, (10, 200, 180)),
    MeshPart("left_eyebrow", LEFT_EYEBROW, (10, 220, 180)),
    MeshPart("right_eye", RIGHT_EYE, (180, 200, 10)),
    MeshPart("right_eyebrow", RIGHT_EYEBROW, (180, 220, 10)),
    MeshPart("lips", LIPS, (10, 180, 10)),
)
MEDIAPIPE_PUPIL_COLOURS: dict[int, RGB] = {RIGHT_PUPIL: (250, 200, 10), LEFT_PUPIL: (10, 200, 250)}
MEDIAPIPE_LINE_THICKNESS = 2
MEDIAPIPE_PUPIL_HALFWIDTH = 2

# MediaPipe index for each of the 68 dlib/OpenPose face points (jaw from the image-left ear, brows outer->inner
# on the image-left side, nose bridge top->tip, nostrils left->right, eyes from their image-left corner going over
# the top, outer then inner lips from the image-left corner), chosen from the face-mesh topology.
MEDIAPIPE_TO_68: tuple[int, ...] = (
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,  # jaw 0-16
    70, 63, 105, 66, 107,  # right brow 17-21
    336, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    98, 97, 2, 326, 327,  # nostrils 31-35
    33, 160, 158, 133, 153, 144,  # right eye 36-41
    362, 385, 387, 263, 373, 380,  # left eye 42-47
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips 48-59
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67
)  # fmt: skip
# OpenPose's 70-point face adds the two pupils (68: right eye, 69: left eye).
MEDIAPIPE_TO_OPENPOSE70: tuple[int, ...] = (*MEDIAPIPE_TO_68, RIGHT_PUPIL, LEFT_PUPIL)
OPENPOSE_FACE_COLOUR: RGB = (255, 255, 255)
OPENPOSE_FACE_RADIUS = 3

# MediaPipe's facial transformation matrix lives in a y-up, z-towards-viewer frame; the landmarks in a y-down,
# z-away one. Conjugating by this flip converts a rotation between the two.
GL_TO_LANDMARK = np.diag([1.0, -1.0, -1.0])


def _as_points(points: np.ndarray, dims: Sequence[int] = (2, 3)) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] not in dims:
        raise ValueError(f"expected landmarks of shape (N, {'|'.join(map(str, dims))}), got {array.shape}")
    return array


def _canvas_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


# --- rotation -------------------------------------------------------------------------------------------------
def _rx(a: float) -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])


def _ry(a: float) -> np.ndarray:
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def _rz(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """3x3 head rotation in the landmark frame for a pose of yaw/pitch/roll degrees.

    It is the landmark-frame image of the decomposition the landmarker's pose uses
    (``R_gl = Ry(yaw) Rx(-pitch) Rz(roll)``, see ``faces.landmarks.pose_from_matrix``), which flips to
    ``Ry(-yaw) Rx(-pitch) Rz(-roll)`` here: yaw > 0 turns the nose towards image-right, pitch > 0 lifts the chin,
    roll > 0 tilts the head counter-clockwise.
    """
    y, p, r = np.radians([yaw, pitch, roll])
    return _ry(-y) @ _rx(-p) @ _rz(-r)


def rotation_angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_matrix`: (yaw, pitch, roll) degrees of a 3x3 landmark-frame rotation."""
    m = np.asarray(matrix, dtype=np.float64)
    a = np.arctan2(m[0, 2], m[2, 2])
    b = np.arctan2(-m[1, 2], np.hypot(m[0, 2], m[2, 2]))
    c = np.arctan2(m[1, 0], m[1, 1])
    yaw, pitch, roll = np.degrees([-a, -b, -c])
    return float(yaw), float(pitch), float(roll)


def face_centre(points: np.ndarray) -> np.ndarray:
    """The pivot a head turn is applied about: the centroid of the 3D landmarks (keeps the face in frame)."""
    return _as_points(points, (3,)).mean(axis=0)


def rotate_landmarks(
    points: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, *, centre: np.ndarray | None = None
) -> np.ndarray:
    """Turn a 3D face (N,3) by yaw/pitch/roll degrees about `centre` (default: :func:`face_centre`)."""
    array = _as_points(points, (3,))
    pivot = face_centre(array) if centre is None else np.asarray(centre, dtype=np.float64)
    rotated = (array - pivot) @ rotation_matrix(yaw, pitch, roll).T + pivot
    return rotated.astype(np.float32)


def project_orthographic(points: np.ndarray) -> np.ndarray:
    """Drop depth: MediaPipe's x, y are already image pixels, and a face is shallow relative to its distance."""
    return _as_points(points, (3,))[:, :2].astype(np.float32)


def fit_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rotation R with ``target - mean ≈ (source - mean) @ R.T`` (Kabsch), to measure a head turn."""
    src = _as_points(source, (3,))
    dst = _as_points(target, (3,))
    if src.shape != dst.shape:
        raise ValueError(f"point sets differ in shape: {src.shape} vs {dst.shape}")
    src_c = src - src.mean(axis=0)
    dst_c = dst - dst.mean(axis=0)
    u, _, vt = np.linalg.svd(src_c.T @ dst_c)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def relative_pose(source: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees that turn the 3D face `source` into `target` (same landmark topology)."""
    return rotation_angles(fit_rotation(source, target))


def pose_delta(source_pose: Sequence[float], target_pose: Sequence[float]) -> np.ndarray:
    """The landmark-frame rotation taking a head at `source_pose` to `target_pose` (yaw, pitch, roll degrees)."""
    src = rotation_matrix(*[float(v) for v in source_pose[:3]])
    dst = rotation_matrix(*[float(v) for v in target_pose[:3]])
    return dst @ src.T


def turn_face(
    points: np.ndarray,
    source_pose: Sequence[float],
    target_pose: Sequence[float],
    *,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Re-pose a 3D face measured at `source_pose` so it looks like `target_pose` (both yaw, pitch, roll degrees)."""
    array = _as_points(points, (3,))
    pivot = face_centre(array) if centre is None else np.asarray(centre, dtype=np.float64)
    return ((array - pivot) @ pose_delta(source_pose, target_pose).T + pivot).astype(np.float32)


# --- drawing --------------------------------------------------------------------------------------------------
def _pixel(point: np.ndarray, height: int, width: int) -> tuple[int, int] | None:
    """Integer pixel of a landmark, or None outside the canvas (MediaPipe's annotator skips those too)."""
    x, y = float(point[0]), float(point[1])
    if not (0.0 <= x < width and 0.0 <= y < height):
        return None
    return int(x), int(y)


def draw_mediapipe_face(
    points: np.ndarray,
    size: int | tuple[int, int],
    *,
    canvas: np.ndarray | None = None,
    thickness: int = MEDIAPIPE_LINE_THICKNESS,
    pupil_halfwidth: int = MEDIAPIPE_PUPIL_HALFWIDTH,
) -> np.ndarray:
    """The ControlNetMediaPipeFace conditioning image (H,W,3) uint8 RGB for 478 landmarks in canvas pixels."""
    import cv2

    array = _as_points(points)
    if array.shape[0] < NUM_LANDMARKS:
        raise ValueError(f"the MediaPipe face drawing needs all {NUM_LANDMARKS} landmarks, got {array.shape[0]}")
    height, width = _canvas_shape(size)
    image = np.zeros((height, width, 3), np.uint8) if canvas is None else canvas
    pixels = [_pixel(p, height, width) for p in array]
    for part in MEDIAPIPE_FACE_PARTS:
        for start, end in part.connections:
            a, b = pixels[start], pixels[end]
            if a is not None and b is not None:
                cv2.line(image, a, b, part.colour, thickness)
    for index, colour in MEDIAPIPE_PUPIL_COLOURS.items():
        pixel = pixels[index]
        if pixel is not None:
            x, y = pixel
            image[
                max(0, y - pupil_halfwidth) : y + pupil_halfwidth, max(0, x - pupil_halfwidth) : x + pupil_halfwidth
            ] = colour
    return image


def openpose_face_points(points: np.ndarray) -> np.ndarray:
    """The 70 OpenPose face keypoints (x, y) picked from MediaPipe's 478 landmarks."""
    array = _as_points(points)
    if array.shape[0] < NUM_LANDMARKS:
        raise ValueError(f"need all {NUM_LANDMARKS} MediaPipe landmarks, got {array.shape[0]}")
    return array[list(MEDIAPIPE_TO_OPENPOSE70), :2].astype(np.float32)


def draw_openpose_face(
    points: np.ndarray,
    size: int | tuple[int, int],
    *,
    canvas: np.ndarray | None = None,
    radius: int = OPENPOSE_FACE_RADIUS,
) -> np.ndarray:
    """OpenPose face conditioning (H,W,3) uint8: white dots at the 70 face keypoints on black."""
    import cv2

    keypoints = openpose_face_points(points)
    height, width = _canvas_shape(size)
    image = np.zeros((height, width, 3), np.uint8) if canvas is None else canvas
    for point in keypoints:
        pixel = _pixel(point, height, width)
        if pixel is not None:
            cv2.circle(image, pixel, radius, OPENPOSE_FACE_COLOUR, thickness=-1)
    return image


CONDITION_DRAWERS = {"mediapipe_face": draw_mediapipe_face, "openpose_face": draw_openpose_face}


def draw_condition(kind: str, points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Draw the conditioning image of `kind` ("mediapipe_face" or "openpose_face")."""
    try:
        drawer = CONDITION_DRAWERS[kind]
    except KeyError:
        raise ValueError(f"unknown condition drawing {kind!r}; known: {', '.join(CONDITION_DRAWERS)}") from None
    return drawer(points, size)
