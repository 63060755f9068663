"""The Gradio Space: its public API through gradio_client against a live local server, and its helpers.

The server (conftest `space_url`) runs the real app on the embedded default model; the photos are
the shipped public-domain examples and scikit-image's coffee cup (a photo without a face).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age.conditions import AGE_GROUP_LABELS, AU_FACS_NAMES, AU_MAX, AU_NAMES, AU_REGIONS, group_center

REPO = Path(__file__).resolve().parents[1]

EXAMPLES = REPO / "space" / "examples"
ASTRONAUT = EXAMPLES / "astronaut.jpg"
TWO_FACES = EXAMPLES / "two-faces.jpg"


@pytest.fixture(autouse=True)
def lossless_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare pixels: the Space writes PNG results (its default, JPEG at quality 95, is tested by
    test_space_limits.py and test_space_probe.py). The server runs in this process and reads it per request."""
    monkeypatch.setenv("GANIME_AGE_OUTPUT_FORMAT", "png")


@pytest.fixture(scope="module")
def client(space_url: str):
    from gradio_client import Client

    return Client(space_url, verbose=False, analytics_enabled=False)


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


# -- the live API --------------------------------------------------------------------------------
def test_public_endpoints(client) -> None:
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/age", "/age_strip", "/expression", "/reenact", "/reenact_video"}
    assert "spaces" not in sys.modules  # off ZeroGPU the `spaces` package is never imported


def test_age_endpoint_returns_the_whole_photo_edited(client) -> None:
    from gradio_client import handle_file

    (before, after), summary = client.predict(handle_file(str(ASTRONAUT)), 90, "all", "default", api_name="/age")
    original = _pixels(ASTRONAUT)
    assert Path(before).read_bytes() == ASTRONAUT.read_bytes()  # "before" is the upload itself: nothing re-encoded
    assert Path(after).suffix == ".png"
    assert _pixels(before).shape == _pixels(after).shape == original.shape == (512, 512, 3)
    changed = np.abs(_pixels(after) - _pixels(before)).max(axis=2) > 8
    assert changed.mean() > 0.005, "the edit left the photo unchanged"
    ys, xs = np.nonzero(changed)  # the change sits on the face (box x 178-268, y 63-176), not elsewhere
    assert 120 < np.median(xs) < 330 and 20 < np.median(ys) < 240
    assert "face 0" in summary and "90" in summary


def test_age_strip_endpoint_returns_ten_ages(client) -> None:
    from gradio_client import handle_file

    strip = client.predict(handle_file(str(ASTRONAUT)), "0", "default", api_name="/age_strip")
    assert len(strip) == 10
    crops = [_pixels(item["image"]) for item in strip]  # portraits at the photo's resolution (face box ~90 px)
    assert all(c.shape == crops[0].shape and c.shape[0] > c.shape[1] >= 180 for c in crops)
    expected = [f"face 0: age {group_center(g):.0f} ({AGE_GROUP_LABELS[g]})" for g in range(len(AGE_GROUP_LABELS))]
    assert [item["caption"] for item in strip] == expected
    assert np.abs(crops[0] - crops[-1]).mean() > 0.05, "the youngest and oldest crops are identical"


def test_expression_endpoint_applies_aus_and_age_jointly(client) -> None:
    from gradio_client import handle_file

    aus = [0.0] * len(AU_NAMES)
    aus[AU_NAMES.index("AU12")] = 5.0
    aus[AU_NAMES.index("AU06")] = 3.0
    (before, after), mask, summary = client.predict(
        handle_file(str(TWO_FACES)), "1", "default", True, 75, *aus, api_name="/expression"
    )
    assert _pixels(before).shape == _pixels(after).shape == (512, 1024, 3)
    diff = np.abs(_pixels(after) - _pixels(before)).max(axis=2) > 8
    assert diff[:, 512:].sum() > 50 and diff[:, :512].sum() == 0, "only face 1 (the right one) may change"
    attention = np.asarray(Image.open(mask))
    assert attention.shape[0] == attention.shape[1] >= 64 and attention.std() > 0
    assert re.fullmatch(
        r"face 1: estimated \*\*\d+\*\* → \*\*75\*\* years, (AU\d\d \d\.\d → \d\.\d(, )?){17}\.", summary
    )
    assert "AU12 " in summary and re.search(r"AU12 \d\.\d → 5\.0", summary), summary


