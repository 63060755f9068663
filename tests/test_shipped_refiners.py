"""Shipped refiners, by name (issue 32): the registry is the folders under weights/refiners/, each name loads in the
Python API, the CLI and the Space alike, an unknown name is a typed error listing the names, and a shipped refiner
edits a real face on top of the engine, changing the engine's edit only around the face."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.cli import main as cli_main
from ganime_age.editing import (
    ENGINE_ALONE,
    REFINERS_DIR,
    EditorConfig,
    FaceEditor,
    refiner_names,
    resolve_refiner,
    shipped_refiners,
)
from ganime_age.errors import UnknownRefinerError, WeightsError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = "ganimation-age"
TARGET_AGE = 70.0


@pytest.fixture(scope="module")
def engine() -> FaceEditor:
    return FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))


@pytest.fixture(scope="module")
def face_photo(shared_dir: Path) -> Path:
    """A held-out-age UTKFace photo (a 25-year-old) at its own 200 px."""
    return shared_dir / "datasets" / "utkface" / "25_0_0_20170102233320979.jpg.chip.jpg"


def test_the_registry_lists_exactly_the_shipped_refiner_folders() -> None:
    folders = sorted(p.name for p in REFINERS_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert list(shipped_refiners()) == folders and SHIPPED in folders
    assert refiner_names() == [ENGINE_ALONE, *folders]
    for folder in shipped_refiners().values():
        files = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "README.md"} <= files  # the Hub layout and a card
        assert not {p for p in files if p.endswith((".pt", ".ckpt", ".bin"))}  # safetensors only
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert "## Does it beat the engine alone?" in card and "## Table I" in card and "table1.jpg" in card


def test_the_registry_holds_refiners_only(tmp_path: Path) -> None:
    for name, model_type in [("ragan", "ragan"), ("agetransgan-mi", "agetransgan"), ("cnn", "age_estimator")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    (tmp_path / "notes").mkdir()  # no config.json
    assert list(shipped_refiners(tmp_path)) == ["agetransgan-mi", "ragan"]
    assert shipped_refiners(tmp_path / "missing") == {}


def test_names_resolve_and_an_unknown_one_lists_the_known_names(tmp_path: Path) -> None:
    assert resolve_refiner(SHIPPED) == str(REFINERS_DIR / SHIPPED)
    assert resolve_refiner("engine") is None and resolve_refiner("none") is None
    assert resolve_refiner(str(tmp_path)) == str(tmp_path)  # a folder, as given
    assert resolve_refiner("owner/refiner") == "owner/refiner"  # a Hub id, as given
    with pytest.raises(UnknownRefinerError) as raised:
        resolve_refiner("agetransgan-nope")
    assert isinstance(raised.value, WeightsError)
    assert all(name in str(raised.value) for name in refiner_names())
    with pytest.raises(UnknownRefinerError, match=SHIPPED):
        FaceEditor.from_pretrained(refiner="no-such-refiner")


def changed_pixels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max(axis=2) > 0


def test_a_shipped_refiner_edits_a_real_face_and_changes_only_the_face(engine: FaceEditor, face_photo: Path) -> None:
    refined = FaceEditor.from_pretrained(refiner=SHIPPED, config=EditorConfig(device="cpu"))
    assert type(refined.refiner).__name__ == "GanimationAge" and refined.engine.role == "engine"
    assert FaceEditor.from_pretrained(refiner="engine").refiner is None
    photo = np.asarray(Image.open(face_photo).convert("RGB"))
    alone = np.asarray(engine.edit(face_photo, age=TARGET_AGE))
    with_refiner = np.asarray(refined.edit(face_photo, age=TARGET_AGE))
    assert with_refiner.shape == alone.shape == photo.shape
    changed = changed_pixels(with_refiner, alone)
    assert changed.any()  # the refiner ran and changed something
    # only inside the face: the refiner's change lies within its aligned crop, around the face's box
    face = engine.analyze(face_photo)[0]
    x, y, w, h = face.detection.box
    grow = 0.35
    box = np.zeros(changed.shape, bool)
    box[
        max(0, int(y - grow * h)) : int(y + (1 + grow) * h) + 1, max(0, int(x - grow * w)) : int(x + (1 + grow) * w) + 1
    ] = True
    assert not (changed & ~box).any()
    # the same refiner put on the loaded engine alone (the Space's way) gives the same photo, sharing the analysis
    swapped = engine.with_refiner(SHIPPED)
    assert swapped.engine is engine.engine and swapped.sessions is engine.sessions and engine.refiner is None
    assert np.array_equal(np.asarray(swapped.edit(face_photo, age=TARGET_AGE)), with_refiner)
    assert engine.with_refiner(None).refiner is None
    # asked for nothing new, a face is not refined: the photo comes back as it was
    assert np.array_equal(np.asarray(swapped.edit(face_photo)), photo)


@pytest.mark.parametrize("name", sorted(shipped_refiners()))
def test_every_shipped_refiner_loads_by_name_and_through_an_editor_manifest(
    name: str, engine: FaceEditor, face_photo: Path, tmp_path: Path
) -> None:
    """Each shipped refiner (its own network class) loads by name, saves as an editor whose editor.json names it, and
    that editor loads and edits exactly as the named one; its change stays near the engine's edit."""
    by_name = FaceEditor.from_pretrained(refiner=name, config=EditorConfig(device="cpu"))
    assert by_name.refiner is not None and by_name.refiner.role == "refiner"
    folder = by_name.save_pretrained(tmp_path / "editor")
    assert json.loads((folder / "editor.json").read_text())["refiner"] == "refiner"
    loaded = FaceEditor.from_pretrained(folder, config=EditorConfig(device="cpu"))
    assert type(loaded.refiner) is type(by_name.refiner)
    edited = np.asarray(by_name.edit(face_photo, age=TARGET_AGE))
    assert np.array_equal(np.asarray(loaded.edit(face_photo, age=TARGET_AGE)), edited)
    alone = np.asarray(engine.edit(face_photo, age=TARGET_AGE))
    difference = np.abs(edited.astype(np.int16) - alone.astype(np.int16))
    assert difference.mean() < 3.0  # a refiner adds its change to the engine's edit; it does not redo it


