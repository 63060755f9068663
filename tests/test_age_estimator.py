"""AgeEstimator: the mean-variance loss, learning on real faces, Hub round trips, and the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import face_tensor, utk_age

from ganime_age.errors import WeightsError
from ganime_age.hub import load_pretrained
from ganime_age.models.age_estimator import AgeEstimator, expected_age, mean_variance_loss

TINY = {"image_size": 32, "base_channels": 8, "channel_multipliers": [1, 2, 4]}
SHIPPED = Path(__file__).resolve().parents[1] / "src" / "ganime_age" / "weights" / "age-estimator"


def spread_faces(files: list[Path], count: int) -> list[Path]:
    """`count` faces with ages spread over 1..90 (deterministic)."""
    by_age: dict[int, list[Path]] = {}
    for path in files:
        by_age.setdefault(utk_age(path), []).append(path)
    wanted = np.linspace(1, 90, count).round().astype(int)
    return [by_age[min(by_age, key=lambda a, w=w: abs(a - w))][0] for w in wanted]


def test_mean_variance_loss_terms() -> None:
    ages = torch.tensor([3.0, 40.0, 77.0])
    sharp = torch.full((3, 101), -30.0)
    sharp[torch.arange(3), ages.long()] = 30.0
    perfect = mean_variance_loss(sharp, ages)
    assert perfect.mean < 1e-6 and perfect.variance < 1e-6 and perfect.total < 1e-6
    # the terms are 0-d tensors: compare Python floats (pytest 9.2's approx iterates over a tensor operand)
    flat = mean_variance_loss(torch.zeros(3, 101), ages)
    softmax, mean, variance, total = (flat.softmax.item(), flat.mean.item(), flat.variance.item(), flat.total.item())
    assert variance == pytest.approx(850.0, rel=1e-3)  # a uniform 0..100 has variance (101²-1)/12
    assert mean == pytest.approx(0.5 * ((50 - ages) ** 2).mean().item(), rel=1e-4)
    assert total == pytest.approx(softmax + 0.2 * mean + 0.05 * variance, rel=1e-5)
    assert torch.allclose(expected_age(sharp), ages, atol=1e-3)


def test_shapes_and_any_input_size(utk_sample: list[Path]) -> None:
    torch.manual_seed(0)
    model = AgeEstimator().eval()
    faces = face_tensor(utk_sample[:3], 200)
    with torch.no_grad():
        logits = model(torch.nn.functional.interpolate(faces, size=64, mode="area"))
        years = model.predict(faces)
        years_small = model.predict(face_tensor(utk_sample[:3], 48))
    assert logits.shape == (3, 101)
    assert years.shape == years_small.shape == (3,)
    assert years.min() >= 0 and years.max() <= 100
    with pytest.raises(ValueError, match="expected images"):
        model.predict(faces[0])
    with pytest.raises(ValueError, match="too small"):
        AgeEstimator({"image_size": 8})


def test_loss_decreases_on_real_faces(utkface_files: list[Path]) -> None:
    paths = spread_faces(utkface_files, 16)
    faces = face_tensor(paths, 32)
    ages = torch.tensor([float(utk_age(p)) for p in paths])
    torch.manual_seed(0)
    model = AgeEstimator(TINY).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss = model.loss(faces, ages).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_round_trip_and_strict_loading(tmp_path: Path, utk_sample: list[Path]) -> None:
    torch.manual_seed(2)
    model = AgeEstimator(TINY).eval()
    model.save_pretrained(tmp_path / "est")
    loaded = load_pretrained(tmp_path / "est")
    assert isinstance(loaded, AgeEstimator) and loaded.config == model.config
    faces = face_tensor(utk_sample[:4], 64)
    with torch.no_grad():
        assert torch.equal(loaded.predict(faces), model.predict(faces))
    AgeEstimator({**TINY, "base_channels": 12}).save_pretrained(tmp_path / "wide")
    (tmp_path / "wide" / "config.json").write_text((tmp_path / "est" / "config.json").read_text())
    with pytest.raises(WeightsError, match="wrong shape"):
        load_pretrained(tmp_path / "wide")


# -- the shipped, trained estimator -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> AgeEstimator:
    model = load_pretrained(SHIPPED)
    assert isinstance(model, AgeEstimator)
    return model


def test_shipped_folder_is_small_and_documented() -> None:
    assert (SHIPPED / "model.safetensors").stat().st_size < 5 * 2**20
    card = (SHIPPED / "README.md").read_text()
    assert "UTKFace" in card and "non-commercial" in card and "MAE" in card
    assert "license: other" in card


def held_out(paths: list[Path], count: int, seed: int) -> list[Path]:
    """`count` random faces of `paths` that the prepared UTKFace puts in its test split (never trained on)."""
    from training.prepare_data import file_sha1, split_for

    picked = []
    for index in np.random.default_rng(seed).permutation(len(paths)):
        if split_for(file_sha1(paths[index]), 0.1) == "test":
            picked.append(paths[index])
            if len(picked) == count:
                break
    return picked


def test_shipped_estimator_orders_children_before_elders(shipped: AgeEstimator, utkface_files: list[Path]) -> None:
    young = held_out([p for p in utkface_files if utk_age(p) <= 10], 20, seed=1)
    old = held_out([p for p in utkface_files if utk_age(p) >= 60], 20, seed=2)
    assert len(young) == len(old) == 20
    with torch.no_grad():
        young_years = shipped.predict(face_tensor(young, 128))
        old_years = shipped.predict(face_tensor(old, 128))
    print(f"shipped estimator: mean {young_years.mean():.1f} on 20 faces aged <= 10, {old_years.mean():.1f} on >= 60")
    assert young_years.mean() + 30 < old_years.mean()


def test_shipped_estimator_mae(shipped: AgeEstimator, utkface_files: list[Path]) -> None:
    faces = held_out(utkface_files, 50, seed=3)
    ages = torch.tensor([float(min(utk_age(p), 100)) for p in faces])
    with torch.no_grad():
        years = shipped.predict(face_tensor(faces, 128))
    mae = (years - ages).abs().mean().item()
    constant = (ages - ages.median()).abs().mean().item()
    print(f"shipped estimator MAE on 50 held-out UTKFace faces: {mae:.2f} years (median guess: {constant:.2f})")
    assert mae < 12.0 and mae < 0.7 * constant


def test_training_system_with_the_trainer(prepared_utk: dict, tmp_path: Path) -> None:
    """The tiny config through training/train.py: trains, samples, exports with the test-split MAE in the card."""
    from training.train import load_run_config, run_training

    config = Path(__file__).resolve().parents[1] / "training/configs/age_estimator_tiny.yaml"
    run = load_run_config(
        config, [f"train.data_dir={prepared_utk['output']}", f"train.output_dir={tmp_path}", "train.max_steps=3"]
    )
    summary = run_training(run)
    model = load_pretrained(summary["export_dir"])
    assert isinstance(model, AgeEstimator) and model.config.image_size == 32
    card = (Path(summary["export_dir"]) / "README.md").read_text()
    assert "MAE" in card and "test split" in card
    assert (tmp_path / "samples" / "step-0000002.png").is_file()
