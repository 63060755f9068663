"""The Space's limits without a server: every typed error's message, paths kept out of messages, failed requests
that let go of their photos, the memory budget's admission, and outputs written once, compactly.

The server-level checks (bursts, bytes written per request, the cache's cleaning) are in test_space_probe.py and
benchmarks/bench_reliability.py.
"""

from __future__ import annotations

import gc
import inspect
import threading
import time
import weakref
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ganime_age import errors
from space.budget import REQUEST_MEMORY, MemoryBudget, parse_bytes
from space.common import _hint, user_errors, without_server_paths

REPO = Path(__file__).resolve().parents[1]

ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
TYPED_ERRORS = sorted(
    (cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.GanimeAgeError)),
    key=lambda cls: cls.__name__,
)


# -- messages ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", TYPED_ERRORS, ids=lambda cls: cls.__name__)
def test_every_typed_error_has_its_own_message(cls: type[Exception]) -> None:
    """Each class of the package's errors is named by its own entry: a VideoError read "This photo cannot be
    edited" when it fell through to the base class's."""
    try:
        error = cls("what went wrong")
    except TypeError:  # an OSError subclass takes (errno, text) too; one argument is enough
        error = cls("what went wrong")
    title, advice = _hint(error)
    parent_hints = {_hint(base("x")) for base in cls.__mro__[1:] if base in TYPED_ERRORS}
    assert title and advice.endswith(".") and len(advice) > 20
    if cls is not errors.GanimeAgeError:
        assert (title, advice) not in parent_hints, f"{cls.__name__} reads like its parent class"
    with pytest.raises(gr.Error) as raised:
        user_errors(lambda: (_ for _ in ()).throw(error))()
    assert raised.value.title == title and advice in raised.value.message and "what went wrong" in raised.value.message


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("no such image file: /tmp/gradio/3f2a/my photo (1).jpg", "no such image file: my photo (1).jpg"),
        ("cannot read /srv/a (b)/c d/e.jpg: Permission denied", "cannot read e.jpg: Permission denied"),
        ("cannot read C:\\Users\\Bob Smith (work)\\Photos\\ü photo.jpg: denied", "cannot read ü photo.jpg: denied"),
        ("cannot read C:/Users/Bob/Desktop/a.png", "cannot read a.png"),
        ("missing \\\\fileserver\\share\\dir x\\img.png", "missing img.png"),
        ("bad '/home/боб/Фото (2)/лицо.jpg' here", "bad 'лицо.jpg' here"),
        ("~/secret folder/a.jpg is a folder", "a.jpg is a folder"),
        ("/etc/passwd is not an image", "passwd is not an image"),
        ("see https://github.com/ganime-age/ganime-age#face-numbering", None),
        ("age groups 0-2/3-6 and shape (3)≠(4)", None),
    ],
)
def test_no_server_path_survives_in_a_message(message: str, kept: str | None) -> None:
    cleaned = without_server_paths(message)
    assert cleaned == (message if kept is None else kept)
    for folder in ("gradio", "srv", "Users", "Bob", "fileserver", "home", "боб", "Фото", "secret", "etc"):
        if kept is not None:
            assert folder not in cleaned


def test_a_message_from_a_real_error_names_the_file_only(tmp_path: Path) -> None:
    from ganime_age.faces import load_image

    folder = tmp_path / "upload (7) ü" / "x y"
    folder.mkdir(parents=True)
    with pytest.raises(gr.Error) as raised:
        user_errors(load_image)(folder / "gone (1).jpg")
    assert "gone (1).jpg" in raised.value.message and str(tmp_path) not in raised.value.message
    assert "upload (7)" not in raised.value.message and "x y" not in raised.value.message


def test_a_bug_gets_a_message_and_its_traceback_stays_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    @user_errors
    def broken() -> None:
        raise ZeroDivisionError("division by zero in the engine")

    with pytest.raises(gr.Error) as raised, caplog.at_level("ERROR"):
        broken()
    assert raised.value.title == "Internal error" and "ZeroDivisionError" in raised.value.message
    assert any(record.exc_info and record.exc_info[0] is ZeroDivisionError for record in caplog.records)


