"""A greyed hairline (engine/hairline.py): a soft hairline's pixels are part hair, part skin, and greyed they are
never paler than both the grey hair and the forehead they mix."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ganime_age.engine import FittedEngine
from ganime_age.engine.hairline import held_share
from tests.test_strands import _held_out_full_size, _prepared


@pytest.fixture(scope="module")
def shipped() -> FittedEngine:
    from ganime_age.editing import DEFAULT_ENGINE_DIR
    from ganime_age.hub import load_pretrained

    return load_pretrained(DEFAULT_ENGINE_DIR)


def test_a_greyed_hairline_draws_no_pale_band_between_the_grey_hair_and_the_forehead(
    shipped: FittedEngine, shared_dir: Path
) -> None:
    """Dark hair greyed whole on held-out full-size photos: along the hairline above the forehead's middle, few
    pixels are a ridge brighter than both the hair and the forehead a thirtieth of a face width above and below
    them (greyed at the segmentation's share, a soft hairline's pixels, mostly skin, took dark hair's whole lift:
    a fifth to a quarter of the hairline was such a ridge, a pale band)."""
    for photo in _held_out_full_size(shared_dir, (0, 1, 2, 8)):
        face, landmarks = _prepared(shipped, photo)
        layer = face.layer
        x0, y0, x1, y1 = layer.hair_box
        greyed = photo[y0:y1, x0:x1].copy()
        layer.grey(greyed, (x0, y0), 1.0)
        bright = cv2.GaussianBlur(greyed.astype(np.float32).mean(axis=2), (0, 0), 1.5)
        hair = layer.share >= 128
        width = float(np.linalg.norm(landmarks[454, :2] - landmarks[234, :2]))
        edge = np.maximum(
            cv2.distanceTransform(hair.astype(np.uint8), cv2.DIST_L2, 3),
            cv2.distanceTransform((~hair).astype(np.uint8), cv2.DIST_L2, 3),
        )
        rows, cols = np.mgrid[y0:y1, x0:x1]
        centre, brows = float(landmarks[:468, 0].mean()), float(landmarks[[105, 334], 1].min())
        step = max(2, int(0.03 * width))
        line = (edge < 0.015 * width) & (np.abs(cols - centre) < 0.15 * width) & (rows < brows - 0.1 * width)
        line[:step] = line[-step:] = False
        assert line.sum() > 500
        ridge = bright - np.maximum(np.roll(bright, step, axis=0), np.roll(bright, -step, axis=0))
        assert np.mean(ridge[line] > 5.0) < 0.1


def test_a_pixel_deep_in_the_hair_keeps_its_share_and_one_at_the_edge_holds_what_its_brightness_says() -> None:
    """Black hair (brightness 30) over skin (150) across a soft edge: at the edge a pixel of brightness 90 holds half
    hair whatever its share said; a lit strand (90) deep in the hair is hair; with hair as bright as the skin the
    share stands."""
    share = np.zeros((60, 200), np.uint8)
    share[:30] = 255
    share[30:36] = 230  # the segmentation's soft edge, read wide
    brightness = np.full(share.shape, 150.0, np.float32)
    brightness[:30] = 30.0
    brightness[30:36] = 90.0
    brightness[5, 100] = 90.0  # a lit strand, deep in the hair
    hair = np.full(share.shape, 30.0, np.float32)
    held = held_share(share, brightness, hair, face_width=200.0)
    assert held[33, 100] == pytest.approx(0.5, abs=0.1)
    assert held[5, 100] == pytest.approx(1.0)
    assert np.allclose(held[36:], 0.0)
    same = held_share(share, np.full(share.shape, 40.0, np.float32), hair, face_width=200.0)
    assert np.allclose(same, share / 255.0, atol=1e-6)
