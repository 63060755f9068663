"""Shared fixtures: real data and models from ../shared (never copied into the project).

A clone without ../shared still runs the core that needs nothing outside the repository (loading and saving
models, the editor on the photos the package and the Space ship, typed errors, the CLI, the Space's API); every
test that needs the real datasets or models skips with one reason that names what is missing. CI sets
GANIME_AGE_REQUIRE_SHARED=1, so there a missing ../shared is an error, never a quiet skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANIME_AGE_SHARED", REPO.parent / "shared")).resolve()
UTKFACE = SHARED / "datasets" / "utkface"
GANIMATION_SAMPLE = SHARED / "datasets" / "ganimation_sample"
MODELS = SHARED / "models"

HAVE_SHARED = UTKFACE.is_dir()
MISSING_SHARED = (
    f"needs the real datasets and models of ../shared, which are not part of the repository "
    f"(not found at {SHARED}; set GANIME_AGE_SHARED to that folder)"
)
# fixtures that read ../shared: a test that uses one (directly or through another fixture) needs it
SHARED_FIXTURES = frozenset({"shared_dir", "models_dir", "utkface_files"})
requires_shared = pytest.mark.skipif(not HAVE_SHARED, reason=MISSING_SHARED)

# Point the asset resolver at the shared copies before any test loads a detector (the package ships its own
# detector, landmarker and segmenter; ../shared adds MobileFaceNet).
if HAVE_SHARED:
    os.environ.setdefault("GANIME_AGE_ASSETS", str(MODELS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread: tests start subprocesses and a Space server beside the main process, and on 2 cores
# oversubscribed OpenMP threads spin and ran 10-40x slower than one thread each.
torch.set_num_threads(1)


def build_refiner_pairs(output: Path, people: int, photos: int) -> Path:
    """A real refiner dataset (``training/data/refiner.py``) at `output`: the engine's edits of `people` CFEE
    training people (both directions of every pair) and of `photos` UTKFace photos, at 128 px."""
    from training.data.refiner import RefinerDataConfig, build

    datasets = SHARED / "datasets"
    config = RefinerDataConfig(
        output=str(output),
        cfee=str(datasets / "cfee"),
        utkface=str(datasets / "utkface"),
        max_people=people,
        max_utkface=photos,
        progress=False,
    )
    build(config)
    return output


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared: needs the real datasets and models of ../shared")
    if not HAVE_SHARED and os.environ.get("GANIME_AGE_REQUIRE_SHARED") == "1":
        raise pytest.UsageError(f"real test data not found at {SHARED}; set GANIME_AGE_SHARED")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ../shared, skip (with one reason) every test that reads it: by its fixtures or its `shared` mark."""
    if HAVE_SHARED:
        return
    skip = pytest.mark.skip(reason=MISSING_SHARED)
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("shared"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def refiner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GANimation-age refiner folder in the Hub layout (seeded, untrained: it passes the engine's edit through).

    The tests that damage or compose a refiner make this one (a copy they may spoil, of a known seed); the
    shipped refiners (weights/refiners/) are tested in test_shipped_refiners.py.
    """
    from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GanimationAge(GanimationAgeConfig(conv_dim=32, num_residual_blocks=4, refiner=True))
    folder = tmp_path_factory.mktemp("refiner") / "ganime-age-refiner"
    model.save_pretrained(folder, dtype=torch.float16)
    return folder


@pytest.fixture(scope="session")
def utkface_files() -> list[Path]:
    """All well-formed UTKFace file names, sorted (deterministic picks)."""
    return sorted(p for p in UTKFACE.iterdir() if p.name.count("_") == 3 and p.name.endswith(".jpg.chip.jpg"))


def utk_age(path: Path) -> int:
    return int(path.name.split("_")[0])


@pytest.fixture(scope="session")
def utk_sample(utkface_files: list[Path]) -> list[Path]:
    """50 real faces spread over the age range."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(utkface_files), size=50, replace=False)
    return [utkface_files[i] for i in sorted(picks)]


@pytest.fixture(scope="session")
def coffee_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-image's coffee cup: a real photo without a face."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("coffee") / "coffee.jpg"
    Image.fromarray(data.coffee()).save(path, quality=90)
    return path


# Real malformed UTKFace names from the shared copy: a stray space, a missing field, a missing dot.
UTK_MALFORMED = (
    "24_0_1_20170116220224657 .jpg.chip.jpg",
    "39_1_20170116174525125.jpg.chip.jpg",
    "55_0_0_20170116232725357jpg.chip.jpg",
)


@pytest.fixture(scope="session")
def prepared_utk(tmp_path_factory: pytest.TempPathFactory, utk_sample: list[Path]) -> dict:
    """A prepared dataset (training/prepare_data.py) of the 50 sample faces at 128 px, made once per session.

    The input folder also holds the 3 malformed names and one byte-identical duplicate, so the report
    has something to account for. Returns {"output", "input", "report", "warnings", "duplicate"}.
    """
    import shutil
    import warnings

    from training.prepare_data import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("prepared_utk")
    source = root / "utkface"
    source.mkdir()
    for path in utk_sample:
        (source / path.name).symlink_to(path)
    for name in UTK_MALFORMED:
        (source / name).symlink_to(UTKFACE / name)
    first = utk_sample[0]
    age, gender, race, _ = first.name.split("_", 3)
    duplicate = source / f"{age}_{gender}_{race}_29991231235959999.jpg.chip.jpg"  # sorts after the original
    shutil.copyfile(first, duplicate)
    output = root / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = prepare(PrepareConfig(source="utkface", input=str(source), output=str(output), progress=False))
    return {
        "output": output,
        "input": source,
        "report": report,
        "warnings": [str(w.message) for w in caught],
        "duplicate": duplicate,
    }


def face_tensor(paths: list[Path], size: int) -> torch.Tensor:
    """Real UTKFace crops resized to `size` as a [-1, 1] NCHW float batch (for model tests)."""
    from PIL import Image

    arrays = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)) for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@pytest.fixture(scope="session")
