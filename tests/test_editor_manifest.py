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
        "age_estimator": "age-estimator",
    }
    assert editor.engine.role == "engine" and editor.age_estimator.role == "age_estimator" and editor.refiner is None
    assert set(editor.parts()) == {"engine", "age_estimator"}


def test_every_model_declares_its_role() -> None:
    for model_type in MODEL_REGISTRY:
        assert model_class(model_type).role in EDITOR_ROLES + OTHER_ROLES, model_type


def test_an_editor_saves_and_loads_as_a_folder_with_the_same_edits(editor: FaceEditor, tmp_path: Path) -> None:
    folder = editor.save_pretrained(tmp_path / "my-editor")
    written = json.loads((folder / MANIFEST_NAME).read_text())
    assert written["engine"] == "engine" and written["age_estimator"] == "age-estimator" and written["refiner"] is None
    for part in ("engine", "age-estimator"):
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
