"""The editor manifest: an editor is a folder whose editor.json names its parts by role, loaded whole by
GanimeAge.from_pretrained (the same class as FaceEditor), saved and published the same way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganime_age import FaceEditor, GanimeAge
from ganime_age.editing import DEFAULT_EDITOR_DIR, DEFAULT_ENGINE_DIR, DEFAULT_ESTIMATOR_DIR, MANIFEST_NAME
from ganime_age.editing.manifest import EditorManifest, find_manifest
from ganime_age.errors import GanimeAgeError, HubError, WeightsError
from ganime_age.hub import EDITOR_ROLES, MODEL_REGISTRY, OTHER_ROLES, model_class

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return GanimeAge.from_pretrained(device="cpu")


def test_the_embedded_default_is_an_editor_folder(editor: FaceEditor) -> None:
    assert GanimeAge is FaceEditor
    manifest = find_manifest(DEFAULT_EDITOR_DIR)
    assert manifest is not None and manifest.parts() == {
        "engine": "ganime-age-engine",
        "exemplars": "age-exemplars",
        "age_estimator": "age-estimator-cydral",
        "second_age_estimator": "age-estimator",
        "sex_classifier": "sex-classifier-cydral",
    }
    assert editor.engine.role == "engine" and editor.age_estimator.role == "age_estimator" and editor.refiner is None
    assert editor.second_age_estimator.role == "age_estimator"
    assert [type(e).__name__ for e in editor.age_estimators] == ["CydralAgeEstimator", "AgeEstimator"]
    assert editor.exemplars.role == "exemplars"
    assert set(editor.parts()) == {"engine", "exemplars", "age_estimator", "second_age_estimator", "sex_classifier"}


def test_the_per_sex_tables_are_weighed_softly(editor: FaceEditor, shared_dir: Path) -> None:
    """Issue 30: the engine's per-sex tables weigh a face by the mean of two classifiers' readings (the engine's
    own and Cydral's network), so one unsure or wrong reading cannot turn a face to the other sex: a held-out
    woman the engine alone reads as a coin toss is weighed as a woman, and the weight always lies between the
    two readings."""
    from ganime_age.faces import load_image

    for name, woman in (("0005", True), ("0120", False), ("0113", True)):
        rgb = load_image(shared_dir / "datasets" / "cfee_full" / "images" / f"{name}.jpg")
        face = editor.analyze(rgb)[0]
        own = editor.engine.female_probability(rgb, face.landmarks.landmarks)
        other = editor.sex_classifier.read_face(rgb, face)
        weight = editor.session(rgb).engine_face(face).female
        assert min(own, other) <= weight <= max(own, other) and weight == pytest.approx(0.5 * (own + other))
        assert (weight > 0.6) if woman else (weight < 0.4), (name, own, other, weight)
    assert editor.female_probability(rgb, face) is not None
    alone = FaceEditor(editor.engine, age_estimator=editor.age_estimator)
    assert alone.female_probability(rgb, face) is None  # without a classifier, the engine's own reading


def test_the_age_is_reconciled_from_both_estimators(editor: FaceEditor) -> None:
    """An edit never leans on one reading alone: the editor's age lies between the two networks' calibrated
    readings, nearer the surer one; an estimator given alone replaces both; a second one needs a first."""
    from ganime_age.faces import load_image

    rgb = load_image(ASTRONAUT)
    face = editor.analyze(rgb)[0]
    readings = [e.read_distribution(rgb, face) for e in editor.age_estimators]
    calibrated = [float(e.calibrated_age(r.age)) for e, r in zip(editor.age_estimators, readings, strict=True)]
    age = editor.estimate_age(rgb, face=0)
    assert min(calibrated) - 1e-6 <= age <= max(calibrated) + 1e-6, (age, calibrated)
    surer = int(np.argmin([r.spread for r in readings]))
    assert abs(age - calibrated[surer]) <= abs(age - calibrated[1 - surer]) + 1e-6
    alone = GanimeAge.from_pretrained(device="cpu", age_estimator=DEFAULT_ESTIMATOR_DIR)
    assert alone.second_age_estimator is None and type(alone.age_estimator).__name__ == "AgeEstimator"
    assert alone.estimate_age(rgb, face=0) == pytest.approx(calibrated[1])
    with pytest.raises(WeightsError, match="needs a first"):
        FaceEditor(editor.engine, second_age_estimator=editor.second_age_estimator)


def test_every_model_declares_its_role() -> None:
    for model_type in MODEL_REGISTRY:
        assert model_class(model_type).role in EDITOR_ROLES + OTHER_ROLES, model_type


def test_an_editor_saves_and_loads_as_a_folder_with_the_same_edits(editor: FaceEditor, tmp_path: Path) -> None:
    folder = editor.save_pretrained(tmp_path / "my-editor")
    written = json.loads((folder / MANIFEST_NAME).read_text())
    assert written["engine"] == "engine" and written["age_estimator"] == "age-estimator" and written["refiner"] is None
    assert written["second_age_estimator"] == "second-age-estimator" and written["sex_classifier"] == "sex-classifier"
    for part in ("engine", "age-estimator", "second-age-estimator", "sex-classifier"):
        assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in (folder / part).iterdir()}
    loaded = GanimeAge.from_pretrained(folder, device="cpu")
    expected = np.asarray(editor.edit(ASTRONAUT, age=70, aus={"AU12": 2.0}))
    np.testing.assert_array_equal(np.asarray(loaded.edit(ASTRONAUT, age=70, aus={"AU12": 2.0})), expected)
    # a part named by keyword replaces the manifest's
    swapped = GanimeAge.from_pretrained(folder, engine=DEFAULT_ENGINE_DIR, device="cpu")
    np.testing.assert_array_equal(np.asarray(swapped.edit(ASTRONAUT, age=70, aus={"AU12": 2.0})), expected)


def test_one_model_folder_joins_the_default_editor(tmp_path: Path) -> None:
    """An engine folder alone (no editor.json) is the default editor with that engine."""
    engine = shutil.copytree(DEFAULT_ENGINE_DIR, tmp_path / "engine")
    alone = GanimeAge.from_pretrained(engine, device="cpu")
    assert alone.age_estimator is not None and alone.refiner is None and alone.engine.role == "engine"


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ({"engine": "../outside"}, "no folder inside the editor"),
        ({"engine": "engine", "painter": "x"}, "unknown parts"),
        ({"age_estimator": "age-estimator"}, "names no engine"),
        ({"engine": "age-estimator"}, "not the engine asked for"),
        ({"engine": 7}, "must be a folder or Hub id"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_broken_manifest_is_a_typed_error(tmp_path: Path, manifest: object, says: str) -> None:
    folder = tmp_path / "editor"
    shutil.copytree(DEFAULT_ENGINE_DIR, folder / "engine")
    shutil.copytree(DEFAULT_ESTIMATOR_DIR, folder / "age-estimator")
    (tmp_path / "outside").mkdir()
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match=says):
        GanimeAge.from_pretrained(folder, device="cpu")


def test_an_editor_written_by_a_newer_major_version_is_refused(editor: FaceEditor, tmp_path: Path) -> None:
    """editor.json's ganime_age_version was never read: a folder a newer major version wrote (whose format may have
    changed) loaded as if this version had written it."""
    from ganime_age import __version__
    from ganime_age.errors import NewerVersionError

    folder = editor.save_pretrained(tmp_path / "editor")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["ganime_age_version"] == __version__
    newer = f"{int(__version__.split('.')[0]) + 1}.0.0"
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "ganime_age_version": newer}))
    with pytest.raises(NewerVersionError, match=rf"written by ganime-age {newer}, a newer major version .*upgrade"):
        GanimeAge.from_pretrained(folder, device="cpu")
    assert issubclass(NewerVersionError, WeightsError)
    for loads in (None, __version__, "0.0.1"):  # no version (written before versions were kept), this one, older
        (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "ganime_age_version": loads}))
        assert find_manifest(folder) == EditorManifest.from_json(json.dumps(manifest), "x")
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "ganime_age_version": ["x" * 1000]}))
    with pytest.raises(WeightsError, match=r"ganime_age_version must be a version such as '0.1.0'") as raised:
        find_manifest(folder)
    assert len(str(raised.value)) < 300


def test_a_manifest_round_trips() -> None:
    manifest = EditorManifest(engine="engine", age_estimator="owner/estimator")
    assert EditorManifest.from_json(manifest.to_json(), "test") == manifest


def test_push_to_hub_without_a_network_is_a_typed_error(editor: FaceEditor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubError, match="could not publish"):
        editor.push_to_hub("someone/an-editor", token="hf_not_a_real_token")
    assert issubclass(HubError, GanimeAgeError)
