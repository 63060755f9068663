"""The refiner of the fitted engine: its data (the engine's edits of real CFEE/UTKFace photos), its training
system (2 steps of the tiny config) and its pass-through start inside FaceEditor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ganime_age.errors import DatasetError
from training.data.prepared import RefinerPairs, refiner_shard_paths
from training.data.refiner import CFEE_TEST_FRACTION, RefinerDataConfig, RefinerDataError, build, person_split
from training.systems.trackers import read_log
from training.train import list_checkpoints, load_run_config, main

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "training" / "configs" / "ganimation_refiner_tiny.yaml")
PEOPLE = 3
UTK_PHOTOS = 6
LOSS_KEYS = {"d_loss", "d_wasserstein", "d_gp", "d_real", "g_loss", "g_target", "g_color", "g_color_keep", "g_change"}
LOSS_KEYS |= {"g_identity", "g_adv", "g_attention", "g_chroma", "g_checkerboard", "g_smooth", "attention_open"}
LOSS_KEYS |= {"g_age_hold", "g_age_reading"}


def data_config(shared: Path, output: Path, **changes: object) -> RefinerDataConfig:
    options: dict[str, object] = {
        "output": str(output),
        "cfee": str(shared / "datasets" / "cfee"),
        "utkface": str(shared / "datasets" / "utkface"),
        "max_people": PEOPLE,
        "max_utkface": UTK_PHOTOS,
        "progress": False,
    }
    return RefinerDataConfig(**{**options, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def refiner_data(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> tuple[Path, dict]:
    """A few CFEE training people (both directions of every pair) and a few UTKFace age edits, at 128 px."""
    output = tmp_path_factory.mktemp("refiner_data") / "data"
    return output, build(data_config(shared_dir, output))


def shards(folder: Path) -> list[dict[str, np.ndarray]]:
    out = []
    for path in refiner_shard_paths(folder):
        with np.load(path, allow_pickle=False) as data:
            out.append({key: data[key] for key in data.files})
    return out


def test_pairs_are_the_engines_edits_of_training_people_in_both_directions(refiner_data: tuple[Path, dict]) -> None:
    folder, manifest = refiner_data
    parts = shards(folder)
    cfee = [p for p in parts if "forward" in p["kind"]]
    utk = [p for p in parts if "age" in p["kind"]]
    assert cfee and utk
    people = {str(p) for part in cfee for p in part["person"]}
    assert len(people) == PEOPLE == manifest["cfee_people"]
    assert all(person_split(p, CFEE_TEST_FRACTION) == "train" for p in people)  # the gates' people never enter
    for part in parts:
        n = len(part["person"])
        assert part["inputs"].shape == (n, 128, 128, 3) and part["inputs"].dtype == np.uint8
        assert part["photos"].dtype == np.uint8 and part["photos"].shape[1:] == (128, 128, 3)
        assert part["target_aus"].shape == (n, 17) and part["target_age"].shape == (n,)
        assert (part["source_index"] >= 0).all() and (part["source_index"] < len(part["photos"])).all()
        assert (part["target_index"] < len(part["photos"])).all()
    for part in cfee:
        forward, reverse = part["kind"] == "forward", part["kind"] == "reverse"
        assert forward.sum() == reverse.sum() > 0
        assert (part["has_target"] == 1).all()
        assert (part["target_aus"][reverse] == 0).all()  # posed -> all AUs 0, against the Neutral photo
        assert (part["target_aus"][forward].max(axis=1) >= 1).all()  # Neutral -> the posed photo's coded AUs
        # ages: the source's estimate, kept (an expression edit)
        assert np.allclose(part["target_age"], part["source_age"]) and (part["source_age"] > 5).all()
        # a forward pair's source is the reverse pair's target (the Neutral photo), and vice versa
        assert set(part["source_index"][forward]) == set(part["target_index"][reverse])
        # the engine changed the face: the input is not the source crop
        moved = np.abs(part["inputs"][forward].astype(float) - part["photos"][part["source_index"][forward]]).mean()
        assert moved > 2.0
    for part in utk:
        assert (part["has_target"] == 0).all() and (part["target_index"] == -1).all()
        assert ((part["target_age"] >= 5) & (part["target_age"] <= 80)).all()
    assert manifest["rows"] == sum(len(p["person"]) for p in parts)
    assert manifest["kinds"]["age"] == UTK_PHOTOS


def test_an_edit_and_its_target_are_aligned_alike(refiner_data: tuple[Path, dict]) -> None:
    """Each crop is aligned by its own photo's detection: the edit looks like its own target at 16 px far more
    than like another person's target."""
    folder, _ = refiner_data
    pairs = RefinerPairs(folder, "train", test_fraction=0.0)
    rows = np.flatnonzero(pairs.has_target > 0)
    edits = torch.stack([pairs[int(i)]["image"] for i in rows])
    targets = torch.stack([pairs[int(i)]["target_image"] for i in rows])
    persons = pairs.persons[rows]
    small_edits, small_targets = F.adaptive_avg_pool2d(edits, 16), F.adaptive_avg_pool2d(targets, 16)
    distances = torch.cdist(small_edits.flatten(1), small_targets.flatten(1), p=1) / small_edits[0].numel()
    own = distances.diagonal().mean()
    other = distances[torch.from_numpy(persons[:, None] != persons[None, :])].mean()
    assert own < 0.6 * other, (own, other)


