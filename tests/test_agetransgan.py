"""AgeTransGAN: shapes, group blending, the edit interface, Hub round trips, strict loading, the MI loss."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from conftest import face_tensor
from safetensors.torch import load_file, save_file

from ganime_age.conditions import NUM_AGE_GROUPS, group_center
from ganime_age.errors import GanimeAgeError, WeightsError
from ganime_age.hub import load_pretrained
from ganime_age.models.agetransgan import (
    AgeTransGAN,
    AgeTransGANDiscriminator,
    ModulatedConv2d,
    mutual_information_loss,
)
from ganime_age.models.aifd import AIFDConfig, AIFDEncoder
from ganime_age.models.common import EditOutput, soft_group_code

TINY_G = {
    "image_size": 32,
    "channel_base": 512,
    "channel_max": 32,
    "style_dim": 32,
    "mapping_layers": 2,
    "identity_blocks": 1,
}
TINY_D = {"image_size": 32, "channel_base": 512, "channel_max": 32}


def seeded_generator(config: dict | None = None, seed: int = 0) -> AgeTransGAN:
    torch.manual_seed(seed)
    return AgeTransGAN(config).eval()


@pytest.fixture(scope="module")
def faces32(utk_sample: list[Path]) -> torch.Tensor:
    return face_tensor(utk_sample[:4], 32)


def test_shapes_at_128(utk_sample: list[Path]) -> None:
    faces = face_tensor(utk_sample[:2], 128)
    generator = seeded_generator()
    with torch.no_grad():
        out = generator(faces, torch.tensor([0, 9]))
        encoded = generator.encode(faces, torch.tensor([0, 9]))
    assert out.shape == faces.shape and torch.isfinite(out).all()
    assert encoded.identity.shape[-2:] == (16, 16)
    assert encoded.w.shape == (2, generator.config.style_dim)
    critic = AgeTransGANDiscriminator().eval()
    with torch.no_grad():
        judged = critic(out, torch.tensor([0, 9]))
    assert judged.realism.shape == (2,)
    assert judged.group_logits.shape == judged.age_logits.shape == (2, NUM_AGE_GROUPS)


def test_tiny_and_256_sizes(faces32: torch.Tensor) -> None:
    generator = seeded_generator(TINY_G)
    with torch.no_grad():
        assert generator(faces32, torch.arange(4)).shape == faces32.shape
    big = AgeTransGAN({**TINY_G, "image_size": 256}).eval()
    critic = AgeTransGANDiscriminator({**TINY_D, "image_size": 256}).eval()
    image = torch.nn.functional.interpolate(faces32[:1], size=256, mode="bilinear")
    with torch.no_grad():
        out = big(image, torch.tensor([3]))
        assert out.shape == (1, 3, 256, 256)
        assert critic(out, torch.tensor([3])).realism.shape == (1,)
    with pytest.raises(ValueError, match="power of two"):
        AgeTransGAN({**TINY_G, "image_size": 96})
    with pytest.raises(ValueError, match="expected images"):
        generator(torch.zeros(1, 3, 64, 64), torch.tensor([0]))
    with pytest.raises(ValueError, match="age groups"):
        generator(faces32[:1], torch.tensor([NUM_AGE_GROUPS]))


def test_target_group_changes_the_output(faces32: torch.Tensor) -> None:
    generator = seeded_generator(TINY_G)
    with torch.no_grad():
        young = generator(faces32, torch.zeros(4, dtype=torch.long))
        old = generator(faces32, torch.full((4,), 9))
    assert (young - old).abs().mean() > 1e-3


def test_demodulation_normalises_output_scale() -> None:
    """With demodulation a huge style gives the same output scale as a small one (weight demodulation works)."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 8, 3, style_dim=4)
    x = torch.randn(2, 16, 8, 8)
    w = torch.randn(2, 4)
    with torch.no_grad():
        a = conv(x, w)
        conv.modulation.bias.mul_(100.0)  # scales every style ~100x
        b = conv(x, w)
    assert a.std() / b.std() == pytest.approx(1.0, rel=0.2)
    conv.demodulate = False
    with torch.no_grad():
        assert conv(x, w).std() > 10 * a.std()


