"""The light a head is lit by (engine/light.py): read from the whites of the eyes where a face shows enough of
them, so that grey hair under a warm lamp is warm whatever the skin's colour; a photo without colour, a small
face and a shut eye say nothing of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ganime_age.engine.light import WHITES_SURE, eye_whites, head_light

LAMP = np.array([1.18, 1.0, 0.78], np.float32)  # a warm lamp: red over blue 1.51 times


@pytest.fixture(scope="module")
def analyzer() -> Any:
    from ganime_age.faces import FaceAnalyzer

    found = FaceAnalyzer()
    yield found
    found.close()


def _studio(shared_dir: Path, name: str) -> np.ndarray:
    from ganime_age.faces import load_image

    return load_image(shared_dir / "datasets" / "cfee_full" / "images" / f"{name}.jpg")


def _lit(rgb: np.ndarray, lamp: np.ndarray) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * lamp, 0, 255).astype(np.uint8)


def _inputs(rgb: np.ndarray, analyzer: Any, background: bool = True) -> tuple[np.ndarray, np.ndarray, Any]:
    """What the light is read from: the person (all but the photo's left and right tenths, its background, or all
    without `background`), the skin's colour (a cheek's) and the whites."""
    points = analyzer.analyze(rgb)[0].landmarks.landmarks
    cheeks = rgb[int(points[205, 1]) - 3 : int(points[205, 1]) + 4, int(points[205, 0]) - 3 : int(points[205, 0]) + 4]
    skin = cheeks.reshape(-1, 3).astype(np.float64).mean(axis=0)
    person = np.ones(rgb.shape[:2], np.float32)
    if background:
        person[:, : rgb.shape[1] // 10] = 0.0
        person[:, -rgb.shape[1] // 10 :] = 0.0
    return person, skin, eye_whites(rgb, points)


def _light(rgb: np.ndarray, analyzer: Any, background: bool = True) -> np.ndarray:
    return head_light(rgb, *_inputs(rgb, analyzer, background))


@pytest.mark.parametrize("name", ["0001", "0002", "0005"])
def test_the_whites_of_the_eyes_read_a_warm_lamp_on_a_fair_face(shared_dir: Path, analyzer: Any, name: str) -> None:
    """Under white light a studio face reads a white light, though one person's whites are bluer than another's
    (CFEE 0002's read red over blue 0.86, a typical face's 1.05: taken as they are, her grey hair was blue); under
    the lamp, more of the lamp's warmth than the skin alone allowed (1.15-1.30 of the lamp's 1.51 for a fair face:
    blue-grey hair beside a beige wall). A face whose lit skin the lamp clips (CFEE 0037: its red at 255) is as red
    as its whites and says nothing."""
    rgb = _studio(shared_dir, name)
    white = _light(rgb, analyzer, background=True)
    assert 0.95 < white[0] / white[2] < 1.1, white
    warm = _light(_lit(rgb, LAMP), analyzer, background=True)
    alone = head_light(_lit(rgb, LAMP), *_inputs(_lit(rgb, LAMP), analyzer)[:2])  # the background and skin alone
    assert warm[0] / warm[2] > 1.2 * white[0] / white[2] and warm[0] / warm[2] > alone[0] / alone[2] + 0.05
    assert abs(float(warm[1]) - 1.0) < 0.05  # warm, not yellow-green: green is no lamp's


def test_a_photo_without_colour_a_small_face_and_a_shut_eye_say_nothing(shared_dir: Path, analyzer: Any) -> None:
    """Where the whites say nothing the light is the background's, as far as the skin agrees (and white where no
    background is in view)."""
    rgb = _lit(_studio(shared_dir, "0005"), LAMP)
    grey = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert np.allclose(_light(grey, analyzer), 1.0, atol=1e-3)  # its whites are as grey as its skin
    person, skin, whites = _inputs(rgb, analyzer)
    assert whites is not None and whites[1] > WHITES_SURE[1]  # a 1000x750 studio photo resolves enough of them
    alone = head_light(rgb, person, skin)
    assert not np.allclose(head_light(rgb, person, skin, whites), alone)
    assert np.allclose(head_light(rgb, person, skin, (whites[0], WHITES_SURE[0])), alone)  # a small face's few
    assert np.allclose(head_light(rgb, person, skin, (np.array([40.0, 30.0, 25.0]), 200.0)), alone)  # lashes
    assert np.allclose(head_light(rgb, np.ones_like(person), skin, whites), 1.0)  # no background in view


def test_a_small_photo_enlarged_resolves_no_more_white(shared_dir: Path, analyzer: Any) -> None:
    """A 200 px chip enlarged three times shows nine times the pixels of white, but they resolve no more of its
    colour: JPEG's colour blur put the skin's into them (UTKFace's grey-haired old people: whites as warm as a
    lamp's, hair not)."""
    import cv2

    from ganime_age.faces import load_image

    chips = sorted((shared_dir / "datasets" / "utkface").glob("3[0-9]_1_0_*.jpg"))[:6]
    for path in chips:
        rgb = load_image(path)
        large = cv2.resize(rgb, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        small, enlarged = (eye_whites(x, analyzer.analyze(x)[0].landmarks.landmarks) for x in (rgb, large))
        assert small is not None and enlarged is not None
        # nine times the pixels, and no more than half again as many resolved, or still too few to say anything
        assert enlarged[1] < max(1.5 * small[1], WHITES_SURE[0]), (path.name, small, enlarged)
        assert enlarged[0][0] / enlarged[0][2] < 1.1 * small[0][0] / small[0][2]
