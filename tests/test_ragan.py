"""Re-Aging GAN: shapes, personalised modulation, Hub round trips, edit interface, training steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import face_tensor
from PIL import Image
from safetensors.torch import load_file, save_file

from ganime_age.errors import WeightsError
from ganime_age.hub import load_pretrained, load_weights
from ganime_age.models.common import EditOutput, soft_group_code
from ganime_age.models.ragan import (
    ReAgingDiscriminator,
    ReAgingDiscriminatorConfig,
    ReAgingGAN,
    ReAgingGANConfig,
)

TINY = {
    "image_size": 32,
    "conv_dim": 8,
    "max_channels": 32,
    "num_down": 2,
    "num_identity_blocks": 1,
    "num_modulated_blocks": 1,
    "age_embedding_dim": 16,
    "modulator_dim": 32,
}


def seeded(config: dict | ReAgingGANConfig | None = None, seed: int = 0) -> ReAgingGAN:
    torch.manual_seed(seed)
    return ReAgingGAN(config).eval()


@pytest.fixture(scope="module")
def two_faces(utk_sample: list[Path]) -> torch.Tensor:
    return face_tensor([utk_sample[3], utk_sample[40]], 128)


@pytest.mark.parametrize("age_condition", ["continuous", "groups"])
def test_shapes_at_128(two_faces: torch.Tensor, age_condition: str) -> None:
    model = seeded(ReAgingGANConfig(age_condition=age_condition))
    with torch.no_grad():
        out = model(two_faces, torch.tensor([10.0, 80.0]))
    assert out.image.shape == two_faces.shape
    assert out.image.min() >= -1 and out.image.max() <= 1
    c = model.config.conv_dim * 2**model.config.num_down
    assert out.modulation.scale.shape == (2, c)
    assert out.modulation.attention.shape == (2, c)
    assert float(out.modulation.attention.min()) >= 0 and float(out.modulation.attention.max()) <= 1
    critic = ReAgingDiscriminator().eval()
    with torch.no_grad():
        judged = critic(two_faces)
    assert judged.realism.shape == (2, 1, 4, 4)
    assert judged.group_logits.shape == (2, 10)


@pytest.mark.parametrize("output_mode", ["residual", "direct"])
def test_shapes_tiny_and_broadcast_age(two_faces: torch.Tensor, output_mode: str) -> None:
    model = seeded({**TINY, "output_mode": output_mode})
    x = torch.nn.functional.interpolate(two_faces, size=32, mode="area")
    with torch.no_grad():
        out = model(x, torch.tensor(40.0))  # one age for the whole batch
    assert out.image.shape == (2, 3, 32, 32)
    assert torch.isfinite(out.image).all()
    critic = ReAgingDiscriminator(ReAgingDiscriminatorConfig(image_size=32, conv_dim=8, num_layers=3)).eval()
    assert critic(x).realism.shape == (2, 1, 4, 4)


def test_residual_model_starts_as_identity(two_faces: torch.Tensor) -> None:
    """Zero-initialised residual head: before training the output is the input, saturated pixels included (the
    residual is added as a change, so the atanh clamp does not move them)."""
    model = seeded()
    faces = two_faces.clone()
    faces[:, :, :4, :4] = 1.0  # blown-out highlights, as real photos have
    with torch.no_grad():
        out = model(faces, torch.tensor([5.0, 90.0])).image
    assert (out - faces).abs().max() < 1e-5


def test_bad_inputs_are_rejected(two_faces: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="age_condition"):
        ReAgingGAN({**TINY, "age_condition": "decades"})
    with pytest.raises(ValueError, match="divisible"):
        ReAgingGAN({**TINY, "image_size": 30})
    with pytest.raises(ValueError, match="unknown"):
        ReAgingGAN({**TINY, "num_layers": 3})
    model = seeded(TINY)
    with pytest.raises(ValueError, match="target ages"):
        model(torch.zeros(3, 3, 32, 32), torch.tensor([20.0, 30.0]))


@pytest.mark.parametrize("age_condition", ["continuous", "groups"])
def test_modulation_is_personalised(two_faces: torch.Tensor, age_condition: str) -> None:
    """Same age, two people -> different modulation; same person, two ages -> different modulation; and the
    change an age step makes depends on the person (a multiplicative interaction, not an additive condition)."""
    model = seeded(ReAgingGANConfig(age_condition=age_condition))
    with torch.no_grad():
        identity, _ = model.encode(two_faces)
        young = model.modulate(identity, torch.tensor([20.0, 20.0]))
        old = model.modulate(identity, torch.tensor([75.0, 75.0]))

    def gap(a: torch.Tensor, b: torch.Tensor) -> float:
        """Difference relative to how much the vectors vary across channels."""
        return float((a - b).abs().mean() / (a.std() + b.std() + 1e-8))

    for field in ("scale", "attention", "code"):
        y, o = getattr(young, field), getattr(old, field)
        assert gap(y[0], y[1]) > 1e-3, f"{field}: same age gives the same modulation to two people"
        assert gap(y[0], o[0]) > 1e-3, f"{field}: two ages give the same modulation to one person"
        step_a, step_b = o[0] - y[0], o[1] - y[1]
        assert gap(step_a, step_b) > 1e-3, f"{field}: the age effect does not depend on identity"
    # The modulation does reach the output: with a non-zero head the two ages render differently.
    torch.nn.init.normal_(model.head.weight, 0.0, 0.02)
    with torch.no_grad():
        a = model(two_faces[:1], torch.tensor([20.0])).image
        b = model(two_faces[:1], torch.tensor([75.0])).image
    assert float((a - b).abs().mean()) > 1e-4


def test_group_condition_blends_between_groups(two_faces: torch.Tensor) -> None:
    """Group-conditioned models see a soft code: an age between two centres lies between their embeddings."""
    model = seeded(ReAgingGANConfig(age_condition="groups"))
    with torch.no_grad():
        code = model.age_embedding.net[0](torch.eye(10))  # first layer is linear in the code
        a, b = code[5], code[6]  # centres 24.5 and 34.5
        mid = model.age_embedding.net[0](soft_group_code(torch.tensor([29.5])))[0]
    assert torch.allclose(mid, (a + b) / 2, atol=1e-5)


def test_save_load_round_trip(tmp_path: Path, two_faces: torch.Tensor) -> None:
    model = seeded({**TINY, "output_mode": "direct"}, seed=3)
    x = torch.nn.functional.interpolate(two_faces, size=32, mode="area")
    ages = torch.tensor([7.0, 66.0])
    with torch.no_grad():
        expected = model(x, ages).image
    model.save_pretrained(tmp_path / "ragan")
    config = json.loads((tmp_path / "ragan" / "config.json").read_text())
    assert config["model_type"] == "ragan" and config["conv_dim"] == 8
    assert "ReAgingGAN" in (tmp_path / "ragan" / "README.md").read_text()
    loaded = load_pretrained(tmp_path / "ragan")
    assert isinstance(loaded, ReAgingGAN)
    with torch.no_grad():
        assert torch.equal(loaded(x, ages).image, expected)
    direct = ReAgingGAN.from_pretrained(str(tmp_path / "ragan"))
    with torch.no_grad():
        assert torch.equal(direct(x, ages).image, expected)

    critic = ReAgingDiscriminator(ReAgingDiscriminatorConfig(image_size=32, conv_dim=8, num_layers=3)).eval()
    critic.save_pretrained(tmp_path / "critic")
    loaded_critic = load_pretrained(tmp_path / "critic")
    assert isinstance(loaded_critic, ReAgingDiscriminator)
    with torch.no_grad():
        assert torch.equal(loaded_critic(x).group_logits, critic(x).group_logits)


def test_fp16_export_loads_close(tmp_path: Path, two_faces: torch.Tensor) -> None:
    model = seeded({**TINY, "output_mode": "direct"}, seed=4)
    x = torch.nn.functional.interpolate(two_faces, size=32, mode="area")
    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    stored = load_file(str(tmp_path / "half" / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in stored.values() if t.is_floating_point())
    loaded = load_pretrained(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        assert torch.allclose(
            loaded(x, torch.tensor([30.0, 60.0])).image, model(x, torch.tensor([30.0, 60.0])).image, atol=2e-2
        )


def test_strict_loading_rejects_mismatch(tmp_path: Path) -> None:
    model = seeded(TINY)
    model.save_pretrained(tmp_path / "ok")
    state = load_file(str(tmp_path / "ok" / "model.safetensors"))
    # A checkpoint of another configuration (wider modulator) must not load.
    wider = seeded({**TINY, "modulator_dim": 48})
    with pytest.raises(WeightsError, match="wrong shape"):
        load_weights(wider, tmp_path / "ok" / "model.safetensors")
    # A missing tensor and an extra one are named.
    broken = dict(state)
    broken.pop("modulator.to_attention.weight")
    broken["modulator.extra"] = torch.zeros(1)
    save_file(broken, str(tmp_path / "ok" / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"missing modulator\.to_attention\.weight.*unexpected modulator\.extra"):
        load_pretrained(tmp_path / "ok")
    # A generator folder is not a discriminator.
    with pytest.raises(WeightsError, match="ragan"):
        ReAgingDiscriminator.from_pretrained(str(tmp_path / "ok"))


def test_edit_faces_interface(two_faces: torch.Tensor) -> None:
    model = seeded({"image_size": 128, "conv_dim": 8, "num_identity_blocks": 1, "num_modulated_blocks": 1})
    assert model.uses_aus is False and model.config.image_size == 128
    with torch.no_grad():
        result = model.edit_faces(
            two_faces,
            source_age=torch.tensor([30.0, 30.0]),
            target_age=torch.tensor([5.0, 90.0]),
            source_aus=torch.zeros(2, 17),
            target_aus=torch.full((2, 17), 2.0),
        )
        direct = model(two_faces, torch.tensor([5.0, 90.0])).image
        # AUs and the source age are ignored: other values give the same edit.
        again = model.edit_faces(
            two_faces,
            source_age=torch.tensor([80.0, 1.0]),
            target_age=torch.tensor([5.0, 90.0]),
            source_aus=torch.ones(2, 17),
            target_aus=torch.zeros(2, 17),
        )
    assert isinstance(result, EditOutput)
    assert result.attention is None
    assert torch.equal(result.image, direct) and torch.equal(again.image, direct)


# -- training -------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = str(REPO / "training" / "configs" / "ragan_tiny.yaml")


def build_system(data: Path, output: Path, *extra: str):
    from accelerate import Accelerator

    from training.train import load_run_config

    run = load_run_config(TINY_CONFIG, [f"train.data_dir={data}", f"train.output_dir={output}", *extra])
    system = run.system_cls(run.system, run.train, Accelerator())
    system.build()
    return system


def fixed_batch(data: Path, n: int = 8, size: int = 32) -> dict[str, torch.Tensor]:
    from torch.utils.data import default_collate

    from training.data.prepared import PreparedFaces

    faces = PreparedFaces(data, "train", image_size=size, max_samples=n)
    return default_collate([faces[i] for i in range(len(faces))])


def test_target_ages_are_balanced_over_groups() -> None:
    from ganime_age.conditions import age_to_group
    from training.systems.ragan import sample_target_ages

    g = torch.Generator().manual_seed(0)
    ages, groups = sample_target_ages(2000, continuous=True, max_age=90.0, device=torch.device("cpu"), generator=g)
    assert [age_to_group(float(a)) for a in ages] == groups.tolist()  # the label matches the age drawn
    assert float(ages.max()) <= 90.0
    counts = torch.bincount(groups, minlength=10)
    assert int(counts.min()) > 150  # ~200 each: infants are not over-represented as in the data
    ages, groups = sample_target_ages(50, continuous=False, max_age=90.0, device=torch.device("cpu"), generator=g)
    assert [age_to_group(float(a)) for a in ages] == groups.tolist()


def test_training_steps_lower_the_loss(prepared_utk64: Path, tmp_path: Path) -> None:
    """30 steps of the tiny config on 8 fixed real faces: the generator's reconstruction, cycle and identity
    losses and the discriminator's age classification of real faces all fall (first 5 vs last 5 steps).

    The direct output head is used: the residual head starts as the identity map, where those losses are ~0."""
    torch.manual_seed(0)
    system = build_system(prepared_utk64, tmp_path / "run", "system.generator.output_mode=direct")
    batch = fixed_batch(prepared_utk64)
    before = {k: v.detach().clone() for k, v in system.models["generator"].state_dict().items()}
    history = [{k: float(v) for k, v in system.training_step(batch, step).items()} for step in range(30)]
    assert all(np.isfinite(list(h.values())).all() for h in history)
    for key in ("g_loss", "g_rec", "g_cycle", "g_id", "d_cls_real"):
        early = np.mean([h[key] for h in history[:5]])
        late = np.mean([h[key] for h in history[-5:]])
        assert late < 0.9 * early, (key, early, late)
    # the EMA copy follows the trained generator but lags it
    after = system.models["generator"].state_dict()
    ema = system.ema.state_dict()
    name = "modulator.to_attention.weight"
    assert not torch.equal(after[name], before[name])
    assert not torch.equal(ema[name], before[name]) and not torch.equal(ema[name], after[name])


@pytest.mark.parametrize(
    "options",
    [
        ("system.adversarial=wgan-gp", "system.critic_steps=2", "system.generator.age_condition=groups"),
        ("system.r1_every=1", "system.ema_decay=0", "system.lambda_id=0"),
    ],
)
def test_other_options_train(prepared_utk64: Path, tmp_path: Path, options: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    system = build_system(prepared_utk64, tmp_path / "run", *options)
    batch = fixed_batch(prepared_utk64, n=4)
    system.set_batch_source(lambda: batch)  # extra critic steps draw fresh batches from the trainer's stream
    logs = [system.training_step(batch, step) for step in range(2)]
    keys = set(logs[-1])
    assert {"d_loss", "d_adv", "d_cls_real", "g_loss", "g_adv", "g_cls", "g_rec", "g_cycle"} <= keys
    assert ("d_gp" in keys) == ("system.adversarial=wgan-gp" in options)
    assert ("d_r1" in keys) == ("system.r1_every=1" in options)
    assert ("g_id" in keys) == ("system.lambda_id=0" not in options)
    assert all(np.isfinite(float(v)) for v in logs[-1].values())
    assert (system.ema is None) == ("system.ema_decay=0" in options)


def test_bad_system_options_are_rejected(prepared_utk64: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="adversarial"):
        build_system(prepared_utk64, tmp_path, "system.adversarial=lsgan")
    with pytest.raises(ValueError, match=r"train\.image_size"):
        build_system(prepared_utk64, tmp_path, "train.image_size=64")


def test_trainer_run_exports_a_folder_face_editor_uses(
    prepared_utk64: Path, tmp_path: Path, utk_sample: list[Path]
) -> None:
    """training/train.py with the tiny config: logs, an age-ramp sample grid, an fp16 Hub folder with a card;
    FaceEditor.from_pretrained(folder) picks ReAgingGAN from config.json and edits a real photo."""
    from ganime_age.editing import FaceEditor
    from ganime_age.models.age_estimator import AgeEstimator, AgeEstimatorConfig
    from training.systems.trackers import read_log
    from training.train import main

    output = tmp_path / "run"
    code = main(
        [
            "--config",
            TINY_CONFIG,
            f"train.data_dir={prepared_utk64}",
            f"train.output_dir={output}",
            "train.max_steps=2",
            "train.log_every=1",
            "train.sample_every=2",
            "train.batch_size=4",
        ]
    )
    assert code == 0
    records = [r for r in read_log(output) if "g_loss" in r]
    assert [r["step"] for r in records] == [1, 2]
    grid = Image.open(output / "samples" / "step-0000002.png")
    assert grid.size == (11 * 34 + 2, 14 + 2 * 34 + 2)  # input + 10 ages, 2 faces of 32 px
    export = output / "export"
    config = json.loads((export / "config.json").read_text())
    assert config["model_type"] == "ragan" and config["image_size"] == 32
    weights = load_file(str(export / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in weights.values() if t.is_floating_point())
    card = (export / "README.md").read_text()
    assert "RAGAN" in card and "age modulator" in card
    assert "non-commercial" in card and "CASIA-WebFace" in card  # data terms (UTKFace) + identity-loss note

    estimator_dir = tmp_path / "estimator"
    torch.manual_seed(0)
    AgeEstimator(AgeEstimatorConfig(image_size=32, base_channels=8, channel_multipliers=(1, 2))).save_pretrained(
        estimator_dir
    )
    editor = FaceEditor.from_pretrained(export, device="cpu", age_estimator=estimator_dir)
    # a RAGAN runs as a refiner on top of the fitted engine, which edits the AUs
    assert isinstance(editor.refiner, ReAgingGAN) and editor.image_size == 32
    photo = Image.open(utk_sample[5]).convert("RGB")
    details = editor.edit_details(photo, age=70)
    assert details.image.size == photo.size
    assert details.faces[0].output.size == (32, 32) and details.faces[0].attention is not None
    assert details.faces[0].target_age == 70
