"""Table I (training/evaluate.py table1) end to end on real prepared faces with tiny ageing models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganime_age.conditions import age_to_group
from ganime_age.models.agetransgan import AgeTransGAN
from ganime_age.models.ganimation_age import GanimationAge
from training.data import PreparedFaces
from training.eval_table1 import TARGET_GROUPS, default_estimator, parse_model
from training.evaluate import main as evaluate_main

TINY_AGETRANSGAN = {
    "image_size": 32,
    "channel_base": 512,
    "channel_max": 32,
    "style_dim": 32,
    "mapping_layers": 2,
    "identity_blocks": 1,
}
TINY_GANIME = {"image_size": 32, "conv_dim": 8, "num_residual_blocks": 1, "age_embedding_dim": 16}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("table1_models")
    torch.manual_seed(0)
    AgeTransGAN(TINY_AGETRANSGAN).save_pretrained(root / "agetransgan")
    GanimationAge(TINY_GANIME).save_pretrained(root / "ganime")
    return {"agetransgan": root / "agetransgan", "ganime": root / "ganime"}


def test_parse_model() -> None:
    assert parse_model("AgeTransGAN + MI=runs/x/export") == ("AgeTransGAN + MI", "runs/x/export")
    assert parse_model("runs/agetransgan/export/") == ("export", "runs/agetransgan/export/")


def test_table1_end_to_end(
    prepared_utk: dict, tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = prepared_utk["output"]
    out_json, out_md = tmp_path / "table1.json", tmp_path / "table1.md"
    code = evaluate_main(
        [
            "table1",
            "--model",
            f"AgeTransGAN={tiny_models['agetransgan']}",
            "--model",
            f"GANimation-age={tiny_models['ganime']}",
            "--data",
            str(data),
            "--split",
            "train",
            "--inputs",
            "all",
            "--max-faces",
            "10",
            "--max-inputs",
            "4",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    result = json.loads(out_json.read_text())
    assert result["estimator"] == str(default_estimator())
    assert [row["label"] for row in result["models"]] == ["AgeTransGAN", "GANimation-age"]
    assert len(result["groups"]) == len(TARGET_GROUPS) == 9 and "20-29" not in result["groups"]
    for row in result["models"]:
        assert row["num_inputs"] == 4 and row["identity"]["impostor_pairs"] == 45
        for values in row["groups"].values():
            assert 0.0 <= values["verification"] <= 1.0
            assert 0.0 <= values["eam"] <= 100.0 and -1.0 <= values["identity_cosine"] <= 1.0
    # the real row: the mean labelled age of each group over the whole split
    ages = PreparedFaces(data, "train").ages
    groups = np.array([age_to_group(a) for a in ages])
    for label, group in zip(result["groups"], TARGET_GROUPS, strict=True):
        real = result["real"][label]
        assert real["count"] == int((groups == group).sum())
        if real["count"]:
            assert real["mean"] == pytest.approx(float(ages[groups == group].mean()), rel=1e-5)
        else:
            assert real["mean"] is None  # NaN is written as null
    markdown = out_md.read_text()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2 + 1  # header, separator, two models, the real row
    assert table[0].startswith("| Model | 0-2 Verif.% | 0-2 EAM |") and table[-1].startswith("| Real")
    assert "AgeTransGAN" in capsys.readouterr().out


def test_table1_rejects_a_model_that_cannot_age(prepared_utk: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code = evaluate_main(
        [
            "table1",
            "--model",
            str(default_estimator()),
            "--data",
            str(prepared_utk["output"]),
            "--split",
            "train",
            "--max-faces",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert code == 2
    assert "not an ageing model" in capsys.readouterr().err
