"""training/evaluate.py and training/evaluation/metrics.py on real prepared faces with tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganime_age.conditions import AU_NAMES
from ganime_age.models.age_estimator import AgeEstimator, AgeEstimatorConfig
from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig
from training.evaluate import COMMANDS, build_parser, main
from training.evaluation.metrics import accept_rate, age_stats, different_pairs, markdown_table, threshold_at_far

TINY_GENERATOR = GanimationAgeConfig(image_size=64, conv_dim=8, num_residual_blocks=1, age_embedding_dim=16)


@pytest.fixture(scope="module")
def estimator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("estimator")
    torch.manual_seed(0)
    AgeEstimator(AgeEstimatorConfig(image_size=32, base_channels=8, channel_multipliers=(1, 2))).save_pretrained(folder)
    return folder


def save_generator(folder: Path, *, keep_input: bool) -> Path:
    """A tiny GanimationAge; with `keep_input` its attention saturates at 1 so every edit returns the input exactly."""
    torch.manual_seed(0)
    model = GanimationAge(TINY_GENERATOR)
    if keep_input:
        with torch.no_grad():
            model.attention_head[0].weight.fill_(10.0)  # features are ReLU outputs >= 0: A = sigmoid(large) = 1
    model.save_pretrained(folder, model_card_kwargs={"trained_on": "nothing (test model)"})
    return folder


def test_identity_edit_scores_as_identity(
    tmp_path: Path, prepared_utk64: Path, estimator_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that returns its input: cosine 1, all verified, ages = the estimate of the input, no AU drift."""
    model = save_generator(tmp_path / "keep", keep_input=True)
    out_json, out_md = tmp_path / "eval.json", tmp_path / "eval.md"
    code = main(
        [
            "ganimation",
            "--model",
            str(model),
            "--data",
            str(prepared_utk64),
            "--estimator",
            str(estimator_dir),
            "--max-faces",
            "6",
            "--ages",
            "10,40,80",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads(out_json.read_text())
    assert set(result) >= {
        "model",
        "data",
        "num_faces",
        "estimator_on_inputs",
        "identity",
        "ages",
        "age_summary",
        "aus",
    }
    assert result["num_faces"] == 6 and result["image_size"] == 64
    assert result["identity"]["impostor_pairs"] == 15 and -1 <= result["identity"]["threshold"] < 1
    assert [row["target"] for row in result["ages"]] == [10, 40, 80]
    input_estimate = None
    for row in result["ages"]:
        for key in ("estimate_mean", "estimate_std", "mae", "identity_cosine", "identity_verified"):
            assert math.isfinite(row[key]), key
        assert row["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
        assert row["identity_verified"] == 1.0
        assert row["mae"] == pytest.approx(
            abs(row["estimate_mean"] - row["target"]), abs=row["estimate_std"] * 3 + 1e-3
        )
        input_estimate = input_estimate or row["estimate_mean"]
        assert row["estimate_mean"] == pytest.approx(input_estimate, abs=1e-3)  # the output is the input
    aus = result["aus"]
    assert aus["measured"] and [e["au"] for e in aus["edits"]] == ["AU12", "AU26", "AU04"]
    for edit in aus["edits"]:
        assert edit["faces_measured"] >= 4
        assert edit["drift"] == pytest.approx(0.0, abs=1e-4)  # same crop, same measurement
        assert edit["requested_error"] == pytest.approx(edit["input_error"], abs=1e-4)
    markdown = out_md.read_text()
    assert "| target age |" in markdown and "| AU edit |" in markdown and markdown.strip() in printed


def test_random_generator_changes_faces(tmp_path: Path, prepared_utk64: Path, estimator_dir: Path) -> None:
    model = save_generator(tmp_path / "random", keep_input=False)
    out_json = tmp_path / "eval.json"
    assert (
        main(
            [
                "ganimation",
                "--model",
                str(model),
                "--data",
                str(prepared_utk64),
                "--estimator",
                str(estimator_dir),
                "--max-faces",
                "4",
                "--ages",
                "20,60",
                "--no-aus",
                "--json",
                str(out_json),
                "--markdown",
                str(tmp_path / "evaluation.md"),
                "--samples",
                str(tmp_path / "card"),
                "--sample-faces",
                "3",
            ]
        )
        == 0
    )
    result = json.loads(out_json.read_text())
    assert result["aus"] == {"measured": False}
    # sample grids for the card: 3 real faces x (input + 2 ages), and x (input + the 3 default AU edits)
    assert result["samples"] == ["samples_age.png", "samples_aus.png"]
    ramp, edits = (Image.open(tmp_path / "card" / name) for name in result["samples"])
    assert ramp.width == 3 * (64 + 2) + 2 and edits.width == 4 * (64 + 2) + 2
    assert ramp.height == edits.height == 14 + 3 * (64 + 2) + 2
    assert "![samples_age.png](samples_age.png)" in (tmp_path / "evaluation.md").read_text()
    for row in result["ages"]:
        assert all(math.isfinite(row[k]) for k in ("estimate_mean", "mae", "identity_cosine"))
        assert row["identity_cosine"] < 0.999  # an untrained generator does change the face


def test_wrong_model_kind_is_a_one_line_error(
    tmp_path: Path, prepared_utk64: Path, estimator_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "ganimation",
            "--model",
            str(estimator_dir),
            "--data",
            str(prepared_utk64),
            "--estimator",
            str(estimator_dir),
            "--no-aus",
        ]
    )
    assert code == 2 and "not an ageing model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ganimation", "--model", "m", "--data", "d", "--estimator", "e", "--ages", "150"])


