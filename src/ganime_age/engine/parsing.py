"""What each pixel around one face is, from the face parser: where this person's head, neck and hair are.

The hair layer guessed the person and its hair from colour models inside the selfie segmenter's silhouette, and
a guess takes the wrong pixels on the photos people upload: a cap, a headscarf, a dark shirt, the man in front
greyed as hair, a white shirt darkened as white hair regained its colour. The parser (:mod:`ganime_age.faces.parse`)
names each pixel of a square around the face; this face's person is the skin, features, ears, neck and hair in
the parse that touch its own face (a neighbour's head in the square is another component, kept out), never a
cloth, hat, earring, necklace or the background. Both masks are grown a little (the parser's outline runs a pixel
or two inside a head) and feathered, and fade to nothing before the square's edge: no edit ends in a straight line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.frames import resample_grid
from ganime_age.engine.scene import read_grid
from ganime_age.faces.parse import (
    BACKGROUND,
    CLOTH,
    EARRING,
    HAIR,
    HAT,
    NECKLACE,
)
from ganime_age.faces.topology import CHIN, FACE_LEFT, FACE_RIGHT, NUM_MESH_VERTICES

Parser = Callable[[np.ndarray], np.ndarray]  # uint8 RGB square crop -> (n, n) uint8 CelebAMask-HQ labels

SQUARE = 3.2  # face widths: the side of the square parsed around a face (the hair layer's box fits inside)
ABOVE, BELOW = 0.9, 0.8  # face widths above the mesh's top and below the chin that the square is centred between
NOT_PERSON = (BACKGROUND, EARRING, NECKLACE, CLOTH, HAT)  # what an edit never changes
HOLE_MOST = 0.02  # face widths squared: a hole in the head's parse this small or smaller is the head's own
GROW = 0.02  # face widths: the parse's person grown by this (its outline runs inside a head's)
FEATHER = 0.012  # face widths: and feathered this softly; the hair is feathered as softly but never grown (grown,
# its greying reached past the hair's outline and drew a grey halo on the wall beside it)
EDGE = 0.04  # of the square's side: the masks fade to nothing over this much before its edge
BACKGROUND_REACH = (0.1, 0.4)  # face widths from the hair: the background there is what hair must not look like
MIN_BACKGROUND_PIXELS = 200  # of the parser's square: fewer, and the background says nothing
BACKGROUND_SPREAD = 3.0  # Lab units added to the background's spread (a flat wall is not a point)
UNLIKE = (1.25, 2.5)  # the background's standard deviations from its colour: hair there is unsure, from here sure


@dataclass
class HeadParse:
    """One face's parse: masks on the parser's square grid spanning the photo box `box` (which may reach past the
    photo's edges)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the square (photo pixels)
    person: np.ndarray  # (n, n) float32 0..1: this face's head, neck and hair (never cloth, hat, jewellery)
    hair: np.ndarray  # (n, n) float32 0..1: this face's hair
    anyone: np.ndarray  # (n, n) float32 0..1: any person (clothes and neighbours too): the rest is background

    def person_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """:attr:`person` at the photo pixels of the box (0 outside the square)."""
        return read_grid(self.person, self.box, (x0, y0, x1, y1))

    def hair_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """:attr:`hair` at the photo pixels of the box (0 outside the square)."""
        return read_grid(self.hair, self.box, (x0, y0, x1, y1))

    def on_grid(self, name: str, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
        """The mask `name` ("person", "hair" or "anyone") on a grid of `shape` spanning the photo box `box`."""
        return resample_grid(getattr(self, name), self.box, box, shape)


def parse_head(rgb: np.ndarray, points: np.ndarray, parse: Parser) -> HeadParse:
    """The parse of the face with landmarks `points` (photo pixels) in the uint8 RGB photo `rgb`."""
    height, width = rgb.shape[:2]
    mesh = np.asarray(points, np.float64)[:NUM_MESH_VERTICES, :2]
    face_width = max(float(np.linalg.norm(mesh[FACE_RIGHT] - mesh[FACE_LEFT])), 8.0)
    centre_x = float(mesh[:, 0].mean())
    centre_y = 0.5 * (float(mesh[:, 1].min()) - ABOVE * face_width + float(mesh[CHIN, 1]) + BELOW * face_width)
    side = max(round(SQUARE * face_width), 16)
    x0, y0 = round(centre_x - side / 2), round(centre_y - side / 2)
    x1, y1 = x0 + side, y0 + side
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    crop = cv2.copyMakeBorder(
        np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE
    )
    labels = parse(crop)
    size = labels.shape[0]
    scale = size / side
    inside_photo = np.zeros(labels.shape, np.uint8)  # the padding's labels are the border's echo, not the photo
    inside_photo[
        int(np.floor((cy0 - y0) * scale)) : int(np.ceil((cy1 - y0) * scale)),
        int(np.floor((cx0 - x0) * scale)) : int(np.ceil((cx1 - x0) * scale)),
    ] = 1
    person = ~np.isin(labels, NOT_PERSON) & (inside_photo > 0)
    width_px = face_width * scale
    own = _own_components(person, (mesh - (x0, y0)) * scale)
    hair = own & (labels == HAIR)
    fade = _edge_fade(size)
    anyone = (labels != BACKGROUND) & (inside_photo > 0)
    wall = (labels == BACKGROUND) & (inside_photo > 0)
    sure = _unlike_background(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), hair, wall, width_px)
    return HeadParse(
        (x0, y0, x1, y1),
        _grown(own, width_px, GROW, HOLE_MOST * width_px**2) * fade,
        _grown(hair, width_px, 0.0) * fade * sure,
        anyone.astype(np.float32),
    )


def _unlike_background(rgb: np.ndarray, hair: np.ndarray, background: np.ndarray, face_width: float) -> np.ndarray:
    """(n, n) float32 0..1: how surely each pixel's colour is not the background's beside the head (1 where too
    little background is in view to say). In a dark, grainy scan the parser called the black wall around a bald
    head hair, and greying drew a grey cape around it; hair of the wall's own colour is unsure, and fades out."""

    def grown(reach: float) -> np.ndarray:
        radius = max(1, round(reach * face_width))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
        return cv2.dilate(hair.astype(np.uint8), kernel) > 0

    # the wall a little way off the hair: right beside it, a tight crop's "background" is often hair the parser
    # gave up on, and hair measured against itself faded out on every UTKFace chip
    wall = grown(BACKGROUND_REACH[1]) & ~grown(BACKGROUND_REACH[0]) & background
    if int(wall.sum()) < MIN_BACKGROUND_PIXELS:
        return np.ones(hair.shape, np.float32)
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)
    samples = lab[wall]
    mean = samples.mean(axis=0)
    inverse = np.linalg.inv(np.cov(samples, rowvar=False) + np.eye(3) * BACKGROUND_SPREAD**2)
    away = lab - mean
    distance = np.sqrt(np.einsum("...i,ij,...j->...", away, inverse, away))
    unlike = np.clip((distance - UNLIKE[0]) / (UNLIKE[1] - UNLIKE[0]), 0.0, 1.0).astype(np.float32)
    return cv2.GaussianBlur(unlike, (0, 0), max(FEATHER * face_width, 0.7))


