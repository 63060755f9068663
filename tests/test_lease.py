"""training/lease.py: a GPU lease's whole cycle on the CPU — data in carry-sized parts, slices of
training that resume, the export back in pieces, joined, hash-checked and strict-loaded here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_refiner_pairs

from ganime_age.errors import WeightsError
from ganime_age.models.ganimation_age import GanimationAge
from training.lease import MANIFEST, META_TAR, PIECE_PREFIX, SUMMARY, gather_data, main, pack_data

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "training" / "configs" / "ganimation_age_tiny.yaml")
SMALL = [
    "system.generator.conv_dim=8",
    "system.generator.num_residual_blocks=1",
    "system.generator.age_embedding_dim=16",
    "system.discriminator.conv_dim=8",
    "system.critic_steps=1",
    "system.lambda_identity=0",
    "train.batch_size=4",
    "train.sample_every=1",
    "train.log_every=1",
    "train.max_steps=50",
]


def parquet_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "data").glob("*.parquet"))


@pytest.fixture(scope="module")
def sharded(prepared_utk64: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny prepared set with its training rows cut into 4 shards, as a big prepared set is."""
    import shutil

    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("sharded") / "utk64"
    shutil.copytree(prepared_utk64, folder)
    train = pq.read_table(folder / "data" / "train-00000.parquet")
    rows = -(-len(train) // 4)
    for index in range(4):
        pq.write_table(train.slice(index * rows, rows), folder / "data" / f"train-{index:05d}.parquet")
    return folder


def test_pack_data_splits_under_the_limit_and_gathers_back(sharded: Path, tmp_path: Path) -> None:
    shards = sorted((sharded / "data").glob("*.parquet"))
    limit_mib = (parquet_bytes(sharded) / 2.5) / (1024 * 1024)  # about three parts
    parts = pack_data(sharded, tmp_path / "carry", limit_mib)
    assert len(parts) >= 2
    for part in parts:
        assert sum(f.stat().st_size for f in part.rglob("*") if f.is_file() and f.name != MANIFEST) <= limit_mib * 2**20
        assert json.loads((part / MANIFEST).read_text())["parts"] == len(parts)
    gathered = tmp_path / "gathered"
    first = gather_data(parts[:1], gathered)
    assert not first["complete"] and first["shards"] == len(shards)
    later = gather_data(parts[1:], gathered)  # a later call: the first part is already on the machine
    assert later["complete"] and later["missing"] == []
    assert parquet_bytes(gathered) == parquet_bytes(sharded)
    assert (gathered / "prepare_report.json").is_file()
    # a shard damaged on the machine (same size, other bytes) counts as missing until carried again
    damaged = gathered / "data" / "train-00002.parquet"
    raw = bytearray(damaged.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    assert gather_data([], gathered)["missing"] == ["train-00002.parquet"]


def test_slices_resume_and_the_export_comes_back_in_pieces(
    sharded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = pack_data(sharded, tmp_path / "packed", parquet_bytes(sharded) / 1.5 / 2**20)
    calls = [tmp_path / f"carried-{n}" for n in (1, 2, 3)]  # what each device call finds carried in
    for folder in calls:
        folder.mkdir()
    parts[0].rename(calls[0] / parts[0].name)
    for part in parts[1:]:
        part.rename(calls[1] / part.name)
    data, run_dir, out = tmp_path / sharded.name, tmp_path / "run", tmp_path / "out"
    common = ["run", "--config", TINY, "--data", str(data), "--output", str(run_dir), "--out", str(out)]
    common += ["--minutes", "0.0001", "--eval-faces", "4", "--piece-mib", "0.05"]

    assert main([*common, "--carry-dir", str(calls[0]), *SMALL]) == 0  # call 1: only the first part arrived
    printed = capsys.readouterr().out
    assert "waiting for data" in printed and not (run_dir / "checkpoints").exists()
    assert printed.rstrip().splitlines()[-1].startswith("| wall time |")  # the summary table comes last

    assert main([*common, "--carry-dir", str(calls[1]), *SMALL]) == 0  # call 2: data complete, one slice
    printed = capsys.readouterr().out
    assert "| steps | 0 -> 1 of 50 (time budget) |" in printed
    assert main([*common, "--carry-dir", str(calls[2]), *SMALL]) == 0  # call 3: nothing new; resumes
    printed = capsys.readouterr().out
    assert "| steps | 1 -> 2 of 50 (time budget) |" in printed and "identity cosine" in printed

    summary = json.loads((out / SUMMARY).read_text())
    pieces = sorted(out.glob(PIECE_PREFIX + "*"))
    assert len(pieces) >= 2 and all(p.stat().st_size <= 0.05 * 2**20 for p in pieces)
    assert [p.name for p in pieces] == summary["packed"]["pieces"]
    assert summary["evaluation"]["num_faces"] == 4
    target = tmp_path / "installed" / "ganime-age-64"
    assert main(["unpack", "--from", str(out), "--to", str(target)]) == 0
    model = GanimationAge.from_pretrained(target)
    exported = GanimationAge.from_pretrained(run_dir / "export")
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), exported.state_dict().values(), strict=True)
    )
    card = (target / "README.md").read_text()
    assert "identity" in card.lower() and (target / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "installed" / "ganime-age-64-run").iterdir()) == [
        "evaluation.json",
        "logs.jsonl",
        "step-0000002.png",
    ]


