"""The multi-pose augmentation end to end on real faces: the mesh backend (the photo's own head turned in 3-D) and
the ControlNet backend with a tiny random SD1.5 + ControlNet (nothing downloaded)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.conditions import age_to_group
from ganime_age.faces.mesh import MEDIAPIPE_FACE_PARTS
from training.evaluate import spread_indices
from training.multipose.augment import main, validate
from training.multipose.config import AugmentConfig, parse_pose, pose_tag
from training.multipose.poses import build_prompt, item_seed, make_jobs, pose_phrase
from training.multipose.random_pipeline import save_random_pipeline
from training.multipose.sources import list_sources

REPO = Path(__file__).resolve().parents[1]
POSES = "--poses=-20:0,0:10"
TAGS = (pose_tag(-20, 0), pose_tag(0, 10))


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random tiny SD1.5 pipeline and ControlNet saved as local Hub-layout folders (loaded like real ids)."""
    return save_random_pipeline("tiny", tmp_path_factory.mktemp("tiny_sd15"))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _argv(prepared: Path, output: Path, models: tuple[Path, Path], *extra: str) -> list[str]:
    base, controlnet = models
    return [
        "--input", str(prepared), "--output", str(output), "--backend", "controlnet", "--base-model", str(base),
        "--controlnet", str(controlnet),
        "--max-sources", "3", POSES, "--resolution", "64", "--steps", "2", "--batch-size", "4",
        "--prompt", "a photo of a {age} year old", "--no-progress", *extra,
    ]  # fmt: skip


def test_end_to_end_rejects_faceless_outputs_and_resumes(
    prepared_utk: dict, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    prepared, output = prepared_utk["output"], tmp_path / "augmented"
    argv = _argv(prepared, output, tiny_models, "--save-conditioning")
    assert main(argv) == 0

    listed = list_sources(prepared)
    sources = [listed[i] for i in spread_indices(len(listed), 3)]  # --max-sources spreads over the listing
    expected_keys = {f"{s.source_id}_{tag}" for s in sources for tag in TAGS}
    summary = json.loads((output / "summary.json").read_text())
    # a random tiny model paints noise: every output is generated, and every one is rejected for having no face
    assert summary["generated"] == 6 and summary["kept"] == 0
    assert summary["rejected_by_reason"] == {"no_face": 6}
    assert summary["this_run"]["generated"] == 6 and summary["this_run"]["sources_pending"] == 3

    rejects = _read_jsonl(output / "rejects.jsonl")
    assert {r["key"] for r in rejects} == expected_keys
    ages = {s.source_id: s.age for s in sources}
    for record in rejects:
        assert record["reason"] == "no_face" and record["kept"] is False
        assert record["seed"] == item_seed(0, record["key"])  # reproducible per item, whatever the batching
        assert record["age_label_source"] == "source" and record["age"] == pytest.approx(
            ages[record["source_id"]], abs=0.01
        )
        assert record["age_group"] == age_to_group(record["age"])
        assert record["prompt"] == f"a photo of a {round(ages[record['source_id']])} year old"
        requested = record["pose_requested"]
        assert (requested[0], requested[1]) in {(-20.0, 0.0), (0.0, 10.0)}
        assert requested[2] == pytest.approx(record["pose_source"][2], abs=0.01)  # roll is kept

    # a datasets-loadable folder: card config, (empty) metadata, labels for prepare_data, conditioning drawings
    assert (output / "data" / "metadata.jsonl").read_text() == ""
    assert (output / "labels.csv").read_text().strip() == "file_name,age"
    assert "data/*" in (output / "README.md").read_text()
    colours = {part.colour for part in MEDIAPIPE_FACE_PARTS}
    for key in expected_keys:
        drawing = np.asarray(Image.open(output / "conditioning" / f"{key}.png"))
        assert drawing.shape == (64, 64, 3)
        assert {tuple(c) for c in drawing.reshape(-1, 3).tolist()} & colours

    # resuming: nothing left to do, nothing regenerated, records unchanged
    before = (output / "rejects.jsonl").read_text()
    assert main(argv) == 0
    again = json.loads((output / "summary.json").read_text())
    assert again["this_run"]["sources_pending"] == 0 and "generated" not in again["this_run"]
    assert again["generated"] == 6 and (output / "rejects.jsonl").read_text() == before

    # an interrupted run (one record lost) redoes exactly that job, with the same seed and outcome
    part = next((output / "parts").glob("rejects-*.jsonl"))
    lines = part.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[1:]))
    assert main(argv) == 0
    third = json.loads((output / "summary.json").read_text())
    assert third["this_run"]["generated"] == 1 and third["this_run"]["sources_pending"] == 1
    assert (output / "rejects.jsonl").read_text() == before