def test_group_blending_is_smooth(faces32: torch.Tensor) -> None:
    generator = seeded_generator(TINY_G)
    low, high = group_center(5), group_center(6)
    ages = torch.linspace(low, high, 6)
    codes = soft_group_code(ages)
    assert torch.allclose(codes[0], torch.nn.functional.one_hot(torch.tensor(5), NUM_AGE_GROUPS).float())
    assert torch.allclose(codes[:, 5] + codes[:, 6], torch.ones(6))
    assert torch.all(codes[1:, 6] > codes[:-1, 6])  # the weight of the next group grows linearly
    face = faces32[:1]
    with torch.no_grad():
        outputs = [
            generator.edit_faces(face, source_age=torch.tensor([25.0]), target_age=a.reshape(1)).image for a in ages
        ]
        by_index = generator(face, torch.tensor([5])).clamp(-1, 1)
    assert torch.allclose(outputs[0], by_index, atol=1e-5)  # a group's centre age is exactly that group
    total = (outputs[-1] - outputs[0]).abs().mean()
    steps = [(b - a).abs().mean() for a, b in itertools.pairwise(outputs)]
    assert total > 0
    assert max(steps) < 0.5 * total  # five small steps, not one jump


def test_edit_interface(faces32: torch.Tensor) -> None:
    generator = seeded_generator(TINY_G)
    assert generator.uses_aus is False
    with torch.no_grad():
        out = generator.edit_faces(
            faces32,
            source_age=torch.full((4,), 25.0),
            target_age=torch.tensor([1.0, 8, 45, 90]),
            source_aus=torch.zeros(4, 17),
            target_aus=torch.full((4, 17), 3.0),
        )
        no_aus = generator.edit_faces(
            faces32,
            source_age=torch.full((4,), 25.0),
            target_age=torch.tensor([1.0, 8, 45, 90]),
            source_aus=torch.zeros(4, 17),
            target_aus=torch.zeros(4, 17),
        )
    assert isinstance(out, EditOutput) and out.attention is None
    assert out.image.shape == faces32.shape and out.image.min() >= -1 and out.image.max() <= 1
    assert torch.equal(out.image, no_aus.image)  # AUs are ignored, and eval-mode noise is repeatable


def test_discriminator_conditional_output(faces32: torch.Tensor) -> None:
    torch.manual_seed(0)
    critic = AgeTransGANDiscriminator(TINY_D).eval()
    groups = torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        judged = critic(faces32, groups)
        soft = critic(faces32, soft_group_code(torch.tensor([1.0, 12.0, 24.5, 90.0])))
    assert torch.allclose(judged.realism, judged.group_logits.gather(1, groups[:, None]).squeeze(1))
    assert torch.allclose(soft.realism, (soft.group_logits * soft_group_code(torch.tensor([1.0, 12, 24.5, 90]))).sum(1))
    no_std = AgeTransGANDiscriminator({**TINY_D, "mbstd_group_size": 0})
    assert no_std(faces32[:3], groups[:3]).realism.shape == (3,)


def test_round_trip_identical_outputs(tmp_path: Path, faces32: torch.Tensor) -> None:
    generator = seeded_generator(TINY_G, seed=3)
    generator.save_pretrained(tmp_path / "g32")
    generator.save_pretrained(tmp_path / "g16", dtype=torch.float16)
    torch.manual_seed(3)
    critic = AgeTransGANDiscriminator(TINY_D).eval()
    critic.save_pretrained(tmp_path / "d")
    loaded = load_pretrained(tmp_path / "g32")
    half = load_pretrained(tmp_path / "g16")
    loaded_critic = load_pretrained(tmp_path / "d")
    assert isinstance(loaded, AgeTransGAN) and isinstance(loaded_critic, AgeTransGANDiscriminator)
    assert loaded.config == generator.config
    target = torch.tensor([0, 2, 6, 9])
    with torch.no_grad():
        expected = generator(faces32, target)
        assert torch.equal(loaded(faces32, target), expected)
        assert (half(faces32, target) - expected).abs().max() < 0.05
        assert torch.equal(loaded_critic(faces32, target).realism, critic(faces32, target).realism)
    assert "agetransgan" in (tmp_path / "g32" / "README.md").read_text()


