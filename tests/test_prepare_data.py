"""training/prepare_data.py on real UTKFace faces: sources, accounting, format, resumption, Hub layout."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ganime_age.conditions import AGE_GROUP_LABELS, MAX_AGE, age_to_group, group_center
from ganime_age.errors import DatasetError
from tests.conftest import UTK_MALFORMED, utk_age
from training.data.sources import parse_cacd, parse_utkface
from training.prepare_data import PrepareConfig, main, prepare, push_to_hub, split_for


def read_rows(output: Path) -> dict[str, dict]:
    """Every row of a prepared folder keyed by id (split recorded), read with plain pyarrow."""
    rows: dict[str, dict] = {}
    for path in sorted((output / "data").glob("*.parquet")):
        split = path.name.split("-")[0]
        for row in pq.read_table(path).to_pylist():
            assert row["id"] not in rows, "a photo appears twice"
            rows[row["id"]] = {**row, "split": split}
    return rows


def run(source: str, input_dir: Path, output: Path, **kwargs) -> dict:
    return prepare(PrepareConfig(source=source, input=str(input_dir), output=str(output), progress=False, **kwargs))


# -- UTKFace end to end (the session fixture prepared 50 faces + 3 malformed names + 1 duplicate) ---------


def test_utkface_accounts_for_every_file(prepared_utk: dict, utk_sample: list[Path]) -> None:
    report = prepared_utk["report"]
    assert report["complete"]
    assert report["skipped"]["malformed_name"] == len(UTK_MALFORMED)
    assert report["skipped"]["duplicate"] == 1
    assert sorted(report["examples"]["malformed_name"]) == sorted(UTK_MALFORMED)
    assert report["inputs"]["candidates"] == len(utk_sample) + len(UTK_MALFORMED) + 1
    assert report["inputs"]["unique_photos"] == len(utk_sample)
    face_drops = sum(v for k, v in report["skipped"].items() if k not in ("malformed_name", "duplicate"))
    assert report["rows"]["total"] == report["rows"]["train"] + report["rows"]["test"] == len(utk_sample) - face_drops
    assert report["rows"]["total"] >= 45, report["skipped"]  # YuNet finds the face in nearly every UTKFace crop
    assert report["rows"]["test"] >= 1
    assert sum(report["age_groups"]["train"].values()) == report["rows"]["train"]
    messages = " ".join(prepared_utk["warnings"])
    assert "malformed_name" in messages and "duplicate" in messages
    on_disk = json.loads((prepared_utk["output"] / "prepare_report.json").read_text())
    assert on_disk["rows"] == report["rows"]


def test_utkface_rows_match_their_photos(prepared_utk: dict) -> None:
    rows = read_rows(prepared_utk["output"])
    assert len(rows) == prepared_utk["report"]["rows"]["total"]
    names = {_stem(p): p for p in prepared_utk["input"].iterdir()}
    duplicate = _stem(prepared_utk["duplicate"])
    size = 128
    for digest, row in rows.items():
        assert row["identity_hint"] != duplicate, "the first name of a duplicate pair must win"
        photo = names[row["identity_hint"]]
        assert hashlib.sha1(photo.read_bytes()).hexdigest() == digest
        assert row["split"] == split_for(digest, 0.1)
        assert row["source"] == "utkface"
        assert row["age"] == pytest.approx(min(utk_age(photo), MAX_AGE))
        assert row["age_group"] == age_to_group(row["age"])
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        assert image.format == "WEBP" and image.size == (size, size) and image.mode == "RGB"
        aus = np.asarray(row["aus"])
        assert aus.shape == (17,) and aus.min() >= 0.0 and aus.max() <= 5.0
        assert np.asarray(row["pose"]).shape == (3,) and np.all(np.abs(row["pose"]) < 90)
        landmarks = np.asarray(row["landmarks"]).reshape(478, 2)
        # aligned-image pixels: the face mesh fills the crop, centred (landmark 1 is the nose tip)
        assert 0.3 * size < landmarks[:, 0].mean() < 0.7 * size
        assert 0.3 * size < landmarks[:, 1].mean() < 0.75 * size
        assert abs(landmarks[1, 0] - size / 2) < 0.15 * size
    assert any(np.asarray(r["aus"]).max() > 0.5 for r in rows.values()), "AUs should not all be zero"


def test_prepared_folder_loads_with_datasets(prepared_utk: dict, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(prepared_utk["output"]), cache_dir=str(tmp_path / "cache"))
    report = prepared_utk["report"]
    assert loaded["train"].num_rows == report["rows"]["train"]
    assert loaded["test"].num_rows == report["rows"]["test"]
    assert isinstance(loaded["train"].features["image"], datasets.Image)
    first = loaded["train"][0]
    assert isinstance(first["image"], Image.Image) and first["image"].size == (128, 128)
    assert len(first["aus"]) == 17 and len(first["landmarks"]) == 956


def test_card_states_licence_and_counts(prepared_utk: dict) -> None:
    card = (prepared_utk["output"] / "README.md").read_text()
    report = prepared_utk["report"]
    assert card.startswith("---\n") and "data/train-*.parquet" in card and "data/test-*.parquet" in card
    assert "non-commercial research purposes only" in card
    assert f"{report['rows']['train']} training and {report['rows']['test']} test faces" in card
    assert "| malformed_name | 3 |" in card


def test_finished_run_is_skipped_by_the_cli(prepared_utk: dict, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (prepared_utk["output"] / "data").iterdir()}
    args = ["--source", "utkface", "--input", str(prepared_utk["input"]), "--output", str(prepared_utk["output"]),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "1 chunk(s) were already done" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (prepared_utk["output"] / "data").iterdir()} == before


def test_cli_reports_user_mistakes_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", "utkface", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "input folder not found" in capsys.readouterr().err
    assert main(["--source", "csv", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "--labels" in capsys.readouterr().err


def test_worker_start_failure_is_one_clear_error(
    utk_sample: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / utk_sample[0].name).symlink_to(utk_sample[0])
    estimator = tmp_path / "estimator"
    estimator.mkdir()
    (estimator / "config.json").write_text('{"model_type": "no_such_model"}')
    args = ["--source", "utkface", "--input", str(source), "--output", str(tmp_path / "out"), "--no-progress"]
    assert main([*args, "--workers", "2", "--relabel", str(estimator)]) == 2
    assert "unknown model_type 'no_such_model'" in capsys.readouterr().err


# -- resumption -------------------------------------------------------------------------------------------


def test_interrupted_run_resumes_to_the_clean_result(
    prepared_utk: dict, utk_sample: list[Path], tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for path in utk_sample[:20]:
        (source / path.name).symlink_to(path)
    output = tmp_path / "out"
    first = run("utkface", source, output, chunk_size=8, max_chunks=1)
    assert not first["complete"]
    assert first["chunks"] == {
        "chunk_size": 8,
        "total": 3,
        "finished": 1,
        "skipped_as_done": 0,
        "processed_this_run": 1,
    }
    assert not (output / "README.md").exists()
    done_shard = output / "data" / "train-00000.parquet"
    stamp = done_shard.stat().st_mtime_ns

    second = run("utkface", source, output, chunk_size=8, workers=2)
    assert second["complete"]
    assert second["chunks"]["skipped_as_done"] == 1 and second["chunks"]["processed_this_run"] == 2
    assert done_shard.stat().st_mtime_ns == stamp, "a finished chunk must not be redone"

    resumed = read_rows(output)
    clean = read_rows(prepared_utk["output"])
    wanted = {hashlib.sha1(p.read_bytes()).hexdigest() for p in utk_sample[:20]}
    assert set(resumed) == wanted & set(clean)
    for digest, row in resumed.items():
        reference = clean[digest]
        assert row["image"]["bytes"] == reference["image"]["bytes"]
        for column in ("split", "age", "age_group", "identity_hint"):
            assert row[column] == reference[column]
        for column in ("aus", "pose", "landmarks"):
            np.testing.assert_allclose(row[column], reference[column], atol=1e-4)

    with pytest.raises(DatasetError, match="test_fraction"):
        run("utkface", source, output, chunk_size=8, test_fraction=0.5)


# -- other sources ---------------------------------------------------------------------------------------


def test_ffhq_aging_layout(utk_sample: list[Path], tmp_path: Path) -> None:
    faces = utk_sample[::5][:10]
    images = tmp_path / "ffhq" / "00000"
    images.mkdir(parents=True)
    labels = tmp_path / "ffhq_aging_labels.csv"
    confidence = [0.9, 0.95, 0.3, 0.8, 0.59, 1.0, 0.7, 0.2, 0.99, 0.61]
    expected: dict[str, int] = {}
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "image_number",
                "age_group",
                "age_group_confidence",
                "gender",
                "gender_confidence",
                "head_pitch",
                "head_roll",
                "head_yaw",
                "left_eye_occluded",
                "right_eye_occluded",
                "glasses",
            ]
        )
        for number, (path, conf) in enumerate(zip(faces, confidence, strict=True)):
            Image.open(path).save(images / f"{number:05d}.png")
            group = age_to_group(utk_age(path))
            label = "70-120" if group == 9 else AGE_GROUP_LABELS[group]
            writer.writerow([number, label, conf, "male", 0.9, 1.0, 2.0, 3.0, 5.0, 5.0, "None"])
            if conf >= 0.6:
                expected[f"{number:05d}"] = group
        writer.writerow([99, "20-29", 0.9, "male", 0.9, 0, 0, 0, 0, 0, "None"])  # no such image
    with pytest.warns(UserWarning, match="3 input\\(s\\) as low_confidence"):
        report = run("ffhq-aging", tmp_path / "ffhq", tmp_path / "out", labels=str(labels))
    assert report["skipped"]["low_confidence"] == 3
    assert report["skipped"]["missing_image"] == 1
    rows = read_rows(tmp_path / "out")
    assert report["rows"]["total"] == len(rows) == len(expected) - report["skipped"].get("no_face", 0)
    for row in rows.values():
        group = expected[row["identity_hint"]]
        assert row["age_group"] == group
        assert row["age"] == pytest.approx(group_center(group))
        assert row["source"] == "ffhq-aging"
    assert "cc-by-nc-sa-4.0" in (tmp_path / "out" / "README.md").read_text()


def test_csv_source(utk_sample: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    faces = utk_sample[1:6]
    ages = [3.5, 27.0, 41.0, 64.0, 88.0]
    with open(tmp_path / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "age"])
        for index, (path, age) in enumerate(zip(faces, ages, strict=True)):
            name = f"sub/person{index}.jpg" if index % 2 else f"person{index}.jpg"
            shutil.copyfile(path, folder / name)
            writer.writerow([name, age])
        writer.writerow(["person9.jpg", 30])  # missing file
        writer.writerow(["person0.jpg", "old"])  # bad label
    with pytest.warns(UserWarning, match="missing_image"):
        report = run("csv", folder, tmp_path / "out", labels=str(tmp_path / "labels.csv"))
    assert report["skipped"]["missing_image"] == 1 and report["skipped"]["bad_label"] == 1
    rows = read_rows(tmp_path / "out")
    assert {r["identity_hint"]: r["age"] for r in rows.values()} == {
        f"person{i}": pytest.approx(a) for i, a in enumerate(ages)
    }


def test_cacd_names(utk_sample: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "cacd"
    folder.mkdir()
    names = {"23_Robert_De_Niro_0001.jpg": 23, "61_Robert_De_Niro_0002.jpg": 61, "35_Emma_Stone_0011.jpg": 35}
    for path, name in zip(utk_sample[10:13], names, strict=True):
        (folder / name).symlink_to(path)
    (folder / "Emma_Stone.jpg").symlink_to(utk_sample[13])
    listing = parse_cacd(folder)
    assert {item.rel: item.age for item in listing.items} == names
    assert listing.skipped == {"malformed_name": 1}
    with pytest.warns(UserWarning, match="malformed_name"):
        report = run("cacd", folder, tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    assert report["skipped"]["malformed_name"] == 1
    assert {r["identity_hint"] + ".jpg": r["age"] for r in rows.values()} == {k: float(v) for k, v in names.items()}


def test_utkface_parser_on_the_real_folder(shared_dir: Path) -> None:
    listing = parse_utkface(shared_dir / "datasets" / "utkface")
    malformed = {*UTK_MALFORMED, "61_1_20170109142408075.jpg.chip.jpg", "61_1_20170109150557335.jpg.chip.jpg"}
    assert listing.skipped == {"malformed_name": len(malformed)}
    assert set(listing.examples["malformed_name"]) == malformed
    assert len(listing.items) == 22317 - len(malformed)
    assert all(0 < item.age <= 116 for item in listing.items)


@pytest.mark.parametrize("relabel", [False, True])
def test_schema_without_datasets_matches_datasets(relabel: bool) -> None:
    """GPU machines lack `datasets`; the hand-built schema must be the one datasets itself writes."""
    from training.prepare_data import COLUMNS, RELABEL_COLUMN, _handwritten_schema, arrow_schema

    reference = arrow_schema(relabel)
    handmade = _handwritten_schema((*COLUMNS, RELABEL_COLUMN) if relabel else COLUMNS)
    assert handmade.equals(reference, check_metadata=False)
    assert json.loads(handmade.metadata[b"huggingface"]) == json.loads(reference.metadata[b"huggingface"])


# -- Hub ------------------------------------------------------------------------------------------------


def test_push_to_hub_uploads_the_dataset_layout(prepared_utk: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    calls: dict[str, dict] = {}
    monkeypatch.setattr(
        HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("create", {"repo_id": repo_id, **kw})
    )
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.setdefault("upload", kw))
    push_to_hub(prepared_utk["output"], "someone/utkface128", private=True)
    assert calls["create"] == {
        "repo_id": "someone/utkface128",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    upload = calls["upload"]
    assert upload["repo_id"] == "someone/utkface128" and upload["repo_type"] == "dataset"
    folder = Path(upload["folder_path"])
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    sent = set(filter_repo_objects(files, ignore_patterns=upload["ignore_patterns"]))
    assert "README.md" in sent and "prepare_report.json" in sent
    assert {f for f in sent if f.startswith("data/")} == {f for f in files if f.startswith("data/")}
    assert not any(f.startswith(".prepare/") for f in sent), "resume state must stay local"


# -- relabelling with an AgeEstimator ------------------------------------------------------------------------


def test_relabel_with_an_age_estimator(utk_sample: list[Path], tmp_path: Path) -> None:
    estimator_module = pytest.importorskip("ganime_age.models.age_estimator")
    import torch

    from ganime_age.faces import FaceAnalyzer, load_image
    from ganime_age.hub import load_pretrained

    torch.manual_seed(0)
    model = estimator_module.AgeEstimator({"image_size": 32, "base_channels": 8, "channel_multipliers": [1, 2]})
    model.save_pretrained(tmp_path / "estimator")
    source = tmp_path / "in"
    source.mkdir()
    faces = utk_sample[20:24]
    for path in faces:
        (source / path.name).symlink_to(path)
    report = run("utkface", source, tmp_path / "out", relabel=str(tmp_path / "estimator"))
    assert report["relabel"] == str(tmp_path / "estimator")
    rows = read_rows(tmp_path / "out")
    assert rows

    estimator = load_pretrained(tmp_path / "estimator").eval()
    analyzer = FaceAnalyzer(size=128)
    by_stem = {_stem(p): p for p in faces}
    for row in rows.values():
        photo = by_stem[row["identity_hint"]]
        assert row["age_source_label"] == pytest.approx(utk_age(photo))
        aligned = analyzer.analyze(load_image(photo))[0].aligned.image
        tensor = torch.from_numpy(aligned.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
        with torch.no_grad():
            expected = float(estimator.predict(tensor)[0])
        assert row["age"] == pytest.approx(expected, abs=1e-3)
        assert row["age_group"] == age_to_group(row["age"])


def _stem(path: Path) -> str:
    return path.name.removesuffix(".jpg.chip.jpg").removesuffix(".jpg").removesuffix(".png")