def test_inpaint_mode_with_openpose_drawing(prepared_utk: dict, tiny_models: tuple[Path, Path], tmp_path: Path) -> None:
    """The inpainting variant (source image + face mask + control) runs and records its mode; OpenPose drawing."""
    output = tmp_path / "inpaint"
    argv = _argv(prepared_utk["output"], output, tiny_models, "--mode", "inpaint", "--condition", "openpose_face",
                 "--max-sources", "1", "--poses", "25:0", "--save-conditioning")  # fmt: skip
    assert main(argv) == 0
    (record,) = _read_jsonl(output / "rejects.jsonl")
    assert record["mode"] == "inpaint" and record["reason"] == "no_face"
    drawing = np.asarray(Image.open(output / "conditioning" / f"{record['key']}.png"))
    assert {tuple(c) for c in drawing.reshape(-1, 3).tolist()} == {(0, 0, 0), (255, 255, 255)}


def test_filter_keeps_real_faces_and_rejects_wrong_pose_or_identity(utk_sample: list[Path], tmp_path: Path) -> None:
    """The keep/reject decision on real photos (no diffusion): a face at the requested pose with the source's
    identity is kept and relabelled by the estimator; a wrong pose or another person is rejected for that reason."""
    import torch

    from ganime_age.models.age_estimator import AgeEstimator, AgeEstimatorConfig
    from training.multipose.judge import FaceJudge

    folder = tmp_path / "photos"
    folder.mkdir()
    woman = next(p for p in utk_sample if p.name.split("_")[1] == "1" and 25 <= int(p.name.split("_")[0]) <= 60)
    child = next(p for p in utk_sample if p.name.split("_")[1] == "0" and int(p.name.split("_")[0]) <= 10)
    for path in (woman, child):
        (folder / path.name).symlink_to(path)
    torch.manual_seed(0)
    AgeEstimator(AgeEstimatorConfig(image_size=32, base_channels=8, channel_multipliers=(1, 2))).save_pretrained(
        tmp_path / "estimator"
    )
    config = validate(AugmentConfig(input=str(folder), output=str(tmp_path / "out"), resolution=256,
                                    estimator=str(tmp_path / "estimator")))  # fmt: skip
    judge = FaceJudge(config)
    sources = {s.origin: s for s in list_sources(folder, "utkface", split="all")}
    a, b = judge.frame(sources[woman.name]), judge.frame(sources[child.name])
    assert not isinstance(a, str) and not isinstance(b, str)
    assert a.image.shape == (256, 256, 3) and a.landmarks.shape == (478, 3)

    def job_for(source, yaw: float, pitch: float):
        return make_jobs(dataclasses.replace(config, poses=((yaw, pitch),)), source, config.condition, set())[0]

    same = judge.assess(a.image, job_for(a, float(a.pose[0]), float(a.pose[1])))
    assert same.kept and same.reason == "ok"
    assert same.identity > 0.75  # the same photo, re-framed and re-aligned
    assert np.allclose(same.pose_measured[:2], a.pose[:2], atol=5.0)  # re-measured on the re-framed photo
    labels = judge.label(same, job_for(a, 0.0, 0.0))
    assert labels["age_label_source"] == "estimator" and labels["age"] == same.age_estimated
    assert 0.0 <= labels["age"] <= 100.0 and labels["age_group"] == age_to_group(labels["age"])
    assert labels["age_source"] == pytest.approx(float(woman.name.split("_")[0]))

    turned = judge.assess(a.image, job_for(a, float(a.pose[0]) + 30.0, float(a.pose[1])))
    assert not turned.kept and turned.reason == "pose"

    stranger = judge.assess(b.image, job_for(a, float(b.pose[0]), float(b.pose[1])))
    assert not stranger.kept and stranger.reason == "identity" and stranger.identity < config.identity_threshold

    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    assert judge.assess(noise, job_for(a, 0.0, 0.0)).reason == "no_face"


