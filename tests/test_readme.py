"""The README as a new user meets it: its first two commands, what CI runs, the one story of the default
model, the one face numbering; and the first command really starts the Space and keeps it running."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import stop_process

REPO = Path(__file__).resolve().parents[1]

README = (REPO / "README.md").read_text(encoding="utf-8")
SPACE_COMMAND = 'pip install torch==2.13.0 && pip install -e ".[space]" && python app.py'
TEST_COMMAND = 'pip install -e ".[dev]" && python -m pytest'


def first_code_block(text: str) -> list[str]:
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return [line.strip() for line in block.group(1).strip().splitlines()]


def squashed(text: str) -> str:
    return " ".join(text.split())


def test_the_first_commands_are_set_up_and_run_the_space_then_set_up_and_test() -> None:
    assert first_code_block(README) == [SPACE_COMMAND, TEST_COMMAND]
    intro = README.split("## ", 1)[0]
    assert "keeps running" in intro.lower() and "second terminal" in intro


def test_ci_installs_what_the_readme_installs_and_runs_its_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    installs = [line.strip() for line in ci.splitlines() if line.strip().startswith("pip install")]
    readme_installs = [c.strip() for c in f"{SPACE_COMMAND} && {TEST_COMMAND}".split("&&") if "pip install" in c]
    assert installs == readme_installs
    tests = [line for line in ci.splitlines() if "pytest" in line and not line.lstrip().startswith("#")]
    assert len(tests) == 1 and tests[0].split("#")[0].split() == [
        "GANIME_AGE_REQUIRE_BROWSER=1",
        "GANIME_AGE_REQUIRE_SHARED=1",
        "python",
        "-m",
        "pytest",
    ]
    for text in (ci, README, (REPO / "tests" / "test_browser.py").read_text(encoding="utf-8")):
        assert "chromium-driver" not in text  # Playwright drives Chromium itself


def default_model_card() -> Path:
    """The model card of the embedded default editor's engine (the part its editor.json names)."""
    from ganime_age.editing import DEFAULT_EDITOR_DIR
    from ganime_age.editing.manifest import find_manifest, part_location

    manifest = find_manifest(DEFAULT_EDITOR_DIR)
    assert manifest is not None and manifest.engine is not None
    return Path(part_location(DEFAULT_EDITOR_DIR, manifest.engine)) / "README.md"


def test_one_story_of_the_default_model_in_the_readme_the_card_and_the_space() -> None:
    from space.app import DEFAULT_MODEL_STORY, about

    story = squashed(DEFAULT_MODEL_STORY.read_text(encoding="utf-8"))
    marked = re.search(r"<!-- default-model-story:.*?-->(.*?)<!-- /default-model-story -->", README, re.DOTALL)
    assert marked is not None and squashed(marked.group(1)) == story
    assert story in squashed(default_model_card().read_text(encoding="utf-8"))
    assert story in squashed(about())
    assert_about_panel_is_closed_under_the_header()


def assert_about_panel_is_closed_under_the_header() -> None:
    """The Space shows `about()` (the story, the face numbering, the licence) in a closed accordion under its
    one-line header, not as a wall of text before the photo."""
    import gradio as gr

    from space import build_app
    from space.app import about, header

    demo = build_app(tabs=())
    blocks = list(demo.blocks.values())
    shown = [squashed(b.value) for b in blocks if isinstance(b, gr.Markdown) and b.parent is demo]
    assert shown == [squashed(header())] and "\n" not in header().strip()
    panel = next(b for b in blocks if isinstance(b, gr.Accordion) and b.elem_id == "about")
    assert panel.open is False
    inside = [squashed(b.value) for b in blocks if isinstance(b, gr.Markdown) and b.parent is panel]
    assert inside == [squashed(about())]


def test_the_opening_lines_say_what_the_shipped_model_does_and_how_reenactment_works() -> None:
    opening = squashed(README.split("```", 1)[0]).lower()
    assert "shipped default model" in opening and "fitted edit engine" in opening and "no trained network" in opening
    assert "reenactment turns the photo's own head in 3-d by default" in opening


