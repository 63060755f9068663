"""Issue 54: what an attack probe of the library found, each a user mistake that must be a typed error
(:class:`~ganime_age.errors.GanimeAgeError`) with a short message that repeats no value whole."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ganime_age import FaceEditor, GanimeAge, __version__
from ganime_age.editing import DEFAULT_ENGINE_DIR, DEFAULT_ESTIMATOR_DIR, MANIFEST_NAME, EditorConfig
from ganime_age.editing.manifest import WEIGHTS_DIR, EditorManifest
from ganime_age.errors import FaceIndexError, ImageTooLargeError, NewerVersionError, WeightsError
from ganime_age.faces import load_image, read_image_header
from ganime_age.hub import CONFIG_NAME, load_pretrained, read_config

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
SHORT = 200  # characters: a message a person reads, and one line of a server's log


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return GanimeAge.from_pretrained(config=EditorConfig(device="cpu"))


# -- 1. a NUL byte in a part's folder or a model's id ----------------------------------------------------------


@pytest.mark.parametrize("part", ["engine", "age_estimator", "reenactor"])
def test_a_manifest_part_with_a_nul_byte_is_a_weights_error(tmp_path: Path, part: str) -> None:
    """editor.json naming "eng\\u0000ine" raised an untyped ``ValueError: embedded null byte`` (os.path.realpath)."""
    folder = tmp_path / "editor"
    shutil.copytree(DEFAULT_ENGINE_DIR, folder / "engine")
    manifest = {"ganime_age_version": __version__, "engine": "engine", part: "eng\u0000ine"}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match=rf"editor\.json's {part} 'eng\\x00ine' holds a NUL byte") as raised:
        GanimeAge.from_pretrained(folder, device="cpu")
    message = str(raised.value)
    assert "\x00" not in message and len(message) < SHORT + len(str(folder)), message
    with pytest.raises(WeightsError, match="NUL byte"):
        EditorManifest.from_json(json.dumps(manifest), "test")


@pytest.mark.parametrize(
    "source",
    ["owner/na\x00me", "na\x00me", "/tmp/a\x00b", "./a\x00b", "x" * 5000 + "\x00"],
    ids=["hub-id", "name", "absolute", "relative", "long"],
)
def test_a_model_id_or_folder_with_a_nul_byte_is_a_weights_error(source: str) -> None:
    """The same id as the editor, a part given by keyword or one model: a typed error saying why, with the byte
    escaped (the Hub client's message repeated it raw, after a long list of the characters a repo id may hold)."""
    calls = (
        lambda: GanimeAge.from_pretrained(source, device="cpu"),
        lambda: GanimeAge.from_pretrained(Path(source), device="cpu"),
        lambda: GanimeAge.from_pretrained(engine=source, device="cpu"),
        lambda: load_pretrained(source),
        lambda: read_config(source),
    )
    for call in calls:
        with pytest.raises(WeightsError, match="holds a NUL byte, which no folder name or Hub id can hold") as raised:
            call()
        assert "\x00" not in str(raised.value) and len(str(raised.value)) < SHORT, str(raised.value)


# -- 2. a model's config.json written by a newer major version -------------------------------------------------


def test_a_model_written_by_a_newer_major_version_is_refused(tmp_path: Path) -> None:
    """A part's config.json with "ganime_age_version": "7.0.0" loaded without complaint, where an editor.json of a
    newer major version is refused: the same check now reads each model's config.json."""
    folder = shutil.copytree(DEFAULT_ESTIMATOR_DIR, tmp_path / "age-estimator")
    config = json.loads((folder / CONFIG_NAME).read_text())

    def written_by(version: object) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps({**config, "ganime_age_version": version}))

    newer = f"{int(__version__.split('.')[0]) + 7}.0.0"
    written_by(newer)
    pattern = rf"config\.json was written by ganime-age {newer}, a newer major version .*upgrade ganime-age"
    for call in (
        lambda: load_pretrained(folder),
        lambda: type(load_pretrained(DEFAULT_ESTIMATOR_DIR)).from_pretrained(folder),  # the class's own loader
        lambda: GanimeAge.from_pretrained(age_estimator=folder, device="cpu"),
    ):
        with pytest.raises(NewerVersionError, match=pattern) as raised:
            call()
        assert len(str(raised.value)) < SHORT + len(str(folder)), str(raised.value)
    written_by("7\n\x00" + "9" * 1000)  # a newer major version followed by junk: said short and escaped
    with pytest.raises(NewerVersionError) as raised:
        load_pretrained(folder)
    assert "\x00" not in str(raised.value) and len(str(raised.value)) < SHORT + len(str(folder))
    written_by(["x" * 1000])
    with pytest.raises(WeightsError, match=r"ganime_age_version must be a version such as '0\.1\.0'") as raised:
        load_pretrained(folder)
    assert len(str(raised.value)) < SHORT + len(str(folder))
    for loads in (None, __version__, "0.0.1"):  # no version (written before versions were kept), this one, older
        written_by(loads)
        assert type(load_pretrained(folder)).__name__ == "AgeEstimator"  # the version is no part of the checksum
    del config["ganime_age_version"]
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    assert type(load_pretrained(folder)).__name__ == "AgeEstimator"