@pytest.mark.parametrize("failure", [errors.NoFaceError("no face"), RuntimeError("a bug")], ids=["typed", "bug"])
def test_a_failed_request_lets_go_of_its_photo(failure: Exception) -> None:
    """A traceback's frames keep the photo's arrays alive (until a garbage collection that may not come); the
    message that leaves must hold none of them."""
    held: list[weakref.ref] = []

    def deep(photo: np.ndarray) -> None:
        held.append(weakref.ref(photo))
        raise failure

    @user_errors
    def request() -> None:
        photo = np.zeros((2000, 2000, 3), np.uint8)
        deep(photo)

    gc.disable()  # what is freed must be freed by reference counting, not by a collection that happens to run
    try:
        with pytest.raises(gr.Error) as raised:
            request()
        assert raised.value.__context__ is None and raised.value.__cause__ is None
        assert held and held[0]() is None, "the failed request's photo is still alive"
    finally:
        gc.enable()


# -- the memory budget ----------------------------------------------------------------------------------------
def test_sizes_are_read_as_people_write_them() -> None:
    assert parse_bytes("4GB") == parse_bytes("4000mb") == parse_bytes("4g") == 4_000_000_000
    assert parse_bytes("512 MB") == 512_000_000 and parse_bytes(123) == 123
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_a_request_that_can_never_fit_is_refused_at_once_with_the_size_that_would() -> None:
    budget = MemoryBudget(2_000_000_000, max_pixels=100_000_000)
    largest = budget.largest_pixels("age")
    assert 0 < largest < 100_000_000 and budget.need("age", largest) <= budget.capacity
    started = time.monotonic()
    with pytest.raises(gr.Error) as raised, budget.admit("age", 90_000_000):
        pass
    assert time.monotonic() - started < 1 and f"up to {largest / 1e6:.0f} MP" in raised.value.message
    assert budget.in_use == 0


def test_requests_wait_for_memory_and_the_rest_are_refused_with_a_message() -> None:
    budget = MemoryBudget(1_500_000_000, max_pixels=100_000_000, wait_seconds=0.5)
    pixels = budget.largest_pixels("age") * 2 // 3  # two of these never fit together
    assert budget.need("age", pixels) * 2 > budget.capacity
    order: list[str] = []
    with budget.admit("age", pixels):
        order.append("first in")
        with pytest.raises(gr.Error, match="busy"), budget.admit("age", pixels):
            pass  # waited 0.5 s for memory that did not come

        def second() -> None:
            with budget.admit("age", pixels):
                order.append("second")

        waiting = threading.Thread(target=second)
        budget.wait_seconds = 10
        waiting.start()
        time.sleep(0.3)
        order.append("first out")
    waiting.join(5)
    assert order == ["first in", "first out", "second"]
    assert budget.in_use == 0


def test_every_event_the_tabs_admit_has_a_measured_memory_line() -> None:
    """A task name the tabs admit by and the budget does not know would fail only when a visitor comes."""
    import re

    admitted = set()
    for tab in (REPO / "space" / "tabs").glob("*.py"):
        admitted |= set(re.findall(r'admitted\(\s*editor_provider,\s*"(\w+)"', tab.read_text(encoding="utf-8")))
    assert admitted == set(REQUEST_MEMORY), admitted ^ set(REQUEST_MEMORY)
    assert MemoryBudget().need("age_strip", 10_000_000) > MemoryBudget().need("age", 10_000_000)


# -- outputs ---------------------------------------------------------------------------------------------------
def test_outputs_are_written_once_compactly_into_gradios_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganime_age.faces import load_image, read_image_header
    from space.outputs import output_format, save_output, shown_photo

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GANIME_AGE_OUTPUT_FORMAT", raising=False)
    header = read_image_header(ASTRONAUT)
    assert shown_photo(str(ASTRONAUT), header) == str(ASTRONAUT)  # the upload is shown as it is
    photo = load_image(ASTRONAUT)
    first = save_output(photo, "edited", output_format(header))
    again = save_output(photo, "edited", output_format(header))
    assert first == again and Path(first).suffix == ".jpg" and Path(first).is_relative_to(tmp_path / "cache")
    assert len(list((tmp_path / "cache").rglob("*.jpg"))) == 1
    assert Path(first).stat().st_size < 1.6 * ASTRONAUT.stat().st_size
    assert np.abs(np.asarray(Image.open(first), np.int16) - photo).mean() < 2.0  # quality 95

    png = tmp_path / "photo.png"
    Image.fromarray(photo).save(png)
    assert output_format(read_image_header(png)) == "png"  # a lossless upload gets a lossless result
    monkeypatch.setenv("GANIME_AGE_OUTPUT_FORMAT", "webp")
    assert Path(save_output(photo, "edited", output_format(read_image_header(png)))).suffix == ".webp"

    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees: the browser would not show what the edit sees
    Image.fromarray(photo[:, :300]).save(turned, exif=exif)
    copy = shown_photo(str(turned), read_image_header(turned))
    assert copy != str(turned) and Image.open(copy).size == (512, 300)


