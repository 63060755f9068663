"""The embedded default editor (the fitted engine in src/ganime_age/weights/ganime-age-engine) on held-out photos.

The faces are real UTKFace photos from the test side of the content-hash split that
training/prepare_data.py uses, CFEE photos of people on the test side of its person split, and CFEE's
full-size 1000x750 originals, so the engine never saw them. What is checked is what a user sees: edits
to 75 read older than edits to 10 to the shipped age estimator, AU12 = 4 smiles, an edit that asks
for nothing new gives the photo back as it was, and an edit keeps a grey photo grey.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from ganime_age.conditions import AU_NAMES
from ganime_age.editing import DEFAULT_ENGINE_DIR, FaceEditor, default_engine, is_untrained_default
from ganime_age.engine import FittedEngine
from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT
from ganime_age.hub import load_pretrained
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


def test_the_default_is_the_shipped_engine(editor: FaceEditor) -> None:
    config = json.loads((DEFAULT_ENGINE_DIR / "config.json").read_text())
    assert config["model_type"] == "fitted_engine"
    model = default_engine()
    assert isinstance(model, FittedEngine) and not is_untrained_default(model)
    assert editor.refiner is None and isinstance(editor.engine, FittedEngine)
    stored = load_pretrained(DEFAULT_ENGINE_DIR).state_dict()  # fp16 on disk, upcast on load
    assert all(t.dtype == torch.float32 for t in stored.values())
    assert all(torch.equal(stored[k], v) for k, v in editor.engine.state_dict().items())
    assert all(bool(torch.isfinite(t).all()) and bool(t.abs().sum() > 0) for t in stored.values())
    card = (DEFAULT_ENGINE_DIR / "README.md").read_text()
    assert "non-commercial" in card.lower() and "## Evaluation" in card
    for grid in ("gates_age.jpg", "gates_aus.jpg", "gates_full.jpg"):
        assert (DEFAULT_ENGINE_DIR / grid).is_file() and f"({grid})" in card


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

    from training.data.sources import SourceItem
    from training.prepare_data import split_key_digest

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
    from training.evaluation.metrics import aligned_face_detection

    pixels = np.ascontiguousarray(np.asarray(crop.convert("RGB")))
    result = landmarker.analyze(pixels, aligned_face_detection(pixels.shape[0]))
    assert result is not None, "MediaPipe lost the face"
    points = result.landmarks[:, :2]
    width = np.linalg.norm(points[MOUTH_CORNERS[0]] - points[MOUTH_CORNERS[1]])
    scale = np.linalg.norm(points[EYE_CORNERS[0]] - points[EYE_CORNERS[1]])
    return float(width / scale), float(blendshapes_to_aus(result.blendshapes)[AU_NAMES.index("AU12")])


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


@pytest.fixture(scope="module")
def full_size_photos(shared_dir: Path) -> list[Path]:
    """Two of CFEE's 1000x750 originals (faces ~300 px wide) of people on the test side of the person split."""
    import csv

    from training.data.sources import SourceItem
    from training.prepare_data import split_key_digest

    root = shared_dir / "datasets" / "cfee_full"
    with open(root / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def held_out(identity: str) -> bool:
        item = SourceItem(Path(), "", 0.0, 0, "", split_key=f"cfee-{identity}")
        return split_for(split_key_digest(item, ""), 0.15) == "test"

    return [root / r["file_name"] for r in rows if held_out(r["identity"])][:2]


def face_oval(editor: FaceEditor, photo: np.ndarray) -> np.ndarray:
    from ganime_age.faces import mesh

    points = editor.analyze(photo)[0].landmarks.landmarks[[a for a, _ in mesh.FACE_OVAL], :2]
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def laplacian_variance(photo: np.ndarray, region: np.ndarray) -> float:
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[region].var())


def test_an_edit_to_the_own_age_gives_the_full_size_photo_back(
    editor: FaceEditor, full_size_photos: list[Path], scene_silhouette: Any
) -> None:
    """Do no harm: asking for nothing new changes no pixel, and ageing to 75 blurs nothing and changes nothing
    outside the person (long hair to the photo's edge greys; the wall beside it keeps every pixel)."""
    from ganime_age.faces import load_image

    assert len(full_size_photos) == 2
    for path in full_size_photos:
        photo = load_image(path)
        assert photo.shape[:2] == (750, 1000)
        same = np.asarray(editor.edit(photo, face=0))
        assert np.array_equal(same, photo)
        older = np.asarray(editor.edit(photo, age=75, face=0))
        region = face_oval(editor, photo)
        kept = laplacian_variance(older, region) / laplacian_variance(photo, region)
        print(f"{path.name}: fine detail at 75 = {kept:.0%} of the input's")
        assert kept >= 0.9
        assert np.abs(older.astype(int) - photo.astype(int))[region].mean() > 2  # the face did change
        # outside the person, the photo is the input's, byte for byte (see below): beyond a ring of a twentieth of a face
        # around the segmenter's silhouette (the face parser's hair reaches past it, to wisps the segmenter misses)
        points = editor.analyze(photo)[0].landmarks.landmarks
        ring = round(0.05 * float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1,) * 2)
        outside = cv2.erode((scene_silhouette(photo) < 0.03).astype(np.uint8), kernel).astype(bool)
        assert outside.mean() > 0.3
        # byte for byte but for a faint grey of a stray wisp of hair there (the parser sees it, not the segmenter)
        change = np.abs(older.astype(np.int16) - photo.astype(np.int16)).max(axis=2)[outside]
        assert (change > 0).mean() < 1e-4 and change.max() <= 2, ((change > 0).sum(), change.max())