@pytest.fixture(scope="module")
def editor():
    """The Python API on the same default model as the Space, for comparing the two."""
    from ganime_age import FaceEditor

    return FaceEditor.from_pretrained(device="cpu")


def test_the_expression_api_keeps_the_aus_it_is_not_given(client, editor) -> None:
    from gradio_client import handle_file

    (_, after), _, summary = client.predict(handle_file(str(ASTRONAUT)), AU12=0.5, api_name="/expression")
    measured = editor.measure_aus(ASTRONAUT, face=0)
    assert abs(measured["AU12"] - 0.5) > 1  # the astronaut smiles: setting AU12 is a change
    # the Space reports only AU12, from the face's own measured value
    assert re.fullmatch(
        rf"face 0: estimated \*\*(\d+)\*\* → \*\*\1\*\* years, AU12 {measured['AU12']:.1f} → 0\.5\.", summary
    )
    kept = np.asarray(editor.edit(ASTRONAUT, aus={"AU12": 0.5}), np.int16)  # Python: the other 16 keep theirs
    wiped = np.asarray(editor.edit(ASTRONAUT, aus={**dict.fromkeys(AU_NAMES, 0.0), "AU12": 0.5}), np.int16)
    assert (np.abs(wiped - kept).max(axis=2) > 8).sum() > 50, "this photo cannot tell kept AUs from zeroed ones"
    assert np.abs(_pixels(after) - kept).max() <= 2, "the API's edit is not the Python API's, other AUs kept"


def test_the_face_parameter_is_a_string_in_view_api(client) -> None:
    """gr.Dropdown's API type is its choices ("all" before a photo is analysed): view_api() listed the face as
    Literal['all'], though "0", "1", ... and the labels are accepted."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    faces = [p for endpoint in api.values() for p in endpoint["parameters"] if p["parameter_name"] == "face"]
    assert len(faces) == len(api)  # every endpoint takes a face
    for face in faces:
        assert face["python_type"]["type"] == "str" and "0-based face index" in face["python_type"]["description"]
        assert face["parameter_default"] == "all"
    listing = client.view_api(print_info=False, return_format="str")
    assert "Literal['all']" not in listing and len(re.findall(r"face: str \(not required", listing)) == len(api)


def test_api_parameters_and_outputs_carry_names_and_ranges(client) -> None:
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    expression = api["/expression"]
    assert [p["parameter_name"] for p in expression["parameters"]] == [
        "photo",
        "face",
        "model",
        "change_age",
        "age",
        *AU_NAMES,
    ]
    for parameter in expression["parameters"][5:]:  # left out: None, the face's measured value
        assert parameter["parameter_has_default"] and parameter["parameter_default"] is None, parameter
    assert [r["label"] for r in expression["returns"]] == ["Edited", "Attention mask", "summary"]
    assert [p["parameter_name"] for p in api["/age"]["parameters"]] == [
        "photo",
        "target_age",
        "face",
        "model",
        "current_age",
        "own_photos",
        "own_ages",
    ]
    assert [p["parameter_name"] for p in api["/age_strip"]["parameters"]] == [
        "photo",
        "face",
        "model",
        "current_age",
        "own_photos",
        "own_ages",
    ]
    assert [r["label"] for r in api["/age"]["returns"]] == ["Edited", "summary"]
    assert [r["label"] for r in api["/reenact"]["returns"]][-1] == "summary"
    listing = client.view_api(print_info=False, return_format="str")
    assert not re.search(r"\b(param|value)_\d+", listing), listing
    assert re.search(r"au12: float \| None \(not required, defaults to:\s+None\)\s+\(0 to 5; None or left out", listing)
    assert re.search(r"target_age: float \(not required, defaults to:\s+70\)\s+\(0 to 100\)", listing), listing


def test_sliders_render_on_release_and_the_last_value_wins(space_url: str) -> None:
    """Releasing the age or an AU slider queues an edit; a quick series of moves renders the last value
    ("always_last"), where gradio's default ("once") would drop the moves made while an edit runs."""
    import urllib.request

    config = json.loads(urllib.request.urlopen(f"{space_url}config", timeout=30).read())
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
    sliders = {ids[e] for e in ("age-target", "expr-age", *(f"au-{n}" for n in AU_NAMES))}
    released = {t: d for d in config["dependencies"] for t, event in d["targets"] if event == "release"}
    assert set(released) == sliders
    assert all(d["trigger_mode"] == "always_last" and d["queue"] for d in released.values())


