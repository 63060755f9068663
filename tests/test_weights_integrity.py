"""Corrupted model folders are refused with typed errors; nothing corrupt edits a photo silently.

Every case starts from a copy of the shipped default model (src/ganime_age/weights/ganime-age-128) and
damages one thing: NaN/Inf values, flipped bytes, all-zero tensors, an int32 cast, edited or unknown
config values. Cases run with the sha256 sums that save_pretrained writes and, where the check behind
them must hold on its own, without (folders exported before the sums existed have none).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ganime_age.errors import CorruptWeightsError, ModelOutputError, WeightsError
from ganime_age.hub import CONFIG_SHA256, WEIGHTS_SHA256, load_pretrained
from ganime_age.models.ganimation_age import GanimeAge, GanimeAgeConfig
from ganime_age.pipeline import DEFAULT_ESTIMATOR_DIR, DEFAULT_MODEL_DIR, EditorConfig, FaceEditor

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
FIRST_CONV = "encoder.0.0.weight"


def damaged_copy(
    tmp_path: Path,
    *,
    tensors: Callable[[dict[str, torch.Tensor]], None] | None = None,
    config: Callable[[dict], None] | None = None,
    raw: Callable[[bytearray], None] | None = None,
    keep_sums: bool = True,
) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    settings = json.loads((folder / "config.json").read_text())
    if not keep_sums:
        settings.pop(WEIGHTS_SHA256)
        settings.pop(CONFIG_SHA256)
    if config is not None:
        config(settings)
    (folder / "config.json").write_text(json.dumps(settings))
    if tensors is not None:
        state = load_file(folder / "model.safetensors")
        tensors(state)
        save_file(state, folder / "model.safetensors")
    if raw is not None:
        data = bytearray((folder / "model.safetensors").read_bytes())
        raw(data)
        (folder / "model.safetensors").write_bytes(bytes(data))
    return folder


def set_first(value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def damage(state: dict[str, torch.Tensor]) -> None:
        state[FIRST_CONV].view(-1)[17] = value

    return damage


def flip_bytes(data: bytearray) -> None:
    """200 flipped bytes in the tensor data (past the header, so the file still parses)."""
    header = int.from_bytes(data[:8], "little") + 8
    rng = np.random.default_rng(0)
    for index in rng.choice(np.arange(header, len(data)), size=200, replace=False):
        data[index] ^= 0xFF


def zero_all(state: dict[str, torch.Tensor]) -> None:
    for tensor in state.values():
        tensor.zero_()


def cast_int32(state: dict[str, torch.Tensor]) -> None:
    for name in list(state):
        state[name] = state[name].to(torch.int32)


def test_the_shipped_folders_carry_and_pass_their_sums() -> None:
    for folder in (DEFAULT_MODEL_DIR, DEFAULT_ESTIMATOR_DIR):
        settings = json.loads((folder / "config.json").read_text())
        assert settings[WEIGHTS_SHA256] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert len(settings[CONFIG_SHA256]) == 64
        load_pretrained(folder)


def test_save_pretrained_writes_the_sums_and_loading_checks_them(tmp_path: Path) -> None:
    model = GanimeAge(GanimeAgeConfig(image_size=64, conv_dim=8, num_residual_blocks=1, age_embedding_dim=16))
    model.save_pretrained(tmp_path / "g")
    settings = json.loads((tmp_path / "g" / "config.json").read_text())
    digest = hashlib.sha256((tmp_path / "g" / "model.safetensors").read_bytes()).hexdigest()
    assert settings[WEIGHTS_SHA256] == digest and settings["image_size"] == 64
    assert isinstance(load_pretrained(tmp_path / "g"), GanimeAge)
    (tmp_path / "g" / "model.safetensors").write_bytes(
        (tmp_path / "g" / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0"
    )
    with pytest.raises(CorruptWeightsError, match=WEIGHTS_SHA256):
        load_pretrained(tmp_path / "g")


@pytest.mark.parametrize("keep_sums", [True, False])
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ({"tensors": set_first(float("nan"))}, "NaN|sha256"),
        ({"tensors": set_first(float("inf"))}, "NaN or infinite|sha256"),
        ({"tensors": zero_all}, "all zeros|sha256"),
        ({"tensors": cast_int32}, "torch.int32|sha256"),
        ({"config": lambda c: c.update(max_age=0)}, "max_age must be between 1 and 200"),
        ({"config": lambda c: c.update(num_aus=16)}, "num_aus must be between 17 and 17"),
        ({"config": lambda c: c.update(conv_dim="wide")}, "conv_dim|invalid literal"),
        ({"config": lambda c: c.update(dropout=0.5)}, "unknown GanimeAgeConfig option.*dropout"),
        ({"config": lambda c: c.update(model_type="age_estimator")}, "unknown AgeEstimatorConfig option"),
        ({"config": lambda c: c.update(model_type="banana")}, "unknown model_type 'banana'"),
    ],
)
def test_damaged_folders_are_refused(tmp_path: Path, damage: dict, expected: str, keep_sums: bool) -> None:
    folder = damaged_copy(tmp_path, keep_sums=keep_sums, **damage)
    with pytest.raises(WeightsError, match=expected):
        load_pretrained(folder)
    with pytest.raises(WeightsError, match=expected):  # the editor, the CLI and the Space load through it
        FaceEditor.from_pretrained(folder, config=EditorConfig(device="cpu"))


def test_flipped_bytes_and_edited_settings_are_caught_by_the_sums(tmp_path: Path) -> None:
    with pytest.raises(CorruptWeightsError, match=WEIGHTS_SHA256):
        load_pretrained(damaged_copy(tmp_path / "flipped", raw=flip_bytes))
    # the weights are fully convolutional, so a 256 px claim loads; only the config sum can tell
    with pytest.raises(CorruptWeightsError, match=CONFIG_SHA256):
        load_pretrained(damaged_copy(tmp_path / "resized", config=lambda c: c.update(image_size=256)))


def test_a_generator_that_outputs_nan_is_refused() -> None:
    """Weights poisoned after loading (or a device's broken arithmetic): no black squares pasted over faces."""
    model = load_pretrained(DEFAULT_MODEL_DIR)
    with torch.no_grad():
        dict(model.named_parameters())[FIRST_CONV].view(-1)[17] = float("nan")
    editor = FaceEditor(model, config=EditorConfig(device="cpu"))
    with pytest.raises(ModelOutputError, match="NaN or infinite pixels"):
        editor.edit(ASTRONAUT, age=50)
