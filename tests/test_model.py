"""GANimation-age generator and critic: architecture contract, conditioning, Hub round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import save_file

from ganime_age.errors import WeightsError
from ganime_age.hub import load_pretrained
from ganime_age.models.ganimation_age import (
    GanimationAge,
    GanimationAgeConfig,
    GanimationAgeDiscriminator,
    GanimationAgeDiscriminatorConfig,
)

SMALL = GanimationAgeConfig(image_size=64, conv_dim=16, num_residual_blocks=2)


def make_inputs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    aus = torch.rand(n, 17, generator=g) * 5
    age = torch.rand(n, generator=g) * 100
    return image, aus, age


@pytest.mark.parametrize("size", [128, 256])
def test_generator_shapes_and_attention_range(size: int) -> None:
    torch.manual_seed(0)
    model = GanimationAge(GanimationAgeConfig(image_size=size))
    image, aus, age = make_inputs(1, size)
    with torch.no_grad():
        out = model(image, aus, age)
    assert out.image.shape == (1, 3, size, size)
    assert out.attention.shape == (1, 1, size, size)
    assert out.color.shape == (1, 3, size, size)
    assert out.attention.min() >= 0.0 and out.attention.max() <= 1.0
    assert out.color.min() >= -1.0 and out.color.max() <= 1.0
    torch.testing.assert_close(out.image, out.attention * image + (1 - out.attention) * out.color)


def test_architecture_follows_ganimation() -> None:
    model = GanimationAge()
    first = model.encoder[0][0]
    assert first.in_channels == 3 + 17 + 128 and first.out_channels == 64 and first.kernel_size == (7, 7)
    downs = [model.encoder[1][0], model.encoder[2][0]]
    assert [(c.in_channels, c.out_channels, c.stride) for c in downs] == [(64, 128, (2, 2)), (128, 256, (2, 2))]
    assert len(model.bottleneck) == 6
    ups = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in ups] == [(256, 128), (128, 64)]
    assert model.color_head[0].kernel_size == (7, 7) and model.attention_head[0].out_channels == 1
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002


def test_output_equals_input_where_attention_is_one() -> None:
    torch.manual_seed(0)
    model = GanimationAge(SMALL)
    with torch.no_grad():
        model.attention_head[0].weight.fill_(50.0)  # features are post-ReLU (>= 0): A saturates to 1
    image, aus, age = make_inputs(2, 64)
    with torch.no_grad():
        out = model(image, aus, age)
    saturated = out.attention.expand_as(image) > 0.999999
    assert saturated.float().mean() > 0.5
    assert torch.allclose(out.image[saturated], image[saturated], atol=1e-5)


def test_age_only_and_au_only_changes_reach_the_generator() -> None:
    torch.manual_seed(0)
    model = GanimationAge(SMALL)
    image, aus, age = make_inputs(2, 64)
    with torch.no_grad():
        base = model(image, aus, age).image
        older = model(image, aus, age + 40).image
        smiling = model(image, aus.index_fill(1, torch.tensor([8]), 5.0), age).image
    assert (older - base).abs().mean() > 1e-4
    assert (smiling - base).abs().mean() > 1e-4
    # and the two conditions are separate inputs: the condition vector changes in disjoint parts
    cond = model.condition(aus, age)
    cond_age = model.condition(aus, age + 40)
    assert torch.equal(cond[:, :17], cond_age[:, :17]) and not torch.equal(cond[:, 17:], cond_age[:, 17:])


def test_critic_heads_and_patchgan_variant() -> None:
    critic = GanimationAgeDiscriminator()
    image = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        out = critic(image)
    assert out.realism.shape == (2, 1, 2, 2) and out.aus.shape == (2, 17) and out.age.shape == (2,)
    assert critic.layers[-1][0].out_channels == 2048 and critic.au_head.kernel_size == (2, 2)
    patch = GanimationAgeDiscriminator(GanimationAgeDiscriminatorConfig(patch_gan=True, patch_layers=3))
    with torch.no_grad():
        assert patch(image).realism.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError):
        GanimationAgeDiscriminator(GanimationAgeDiscriminatorConfig(image_size=100))


def test_save_load_round_trip_is_identical(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GanimationAge(SMALL).eval()
    model.save_pretrained(tmp_path / "g")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["model_type"] == "ganime_age" and config["image_size"] == 64
    loaded = GanimationAge.from_pretrained(tmp_path / "g")
    also = load_pretrained(tmp_path / "g")
    assert isinstance(also, GanimationAge)
    image, aus, age = make_inputs(2, 64)
    with torch.no_grad():
        assert torch.equal(model(image, aus, age).image, loaded(image, aus, age).image)
        assert torch.equal(model(image, aus, age).image, also(image, aus, age).image)


def test_fp16_checkpoint_is_half_size_and_upcasts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GanimationAge(SMALL).eval()
    model.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    half = (tmp_path / "half" / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    loaded = GanimationAge.from_pretrained(tmp_path / "half")
    assert loaded.encoder[0][0].weight.dtype == torch.float32
    image, aus, age = make_inputs(1, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, aus, age).image, model(image, aus, age).image, atol=2e-2, rtol=0)


def test_strict_loading_names_the_mismatched_tensors(tmp_path: Path) -> None:
    GanimationAge(SMALL).save_pretrained(tmp_path / "g")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    config["num_residual_blocks"] = 3  # the weights have 2 blocks
    (tmp_path / "g" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=r"missing .*bottleneck\.2"):
        GanimationAge.from_pretrained(tmp_path / "g")

    config["num_residual_blocks"] = 2
    config["conv_dim"] = 8
    (tmp_path / "g" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="wrong shape"):
        GanimationAge.from_pretrained(tmp_path / "g")


def test_wrong_weights_files_are_typed_errors(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    GanimationAge(SMALL).save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(WeightsError, match=r"not a (readable )?safetensors file"):
        GanimationAge.from_pretrained(folder)
    save_file({"unrelated.weight": torch.zeros(3)}, str(folder / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"unexpected unrelated\.weight"):
        GanimationAge.from_pretrained(folder)
    GanimationAgeDiscriminator(GanimationAgeDiscriminatorConfig(image_size=64, num_layers=4)).save_pretrained(
        tmp_path / "d"
    )
    with pytest.raises(WeightsError, match="not 'ganime_age'"):
        GanimationAge.from_pretrained(tmp_path / "d")
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"model\.safetensors not found"):
        GanimationAge.from_pretrained(folder)


def test_model_card_carries_metadata(tmp_path: Path) -> None:
    GanimationAge(SMALL).save_pretrained(
        tmp_path / "g",
        model_card_kwargs={
            "trained_on": "UTKFace train split",
            "license": "other",
            "license_name": "utkface-research-only",
            "evaluation": "| metric | value |\n|---|---|\n| MAE | 7.1 |",
            "note": "A preview trained on a CPU.",
        },
    )
    card = ModelCard.load(tmp_path / "g" / "README.md")
    assert card.data.library_name == "ganime-age"
    assert card.data.license == "other" and card.data.license_name == "utkface-research-only"
    assert card.data.pipeline_tag == "image-to-image"
    assert {"ganime-age", "face-aging"} <= set(card.data.tags)
    assert "UTKFace train split" in card.text and "| MAE | 7.1 |" in card.text and '"image_size": 64' in card.text
    description = card.text.index(GanimationAge.description[:40])
    assert description < card.text.index("A preview trained on a CPU.") < card.text.index("## Evaluation")


def test_push_to_hub_uploads_the_hub_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    uploaded: dict[str, object] = {}

    class FakeRepo:
        repo_id = "someone/ganime-age-test"

    def fake_create_repo(self: HfApi, repo_id: str, **kwargs: object) -> FakeRepo:
        return FakeRepo()

    def fake_upload_folder(self: HfApi, *, repo_id: str, folder_path: str, **kwargs: object) -> str:
        folder = Path(folder_path)
        uploaded["repo_id"] = repo_id
        uploaded["files"] = sorted(p.name for p in folder.iterdir())
        uploaded["config"] = json.loads((folder / "config.json").read_text())
        return "https://huggingface.co/someone/ganime-age-test/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    GanimationAge(SMALL).push_to_hub("someone/ganime-age-test")
    assert uploaded["repo_id"] == "someone/ganime-age-test"
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors"]
    assert uploaded["config"]["model_type"] == "ganime_age"  # type: ignore[index]