def test_face_numbering_is_documented_in_one_place_that_the_others_link_to() -> None:
    from ganime_age.cli import build_parser
    from space.app import about
    from space.common import FACE_NUMBERING_URL

    section = re.search(r"^## Face numbering\n(.*?)^## ", README, re.DOTALL | re.MULTILINE)
    assert section is not None and "from 0, left to right" in squashed(section.group(1))
    assert FACE_NUMBERING_URL.endswith("#face-numbering")  # the GitHub anchor of that heading
    assert FACE_NUMBERING_URL in about()
    assert FACE_NUMBERING_URL in (REPO / "space" / "README.md").read_text(encoding="utf-8")
    assert "(#face-numbering)" in README.split("## Face numbering", 1)[1]  # the Python and CLI sections link to it
    edit = build_parser()._subparsers._group_actions[0].choices["edit"]  # type: ignore[union-attr]
    face = next(a for a in edit._actions if a.dest == "face")
    assert "0 = leftmost" in face.help


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_python_app_py_serves_the_space_and_keeps_running(tmp_path: Path) -> None:
    """The end of the README's first command: it serves the Space and stays up (so the tests need a second
    terminal), rather than building the app and exiting."""
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_PORT": str(port)}
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, page = time.monotonic() + 240, ""
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert "ganime-age" in page, (tmp_path / "app.log").read_text()
        time.sleep(2)
        assert process.poll() is None, "python app.py exited after starting the Space"
    finally:
        stop_process(process, log)


@pytest.mark.parametrize("path", ["README.md", "space/README.md"])
def test_no_readme_calls_faces_one_based(path: str) -> None:
    text = (REPO / path).read_text(encoding="utf-8")
    assert not re.search(r"face 1 \(from the left\)|Face \d \(from the left\)", text, re.IGNORECASE)


def readme_sessions(text: str) -> list[tuple[str, list[str]]]:
    """The README's shown terminal sessions: each ```text block whose first line is `$ ganime-age ...`, as (the
    command, the lines it prints)."""
    sessions = []
    for block in re.findall(r"```text\n(.*?)```", text, re.DOTALL):
        lines = block.strip().splitlines()
        if lines and lines[0].startswith("$ ganime-age "):
            sessions.append((lines[0][2:], lines[1:]))
    return sessions


@pytest.mark.parametrize("command, shown", readme_sessions(README), ids=lambda value: str(value)[:40])
def test_the_readmes_command_line_examples_print_what_they_show(command: str, shown: list[str], tmp_path: Path) -> None:
    """Every command-line session the README shows is run as written (on the photos the Space ships, in a
    scratch folder), and prints exactly what the README says it prints: an example cannot go stale."""
    (tmp_path / "space").symlink_to(REPO / "space")
    executable = Path(sys.executable).with_name("ganime-age")
    words = command.split()
    done = subprocess.run(
        [str(executable), *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == shown, done.stdout


def test_the_readme_shows_a_command_line_session() -> None:
    assert [command for command, _ in readme_sessions(README)] == [
        "ganime-age edit space/examples/two-faces.jpg --age 70 --au AU12=3 -o out.jpg"
    ]


def test_without_shared_the_tests_that_need_it_skip_with_one_reason_and_the_core_runs(tmp_path: Path) -> None:
    """A fresh clone has no ../shared: its tests skip, naming what is missing, while the core still runs; CI
    (GANIME_AGE_REQUIRE_SHARED=1) refuses to run without it rather than skip."""
    selection = [
        "tests/test_mobilefacenet.py::test_hub_round_trip",  # marked: MobileFaceNet lives in ../shared
        "tests/test_cydral_sex.py::test_it_reads_clear_adult_women_and_men",  # through the shared_dir fixture
        "tests/test_cli_errors.py",  # the core: nothing outside the repository
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("GANIME_AGE_")}
    env["GANIME_AGE_SHARED"] = str(tmp_path / "no-shared")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *selection]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed, 2 skipped", summary), summary
    reasons = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(reasons) == 2 and all("needs the real datasets and models of ../shared" in r for r in reasons)
    required = subprocess.run(
        [*command[:-3], "tests/test_cli_errors.py"],
        cwd=REPO,
        env={**env, "GANIME_AGE_REQUIRE_SHARED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert required.returncode != 0 and "real test data not found" in required.stdout + required.stderr
