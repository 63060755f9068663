"""`ganime-age edit` answers every user mistake with one line and exit status 2, never a traceback.

The input photo in most cases is scikit-image's coffee cup, which has no face: a mistake in the
arguments or the output path must be reported *before* the photo is analysed (else the error would be
"no face found"), i.e. in a second rather than after the whole edit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganime_age.cli import main as cli_main
from ganime_age.errors import OutputPathError
from ganime_age.pipeline import DEFAULT_ESTIMATOR_DIR, DEFAULT_MODEL_DIR

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
        (["--device", "banana"], "unknown device 'banana'"),
    ],
)
def test_argument_mistakes(tmp_path: Path, coffee_file: Path, capsys, options: list[str], expected: str) -> None:
    code, error = run(capsys, str(coffee_file), *options, "-o", str(tmp_path / "out.png"))
    assert code == 2 and expected in error, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_cuda_without_a_gpu(tmp_path: Path, coffee_file: Path, capsys) -> None:
    code, error = run(capsys, str(coffee_file), "--device", "cuda", "-o", str(tmp_path / "out.png"))
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
    code, error = run(capsys, str(coffee_file), "-o", str(tmp_path / "o.png"), "--mask-dir", str(tmp_path / "masks"))
    assert code == 2 and "--mask-dir" in error and "is a file, not a folder" in error


def test_model_mistakes(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o.png")
    code, error = run(capsys, str(ASTRONAUT), "--model", "/nonexistent", "-o", out)
    assert code == 2 and "no model folder at /nonexistent" in error and "Repo id" not in error
    code, error = run(capsys, str(ASTRONAUT), "--model", str(DEFAULT_ESTIMATOR_DIR), "-o", out)
    assert code == 2 and "not an ageing model" in error
    folder = tmp_path / "typo"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    settings = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**settings, "conv_dims": 32}))
    code, error = run(capsys, str(ASTRONAUT), "--model", str(folder), "-o", out)
    assert code == 2 and "unknown GanimeAgeConfig option(s): conv_dims" in error
    assert len(error.strip().splitlines()) == 1 and not Path(out).exists()


def test_debug_shows_the_traceback(tmp_path: Path, coffee_file: Path) -> None:
    with pytest.raises(OutputPathError, match="unknown image extension"):
        cli_main(["--debug", "edit", str(coffee_file), "-o", str(tmp_path / "x.xyz")])
    with pytest.raises(OutputPathError):
        cli_main(["edit", str(coffee_file), "-o", str(tmp_path / "x.xyz"), "--debug"])
