"""The head a turn moves: MediaPipe's canonical face continued by a head and neck proxy (issue 31).

Beyond the face's outline the proxy is rings on an ellipsoid of the head's mean proportions (forehead to the
crown, the temples, the ears) and, below the jaw, the neck, whose rings follow the head's turn less the lower
they are, so the shoulders stay where they were. :mod:`.turning` places it on a photo and draws it turned.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from ganime_age.face_model import canonical_face
from ganime_age.faces.topology import FACE_OVAL

# the head's mean proportions in the canonical face's centimetres (landmark frame: x right, y down, z away): an
# ellipsoid through the canonical face's forehead and temples (head breadth about 16 cm with the hair, length
# 19 cm), and the neck as a cylinder under it
HEAD_CENTRE = (0.0, -2.0, 4.0)
HEAD_AXES = (9.0, 12.5, 10.5)
NECK_AXIS = (0.0, 2.5)  # (x, z) of the neck's vertical axis
NECK_RADIUS = 5.5
PIVOT = (0.0, 1.0, 3.5)  # what the head turns about: the top of the neck, behind the jaw
BEYOND = (10.0, 22.0, 38.0, 58.0, 80.0)  # degrees past the outline, along the head, of the skull's rings
NECK_DROP = (1.5, 3.5, 6.0, 9.0, 13.0)  # cm below the jaw of the neck's rings
NECK_FOLLOW = (0.95, 0.8, 0.55, 0.25, 0.0)  # how much of the head's turn each neck ring takes
NECK_BLEND = (0.0, 4.0)  # outline heights (cm below the face's origin) from skull rings to neck rings
HAIR_MARGIN = 1.05  # the skull's outer rings stand this much off the ellipsoid (hair has volume)


@dataclass(frozen=True)
class HeadModel:
    """The canonical face continued into a head: (V, 3) vertices in canonical cm, the first 468 the face's."""

    vertices: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (T, 3) int32, wound so that their normals point out of the head
    mirror: np.ndarray  # (V,) int64 each vertex's mirror image across the face's midline
    follow: np.ndarray  # (V,) float64 how much of the head's turn a vertex takes (1 the head, 0 the shoulders)
    rings: np.ndarray  # (R + 1, 36) int64 the outline's vertices, then each ring's beyond it


def oval_loop() -> list[int]:
    """The face outline's 36 vertices in order around the face."""
    return [a for a, _ in FACE_OVAL]


def _rodrigues(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def smoothstep(t: np.ndarray | float) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.lru_cache(maxsize=2)
def head_model(landmarker_path: str | None = None) -> HeadModel:
    """The canonical face and its head proxy, built once."""
    face = canonical_face(landmarker_path)
    vertices = face.vertices
    centre, axes = np.asarray(HEAD_CENTRE), np.asarray(HEAD_AXES)
    oval = oval_loop()
    front = (np.array([0.0, -2.0, -8.0]) - centre) / axes
    front /= np.linalg.norm(front)
    rings = [np.asarray(oval)]
    new_points: list[np.ndarray] = []
    follow: list[float] = []
    count = len(vertices)
    for ring in range(len(BEYOND)):
        ids = []
        for k in oval:
            point = vertices[k]
            # the skull: on along the great circle from the face's front through this outline point
            unit = (point - centre) / axes
            radius = float(np.linalg.norm(unit))
            unit /= radius
            axis = np.cross(front, unit)
            axis /= max(float(np.linalg.norm(axis)), 1e-9)
            angle = float(np.arccos(np.clip(front @ unit, -1.0, 1.0))) + np.radians(BEYOND[ring])
            lift = radius + (HAIR_MARGIN - radius) * min(1.0, (ring + 1) / 2.0)
            skull = centre + axes * (lift * (_rodrigues(axis, angle) @ front))
            # the neck: straight down from the jaw, drawn in towards the neck's cylinder
            around = np.array([point[0] - NECK_AXIS[0], point[2] - NECK_AXIS[1]])
            around = around / max(float(np.linalg.norm(around)), 1e-9) * NECK_RADIUS
            pull = (ring + 1) / len(NECK_DROP)
            neck = np.array(
                [
                    point[0] + (NECK_AXIS[0] + around[0] - point[0]) * pull,
                    point[1] + NECK_DROP[ring],
                    point[2] + (NECK_AXIS[1] + around[1] - point[2]) * pull,
                ]
            )
            weight = float(smoothstep((point[1] - NECK_BLEND[0]) / (NECK_BLEND[1] - NECK_BLEND[0])))
            new_points.append((1.0 - weight) * skull + weight * neck)
            follow.append((1.0 - weight) + weight * NECK_FOLLOW[ring])
            ids.append(count)
            count += 1
        rings.append(np.asarray(ids))
    all_vertices = np.concatenate([vertices, np.asarray(new_points)])
    triangles = [np.asarray(face.triangles, np.int64)]
    n = len(oval)
    for inner, outer in itertools.pairwise(rings):
        for k in range(n):
            a, b, c, d = inner[k], inner[(k + 1) % n], outer[k], outer[(k + 1) % n]
            triangles.append(np.array([[a, b, c], [b, d, c]]))
    tri = np.concatenate(triangles).astype(np.int64)
    tri = _outward(all_vertices, tri, centre)
    mirror = _mirror(vertices, all_vertices, oval, rings)
    follow_all = np.concatenate([np.ones(len(vertices)), np.asarray(follow)])
    return HeadModel(all_vertices, tri.astype(np.int32), mirror, follow_all, np.stack(rings))


def _outward(vertices: np.ndarray, triangles: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The triangles rewound so that each normal points away from the head's centre."""
    corners = vertices[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normal * (corners.mean(axis=1) - centre)).sum(axis=1) < 0.0
    fixed = triangles.copy()
    fixed[inward] = triangles[inward][:, [0, 2, 1]]
    return fixed


def _mirror(face: np.ndarray, vertices: np.ndarray, oval: list[int], rings: list[np.ndarray]) -> np.ndarray:
    """Each vertex's mirror across the midline: the face's nearest to its reflection, ring by ring beyond."""
    reflected = face * np.array([-1.0, 1.0, 1.0])
    distances = ((reflected[:, None, :] - face[None, :, :]) ** 2).sum(axis=2)
    mirror = np.arange(len(vertices))
    mirror[: len(face)] = distances.argmin(axis=1)
    position = {vertex: k for k, vertex in enumerate(oval)}
    partner = [position.get(int(mirror[v]), k) for k, v in enumerate(oval)]
    for ring in rings[1:]:
        mirror[ring] = ring[partner]
    return mirror


def vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals of a placed mesh (area-weighted over the triangles around each vertex)."""
    corners = points[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    out = np.zeros_like(points)
    for k in range(3):
        np.add.at(out, triangles[:, k], normal)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def partial_rotation(rotation: np.ndarray, share: np.ndarray) -> np.ndarray:
    """(V, 3, 3): `rotation` scaled to each share of its angle about its own axis (share 1 all, 0 none)."""
    cosine = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cosine))
    if angle < 1e-9:
        return np.broadcast_to(np.eye(3), (len(share), 3, 3)).copy()
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    axis /= max(float(np.linalg.norm(axis)), 1e-12)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    theta = angle * np.asarray(share, np.float64)[:, None, None]
    return np.eye(3)[None] + np.sin(theta) * k[None] + (1.0 - np.cos(theta)) * (k @ k)[None]