def test_the_age_strip_of_all_faces_has_one_strip_per_face(client) -> None:
    from gradio_client import handle_file

    strip = client.predict(handle_file(str(TWO_FACES)), "all", "default", api_name="/age_strip")
    captions = [item["caption"] for item in strip]
    assert len(strip) == 20, captions
    assert all(c.startswith("face 0: age ") for c in captions[:10]) and all(
        c.startswith("face 1: ") for c in captions[10:]
    )
    left, right = _pixels(strip[0]["image"]), _pixels(strip[10]["image"])  # portraits, each its face's size
    assert left.ndim == right.ndim == 3 and left.shape[0] > left.shape[1] and right.shape[0] > right.shape[1]
    side = (min(left.shape[0], right.shape[0]), min(left.shape[1], right.shape[1]))
    import cv2

    left, right = (cv2.resize(p.astype(np.uint8), side[::-1]).astype(np.int16) for p in (left, right))
    assert np.abs(left - right).mean() > 5, "the same face twice, not two faces"


def test_reenacting_all_faces_asks_for_one(client) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="one face at a time and this photo has 2 faces"):
        client.predict(
            handle_file(str(TWO_FACES)),
            "all",
            "default",
            handle_file(str(ASTRONAUT)),
            False,
            60,
            1.0,
            api_name="/reenact",
        )


def test_a_driver_turned_past_the_heads_reach_is_said_beside_the_result(
    client, shared_dir: Path, tmp_path: Path
) -> None:
    """A UTKFace face turned 35 degrees, driven by its own mirror image (turned 35 degrees the other way): the
    summary says the head was turned as far as it can be; driven by itself, it says nothing of the kind."""
    from gradio_client import handle_file

    source = shared_dir / "datasets" / "utkface" / "26_1_2_20170117201411430.jpg.chip.jpg"
    mirrored = tmp_path / "mirrored.png"
    Image.fromarray(np.asarray(Image.open(source).convert("RGB"))[:, ::-1]).save(mirrored)

    def summary(driver: Path) -> str:
        args = (handle_file(str(source)), "0", "default", handle_file(str(driver)), False, 60, 1.0)
        return client.predict(*args, api_name="/reenact")[-1]

    note = summary(mirrored)
    assert "The driving face is turned" in note and "as far as it can be" in note, note
    assert "driving face is turned" not in summary(source)


def test_a_photo_without_a_face_gives_a_clear_error(client, coffee_file: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"No face found in the 600x400 image; try a photo where") as caught:
        client.predict(handle_file(str(coffee_file)), 50, "all", "default", api_name="/age")
    # said once: the advice in front of the error's own text said "no face found" and "use a photo where" twice
    message = str(caught.value).lower()
    assert message.count("no face found") == 1 and message.count("a photo where") == 1, message


def test_a_file_that_is_not_an_image_gives_a_clear_error(client, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    fake = tmp_path / "notes.jpg"
    fake.write_text("this is text, not a photo\n" * 20)
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(fake)), 50, "all", "default", api_name="/age")


def test_a_face_the_photo_does_not_have_gives_a_clear_error(client) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in this photo"):
        client.predict(handle_file(str(ASTRONAUT)), 50, "3", "default", api_name="/age")


