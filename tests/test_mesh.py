"""Face-mesh geometry on real faces: rotation conventions, re-posing, projection and conditioning drawings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganime_age.faces import mesh
from ganime_age.faces.mesh import (
    GL_TO_LANDMARK,
    MEDIAPIPE_FACE_PARTS,
    MEDIAPIPE_PUPIL_COLOURS,
    draw_mediapipe_face,
    draw_openpose_face,
    fit_rotation,
    openpose_face_points,
    project_orthographic,
    relative_pose,
    rotate_landmarks,
    rotation_angles,
    rotation_matrix,
    turn_face,
)


@pytest.fixture(scope="module")
def real_faces(utk_sample: list[Path]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(landmarks (478,3), pose (3,), 4x4 matrix) of 12 real UTKFace faces, measured by the faces package."""
    from ganime_age.faces import FaceDetector, FaceLandmarker, load_image

    detector, landmarker = FaceDetector(), FaceLandmarker()
    faces = []
    for path in utk_sample[::4]:
        rgb = load_image(path)
        detections = detector.detect(rgb)
        result = landmarker.analyze(rgb, detections[0]) if detections else None
        if result is not None:
            faces.append((result.landmarks.astype(np.float64), result.pose.astype(np.float64), result.matrix))
    landmarker.close()
    assert len(faces) >= 10
    return faces


