"""Corrupted model folders are refused with typed errors; nothing corrupt edits a photo silently.

Every case starts from a copy of a GANimation-age refiner folder (conftest's seeded one) and
damages one thing: NaN/Inf values, flipped bytes, all-zero tensors, an int32 cast, edited or unknown
config values. Cases run with the sha256 sums that save_pretrained writes and, where the check behind
them must hold on its own, without (folders exported before the sums existed have none).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import call_with_memory_cap
from safetensors.torch import load_file, save_file

from ganime_age.editing import DEFAULT_ENGINE_DIR, DEFAULT_ESTIMATOR_DIR, EditorConfig, FaceEditor
from ganime_age.errors import CorruptWeightsError, ModelOutputError, WeightsError
from ganime_age.hub import CONFIG_SHA256, WEIGHTS_SHA256, load_pretrained
from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
FIRST_CONV = "encoder.0.0.weight"
GANIMATION_DIR = Path()  # a GANimation-age folder in the Hub layout: set from the refiner_dir fixture


@pytest.fixture(autouse=True)
def _ganimation_folder(refiner_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case starts from a GANimation-age refiner folder (conftest's, seeded)."""
    monkeypatch.setattr(sys.modules[__name__], "GANIMATION_DIR", refiner_dir)


def damaged_copy(
    tmp_path: Path,
    *,
    tensors: Callable[[dict[str, torch.Tensor]], None] | None = None,
    config: Callable[[dict], None] | None = None,
    raw: Callable[[bytearray], None] | None = None,
    keep_sums: bool = True,
) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(GANIMATION_DIR, folder)
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
    for folder in (DEFAULT_ENGINE_DIR, DEFAULT_ESTIMATOR_DIR, GANIMATION_DIR):
        settings = json.loads((folder / "config.json").read_text())
        assert settings[WEIGHTS_SHA256] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert len(settings[CONFIG_SHA256]) == 64
        load_pretrained(folder)


def test_save_pretrained_writes_the_sums_and_loading_checks_them(tmp_path: Path) -> None:
    model = GanimationAge(GanimationAgeConfig(image_size=64, conv_dim=8, num_residual_blocks=1, age_embedding_dim=16))
    model.save_pretrained(tmp_path / "g")
    settings = json.loads((tmp_path / "g" / "config.json").read_text())
    digest = hashlib.sha256((tmp_path / "g" / "model.safetensors").read_bytes()).hexdigest()
    assert settings[WEIGHTS_SHA256] == digest and settings["image_size"] == 64
    assert isinstance(load_pretrained(tmp_path / "g"), GanimationAge)
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
        ({"config": lambda c: c.update(dropout=0.5)}, "unknown GanimationAgeConfig option.*dropout"),
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
    model = load_pretrained(GANIMATION_DIR)
    with torch.no_grad():
        dict(model.named_parameters())[FIRST_CONV].view(-1)[17] = float("nan")
    estimator = load_pretrained(DEFAULT_ESTIMATOR_DIR)
    editor = FaceEditor(model, age_estimator=estimator, config=EditorConfig(device="cpu"))
    with pytest.raises(ModelOutputError, match="NaN or infinite pixels"):
        editor.edit(ASTRONAUT, age=50)


# -- issue 20: a model folder cannot exhaust memory or escape as an untyped error -----------------------------


def test_an_oversized_config_is_refused_before_the_model_is_built(tmp_path: Path) -> None:
    """conv_dim 1024, 64 residual blocks, a 4096-d age embedding: each within validate()'s ranges, together
    about 20 billion parameters (80 GB) that from_pretrained allocated before looking at the weights."""

    folder = damaged_copy(
        tmp_path, config=lambda c: c.update(conv_dim=1024, num_residual_blocks=64, age_embedding_dim=4096)
    )
    verdict, _, peak_mb, printed = call_with_memory_cap("ganime_age.hub:load_pretrained", str(folder), 4096, 300)
    assert verdict.startswith("WeightsError: ") and "M parameters" in verdict and "the limit is 500 M" in verdict, (
        printed
    )
    assert peak_mb < 1500, peak_mb


def test_the_parameter_count_is_taken_from_the_config() -> None:
    from ganime_age.hub import MAX_PARAMETERS, check_model_size

    with torch.device("meta"):
        big = GanimationAge(GanimationAgeConfig(conv_dim=1024, num_residual_blocks=64, age_embedding_dim=4096))
        default = GanimationAge(GanimationAgeConfig())
    assert all(t.device.type == "meta" for t in big.state_dict().values())  # counted without memory
    with pytest.raises(WeightsError, match="19,904 M parameters"):
        check_model_size(big, "big")
    assert check_model_size(default, "default") == sum(p.numel() for p in GanimationAge().state_dict().values())
    assert check_model_size(default, "default") < MAX_PARAMETERS / 50


