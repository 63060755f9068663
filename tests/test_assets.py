"""Model files: the resolver's order, the copies shipped in the package, and an edit on a machine with
no asset variables, an empty cache and no network (the fresh-install case of issue 15)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.assets import ASSETS, PACKAGED_DIR, resolve_asset, sha256_file
from ganime_age.errors import ModelFileNotFoundError

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
PACKAGED = [name for name, asset in ASSETS.items() if asset.packaged]


@pytest.fixture
def no_asset_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GANIME_AGE_* variable, and an empty cache folder (returned)."""
    for key in [k for k in os.environ if k.startswith("GANIME_AGE_")]:
        monkeypatch.delenv(key)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def test_the_packaged_copies_are_the_upstream_files_with_their_licences() -> None:
    # never MobileFaceNet: its weights have no licence
    assert sorted(PACKAGED) == ["face_landmarker", "face_parser", "selfie_segmenter", "yunet"]
    for name in PACKAGED:
        asset = ASSETS[name]
        assert sha256_file(PACKAGED_DIR / asset.filename) == asset.sha256
    notes = (PACKAGED_DIR / "README.md").read_text()
    licences = {
        "yunet": "MIT License",
        "face_landmarker": "Apache License",
        "selfie_segmentation": "Apache License",
        "face_parser": "MIT License",
    }
    for name, licence in licences.items():
        asset = ASSETS["selfie_segmenter" if name == "selfie_segmentation" else name]
        assert asset.sha256 in notes
        assert licence in (PACKAGED_DIR / f"LICENSE-{name}.txt").read_text()
    assert not (PACKAGED_DIR / ASSETS["mobilefacenet"].filename).exists()


def test_without_variables_the_packaged_copy_is_used_and_nothing_is_downloaded(no_asset_variables: Path) -> None:
    for name in PACKAGED:
        assert resolve_asset(name) == PACKAGED_DIR / ASSETS[name].filename
    assert not no_asset_variables.exists()


def test_variables_come_before_the_packaged_copy(
    no_asset_variables: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("GANIME_AGE_ASSETS", str(models_dir))
    assert resolve_asset("yunet") == models_dir / ASSETS["yunet"].filename
    mine = shutil.copyfile(models_dir / ASSETS["yunet"].filename, tmp_path / "my-yunet.onnx")
    monkeypatch.setenv("GANIME_AGE_YUNET", str(mine))
    assert resolve_asset("yunet") == mine


def test_a_damaged_packaged_copy_is_skipped(
    no_asset_variables: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "face-models"
    damaged.mkdir()
    yunet = ASSETS["yunet"].filename
    (damaged / yunet).write_bytes((PACKAGED_DIR / yunet).read_bytes()[:1000])  # a truncated file
    monkeypatch.setattr("ganime_age.assets.PACKAGED_DIR", damaged)
    with pytest.raises(ModelFileNotFoundError, match="Set GANIME_AGE_ASSETS to a folder that holds " + yunet):
        resolve_asset("yunet", download=False)
    no_asset_variables.joinpath("ganime-age").mkdir(parents=True)
    cached = shutil.copyfile(models_dir / yunet, no_asset_variables / "ganime-age" / yunet)
    assert resolve_asset("yunet", download=False) == cached  # the next source in line


def test_a_missing_model_file_names_the_one_variable_that_fixes_it(no_asset_variables: Path) -> None:
    with pytest.raises(ModelFileNotFoundError) as raised:
        resolve_asset("mobilefacenet")
    message = str(raised.value)
    assert "Set GANIME_AGE_ASSETS to a folder that holds mobilefacenet_casia.safetensors" in message
    assert "no public download" in message


def offline_environment(home: Path) -> dict[str, str]:
    """This process's environment without any GANIME_AGE_* variable, with an empty home and cache, the
    Hub offline and every HTTP(S) request sent to a closed local port (a download attempt fails)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANIME_AGE_", "HF_"))}
    dead_proxy = "http://127.0.0.1:9"
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        HF_HOME=str(home / ".cache" / "huggingface"),
        HF_HUB_OFFLINE="1",
        http_proxy=dead_proxy,
        https_proxy=dead_proxy,
        HTTP_PROXY=dead_proxy,
        HTTPS_PROXY=dead_proxy,
        no_proxy="",
        NO_PROXY="",
    )
    return env


def test_a_fresh_install_edits_a_photo_offline_with_no_variables(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    output = tmp_path / "older.png"
    command = [sys.executable, "-m", "ganime_age.cli", "edit", str(ASTRONAUT), "--age", "75", "-o", str(output)]
    done = subprocess.run(
        command, env=offline_environment(home), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"expected a quiet run, got:\n{done.stderr}"  # no MediaPipe/TFLite log lines
    assert re.match(r"face 0: age \d+ -> 75", done.stdout.splitlines()[0]), done.stdout
    assert not (home / ".cache" / "ganime-age").exists()  # nothing was downloaded or cached

    before = np.asarray(Image.open(ASTRONAUT).convert("RGB"), np.int16)
    after = np.asarray(Image.open(output).convert("RGB"), np.int16)
    assert after.shape == before.shape
    changed = np.abs(after - before).max(axis=2) > 8
    face = changed[63:176, 178:268]  # the astronaut's face box (YuNet)
    assert face.mean() > 0.2, "the face was not edited"
    outside = changed.copy()
    outside[20:240, 120:330] = False  # everything well away from the face stays as it was
    assert outside.mean() < 0.001
