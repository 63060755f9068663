"""Facial hair, found once per photo and lifted away when a face is made a child's.

A beard, stubble or a moustache is hair on the skin: darker than the face's skin and less red than it (hair
is brown-grey-black; skin in shade keeps its redness, which is how the jaw's own shadow is told from a beard),
or, grey or white, as light as the skin or lighter, and both less red and rougher (a lit patch of skin is
smooth).
Below the nose base, the lips excepted, and down under the jaw, each pixel's facial-hair share is read from
its colour against the cheeks' skin, and the hair is replaced by the surrounding skin, its tone and shading
taken from the nearby skin pixels (normalised convolution at two scales, so that a full beard fills from its
edges). The change is made once at the photo's resolution; a slider move scales it (:meth:`Beard.lift`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.frames import PhotoLift, resample_grid
from ganime_age.engine.texture import fine_band, local_mean
from ganime_age.faces.topology import CHIN, FACE_LEFT, FACE_OVAL, FACE_RIGHT, NUM_MESH_VERTICES, OUTER_LIPS

NOSE_BASE = 2  # the mesh's point under the nose (subnasale): facial hair begins below it
EYE_BOTTOMS = (145, 374)  # the lower lids' centres: the cheeks' skin is read between them and the nose base
BEARD_GRID_FACE = 96  # grid pixels across the face: the skin's statistics and the fill are smooth at this scale
BEARD_BELOW = 0.18  # face widths below the chin that a beard may reach (under the jaw)
MOUTH_CORNERS = (61, 291)
NECK_HALF_WIDTH = 0.3  # face widths: under the jaw, a beard lies on the neck, never beside it (long hair)
LIPS_GROW = 0.03  # face widths: the lips' outline grown by this is never facial hair
REDNESS_LOSS = (0.1, 0.35)  # share of the skin's redness (log R/G) a pixel lacks: from skin to surely hair
DARKER = (3.0, 10.0)  # Lab L (local mean) below the cheeks' skin: from skin to surely hair
ROUGHER = (0.3, 1.2)  # log of the fine texture's energy over the cheeks': from skin to surely hair
SPREAD = 1.5  # the grid's share (hair and the skin between hairs) raised by this: a patch goes whole
FILL_SCALES = (0.05, 0.15)  # face widths: the skin blurs that fill a beard (fine near its edge, coarse inside)
AROUND_SCALE = 0.1  # face widths: a lifted beard's skin changes as the skin this far around it does
# how likely the face is a woman's (the engine's sex reading): facial hair is lifted whole up to the first, not at all
# from the second. What the colours find on a woman's face is the shade round her mouth or long hair across her jaw
# (filled with skin, a pale wedge over the hair); on 300 UTKFace chips men with a beard read 0.46 at most
FEMALE_NO_BEARD = (0.6, 0.9)


@dataclass
class Beard(PhotoLift):
    """One face's facial hair and its removal at the photo's resolution (`change`: what removing all of it adds)."""

    share: np.ndarray | None = None  # (h, w) uint8 over `box`: how surely each pixel is facial hair (255: sure)

    def share_on(self, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
        """(h, w) float32 0..1: the facial hair's share on a grid of `shape` spanning the photo box `box` (0 where
        none is found): where the face's skin changes must not lift it a second time."""
        if self.share is None:
            return np.zeros(shape, np.float32)
        return resample_grid(self.share.astype(np.float32) * np.float32(1.0 / 255.0), self.box, box, shape)