def test_splits_are_by_person_and_samples_spread(refiner_data: tuple[Path, dict]) -> None:
    folder, manifest = refiner_data
    train = RefinerPairs(folder, "train", test_fraction=0.5)
    test = RefinerPairs(folder, "test", test_fraction=0.5)
    assert len(train) + len(test) == manifest["rows"]
    assert not set(train.persons) & set(test.persons)
    item = train[(0, True)]
    plain = train[(0, False)]
    assert torch.equal(item["image"], plain["image"].flip(-1))
    assert torch.equal(item["source_image"], plain["source_image"].flip(-1))
    assert set(item) == {"image", "source_image", "target_image", "has_target", "aus", "age", "source_age"}
    resized = RefinerPairs(folder, "train", test_fraction=0.5, image_size=64, max_samples=5)
    assert len(resized) == 5 and resized[0]["image"].shape == (3, 64, 64)
    assert len(set(resized.kinds)) > 1  # spread over the split, not its first rows
    everything = RefinerPairs(folder, "train", test_fraction=0.0)
    assert len(everything) == manifest["rows"]


def test_the_refiners_held_out_people_include_cfee_training_people() -> None:
    """The refiner's split is not prepare_data's hash again (whose low values are all CFEE test people)."""
    from training.data.prepared import refiner_split

    training_people = [f"cfee-{n}" for n in range(100, 400) if person_split(f"cfee-{n}", CFEE_TEST_FRACTION) == "train"]
    held_out = [p for p in training_people if refiner_split(p, 0.1) == "test"]
    assert 0.05 < len(held_out) / len(training_people) < 0.15


def test_a_build_resumes_and_refuses_other_options(refiner_data: tuple[Path, dict], shared_dir: Path) -> None:
    folder, manifest = refiner_data
    again = build(data_config(shared_dir, folder))
    assert again["this_run"]["shards_built"] == 0 and again["rows"] == manifest["rows"]
    utk_shard = next(p for p in refiner_shard_paths(folder) if p.name.startswith("utkface"))
    before = dict(np.load(utk_shard, allow_pickle=False))
    utk_shard.unlink()
    resumed = build(data_config(shared_dir, folder))
    assert resumed["this_run"]["shards_built"] == 1
    after = dict(np.load(utk_shard, allow_pickle=False))
    for key in ("inputs", "photos", "target_age", "target_aus", "person"):
        assert np.array_equal(before[key], after[key]), key  # the same random ages, the same edits
    with pytest.raises(RefinerDataError, match="max_people"):
        build(data_config(shared_dir, folder, max_people=PEOPLE + 1))


