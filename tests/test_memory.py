"""What an edit holds in memory (issue 54): a large photo's edit keeps its float temporaries to a band of rows at a
time, the photo cache counts what its photos' faces hold, and the bank keeps a bounded number of faces decoded.
The resident figures themselves are benchmarks/bench_memory.py's (its table is in benchmarks/README.md)."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from ganime_age import FaceEditor
from ganime_age.editing.manifest import WEIGHTS_DIR
from ganime_age.engine.exemplars import AgeExemplars
from ganime_age.faces import load_image


def cfee_photo(shared_dir: Path, index: int, megapixels: float | None = None) -> np.ndarray:
    """CFEE's full-size original number `index` (the order of its labels.csv, as bench_memory.py's), resampled."""
    root = shared_dir / "datasets" / "cfee_full"
    with open(root / "labels.csv", newline="") as handle:
        name = [row["file_name"] for row in csv.DictReader(handle)][index]
    rgb = load_image(root / name)
    if megapixels is None:
        return rgb
    scale = (megapixels * 1e6 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(device="cpu")


def test_a_large_edit_holds_a_few_bytes_a_pixel(editor: FaceEditor, shared_dir: Path) -> None:
    """A 4 MP photo whose hair covers much of it, made 75: the traced peak stays under 45 bytes a pixel. The person's
    weight, the hair's full greying, its hairline and strands, the beard and the texture were each computed over
    the whole head box in float32 at once (81 bytes a pixel, 2.6x the photo's own 12 MB x 3)."""
    editor.edit(cfee_photo(shared_dir, 1), age=70)  # the models' first call is not the edit's
    photo = cfee_photo(shared_dir, 3, 4.0)
    tracemalloc.start()
    try:
        editor.edit(photo, age=75)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    pixels = photo.shape[0] * photo.shape[1]
    assert peak / pixels < 45.0, f"{peak / 1e6:.0f} MB traced at the peak: {peak / pixels:.1f} bytes a pixel"


def test_the_photo_cache_counts_what_its_faces_hold(editor: FaceEditor, shared_dir: Path) -> None:
    """Each cached photo's faces hold far more than its pixels once edited (the engine's grids, the hair's and the
    beard's changes at the photo's resolution): counted by its pixels alone, the cache kept 8 photos whatever their
    faces held, and a server's idle memory crept up with every new photo."""
    editor.sessions.clear()
    editor.sessions.megabytes = 40.0
    try:
        for index in range(4):
            photo = cfee_photo(shared_dir, 10 + index)
            editor.edit(photo, age=60)
            newest = editor.sessions.open(photo)
            assert newest.held_bytes() > 3 * newest.rgb.nbytes  # the faces' preparation is counted
            assert editor.sessions.held_bytes() <= 40e6 + newest.held_bytes()
        assert len(editor.sessions) <= 2
    finally:
        editor.sessions.megabytes = editor.config.cache_megabytes
        editor.sessions.clear()


def test_the_bank_keeps_a_bounded_number_of_faces_decoded() -> None:
    """Every face of the bank a server has matched stayed decoded (0.5 MB each, 490 MB for the whole bank)."""
    bank = AgeExemplars.from_pretrained(WEIGHTS_DIR / "age-exemplars")
    kept = 8 * bank.config.neighbours  # eight target ages' matches
    first = bank.log_view(0).copy()
    for index in range(3 * kept):
        bank.log_view(index % bank.config.count)
    assert len(bank._decoded) <= kept
    assert np.array_equal(bank.log_view(0), first)  # decoded again, the same
