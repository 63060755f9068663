"""The README as a new user meets it: its picture, its first two commands, what CI runs, the one story of the
default model, the one face numbering; the first command really starts the Space and keeps it running, and every
Python, command-line and training example it shows is run. Its links (and the training guide's and docs') lead
somewhere that exists."""

from __future__ import annotations

import json
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


def test_the_readme_says_which_torch_build_each_use_needs() -> None:
    """`pip install torch==2.13.0` gets the CUDA build where the index serves the default Linux wheel: the intro
    says how a CPU-only machine gets the CPU build, and that a GPU Space uses the CUDA one."""
    intro = squashed(README.split("## ", 1)[0])
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in intro
    assert "CPU build" in intro and "CUDA build" in intro and "GPU runtime" in intro


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
    assert story.count(". ") <= 6 and len(story) < 1200  # a few sentences; the numbers are in the card
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


FIRST_SCREENFUL = 40  # lines


def test_the_first_screenful_shows_the_space_the_library_and_training() -> None:
    """A stranger finds how to run the Space, call the library and train without scrolling; the README is a user
    guide of about 200 lines, not a lab notebook, and says nothing of how the project got here."""
    first = README.splitlines()[:FIRST_SCREENFUL]
    screen = "\n".join(first)
    for shown in ("python app.py", "GanimeAge.from_pretrained()", "accelerate launch training/train.py"):
        assert shown in screen, shown
    assert "(training/README.md)" in screen and "![" in first[4] + first[5]
    assert len(README.splitlines()) <= 200
    assert not re.search(r"\b(?:issue|session|run) \d+|\b(?:was|were) \d|used to|\bbefore,|\bnow\b", README, re.I)
    assert "own head in 3-D" in squashed(README)  # tests/test_cli_edit.py: what reenactment does by default


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


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_the_readmes_python_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the README runs, in order, as one script in a scratch folder beside the Space's
    example photos (push_to_hub talks to a stand-in Hub), and does what its comments say."""
    from huggingface_hub import HfApi
    from PIL import Image

    blocks = code_blocks(README, "python")
    assert len(blocks) >= 3 and all(
        call in "".join(blocks)
        for call in ("from_pretrained(", ".edit(", ".age_strip(", ".reenact(", ".reenact_video(", ".save_pretrained(")
    )
    uploaded: dict[str, object] = {}

    def create_repo(self: HfApi, repo_id: str, **kwargs: object) -> str:
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self: HfApi, *, repo_id: str, folder_path: str, **kwargs: object) -> str:
        uploaded[repo_id] = sorted(p.name for p in Path(folder_path).iterdir())
        return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    (tmp_path / "space").symlink_to(REPO / "space")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)

    photo = Image.open(REPO / "space" / "examples" / "two-faces.jpg")
    for name in ("older", "smile", "child"):
        assert scope[name].size == photo.size, name  # type: ignore[attr-defined]
    assert Image.open("older.jpg").size == photo.size
    assert sorted(p.name for p in tmp_path.glob("face0-age*.jpg")) == [f"face0-age{a}.jpg" for a in (25, 5, 50, 75)]
    ages = scope["ages"]
    assert isinstance(ages, list) and len(ages) == 2 and all(0 <= a <= 100 for a in ages)
    assert set(scope["aus"]) >= {"AU01", "AU12", "AU45"}  # type: ignore[arg-type]
    assert Image.open("driven.jpg").size == Image.open(REPO / "space" / "examples" / "astronaut.jpg").size
    assert Path(scope["video"]).stat().st_size > 10_000  # type: ignore[arg-type]
    assert (tmp_path / "my-editor" / "editor.json").is_file()
    assert "editor.json" in uploaded["your-name/my-editor"]  # type: ignore[operator]


def readme_bash_lines(text: str) -> list[str]:
    """The lines of every ```bash block after the first two commands, one command a line."""
    return [line.strip() for block in code_blocks(text, "bash")[1:] for line in block.strip().splitlines()]


@pytest.mark.parametrize("command", [c for c in readme_bash_lines(README) if c.startswith("ganime-age ")])
def test_the_readmes_command_line_examples_run(command: str, tmp_path: Path) -> None:
    """Every `ganime-age` line the README shows runs as written (beside the Space's example photos) and writes its
    -o file."""
    (tmp_path / "space").symlink_to(REPO / "space")
    words = command.split()
    executable = Path(sys.executable).with_name("ganime-age")
    done = subprocess.run(
        [str(executable), *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    output = tmp_path / words[words.index("-o") + 1]
    assert output.stat().st_size > 10_000 and f"wrote {output.name}" in done.stdout


def readme_training_commands() -> dict[str, list[str]]:
    commands = [c.split() for c in readme_bash_lines(README) if "training/" in c]
    return {next(w for w in words if w.startswith("training/")): words for words in commands}


def test_the_readme_shows_the_three_training_commands() -> None:
    assert list(readme_training_commands()) == [
        "training/prepare_data.py",
        "training/train.py",
        "training/fit_engine.py",
    ]
    assert readme_training_commands()["training/train.py"][:2] == ["accelerate", "launch"]


@pytest.mark.shared
def test_the_readmes_training_commands_run(tmp_path: Path, shared_dir: Path) -> None:
    """The README's data preparation and training commands run as written, made small: prepare_data on 16 real
    UTKFace photos (`--max-items`), then `accelerate launch training/train.py` with the README's config for one
    step of a narrow network; fit_engine (CPU minutes on all of UTKFace) takes every option the README gives it."""
    commands = readme_training_commands()
    (tmp_path / "training").symlink_to(REPO / "training")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}

    def run(words: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
        words = [w.replace("../shared", str(shared_dir)) for w in words]
        if words[0] == "python":
            words[0] = sys.executable
        else:
            words[:2] = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu"]
        done = subprocess.run(
            [*words, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done

    prepare = commands["training/prepare_data.py"]
    run(prepare, "--max-items", "16", "--test-fraction", "0.25", "--no-progress")
    output = tmp_path / prepare[prepare.index("--output") + 1]
    assert (output / "README.md").is_file()
    small = [
        "system.generator.conv_dim=8",
        "system.generator.num_residual_blocks=1",
        "system.generator.age_embedding_dim=8",
    ]
    small += ["system.discriminator.conv_dim=8", "system.critic_steps=1", "train.batch_size=2", "train.max_steps=1"]
    small += ["train.num_workers=0", "train.mixed_precision=no", "train.channels_last=false", "train.tracker=jsonl"]
    small += [
        "train.fused_optimizers=false",
        "train.sample_every=1",
        "train.sample_faces=2",
        "train.output_dir=runs/readme",
    ]
    run(commands["training/train.py"], *small)
    assert (tmp_path / "runs" / "readme" / "export" / "model.safetensors").is_file()
    fit = commands["training/fit_engine.py"]
    shown = run(fit[:2], "--help").stdout
    assert all(option in shown for option in fit if option.startswith("--"))


STRIP = REPO / "docs" / "readme_strip.jpg"


def test_the_readme_opens_with_its_picture_made_by_the_repositorys_script(tmp_path: Path) -> None:
    """The picture under the README's first line is docs/readme_strip.jpg: a small JPEG of seven labelled tiles
    256 px tall (the photo, ages 5, 25, 50, 75, a smile and a reenactment), which docs/make_readme_strip.py
    draws again from the Space's example photos at the same size."""
    from PIL import Image

    assert "](docs/readme_strip.jpg)" in README.split("```", 1)[0]
    assert STRIP.stat().st_size <= 150_000
    shipped = Image.open(STRIP)
    assert shipped.format == "JPEG" and shipped.height == 256 + 28 and shipped.width > 6 * 180
    made = tmp_path / "strip.jpg"
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "make_readme_strip.py"), "--output", str(made)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert Image.open(made).size == shipped.size


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