def _own_components(person: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """The connected parts of `person` (bool) that touch the face's own mesh (in the square's pixels): a
    neighbour's head in the square is a part of its own."""
    count, components = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
    hull = np.zeros(person.shape, np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(mesh.astype(np.float32))).astype(np.int32), 1)
    touching = np.unique(components[(hull > 0) & person])
    keep = np.zeros(count, bool)
    keep[touching] = True
    keep[0] = False
    return keep[components] | ((hull > 0) & person)


def _holes_filled(own: np.ndarray, most: float) -> np.ndarray:
    """`own` (bool) with its holes of at most `most` pixels filled: a spot inside the head that is no part of it
    (an inlet of wall between a cheek and the hair, closed by the person's growth; an earring on a lobe) moves with
    the head as the edit's warp moves it. Left out, the fade kept the photo's own pixels there, which the warp had
    moved: a square of the old ear and wall on an aged baby's cheek (FG-NET 001A02 made 75)."""
    _, components, stats, _ = cv2.connectedComponentsWithStats((~own).astype(np.uint8), connectivity=4)
    height, width = own.shape
    x, y, w, h, area = (stats[:, k] for k in range(5))
    enclosed = (x > 0) & (y > 0) & (x + w < width) & (y + h < height) & (area <= most)
    enclosed[0] = False  # the label of `own` itself
    return own | enclosed[components]


def _grown(mask: np.ndarray, face_width: float, grow: float, holes: float = 0.0) -> np.ndarray:
    """float32 0..1: `mask` grown by `grow` face widths, its holes of at most `holes` pixels then filled
    (:func:`_holes_filled`), and feathered by FEATHER."""
    grown = mask.astype(np.uint8)
    radius = round(grow * face_width)
    if radius > 0:
        grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    if holes > 0.0:
        grown = _holes_filled(grown > 0, holes).astype(np.uint8)
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), max(FEATHER * face_width, 0.7))


def _edge_fade(size: int) -> np.ndarray:
    """(size, size) float32: 1 inside, falling smoothly to 0 at the square's edge over EDGE of its side."""
    ramp = np.clip(np.minimum(np.arange(size), np.arange(size)[::-1]) / max(EDGE * size, 1.0), 0.0, 1.0)
    ramp = (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)
    return ramp[:, None] * ramp[None, :]
