"""The multi-pose augmentation end to end on real faces with a tiny random SD1.5 + ControlNet (nothing downloaded)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.conditions import age_to_group
from ganime_age.faces.mesh import MEDIAPIPE_FACE_PARTS
from training.augment_multipose import main, validate
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
        "--input", str(prepared), "--output", str(output), "--base-model", str(base), "--controlnet", str(controlnet),
        "--max-sources", "3", POSES, "--resolution", "64", "--steps", "2", "--batch-size", "4",
        "--prompt", "a photo of a {age} year old", "--no-progress", *extra,
    ]  # fmt: skip


def test_end_to_end_rejects_faceless_outputs_and_resumes(
    prepared_utk: dict, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    prepared, output = prepared_utk["output"], tmp_path / "augmented"
    argv = _argv(prepared, output, tiny_models, "--save-conditioning")
    assert main(argv) == 0

    sources = list_sources(prepared)[:3]
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
    sources = {s.origin: s for s in list_sources(folder, "utkface")}
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
    code = main(_argv(folder, tmp_path / "out", tiny_models, "--source", "folder", "--estimator", "none"))
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