def test_missing_data_are_typed_errors(tmp_path: Path, shared_dir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(RefinerDataError, match="CFEE folder not found"):
        build(data_config(shared_dir, tmp_path / "a", cfee=str(tmp_path / "no-cfee")))
    with pytest.raises(RefinerDataError, match="UTKFace folder not found"):
        build(data_config(shared_dir, tmp_path / "b", cfee=None, utkface=str(tmp_path / "no-utk")))
    with pytest.raises(RefinerDataError, match="nothing to build"):
        build(RefinerDataConfig(output=str(tmp_path / "c")))
    assert not (tmp_path / "a").exists()  # a refused build leaves nothing behind
    with pytest.raises(DatasetError, match="refiner dataset not found"):
        RefinerPairs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no refiner shards"):
        RefinerPairs(tmp_path / "empty")
    from training.data.refiner import main as data_main

    assert data_main(["--output", str(tmp_path / "d"), "--cfee", str(tmp_path / "no-cfee")]) == 2
    code = main(["--config", TINY, f"train.data_dir={tmp_path / 'missing'}", f"train.output_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "refiner dataset not found" in capsys.readouterr().err


def refiner_system(data: Path, *overrides: str) -> object:
    """The tiny config's RefinerSystem, built on the CPU (its frozen recogniser and age estimator loaded)."""
    from accelerate import Accelerator

    config = load_run_config(TINY, [f"train.data_dir={data}", *overrides])
    system = config.system_cls(config.system, config.train, Accelerator(cpu=True, mixed_precision="no"))
    system.build()
    for module in system.frozen.values():
        module.eval().requires_grad_(False)
    return system


def test_on_age_rows_the_refiner_is_held_to_the_engines_age_change(refiner_data: tuple[Path, dict]) -> None:
    """Issue 32 (refiner run 2 undid the engine's ageing: 75 read 42.5 against the engine's 53.1). On UTKFace age
    rows, which have no real photo, an output that undoes the edit (the source photo again) must cost more than the
    engine's edit itself, through the terms that hold it there (the pooled hold, the estimator's reading, identity
    against the engine's edit), even with the terms that also resist any change (change, colour keep, artefacts)
    switched off; run 2's objective on those rows (identity against the source, no hold) preferred the undoing.
    Detail finer than the hold's blocks stays free."""
    from types import SimpleNamespace

    pairs = RefinerPairs(refiner_data[0], "train", test_fraction=0.0, image_size=64)
    rows = [int(i) for i in np.flatnonzero(pairs.has_target == 0)]
    batch = {key: torch.stack([pairs[i][key] for i in rows]) for key in pairs[rows[0]]}
    edit, source = batch["image"], batch["source_image"]
    assert (edit - source).abs().mean() > 0.02  # the engine changed these faces
    only_the_hold = ["system.lambda_change=0", "system.lambda_color_keep=0", "system.lambda_chroma=0"]
    only_the_hold += ["system.lambda_checkerboard=0", "system.critic_steps=0", "system.lambda_adv=0"]

    def loss(system: object, image: torch.Tensor) -> tuple[float, dict]:
        out = SimpleNamespace(image=image, color=image, attention=torch.zeros_like(image[:, :1]))
        with torch.no_grad():
            total, logs = system.generator_loss(batch, out)  # type: ignore[attr-defined]
        return float(total), {k: float(v) for k, v in logs.items()}

    held = refiner_system(refiner_data[0], *only_the_hold)
    kept, kept_logs = loss(held, edit)
    undone, undone_logs = loss(held, source)
    c = held.config  # type: ignore[attr-defined]
    weights = {"g_age_hold": c.lambda_age_hold, "g_age_reading": c.lambda_age_reading, "g_identity": c.lambda_identity}
    for term, weight in weights.items():
        assert kept_logs[term] < 1e-4 and weight * undone_logs[term] > 0.1, (term, kept_logs[term], undone_logs[term])
    # each holding term is in the objective, not only in the log
    assert undone - kept >= sum(w * undone_logs[t] for t, w in weights.items()) - 1e-4 > 1.0, (undone, kept)
    assert undone_logs["g_age_reading"] > 1.0  # years: the estimator sees the ageing undone
    # fine detail (a 1-px luminance pattern, +-0.1) on the engine's edit is not held back
    pattern = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2 - 1).float() * 0.1
    _, detail_logs = loss(held, (edit + pattern).clamp(-1, 1))
    assert detail_logs["g_age_hold"] < 0.1 * undone_logs["g_age_hold"]
    # run 2's objective on age rows: identity against the source photo, nothing holding the age change
    run2 = ["system.lambda_age_hold=0", "system.lambda_age_reading=0", "system.identity_age_reference=source"]
    unheld = refiner_system(refiner_data[0], *only_the_hold, *run2)
    assert loss(unheld, source)[0] < loss(unheld, edit)[0]


def test_the_real_reading_target_asks_for_what_real_faces_of_the_target_age_read(
    refiner_data: tuple[Path, dict], shared_dir: Path
) -> None:
    """Refiner run 7 undid the engine's ageing. With ``age_reading_reference: real`` an age row's reading is held to
    what real faces of its target age read on the same estimator (their labelled ages from the UTKFace names), not
    to the engine's edit's reading, so the engine's edit itself costs its shortfall."""
    from types import SimpleNamespace

    from training.data.sources import parse_utkface

    pairs = RefinerPairs(refiner_data[0], "train", test_fraction=0.0, image_size=64)
    labelled = pairs.labelled_source_ages()
    age_rows = pairs.has_target == 0
    assert np.isnan(labelled[~age_rows]).all() and np.isfinite(labelled[age_rows]).all()
    listed = {item.rel: item.age for item in parse_utkface(shared_dir / "datasets" / "utkface").items}
    for person, age in zip(pairs.persons[age_rows], labelled[age_rows], strict=True):
        assert listed[str(person).removeprefix("utkface-")] == age  # the dataset listing's label

    only_reading = ["system.lambda_change=0", "system.lambda_color_keep=0", "system.lambda_chroma=0"]
    only_reading += ["system.lambda_checkerboard=0", "system.critic_steps=0", "system.lambda_adv=0"]
    only_reading += ["system.lambda_age_hold=0", "system.lambda_identity=0", "system.test_fraction=0"]
    system = refiner_system(refiner_data[0], *only_reading, "system.age_reading_reference=real")
    system.config.estimator_shift = 0  # type: ignore[attr-defined]
    curve = system.real_readings  # type: ignore[attr-defined]
    estimator = system.frozen["age_estimator"]  # type: ignore[attr-defined]
    rows = [int(i) for i in np.flatnonzero(age_rows)]
    with torch.no_grad():
        real = estimator.predict(torch.stack([pairs[i]["source_image"] for i in rows])).float()
    assert curve.shape == (101,) and torch.isfinite(curve).all()
    assert real.min() - 1e-3 <= curve.min() and curve.max() <= real.max() + 1e-3  # a smoothed mean of real readings

    batch = {key: torch.stack([pairs[i][key] for i in rows]) for key in pairs[rows[0]]}
    out = SimpleNamespace(image=batch["image"], color=batch["image"], attention=torch.zeros_like(batch["image"][:, :1]))
    with torch.no_grad():
        _, logs = system.generator_loss(batch, out)  # type: ignore[attr-defined]
        wanted = curve[batch["age"].round().long()]
        shortfall = (estimator.predict(batch["image"]).float() - wanted).abs().mean()
    assert float(logs["g_age_reading"]) == pytest.approx(float(shortfall), abs=1e-3)
    edit_held = refiner_system(refiner_data[0], *only_reading)  # the engine's own reading: its edit costs nothing
    with torch.no_grad():
        assert float(edit_held.generator_loss(batch, out)[1]["g_age_reading"]) < 1e-4  # type: ignore[attr-defined]
    assert float(shortfall) > 1e-4


def test_a_grey_reading_cannot_be_bought_with_colour_and_the_chroma_hold_keeps_the_engines(
    refiner_data: tuple[Path, dict],
) -> None:
    """Refiner run 8 bought its age readings with red irises, pink brows and magenta hair. With
    ``age_reading_colour: grey`` the estimator reads grey copies, so a change of colour alone (the brightness kept)
    costs the reading term nothing, where the colour reading moves; ``lambda_chroma_hold`` charges that change
    instead, and the engine's edit itself costs it nothing."""
    from types import SimpleNamespace

    pairs = RefinerPairs(refiner_data[0], "train", test_fraction=0.0, image_size=64)
    rows = [int(i) for i in np.flatnonzero(pairs.has_target == 0)]
    batch = {key: torch.stack([pairs[i][key] for i in rows]) for key in pairs[rows[0]]}
    batch["image"] = batch["image"] * 0.7  # the engine's edit, dimmed to leave room for the tint below
    tint = torch.tensor([0.25, -0.1, -(0.25 * 0.299 - 0.1 * 0.587) / 0.114]).reshape(1, 3, 1, 1)  # Y of 0
    tinted = batch["image"] + tint
    assert tinted.abs().max() <= 1.0

    only = ["system.lambda_change=0", "system.lambda_color_keep=0", "system.lambda_chroma=0"]
    only += ["system.lambda_checkerboard=0", "system.critic_steps=0", "system.lambda_adv=0"]
    only += ["system.lambda_age_hold=0", "system.lambda_identity=0", "system.test_fraction=0"]

    def logs(system: object, image: torch.Tensor) -> dict[str, float]:
        out = SimpleNamespace(image=image, color=image, attention=torch.zeros_like(image[:, :1]))
        with torch.no_grad():
            return {k: float(v) for k, v in system.generator_loss(batch, out)[1].items()}  # type: ignore[attr-defined]

    grey = refiner_system(refiner_data[0], *only, "system.age_reading_colour=grey", "system.lambda_chroma_hold=1")
    colour = refiner_system(refiner_data[0], *only)
    assert logs(grey, tinted)["g_age_reading"] < 1e-3  # years: the grey copies of edit and tinted output are one
    assert logs(colour, tinted)["g_age_reading"] > 0.05  # in colour, the tint alone moves the reading
    assert logs(grey, batch["image"])["g_chroma_hold"] < 1e-6
    assert logs(grey, tinted)["g_chroma_hold"] > 0.05
    with pytest.raises(ValueError, match="age_reading_colour"):
        refiner_system(refiner_data[0], "system.age_reading_colour=sepia")


def test_the_eye_hold_charges_a_rim_drawn_around_the_eyes_and_nothing_elsewhere(
    refiner_data: tuple[Path, dict],
) -> None:
    """Refiner run 9, with its reading grey, drew a bright spectacle rim around each eye of a man made old: finer than
    the pooled hold's blocks. ``lambda_eye_hold`` charges a change around the aligned crop's eyes on age rows, and
    nothing for the same change at the mouth or on paired (expression) rows."""
    from types import SimpleNamespace

    from training.systems.refiner_common import eye_discs

    discs = eye_discs(64, 0.14)
    assert torch.equal(discs, discs.flip(-1)) and 0.05 < float(discs.mean()) < 0.3  # two mirrored discs
    assert discs[18, 19] == 1 and discs[18, 44] == 1 and discs[44, 32] == 0  # the eyes in, the mouth out

    pairs = RefinerPairs(refiner_data[0], "train", test_fraction=0.0, image_size=64)
    age_rows, paired_rows = np.flatnonzero(pairs.has_target == 0), np.flatnonzero(pairs.has_target)
    rows = [*(int(i) for i in age_rows[:4]), int(paired_rows[0])]
    batch = {key: torch.stack([pairs[i][key] for i in rows]) for key in pairs[rows[0]]}
    edit = batch["image"]
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    rim = ((((xs - 19) ** 2 + (ys - 18) ** 2).sqrt() - 6).abs() < 1).float()  # a 2 px ring around one eye
    mouth = rim.roll(26, dims=0)  # the same ring at the mouth's height

    only = ["system.lambda_change=0", "system.lambda_color_keep=0", "system.lambda_chroma=0"]
    only += ["system.lambda_checkerboard=0", "system.critic_steps=0", "system.lambda_adv=0", "system.lambda_age_hold=0"]
    only += ["system.lambda_identity=0", "system.lambda_age_reading=0", "system.test_fraction=0"]
    system = refiner_system(refiner_data[0], *only, "system.lambda_eye_hold=1")

    def eye_hold(image: torch.Tensor) -> float:
        out = SimpleNamespace(image=image, color=image, attention=torch.zeros_like(image[:, :1]))
        with torch.no_grad():
            return float(system.generator_loss(batch, out)[1]["g_eye_hold"])  # type: ignore[attr-defined]

    paired = torch.zeros(len(rows), 1, 1, 1)
    paired[-1] = 1.0
    assert eye_hold(edit) == 0.0
    assert eye_hold((edit + 0.5 * rim * (1 - paired)).clamp(-1, 1)) > 0.01
    assert eye_hold((edit + 0.5 * mouth).clamp(-1, 1)) == 0.0
    assert eye_hold((edit + 0.5 * rim * paired).clamp(-1, 1)) == 0.0  # an expression row: its eyes may change


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, refiner_data: tuple[Path, dict]) -> Path:
    """Two steps of the tiny config (checkpoints after each, a sample grid), then the export."""
    output = tmp_path_factory.mktemp("refiner_run") / "run"
    args = [f"train.data_dir={refiner_data[0]}", f"train.output_dir={output}", "train.max_steps=2"]
    args += ["train.checkpoint_every=1", "train.log_every=1", "train.sample_every=2"]
    assert main(["--config", TINY, *args]) == 0
    return output


def test_two_steps_train_every_term_and_export_a_refiner(run: Path) -> None:
    from ganime_age.hub import load_pretrained
    from ganime_age.models.ganimation_age import GanimationAge

    records = [r for r in read_log(run) if "step" in r]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert set(record) >= LOSS_KEYS, LOSS_KEYS - set(record)
        assert all(math.isfinite(v) for v in record.values() if isinstance(v, float))
        assert record["g_target"] > 0 and record["g_identity"] > 0
    (_, first), (_, second) = list_checkpoints(run)
    before = load_file(str(first / "model.safetensors"))
    after = load_file(str(second / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the generator was optimised
    grid = next((run / "samples").glob("step-*.png"))
    from PIL import Image

    with Image.open(grid) as image:
        assert image.width > 7 * 64 and np.asarray(image).std() > 10  # 7 columns of real faces
    model = load_pretrained(run / "export")
    assert isinstance(model, GanimationAge) and model.config.refiner and model.config.image_size == 64
    card = (run / "export" / "README.md").read_text(encoding="utf-8")
    assert "refiner of the fitted edit engine" in card and "non-commercial" in card


def test_an_untrained_refiner_in_the_editor_equals_the_engine(
    tmp_path: Path, refiner_data: tuple[Path, dict], shared_dir: Path
) -> None:
    """The system's export before any step, loaded as FaceEditor's refiner, changes the engine's photo by < 0.5
    grey levels on average (and the refiner did run); asked for nothing new, it is not run and the photo comes
    back as it was."""
    from PIL import Image

    from ganime_age.editing import FaceEditor

    output = tmp_path / "untrained"
    args = [f"train.data_dir={refiner_data[0]}", f"train.output_dir={output}", "train.max_steps=0"]
    assert main(["--config", TINY, *args, "train.sample_every=0"]) == 0
    export = output / "export"
    assert json.loads((export / "config.json").read_text())["refiner"] is True
    path = sorted((shared_dir / "datasets" / "cfee_full" / "images").glob("*.jpg"))[0]  # 1000x750, face ~300 px
    refined_editor = FaceEditor.from_pretrained(export, device="cpu")
    assert refined_editor.refiner is not None
    calls = []
    refiner = refined_editor.refiner
    refiner.register_forward_hook(lambda *_: calls.append(1))
    engine_editor = FaceEditor.from_pretrained(device="cpu")
    assert engine_editor.refiner is None
    wanted = {"age": 60.0, "aus": {"AU12": 3.0, "AU25": 2.0}}
    refined = np.asarray(refined_editor.edit(path, **wanted), np.float64)
    alone = np.asarray(engine_editor.edit(path, **wanted), np.float64)
    assert calls, "the refiner was not run"
    assert refined.shape == alone.shape
    assert np.abs(refined - alone).mean() < 0.5
    original = np.asarray(engine_editor.edit(path), np.float64)
    assert np.abs(alone - original).mean() > 0.5  # the comparison is between real edits, not two copies
    calls.clear()
    kept = np.asarray(refined_editor.edit(path), np.float64)  # nothing new asked: the refiner does no harm
    assert not calls and np.array_equal(kept, np.asarray(Image.open(path).convert("RGB"), np.float64))


def test_a_fresh_refiners_attention_learns_under_bf16_autocast() -> None:
    """A GPU trains in bf16, where sigmoid(12) rounds to exactly 1 and its gradient to 0: the lent-GPU runs 5 and
    6 kept their attention shut (attention_open 0 from step 2,000). The attention must be float32 from its logit."""
    from ganime_age.models.ganimation_age import GanimationAge

    torch.manual_seed(0)
    generator = GanimationAge({"image_size": 32, "conv_dim": 8, "num_residual_blocks": 1, "refiner": True})
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = generator(image, torch.zeros(2, 17), torch.tensor([30.0, 60.0]))
        ((1.0 - out.attention.float()).mean()).backward()
    assert out.attention.dtype == torch.float32
    # not rounded to 1: the keep-the-input start is still there
    assert 0.9999 < float(out.attention.detach().min()) < 1.0
    bias_gradient = generator.attention_head[0].bias.grad
    assert bias_gradient is not None and abs(float(bias_gradient)) > 1e-7
