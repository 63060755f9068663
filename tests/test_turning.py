"""Turning a head in 3-D (issue 31): the head model, an exact identity, and real faces turned to a pose."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ganime_age.engine.head import head_model
from ganime_age.engine.turning import TurnableHead, turned_points

PHOTOS = ("0113.jpg", "0473.jpg")  # CFEE full-size test people (1000x750): long hair, short hair


@functools.lru_cache(maxsize=1)
def analyzer() -> Any:
    from ganime_age.faces import FaceAnalyzer

    return FaceAnalyzer()


@functools.lru_cache(maxsize=4)
def prepared(shared_dir: Path, name: str) -> tuple[np.ndarray, Any, TurnableHead]:
    from ganime_age.faces import load_image

    rgb = load_image(shared_dir / "datasets" / "cfee_full" / "images" / name)
    face = analyzer().analyze(rgb)[0]
    return rgb, face, TurnableHead(rgb, face.landmarks.landmarks, analyzer().segmenter(rgb))


def test_the_head_model_continues_the_face_into_a_closed_outward_head() -> None:
    """The proxy's triangles face out of the head, each vertex has a mirror across the midline (a mirror's
    mirror is itself), the head follows its turn fully and the neck's last ring not at all, and seen from the
    front the head is wider and taller than the face."""
    model = head_model()
    corners = model.vertices[model.triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    centre = np.array([0.0, -2.0, 4.0])
    assert ((normal * (corners.mean(axis=1) - centre)).sum(axis=1) > 0).all()
    assert (model.mirror[model.mirror] == np.arange(len(model.vertices))).mean() > 0.95
    mirrored = model.vertices[model.mirror] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - model.vertices)[:, 0].max() < 0.6  # canonical cm
    assert model.follow.max() == 1.0 and model.follow.min() == 0.0
    face = model.vertices[:468]
    assert np.ptp(model.vertices[:, 0]) > 1.1 * np.ptp(face[:, 0])
    assert model.vertices[:, 1].min() < face[:, 1].min() - 2.0  # the crown above the hairline


def test_the_head_at_its_own_pose_is_the_photo(shared_dir: Path) -> None:
    """Drawn at the pose it has, the head gives the photo back (soft edge and long hair included)."""
    rgb, _, head = prepared(shared_dir, PHOTOS[0])
    out = head.render(head.rotation)
    difference = np.abs(out.astype(int) - rgb.astype(int))
    assert difference.mean() < 0.05 and (difference.max(axis=2) > 8).mean() < 1e-4


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("yaw", [-30.0, 30.0])
def test_a_turned_head_reads_as_turned_and_as_the_same_person(shared_dir: Path, name: str, yaw: float) -> None:
    """Turned 30 degrees either way, the landmarker's points on the result read the face turned by 30 (within 6
    degrees: the landmarker reads a rendered turn a few degrees short, its nose lit from the front) and dlib's
    descriptor verifies the same person; the photo away from the head keeps its pixels."""
    from ganime_age.face_model import head_pose
    from training.evaluation.judges import DlibIdentity

    rgb, face, head = prepared(shared_dir, name)
    turned = head.turn(yaw=yaw)
    after = analyzer().analyze(turned)[0]
    assert after.landmarks is not None
    before_yaw, after_yaw = head_pose(face.landmarks.landmarks)[0], head_pose(after.landmarks.landmarks)[0]
    assert abs((after_yaw - before_yaw) - yaw) < 6.0, (before_yaw, after_yaw)
    identity = DlibIdentity()

    def box(found: Any) -> tuple[int, int, int, int]:
        x, y, w, h = (round(float(v)) for v in found.detection.box)
        return x, y, w, h

    distance = np.linalg.norm(identity.embed(rgb, box(face)) - identity.embed(turned, box(after)))
    assert distance < 0.6, distance  # dlib's own same-person threshold
    height, width = rgb.shape[:2]
    corners = (slice(0, height // 8), slice(0, width // 8))
    assert np.array_equal(turned[corners], rgb[corners])


def test_a_turned_head_has_no_seam_along_the_face_outline(shared_dir: Path) -> None:
    """Along the turned face's outline the largest brightness jump across it is no larger than the photo's own
    along its outline (no tear, no hard cut where the face meets the head)."""
    from ganime_age.faces.mesh import rotation_matrix
    from ganime_age.faces.topology import FACE_OVAL

    rgb, face, head = prepared(shared_dir, PHOTOS[1])

    def worst_jump(image: np.ndarray, points: np.ndarray) -> float:
        grey = image.astype(np.float32).mean(axis=2)
        centre = points.mean(axis=0)
        jumps = []
        for a, _ in FACE_OVAL:
            p = points[a]
            direction = (p - centre) / max(float(np.linalg.norm(p - centre)), 1e-6)
            inside, outside = p - 4.0 * direction, p + 4.0 * direction
            values = [grey[round(q[1]), round(q[0])] for q in (inside, outside)]
            jumps.append(abs(values[0] - values[1]))
        return float(np.percentile(jumps, 90))

    own = worst_jump(rgb, face.landmarks.landmarks[:, :2])
    for yaw in (-30.0, 30.0):
        placed, _ = turned_points(head.head, rotation_matrix(yaw, 0.0, 0.0) @ head.rotation)
        turned = head.turn(yaw=yaw)
        assert worst_jump(turned, placed[:468, :2]) <= max(1.25 * own, own + 10.0)


def test_a_made_up_side_of_the_head_takes_the_hair_and_the_neck_colour(shared_dir: Path) -> None:
    """Where a turn shows the side of the head the photo never saw, it is the person's hair colour (dark hair:
    darker than the cheeks), and below the jaw the neck's skin (lighter than the hair), one colour per part:
    what each outline path reads beside the face (ears, earrings, collars) does not streak it."""
    rgb, face, head = prepared(shared_dir, PHOTOS[0])
    model = head_model()
    skull = model.rings[2][model.follow[model.rings[-1]] > 0.99]
    neck = model.rings[2][model.follow[model.rings[-1]] < 0.01]
    hair, skin = head.side_colour[skull], head.side_colour[neck]
    cheeks = face.landmarks.landmarks[[50, 280], :2].round().astype(int)
    cheek = rgb[cheeks[:, 1], cheeks[:, 0]].astype(np.float32).mean(axis=0)
    assert hair.mean() < 0.6 * cheek.mean() and skin.mean() > hair.mean() + 30.0, (hair.mean(0), skin.mean(0), cheek)
    assert np.ptp(hair, axis=0).max() < 1.0 and np.ptp(skin, axis=0).max() < 1.0
