"""Fuzzing the public API: a few hundred generated odd inputs and arguments, each a success or a project error.

Inputs are derived from a real photo (the shipped astronaut example): truncated and bit-flipped copies,
every PIL mode, odd array dtypes and shapes, a header claiming 900 megapixels, paths that cannot work,
objects that are no image at all; arguments are ages, AUs and face indices of every wrong type and range.
The outcome of each call must be a result or a :class:`GanimeAgeError` subclass, never another exception.
The seed is fixed, so a failure names a case that can be replayed.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ganime_age.editing import EditorConfig, FaceEditor
from ganime_age.errors import GanimeAgeError, ImageTooLargeError, InvalidArgumentError, NotAnImageError

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
CASES = 400
SEED = 16

GOOD_AGES: list[Any] = [None, 0, 35, 100, 62.5, np.float32(40), np.int64(70)]
BAD_AGES: list[Any] = [
    -5,
    150,
    float("nan"),
    float("inf"),
    "abc",
    "40",
    [30, 40],
    True,
    {},
    1e308,
    10**400,
    Fraction(10**400, 3),
]
GOOD_AUS: list[Any] = [None, {"AU12": 3}, {"au06": 1.5, "AU25": 0}, {"AU12_r": 5}, np.zeros(17), [1.0] * 17]
BAD_AUS: list[Any] = [
    {"AU12": None},
    {12: 3},
    "AU12=3",
    {"AU99": 1},
    [1.0] * 16,
    {"AU12": 6},
    {"AU12": -1},
    {"AU12": float("nan")},
    {"smile": 2},
    [[1, 2], [3]],
    {"AU12": 10**400},
    {"AU²": 1},
    {"AU12": 1, "au12": 4},
    7,
]
GOOD_FACES: list[Any] = [None, 0, np.int64(0)]
BAD_FACES: list[Any] = ["0", 1.5, True, [0], 1, -1, 5, 0.0, np.bool_(False)]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a few bytes of data: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def photo_inputs(rng: np.random.Generator, tmp_path: Path) -> list[tuple[str, Callable[[], Any]]]:
    """(name, make) for every kind of input; `make` builds it fresh, so lazily opened images are not reused."""
    data = ASTRONAUT.read_bytes()
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    cut = int(rng.integers(200, len(data) - 200))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[:cut])
    flipped = bytearray(data)
    for index in rng.choice(np.arange(1000, len(data)), size=30, replace=False):
        flipped[index] ^= 0xFF
    (tmp_path / "folder.jpg").mkdir(exist_ok=True)

    def pil_mode(mode: str) -> Callable[[], Any]:
        return lambda: Image.fromarray(rgb).convert(mode)

    inputs: list[tuple[str, Callable[[], Any]]] = [
        ("path", lambda: ASTRONAUT),
        ("str path", lambda: str(ASTRONAUT)),
        ("bytes", lambda: data),
        ("bytearray", lambda: bytearray(data)),
        ("memoryview", lambda: memoryview(data)),
        ("array", lambda: rgb),
        ("PIL", lambda: Image.open(ASTRONAUT)),
        ("truncated bytes", lambda: data[:cut]),
        ("truncated path", lambda: truncated),
        ("truncated lazy PIL", lambda: Image.open(truncated)),
        ("flipped bytes", lambda: bytes(flipped)),
        ("empty bytes", lambda: b""),
        ("garbage bytes", lambda: rng.bytes(2048)),
        ("text bytes", lambda: b"hello, this is not a photo\n" * 40),
        ("png magic + junk", lambda: b"\x89PNG\r\n\x1a\n" + rng.bytes(300)),
        ("900 MP header", lambda: png_header_only(30000, 30000)),
        ("missing path", lambda: tmp_path / "missing.jpg"),
        ("folder path", lambda: tmp_path / "folder.jpg"),
        ("5000-char path", lambda: "x" * 5000),
        ("NUL path", lambda: "photo\x00.jpg"),
        ("None", lambda: None),
        ("int", lambda: 42),
        ("list", lambda: [1, 2, 3]),
        ("dict", lambda: {"path": str(ASTRONAUT)}),
        ("int8 array", lambda: (rgb.astype(np.int16) - 128).astype(np.int8)),
        ("float -1..1 array", lambda: rgb.astype(np.float32) / 127.5 - 1.0),
        ("float 0..1 array", lambda: rgb.astype(np.float32) / 255.0),
        ("float NaN array", lambda: np.full((64, 64, 3), np.nan, np.float32)),
        ("bool array", lambda: rgb[..., 0] > 128),
        ("uint16 array", lambda: rgb.astype(np.uint16) * 257),
        ("int64 array", lambda: rgb.astype(np.int64)),
        ("complex array", lambda: rgb.astype(np.complex64)),
        ("object array", lambda: np.empty((64, 64, 3), object)),
        ("2-channel array", lambda: rgb[..., :2]),
        ("5-channel array", lambda: np.concatenate([rgb, rgb[..., :2]], axis=2)),
        ("1-D array", lambda: rgb.reshape(-1)),
        ("4-D array", lambda: rgb[None]),
        ("empty array", lambda: np.zeros((0, 0, 3), np.uint8)),
        ("tiny array", lambda: rgb[:8, :8]),
        ("20000x20000 view", lambda: np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000))),
        ("blank photo", lambda: np.full((256, 256, 3), 200, np.uint8)),
        ("noise photo", lambda: rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)),
    ]
    for mode in ("L", "LA", "La", "P", "PA", "I", "I;16", "F", "CMYK", "1", "RGBA", "RGBa", "YCbCr", "LAB", "HSV"):
        inputs.append((f"PIL {mode}", pil_mode(mode)))
    return inputs


def pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))


def test_every_outcome_is_a_result_or_a_project_error(editor: FaceEditor, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    inputs = photo_inputs(rng, tmp_path)
    outcomes: Counter[str] = Counter()
    for case in range(CASES):
        name, make = pick(rng, inputs)
        method = pick(rng, ["edit", "estimate_age", "measure_aus"])
        bad_argument = rng.random() < 0.35  # else good arguments, so the input alone decides
        age = pick(rng, BAD_AGES if bad_argument and rng.random() < 0.4 else GOOD_AGES)
        aus = pick(rng, BAD_AUS if bad_argument and rng.random() < 0.5 else GOOD_AUS)
        face = pick(rng, BAD_FACES if bad_argument and rng.random() < 0.5 else GOOD_FACES)
        label = f"case {case}: {method}({name}, age={age!r}, aus={aus!r}, face={face!r})"
        try:
            if method == "edit":
                result = editor.edit(make(), age=age, aus=aus, face=face)
                assert isinstance(result, Image.Image) and min(result.size) >= 32, label
            elif method == "estimate_age":
                ages = editor.estimate_age(make(), face=face)
                assert all(0.0 <= a <= 120.0 for a in np.atleast_1d(ages)), label
            else:
                aus_measured = editor.measure_aus(make(), face=face)
                faces_measured = aus_measured if face is None else [aus_measured]
                assert all(len(one) == 17 for one in faces_measured), label
            outcomes["success"] += 1
        except GanimeAgeError as error:
            outcomes[type(error).__name__] += 1
        except Exception as error:  # the point of the test: anything else is a defect
            pytest.fail(f"{label} raised {type(error).__name__}: {error}")
    # the fuzzer must have exercised both sides, or it proves nothing
    assert outcomes["success"] >= 30, outcomes
    assert sum(outcomes.values()) - outcomes["success"] >= 100, outcomes
    assert outcomes["InvalidArgumentError"] and outcomes["CorruptImageError"] and outcomes["NotAnImageError"]
    print(dict(outcomes))


@pytest.mark.parametrize("age", BAD_AGES)
def test_bad_ages_are_refused_not_clamped(editor: FaceEditor, age: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="age"):
        editor.edit(ASTRONAUT, age=age)


@pytest.mark.parametrize("aus", [a for a in BAD_AUS if a != 7])
def test_bad_aus_are_refused_not_clamped(editor: FaceEditor, aus: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        editor.edit(ASTRONAUT, aus=aus)


@pytest.mark.parametrize("face", ["0", 1.5, True, [0]])
def test_face_must_be_an_integer(editor: FaceEditor, face: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="face must be an integer"):
        editor.edit(ASTRONAUT, face=face)


def test_size_is_checked_before_an_array_is_converted(editor: FaceEditor) -> None:
    """A 400 MP view of one byte: refused from its shape, before the 1.2 GB RGB copy would be made."""
    huge = np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000))
    with pytest.raises(ImageTooLargeError, match="limit is 100,000,000 pixels"):
        editor.edit(huge, age=50)


def test_bombs_are_reported_against_the_project_limit() -> None:
    from ganime_age.faces import load_image

    with pytest.raises(ImageTooLargeError, match=r"900\.0 MP \(900,000,000 pixels\); the limit is 100,000,000 pixels"):
        load_image(png_header_only(30000, 30000))
    with pytest.raises(GanimeAgeError) as caught:
        load_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert "BytesIO" not in str(caught.value) and "0x" not in str(caught.value)


def test_a_truncated_lazily_opened_image_is_corrupt_not_an_os_error(editor: FaceEditor, tmp_path: Path) -> None:
    from ganime_age.errors import CorruptImageError

    half = tmp_path / "half.jpg"
    half.write_bytes(ASTRONAUT.read_bytes()[: ASTRONAUT.stat().st_size // 2])
    with pytest.raises(CorruptImageError, match="truncated"):
        editor.edit(Image.open(half), age=50)


def test_the_cache_is_bounded_by_memory(editor: FaceEditor) -> None:
    small = FaceEditor(
        editor.model,
        age_estimator=editor.age_estimator,
        second_age_estimator=editor.second_age_estimator,
        analyzer=editor.analyzer,
        config=EditorConfig(device="cpu", cache_size=8, cache_megabytes=2.0),
    )
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))  # 0.79 MB
    for shift in range(4):
        small.analyze(np.roll(photo, 8 * shift, axis=1))
    assert len(small.sessions) == 2  # 4 photos by count, 2 by the 2 MB budget


def test_too_many_faces_is_a_typed_error(editor: FaceEditor) -> None:
    from ganime_age.errors import TooManyFacesError

    capped = FaceEditor(
        editor.model,
        age_estimator=editor.age_estimator,
        second_age_estimator=editor.second_age_estimator,
        config=EditorConfig(max_faces=1),
    )
    with pytest.raises(TooManyFacesError, match="2 faces; at most 1"):
        capped.edit(REPO / "space" / "examples" / "two-faces.jpg", age=50)
    assert len(editor.analyze(REPO / "space" / "examples" / "two-faces.jpg")) == 2  # the default cap is 32


def test_the_no_face_hint_gives_the_real_minimum_size() -> None:
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import FaceAnalyzer

    blank = np.full((3000, 4000, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"at least ~62 pixels wide \(or crop"):
        FaceAnalyzer().analyze(blank)


def test_encoded_image_via_io(tmp_path: Path) -> None:
    """bytes from an in-memory encoder work the same as a file (a control for the fuzz cases above)."""
    from ganime_age.faces import load_image

    buffer = io.BytesIO()
    Image.open(ASTRONAUT).save(buffer, "PNG")
    assert load_image(buffer.getvalue()).shape == (512, 512, 3)


# -- issue 20: typed errors where they still escaped ----------------------------------------------------------
HUGE = 10**400  # float(HUGE) raises OverflowError


@pytest.mark.parametrize(
    "kwargs",
    [
        {"age": HUGE},
        {"age": -HUGE},
        {"age": Fraction(HUGE, 3)},
        {"aus": {"AU12": HUGE}},
        {"aus": [HUGE] * 17},
        {"aus": {"AU²": 1}},
        {"aus": {"AU①": 1}},
        {"aus": {"AU" + "1" * 5000: 1}},  # int() of 5000 digits is a ValueError of its own
        {"aus": {"AU12": 1, "au12": 4}},
        {"aus": {"AU06": 1, "AU6_r": 2}},
    ],
    ids=str,
)
def test_huge_numbers_odd_digits_and_duplicate_aus_are_typed(editor: FaceEditor, kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        editor.edit(ASTRONAUT, **kwargs)
    assert len(str(caught.value)) < 400  # no 400-digit number or 5000-character name in the message


def test_age_strip_with_a_huge_age_is_typed(editor: FaceEditor) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ages\[1\] must be between 0 and 100 years, not an integer"):
        editor.age_strip(ASTRONAUT, ages=[20, HUGE])


def test_duplicate_aus_name_both_spellings(editor: FaceEditor) -> None:
    with pytest.raises(InvalidArgumentError, match=r"AU12 is given twice \(as 'AU12' and 'au12'\)"):
        editor.edit(ASTRONAUT, aus={"AU12": 1, "au12": 4})


def test_a_refused_age_shows_enough_digits(editor: FaceEditor) -> None:
    with pytest.raises(InvalidArgumentError, match=r"not 100\.0000001$"):
        editor.edit(ASTRONAUT, age=100.0000001)
    with pytest.raises(InvalidArgumentError, match=r"not 150$"):
        editor.edit(ASTRONAUT, age=150)


def test_a_folder_is_not_an_image(editor: FaceEditor, tmp_path: Path) -> None:
    with pytest.raises(NotAnImageError, match="is a folder"):
        editor.edit(tmp_path, age=50)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"age": HUGE},
        {"age": Fraction(HUGE, 3)},
        {"face": None},
        {"face": "0"},
        {"face": 0.0},
        {"face": np.bool_(False)},
        {"face": True},
        {"driving_face": None},
        {"driving_face": 1.0},
        {"aus_scale": HUGE},
    ],
    ids=str,
)
def test_reenact_arguments_get_the_shared_checks(editor: FaceEditor, kwargs: dict) -> None:
    """The reenactment path never called the shared face check: these raised TypeError and OverflowError."""
    with pytest.raises(InvalidArgumentError):
        editor.reenact(ASTRONAUT, ASTRONAUT, **kwargs)


def test_reenact_video_arguments_are_checked_before_any_work(editor: FaceEditor, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="driving_face must be an integer"):
        editor.reenact_video(ASTRONAUT, tmp_path / "missing.mp4", tmp_path / "out.mp4", driving_face=None)
    with pytest.raises(InvalidArgumentError, match="age must be between"):
        editor.reenact_video(ASTRONAUT, tmp_path / "missing.mp4", tmp_path / "out.mp4", age=HUGE)


EDIT_SPECIAL_FILES = """
import resource, sys, threading, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression that reads /dev/zero fails here
from ganime_age.editing import EditorConfig, FaceEditor

editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
for path in sys.argv[1:]:
    started = time.monotonic()
    try:
        editor.edit(path, age=50)
        print("edited", path)
    except Exception as error:
        print(type(error).__name__, path, f"{time.monotonic() - started:.2f}")
print("peak", next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def test_edit_refuses_special_files_without_reading_them(tmp_path: Path) -> None:
    """FaceEditor.edit('/dev/zero') read gigabytes, and a FIFO blocked forever (in a subprocess: a hang or a memory
    blow-up fails this test instead of the machine)."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-c", EDIT_SPECIAL_FILES, "/dev/zero", str(fifo), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("peak"), done.stdout + done.stderr
    verdicts = lines[-4:-1]
    assert [line.split()[:2] for line in verdicts] == [
        ["NotAnImageError", "/dev/zero"],
        ["NotAnImageError", str(fifo)],
        ["NotAnImageError", str(tmp_path)],
    ], done.stdout + done.stderr
    assert all(float(line.split()[2]) < 5 for line in verdicts), verdicts
    assert int(lines[-1].split()[1]) < 1500, lines[-1]
