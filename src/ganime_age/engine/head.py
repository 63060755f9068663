"""The face a turn moves: MediaPipe's canonical face mesh, each vertex's mirror across the midline, and the
point the head turns about. :mod:`.turning` places it on a photo and moves the photo with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ganime_age.face_model import canonical_face, mirror_indices

PIVOT = (0.0, 1.0, 3.5)  # what the head turns about (canonical cm): the top of the neck, behind the jaw


@dataclass(frozen=True)
class HeadModel:
    """The canonical face mesh: (V, 3) vertices in canonical cm, its triangles and each vertex's mirror."""

    vertices: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (T, 3) int32, wound so that their normals point out of the head
    mirror: np.ndarray  # (V,) int64 each vertex's mirror image across the face's midline


def smoothstep(t: np.ndarray | float) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S between (no visible edge where a share begins or ends)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.lru_cache(maxsize=4)
def head_model(landmarker_path: str | None = None) -> HeadModel:
    """The canonical face, its outward-wound triangles and its mirror, built once."""
    face = canonical_face(landmarker_path)
    vertices = np.asarray(face.vertices, np.float64)
    triangles = _outward(vertices, np.asarray(face.triangles, np.int64), np.array([0.0, -2.0, 4.0]))
    mirror = mirror_indices(landmarker_path)[: len(vertices)]
    return HeadModel(vertices, triangles.astype(np.int32), mirror)


def _outward(vertices: np.ndarray, triangles: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The triangles rewound so that each normal points away from the head's centre."""
    corners = vertices[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normal * (corners.mean(axis=1) - centre)).sum(axis=1) < 0.0
    fixed = triangles.copy()
    fixed[inward] = triangles[inward][:, [0, 2, 1]]
    return fixed


def vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals of a placed mesh (area-weighted over the triangles around each vertex)."""
    corners = points[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    out = np.zeros_like(points)
    for k in range(3):
        np.add.at(out, triangles[:, k], normal)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