# -- building blocks ------------------------------------------------------------------------------
def test_presets_use_known_aus_in_range() -> None:
    from space.presets import PRESETS, PRESETS_BY_NAME

    assert {"Smile", "Surprise", "Anger", "Sadness", "Disgust", "Fear", "Wink"} <= set(PRESETS_BY_NAME)
    current = np.full(len(AU_NAMES), 1.0, np.float32)
    for preset in PRESETS:
        assert set(preset.aus) <= set(AU_NAMES)
        values = preset.apply(current)
        assert values.shape == (len(AU_NAMES),) and values.min() >= 0 and values.max() <= AU_MAX
    smile = PRESETS_BY_NAME["Smile"].apply(current)
    assert smile[AU_NAMES.index("AU12")] > 3 and smile[AU_NAMES.index("AU06")] > 1
    # only its own AUs: the brows (and every other AU) stay where they were, not at 0
    others = [i for i, name in enumerate(AU_NAMES) if name not in PRESETS_BY_NAME["Smile"].aus]
    assert np.array_equal(smile[others], current[others])
    assert not PRESETS_BY_NAME["Neutral"].apply(current).any()  # Neutral: every AU at 0
    wink = PRESETS_BY_NAME["Wink"].apply(current)  # on top of the current expression
    assert wink[AU_NAMES.index("AU45")] > 3 and wink[AU_NAMES.index("AU12")] == 1.0


def test_only_moved_aus_are_sent() -> None:
    from space.tabs.expression import au_label, aus_to_send

    measured = [1.0] * len(AU_NAMES)
    values: dict[str, float | None] = dict.fromkeys(AU_NAMES, 1.0)
    values["AU12"] = 4.0
    values["AU01"] = 1.02  # a rounding wobble, not a change
    assert aus_to_send(values, measured) == {"AU12": 4.0}
    assert len(aus_to_send(values, None)) == len(AU_NAMES)  # an API caller who gives all 17 sets all 17
    assert aus_to_send({**dict.fromkeys(AU_NAMES), "AU12": 4.0}, None) == {"AU12": 4.0}  # None: keep measured
    assert au_label("AU12") == "AU12 lip corner puller"
    assert sorted(n for names in AU_REGIONS.values() for n in names) == sorted(AU_NAMES) == sorted(AU_FACS_NAMES)