def test_every_shipped_model_still_loads() -> None:
    """Each config.json shipped in weights/ carries a version this one reads, and the model loads whole."""
    configs = sorted(WEIGHTS_DIR.rglob(CONFIG_NAME))
    assert len(configs) >= 9
    for config in configs:
        assert json.loads(config.read_text())["ganime_age_version"] == __version__, config
        assert load_pretrained(config.parent).training is False


# -- 3. a face index of hundreds of digits ---------------------------------------------------------------------


@pytest.mark.parametrize("face", [10**400, -(10**400), 2**64], ids=["10**400", "-10**400", "2**64"])
def test_a_huge_face_index_is_described_not_repeated(editor: FaceEditor, face: int) -> None:
    """edit(face=10**400) and reenact(driving_face=10**400) repeated all 401 digits (475 characters), where a
    target age of 10**400 is "an integer of about 401 digits"."""
    digits = len(str(abs(face)))
    for name, call in (
        ("face", lambda: editor.edit(ASTRONAUT, age=50, face=face)),
        ("face", lambda: editor.edit_details(ASTRONAUT, age=50, face=face)),
        ("face", lambda: editor.reenact(ASTRONAUT, ASTRONAUT, face=face)),
        ("driving_face", lambda: editor.reenact(ASTRONAUT, ASTRONAUT, driving_face=face)),
    ):
        with pytest.raises(
            FaceIndexError, match=rf"^{name} is (a negative|an) integer of about {digits} digits"
        ) as raised:
            call()
        message = str(raised.value)
        assert len(message) < SHORT and str(abs(face))[:20] not in message, message
    with pytest.raises(FaceIndexError, match=r"face 1 asked for, but the photo has 1 face"):  # small ones as before
        editor.edit(ASTRONAUT, age=50, face=1)


# -- 4. a photo just over the pixel limit ------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a few bytes of data (refused before decoding)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def test_a_photo_just_over_the_limit_says_numbers_that_differ(tmp_path: Path) -> None:
    """A 8660x5774 photo (50,002,840 pixels) was refused with "50 MP; the limit is 50 MP"."""
    path = tmp_path / "large.png"
    path.write_bytes(png_header_only(8660, 5774))
    says = r"is 50\.0 MP \(8660x5774 = 50,002,840 pixels\); the limit is 50,000,000 pixels — downscale it first"
    assert read_image_header(path, max_pixels=50_002_840).pixels == 50_002_840
    for call in (
        lambda: read_image_header(path, max_pixels=50_000_000),
        lambda: read_image_header(path.read_bytes(), max_pixels=50_000_000),
        lambda: load_image(path, max_pixels=50_000_000),
        lambda: load_image(np.broadcast_to(np.zeros(1, np.uint8), (5774, 8660, 3)), max_pixels=50_000_000),
    ):
        with pytest.raises(ImageTooLargeError, match=says) as raised:
            call()
        assert len(str(raised.value)) < SHORT + len(str(path)), str(raised.value)