def test_unpack_refuses_a_missing_piece(sharded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / SUMMARY).write_text(json.dumps({"packed": {"pieces": ["a", "b"], "model_sha256": "0" * 64}}))
    (out / "a").write_bytes(b"x" * 10)
    (out / "b").write_bytes(b"y" * 10)
    (out / META_TAR).write_bytes(b"")
    with pytest.raises(WeightsError, match="does not match the hash"):
        from training.lease import unpack

        unpack(out, tmp_path / "target")
    assert not (tmp_path / "target" / "model.safetensors").exists()


def test_runs_as_a_script_on_a_machine_without_the_install(tmp_path: Path) -> None:
    """The device machine has no editable install: the call its docstring gives (the checkout's folders on
    PYTHONPATH, from the repository's root) runs the script."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", "."])}
    result = subprocess.run(
        [sys.executable, str(REPO / "training" / "lease.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0 and "pack-data" in result.stdout, result.stderr[-2000:]


@pytest.fixture(scope="module")
def refiner_pairs(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """The refiner's real training pairs: one CFEE person (both directions) and three UTKFace age edits."""
    return build_refiner_pairs(tmp_path_factory.mktemp("lease_refiner") / "refiner-pairs", people=1, photos=3)


def test_refiner_pairs_travel_as_jpeg_and_train_on_the_machine(
    refiner_pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refiner dataset's crops carried as JPEG come back as the same rows, close to the built pixels,
    in a fraction of the bytes, and a refiner trains a slice from them."""
    import shutil

    import numpy as np

    from training.data.prepared import RefinerPairs

    built = sum(p.stat().st_size for p in (refiner_pairs / "shards").glob("*.npz"))
    parts = pack_data(refiner_pairs, tmp_path / "carry", 50.0, jpeg_quality=95)
    carried = sum(f.stat().st_size for part in parts for f in (part / "shards").glob("*.npz"))
    assert len(parts) == 1 and carried < 0.5 * built

    data = tmp_path / "landed" / refiner_pairs.name
    status = gather_data(parts, data)
    assert status["complete"] and status["shards"] == len(list((refiner_pairs / "shards").glob("*.npz")))
    original = RefinerPairs(refiner_pairs, "train", test_fraction=0.0, image_size=128)
    landed = RefinerPairs(data, "train", test_fraction=0.0, image_size=128)
    assert len(landed) == len(original) > 0
    for index in range(len(original)):
        a, b = original[index], landed[index]
        assert torch.equal(a["aus"], b["aus"]) and float(a["age"]) == float(b["age"])
        for key in ("image", "source_image"):
            error = (a[key] - b[key]).abs().mean().item() * 127.5  # grey levels
            assert 0.0 < error < 2.0, (key, error)  # lossy, but well under the detail a refiner learns
    # decoded shards hold every array of the built ones, images as uint8 crops
    shard = sorted((data / "shards").glob("*.npz"))[0]
    with np.load(shard) as decoded, np.load(refiner_pairs / "shards" / shard.name) as source:
        assert sorted(decoded.files) == sorted(source.files)
        assert decoded["photos"].shape == source["photos"].shape and decoded["photos"].dtype == np.uint8

    # a later call carrying a shard of the same name with other rows (a rebuilt dataset) replaces the decoded one
    rebuilt = tmp_path / "rebuilt" / refiner_pairs.name
    shutil.copytree(refiner_pairs, rebuilt)
    with np.load(rebuilt / "shards" / shard.name) as source:
        arrays = {key: source[key] for key in source.files}
    arrays["target_age"] = arrays["target_age"] + 1.0
    np.savez_compressed(rebuilt / "shards" / shard.name, **arrays)
    assert gather_data(pack_data(rebuilt, tmp_path / "carry-again", 50.0, jpeg_quality=95), data)["complete"]
    with np.load(data / "shards" / shard.name) as landed_again:
        np.testing.assert_array_equal(landed_again["target_age"], arrays["target_age"])

    run_dir, out = tmp_path / "run", tmp_path / "out"
    config = str(REPO / "training" / "configs" / "ganimation_refiner_tiny.yaml")
    options = ["run", "--config", config, "--data", str(data), "--output", str(run_dir), "--out", str(out)]
    options += ["--carry-dir", str(tmp_path / "nothing"), "--minutes", "0.0001", "--eval-faces", "0"]
    assert main([*options, "train.batch_size=2", "system.lambda_identity=0", "system.lambda_age_reading=0"]) == 0
    printed = capsys.readouterr().out
    assert "| steps | 0 -> 1 of" in printed and (out / SUMMARY).is_file()
    assert json.loads((out / SUMMARY).read_text())["packed"]["pieces"]


def test_a_prepared_dataset_is_not_recompressed(sharded: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="already JPEG"):
        pack_data(sharded, tmp_path / "carry", 50.0, jpeg_quality=95)