def test_the_cli_takes_a_refiner_by_name(tmp_path: Path, face_photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {}
    for name in (ENGINE_ALONE, SHIPPED):
        out = tmp_path / f"{name}.png"
        code = cli_main(["edit", str(face_photo), "--age", "70", "--refiner", name, "--device", "cpu", "-o", str(out)])
        assert code == 0 and out.is_file()
        outputs[name] = np.asarray(Image.open(out).convert("RGB"))
    assert changed_pixels(outputs[SHIPPED], outputs[ENGINE_ALONE]).any()
    capsys.readouterr()
    code = cli_main(["edit", str(face_photo), "--age", "70", "--refiner", "nope", "-o", str(tmp_path / "x.png")])
    error = capsys.readouterr().err
    assert code == 2 and "unknown refiner 'nope'" in error and SHIPPED in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_the_space_offers_the_engine_and_each_shipped_refiner(tmp_path: Path) -> None:
    import gradio as gr

    from space import build_app
    from space.models import DEFAULT_KEY, EditorProvider, available_models

    choices = available_models(env_model="")
    assert [c.key for c in choices] == [DEFAULT_KEY, *shipped_refiners()]
    assert choices[0].refiner is None and choices[1].label == f"engine + {choices[1].key} (no better, Table I)"
    provider = EditorProvider(choices, device="cpu")
    demo = build_app(provider)
    dropdown = next(b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.elem_id == "age-model")
    assert dropdown.label == "Model" and dropdown.visible
    assert [value for _, value in dropdown.choices] == [c.key for c in choices]
    # each system loads once, on top of the one default editor
    refined = provider.get(SHIPPED)
    assert refined is provider.get(SHIPPED) and refined.engine is provider.get(DEFAULT_KEY).engine
    assert refined.refiner is not None and provider.get(DEFAULT_KEY).refiner is None
    # an env editor's folder is the base, and a refiners folder of one's own is listed by folder
    (tmp_path / "ragan").mkdir()
    (tmp_path / "ragan" / "config.json").write_text(json.dumps({"model_type": "ragan"}))
    own = available_models(tmp_path, env_model="")
    assert [c.key for c in own] == [DEFAULT_KEY, "ragan"] and own[1].refiner == str(tmp_path / "ragan")


def test_ship_refiner_refuses_an_untrained_export_and_ships_a_trained_one(tmp_path: Path) -> None:
    from training.ship_refiner import main as ship_main

    source = tmp_path / "export"
    source.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(REFINERS_DIR / SHIPPED / name, source / name)
    root = tmp_path / "refiners"
    assert ship_main([str(source), "untrained", "--root", str(root), "--table1", "x.json"]) == 2  # no card: steps?
    (source / "README.md").write_text("# x\n\n- Steps: 0 (batch 8)\n")
    assert ship_main([str(source), "untrained", "--root", str(root), "--table1", "x.json"]) == 2
    assert not root.exists() or not any(root.iterdir())
    table1 = json.loads((REFINERS_DIR / SHIPPED / "table1.json").read_text())["table1"]
    (tmp_path / "table1.json").write_text(json.dumps(table1))
    (source / "README.md").write_text("# x\n\n- Steps: 12 (batch 8)\n\n## Licence\n\nResearch only.\n")
    code = ship_main(
        [str(source), SHIPPED, "--root", str(root), "--table1", str(tmp_path / "table1.json"), "--card-note", "A note."]
    )
    assert code == 0
    shipped = shipped_refiners(root)
    assert list(shipped) == [SHIPPED]
    card = (shipped[SHIPPED] / "README.md").read_text(encoding="utf-8")
    assert "beat the engine alone" in card and "A note." in card and "Research only." in card
    assert "- Steps: 12" in card and "| engine alone |" in card
    assert {p.name for p in shipped[SHIPPED].iterdir()} >= {"config.json", "model.safetensors", "table1.json"}
    assert ship_main([str(source), SHIPPED, "--root", str(root), "--table1", str(tmp_path / "table1.json")]) == 2


def test_the_wheel_ships_the_refiners_folder() -> None:
    """hatch packs src/ganime_age whole (only weights/*/critic is left out): nothing excludes weights/refiners."""
    settings = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    wheel = settings.split("[tool.hatch.build.targets.wheel]", 1)[1].split("\n[", 1)[0]
    assert 'packages = ["src/ganime_age"]' in wheel
    assert "refiners" not in wheel and "safetensors" not in wheel
