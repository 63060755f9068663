"""training/data/prepared.py: PreparedFaces reads the prepared dataset (the session's 50 real UTKFace faces)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganime_age.errors import DatasetError
from training.data.prepared import PreparedFaces, list_splits


def test_items_are_the_documented_tensors(prepared_utk: dict) -> None:
    dataset = PreparedFaces(prepared_utk["output"], split="train")
    assert len(dataset) == prepared_utk["report"]["rows"]["train"]
    item = dataset[0]
    assert set(item) == {"image", "age", "age_group", "aus", "pose", "landmarks", "age_known", "au_coded"}
    assert float(item["age_known"]) == 1.0 and float(item["au_coded"]) == 0.0  # UTKFace: labelled ages, read AUs
    assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() < item["image"].max() <= 1.0
    assert item["age"].shape == () and item["age"].dtype == torch.float32
    assert item["age_group"].shape == () and item["age_group"].dtype == torch.int64
    assert item["aus"].shape == (17,) and item["aus"].dtype == torch.float32
    assert item["pose"].shape == (3,) and item["landmarks"].shape == (478, 2)

    # the same values as the Parquet rows, in shard order
    first = (
        pq.read_table(sorted((prepared_utk["output"] / "data").glob("train-*.parquet"))[0]).slice(0, 1).to_pylist()[0]
    )
    assert dataset.ids[0] == first["id"]
    assert float(item["age"]) == pytest.approx(first["age"])
    np.testing.assert_allclose(item["aus"].numpy(), first["aus"], rtol=1e-6)
    np.testing.assert_allclose(item["landmarks"].numpy().reshape(-1), first["landmarks"], rtol=1e-6)
    decoded = np.asarray(Image.open(io.BytesIO(first["image"]["bytes"])).convert("RGB"), np.float32)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), decoded / 127.5 - 1.0, atol=1e-6)


def test_default_collate_batches(prepared_utk: dict) -> None:
    dataset = PreparedFaces(prepared_utk["output"], split="test")
    batch = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    n = len(dataset)
    assert batch["image"].shape == (n, 3, 128, 128)
    assert batch["age"].shape == (n,) and batch["age_group"].dtype == torch.int64
    assert batch["aus"].shape == (n, 17) and batch["pose"].shape == (n, 3) and batch["landmarks"].shape == (n, 478, 2)


def test_resize_and_max_samples(prepared_utk: dict) -> None:
    full = PreparedFaces(prepared_utk["output"])
    small = PreparedFaces(prepared_utk["output"], image_size=64, max_samples=5)
    assert len(small) == 5
    big, tiny = full[3], small[3]
    assert tiny["image"].shape == (3, 64, 64)
    # landmarks follow the image: pixel centres scale about the half-pixel offset
    np.testing.assert_allclose(tiny["landmarks"].numpy(), (big["landmarks"].numpy() + 0.5) / 2 - 0.5, atol=1e-4)
    downscaled = torch.nn.functional.avg_pool2d(big["image"][None], 2)[0]
    assert (tiny["image"] - downscaled).abs().mean() < 0.05
    assert torch.equal(tiny["aus"], big["aus"]) and float(tiny["age"]) == float(big["age"])


def test_hflip_mirrors_image_landmarks_and_pose(prepared_utk: dict) -> None:
    plain = PreparedFaces(prepared_utk["output"], max_samples=4)
    flipping = PreparedFaces(prepared_utk["output"], max_samples=4, hflip=True)
    torch.manual_seed(0)
    outcomes = set()
    for _ in range(12):
        index = 2
        a, b = plain[index], flipping[index]
        flipped = torch.equal(b["image"], a["image"].flip(-1))
        if not flipped:
            assert torch.equal(b["image"], a["image"]) and torch.equal(b["landmarks"], a["landmarks"])
            continue
        outcomes.add(True)
        np.testing.assert_allclose(b["landmarks"][:, 0].numpy(), 127 - a["landmarks"][:, 0].numpy(), atol=1e-4)
        assert torch.equal(b["landmarks"][:, 1], a["landmarks"][:, 1])
        assert b["pose"][0] == -a["pose"][0] and b["pose"][1] == a["pose"][1] and b["pose"][2] == -a["pose"][2]
        assert torch.equal(b["aus"], a["aus"]) and torch.equal(b["age"], a["age"])
    assert outcomes == {True}, "12 draws at p=0.5 should include a flip"


def test_list_splits_counts_rows(prepared_utk: dict) -> None:
    report = prepared_utk["report"]
    assert list_splits(prepared_utk["output"]) == {"train": report["rows"]["train"], "test": report["rows"]["test"]}


def test_clear_errors(prepared_utk: dict, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        PreparedFaces(tmp_path / "missing")
    with pytest.raises(DatasetError, match="validation"):
        PreparedFaces(prepared_utk["output"], split="validation")
    with pytest.raises(IndexError):
        PreparedFaces(prepared_utk["output"], max_samples=3)[3]
    with pytest.raises(DatasetError, match="data/"):
        list_splits(tmp_path)
