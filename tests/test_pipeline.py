"""FaceEditor and the `ganime-age edit` CLI on real photos (the shipped public-domain examples).

The ageing model is the embedded default; these tests check what the pipeline guarantees whatever the
weights: which pixels change, which faces are edited, the cache, the precision option, typed errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.cli import main as cli_main
from ganime_age.conditions import AU_NAMES, NUM_AGE_GROUPS, group_center
from ganime_age.editing import EditorConfig, FaceEditor
from ganime_age.errors import ConfigError, CorruptImageError, FaceIndexError, ModelFileNotFoundError, NoFaceError

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "space" / "examples"
ASTRONAUT = EXAMPLES / "astronaut.jpg"
TWO_FACES = EXAMPLES / "two-faces.jpg"


class CountingAnalyzer:
    """The real FaceAnalyzer, counting how often a photo is analysed (to check the cache)."""

    def __init__(self, analyzer) -> None:
        self.analyzer = analyzer
        self.calls = 0

    def analyze(self, rgb: np.ndarray):
        self.calls += 1
        return self.analyzer.analyze(rgb)

    @property
    def segmenter(self):
        return self.analyzer.segmenter

    @property
    def parser(self):
        return self.analyzer.parser


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(device="cpu")


def pixels(image: Image.Image | Path) -> np.ndarray:
    image = Image.open(image) if isinstance(image, Path) else image
    return np.asarray(image.convert("RGB"), np.int16)


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pixels that differ by more than JPEG-free rounding."""
    ys, xs = np.nonzero(np.abs(after - before).max(axis=2) > 2)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_edit_changes_the_face_and_nothing_else(editor: FaceEditor) -> None:
    result = editor.edit_details(ASTRONAUT, age=70)
    before, after = pixels(ASTRONAUT), pixels(result.image)
    assert after.shape == before.shape
    (face,) = editor.analyze(ASTRONAUT)
    x, y, w, h = face.detection.box
    x0, y0, x1, y1 = changed_box(before, after)
    # every changed pixel lies near the detected face (the aligned crop frames the face with a margin)
    margin = 0.6 * max(w, h)
    assert x0 >= x - margin and y0 >= y - margin and x1 <= x + w + margin and y1 <= y + h + margin
    inside = np.abs(after - before).max(axis=2)[int(y) : int(y + h), int(x) : int(x + w)]
    assert (inside > 2).mean() > 0.05, (inside > 2).mean()  # and the face did change
    (edit,) = result.faces
    assert edit.target_age == 70
    # the current age is estimated for the summaries even though GANimation-age does not need it
    assert edit.source_age is not None and 25 < edit.source_age < 65  # Eileen Collins, about 42
    assert edit.output.size == edit.source.size == (editor.image_size, editor.image_size)
    assert edit.attention is not None and edit.attention.mode == "L"


def test_face_selection_on_a_two_face_photo(editor: FaceEditor) -> None:
    faces = editor.analyze(TWO_FACES)
    assert len(faces) == 2
    before = pixels(TWO_FACES)
    both = editor.edit_details(TWO_FACES, age=80)
    assert [f.index for f in both.faces] == [0, 1]
    right_only = pixels(editor.edit(TWO_FACES, age=80, face=1))
    x0, _, _, _ = changed_box(before, right_only)
    left_box = faces[0].detection.box
    assert x0 > left_box[0] + left_box[2], "editing face 1 touched face 0"
    with pytest.raises(FaceIndexError, match="has 2 face"):
        editor.edit(TWO_FACES, age=80, face=2)


def test_estimate_age_gives_every_face_or_the_one_asked_for(editor: FaceEditor) -> None:
    ages = editor.estimate_age(TWO_FACES)
    assert isinstance(ages, list) and len(ages) == len(editor.analyze(TWO_FACES)) == 2
    assert all(isinstance(a, float) and 0 <= a <= 100 for a in ages)
    assert [editor.estimate_age(TWO_FACES, face=i) for i in range(2)] == ages
    assert [f.source_age for f in editor.edit_details(TWO_FACES, age=30).faces] == ages
    with pytest.raises(FaceIndexError, match="has 2 face"):
        editor.estimate_age(TWO_FACES, face=2)
    measured = editor.measure_aus(TWO_FACES)
    assert len(measured) == 2 and [editor.measure_aus(TWO_FACES, face=i) for i in range(2)] == measured
    targets = np.array([f.target_aus for f in editor.edit_details(TWO_FACES, age=30).faces])
    np.testing.assert_allclose(targets, [list(m.values()) for m in measured], atol=1e-6)  # aus=None keeps them


