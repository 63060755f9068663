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
    from space.app import DEFAULT_MODEL_STORY, header

    story = squashed(DEFAULT_MODEL_STORY.read_text(encoding="utf-8"))
    marked = re.search(r"<!-- default-model-story:.*?-->(.*?)<!-- /default-model-story -->", README, re.DOTALL)
    assert marked is not None and squashed(marked.group(1)) == story
    assert story in squashed(default_model_card().read_text(encoding="utf-8"))
    assert story in squashed(header())


def test_the_opening_lines_say_what_the_shipped_model_does_and_how_reenactment_works() -> None:
    opening = squashed(README.split("```", 1)[0]).lower()
    assert "shipped default model" in opening and "fitted edit engine" in opening and "no trained network" in opening
    assert "reenactment turns the photo's own head in 3-d by default" in opening


def test_face_numbering_is_documented_in_one_place_that_the_others_link_to() -> None:
    from ganime_age.cli import build_parser
    from space.app import header
    from space.common import FACE_NUMBERING_URL

    section = re.search(r"^## Face numbering\n(.*?)^## ", README, re.DOTALL | re.MULTILINE)
    assert section is not None and "from 0, left to right" in squashed(section.group(1))
    assert FACE_NUMBERING_URL.endswith("#face-numbering")  # the GitHub anchor of that heading
    assert FACE_NUMBERING_URL in header()
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