def test_strict_loading_fails_loudly(tmp_path: Path) -> None:
    generator = seeded_generator(TINY_G)
    generator.save_pretrained(tmp_path / "g")
    weights = tmp_path / "g" / "model.safetensors"
    state = load_file(str(weights))
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(weights))
    with pytest.raises(WeightsError, match="missing"):
        load_pretrained(tmp_path / "g")
    with pytest.raises(WeightsError, match="holds a 'agetransgan' model"):
        AgeTransGANDiscriminator.from_pretrained(str(tmp_path / "g"))
    wider = AgeTransGAN({**TINY_G, "style_dim": 48})
    wider.save_pretrained(tmp_path / "wide")
    (tmp_path / "wide" / "config.json").write_text((tmp_path / "g" / "config.json").read_text())
    with pytest.raises(WeightsError, match="wrong shape"):
        load_pretrained(tmp_path / "wide")


def test_mi_loss(utk_sample: list[Path]) -> None:
    torch.manual_seed(0)
    encoder = AIFDEncoder(AIFDConfig(image_size=64, base_channels=16)).eval()
    faces = face_tensor(utk_sample[:2], 64)
    source = faces[:1]
    noised = (source + 0.02 * torch.randn_like(source)).clamp(-1, 1)
    other = faces[1:2]
    with torch.no_grad():
        same = mutual_information_loss(encoder, source, source.clone())
        slight = mutual_information_loss(encoder, source, noised)
        changed = mutual_information_loss(encoder, source, other)
    print(f"MI loss: same {float(same):.2e}, noised {float(slight):.4f}, other face {float(changed):.4f}")
    assert abs(float(same)) < 1e-5
    assert float(changed) > float(slight) > float(same) - 1e-6
    output = noised.clone().requires_grad_(True)
    mutual_information_loss(encoder, source, output).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_two_stage_training_with_the_trainer(prepared_utk: dict, tmp_path: Path) -> None:
    """Tiny configs through training/train.py: AIFD, AgeTransGAN pre-training, then the MI stage from it."""
    from training.train import load_run_config, run_training

    repo = Path(__file__).resolve().parents[1]
    data = str(prepared_utk["output"])
    common = [f"train.data_dir={data}", "train.max_steps=2", "train.sample_every=2"]
    aifd = load_run_config(repo / "training/configs/aifd_tiny.yaml", [*common, f"train.output_dir={tmp_path / 'aifd'}"])
    aifd_export = Path(run_training(aifd)["export_dir"])
    assert isinstance(load_pretrained(aifd_export), AIFDEncoder)
    assert "verification rate" in (aifd_export / "README.md").read_text()

    config = repo / "training/configs/agetransgan_tiny.yaml"
    pretrain = load_run_config(config, [*common, f"train.output_dir={tmp_path / 'pre'}"])
    assert pretrain.system.lambda_mi == 0
    run_training(pretrain)
    assert (tmp_path / "pre" / "samples" / "step-0000002.png").is_file()
    assert isinstance(load_pretrained(tmp_path / "pre" / "discriminator"), AgeTransGANDiscriminator)

    stage2 = [f"system.init_from={tmp_path / 'pre'}", "system.lambda_mi=1", f"system.aifd_path={aifd_export}"]
    finetune = load_run_config(config, [*common, "train.max_steps=1", f"train.output_dir={tmp_path / 'mi'}", *stage2])
    summary = run_training(finetune)
    logs = [json.loads(line) for line in (tmp_path / "mi" / "logs.jsonl").read_text().splitlines()]
    assert any("g_mi" in record for record in logs)
    generator = load_pretrained(summary["export_dir"])
    assert (
        isinstance(generator, AgeTransGAN)
        and "with the MI loss" in (Path(summary["export_dir"]) / "README.md").read_text()
    )

    bad = load_run_config(config, [*common, f"train.output_dir={tmp_path / 'bad'}", "system.lambda_mi=1"])
    with pytest.raises(GanimeAgeError, match="aifd_path"):
        run_training(bad)
