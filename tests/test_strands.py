"""Hair greys strand by strand (engine/strands.py): salt and pepper on full-size photos, no flat band at the
hairline, evenly where the face is too small for its strands to show, and with strands drawn where the photo
shows none."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ganime_age.engine import FittedEngine
from ganime_age.engine.strands import STRAND_MIX, greyed_weight

HALF_GREY = 0.64  # the shipped engine's greying share from 25 to 75


@functools.lru_cache(maxsize=1)
def _segment() -> Any:
    from ganime_age.faces.segment import SelfieSegmenter

    return SelfieSegmenter()


@pytest.fixture(scope="module")
def shipped() -> FittedEngine:
    from ganime_age.editing import DEFAULT_ENGINE_DIR
    from ganime_age.hub import load_pretrained

    return load_pretrained(DEFAULT_ENGINE_DIR)


def _held_out_full_size(shared_dir: Path, indices: tuple[int, ...]) -> list[np.ndarray]:
    from ganime_age.faces import load_image
    from training.evaluation.gates import full_size_photos, test_photos

    people = {p.person for p in test_photos("cfee", shared_dir / "datasets" / "cfee")}
    paths = full_size_photos(shared_dir / "datasets" / "cfee_full", people, 40)
    return [load_image(paths[i]) for i in indices]


def _prepared(engine: FittedEngine, photo: np.ndarray, parsed: bool = False) -> tuple[Any, np.ndarray]:
    from ganime_age.faces import FaceAnalyzer
    from ganime_age.faces.parse import FaceParser

    landmarks = FaceAnalyzer().analyze(photo)[0].landmarks.landmarks
    parse = FaceParser() if parsed else None
    return engine.prepare_face(photo, landmarks, segment=_segment(), parse=parse), landmarks


def _shifted_correlation(ranks: np.ndarray, sure: np.ndarray, dy: int, dx: int) -> float:
    """The correlation of the ranks with the ranks (dy, dx) pixels away, over pixels both sure hair."""
    height, width = ranks.shape
    first = (slice(0, height - dy), slice(0, width - dx))
    second = (slice(dy, height), slice(dx, width))
    both = sure[first] & sure[second]
    return float(np.corrcoef(ranks[first][both], ranks[second][both])[0, 1])


def _brightness_spread(rgb: np.ndarray, where: np.ndarray) -> float:
    return float(rgb[where].astype(np.float32).mean(axis=1).std())


def _bars(rgb: np.ndarray, where: np.ndarray) -> float:
    """The spread of the brightness's light and dark between 2 and 8 pixels across (locks, streaks), over `where`."""
    grey = rgb.astype(np.float32).mean(axis=2)
    return float((cv2.GaussianBlur(grey, (0, 0), 2.0) - cv2.GaussianBlur(grey, (0, 0), 8.0))[where].std())


def _fine_detail(rgb: np.ndarray, where: np.ndarray) -> float:
    """The spread of the brightness's detail finer than 2 pixels, over `where`."""
    grey = rgb.astype(np.float32).mean(axis=2)
    return float((grey - cv2.GaussianBlur(grey, (0, 0), 2.0))[where].std())