def test_without_an_age_estimator_expressions_edit_and_ages_say_why_not(editor: FaceEditor) -> None:
    """The engine moves a face from its current age: without an estimator that age is unknown, so a target age is
    refused with the fix named, while an expression edit (which keeps the age) still works."""
    bare = FaceEditor(editor.model, analyzer=editor.analyzer, config=EditorConfig(device="cpu"))
    with pytest.raises(ModelFileNotFoundError, match="no age estimator is loaded"):
        bare.edit_details(ASTRONAUT, age=70)
    (edit,) = bare.edit_details(ASTRONAUT, aus={"AU12": 4.0}).faces
    assert edit.source_age is None and edit.target_aus[AU_NAMES.index("AU12")] == 4.0
    assert np.abs(np.asarray(edit.output, int) - np.asarray(edit.source, int)).mean() > 0.5


def test_au_mapping_changes_only_the_named_aus(editor: FaceEditor) -> None:
    (measured,) = editor.measure_aus(ASTRONAUT)
    assert editor.measure_aus(ASTRONAUT, face=0) == measured
    (edit,) = editor.edit_details(ASTRONAUT, aus={"AU12": 4.5}).faces
    names = list(measured)
    assert edit.target_aus[names.index("AU12")] == pytest.approx(4.5)
    others = [i for i, n in enumerate(names) if n != "AU12"]
    np.testing.assert_allclose(edit.target_aus[others], [measured[names[i]] for i in others], atol=1e-6)
    assert edit.source_age is not None and 25 < edit.source_age < 65  # Eileen Collins, about 42
    assert edit.target_age == pytest.approx(edit.source_age)  # age=None keeps the estimate


def test_analysis_is_cached_between_slider_moves(editor: FaceEditor) -> None:
    counting = CountingAnalyzer(editor.analyzer)
    cached = FaceEditor(
        editor.model,
        age_estimator=editor.age_estimator,
        second_age_estimator=editor.second_age_estimator,
        analyzer=counting,
        config=editor.config,
    )
    photo = Image.open(ASTRONAUT)
    for age in (10, 40, 70):
        cached.edit(photo, age=age)
    assert counting.calls == 1
    cached.edit(pixels(ASTRONAUT).astype(np.uint8), age=30)  # the same pixels as an array: same key
    assert counting.calls == 1
    cached.edit(TWO_FACES, age=30)
    assert counting.calls == 2