def find_beard(
    rgb: np.ndarray,
    points: np.ndarray,
    person: Callable[[int, int, int, int], np.ndarray] | None = None,
    hair: Callable[[tuple[int, int, int, int], tuple[int, int]], np.ndarray] | None = None,
    female: float = 0.0,
) -> Beard | None:
    """The facial hair of the face with landmarks `points` (photo pixels) in `rgb` (None: none found).

    `person(x0, y0, x1, y1)`: where the edit may change the photo over a photo box (0..1; e.g.
    :meth:`HairLayer.person_at`): facial hair is looked for, and the fill reads skin, only there. `hair(box,
    shape)`: the head's hair share on a grid of `shape` over a photo box (:meth:`HairLayer.hair_on`), never
    facial hair. `female`: how likely the face is a woman's (:data:`FEMALE_NO_BEARD`).
    """
    kept = float(np.clip((FEMALE_NO_BEARD[1] - female) / (FEMALE_NO_BEARD[1] - FEMALE_NO_BEARD[0]), 0.0, 1.0))
    if kept <= 0.0:
        return None
    height, width = rgb.shape[:2]
    points = np.asarray(points, np.float64)
    face_width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    oval = points[sorted({i for pair in FACE_OVAL for i in pair}), :2]
    eye_row = float(points[list(EYE_BOTTOMS), 1].mean())
    x0 = max(int(oval[:, 0].min() - 0.1 * face_width), 0)
    x1 = min(int(np.ceil(oval[:, 0].max() + 0.1 * face_width)) + 1, width)
    y0 = max(int(eye_row), 0)
    y1 = min(int(np.ceil(points[CHIN, 1] + BEARD_BELOW * face_width)) + 1, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    scale = min(1.0, BEARD_GRID_FACE / face_width)
    grid_w, grid_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
    grid = cv2.resize(crop, (grid_w, grid_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else crop
    sx, sy = grid_w / (x1 - x0), grid_h / (y1 - y0)
    local = np.stack([(points[:, 0] - x0 + 0.5) * sx - 0.5, (points[:, 1] - y0 + 0.5) * sy - 0.5], axis=1)
    width_grid = face_width * sx

    # where facial hair may be: the face's hull below the nose base, and the chin's (the jaw below the mouth's
    # corners) moved down under the jaw; never beside the jaw, where long hair hangs
    hull = _hull(local[:NUM_MESH_VERTICES], (grid_h, grid_w))
    jaw = local[sorted({i for pair in FACE_OVAL for i in pair})]
    chin = jaw[jaw[:, 1] > local[list(MOUTH_CORNERS), 1].max()]
    drop = np.array([0.0, BEARD_BELOW * width_grid])
    under = _hull(np.concatenate([chin, chin + drop]), (grid_h, grid_w))
    cols = np.arange(grid_w, dtype=np.float32)[None, :]
    under[np.broadcast_to(np.abs(cols - float(local[CHIN, 0])) > NECK_HALF_WIDTH * width_grid, under.shape)] = 0
    lower = hull | under
    rows = np.arange(grid_h, dtype=np.float32)[:, None]
    feather = max(0.04 * width_grid, 1.0)
    below_nose = np.clip((rows - local[NOSE_BASE, 1]) / feather, 0.0, 1.0)
    lips = np.zeros((grid_h, grid_w), np.uint8)
    cv2.fillPoly(lips, [np.round(local[list(OUTER_LIPS)]).astype(np.int32)], 1)
    grow = max(1, round(LIPS_GROW * width_grid))
    lips = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    region = cv2.GaussianBlur((lower & (1 - lips)).astype(np.float32), (0, 0), feather / 2.0) * below_nose
    person_grid = None
    if person is not None:
        person_grid = cv2.resize(person(x0, y0, x1, y1), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
        region *= person_grid
    if hair is not None:  # the head's hair (long hair beside the jaw) is not facial hair
        region *= 1.0 - np.clip(hair((x0, y0, x1, y1), (grid_h, grid_w)), 0.0, 1.0)

    # the cheeks' skin: inside the hull between the lower lids and the nose base, beside the nose
    centre = float(local[NOSE_BASE, 0])
    cols = np.arange(grid_w, dtype=np.float32)[None, :]
    cheeks = (
        (hull > 0)
        & (rows > local[list(EYE_BOTTOMS), 1].max() + feather)
        & (rows < local[NOSE_BASE, 1])
        & (np.abs(cols - centre) > 0.15 * width_grid)
    )
    if cheeks.sum() < 20:
        return None
    # each pixel's facial-hair share at the photo's resolution (stubble is finer than the grid), read against
    # the cheeks' skin: its redness, lightness and fine texture
    size = (x1 - x0, y1 - y0)
    cheeks_fine = cv2.resize(cheeks.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    fine = _Measures(crop, face_width)
    skin = fine.skin(cheeks_fine)
    if skin is None:  # a grey photo, or a light too coloured to tell hair by its colour
        return None
    # under the jaw, outside the face, only textured hair counts: a dark collar or shirt against the chin is as
    # dark and as unred as a beard but smooth, and was filled with skin as a flat block below a child's chin
    outside = cv2.resize((under & (1 - hull)).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    fine_share = fine.hair_share(skin, outside) * cv2.resize(region, size, interpolation=cv2.INTER_LINEAR)
    del fine, outside  # the measures are the crop's size in float32, three times over
    share = cv2.resize(fine_share, (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    share = np.clip(SPREAD * cv2.GaussianBlur(share, (0, 0), 1.0), 0.0, 1.0) * region
    if share.max() < 0.2:
        return None
    redness = _redness(grid)
    skin_red = skin[0]

    # the fill: the nearby skin (skin-coloured, not hair), fine near the beard's edge and coarse inside it
    skin_like = np.clip(1.0 - np.abs(redness - skin_red) / (REDNESS_LOSS[1] * skin_red), 0.0, 1.0) * (1.0 - share)
    if person_grid is not None:
        skin_like *= person_grid
    values = grid.astype(np.float32)
    fills, weights = [], []
    for fraction in FILL_SCALES:
        sigma = max(fraction * width_grid, 1.0)
        weight = cv2.GaussianBlur(skin_like, (0, 0), sigma)
        blurred = cv2.GaussianBlur(values * skin_like[..., None], (0, 0), sigma)
        fills.append(blurred / np.maximum(weight, 1e-4)[..., None])
        weights.append(weight)
    trust = np.clip(weights[0] / 0.3, 0.0, 1.0)[..., None]
    fill = trust * fills[0] + (1.0 - trust) * fills[1]
    fill = np.where((weights[1] > 1e-3)[..., None], fill, values)

    # the beard's whole patch goes, the skin between its hairs too: the share is spread a little and held
    fine_share = np.maximum(fine_share, cv2.resize(share, size, interpolation=cv2.INTER_LINEAR))
    fine_share *= np.float32(kept)
    change = cv2.resize(fill, size, interpolation=cv2.INTER_LINEAR)  # the fill, then in place what it changes
    change -= crop
    change *= fine_share[..., None]
    share_bytes = np.round(255.0 * np.clip(fine_share, 0.0, 1.0)).astype(np.uint8)
    return Beard((x0, y0, x1, y1), np.round(change, out=change).astype(np.int16), share_bytes)


def change_around(
    change: np.ndarray, hair: np.ndarray, lifted: np.ndarray, mask: np.ndarray, points: np.ndarray
) -> np.ndarray:
    """(h, w, C) an edit's `change` on the face's grid, where the facial hair is `lifted` (0..1), replaced by the
    change of the skin around it (`mask`, the face, less the `hair`; a normalised convolution over AROUND_SCALE
    face widths; `points`: the face's landmarks on the grid). A lifted beard is the skin around it, so it changes
    as that skin does: kept unbrightened, under a child's brighter skin around it, it was a grey band along a
    man's jaw; brightened as a beardless lip is, a glowing patch."""
    if not np.any(lifted):
        return change
    face_width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    sigma = max(AROUND_SCALE * face_width, 1.0)
    weight = (np.clip(mask, 0.0, 1.0) * (1.0 - np.clip(hair, 0.0, 1.0))).astype(np.float32)
    around = cv2.GaussianBlur(change * weight[..., None], (0, 0), sigma)
    around /= np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-3)[..., None]
    return change + lifted[..., None] * (around - change)


def _hull(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 1 inside the convex hull of (n, 2) grid points."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(points.astype(np.float32))).astype(np.int32), 1)
    return mask


def _redness(rgb: np.ndarray) -> np.ndarray:
    """log(R / G) per pixel: skin's redness, which its own shade keeps and hair lacks."""
    red, green = (rgb[..., channel].astype(np.float32) for channel in (0, 1))  # not the blue: a third less memory
    red += np.float32(4.0)
    green += np.float32(4.0)
    red /= green
    return np.log(red, out=red)


class _Measures:
    """What tells facial hair from skin, per pixel of a photo crop: redness (log R/G, which skin keeps in its
    own shade and hair lacks), lightness (its local mean: strands alternate), and fine texture (hair's strands
    against skin's smoothness, shade included: the local energy of a fine band)."""

    def __init__(self, rgb: np.ndarray, face_width: float) -> None:
        self.redness = _redness(rgb)
        values = rgb.astype(np.float32)
        values *= np.float32(1.0 / 255.0)
        lightness = cv2.cvtColor(values, cv2.COLOR_RGB2LAB)[..., 0].copy()  # not a view holding a and b too
        del values
        self.lightness = local_mean(lightness, face_width)
        band = fine_band(lightness, face_width, in_place=True)
        band *= band
        self.texture = local_mean(band, face_width)
        self.texture += np.float32(0.25)

    def skin(self, cheeks: np.ndarray) -> tuple[float, float, float] | None:
        """The cheeks' (redness, lightness, texture), medians; None where skin has no redness to tell by."""
        if cheeks.sum() < 20:
            return None
        red = float(np.median(self.redness[cheeks]))
        if red <= 0.02:
            return None
        return red, float(np.median(self.lightness[cheeks])), float(np.median(self.texture[cheeks]))

    def hair_share(self, skin: tuple[float, float, float], textured: np.ndarray | float = 0.0) -> np.ndarray:
        """0..1: how surely each pixel is facial hair: darker than the cheeks, and less red or rougher; or (grey
        and white hair, at any lightness) both less red and rougher. Where `textured` (0..1 per pixel) it must be
        rougher in any case (smooth dark cloth is neither red nor light either)."""
        red, light, texture = skin
        loss = (red - self.redness) / red
        pale = np.clip((loss - REDNESS_LOSS[0]) / (REDNESS_LOSS[1] - REDNESS_LOSS[0]), 0.0, 1.0)
        rough = np.clip((np.log(self.texture / texture) - ROUGHER[0]) / (ROUGHER[1] - ROUGHER[0]), 0.0, 1.0)
        dark = np.clip((light - self.lightness - DARKER[0]) / (DARKER[1] - DARKER[0]), 0.0, 1.0)
        share = np.maximum(np.maximum(pale, rough) * dark, pale * rough)
        return (share * (1.0 - textured * (1.0 - rough))).astype(np.float32)