def test_strands_are_ranked_uniformly_and_streak_along_real_hair(shipped: FittedEngine, shared_dir: Path) -> None:
    """On held-out full-size photos (long hair hanging, short hair brushed up) the greying ranks are uniform over
    the hair and run along it (a rank is like the one 4 pixels up or down, unlike the one 4 pixels beside); the
    weight greys nothing at 0, everything at 1, and about `amount` of the hair in between."""
    for photo in _held_out_full_size(shared_dir, (2, 3)):
        layer = _prepared(shipped, photo)[0].layer
        assert layer.order is None  # drawn at the hair's first greying, not for every edit
        x0, y0, x1, y1 = layer.hair_box
        layer.grey(photo[y0:y1, x0:x1].copy(), (x0, y0), HALF_GREY)
        assert layer.order is not None and layer.order.shape == layer.share.shape
        sure = layer.share > 230
        quarters = np.bincount((layer.order[sure] // 64).ravel(), minlength=4) / sure.sum()
        assert np.all(np.abs(quarters - 0.25) < 0.03), quarters
        ranks = layer.order.astype(np.float32)
        along, across = _shifted_correlation(ranks, sure, 4, 0), _shifted_correlation(ranks, sure, 0, 4)
        assert along > 0.25 and along > 2.0 * across, (along, across)
        strands = layer.strands[sure]
        # dark hair on a face 360 pixels wide greys strand by strand as far as a pixel's many strands let it
        assert strands.mean() > 0.7 * (1.0 - STRAND_MIX) * 255
        for amount in (0.0, 1.0):
            assert np.all(greyed_weight(layer.order, layer.strands, amount) == round(255 * amount))
        half = greyed_weight(layer.order, layer.strands, HALF_GREY)[sure] / 255.0
        assert abs(float(half.mean()) - HALF_GREY) < 0.05
        # whiter strands among darker ones
        assert (half > HALF_GREY + 0.03).mean() > 0.15 and (half < HALF_GREY - 0.03).mean() > 0.15


def test_half_grey_hair_is_salt_and_pepper_with_no_flat_band_at_the_hairline(
    shipped: FittedEngine, shared_dir: Path
) -> None:
    """Greyed half way (25 made 75) on held-out full-size photos, dark hair keeps its light and dark (its brightness
    spread does not shrink, as one flat grey's would), without bars: its light and dark 2-8 pixels across stay about as strong as the photo's
    own hair's (greyed with the ranks' streaks whole, they grew 1.5-1.9 times: bold black and white stripes), and the
    hair along the hairline keeps at least its own fine detail (greyed evenly, it fell to under half on a short
    dark hairline: a flat grey band)."""
    for photo in _held_out_full_size(shared_dir, (0, 3, 4)):
        face, landmarks = _prepared(shipped, photo)
        layer = face.layer
        x0, y0, x1, y1 = layer.hair_box
        before = photo[y0:y1, x0:x1]
        greyed = before.copy()
        layer.grey(greyed, (x0, y0), HALF_GREY)
        sure = layer.share > 230
        spread = [_brightness_spread(rgb, sure) for rgb in (before, greyed)]
        assert spread[1] > spread[0], spread
        bars = [_bars(rgb, sure) for rgb in (before, greyed)]
        assert bars[1] < 1.2 * bars[0], bars
        # the hairline: hair within a twelfth of a face width outside the face's mesh
        hull = np.zeros(photo.shape[:2], np.uint8)
        points = np.round(cv2.convexHull(landmarks[:468, :2].astype(np.float32))).astype(np.int32)
        cv2.fillConvexPoly(hull, points, 1)
        reach = int(0.08 * np.linalg.norm(landmarks[454, :2] - landmarks[234, :2])) | 1
        ring = (cv2.dilate(hull, np.ones((reach, reach), np.uint8)) - hull)[y0:y1, x0:x1].astype(bool)
        hairline = ring & (layer.share > 128)
        assert hairline.sum() > 2000
        fine = [_fine_detail(rgb, hairline) for rgb in (before, greyed)]
        assert fine[1] > fine[0], fine


def test_a_small_face_greys_evenly(shipped: FittedEngine, shared_dir: Path) -> None:
    """A UTKFace crop's face (about 185 pixels wide) has strands finer than its pixels: its hair greys evenly,
    every pixel the same share of the way (rank streaks drew pen hatching there)."""
    from ganime_age.faces import load_image
    from training.evaluation.gates import test_photos

    photos = [p for p in test_photos("utkface", shared_dir / "datasets" / "utkface") if 20 <= p.age <= 40][:12]
    layers = [(_prepared(shipped, load_image(p.path))[0].layer, p) for p in photos]
    haired = [(layer, p) for layer, p in layers if layer.hair_box is not None]
    assert len(haired) >= 6
    for layer, photo in haired:
        x0, y0, x1, y1 = layer.hair_box
        layer.grey(load_image(photo.path)[y0:y1, x0:x1].copy(), (x0, y0), HALF_GREY)
        assert layer.face_width < 200 and not layer.strands.any()
        weight = greyed_weight(layer.order, layer.strands, HALF_GREY)
        assert np.all(weight == round(255 * HALF_GREY))


def test_a_scans_black_mass_of_hair_greys_into_drawn_combed_strands_not_a_flat_cap(
    shipped: FittedEngine, shared_dir: Path
) -> None:
    """FG-NET scans whose dark hair is one black mass (no strands to lift, only grain and JPEG blocks) made fully
    grey: their grey hair has light and dark 1-6 pixels across of at least 4.5% of its brightness (lifted from the
    photo's own, 2.2%: a flat grey cap) and it runs the combed way, waved, up from the forehead: a pixel's detail is
    like the one 4 pixels above it, unlike the one 4 pixels beside it (the lifted grain ran every way alike; combed
    dead straight, 0.3 and more above, a fan of comb strokes; waved, 0.28 above and 0.03 beside)."""
    from ganime_age.faces import load_image

    for name in ("031A14", "026A06"):
        photo = load_image(shared_dir / "datasets" / "fgnet" / "images" / f"{name}.JPG")
        layer = _prepared(shipped, photo)[0].layer
        x0, y0, x1, y1 = layer.hair_box
        greyed = photo[y0:y1, x0:x1].copy()
        layer.grey(greyed, (x0, y0), 1.0)
        assert layer.drawn is not None and layer.drawn > 0.9  # faces of 260-300 pixels, no strands of their own
        sure = cv2.erode((layer.share > 230).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        grey = greyed.astype(np.float32).mean(axis=2)
        detail = grey - cv2.GaussianBlur(grey, (0, 0), 6.0)
        locks = (cv2.GaussianBlur(grey, (0, 0), 1.0) - cv2.GaussianBlur(grey, (0, 0), 6.0))[sure]
        assert locks.std() > 0.045 * grey[sure].mean(), (name, locks.std() / grey[sure].mean())
        along, across = _shifted_correlation(detail, sure, 4, 0), _shifted_correlation(detail, sure, 0, 4)
        assert along > 0.2 and along > across + 0.2, (name, along, across)


def test_a_small_faces_own_lit_strands_are_kept_not_drawn_over(shipped: FittedEngine) -> None:
    """The Space's astronaut (a face about 90 pixels wide) has lit, swept hair: its own light and dark, lifted to
    grey, show as strands, so hardly any are drawn over them (drawn by the face's size alone, her hair was mottled
    like camouflage), where a scan's black mass (previous test) is drawn in full."""
    from ganime_age.faces import load_image

    photo = load_image(Path(__file__).resolve().parents[1] / "space" / "examples" / "astronaut.jpg")
    layer = _prepared(shipped, photo)[0].layer
    x0, y0, x1, y1 = layer.hair_box
    layer.grey(photo[y0:y1, x0:x1].copy(), (x0, y0), 1.0)
    assert layer.face_width < 120 and layer.drawn is not None and layer.drawn < 0.25, (layer.face_width, layer.drawn)


def test_curly_hair_whose_own_curls_show_keeps_them_not_drawn_straight_strands(
    shipped: FittedEngine, shared_dir: Path
) -> None:
    """FG-NET 082A31: dark curly hair with lit curls on a face about 250 pixels wide. The curls run no one way, and
    straight combed strands were drawn over them like a grey veil; its own light and dark show as strands, so none
    are drawn (0.71 before) and the greyed curls are the photo's own."""
    from ganime_age.faces import load_image

    photo = load_image(shared_dir / "datasets" / "fgnet" / "images" / "082A31.JPG")
    layer = _prepared(shipped, photo, parsed=True)[0].layer
    x0, y0, x1, y1 = layer.hair_box
    layer.grey(photo[y0:y1, x0:x1].copy(), (x0, y0), 1.0)
    assert layer.face_width > 200 and layer.drawn is not None and layer.drawn < 0.25, (layer.face_width, layer.drawn)


def test_the_greying_kept_for_an_amount_is_the_greying_made_anew(shipped: FittedEngine, shared_dir: Path) -> None:
    """The whole hair's greying is kept for its amount (an expression slider's moves and a video's frames keep the
    hair's age): greyed to one amount, another, then the first again, each is what a fresh face greys, pixel for
    pixel."""
    photo = _held_out_full_size(shared_dir, (0,))[0]
    kept, _ = _prepared(shipped, photo, parsed=True)
    x0, y0, x1, y1 = kept.layer.hair_box
    for amount in (HALF_GREY, 1.0, HALF_GREY):
        fresh, _ = _prepared(shipped, photo, parsed=True)
        greyed = [photo[y0:y1, x0:x1].copy() for _ in range(2)]
        kept.layer.grey(greyed[0], (x0, y0), amount)
        fresh.layer.grey(greyed[1], (x0, y0), amount)
        assert kept.layer._greyed is not None and kept.layer._greyed[0] == amount
        assert np.array_equal(greyed[0], greyed[1]), amount
        assert np.abs(greyed[0].astype(np.int16) - photo[y0:y1, x0:x1]).max() > 50  # it greyed
    part = photo[(y0 + y1) // 2 : y1, x0:x1].copy()  # a crop is greyed apart: the whole's stays kept
    kept.layer.grey(part, (x0, (y0 + y1) // 2), 1.0)
    assert kept.layer._greyed is not None and kept.layer._greyed[0] == HALF_GREY


def test_the_hair_changes_made_ahead_on_their_own_thread_are_the_ones_made_in_place(
    shipped: FittedEngine, shared_dir: Path
) -> None:
    """A new photo's strands are made on a thread of their own while its face's motion is (`start_changes`, a third
    of a 1 MP photo's first edit), and so is the colour grey hair regains: the hair greys, and regains its colour,
    the same, pixel for pixel, as when the first edit makes them."""
    photo = _held_out_full_size(shared_dir, (0,))[0]
    ahead, _ = _prepared(shipped, photo, parsed=True)
    in_place, _ = _prepared(shipped, photo, parsed=True)
    x0, y0, x1, y1 = ahead.layer.hair_box
    assert ahead.layer.young is not None
    ahead.layer.start_changes(photo, greying=True, restoring=True)
    assert set(ahead.layer._making) == {"_full", "_restored"}
    greyed = [photo[y0:y1, x0:x1].copy() for _ in range(2)]
    ahead.layer.grey(greyed[0], (x0, y0), HALF_GREY)
    in_place.layer.grey(greyed[1], (x0, y0), HALF_GREY)
    assert np.array_equal(greyed[0], greyed[1])
    assert np.abs(greyed[0].astype(np.int16) - photo[y0:y1, x0:x1]).max() > 50  # it greyed
    restored = [photo[y0:y1, x0:x1].copy() for _ in range(2)]
    ahead.layer.restore(restored[0], (x0, y0), 1.0)
    in_place.layer.restore(restored[1], (x0, y0), 1.0)
    assert np.array_equal(restored[0], restored[1])