def test_model_selector_lists_the_default_editor_and_each_refiner(tmp_path: Path) -> None:
    from space.models import DEFAULT_KEY, available_models

    for name, model_type in [
        ("ragan", "ragan"),
        ("agetransgan-mi", "agetransgan"),
        ("age-estimator", "age_estimator"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    (tmp_path / "notes").mkdir()  # no config.json
    choices = available_models(tmp_path, env_model="")
    assert [c.key for c in choices] == [DEFAULT_KEY, "agetransgan-mi", "ragan"]  # by role, not a type list
    assert choices[0].source is None and choices[0].refiner is None
    # no table1.json: no verdict to show
    assert choices[1].label == "engine + agetransgan-mi (not in Table I)"
    assert choices[1].refiner == str(tmp_path / "agetransgan-mi")


def test_the_model_dropdown_says_what_each_system_is() -> None:
    """The engine alone first, then each shipped refiner with Table I's verdict: today none beats the engine."""
    from space.models import available_models

    labels = [c.label for c in available_models(env_model="")]
    assert labels[0] == "engine alone (default)"
    assert labels[1:] and all(re.fullmatch(r"engine \+ [\w-]+ \(no better, Table I\)", label) for label in labels[1:])


def test_refiners_load_only_when_picked() -> None:
    """The Space starts with the default editor alone (app.py's start: preload, then build_app); a refiner is loaded
    when a request first picks it, through the API as through the dropdown, and kept for the next one."""
    import socket

    from gradio_client import Client, handle_file

    from space import build_app
    from space.app import launch_options
    from space.models import DEFAULT_KEY, EditorProvider

    provider = EditorProvider(device="cpu")
    provider.preload()
    demo = build_app(provider)
    assert provider.loaded == [DEFAULT_KEY] and len(provider.models) > 2
    picked = provider.models[-1].key
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        client.predict(handle_file(str(ASTRONAUT)), 60, "all", picked, api_name="/age")
        assert provider.loaded == [DEFAULT_KEY, picked]
        editor = provider.get(picked)
        client.predict(handle_file(str(ASTRONAUT)), 30, "all", picked, api_name="/age")
        assert provider.loaded == [DEFAULT_KEY, picked] and provider.get(picked) is editor
    finally:
        demo.close()


def test_provider_loads_each_model_once() -> None:
    from ganime_age.errors import WeightsError
    from space.models import DEFAULT_KEY, EditorProvider

    provider = EditorProvider()
    with provider.session(DEFAULT_KEY) as editor:
        assert editor is provider() is provider.get(DEFAULT_KEY)
        assert editor.config.precision == "fp32"
    with pytest.raises(WeightsError, match="unknown model"):
        provider.get("no-such-model")
    assert EditorProvider(device="cpu", precision="bf16").get().config.precision == "bf16"  # app.py --precision


def test_user_errors_become_gradio_errors() -> None:
    import gradio as gr

    from ganime_age.errors import ImageTooLargeError, NoFaceError
    from space.common import user_errors

    @user_errors
    def fails(error: Exception) -> None:
        raise error

    with pytest.raises(gr.Error, match="No face found in this photo"):
        fails(NoFaceError("no face detected"))
    with pytest.raises(gr.Error, match="too large"):
        fails(ImageTooLargeError("80 megapixels exceeds the 40 megapixel limit"))
    with pytest.raises(gr.Error, match="internal error") as raised:  # a bug is named as one, not as a user mistake
        fails(ZeroDivisionError())
    assert raised.value.title == "Internal error"


def test_a_missing_model_file_error_stays_on_screen_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import gradio as gr

    from ganime_age.assets import resolve_asset
    from ganime_age.errors import ModelFileNotFoundError
    from space.common import user_errors

    monkeypatch.delenv("GANIME_AGE_ASSETS", raising=False)
    monkeypatch.delenv("GANIME_AGE_MOBILEFACENET", raising=False)
    with pytest.raises(gr.Error, match="GANIME_AGE_ASSETS") as raised, caplog.at_level("WARNING"):
        user_errors(resolve_asset)("mobilefacenet")  # the one model file that is never packaged
    assert raised.value.title == "Model file missing" and raised.value.duration is None  # no 10 s timeout
    assert any("GANIME_AGE_ASSETS" in r.getMessage() for r in caplog.records)  # and the server log says it too

    def offline() -> None:
        raise ModelFileNotFoundError("download failed: <urlopen error refused>. Set GANIME_AGE_ASSETS")

    # the toast renders HTML: the "<urlopen ...>" of a failed download must not hide the hint after it
    with pytest.raises(gr.Error, match=re.escape("&lt;urlopen error refused&gt;. Set GANIME_AGE_ASSETS")):
        user_errors(offline)()


def test_face_choices() -> None:
    from space.common import ALL_FACES, face_choices, parse_face

    assert face_choices(3) == [
        ("All 3 faces", ALL_FACES),
        ("Face 0 (leftmost)", "0"),
        ("Face 1", "1"),
        ("Face 2 (rightmost)", "2"),
    ]  # the labels use the numbers of the API, the CLI and Python: 0 = leftmost
    # one face reads like the numbering everywhere else ("The face" named no number)
    assert face_choices(1) == [("Face 0 (the only face)", "0")]
    assert parse_face("The face") == 0  # the old label, which API callers may still send
    assert [v for _, v in face_choices(2, allow_all=False)] == ["0", "1"]
    assert parse_face(ALL_FACES) is None and parse_face("2") == 2 and parse_face(None) is None
    for count in (1, 2, 6):  # API callers may send the label the UI shows instead of its value
        for label, value in face_choices(count):
            assert parse_face(label) == parse_face(value), label
    import gradio as gr

    with pytest.raises(gr.Error, match="Unknown face choice 'left'"):
        parse_face("left")


def test_the_current_age_can_be_corrected(client) -> None:
    """The field's value (the API's current_age) sets the edit's size: a corrected age changes the edit and is
    named "given"; the estimate's own rounding (what the field shows untouched) gives the uncorrected edit."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    photo = handle_file(str(ASTRONAUT))
    (_, plain), summary = client.predict(photo, 70, "all", "default", api_name="/age")
    estimate = int(re.search(r"estimated \*\*(\d+)\*\*", summary).group(1))
    (_, untouched), same = client.predict(photo, 70, "all", "default", estimate, api_name="/age")
    assert same == summary and np.array_equal(_pixels(untouched), _pixels(plain))
    (_, corrected), given = client.predict(photo, 70, "all", "default", 20, api_name="/age")
    assert given == "face 0: given **20** → **70** years.", given
    assert np.abs(_pixels(corrected) - _pixels(plain)).mean() > 0.2  # 50 years of ageing, not 28
    with pytest.raises(AppError, match="current age must be between 0 and 100"):
        client.predict(photo, 70, "all", "default", 130, api_name="/age")
    for empty in (None, "", " "):  # an empty field (a cleared one, an HTTP caller's blank) means the estimate
        assert client.predict(photo, 70, "all", "default", empty, api_name="/age")[1] == summary, repr(empty)
    strip = client.predict(photo, "0", "default", 20, api_name="/age_strip")
    assert len(strip) == 10


def test_face_labels_work_over_the_api(client) -> None:
    from gradio_client import handle_file

    _, summary = client.predict(handle_file(str(TWO_FACES)), 60, "Face 1 (rightmost)", "default", api_name="/age")
    assert summary.startswith("face 1: estimated") and "face 0" not in summary
    _, summary = client.predict(handle_file(str(TWO_FACES)), 60, "All faces", "default", api_name="/age")
    assert re.fullmatch(r"face 0: estimated \*\*\d+\*\* → \*\*60\*\* years; face 1: .+ years\.", summary), summary


def test_examples_are_small_redistributable_photos_with_faces() -> None:
    from ganime_age.faces import FaceDetector, load_image

    photos = sorted(EXAMPLES.glob("*.jpg"))
    assert {p.name for p in photos} == {"astronaut.jpg", "cameraman.jpg", "two-faces.jpg"}
    detector = FaceDetector()
    for path in photos:
        assert path.stat().st_size < 300_000
        assert len(detector.detect(load_image(path))) == (2 if path.name == "two-faces.jpg" else 1)
    licences = (EXAMPLES / "README.md").read_text()
    assert all(p.name in licences for p in photos) and "UTKFace" in licences


def test_gpu_decorator_is_a_no_op_off_zero_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from space.gpu import gpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def work() -> int:
        return 3

    assert gpu(duration=10)(work) is work


def test_importing_app_builds_nothing() -> None:
    import importlib

    module = importlib.import_module("app")
    assert module._demo is None  # the Blocks is built only under __main__ or on first `app.demo` access


def test_requirements_cover_the_package_runtime() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["space"]
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    listed = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower().replace("_", "-") for line in lines if line}
    names = {re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in needed}
    assert names <= listed, f"requirements.txt lacks {sorted(names - listed)}"
    assert not any(line.startswith(("-e", ".")) for line in lines)  # Spaces install it before the repo exists


def test_space_readme_front_matter() -> None:
    text = (REPO / "space" / "README.md").read_text()
    front = text.split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    assert re.search(r"sdk_version: \d+\.\d+\.\d+", front)


def test_photo_path_takes_only_shipped_examples_outside_an_event(tmp_path: Path) -> None:
    """Outside a running app nothing counts as uploaded; a shipped example is used by its real path, and every
    other payload (a photo elsewhere, a file in gradio's upload folder, a special file) gets one message."""
    import os

    import gradio as gr
    from gradio.utils import get_upload_folder

    from space.common import NOT_UPLOADED, photo_path

    assert photo_path({"path": str(ASTRONAUT)}) == os.path.realpath(ASTRONAUT)
    assert photo_path(None) is None and photo_path({"path": None}) is None and photo_path({"path": ""}) is None
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(ASTRONAUT.read_bytes())
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    upload_folder = Path(get_upload_folder())
    upload_folder.mkdir(parents=True, exist_ok=True)
    planted = upload_folder / f"planted-{os.getpid()}.jpg"
    planted.write_bytes(ASTRONAUT.read_bytes())
    try:
        payloads = [str(elsewhere), str(fifo), str(planted), "/dev/zero", str(tmp_path), str(tmp_path / "no.jpg")]
        payloads += [str(EXAMPLES / ".." / ".." / "README.md"), "x" * 5000, "a\x00b"]
        for payload in [*payloads, *({"path": p} for p in payloads), 42, ["x"], {"path": 3}]:
            with pytest.raises(gr.Error) as caught:
                photo_path(payload)
            assert caught.value.message == NOT_UPLOADED, payload
    finally:
        planted.unlink()


# -- your photos at other ages (issue 56) -------------------------------------------------------------------------
FGNET_PERSON = "029"  # FG-NET: the adult photo at 29 made 5, with two of their own childhood photos


@pytest.fixture(scope="module")
def fgnet(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fgnet" / "images"


def test_own_photos_guide_the_age_edit_and_say_so(client, fgnet: Path) -> None:
    """/age with two of the person's own childhood photos: the summary's last line names the photos used, and
    the edit is not the general one; the same photos again take the cached person (the same edit)."""
    from gradio_client import handle_file

    adult = handle_file(str(fgnet / "029A29.JPG"))
    own = [handle_file(str(fgnet / name)) for name in ("029A04.JPG", "029A10.JPG")]
    (_, general), plain = client.predict(adult, 6, "all", "default", 29, api_name="/age")
    assert "your photos" not in plain
    (_, mine), summary = client.predict(adult, 6, "all", "default", 29, own, "4, 10", api_name="/age")
    assert summary.startswith(plain) and summary.endswith("\n\nUsing 2 of your photos (ages 4, 10)."), summary
    assert np.abs(_pixels(mine) - _pixels(general)).mean() > 0.5, "the own photos left the edit as it was"
    (_, again), _ = client.predict(adult, 6, "all", "default", 29, own, "4,10,", api_name="/age")
    assert np.array_equal(_pixels(again), _pixels(mine))
    (_, old), far = client.predict(adult, 90, "all", "default", 29, own, "4, 10", api_name="/age")
    (_, general_old), _ = client.predict(adult, 90, "all", "default", 29, api_name="/age")
    assert np.array_equal(_pixels(old), _pixels(general_old))  # beyond the ages they cover: the general edit
    assert far.endswith(
        "Not using your photos (ages 4, 10): none is within 18 years of 90, so this is the general edit."
    )
    strip = client.predict(adult, "0", "default", 29, own, "4, 10", api_name="/age_strip")
    assert [item["caption"].endswith(", your photos") for item in strip][:3] == [True, True, True]
    assert not strip[-1]["caption"].endswith(", your photos")


def test_a_bad_own_photo_or_age_is_refused_with_one_clear_message(
    client, fgnet: Path, tmp_path: Path, coffee_file: Path
) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    adult, child = handle_file(str(fgnet / "029A29.JPG")), handle_file(str(fgnet / "029A10.JPG"))
    fake = tmp_path / "me_at_6.jpg"
    fake.write_text("this is text, not a photo\n" * 20)

    def refused(own: list, ages: str) -> str:
        with pytest.raises(AppError) as caught:
            client.predict(adult, 6, "all", "default", None, own, ages, api_name="/age")
        message = str(caught.value)
        assert "Traceback" not in message and "Internal error" not in message, message
        return message

    assert re.search(
        r"photo at another age 'me_at_6\.jpg': This file is not an image", refused([handle_file(str(fake))], "")
    )
    assert "the age of 029A10.JPG must be between 0 and 100" in refused([child], "130")
    assert "'six' (the age of 029A10.JPG) is not a number of years" in refused([child], "six")
    assert "You gave 2 ages for 1 photo at other ages" in refused([child], "6, 7")
    assert "this Space uses at most 10" in refused([child] * 11, "")
    assert "None of your photos at other ages shows a usable face" in refused([handle_file(str(coffee_file))], "6")


def test_own_photos_are_uploads_and_past_the_pixel_limit_are_refused_by_name(tmp_path: Path) -> None:
    """A photo at another age is admitted as the main photo is: only a stored upload, its header read, and past
    the Space's pixel limit refused by name before any pixel is decoded."""
    import gradio as gr

    from space.own_photos import OwnPhotos, own_paths, own_pixels

    with pytest.raises(gr.Error, match=r"photo at another age \(parameter 'own_photos'\) did not arrive"):
        own_paths([{"path": "/etc/passwd"}])  # a server path, not an upload

    big = tmp_path / "me_at_6.png"
    Image.new("RGB", (400, 300)).save(big)
    own = OwnPhotos((str(big),), (6.0,), "k")
    assert own_pixels(own, 200_000) == 120_000
    with pytest.raises(gr.Error, match=r"me_at_6\.png") as caught:
        own_pixels(own, 100_000)
    assert caught.value.title == "Image too large"
