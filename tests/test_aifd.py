"""AIFDEncoder: the decomposition X = X_age + X_id, attention ranges, embeddings, Hub round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import face_tensor

from ganime_age.errors import WeightsError
from ganime_age.hub import load_pretrained
from ganime_age.models.aifd import AIFDConfig, AIFDEncoder

TINY = {"image_size": 32, "base_channels": 8, "channel_multipliers": [1, 2, 4], "embedding_dim": 16}


@pytest.fixture(scope="module")
def faces(utk_sample: list[Path]) -> torch.Tensor:
    return face_tensor(utk_sample[:4], 128)


def test_decomposition_sums_to_features(faces: torch.Tensor) -> None:
    torch.manual_seed(0)
    encoder = AIFDEncoder().eval()
    with torch.no_grad():
        out = encoder(faces)
    n, c = faces.shape[0], encoder.config.base_channels * encoder.config.channel_multipliers[-1]
    side = encoder.config.image_size // 2 ** len(encoder.config.channel_multipliers)
    assert out.features.shape == (n, c, side, side)
    assert torch.allclose(out.age_features + out.identity_features, out.features, atol=1e-6)
    assert torch.allclose(
        out.age_features, 0.5 * (out.features * out.channel_attention + out.features * out.spatial_attention), atol=1e-6
    )
    assert out.channel_attention.shape == (n, c, 1, 1) and out.spatial_attention.shape == (n, 1, side, side)
    for attention in (out.channel_attention, out.spatial_attention):
        assert attention.min() > 0 and attention.max() < 1
    # the identity part is not trivially zero or everything: the attention splits X
    assert 0 < out.identity_features.abs().sum() < out.features.abs().sum()
    assert out.age_logits.shape == (n, 101)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(n), atol=1e-5)
    ages = encoder.predict_age(faces)
    assert ages.shape == (n,) and ages.min() >= 0 and ages.max() <= 100


def test_any_input_size_and_tiny_config(faces: torch.Tensor) -> None:
    torch.manual_seed(0)
    encoder = AIFDEncoder(TINY).eval()
    with torch.no_grad():
        big = encoder.identity_embedding(faces)
        small = encoder.identity_embedding(torch.nn.functional.interpolate(faces, size=32, mode="area"))
    assert big.shape == (4, 16)
    assert (big * small).sum(dim=1).min() > 0.99  # resized inside with antialiasing: nearly the same embedding
    with pytest.raises(ValueError, match="divisible"):
        AIFDEncoder({**TINY, "image_size": 36})
    with pytest.raises(ValueError, match="expected images"):
        encoder(faces[:, :1])


def test_age_loss_trains_the_age_branch(faces: torch.Tensor, utk_sample: list[Path]) -> None:
    from conftest import utk_age

    torch.manual_seed(0)
    encoder = AIFDEncoder(TINY).train()
    ages = torch.tensor([float(utk_age(p)) for p in utk_sample[:4]])
    optimizer = torch.optim.Adam(encoder.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss = encoder.age_loss(encoder(faces).age_logits, ages)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_round_trip_and_strict_loading(tmp_path: Path, faces: torch.Tensor) -> None:
    torch.manual_seed(1)
    encoder = AIFDEncoder(TINY).eval()
    encoder.save_pretrained(tmp_path / "aifd")
    loaded = load_pretrained(tmp_path / "aifd")
    assert isinstance(loaded, AIFDEncoder) and loaded.config == encoder.config
    assert loaded.config == AIFDConfig(**{**TINY, "channel_multipliers": (1, 2, 4)})
    with torch.no_grad():
        assert torch.equal(loaded.identity_embedding(faces), encoder.identity_embedding(faces))
        assert torch.equal(loaded(faces).age_logits, encoder(faces).age_logits)
    other = AIFDEncoder({**TINY, "embedding_dim": 32})
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((tmp_path / "aifd" / "config.json").read_text())
    with pytest.raises(WeightsError, match="wrong shape"):
        load_pretrained(tmp_path / "other")


def test_ridge_probe_separates_informative_from_useless_features() -> None:
    from training.systems.aifd import ridge_probe_mae

    rng = np.random.default_rng(0)
    ages = rng.uniform(1, 90, 200)
    informative = np.stack([ages + rng.normal(0, 2, 200), rng.normal(0, 1, 200)], axis=1)
    useless = rng.normal(0, 1, (200, 8))
    constant = np.abs(ages - np.median(ages)).mean()
    assert ridge_probe_mae(informative, ages) < 3.0
    assert ridge_probe_mae(useless, ages) > 0.8 * constant


def test_evaluate_aifd_on_real_faces(utk_sample: list[Path]) -> None:
    from conftest import utk_age

    from training.systems.aifd import aifd_markdown, evaluate_aifd

    torch.manual_seed(0)
    encoder = AIFDEncoder(TINY).eval()
    faces = face_tensor(utk_sample[:12], 64)
    ages = torch.tensor([float(utk_age(p)) for p in utk_sample[:12]])
    result = evaluate_aifd(encoder, faces, ages, batch_size=8)
    assert result["faces"] == 12 and result["impostor_pairs"] == 66
    assert 0.0 <= result["verification_rate"] <= 1.0
    assert -1.0 <= result["impostor_cosine"] <= result["genuine_cosine"] <= 1.0  # a copy is closer than others
    for key in ("probe_mae_from_identity", "probe_mae_from_age", "constant_mae", "age_head_mae"):
        assert 0.0 <= result[key] < 100.0
    assert evaluate_aifd(encoder, faces, ages, batch_size=8) == result  # seeded augmentation: repeatable
    assert "X_id" in aifd_markdown(result)