def test_commands_are_registered_by_module_path() -> None:
    assert COMMANDS["ganimation"] == "training.evaluate:GanimationEvaluation"
    assert "ganimation" in build_parser().format_help()


# -- metrics --------------------------------------------------------------------------------------------------


def test_threshold_at_far_accepts_at_most_that_share_of_impostors() -> None:
    rng = np.random.default_rng(0)
    impostors = rng.normal(0.2, 0.1, size=10_000)
    threshold = threshold_at_far(impostors, 0.01)
    assert accept_rate(impostors, threshold) <= 0.01
    assert accept_rate(impostors, threshold - 0.01) > 0.01  # and not needlessly strict
    assert threshold_at_far([0.1, 0.5, 0.3], 0.01) == 0.5  # too few pairs for 1%: accept no impostor
    with pytest.raises(ValueError):
        threshold_at_far([], 0.01)


def test_pairs_ages_and_tables() -> None:
    pairs = different_pairs(5)
    assert len(pairs) == 10 and (pairs[:, 0] < pairs[:, 1]).all()
    assert len(different_pairs(100, max_pairs=50)) == 50
    stats = age_stats([30.0, 50.0], 40.0)
    assert stats == {"estimate_mean": 40.0, "estimate_std": 10.0, "error_mean": 0.0, "mae": 10.0}
    table = markdown_table(["a", "b"], [[1, 0.5], ["x", float("nan")]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.500 |", "| x | n/a |"]
    assert len(AU_NAMES) == 17


def test_gates_of_an_engine_that_edits_nothing(tmp_path: Path, shared_dir: Path) -> None:
    """An engine with empty tables gives every photo back: identity and do-no-harm pass, age and expression do
    not, and the gates say so (on real held-out photos, through FaceEditor, judged by dlib and the estimator);
    identity at 5, 10, 15 and 75 stands on FG-NET floors of real photos (two people's here)."""
    from ganime_age.engine import FittedEngine
    from training.evaluation.fgnet_floors import FLOOR_SPANS, span_label

    FittedEngine().save_pretrained(tmp_path / "nothing")
    out_json, samples = tmp_path / "gates.json", tmp_path / "grids"
    datasets = shared_dir / "datasets"
    args = ["gates", "--engine", str(tmp_path / "nothing"), "--utkface", str(datasets / "utkface")]
    args += ["--cfee", str(datasets / "cfee"), "--cfee-full", str(datasets / "cfee_full")]
    args += ["--max-faces", "3", "--max-full", "1", "--max-real", "40", "--max-people", "3"]
    args += ["--fgnet", str(datasets / "fgnet"), "--max-fgnet-people", "2"]
    args += ["--samples", str(samples), "--json", str(out_json), "--markdown", str(tmp_path / "gates.md")]
    assert main(args) == 0
    result = json.loads(out_json.read_text())
    rows = result["age"]["rows"]
    assert [r["target"] for r in rows] == [5, 10, 15, 30, 45, 60, 75]
    assert all(r["edit_reading"] == pytest.approx(rows[0]["edit_reading"], abs=1e-3) for r in rows)  # no age change
    assert result["age"]["edit_spread"] == pytest.approx(0.0, abs=1e-3)
    assert all(r["verified"] == 1.0 and r["chroma_ratio"] == pytest.approx(1.0, abs=1e-6) for r in rows)
    assert all(abs(r["progress"]) < 1e-6 for r in result["expression"]["rows"])
    assert all(r["drift"] == pytest.approx(0.0, abs=1e-6) for r in result["single_au"])
    assert result["harm"]["own_detail"] == pytest.approx(1.0) and result["harm"]["own_lab"] == pytest.approx(0.0)
    passed = {g["gate"]: g["passes"] for g in result["gates"]}
    assert not passed["age, shipped estimator: 5 -> 75 spread of the edits / of real faces"]
    assert not passed["age, second network: 5 -> 75 spread of the edits / of real faces"]
    assert result["age_networks"] == ["CydralAgeEstimator", "AgeEstimator"]
    realism = result["realism"]
    assert realism["edits"] > 0 and len(realism["rows"]) == (6 if realism["real_faces"] else 0)
    assert realism["forehead_step_p90"] < 0.5  # an engine that changes nothing draws no band
    hair = realism["facial_hair"]  # the inputs' own lower faces, read against real children's
    assert hair["edits"] > 0 and 0.0 <= hair["darker_share"] <= 1.0
    assert not passed["expression transfer: progress toward the real photo (worst expression)"]
    assert passed["do no harm: fine detail kept, own-age edit of full-size photos"]
    assert passed["artefacts: fine colour detail, edits / inputs (worst)"]
    assert passed["identity (dlib) verified, expression edits (worst)"]
    floors = result["identity_floors"]  # the same person's real photos years apart: verified less than always
    assert [f["span"] for f in floors] == [span_label(s) for s in FLOOR_SPANS]
    assert all(f["pairs"] > 0 and f["people"] >= 1 and 0.0 <= f["verified"] <= 1.0 for f in floors), floors
    for group in ("targets 5 and 10", "targets 15 and 75"):  # an unedited photo verifies at 100%: any floor
        gate = next(g for g in result["gates"] if g["gate"] == f"identity (dlib) verified, {group} (worst)")
        assert gate["passes"] and "FG-NET floor" in gate["needed"], gate
    assert "Identity floors" in (tmp_path / "gates.md").read_text()
    assert 0.3 < result["identity_threshold"]["distance"] < 0.7  # dlib's usual same-person distances
    assert len(result["real_reading_curve"]) == 101
    expected = {"gates_age.jpg", "gates_aus.jpg", "gates_expression.jpg", "gates_full.jpg", "gates_turned.jpg"}
    expected |= {"gates_strip.jpg"}
    assert {p.name for p in samples.iterdir()} == expected


def test_a_beard_makes_the_lower_face_darker_than_the_cheeks(shared_dir: Path) -> None:
    """lower_face_contrast: a bearded man's chin and upper lip read far darker than his cheeks; a child's do not."""
    from ganime_age.faces import FaceAnalyzer, load_image
    from training.evaluation.metrics import lower_face_contrast

    analyzer = FaceAnalyzer()
    readings = {}
    for name in ("34_0_0_20170117141607879", "5_1_0_20170109191741223"):
        photo = load_image(shared_dir / "datasets" / "utkface" / f"{name}.jpg.chip.jpg")
        readings[name] = lower_face_contrast(photo, analyzer.analyze(photo)[0].landmarks.landmarks)
    bearded, child = readings.values()
    assert bearded[0] < -15.0 and child[0] > -8.0 and bearded[0] < child[0] - 10.0, readings


def test_chroma_artefact_score_sees_speckles_not_faces(prepared_utk64: Path) -> None:
    from training.data.prepared import PreparedFaces
    from training.evaluation.metrics import age_reading_curve, chroma_high_frequency, to_uint8_images

    faces = PreparedFaces(prepared_utk64, "train")
    images = torch.stack([faces[i]["image"] for i in range(8)])
    clean = chroma_high_frequency(to_uint8_images(images))
    speckled = images.clone()
    speckled[:, 0] += 0.08 * torch.randn(images[:, 0].shape, generator=torch.Generator().manual_seed(0))
    brighter = (images * 0.8 + 0.1).clamp(-1, 1)  # a global change in brightness and contrast is no artefact
    assert (chroma_high_frequency(to_uint8_images(speckled)) > 1.5 * clean).all()
    assert chroma_high_frequency(to_uint8_images(brighter)).mean() < 1.25 * clean.mean()
    ages = np.arange(0, 90, 0.5)
    curve = age_reading_curve(0.5 * ages + 20, ages)  # an estimator that regresses to the mean
    assert curve[40] == pytest.approx(40.0, abs=0.1) and curve[10] == pytest.approx(25.0, abs=0.1)
    sparse = age_reading_curve(np.array([30.0, 40.0]), np.array([20.0, 30.0]))  # no face past 30: the nearest's
    assert sparse[100] == pytest.approx(40.0) and sparse[0] == pytest.approx(30.0)


def test_ages_in_every_direction_on_real_held_out_faces(tmp_path: Path, shared_dir: Path) -> None:
    """Issue 39's evaluation on tiny numbers: every direction read by both age networks against real faces of the
    target age, FG-NET identity floors of real photos, and ground truth on held-out FG-NET people."""
    from training.data.fgnet import fgnet_split, parse_fgnet
    from training.evaluation.ages import DIRECTIONS, REAL_WINDOWS
    from training.evaluation.fgnet_floors import FLOOR_SPANS, span_label

    datasets = shared_dir / "datasets"
    listing = parse_fgnet(datasets / "fgnet")
    held = [p for p in listing.people if fgnet_split(p) == "test"]
    assert len(listing.photos) == 613 and not listing.skipped and listing.photos[0].points().shape == (68, 2)
    assert 0.15 < len(held) / len(listing.people) < 0.45 and held == [p for p in listing.people if p in held]
    out_json, samples = tmp_path / "ages.json", tmp_path / "grids"
    args = ["ages", "--utkface", str(datasets / "utkface"), "--fgnet", str(datasets / "fgnet")]
    args += ["--max-adults", "1", "--max-children", "1", "--max-old", "1", "--max-real", "2"]
    args += ["--max-fgnet-people", "3", "--max-fgnet-pairs", "1", "--samples", str(samples), "--json", str(out_json)]
    assert main(args) == 0
    result = json.loads(out_json.read_text())
    rows = result["directions"]
    assert [(r["group"], r["target"]) for r in rows] == [(g, t) for g, (_, ts) in DIRECTIONS.items() for t in ts]
    assert result["age_networks"] == {"shipped": "CydralAgeEstimator", "second": "AgeEstimator"}
    for row in rows:
        assert row["inputs"] >= 1 and 0 <= row["edits_read"] <= row["inputs"] and 0.0 <= row["verified"] <= 1.0, row
        assert row["real"]["window"] == list(REAL_WINDOWS[row["target"]]) and row["real"]["faces"] >= 1
        assert set(row["networks"]) == {"shipped", "second"}
        for reading in row["networks"].values():
            assert all(0.0 <= reading[k] <= 100.0 for k in ("input", "edits", "real")), row
            assert reading["gap"] == pytest.approx(reading["edits"] - reading["real"])
            assert reading["passes"] == (abs(reading["gap"]) <= result["age_tolerance"])
        assert row["passes"] == all(n["passes"] for n in row["networks"].values())
    fgnet = result["fgnet"]
    assert [f["span"] for f in fgnet["floors"]] == [span_label(s) for s in FLOOR_SPANS]
    assert all(0.0 <= f["verified"] <= 1.0 for f in fgnet["floors"] if f["pairs"]), fgnet["floors"]
    assert 0.3 < result["identity_threshold"]["distance"] < 0.8 and fgnet["held_out_people"]
    assert set(fgnet["held_out_people"]) <= set(held)
    child = fgnet["ground_truth"]["child"]
    assert child["people"] >= 1 and 0.0 <= child["closer_share"] <= 1.0
    assert child["mean_gain"] == pytest.approx(np.mean([p["gain"] for p in child["per_person"]]))
    assert {"ages_adults.jpg", "ages_old.jpg", "ages_fgnet_child.jpg"} <= {p.name for p in samples.iterdir()}
