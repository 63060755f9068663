"""The classical edit teacher (training/teacher.py) fitted on real prepared faces: UTKFace ages, CFEE codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganime_age.conditions import AU_NAMES
from training.data import PreparedFaces
from training.teacher import AGE_CENTRES, EditTeacher, age_hats, warp

MOUTH_CORNERS = (61, 291)  # MediaPipe face-mesh landmarks of the left and right lip corners


@pytest.fixture(scope="module")
def teacher(prepared_utk64: Path, prepared_cfee64: Path) -> EditTeacher:
    utk, cfee = PreparedFaces(prepared_utk64, "train"), PreparedFaces(prepared_cfee64, "train")
    return EditTeacher.fit(utk, cfee, min_support=1.0)  # 28 training faces: a face's worth per age will do


@pytest.fixture(scope="module")
def faces(prepared_utk64: Path) -> dict[str, torch.Tensor]:
    test = PreparedFaces(prepared_utk64, "test")
    items = [test[i] for i in range(len(test))]
    return {key: torch.stack([item[key] for item in items]).float() for key in ("image", "aus", "age", "landmarks")}


def test_age_hats_interpolate_between_centres() -> None:
    centres = np.array([10.0, 20.0, 40.0])
    hats = age_hats(torch.tensor([5.0, 15.0, 30.0, 40.0, 90.0], dtype=torch.float64), torch.from_numpy(centres))
    assert np.allclose(hats.sum(1), 1.0)
    assert np.allclose(hats[1], [0.5, 0.5, 0.0]) and np.allclose(hats[2], [0.0, 0.5, 0.5])
    assert np.allclose(hats[0], [1.0, 0.0, 0.0]) and np.allclose(hats[4], [0.0, 0.0, 1.0])  # clamped


def test_fit_keeps_only_ages_the_data_covers(teacher: EditTeacher, prepared_utk64: Path) -> None:
    ages = PreparedFaces(prepared_utk64, "train").ages
    centres = teacher.centres.tolist()
    assert 2 <= len(centres) <= len(AGE_CENTRES) and set(centres) <= set(AGE_CENTRES)
    assert min(centres) >= min(AGE_CENTRES) and centres[0] >= min(ages) - 10 and centres[-1] <= max(ages) + 10
    assert teacher.textures.shape[1:] == (3, 64, 64) and torch.isfinite(teacher.textures).all()


def test_an_edit_to_the_same_age_and_aus_returns_the_input(teacher: EditTeacher, faces: dict) -> None:
    x, aus, age = faces["image"], faces["aus"], faces["age"]
    assert torch.allclose(teacher.edit(x, aus, age, aus, age), x, atol=1e-5)


def test_ageing_changes_the_face_and_keeps_grey_photos_grey(teacher: EditTeacher, faces: dict) -> None:
    x, aus, age = faces["image"], faces["aus"], faces["age"]
    old = teacher.edit(x, aus, age, aus, torch.full_like(age, 80.0))
    young = teacher.edit(x, aus, age, aus, torch.full_like(age, 5.0))
    assert (old - young).abs().mean() > 0.02  # it does something
    assert (old - young).abs().mean() < 0.5  # and keeps the photo
    grey = x.mean(1, keepdim=True).expand_as(x).contiguous()
    aged_grey = teacher.edit(grey, aus, age, aus, torch.full_like(age, 80.0))
    assert (aged_grey - aged_grey.mean(1, keepdim=True)).abs().max() < 1e-5


def test_edits_of_a_mirrored_face_are_mirrored(teacher: EditTeacher, faces: dict) -> None:
    x, aus, age = faces["image"], faces["aus"], faces["age"]
    target_aus = aus.clone()
    target_aus[:, AU_NAMES.index("AU12")] = 4.0
    target_age = torch.full_like(age, 70.0)
    edited = teacher.edit(x, aus, age, target_aus, target_age)
    mirrored = teacher.edit(x.flip(-1), aus, age, target_aus, target_age).flip(-1)
    assert torch.allclose(edited, mirrored, atol=1e-4)


def test_a_smile_pulls_the_lip_corners_outwards_and_up(teacher: EditTeacher, faces: dict) -> None:
    """The AU12 flow, fitted on CFEE's coded pairs, moves the lip corners the way a smile does."""
    corners = faces["landmarks"][:, list(MOUTH_CORNERS)].mean(0)  # (2, 2): left, right lip corner
    flow = teacher.au_flows[AU_NAMES.index("AU12")]  # (2, H, W) per AU unit
    left = flow[:, int(corners[0, 1].round()), int(corners[0, 0].round())]
    right = flow[:, int(corners[1, 1].round()), int(corners[1, 0].round())]
    assert left[0] < -0.1 and right[0] > 0.1  # outwards
    assert left[1] < 0 and right[1] < 0  # and up


def test_warp_moves_content_along_the_flow() -> None:
    image = torch.zeros(1, 1, 16, 16)
    image[..., 8, 5] = 1.0
    flow = torch.zeros(1, 2, 16, 16)
    flow[:, 0] = 2.0  # two pixels to the right
    moved = warp(image, flow)
    assert moved[0, 0, 8, 7] == pytest.approx(1.0) and moved[0, 0, 8, 5] == pytest.approx(0.0)


def test_saved_teacher_loads_the_same(teacher: EditTeacher, tmp_path: Path) -> None:
    teacher.save(tmp_path / "teacher.safetensors")
    again = EditTeacher.load(tmp_path / "teacher.safetensors")
    for name in ("centres", "textures", "age_flows", "au_flows"):
        assert torch.equal(getattr(again, name), getattr(teacher, name))


def test_fit_refuses_data_without_enough_known_ages(prepared_utk64: Path, prepared_cfee64: Path) -> None:
    with pytest.raises(ValueError, match="known age"):
        EditTeacher.fit(PreparedFaces(prepared_cfee64, "train"))  # CFEE's ages are estimates
    with pytest.raises(ValueError, match="too few faces"):
        EditTeacher.fit(PreparedFaces(prepared_utk64, "train"), min_support=50.0)