DOCUMENTS = ["README.md", "CHANGELOG.md", "training/README.md", "docs/how-it-works.md", "docs/model-files.md"]
DOCUMENTS += ["docs/reliability.md"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_leads_to_a_file_and_a_heading_that_exist(document: str) -> None:
    """Relative links (and their #anchors) of the README, the training guide and the docs resolve: the journals
    moved to training/JOURNAL.md, and the links that pointed into them moved with them."""
    path = REPO / document
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{document}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {github_anchor(h) for h in headings}, f"{document}: {target}"


def test_links_into_the_training_guide_from_anywhere_in_the_repository_resolve() -> None:
    found = subprocess.run(
        ["git", "grep", "-ohE", r"training/(README|JOURNAL)\.md#[a-z0-9_-]+", "--", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for link in set(found):
        file, anchor = link.split("#")
        headings = re.findall(r"^#+ (.*)$", (REPO / file).read_text(encoding="utf-8"), re.MULTILINE)
        assert anchor in {github_anchor(h) for h in headings}, link


def test_the_engine_cards_configuration_is_the_shipped_config() -> None:
    """The card's Configuration block is what the engine loads: every field of its config.json but the Hub's
    metadata (a field added to the engine and not to the card left the card describing another engine)."""
    card = default_model_card()
    block = re.search(r"## Configuration\s+```json\n(.*?)```", card.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    config = json.loads((card.parent / "config.json").read_text(encoding="utf-8"))
    metadata = {"config_sha256", "ganime_age_version", "model_type", "weights_sha256"}
    assert json.loads(block.group(1)) == {key: value for key, value in config.items() if key not in metadata}
