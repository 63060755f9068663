"""The embedded default GANimation-age checkpoint (src/ganime_age/weights/ganime-age-128) on held-out faces.

The faces are real UTKFace photos from the test side of the content-hash split that
training/prepare_data.py uses, so the checkpoint never saw them. What is checked is behaviour only a
trained model has: the shipped age estimator, an independent judge, reads the faces aged to 75 as
older than the same faces aged to 10. The smile check (a gate of issue 14) is an expected failure of
the current checkpoint, kept strict so that it is noticed when a shipped model meets it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganime_age.conditions import AU_NAMES
from ganime_age.hub import load_pretrained
from ganime_age.models.ganimation_age import GanimeAge
from ganime_age.pipeline import DEFAULT_MODEL_DIR, FaceEditor, default_ageing_model, is_untrained_default
from training.prepare_data import file_sha1, split_for

HELD_OUT = 24


@pytest.fixture(scope="module")
def held_out_photos(utkface_files: list[Path]) -> list[Path]:
    """HELD_OUT test-split photos, spread over the sorted (age-first) file list, so over the ages."""
    picks: list[Path] = []
    for path in utkface_files[:: max(1, len(utkface_files) // (HELD_OUT * 12))]:
        if split_for(file_sha1(path), 0.1) == "test":
            picks.append(path)
    step = max(1, len(picks) // HELD_OUT)
    return picks[::step][:HELD_OUT]


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(device="cpu")


def test_the_default_is_the_shipped_checkpoint(editor: FaceEditor) -> None:
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "ganime_age" and config["image_size"] == 128
    model = default_ageing_model()
    assert isinstance(model, GanimeAge) and not is_untrained_default(model)
    assert not is_untrained_default(editor.model)
    stored = load_pretrained(DEFAULT_MODEL_DIR).state_dict()  # fp16 on disk, upcast on load
    assert all(t.dtype == torch.float32 for t in stored.values())
    assert all(torch.equal(stored[k], v) for k, v in editor.model.state_dict().items())
    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    assert "non-commercial" in card.lower() and "## Evaluation" in card
    for grid in ("samples_age.png", "samples_aus.png"):
        assert (DEFAULT_MODEL_DIR / grid).is_file() and f"({grid})" in card


def test_ageing_reads_older_to_an_independent_estimator(editor: FaceEditor, held_out_photos: list[Path]) -> None:
    assert len(held_out_photos) == HELD_OUT
    young, old = [], []
    for photo in held_out_photos:
        for target, readings in ((10.0, young), (75.0, old)):
            (face,) = editor.edit_details(photo, age=target, face=0).faces
            crop = torch.from_numpy(np.asarray(face.output, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
            with torch.no_grad():
                readings.append(float(editor.age_estimator.predict(crop)[0]))
    gaps = np.array(old) - np.array(young)
    print(f"estimator: aged to 75 minus aged to 10 = {gaps.mean():.1f} years, older for {(gaps > 0).mean():.0%}")
    assert (gaps > 0).mean() >= 0.8, gaps.round(1)
    assert gaps.mean() > 10, gaps.round(1)


# MediaPipe face-mesh points: the mouth corners and the outer eye corners (the scale of a face).
MOUTH_CORNERS = (61, 291)
EYE_CORNERS = (33, 263)


@pytest.fixture(scope="module")
def held_out_neutral_faces(shared_dir: Path, held_out_photos: list[Path]) -> list[Path]:
    """CFEE Neutral photos of people on the test side of the person split (prepare_data --source cfee) and
    the held-out UTKFace photos: faces the shipped model never saw, most of them not smiling."""
    import csv

    from training.prepare_data import split_key_digest
    from training.sources import SourceItem

    cfee = shared_dir / "datasets" / "cfee"
    with open(cfee / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["emotion_cat"] == "Neutral"]

    def held_out(identity: str) -> bool:
        item = SourceItem(Path(), "", 0.0, 0, "", split_key=f"cfee-{identity}")
        return split_for(split_key_digest(item, ""), 0.15) == "test"

    return [cfee / r["file_name"] for r in rows if held_out(r["identity"])][:12] + held_out_photos[:12]


def mouth_and_au12(landmarker: object, crop: Image.Image) -> tuple[float, float]:
    """(mouth width / eye-corner distance, measured AU12) of an aligned face crop."""
    from ganime_age.faces import blendshapes_to_aus
    from training.metrics import aligned_face_detection

    pixels = np.ascontiguousarray(np.asarray(crop.convert("RGB")))
    result = landmarker.analyze(pixels, aligned_face_detection(pixels.shape[0]))
    assert result is not None, "MediaPipe lost the face"
    points = result.landmarks[:, :2]
    width = np.linalg.norm(points[MOUTH_CORNERS[0]] - points[MOUTH_CORNERS[1]])
    scale = np.linalg.norm(points[EYE_CORNERS[0]] - points[EYE_CORNERS[1]])
    return float(width / scale), float(blendshapes_to_aus(result.blendshapes)[AU_NAMES.index("AU12")])


# strict: the day a shipped checkpoint smiles, this xfail turns red and must be removed with it.
@pytest.mark.xfail(
    strict=True,
    reason="issue 14 gate, not met yet: the shipped CPU preview copies the mouth (AU12 +0.05 on held-out faces); "
    "see training/README.md, 'The campaign'",
)
def test_a_smile_edit_smiles(editor: FaceEditor, held_out_neutral_faces: list[Path]) -> None:
    """AU12 = 4 on held-out faces: the measured AU12 rises and the mouth widens, as on a real smile."""
    from ganime_age.faces import FaceLandmarker

    assert len(held_out_neutral_faces) >= 20
    au_rise, widening = [], []
    with FaceLandmarker() as landmarker:
        for photo in held_out_neutral_faces:
            (face,) = editor.edit_details(photo, aus={"AU12": 4.0}, face=0).faces
            width_before, au12_before = mouth_and_au12(landmarker, face.source)
            width_after, au12_after = mouth_and_au12(landmarker, face.output)
            au_rise.append(au12_after - au12_before)
            widening.append(width_after / width_before - 1)
    au_rise, widening = np.array(au_rise), np.array(widening)
    print(f"AU12 +{au_rise.mean():.2f} (up for {(au_rise > 0).mean():.0%}); mouth {widening.mean():+.1%} wider")
    assert au_rise.mean() > 0.5 and (au_rise > 0).mean() >= 0.7, au_rise.round(2)
    assert widening.mean() > 0.02 and (widening > 0).mean() >= 0.7, widening.round(3)