def test_a_grey_photo_stays_grey(editor: FaceEditor, held_out_photos: list[Path]) -> None:
    from ganime_age.faces import load_image

    grey = cv2.cvtColor(cv2.cvtColor(load_image(held_out_photos[5]), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    for age in (5.0, 80.0):
        out = np.asarray(editor.edit(grey, age=age, aus={"AU12": 3.0}, face=0)).astype(int)
        spread = (out.max(axis=2) - out.min(axis=2)).max()
        assert spread <= 2, f"age {age}: a grey photo got colour (channel spread {spread})"
        assert np.abs(out - grey).mean() > 0.5


def test_age_edits_add_no_colour_speckles_or_tint(editor: FaceEditor, held_out_photos: list[Path]) -> None:
    """The fine colour detail of held-out faces edited to 5 and to 75 stays near the input's (the gates' artefact
    score; on these photos the engine of issue 21's second session gave edits to 5 2.46x their input's, a pink
    glow with colour printed into every smoothed pore; fine changes are now brightness-only and the prototypes'
    exposure is left out: 1.47), and the face's mean colour barely moves (no ruddy, bruise-like tint at 75)."""
    from ganime_age.faces import load_image
    from training.evaluation.metrics import chroma_high_frequency

    detail: dict[float, list[tuple[float, float]]] = {5.0: [], 75.0: []}
    tints: dict[float, list[float]] = {5.0: [], 75.0: []}
    for path in held_out_photos[::2]:
        photo = load_image(path)
        for target in detail:
            (face,) = editor.edit_details(photo, age=target, face=0).faces
            source, edited = np.asarray(face.source), np.asarray(face.output)
            detail[target].append(tuple(float(v) for v in chroma_high_frequency(np.stack([edited, source]))))
            lab = [
                cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3)[:, 1:].astype(float) for image in (source, edited)
            ]
            tints[target].append(float(np.abs(lab[1].mean(axis=0) - lab[0].mean(axis=0)).max()))
    for target in detail:
        ratio = float(np.divide(*np.sum(detail[target], axis=0)))  # as the gates: over all faces
        tint = float(np.median(tints[target]))
        print(f"age {target:g}: fine colour detail x{ratio:.2f} of the input's, mean a*/b* shift {tint:.1f}")
        assert ratio <= 1.6, (target, np.round(detail[target], 1))
        assert tint <= 4.0, (target, np.round(tints[target], 1))


def test_a_girl_made_a_woman_gets_no_moustache(editor: FaceEditor, shared_dir: Path) -> None:
    """FG-NET 002 at 5, whose sex reads unsure (0.40 female on the two readings' mean), made 29: the men's tables
    where a beard grows are taken only as far as the face is surely a man's, so the skin between her nose and lip
    stays lighter than her cheeks, as it was (7.5 L); with half the men's tables there it was a moustache's shadow
    (1.6 L)."""
    import cv2

    from ganime_age.faces import load_image

    def upper_lip_over_cheeks(rgb: np.ndarray) -> float:
        points = editor.analyze(rgb)[0].landmarks.landmarks[:, :2]
        lightness = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]

        def mean_in(ids: tuple[int, ...]) -> float:
            mask = np.zeros(rgb.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(points[list(ids)]).astype(np.int32)], 1)
            return float(lightness[mask > 0].mean())

        lip = mean_in((2, 97, 167, 37, 0, 267, 393, 326))  # between the nose's base and the upper lip
        cheeks = mean_in((50, 101, 118, 117, 123, 187, 205)) + mean_in((280, 330, 347, 346, 352, 411, 425))
        return lip - 0.5 * cheeks

    girl = load_image(shared_dir / "datasets" / "fgnet" / "images" / "002A05.JPG")
    woman = np.asarray(editor.edit(girl, age=29, source_age=5))
    assert upper_lip_over_cheeks(woman) > 4.0, upper_lip_over_cheeks(woman)