def test_connections_are_mediapipes_topology() -> None:
    """Our hand-written lists must be exactly MediaPipe's published face-mesh connections."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as official

    pairs = {
        "FACE_OVAL": mesh.FACE_OVAL, "LEFT_EYE": mesh.LEFT_EYE, "LEFT_EYEBROW": mesh.LEFT_EYEBROW,
        "RIGHT_EYE": mesh.RIGHT_EYE, "RIGHT_EYEBROW": mesh.RIGHT_EYEBROW, "LIPS": mesh.LIPS,
        "LEFT_IRIS": mesh.LEFT_IRIS, "RIGHT_IRIS": mesh.RIGHT_IRIS,
    }  # fmt: skip
    for name, ours in pairs.items():
        theirs = [(c.start, c.end) for c in getattr(official, f"FACE_LANDMARKS_{name}")]
        assert list(ours) == theirs, name
    # the pupils are the iris centres, not on the iris rings
    assert mesh.RIGHT_PUPIL not in {i for pair in mesh.RIGHT_IRIS for i in pair}
    assert mesh.LEFT_PUPIL not in {i for pair in mesh.LEFT_IRIS for i in pair}


def test_rotation_angles_round_trip() -> None:
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform([-80, -60, -60], [80, 60, 60], size=(50, 3)):
        matrix = rotation_matrix(yaw, pitch, roll)
        assert np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(matrix) == pytest.approx(1.0)
        assert np.allclose(rotation_angles(matrix), (yaw, pitch, roll), atol=1e-6)


def test_angles_mean_what_the_landmarker_pose_means(real_faces: list) -> None:
    """Our angles of MediaPipe's own rotation (moved into the landmark frame) equal the faces package's pose."""
    for _, pose, matrix in real_faces:
        rotation = np.asarray(matrix, np.float64)[:3, :3]
        rotation = rotation / np.cbrt(np.linalg.det(rotation))
        ours = rotation_angles(GL_TO_LANDMARK @ rotation @ GL_TO_LANDMARK)
        assert np.allclose(ours, pose, atol=1e-3)


def test_landmark_rotation_between_real_faces_matches_measured_poses(real_faces: list) -> None:
    """The rigid rotation fitted between two real faces' 3D landmarks agrees with their measured pose difference:
    this fixes the sign convention of rotate/turn against what the landmarker reports."""
    expected, fitted = [], []
    for i, (points_i, pose_i, _) in enumerate(real_faces):
        for j, (points_j, pose_j, _) in enumerate(real_faces):
            if i != j:
                expected.append(rotation_angles(mesh.pose_delta(pose_i, pose_j)))
                fitted.append(relative_pose(points_i, points_j))
    expected_a, fitted_a = np.array(expected), np.array(fitted)
    assert np.ptp(expected_a[:, 0]) > 15.0  # the sample spans a useful range of yaws
    error = np.abs(expected_a - fitted_a)
    assert error[:, 0].mean() < 3.0 and error[:, 1].mean() < 4.0 and error[:, 2].mean() < 2.0
    assert np.corrcoef(expected_a[:, 0], fitted_a[:, 0])[0, 1] > 0.98


def _projection_pose(points3d: np.ndarray, points2d: np.ndarray) -> np.ndarray:
    """Measure a head turn from a 2D (orthographic) drawing alone: fit yaw/pitch/roll + shift to the projection."""
    from scipy.optimize import least_squares

    centred = points3d - points3d.mean(0)

    def residual(params: np.ndarray) -> np.ndarray:
        rotated = centred @ rotation_matrix(*params[:3]).T
        return ((rotated[:, :2] + params[3:]) - points2d).ravel()

    start = np.array([0.0, 0.0, 0.0, *points2d.mean(0)])
    return least_squares(residual, start).x[:3]


def test_turning_a_real_face_by_20_degrees_yaw_measures_20_degrees(real_faces: list) -> None:
    for points, pose, _ in real_faces[:4]:
        target = (pose[0] + 20.0, pose[1], pose[2])
        turned = turn_face(points, pose, target).astype(np.float64)
        # 3D: the fitted rotation between the original and the turned face is the request
        assert np.allclose(rotation_angles(fit_rotation(points, turned) @ rotation_matrix(*pose)), target, atol=0.05)
        # 2D: fitting the frontalised source face to the projected (drawn) points alone gives back the new pose
        frontal = points @ rotation_matrix(*pose)
        assert np.allclose(_projection_pose(frontal, project_orthographic(turned)), target, atol=0.5)
        # centre-preserving, and the nose tip moves towards image-right for a positive yaw change
        assert np.allclose(turned.mean(0), points.mean(0), atol=1e-3)
        assert turned[1, 0] > points[1, 0]
    # a plain +20° yaw rotation about the face centre measures +20° (and nothing else)
    points = real_faces[0][0]
    assert np.allclose(relative_pose(points, rotate_landmarks(points, yaw=20.0)), (20.0, 0.0, 0.0), atol=0.05)


def _colours(image: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def test_mediapipe_face_drawing_colours_size_and_pupils(real_faces: list) -> None:
    points, pose, _ = real_faces[0]
    # put the 200x200 face into a non-square 320x256 canvas, turned 25 degrees
    turned = turn_face(points * 1.2 + np.array([20.0, 10.0, 0.0]), pose, (pose[0] - 25, pose[1], pose[2]))
    flat = project_orthographic(turned)
    image = draw_mediapipe_face(flat, (320, 256))
    assert image.shape == (320, 256, 3) and image.dtype == np.uint8
    assert (image.reshape(-1, 3).max(1) == 0).mean() > 0.85  # mostly black background
    expected = {part.colour for part in MEDIAPIPE_FACE_PARTS} | set(MEDIAPIPE_PUPIL_COLOURS.values())
    found = _colours(image)
    assert found == expected | {(0, 0, 0)}  # every part's colour, and nothing else (no anti-aliasing blends)
    for index, colour in MEDIAPIPE_PUPIL_COLOURS.items():
        ys, xs = np.nonzero(np.all(image == colour, axis=-1))
        assert len(xs) == 16  # a 4x4 square
        # the annotator fills [x-2, x+2) at the truncated pixel: its centre is up to 1.5 px off the landmark
        assert abs(xs.mean() - flat[index, 0]) <= 1.5 and abs(ys.mean() - flat[index, 1]) <= 1.5
    # the subject's right eye is drawn in its colour on the image's left
    right_eye = next(p.colour for p in MEDIAPIPE_FACE_PARTS if p.name == "right_eye")
    left_eye = next(p.colour for p in MEDIAPIPE_FACE_PARTS if p.name == "left_eye")
    assert np.nonzero(np.all(image == right_eye, -1))[1].mean() < np.nonzero(np.all(image == left_eye, -1))[1].mean()


def test_drawing_skips_points_outside_the_canvas(real_faces: list) -> None:
    points = project_orthographic(real_faces[0][0])
    shifted = points + np.array([150.0, 0.0])  # the face's right half leaves a 200 px canvas
    image = draw_mediapipe_face(shifted, 200)
    assert image.shape == (200, 200, 3) and image.any()
    assert image[:, :150].max() == 0  # nothing drawn where no face is
    with pytest.raises(ValueError, match="478"):
        draw_mediapipe_face(points[:468], 200)


def test_openpose_face_points_follow_the_68_point_layout(real_faces: list) -> None:
    frontal = min(real_faces, key=lambda face: abs(face[1][0]) + abs(face[1][1]))
    keypoints = openpose_face_points(frontal[0])
    assert keypoints.shape == (70, 2)
    jaw = keypoints[:17]
    assert np.all(np.diff(jaw[:, 0]) > 0)  # the jaw runs from the image-left ear to the image-right one
    assert np.argmax(jaw[:, 1]) in (7, 8, 9)  # the chin is the lowest jaw point
    assert np.all(np.diff(keypoints[27:31, 1]) > 0)  # nose bridge runs down
    assert keypoints[36, 0] < keypoints[39, 0] < keypoints[42, 0] < keypoints[45, 0]  # eye corners left to right
    assert keypoints[48, 0] < keypoints[51, 0] < keypoints[54, 0]  # mouth corners around the top lip centre
    assert keypoints[19, 1] < keypoints[37, 1] < keypoints[41, 1] < keypoints[51, 1] < keypoints[57, 1]
    for pupil, (a, b) in ((68, (36, 39)), (69, (42, 45))):  # pupils sit between their eye's corners
        assert keypoints[a, 0] < keypoints[pupil, 0] < keypoints[b, 0]
    image = draw_openpose_face(frontal[0], 200)
    assert image.shape == (200, 200, 3)
    assert _colours(image) == {(0, 0, 0), (255, 255, 255)}
    for x, y in keypoints:
        assert image[int(y), int(x)].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="unknown condition"):
        mesh.draw_condition("canny", frontal[0], 64)