# -- values a visitor sent, repeated in messages -------------------------------------------------------------------
HUGE = "<script>alert(1)</script>" + "x" * 1_000_000


@pytest.mark.parametrize(
    "value",
    [HUGE, HUGE.encode(), [HUGE] * 1000, {"face": HUGE}, 10**5000, "\x00\n\x1b[31m" * 50],
    ids=["str", "bytes", "list", "dict", "int", "control"],
)
def test_an_echoed_value_is_a_few_dozen_characters(value: object) -> None:
    echoed = errors.echo(value)
    assert len(echoed) < 80, echoed
    assert "\n" not in echoed and "\x00" not in echoed and "\x1b" not in echoed  # control characters escaped
    assert errors.echo("abc") == "'abc'" and errors.echo(2.5) == "2.5"


def test_face_choice_errors_are_short_escaped_and_titled(caplog: pytest.LogCaptureFixture) -> None:
    """A 1 MB face choice came back whole, its markup raw, titled "Error"."""
    from space.common import parse_face

    with pytest.raises(gr.Error) as raised, caplog.at_level("INFO"):
        parse_face(HUGE)
    assert raised.value.title == "Unknown face choice"
    assert len(raised.value.message) < 300 and "1,000,025 characters" in raised.value.message
    assert "&lt;script&gt;" in raised.value.message and "<script>" not in raised.value.message
    assert sum(len(r.getMessage()) for r in caplog.records) < 300


def test_model_and_refiner_errors_repeat_a_few_dozen_characters(caplog: pytest.LogCaptureFixture) -> None:
    """A 1 MB model name was repeated whole, in the answer and in the server's log."""
    from ganime_age.editing.refiners import resolve_refiner
    from space.models import EditorProvider

    with pytest.raises(errors.WeightsError) as raised:
        EditorProvider().choice(HUGE)
    assert len(str(raised.value)) < 300 and "default" in str(raised.value)
    with pytest.raises(errors.UnknownRefinerError) as raised:
        resolve_refiner(HUGE.replace("/", ""))
    assert len(str(raised.value)) < 300
    with pytest.raises(gr.Error) as shown, caplog.at_level("INFO"):
        user_errors(EditorProvider().choice)(HUGE)
    assert shown.value.title == "Model problem" and len(shown.value.message) < 400
    assert "<script>" not in shown.value.message
    assert sum(len(r.getMessage()) for r in caplog.records) < 400


def test_a_long_error_text_is_cut_in_the_answer_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(gr.Error) as shown, caplog.at_level("INFO"):
        user_errors(lambda: (_ for _ in ()).throw(errors.NoFaceError("no face " * 100_000)))()
    assert len(shown.value.message) < 600 and sum(len(r.getMessage()) for r in caplog.records) < 600


@pytest.mark.parametrize("value", ["abc", "yes", "true", 1, 2, 0, [], [True], None, float("nan")], ids=repr)
def test_a_flag_is_a_boolean_not_a_truth_value(value: object) -> None:
    from ganime_age.validation import check_flag

    with pytest.raises(errors.InvalidArgumentError, match="change_age must be true or false"):
        check_flag(value, "change_age")
    assert check_flag(True, "x") is True and check_flag(np.bool_(False), "x") is False


# -- code shape -------------------------------------------------------------------------------------------------
def test_the_space_is_launched_for_probes_by_one_helper() -> None:
    """The `python app.py` launcher was written twice (the reliability benchmark and the HTTP probe's tests)."""
    for user in (REPO / "benchmarks" / "bench_reliability.py", REPO / "tests" / "test_space_probe.py"):
        text = user.read_text(encoding="utf-8")
        assert "from space.serve import" in text and "subprocess.Popen" not in text and 'app.py")' not in text, user