def test_a_load_draws_no_random_values_on_the_meta_device() -> None:
    """The size check's skeleton is built on the meta device: drawing its random values (PyTorch's meta `normal_`
    imports its compiler) took a second and a half of every editor's load."""
    import subprocess

    script = (
        "import sys, torch\n"
        "from ganime_age.models.common import holds_values\n"
        "from ganime_age.editing import FaceEditor\n"
        "with torch.device('meta'):\n"
        "    skeleton = GanimationAge(GanimationAgeConfig())\n"
        "assert not holds_values(skeleton) and holds_values(GanimationAge(GanimationAgeConfig()))\n"
        "editor = FaceEditor.from_pretrained(device='cpu')\n"
        "assert editor.age_estimator is not None and editor.second_age_estimator is not None\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    header = "from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig\n"
    done = subprocess.run([sys.executable, "-c", header + script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False", done.stdout


def test_weights_are_checked_against_the_header_before_loading(tmp_path: Path) -> None:
    """A header that names the right tensors with other shapes, or claims more data than the file holds, is
    refused from the header alone (the tensors are never allocated)."""
    import struct

    folder = damaged_copy(tmp_path, keep_sums=False)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])

    def rewrite(table: dict) -> None:
        raw = json.dumps(table).encode()
        raw += b" " * (-len(raw) % 8)
        weights.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])

    # a shape of 10 GB in a 3 MB file
    wrong = json.loads(json.dumps(header))
    wrong[FIRST_CONV]["shape"] = [50_000, 50_000]
    rewrite(wrong)
    with pytest.raises(WeightsError, match=rf"not a valid safetensors file: the entry of tensor '{FIRST_CONV}'"):
        load_pretrained(folder)
    # the same values in another shape than the model's: named from the header
    out_channels, in_channels, *kernel = header[FIRST_CONV]["shape"]
    wrong[FIRST_CONV]["shape"] = [in_channels, out_channels, *kernel]
    rewrite(wrong)
    with pytest.raises(WeightsError, match=rf"wrong shape {FIRST_CONV} \({in_channels}, {out_channels}, "):
        load_pretrained(folder)
    # a header length of a terabyte
    weights.write_bytes((10**12).to_bytes(8, "little") + data[8:])
    with pytest.raises(WeightsError, match="header claims 1,000,000,000,000 bytes"):
        load_pretrained(folder)
    # a header that is not JSON, or nested 100,000 deep
    for junk in (b"\xff" * 16, b"[" * 100_000 + b"]" * 100_000):
        weights.write_bytes(struct.pack("<Q", len(junk)) + junk + data[8 + length :])
        with pytest.raises(WeightsError, match="header is not JSON"):
            load_pretrained(folder)


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket"])
@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_special_file_in_place_of_a_model_file_is_named(tmp_path: Path, kind: str, name: str) -> None:
    """A FIFO or a folder named model.safetensors was reported as "not found"; the message now says what it is."""
    import os
    import socket

    folder = damaged_copy(tmp_path)
    target = folder / name
    target.unlink()
    holder = None
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        holder = socket.socket(socket.AF_UNIX)
        holder.bind(str(target))
    expected = "is a folder" if kind == "folder" else "is not a regular file"
    try:
        for load in (load_pretrained, GanimationAge.from_pretrained):
            with pytest.raises(WeightsError, match=expected) as caught:
                load(folder)
            assert "not found" not in str(caught.value)
    finally:
        if holder is not None:
            holder.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"model_type": "ganime_age", "conv_dim": "\xff"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"conv_dim": ' + b"9" * 5000 + b"}", "not a readable config.json"),
        (b"{" + b" " * 1_100_000 + b"}", "larger than 1,000,000 bytes"),
        (b'{"model_type": "ganime_age",', "not a readable config.json"),
        (b"[1, 2]", "must hold a JSON object"),
    ],
    ids=["0xff byte", "deep nesting", "5000-digit number", "2 MB", "truncated", "a list"],
)
def test_a_damaged_config_json_is_a_weights_error(tmp_path: Path, content: bytes, expected: str) -> None:
    folder = damaged_copy(tmp_path)
    (folder / "config.json").write_bytes(content)
    for load in (load_pretrained, GanimationAge.from_pretrained):  # the Hub mixin's own json.load raised before
        with pytest.raises(WeightsError, match=expected):
            load(folder)