def test_folder_without_ages_needs_an_estimator(
    utk_sample: list[Path], tmp_path: Path, tiny_models: tuple[Path, Path], capsys
) -> None:
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    (folder / "face.jpg").symlink_to(utk_sample[0])
    code = main(
        _argv(folder, tmp_path / "out", tiny_models, "--source", "folder", "--estimator", "none", "--split", "all")
    )
    assert code == 2 and "age" in capsys.readouterr().err


def test_options_are_checked(tmp_path: Path, tiny_models: tuple[Path, Path], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--input", "x", "--output", "y", "--poses=forty"])
    assert exit_info.value.code == 2
    assert main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--resolution", "100"]) == 2
    assert main(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--prompt", "{name}"]) == 2
    assert "placeholder" in capsys.readouterr().err
    assert parse_pose("-30:5") == (-30.0, 5.0)
    with pytest.raises(ValueError):
        parse_pose("120:0")
    assert (
        validate(AugmentConfig(input="i", output="o", controlnet="lllyasviel/control_v11p_sd15_openpose")).condition
        == "openpose_face"
    )
    # ages are relabelled by the shipped estimator unless told otherwise
    from ganime_age.editing import DEFAULT_ESTIMATOR_DIR

    assert validate(AugmentConfig(input="i", output="o")).estimator == str(DEFAULT_ESTIMATOR_DIR)
    assert validate(AugmentConfig(input="i", output="o", estimator="none")).estimator is None
    assert validate(AugmentConfig(input="i", output="o", estimator="me/estimator")).estimator == "me/estimator"
    assert (
        pose_phrase(30, 0) == "head turned to the right"
        and pose_phrase(-10, -15) == "head turned slightly to the left, looking down"
    )
    assert build_prompt("{age} y, {group}, {pose}", 34.4, 0, 0) == "34 y, 30-39, frontal view"


def test_benchmark_smoke(tmp_path: Path) -> None:
    """benchmarks/bench_controlnet.py --smoke runs the real pipeline call for each variant and writes JSON."""
    spec = importlib.util.spec_from_file_location("bench_controlnet", REPO / "benchmarks" / "bench_controlnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--smoke", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {row["variant"] for row in result["rows"]} == {"fp32", "fp32+sdpa"}
    assert all(row["images_per_s"] > 0 for row in result["rows"])
    assert result["parameters"]["unet"] > 0 and result["resolution"] == 64


def test_output_folder_loads_with_datasets(utk_sample: list[Path], tmp_path: Path) -> None:
    """Kept images + metadata.jsonl load as a `datasets` image folder (via the card's config), rejects stay out."""
    import datasets

    from training.multipose.output import OutputFolder, summarise, write_card
    from training.multipose.sources import encode_image

    folder = OutputFolder(tmp_path / "out")
    folder.prepare()
    face = np.asarray(Image.open(utk_sample[0]).convert("RGB"))
    for key, age in (("a_y+15_p+0", 31.5), ("b_y-15_p+0", 64.0)):
        record = {"key": key, "file_name": f"{key}.png", "age": age, "age_group": age_to_group(age),
                  "pose_measured": [15.0, 0.0, 0.0], "identity": 0.6, "kept": True, "reason": "ok"}  # fmt: skip
        folder.keep(record, encode_image(face))
    folder.reject({"key": "c_y+0_p+0", "kept": False, "reason": "no_face"})
    kept, rejected = folder.merge()
    summary = summarise(kept, rejected, {})
    assert (summary["generated"], summary["kept"], summary["rejected_by_reason"]) == (3, 2, {"no_face": 1})
    write_card(folder.root, summary, {"base_model": "b", "controlnet": "c", "mode": "txt2img"})
    dataset = datasets.load_dataset(str(folder.root), split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert len(dataset) == 2 and sorted(dataset["age"]) == [31.5, 64.0]
    assert dataset[0]["image"].size == (200, 200)
    assert (folder.root / "labels.csv").read_text().splitlines() == [
        "file_name,age",
        "a_y+15_p+0.png,31.5",
        "b_y-15_p+0.png,64.0",
    ]


def test_full_size_random_pipeline_has_sd15_shapes(tmp_path: Path) -> None:
    """The benchmark's random networks have exactly the parameter counts of the real SD1.5 checkpoints (built on
    the meta device: no memory, no time), so their compute is the real one."""
    from training.multipose.random_pipeline import build_components

    parts = build_components("full", tmp_path, device="meta")
    counts = {name: sum(p.numel() for p in parts[name].parameters()) for name in ("unet", "controlnet", "vae")}
    assert counts == {"unet": 859_520_964, "controlnet": 361_279_120, "vae": 83_653_863}
    assert sum(p.numel() for p in parts["text_encoder"].parameters()) == 123_060_480
    assert parts["unet"].config.cross_attention_dim == parts["text_encoder"].config.hidden_size == 768


# -- the mesh backend (the default): real faces turned in 3-D ---------------------------------------------------
def _training_faces(utk_sample: list[Path], count: int) -> list[Path]:
    """Adults of the sample that prepare_data puts in UTKFace's training split (the only ones augmented)."""
    from training.data.sources import SourceItem
    from training.multipose.sources import in_split

    chosen = []
    for path in utk_sample:
        age = int(path.name.split("_")[0])
        item = SourceItem(path, path.name, float(age), age_to_group(age), path.name)
        if 20 <= age <= 60 and in_split(item, "utkface", "train"):
            chosen.append(path)
    return chosen[:count]


def _folder(paths: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


def test_mesh_backend_turns_real_faces_the_requested_way_and_resumes(utk_sample: list[Path], tmp_path: Path) -> None:
    """Two real UTKFace training faces turned to yaw -30 and +30 (absolute): every output's measured yaw moved
    from the source's towards the request (at least half the way), kept ones reached it within the tolerance with the source's identity,
    are the source photo's size and relabelled by the shipped estimator; summary.json counts kept and rejected
    by reason; a rerun does nothing, and a lost record is redone to the same result."""
    folder = _folder(_training_faces(utk_sample, 2), tmp_path / "photos")
    output = tmp_path / "mesh"
    argv = ["--input", str(folder), "--source", "utkface", "--output", str(output), "--poses=-30:0,30:0",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0

    summary = json.loads((output / "summary.json").read_text())
    kept, rejects = _read_jsonl(output / "data" / "metadata.jsonl"), _read_jsonl(output / "rejects.jsonl")
    assert summary["generated"] == 4 == len(kept) + len(rejects) and summary["kept"] == len(kept) >= 1
    assert summary["rejected_by_reason"] == dict(Counter(r["reason"] for r in rejects))
    assert summary["this_run"]["generated"] == 4 and summary["this_run"]["kept"] == len(kept)
    assert summary["settings"]["backend"] == "mesh" and "mesh-turn" in (output / "README.md").read_text()
    for record in kept + rejects:
        assert record["backend"] == "mesh" and "prompt" not in record and 1 <= record["attempts"] <= 2
        if record["pose_measured"] is None:
            continue
        source_yaw, requested_yaw, measured_yaw = (
            record["pose_source"][0], record["pose_requested"][0], record["pose_measured"][0]
        )  # fmt: skip
        needed = requested_yaw - source_yaw  # poses are absolute: the turn is what the source lacks
        assert (measured_yaw - source_yaw) * np.sign(needed) > 0.5 * abs(needed), record
    for record in kept:
        assert abs(record["pose_measured"][0] - record["pose_requested"][0]) <= 10.0
        assert abs(record["pose_measured"][1] - record["pose_requested"][1]) <= 10.0
        assert record["identity"] >= 0.35 and record["reason"] == "ok"
        assert record["age_label_source"] == "estimator" and record["age"] == record["age_estimated"]
        source = np.asarray(Image.open(folder / record["source"]).convert("RGB"))
        image = np.asarray(Image.open(output / "data" / record["file_name"]).convert("RGB"))
        assert image.shape == source.shape and np.abs(image.astype(int) - source.astype(int)).mean() > 2.0

    before = (output / "data" / "metadata.jsonl").read_text()
    assert main(argv) == 0
    again = json.loads((output / "summary.json").read_text())
    assert again["this_run"]["sources_pending"] == 0 and "generated" not in again["this_run"]
    part = next((output / "parts").glob("metadata-*.jsonl"))
    lines = part.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[1:]))
    assert main(argv) == 0
    third = json.loads((output / "summary.json").read_text())
    assert third["this_run"]["generated"] == 1 and third["this_run"]["sources_pending"] == 1
    assert (output / "data" / "metadata.jsonl").read_text() == before


def test_mesh_backend_skips_turns_past_max_turn_and_keeps_source_labels(utk_sample: list[Path], tmp_path: Path) -> None:
    """A pose further from the source's than --max-turn is not attempted (recorded, not counted as generated);
    --age-label source keeps the source's label while the estimator's reading is still recorded."""
    (face,) = _training_faces(utk_sample, 1)
    folder = _folder([face], tmp_path / "photos")
    output = tmp_path / "far"
    argv = ["--input", str(folder), "--source", "utkface", "--output", str(output), "--poses=0:0,45:0",
            "--max-turn", "25", "--age-label", "source", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((output / "summary.json").read_text())
    assert summary["rejected_by_reason"].get("source_turn_too_large") == 1 and summary["generated"] == 1
    records = _read_jsonl(output / "data" / "metadata.jsonl") + _read_jsonl(output / "rejects.jsonl")
    by_pose = {r["key"].rsplit("_", 2)[1]: r for r in records}
    assert by_pose["y+45"]["reason"] == "source_turn_too_large"
    near = by_pose["y+0"]
    assert near["pose_requested"][:2] == [0.0, 0.0] and near["age_estimated"] is not None
    assert near["age"] == float(face.name.split("_")[0]) and near["age_label_source"] == "source"


def test_only_the_training_split_is_augmented(utk_sample: list[Path], tmp_path: Path) -> None:
    """--split train (the default) lists exactly the photos prepare_data keeps for training: the held-out test
    photos (as the gates find them) are never turned; "all" lists every photo."""
    from training.evaluation.gates import test_photos

    folder = _folder(utk_sample, tmp_path / "utk")
    held_out = {photo.path.name for photo in test_photos("utkface", folder)}
    assert held_out  # the sample has held-out faces to keep out
    train = {s.origin for s in list_sources(folder, "utkface")}
    test = {s.origin for s in list_sources(folder, "utkface", split="test")}
    assert test == held_out and not train & held_out
    assert (
        train | test == {s.origin for s in list_sources(folder, "utkface", split="all")} == {p.name for p in utk_sample}
    )


def test_mesh_options_are_checked(tmp_path: Path, capsys) -> None:
    """Bad mesh options are typed errors (exit status 2, one line), not tracebacks; each backend has its poses."""
    from ganime_age.errors import ConfigError
    from training.multipose.config import DEFAULT_POSES, MESH_POSES

    base = ["--input", str(tmp_path), "--output", str(tmp_path / "o")]
    for bad in (["--backend", "gan"], ["--split", "val"], ["--age-label", "guess"], ["--max-turn", "ten"]):
        with pytest.raises(SystemExit) as exit_info:
            main(base + bad)
        assert exit_info.value.code == 2
    capsys.readouterr()
    for bad, words in ((["--max-turn", "0"], "max-turn"), (["--aim-corrections", "-1"], "aim-corrections"),
                       (["--pose-tolerance", "0"], "pose-tolerance"), (["--max-sources", "0"], "max-sources")):  # fmt: skip
        assert main(base + bad) == 2
        assert words in capsys.readouterr().err
    with pytest.raises(ConfigError, match="backend"):
        validate(AugmentConfig(input="i", output="o", backend="gan"))
    assert validate(AugmentConfig(input="i", output="o")).poses == MESH_POSES
    assert validate(AugmentConfig(input="i", output="o", backend="controlnet")).poses == DEFAULT_POSES
    assert validate(AugmentConfig(input="i", output="o", poses=((20.0, 0.0),))).poses == ((20.0, 0.0),)


def test_yaw_band_evaluation(utk_sample: list[Path], tmp_path: Path) -> None:
    """evaluate.py yaw-bands on the sample's held-out faces: counts per band add up, an estimator compared with
    itself differs by 0, and the cache is reused."""
    from training.evaluate import main as evaluate

    folder = _folder(utk_sample, tmp_path / "utk")
    out, cache = tmp_path / "bands.json", tmp_path / "cache.npz"
    argv = ["yaw-bands", "--utkface", str(folder), "--estimator", "embedded", "--estimator", "again=embedded",
            "--cache", str(cache), "--json", str(out)]  # fmt: skip
    assert evaluate(argv) == 0 and cache.is_file()
    result = json.loads(out.read_text())
    first, second = result["rows"]
    assert first["estimator"] == "age-estimator" and second["estimator"] == "again"
    assert sum(first[band]["faces"] for band in ("< 15", "15-30", ">= 30")) == first["all"]["faces"]
    assert first["all"]["faces"] == result["faces"] >= 1
    assert second["all"]["difference"] == 0.0 and first["all"]["mae"] == second["all"]["mae"] > 0.0
    stamp = cache.stat().st_mtime_ns
    assert evaluate(argv) == 0 and cache.stat().st_mtime_ns == stamp
