"""MobileFaceNet on real faces: exact checkpoint match, identity separation, gradients, strict loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganime_age.errors import WeightsError
from ganime_age.faces import FaceDetector, align_face, load_image
from ganime_age.hub import load_pretrained, load_weights
from ganime_age.models.mobilefacenet import FaceRecognizer, MobileFaceNet, cosine

WEIGHTS = "mobilefacenet_casia.safetensors"


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    return FaceRecognizer()


@pytest.fixture(scope="module")
def face_pairs(utk_sample: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """20 real faces aligned with ALIGN_TEMPLATE, and a shifted + brightened copy of each photo, aligned again."""
    detector = FaceDetector()
    originals, copies = [], []
    for path in utk_sample[20:40]:
        image = load_image(path)
        shifted = np.roll(image, shift=(4, -3), axis=(0, 1))
        brighter = np.clip(shifted.astype(np.float32) * 1.12 + 12, 0, 255).astype(np.uint8)
        for photo, out in ((image, originals), (brighter, copies)):
            aligned = align_face(photo, detector.detect(photo)[0].points, 128).image
            out.append(torch.from_numpy(aligned).permute(2, 0, 1).float() / 127.5 - 1.0)
    return torch.stack(originals), torch.stack(copies)


@pytest.fixture(scope="module")
def embeddings(recognizer: FaceRecognizer, face_pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of both sets, computed once (the CPU is shared)."""
    with torch.no_grad():
        both = recognizer.embed_aligned(torch.cat(face_pairs))
    return both[:20], both[20:]


def test_architecture_matches_checkpoint_exactly(models_dir: Path, recognizer: FaceRecognizer) -> None:
    with safe_open(str(models_dir / WEIGHTS), "pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
        reference = handle.get_tensor("linear1.bn.running_mean")
    state = MobileFaceNet().state_dict()
    assert set(state) == set(shapes) and len(shapes) == 333
    assert all(tuple(state[key].shape) == shapes[key] for key in shapes)
    # the recognizer loaded the file strictly, values included
    torch.testing.assert_close(recognizer.net.state_dict()["linear1.bn.running_mean"], reference)
    assert 0.95e6 < sum(p.numel() for p in recognizer.net.parameters()) < 1.1e6


def test_same_face_closer_than_different_people(embeddings) -> None:
    a, b = embeddings
    assert a.shape == (20, 128)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(20))
    same = cosine(a, b)
    different = cosine(a, b.roll(1, dims=0))  # each face against another person's copy
    assert same.mean() > 0.7, same
    assert different.mean() < 0.3, different
    assert same.mean() - different.mean() > 0.5
    assert (same > different).float().mean() >= 0.95


def test_any_crop_size_and_flip_embedding(recognizer: FaceRecognizer, face_pairs, embeddings) -> None:
    originals = face_pairs[0][:2]
    bigger = torch.nn.functional.interpolate(originals, size=256, mode="bicubic", align_corners=False).clamp(-1, 1)
    with torch.no_grad():
        large = recognizer.embed_aligned(bigger)
        evaluation = recognizer.embed(originals, flip=True)
    assert (recognizer.cosine(embeddings[0][:2], large) > 0.9).all()  # the warp accounts for the crop size
    assert evaluation.shape == (2, 256)
    torch.testing.assert_close(evaluation.norm(dim=1), torch.ones(2))
    # the first half is the plain embedding (normalised together with the mirror's half)
    assert (recognizer.cosine(evaluation[:, :128], embeddings[0][:2]) > 0.999).all()


def test_gradient_reaches_the_image_not_the_weights(recognizer: FaceRecognizer, face_pairs, embeddings) -> None:
    images = face_pairs[0][:2].clone().requires_grad_(True)
    loss = (1 - recognizer.cosine(recognizer(images), embeddings[1][:2])).mean()
    loss.backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in recognizer.parameters())
    recognizer.train()
    assert not recognizer.training and not recognizer.net.training  # frozen BatchNorm statistics


def test_wrong_weights_are_refused(tmp_path: Path, models_dir: Path) -> None:
    wrong = tmp_path / "wrong.safetensors"
    save_file({"conv1.conv.weight": torch.zeros(64, 3, 3, 3), "extra.weight": torch.zeros(3)}, str(wrong))
    with pytest.raises(WeightsError, match="missing"):
        load_weights(MobileFaceNet(), wrong, strict=True)
    with pytest.raises(WeightsError):
        FaceRecognizer(weights=wrong)
    # a real safetensors file of a different network: misshapen tensors are named
    narrow = MobileFaceNet({"embedding_size": 64})
    with pytest.raises(WeightsError, match="linear1"):
        load_weights(narrow, models_dir / WEIGHTS, strict=True)
    text = tmp_path / "not_weights.safetensors"
    text.write_text("hello")
    with pytest.raises(WeightsError):
        load_weights(MobileFaceNet(), text)


@pytest.mark.shared  # MobileFaceNet is not shipped: its weights live in ../shared
def test_hub_round_trip(tmp_path: Path, recognizer: FaceRecognizer) -> None:
    model = recognizer.net
    model.save_pretrained(tmp_path / "mfn")
    loaded = load_pretrained(tmp_path / "mfn")
    assert isinstance(loaded, MobileFaceNet)
    x = torch.randn(1, 3, 112, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
