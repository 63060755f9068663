"""MediaPipe's canonical 3D face: the neutral mean face, its triangles, and similarity fits to real landmarks.

The Face Landmarker task file ships the model its pose estimate is built on
(``geometry_pipeline_metadata_landmarks.binarypb``): a 468-vertex neutral face in centimetres, its 898
triangles, and the 33 weighted "rigid" vertices MediaPipe fits the head pose to (forehead, nose bridge,
eye corners, temples: points an expression barely moves). Reading it from the task file we already
need keeps the package free of copied data. Everything here works in the *landmark frame* of
:mod:`ganime_age.faces.mesh` (x right, y down, z away from the camera, pixel units), so a fitted
rotation decomposes with :func:`ganime_age.faces.mesh.rotation_angles` into the same yaw/pitch/roll as
``LandmarkResult.pose``.
"""

from __future__ import annotations

import functools
import os
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from ganime_age.errors import ModelFileNotFoundError
from ganime_age.faces.topology import NUM_MESH_VERTICES

GEOMETRY_ENTRY = "geometry_pipeline_metadata_landmarks.binarypb"
GL_FLIP = np.array([1.0, -1.0, -1.0])  # canonical/OpenGL frame (y up, z to the viewer) <-> landmark frame


@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's neutral face model, converted to the landmark frame."""

    vertices: np.ndarray  # (468, 3) float64, centimetres, x right, y down, z away
    triangles: np.ndarray  # (898, 3) int32 vertex indices
    rigid_indices: np.ndarray  # (33,) int64 the vertices the head pose is fitted to
    rigid_weights: np.ndarray  # (33,) float64 their weights (sum 1)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(data: bytes) -> list[tuple[int, int | float | bytes]]:
    """Decode one protobuf message level into (field number, value) pairs (wire types 0, 1, 2, 5)."""
    out: list[tuple[int, int | float | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((field, value))
        elif wire == 2:
            length, i = _varint(data, i)
            out.append((field, data[i : i + length]))
            i += length
        elif wire == 5:
            out.append((field, struct.unpack("<f", data[i : i + 4])[0]))
            i += 4
        elif wire == 1:
            out.append((field, struct.unpack("<d", data[i : i + 8])[0]))
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def _packed_or_repeated(values: list[int | float | bytes], fmt: str) -> list[float]:
    flat: list[float] = []
    for value in values:
        if isinstance(value, bytes):  # packed encoding
            if fmt == "f":
                flat.extend(struct.unpack(f"<{len(value) // 4}f", value))
            else:
                i = 0
                while i < len(value):
                    v, i = _varint(value, i)
                    flat.append(v)
        else:
            flat.append(value)
    return flat


def parse_geometry_metadata(data: bytes) -> CanonicalFace:
    """Parse MediaPipe's GeometryPipelineMetadata protobuf (no protobuf runtime needed).

    Layout: field 1 = canonical_mesh (Mesh3d: 3 = vertex_buffer floats x,y,z,u,v per vertex,
    4 = index_buffer triangle indices); field 2 = procrustes_landmark_basis (1 = landmark id, 2 = weight).
    """
    top = _fields(data)
    meshes = [v for f, v in top if f == 1 and isinstance(v, bytes)]
    if not meshes:
        raise ValueError("no canonical mesh in the geometry metadata")
    mesh = _fields(meshes[0])
    vertex_buffer = _packed_or_repeated([v for f, v in mesh if f == 3], "f")
    index_buffer = _packed_or_repeated([v for f, v in mesh if f == 4], "i")
    if len(vertex_buffer) != NUM_MESH_VERTICES * 5 or len(index_buffer) % 3:
        raise ValueError(f"unexpected canonical mesh size: {len(vertex_buffer)} floats, {len(index_buffer)} indices")
    vertices = np.asarray(vertex_buffer, np.float64).reshape(-1, 5)[:, :3] * GL_FLIP
    triangles = np.asarray(index_buffer, np.int32).reshape(-1, 3)
    ids, weights = [], []
    for field, value in top:
        if field == 2 and isinstance(value, bytes):
            entry = dict(_fields(value))
            ids.append(int(entry.get(1, 0)))
            weights.append(float(entry.get(2, 0.0)))
    if not ids:
        raise ValueError("no procrustes landmark basis in the geometry metadata")
    w = np.asarray(weights, np.float64)
    return CanonicalFace(vertices, triangles, np.asarray(ids, np.int64), w / w.sum())


@functools.lru_cache(maxsize=4)
def _load_canonical(path: str) -> CanonicalFace:
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(GEOMETRY_ENTRY)
        return parse_geometry_metadata(data)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, IndexError) as error:
        raise ModelFileNotFoundError(f"{path} holds no readable MediaPipe canonical face model: {error}") from error


def canonical_face(landmarker_path: str | os.PathLike[str] | None = None) -> CanonicalFace:
    """The canonical face from the Face Landmarker task file (resolved like the landmarker itself)."""
    from ganime_age.assets import resolve_asset

    return _load_canonical(str(resolve_asset("face_landmarker", landmarker_path)))


IRIS_MIRROR = {468: 473, 469: 476, 470: 475, 471: 474, 472: 477}  # each iris's centre, then +x, up, -x, down


@functools.lru_cache(maxsize=4)
def mirror_indices(landmarker_path: str | os.PathLike[str] | None = None) -> np.ndarray:
    """(478,) for each landmark of the mesh, the landmark at its mirror image (the face's other side; a point on
    the midline, itself): a mesh read off a mirrored photo, reindexed by it and its x flipped, is the photo's own.
    From the canonical face, which is symmetric: each vertex's mirror is the vertex nearest its x flipped."""
    vertices = canonical_face(landmarker_path).vertices
    flipped = vertices * np.array([-1.0, 1.0, 1.0])
    distances = np.linalg.norm(vertices[None, :, :] - flipped[:, None, :], axis=2)
    mirror = np.argmin(distances, axis=1)
    iris = np.arange(NUM_MESH_VERTICES, NUM_MESH_VERTICES + 2 * len(IRIS_MIRROR))
    for a, b in IRIS_MIRROR.items():
        iris[a - NUM_MESH_VERTICES], iris[b - NUM_MESH_VERTICES] = b, a
    return np.concatenate([mirror, iris]).astype(np.int64)


@dataclass(frozen=True)
class Similarity:
    """``observed = scale * rotation @ model + translation`` (3D, rotation proper)."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points, np.float64) @ self.rotation.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.translation) @ self.rotation / self.scale


def fit_similarity(
    model: np.ndarray,
    observed: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    rotation: np.ndarray | None = None,
) -> Similarity:
    """Weighted least-squares similarity (Umeyama) with ``observed ≈ s R model + t``.

    With `rotation` given only scale and translation are fitted (used when the pose comes from
    MediaPipe's transformation matrix instead of the landmarks).
    """
    x = np.asarray(model, np.float64)
    y = np.asarray(observed, np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3 or len(x) < 3:
        raise ValueError(f"need matching (N>=3, 3) point sets, got {x.shape} and {y.shape}")
    w = np.full(len(x), 1.0 / len(x)) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    mx, my = w @ x, w @ y
    xc, yc = x - mx, y - my
    variance = float(w @ (xc**2).sum(1))
    if variance <= 1e-12:
        raise ValueError("the model points are all at one place")
    if rotation is None:
        covariance = (yc * w[:, None]).T @ xc
        u, singular, vt = np.linalg.svd(covariance)
        sign = np.array([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
        r = u @ np.diag(sign) @ vt
        scale = float((singular * sign).sum() / variance)
    else:
        r = np.asarray(rotation, np.float64)
        scale = float(w @ (yc * (xc @ r.T)).sum(1) / variance)
    return Similarity(scale, r, my - scale * r @ mx)


def matrix_rotation(matrix: np.ndarray) -> np.ndarray:
    """The head rotation of MediaPipe's 4x4 facial transformation matrix, in the landmark frame."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(r)  # nearest proper rotation (drops scale and numeric noise)
    r = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0]) @ vt
    return GL_FLIP[:, None] * r * GL_FLIP[None, :]


