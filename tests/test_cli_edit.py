"""`ganime-age edit` on real photos: it prints, for each face it edited, what it applied (age and AUs from ->
to), with the faces numbered as everywhere else (0 = leftmost), and what it was not asked to change is kept.

The expected numbers come from the Python API (`FaceEditor.estimate_age`, `measure_aus`) on the same photo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ganime_age import FaceEditor
from ganime_age.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
TWO_FACES = REPO / "space" / "examples" / "two-faces.jpg"
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(device="cpu")


def edit(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    code = cli_main(["edit", *argv])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed.out.strip().splitlines()


def test_every_face_says_its_age_and_aus_from_and_to(tmp_path: Path, capsys, editor: FaceEditor) -> None:
    out = tmp_path / "older.png"
    lines = edit(capsys, str(TWO_FACES), "--age", "60", "--au", "AU12=3", "-o", str(out))
    ages, aus = editor.estimate_age(TWO_FACES), editor.measure_aus(TWO_FACES)
    expected = [f"face {i}: age {ages[i]:.0f} -> 60, AU12 {aus[i]['AU12']:.1f} -> 3.0" for i in (0, 1)]
    assert lines == [*expected, f"wrote {out}"]
    assert out.is_file()


def test_one_face_with_aus_only_keeps_its_age(tmp_path: Path, capsys, editor: FaceEditor) -> None:
    out = tmp_path / "smile.png"
    lines = edit(capsys, str(TWO_FACES), "--face", "1", "--au", "au12=3", "--au", "AU06=2", "-o", str(out))
    age, aus = editor.estimate_age(TWO_FACES, face=1), editor.measure_aus(TWO_FACES, face=1)
    changes = f"AU12 {aus['AU12']:.1f} -> 3.0, AU06 {aus['AU06']:.1f} -> 2.0"
    assert lines == [f"face 1: age {age:.0f} kept, {changes}", f"wrote {out}"]


def test_an_age_only_edit_keeps_the_aus(tmp_path: Path, capsys, editor: FaceEditor) -> None:
    out = tmp_path / "young.png"
    lines = edit(capsys, str(ASTRONAUT), "--age", "20", "-o", str(out))
    assert lines == [f"face 0: age {editor.estimate_age(ASTRONAUT, face=0):.0f} -> 20, AUs kept", f"wrote {out}"]


def test_the_current_age_can_be_given_where_the_estimate_is_wrong(tmp_path: Path, capsys) -> None:
    out = tmp_path / "older.png"
    lines = edit(capsys, str(ASTRONAUT), "--from-age", "33", "--age", "70", "-o", str(out))
    assert lines == ["face 0: age 33 -> 70, AUs kept", f"wrote {out}"]
    assert cli_main(["edit", str(ASTRONAUT), "--from-age", "-3", "--age", "70", "-o", str(out)]) == 2
    assert "--from-age must be between 0 and 100" in capsys.readouterr().err


def test_reenact_says_how_the_head_was_moved(tmp_path: Path, capsys) -> None:
    """`reenact` prints what the README and the Space say the default does: the head turned in 3-D (it used to
    print "warp pose transfer")."""
    out = tmp_path / "reenacted.png"
    code = cli_main(["reenact", str(ASTRONAUT), str(REPO / "space" / "examples" / "cameraman.jpg"), "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.strip().splitlines() == [f"wrote {out} (the expression warped, the head turned in 3-D)"]
    assert "own head in 3-D" in (REPO / "README.md").read_text(encoding="utf-8").replace("\n", " ")
