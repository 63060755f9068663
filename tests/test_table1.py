"""Table I (training/evaluate.py table1): held-out UTKFace faces aged 20-29 edited through the full editor, the
engine alone and with a shipped refiner, judged by dlib (verification at FAR 1%) and three age readings (EAM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.evaluate import main as evaluate_main
from training.evaluation.metrics import bootstrap_difference
from training.evaluation.table1 import (
    ENGINE_LABEL,
    MI_PAIR,
    TARGET_GROUPS,
    default_pairs,
    identity_threshold,
    parse_refiner,
    run_tasks,
)

REFINER = "ganimation-age"


def test_rows_are_named_by_name_folder_or_label() -> None:
    assert parse_refiner("ganimation-age") == ("ganimation-age", "ganimation-age")
    assert parse_refiner("/work/runs/agetransgan_mi_refiner/export") == (
        "agetransgan_mi_refiner",
        "/work/runs/agetransgan_mi_refiner/export",
    )
    assert parse_refiner("agetransgan-mi=runs/x/export/") == ("agetransgan-mi", "runs/x/export/")


def test_mi_is_compared_with_no_mi_and_each_refiner_with_the_engine() -> None:
    labels = [ENGINE_LABEL, "agetransgan-mi", "agetransgan", "ragan"]
    assert default_pairs(labels) == [MI_PAIR] + [(label, ENGINE_LABEL) for label in labels[1:]]
    assert default_pairs([ENGINE_LABEL]) == []


def test_the_bootstrap_interval_is_paired_over_inputs() -> None:
    rng = np.random.default_rng(0)
    b = rng.normal(30.0, 5.0, 40)
    same = bootstrap_difference(b + 1.0, b, draws=200)
    assert same["difference"] == pytest.approx(1.0) and same["low"] <= 1.0 <= same["high"]
    noise = bootstrap_difference(b + rng.normal(0.0, 1.0, 40), b, draws=500)
    assert noise["low"] < noise["difference"] < noise["high"] and noise["high"] - noise["low"] < 1.5
    missing = b.copy()
    missing[:5] = np.nan  # an edit no face was found in: left out of the EAM
    assert np.isfinite(bootstrap_difference(missing, b, draws=50)["difference"])


def test_the_identity_threshold_lets_far_of_the_pairs_through() -> None:
    rng = np.random.default_rng(1)
    descriptors = rng.normal(size=(60, 8)).astype(np.float32)
    threshold, pairs = identity_threshold(descriptors, far=0.01)
    first, second = np.triu_indices(60, k=1)
    distances = np.linalg.norm(descriptors[first] - descriptors[second], axis=1)
    assert pairs == 60 * 59 // 2 and np.mean(distances < threshold) <= 0.01


@pytest.fixture(scope="module")
def small_utkface(tmp_path_factory: pytest.TempPathFactory, utkface_files: list[Path]) -> Path:
    """500 UTKFace photos spread over the ages (names start with the age), as links: its test split (a content
    hash, as prepare_data's) holds about 50 of them."""
    folder = tmp_path_factory.mktemp("utkface")
    for index in np.linspace(0, len(utkface_files) - 1, 500).round().astype(int):
        (folder / utkface_files[index].name).symlink_to(utkface_files[index])
    return folder


def test_table1_edits_held_out_faces_through_the_editor(
    small_utkface: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.evaluation.gates import test_photos

    out_json, out_md, samples = tmp_path / "table1.json", tmp_path / "table1.md", tmp_path / "grids"
    code = evaluate_main(
        [
            "table1",
            "--utkface",
            str(small_utkface),
            "--refiner",
            REFINER,
            "--max-inputs",
            "2",
            "--max-real",
            "1",
            "--bootstrap",
            "50",
            "--samples",
            str(samples),
            "--sample-inputs",
            "2",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    result = json.loads(out_json.read_text())
    assert [row["label"] for row in result["systems"]] == [ENGINE_LABEL, REFINER]
    assert result["systems"][1]["refiner_type"] == "GanimationAge" and result["systems"][0]["refiner"] is None
    assert len(result["groups"]) == len(TARGET_GROUPS) == 9 and "20-29" not in result["groups"]
    assert result["inputs"] == 2 and 20 <= result["input_true_age"] <= 29
    held_out = {p.path.name for p in test_photos("utkface", small_utkface)}  # never a training face
    assert len(held_out) < 100
    for row in result["systems"]:
        for values in row["groups"].values():
            assert 0.0 <= values["verification"] <= 1.0
            for key in ("shipped", "dlib", "cnn"):
                assert values[f"eam_{key}"] is None or 0.0 <= values[f"eam_{key}"] <= 100.0
    assert {g for g, v in result["real"].items() if v["faces"]} <= set(result["groups"])
    assert [(c["first"], c["second"]) for c in result["comparisons"]] == [(REFINER, ENGINE_LABEL)]
    threshold = result["identity_threshold"]
    assert 0.2 < threshold["distance"] < 0.8 and threshold["impostor_pairs"] >= 1
    markdown = out_md.read_text()
    headers = (
        "| Verif.% (dlib, FAR 1%) |",
        "| EAM, shipped estimator |",
        "| EAM, dlib's age network |",
        "| EAM, compact CNN |",
    )
    for header in headers:
        assert header in markdown
    assert "| real test faces of the group |" in markdown and "What differs from AgeTransGAN's Table I" in markdown
    assert f"{REFINER} - {ENGINE_LABEL}" in markdown
    grids = sorted(p.name for p in samples.iterdir())
    assert grids == result["samples"] == [f"table1_{ENGINE_LABEL}.jpg", f"table1_{REFINER}.jpg"]
    with Image.open(samples / grids[0]) as grid:
        assert grid.height == 10 * 256 and grid.width >= 2 * 256  # the input and 9 groups, 2 inputs, 256 px tiles
    assert "engine + ganimation-age" in capsys.readouterr().out


def test_one_worker_reads_in_this_process(utkface_files: list[Path]) -> None:
    """--workers 1 edits and reads without a pool (the e2e test above runs the default two processes)."""
    photo = next(p for p in utkface_files if p.name.startswith("25_"))
    real, edited = run_tasks([("real", str(photo), False), ("input", str(photo), True)], None, [], 1, 0.0)
    assert real is not None and real["descriptor"].shape == (128,)
    assert all(10 < real[key] < 60 for key in ("shipped", "dlib", "cnn"))  # three readings of a 25-year-old
    assert edited is not None and edited["descriptor"] == pytest.approx(real["descriptor"])
    engine = edited["values"][ENGINE_LABEL]
    assert engine["distance"].shape == (len(TARGET_GROUPS),)
    assert all(np.isfinite(engine[key]).any() for key in ("shipped", "dlib", "cnn"))
    assert edited["tiles"][ENGINE_LABEL]["input"].shape == (256, 256, 3) and len(edited["tiles"][ENGINE_LABEL]) == 10


def test_table1_refuses_an_unknown_refiner(small_utkface: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = evaluate_main(["table1", "--utkface", str(small_utkface), "--refiner", "no-such", "--max-inputs", "1"])
    error = capsys.readouterr().err
    assert code == 2 and "unknown refiner 'no-such'" in error and REFINER in error