def head_similarity(
    landmarks: np.ndarray, face: CanonicalFace | None = None, *, rotation: np.ndarray | None = None
) -> Similarity:
    """The similarity placing the canonical face onto 478 (or 468) landmarks, fitted on the rigid points."""
    face = face or canonical_face()
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < NUM_MESH_VERTICES:
        raise ValueError(f"expected (478, 3) landmarks, got {points.shape}")
    ids = face.rigid_indices
    return fit_similarity(face.vertices[ids], points[ids], face.rigid_weights, rotation=rotation)


def head_pose(landmarks: np.ndarray, face: CanonicalFace | None = None) -> np.ndarray:
    """(yaw, pitch, roll) degrees of 3D landmarks, by a rigid-point fit to the canonical face.

    Same conventions as ``LandmarkResult.pose``; it reads the pose off the landmarks alone, so it also
    measures landmark sets that no photo produced (e.g. the output of a shape transfer).
    """
    from ganime_age.faces.mesh import rotation_angles

    return np.asarray(rotation_angles(head_similarity(landmarks, face).rotation), np.float32)


def rotation_angle(rotation: np.ndarray) -> float:
    """Angle in degrees of a 3x3 rotation (the geodesic distance from the identity)."""
    cosine = (np.trace(np.asarray(rotation, np.float64)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def limit_turn(start: np.ndarray, end: np.ndarray, max_degrees: float) -> np.ndarray:
    """`end`, or the rotation on the way from `start` to `end` that turns at most `max_degrees` away from `start`."""
    start = np.asarray(start, np.float64)
    end = np.asarray(end, np.float64)
    relative = end @ start.T
    angle = rotation_angle(relative)
    if angle <= max_degrees or angle < 1e-6:
        return end
    # axis of the relative rotation (Rodrigues), then the same axis with the allowed angle
    axis = np.array([relative[2, 1] - relative[1, 2], relative[0, 2] - relative[2, 0], relative[1, 0] - relative[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # a half turn: any axis orthogonal to the rotation works, take the one of the largest column
        column = np.argmax(np.diag(relative))
        axis = relative[:, column] + np.eye(3)[column]
        norm = np.linalg.norm(axis)
    axis = axis / norm
    theta = np.radians(max_degrees)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    limited = np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)
    return limited @ start
