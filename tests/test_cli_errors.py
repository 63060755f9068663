"""`ganime-age edit` answers every user mistake with one line and exit status 2, never a traceback.

The input photo in most cases is scikit-image's coffee cup, which has no face: a mistake in the
arguments or the output path must be reported *before* the photo is analysed (else the error would be
"no face found"), i.e. in a second rather than after the whole edit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganime_age.cli import main as cli_main
from ganime_age.editing import DEFAULT_ESTIMATOR_DIR
from ganime_age.errors import OutputPathError

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli_main(["edit", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--age", "nan"], "age must be a finite number"),
        (["--age", "inf"], "age must be a finite number"),
        (["--age", "150"], "age must be between 0 and 100 years, not 150"),
        (["--age", "-5"], "age must be between 0 and 100 years, not -5"),
        (["--au", "AU99=1"], "unknown Action Unit 'AU99'"),
        (["--au", "smile=2"], "unknown Action Unit 'smile'"),
        (["--au", "AU12=nan"], "AU12 intensity must be a finite number"),
        (["--au", "AU12=6"], "AU12 intensity must be between 0 and 5"),
        (["--age", "50", "--device", "banana"], "unknown device 'banana'"),
        ([], "nothing to change: give a target age (--age 70) and/or Action Units (--au AU12=3)"),
    ],
)
def test_argument_mistakes(tmp_path: Path, coffee_file: Path, capsys, options: list[str], expected: str) -> None:
    code, error = run(capsys, str(coffee_file), *options, "-o", str(tmp_path / "out.png"))
    assert code == 2 and expected in error, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_cuda_without_a_gpu(tmp_path: Path, coffee_file: Path, capsys) -> None:
    code, error = run(capsys, str(coffee_file), "--age", "50", "--device", "cuda", "-o", str(tmp_path / "out.png"))
    assert code == 2 and "no CUDA GPU is available" in error


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("x.xyz", "unknown image extension '.xyz'"),
        ("noext", "has no image extension"),
        ("", "is a folder"),
        ("/dev/full", "has no image extension"),
        ("blocker/out.png", "blocker is a file"),
    ],
)
def test_output_path_mistakes_are_found_before_the_edit(
    tmp_path: Path, coffee_file: Path, capsys, output: str, expected: str
) -> None:
    (tmp_path / "blocker").write_text("a file where a folder would have to be")
    target = output if output.startswith("/") else str(tmp_path / output)
    code, error = run(capsys, str(coffee_file), "--age", "50", "-o", target)
    assert code == 2 and expected in error, error  # not "no face found": the photo was never analysed
    assert len(error.strip().splitlines()) == 1


def test_mask_dir_that_is_a_file(tmp_path: Path, coffee_file: Path, capsys) -> None:
    (tmp_path / "masks").write_text("not a folder")
    masks = str(tmp_path / "masks")
    code, error = run(capsys, str(coffee_file), "--age", "50", "-o", str(tmp_path / "o.png"), "--mask-dir", masks)
    assert code == 2 and "--mask-dir" in error and "is a file, not a folder" in error


def test_model_mistakes(tmp_path: Path, capsys, refiner_dir: Path) -> None:
    out = str(tmp_path / "o.png")
    code, error = run(capsys, str(ASTRONAUT), "--age", "50", "--model", "/nonexistent", "-o", out)
    assert code == 2 and "no model folder at /nonexistent" in error and "Repo id" not in error
    code, error = run(capsys, str(ASTRONAUT), "--age", "50", "--model", str(DEFAULT_ESTIMATOR_DIR), "-o", out)
    assert code == 2 and "not an ageing model" in error
    folder = tmp_path / "typo"
    shutil.copytree(refiner_dir, folder)
    settings = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**settings, "conv_dims": 32}))
    code, error = run(capsys, str(ASTRONAUT), "--age", "50", "--model", str(folder), "-o", out)
    assert code == 2 and "unknown GanimationAgeConfig option(s): conv_dims" in error
    assert len(error.strip().splitlines()) == 1 and not Path(out).exists()


def test_debug_shows_the_traceback(tmp_path: Path, coffee_file: Path) -> None:
    with pytest.raises(OutputPathError, match="unknown image extension"):
        cli_main(["--debug", "edit", str(coffee_file), "--age", "50", "-o", str(tmp_path / "x.xyz")])
    with pytest.raises(OutputPathError):
        cli_main(["edit", str(coffee_file), "--age", "50", "-o", str(tmp_path / "x.xyz"), "--debug"])


# -- issue 20: one-line usage mistakes, output paths that fail late, and the user's own photo as the output ----
CAMERAMAN = REPO / "space" / "examples" / "cameraman.jpg"

USAGE_MISTAKES = [
    [],
    ["bogus"],
    ["--bogus"],
    ["edit"],
    ["edit", "x.jpg"],
    ["edit", "x.jpg", "-o"],
    ["edit", "x.jpg", "-o", "y.png", "--age", "abc"],
    ["edit", "x.jpg", "-o", "y.png", "--face", "x"],
    ["edit", "x.jpg", "-o", "y.png", "--au", "AU12"],
    ["edit", "x.jpg", "-o", "y.png", "--au", "AU12=x"],
    ["edit", "x.jpg", "-o", "y.png", "--precision", "fp8"],
    ["edit", "x.jpg", "-o", "y.png", "--bogus"],
    ["reenact"],
    ["reenact", "a.jpg"],
    ["reenact", "a.jpg", "b.jpg"],
    ["reenact", "a.jpg", "b.jpg", "-o", "c.txt"],
    ["reenact", "a.jpg", "b.mp4", "-o", "c.jpg"],
    ["reenact", "a.jpg", "b.jpg", "-o", "c.jpg", "--age", "200"],
    ["reenact", "a.jpg", "b.jpg", "-o", "c.jpg", "--aus-scale", "-1"],
    ["reenact", "a.jpg", "b.jpg", "-o", "c.jpg", "--from-age", "x"],
    ["reenact", "a.jpg", "b.jpg", "-o", "c.jpg", "--face", "x"],
    ["prepare"],
    ["prepare", "--source", "bogus", "--input", "i", "--output", "o"],
    ["train"],
]


@pytest.mark.parametrize("argv", USAGE_MISTAKES, ids=lambda argv: " ".join(argv) or "(nothing)")
def test_every_usage_mistake_is_one_line(capsys, argv: list[str]) -> None:
    """argparse printed its whole usage (2-10 lines) before the message; now one line, exit status 2."""
    with pytest.raises(SystemExit) as caught:
        cli_main(argv)
    error = capsys.readouterr().err
    assert caught.value.code == 2
    assert len(error.strip().splitlines()) == 1 and "error:" in error and "usage:" not in error, error
    if argv[:1] == ["edit"]:  # the hint names the subcommand's help, also for an option it does not know
        assert "see ganime-age edit --help" in error, error


def test_age_refusals_show_the_digits_that_matter(tmp_path: Path, coffee_file: Path, capsys) -> None:
    code, error = run(capsys, str(coffee_file), "--age", "100.0000001", "-o", str(tmp_path / "o.png"))
    assert code == 2 and "not 100.0000001" in error, error
    with pytest.raises(SystemExit):
        cli_main(["reenact", str(ASTRONAUT), str(CAMERAMAN), "-o", str(tmp_path / "o.png"), "--age", "100.0000001"])
    assert "not 100.0000001" in capsys.readouterr().err


def test_an_au_given_twice_is_refused(tmp_path: Path, coffee_file: Path, capsys) -> None:
    code, error = run(capsys, str(coffee_file), "--au", "AU12=1", "--au", "au12=4", "-o", str(tmp_path / "o.png"))
    assert code == 2 and "AU12 is given twice" in error, error
    code, error = run(capsys, str(coffee_file), "--au", "AU12=1", "--au", "AU12=4", "-o", str(tmp_path / "o.png"))
    assert code == 2 and "AU12 is given twice" in error, error


def test_an_au_name_with_unicode_digits_is_one_line(tmp_path: Path, coffee_file: Path, capsys) -> None:
    for name in ("AU²", "AU①", "AU١٢"):  # str.isdigit() says yes to all three; int() refused them with a traceback
        code, error = run(capsys, str(coffee_file), "--au", f"{name}=1", "-o", str(tmp_path / "o.png"))
        assert code == 2 and "unknown Action Unit" in error and "Traceback" not in error, error


@pytest.mark.parametrize("command", ["edit", "reenact"])
@pytest.mark.parametrize("where", ["existing folder.jpg", "under a file", "/proc"])
def test_output_paths_that_cannot_be_written_are_one_line(tmp_path: Path, capsys, command: str, where: str) -> None:
    (tmp_path / "existing folder.jpg").mkdir()
    (tmp_path / "a file").write_text("a file where a folder would have to be")
    output = {
        "existing folder.jpg": tmp_path / "existing folder.jpg",
        "under a file": tmp_path / "a file" / "x.jpg",
        "/proc": Path("/proc/x.jpg"),  # os.access says yes to root, yet /proc takes no new files
    }[where]
    inputs = [str(ASTRONAUT), "--age", "50"] if command == "edit" else [str(ASTRONAUT), str(CAMERAMAN)]
    code = cli_main([command, *inputs, "-o", str(output)])
    error = capsys.readouterr().err
    assert code == 2, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error and "Errno" not in error, error
    assert {"existing folder.jpg": "is a folder", "under a file": "is a file", "/proc": "does not accept new files"}[
        where
    ] in error


def _spellings(photo: Path) -> dict[str, Path]:
    """The same file under other names: the path itself, a detour through .., a hard link and a symlink."""
    hard = photo.with_name("hard-link.jpg")
    os.link(photo, hard)
    soft = photo.with_name("soft-link.jpg")
    soft.symlink_to(photo)
    return {"same": photo, "dotdot": photo.parent / ".." / photo.parent.name / photo.name, "hard": hard, "soft": soft}


@pytest.mark.parametrize("spelling", ["same", "dotdot", "hard", "soft"])
def test_edit_never_overwrites_the_input_photo(tmp_path: Path, capsys, spelling: str) -> None:
    photo = tmp_path / "face.jpg"
    shutil.copyfile(ASTRONAUT, photo)
    output = _spellings(photo)[spelling]
    code, error = run(capsys, str(photo), "--age", "90", "-o", str(output))
    assert code == 2 and "--overwrite" in error and len(error.strip().splitlines()) == 1, error
    assert photo.read_bytes() == ASTRONAUT.read_bytes()


@pytest.mark.parametrize("which", ["source", "driving"])
def test_reenact_never_overwrites_an_input(tmp_path: Path, capsys, which: str) -> None:
    source, driving = tmp_path / "source.jpg", tmp_path / "driving.jpg"
    shutil.copyfile(ASTRONAUT, source)
    shutil.copyfile(CAMERAMAN, driving)
    output = _spellings(source if which == "source" else driving)["hard"]
    code = cli_main(["reenact", str(source), str(driving), "-o", str(output)])
    error = capsys.readouterr().err
    assert code == 2 and "--overwrite" in error and len(error.strip().splitlines()) == 1, error
    assert source.read_bytes() == ASTRONAUT.read_bytes() and driving.read_bytes() == CAMERAMAN.read_bytes()


def test_overwrite_replaces_the_input_when_asked(tmp_path: Path, capsys) -> None:
    """With --overwrite the input is replaced (a JPEG is re-encoded, so its bytes change whatever the edit did)."""
    photo = tmp_path / "face.jpg"
    shutil.copyfile(ASTRONAUT, photo)
    code, error = run(capsys, str(photo), "--age", "90", "-o", str(photo), "--overwrite")
    assert code == 0, error
    assert photo.read_bytes() != ASTRONAUT.read_bytes() and Image.open(photo).size == (512, 512)
    source = tmp_path / "source.jpg"
    shutil.copyfile(ASTRONAUT, source)
    assert cli_main(["reenact", str(source), str(CAMERAMAN), "-o", str(source), "--overwrite"]) == 0
    assert source.read_bytes() != ASTRONAUT.read_bytes() and Image.open(source).size == (512, 512)