def test_a_photo_file_is_decoded_once_and_again_when_it_changes(
    editor: FaceEditor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slider moves on an uploaded file skip decoding it (a 12 MP JPEG costs ~0.1 s); a changed file is read again."""
    import os
    import shutil

    import ganime_age.faces as faces

    decoded: list[object] = []
    real_load = faces.load_image
    monkeypatch.setattr(faces, "load_image", lambda source, **kw: decoded.append(source) or real_load(source, **kw))
    counting = CountingAnalyzer(editor.analyzer)
    cached = FaceEditor(
        editor.model,
        age_estimator=editor.age_estimator,
        second_age_estimator=editor.second_age_estimator,
        analyzer=counting,
        config=editor.config,
    )
    photo = tmp_path / "upload.jpg"
    shutil.copyfile(ASTRONAUT, photo)
    for age in (20, 50, 80):
        cached.edit(str(photo), age=age)
    assert len(decoded) == 1 and counting.calls == 1
    shutil.copyfile(TWO_FACES, photo)  # the same path, another photo
    os.utime(photo, ns=(os.stat(photo).st_atime_ns, os.stat(photo).st_mtime_ns + 1_000_000))
    assert len(cached.edit_details(str(photo), age=30).faces) == 2
    assert len(decoded) == 2 and counting.calls == 2


def test_age_strip_gives_the_ten_group_centres(editor: FaceEditor) -> None:
    steps: list[float] = []
    strip = editor.age_strip(ASTRONAUT, progress=lambda fraction, _: steps.append(fraction))
    assert [age for age, _ in strip] == [group_center(g) for g in range(NUM_AGE_GROUPS)]
    crops = [pixels(image) for _, image in strip]
    # head-and-shoulders portraits at the photo's own resolution (the astronaut's face box is ~90 px: ~200 x 250)
    x, y, w, h = editor.analyze(ASTRONAUT)[0].detection.box
    assert all(c.shape == crops[0].shape for c in crops)
    assert crops[0].shape[1] >= 2 * max(w, h) and crops[0].shape[0] > crops[0].shape[1]
    assert not np.array_equal(crops[0], crops[-1])  # the target age reaches the edit
    assert steps[-1] == 1.0
    # a cell is the edited photo itself, cut out, not a resampled crop: the own-age cell is the input's pixels
    own = editor.age_strip(ASTRONAUT, ages=[editor.estimate_age(ASTRONAUT, face=0)])[0][1]
    from ganime_age.faces import load_image, portrait

    np.testing.assert_array_equal(np.asarray(own), portrait(load_image(ASTRONAUT), (x, y, w, h)))


def test_bad_inputs_are_typed_errors(editor: FaceEditor, coffee_file: Path, tmp_path: Path) -> None:
    with pytest.raises(NoFaceError):
        editor.edit(coffee_file, age=50)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(ASTRONAUT.read_bytes()[:2000])
    with pytest.raises(CorruptImageError):
        editor.edit(broken, age=50)
    with pytest.raises(ValueError, match="finite"):
        editor.edit(ASTRONAUT, age=float("nan"))


def test_bf16_precision_is_close_to_fp32(editor: FaceEditor) -> None:
    bf16 = FaceEditor(
        editor.model,
        age_estimator=editor.age_estimator,
        second_age_estimator=editor.second_age_estimator,
        analyzer=editor.analyzer,
        config=EditorConfig(device="cpu", precision="bf16"),
    )
    full = editor.edit_details(ASTRONAUT, age=60).faces[0]
    half = bf16.edit_details(ASTRONAUT, age=60).faces[0]
    difference = np.abs(pixels(full.output) - pixels(half.output))
    assert difference.mean() < 3.0 and np.percentile(difference, 99) < 16, (difference.mean(), difference.max())
    assert np.abs(np.asarray(full.attention, np.int16) - np.asarray(half.attention, np.int16)).mean() < 3.0
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        FaceEditor(editor.model, config=EditorConfig(device="cpu", precision="fp16"))
    with pytest.raises(ConfigError, match="precision must be one of"):
        FaceEditor(editor.model, config=EditorConfig(device="cpu", precision="int8"))


def test_cli_edit_writes_the_photo_and_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "old.png"
    masks = tmp_path / "masks"
    code = cli_main(
        ["edit", str(TWO_FACES), "--age", "75", "--au", "AU12=3", "-o", str(output), "--mask-dir", str(masks)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert re.search(r"face 0: age \d+ -> 75, AU12 [\d.]+ -> 3.0\nface 1: age \d+ -> 75, AU12 [\d.]+ -> 3.0\n", printed)
    assert Image.open(output).size == Image.open(TWO_FACES).size
    assert sorted(p.name for p in masks.iterdir()) == ["old_face0_attention.png", "old_face1_attention.png"]


def test_cli_errors_are_one_line(tmp_path: Path, coffee_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["edit", str(coffee_file), "--age", "50", "-o", str(tmp_path / "x.png")]) == 2
    assert "no face found" in capsys.readouterr().err
    output = str(tmp_path / "y.png")
    code = cli_main(["edit", str(ASTRONAUT), "--age", "50", "--precision", "fp16", "--device", "cpu", "-o", output])
    assert code == 2
    error = capsys.readouterr().err
    assert "fp16 needs a GPU" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_the_user_can_correct_the_estimated_age(editor: FaceEditor) -> None:
    """source_age= (the CLI's --from-age) sets the edit's size from the age the user gives, not the estimate's: the
    same edit with or without an estimator loaded; an edit to the given age changes nothing (issue 30)."""
    from ganime_age.errors import InvalidArgumentError

    photo = REPO / "space" / "examples" / "astronaut.jpg"
    original = np.asarray(Image.open(photo).convert("RGB"))
    estimated = editor.estimate_age(photo, face=0)
    corrected = np.asarray(editor.edit(photo, age=70, source_age=20))
    assert abs(estimated - 20) > 5 and np.abs(corrected.astype(int) - np.asarray(editor.edit(photo, age=70))).max() > 8
    bare = FaceEditor(  # no estimator
        editor.model,
        exemplars=editor.exemplars,
        sex_classifier=editor.sex_classifier,
        analyzer=editor.analyzer,
        config=EditorConfig(device="cpu"),
    )
    np.testing.assert_array_equal(np.asarray(bare.edit(photo, age=70, source_age=20)), corrected)
    np.testing.assert_array_equal(np.asarray(editor.edit(photo, age=20, source_age=20)), original)
    details = editor.edit_details(photo, age=70, source_age=20)
    assert details.faces[0].source_age == 20 and details.faces[0].target_age == 70
    from ganime_age.faces import portrait

    cell = np.asarray(editor.age_strip(photo, face=0, ages=[20], source_age=20)[0][1])
    np.testing.assert_array_equal(cell, portrait(original, editor.analyze(photo)[0].detection.box))
    with pytest.raises(InvalidArgumentError, match="source_age"):
        editor.edit(photo, age=70, source_age=150)


def test_the_editor_reads_ages_with_either_shipped_estimator(editor: FaceEditor) -> None:
    """Each age estimator reads a face on its own view (the compact CNN on the aligned crop, Cydral's network on
    its dlib-style chip from the landmarks): an editor with one of them alone gives that network's calibrated
    reading, and both read the astronaut (Eileen Collins, about 42 in the photo) as an adult."""
    from ganime_age.editing import CYDRAL_ESTIMATOR_DIR, DEFAULT_ESTIMATOR_DIR
    from ganime_age.faces import load_image
    from ganime_age.hub import load_pretrained

    rgb = load_image(ASTRONAUT)
    face = editor.analyze(rgb)[0]
    ages = []
    for folder in (DEFAULT_ESTIMATOR_DIR, CYDRAL_ESTIMATOR_DIR):
        estimator = load_pretrained(folder)
        alone = FaceEditor(editor.model, age_estimator=estimator, analyzer=editor.analyzer, config=editor.config)
        age = alone.estimate_age(ASTRONAUT, face=0)
        assert age == pytest.approx(float(estimator.calibrated_age(estimator.read_face(rgb, face))))
        ages.append(age)
    assert all(25 < a < 65 for a in ages) and abs(ages[0] - ages[1]) > 1e-3, ages  # two networks, not one twice


def test_a_face_without_landmarks_is_refused_in_words_a_user_can_act_on(editor: FaceEditor) -> None:
    """A face the detector found but MediaPipe could not measure (mostly one turned past three-quarter view) is
    refused by the age networks and by the engine with the cause and the remedy, not with which network's chip
    MediaPipe's points align."""
    import dataclasses

    from ganime_age.errors import NoFaceError
    from ganime_age.faces import load_image

    photo = load_image(REPO / "space" / "examples" / "astronaut.jpg")
    session = editor.session(photo)
    unmeasured = dataclasses.replace(session.faces[0], landmarks=None)
    for refuse in (
        lambda: editor.age_estimator.face_batch(photo, unmeasured),
        lambda: session.engine_face(dataclasses.replace(unmeasured, index=7)),
    ):
        with pytest.raises(NoFaceError) as raised:
            refuse()
        message = str(raised.value)
        assert "turned too far to the side" in message and "a more frontal photo" in message
        assert "MediaPipe" not in message and "chip" not in message