def space_url():
    """The Gradio Space (space/, app.py) served once per session on a free local port; yields its URL.

    Shared by tests/test_space.py (gradio_client) and tests/test_browser.py (Chromium).
    """
    import socket

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from space import build_app
    from space.app import launch_options

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = build_app()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def prepared_utk64(tmp_path_factory: pytest.TempPathFactory, utk_sample: list[Path]) -> Path:
    """40 of the sample faces prepared at 64 px (a quarter in the test split): data for tiny training runs."""
    from training.prepare_data import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("prepared_utk64")
    source = root / "utkface"
    source.mkdir()
    for path in utk_sample[:40]:
        (source / path.name).symlink_to(path)
    output = root / "data"
    config = PrepareConfig(source="utkface", input=str(source), output=str(output), size=64, test_fraction=0.25)
    config.progress = False
    prepare(config)
    return output


@pytest.fixture
def audio_only_video(tmp_path: Path) -> Path:
    """An mp4 with an audio track and no video stream: a video input that has no frames."""
    import subprocess

    import imageio_ffmpeg

    path = tmp_path / "audio-only.mp4"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=8000:cl=mono",
        "-t",
        "0.3",
        str(path),
    ]
    subprocess.run(command, check=True)
    return path


@pytest.fixture(scope="session")
def prepared_cfee64(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A 64 px CFEE subset: the Neutral, Happy, Surprised and Angry photos of 16 people (real FACS codes)."""
    import csv

    from training.prepare_data import PrepareConfig, prepare

    cfee = shared_dir / "datasets" / "cfee"
    with open(cfee / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    people = sorted({row["identity"] for row in rows})[:16]
    keep = [
        r for r in rows if r["identity"] in people and r["emotion_cat"] in ("Neutral", "Happy", "Surprised", "Angry")
    ]
    source = tmp_path_factory.mktemp("cfee_subset")
    (source / "images").mkdir()
    for row in keep:
        (source / row["file_name"]).symlink_to(cfee / row["file_name"])
    with open(source / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    (source / "aus.csv").symlink_to(cfee / "aus.csv")
    output = tmp_path_factory.mktemp("prepared_cfee64") / "data"
    config = PrepareConfig(source="cfee", input=str(source), output=str(output), size=64, test_fraction=0.25)
    config.progress = False
    prepare(config)
    return output


# -- helpers for tests that run a separate process --------------------------------------------------------
CAPPED_CALL = """
import importlib, resource, sys, time
cap = int(sys.argv[3]) << 20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # a regression fails here, not the machine
module, name = sys.argv[1].split(":")
function = getattr(importlib.import_module(module), name)
started = time.monotonic()
try:
    function(sys.argv[2])
    print("loaded")
except Exception as error:
    print(f"{type(error).__name__}: {error}")
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{time.monotonic() - started:.2f} {peak // 1024}")  # VmHWM: ru_maxrss would count the parent's peak
"""


def call_with_memory_cap(call: str, argument: str, cap_mb: int, timeout: float) -> tuple[str, float, int, str]:
    """Run `call` ("module:function", given one argument) in a fresh Python whose address space is capped at
    `cap_mb`: (its outcome, "loaded" or "ErrorClass: message"; seconds; peak resident MB; everything it printed)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CAPPED_CALL, call, argument, str(cap_mb)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    printed = done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    if len(lines) < 2:
        raise AssertionError(f"the capped call printed no verdict:\n{printed}")
    seconds, peak = lines[-1].split()
    return lines[-2], float(seconds), int(peak), printed


def stop_process(process: Any, log: Any = None) -> None:
    """Terminate a server started by a test (kill it if it does not stop within 30 s), then close its log."""
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if log is not None:
        log.close()


@pytest.fixture(scope="session")
def scene_silhouette() -> Callable[[np.ndarray], np.ndarray]:
    """Where the people of a photo are: the selfie segmenter over the whole photo (read at 512 pixels a side, as
    the network reads 256 anyway, resized back): 0..1 per pixel. An edit must not change a pixel below 0.03."""
    import cv2

    from ganime_age.faces.segment import SelfieSegmenter

    segmenter = SelfieSegmenter()

    def silhouette(photo: np.ndarray) -> np.ndarray:
        height, width = photo.shape[:2]
        scale = 512 / max(height, width)
        small = cv2.resize(photo, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        return cv2.resize(segmenter(small), (width, height), interpolation=cv2.INTER_LINEAR)

    return silhouette


def webp_claiming(width: int, height: int) -> bytes:
    """An animated WebP of two 64x64 frames whose header claims a canvas of `width` x `height` (a decompression
    bomb of 10 KB: 16384 x 16384 claims 268 MP)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    frames = [Image.new("RGB", (64, 64), (90, 90, 90)), Image.new("RGB", (64, 64), (30, 30, 30))]
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100, quality=50)
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"VP8X"
    data[24:27], data[27:30] = (width - 1).to_bytes(3, "little"), (height - 1).to_bytes(3, "little")
    return bytes(data)
