"""The grey-hair evaluation's measure (issue 55) on a real grey-haired UTKFace photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

GREY_HAIRED = "86_0_0_20170111210757200.jpg.chip.jpg"  # a held-out 86-year-old with white hair


def test_grey_hair_has_more_local_contrast_than_the_same_hair_blurred(shared_dir: Path) -> None:
    """Real strands read several times the local contrast of the same hair painted flat (blurred), and the hair
    parsed on the photo follows it to a 60 px face."""
    from ganime_age.editing import EditorConfig, FaceEditor
    from ganime_age.faces import load_image
    from training.evaluation.grey_hair import inner, is_grey, local_contrast, read_hair, resized

    editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
    photo = read_hair(editor, GREY_HAIRED, load_image(shared_dir / "datasets" / "utkface" / GREY_HAIRED))
    assert photo is not None and is_grey(photo)
    mask = inner(photo.hair, photo.face_width)
    sharp = local_contrast(photo.rgb, mask, photo.face_width)
    flat = local_contrast(cv2.GaussianBlur(photo.rgb, (0, 0), 0.02 * photo.face_width), mask, photo.face_width)
    assert flat < 0.5 * sharp, (flat, sharp)
    small = resized(photo, "60px")
    assert small.face_width == pytest.approx(60.0, abs=1.0) and small.hair.mean() == pytest.approx(
        photo.hair.mean(), rel=0.2
    )
