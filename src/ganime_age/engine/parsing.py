"""What each pixel around one face is, from the face parser: where this person's head, neck and hair are.

The hair layer guessed the person and its hair from colour models inside the selfie segmenter's silhouette, and
a guess takes the wrong pixels on the photos people upload: a cap, a headscarf, a dark shirt, the man in front
greyed as hair, a white shirt darkened as white hair regained its colour. The parser (:mod:`ganime_age.faces.parse`)
names each pixel of a square around the face; this face's person is the skin, features, ears, neck and hair in
the parse that touch its own face (a neighbour's head in the square is another component, kept out), never a
cloth, hat, earring, necklace or the background; nor the parse's hair that looks like the wall beside it and that
the person segmenter leaves out (a grainy scan's wall the parser calls hair), but for where the ears are. Both masks
are grown a little (the parser's outline runs a pixel or two inside a head) and feathered, and fade to nothing
before the square's edge: no edit ends in a straight line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.frames import resample_grid
from ganime_age.engine.scene import Segmenter, read_grid
from ganime_age.faces.parse import (
    BACKGROUND,
    CLOTH,
    EARRING,
    HAIR,
    HAT,
    NECKLACE,
)
from ganime_age.faces.topology import (
    CHIN,
    FACE_LEFT,
    FACE_RIGHT,
    LEFT_EYE_CONTOUR,
    NUM_MESH_VERTICES,
    RIGHT_EYE_CONTOUR,
)

Parser = Callable[[np.ndarray], np.ndarray]  # uint8 RGB square crop -> (n, n) uint8 CelebAMask-HQ labels

SQUARE = 3.2  # face widths: the side of the square parsed around a face (the hair layer's box fits inside)
ABOVE, BELOW = 0.9, 0.8  # face widths above the mesh's top and below the chin that the square is centred between
NOT_PERSON = (BACKGROUND, EARRING, NECKLACE, CLOTH, HAT)  # what an edit never changes
STILL = (CLOTH, HAT)  # what the face's warp never moves: a collar moved with the chin was cut where the edit fades out
STILL_REACH = 0.04  # face widths: the warp fades out over about this much before a shirt or a hat
HOLE_MOST = 0.02  # face widths squared: a hole in the head's parse this small or smaller is the head's own
GROW = 0.02  # face widths: the parse's person grown by this (its outline runs inside a head's)
FEATHER = 0.012  # face widths: and feathered this softly; the hair is feathered as softly but never grown (grown,
# its greying reached past the hair's outline and drew a grey halo on the wall beside it)
EDGE = 0.04  # of the square's side: the masks fade to nothing over this much before its edge
BACKGROUND_REACH = (0.1, 0.4)  # face widths from the hair: the background there is what hair must not look like
MIN_BACKGROUND_PIXELS = 200  # of the parser's square: fewer, and the background says nothing
BACKGROUND_SPREAD = 3.0  # Lab units added to the background's spread (a flat wall is not a point)
UNLIKE = (1.5, 3.0)  # the background's standard deviations from its colour: hair there is unsure, from here sure
BACKGROUND_NEAR = 0.25  # face widths: the reach of the wall a pixel is compared with
NEAR_ENOUGH = 0.05  # of the most wall near any pixel: this much near, and its wall is half its own, half the whole
EYES_FREE = 0.05  # face widths above the eyes' tops: the lowest the parser's hair is taken on a face
SILHOUETTE_INSIDE = 0.02  # face widths: hair like its wall is hair this far inside the person segmenter's silhouette
EAR_PLACE = (0.08, 0.1, 0.12, 0.22)  # face widths: an ear's centre outward of and below the outline's side, its half
# width and half height
WALL_SURE = 0.5  # how sure hair is (not the wall), and the segmenter of the person, below which it is the wall
SILHOUETTE_AGREES = (0.6, 0.85)  # the share of the parse's hair in the silhouette: none trusted, all trusted


@dataclass
class HeadParse:
    """One face's parse: masks on the parser's square grid spanning the photo box `box` (which may reach past the
    photo's edges)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the square (photo pixels)
    person: np.ndarray  # (n, n) float32 0..1: this face's head, neck and hair (never cloth, hat, jewellery)
    hair: np.ndarray  # (n, n) float32 0..1: this face's hair
    anyone: np.ndarray  # (n, n) float32 0..1: any person (clothes and neighbours too): the rest is background
    still: np.ndarray  # (n, n) float32 0..1: a shirt or a hat, which the face's warp never moves
    face_width: float  # photo pixels

    def person_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """:attr:`person` at the photo pixels of the box (0 outside the square)."""
        return read_grid(self.person, self.box, (x0, y0, x1, y1))

    def hair_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """:attr:`hair` at the photo pixels of the box (0 outside the square)."""
        return read_grid(self.hair, self.box, (x0, y0, x1, y1))

    def on_grid(self, name: str, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
        """The mask `name` ("person", "hair", "anyone" or "still") on a grid of `shape` spanning the photo box `box`."""
        return resample_grid(getattr(self, name), self.box, box, shape)

    def movable_on(self, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray | None:
        """(h, w) float32 on a grid of `shape` spanning the photo box `box`: 0 on a shirt or a hat and rising to 1 over
        about STILL_REACH face widths away from it, where the face's warp may move the photo (None: nothing is still).
        The edit fades out where the person ends: a collar the warp moved was cut there, into two collars."""
        if not self.still.any():
            return None
        still = self.on_grid("still", box, shape)
        sigma = max(STILL_REACH * self.face_width * shape[1] / max(box[2] - box[0], 1), 0.7)
        return np.clip(1.0 - 2.0 * cv2.GaussianBlur(still, (0, 0), sigma), 0.0, 1.0)


def parse_head(rgb: np.ndarray, points: np.ndarray, parse: Parser, segment: Segmenter | None = None) -> HeadParse:
    """The parse of the face with landmarks `points` (photo pixels) in the uint8 RGB photo `rgb`. `segment`, the
    selfie segmenter, settles the parse's hair that looks like the wall beside it (without it, that hair fades)."""
    mesh = np.asarray(points, np.float64)[:NUM_MESH_VERTICES, :2]
    face_width = max(float(np.linalg.norm(mesh[FACE_RIGHT] - mesh[FACE_LEFT])), 8.0)
    (x0, y0, x1, y1), crop, labels, inside_photo = parse_square(rgb, points, parse)
    size = labels.shape[0]
    scale = size / (x1 - x0)
    person = ~np.isin(labels, NOT_PERSON) & (inside_photo > 0)
    width_px = face_width * scale
    own = _own_components(person, (mesh - (x0, y0)) * scale)
    hair = own & (labels == HAIR)
    fade = _edge_fade(size)
    anyone = (labels != BACKGROUND) & (inside_photo > 0)
    wall = (labels == BACKGROUND) & (inside_photo > 0)
    square = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    sure = _unlike_background(square, hair, wall, width_px)
    if segment is not None:
        silhouette = segment(square)
        sure = np.maximum(sure, _inside_silhouette(silhouette, hair, width_px))
        # the parse's hair that looks like the wall and lies outside the segmenter's person is the wall for the
        # person too: kept in, the face's warp moved the black wall round a bald head (a child's smaller head,
        # FG-NET 035A23b made 6: 3.9% of the photo changed). The segmenter's say is needed: by colour alone, part of a
        # baby's dark hair before a dark curtain was left out, and the grown head's outline cut a pale patch into it
        walled = hair & (sure < WALL_SURE) & (silhouette < WALL_SURE)
        own &= ~(walled & ~_ears_place((mesh - (x0, y0)) * scale, width_px, size))
    return HeadParse(
        (x0, y0, x1, y1),
        _grown(own, width_px, GROW, HOLE_MOST * width_px**2) * fade,
        _grown(hair, width_px, 0.0) * fade * sure,
        anyone.astype(np.float32),
        (np.isin(labels, STILL) & (inside_photo > 0)).astype(np.float32) * fade,
        face_width,
    )


def parse_square(
    rgb: np.ndarray, points: np.ndarray, parse: Parser
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]:
    """The parser's labels of the square about the face with landmarks `points`: its photo box (x0, y0, x1, y1;
    it may reach past the photo's edges), the uint8 RGB crop parsed (the photo's border repeated beyond its edges),
    the (n, n) labels, and (n, n) uint8 1 where the labels lie on the photo (the padding's are its border's echo)."""
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
    scale = labels.shape[0] / side
    inside_photo = np.zeros(labels.shape, np.uint8)
    inside_photo[
        int(np.floor((cy0 - y0) * scale)) : int(np.ceil((cy1 - y0) * scale)),
        int(np.floor((cx0 - x0) * scale)) : int(np.ceil((cx1 - x0) * scale)),
    ] = 1
    return (x0, y0, x1, y1), crop, labels, inside_photo


def fringe_floor(mesh: np.ndarray, face_width: float) -> float:
    """The lowest row (photo pixels) down to which the parser's hair is hair on the face with landmarks `mesh`,
    `face_width` pixels wide: above the eyes. A fringe hides the brows, and the mesh puts them under it: kept out
    from above the brows, a fringe's lower half stayed a dark band across the forehead under greyed hair (FG-NET
    057A12 made 75)."""
    return float(mesh[list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR), 1].min()) - EYES_FREE * face_width


def _unlike_background(rgb: np.ndarray, hair: np.ndarray, background: np.ndarray, face_width: float) -> np.ndarray:
    """(n, n) float32 0..1: how surely each pixel's colour is not the background's beside the head (1 where too
    little background is in view to say). In a dark, grainy scan the parser called the black wall around a bald
    head hair, and greying drew a grey cape around it; hair of the wall's own colour is unsure, and fades out.

    The wall is read where it is, near each pixel: one colour model for the whole wall (a white wall on one side,
    a dark curtain on the other) spread so wide that a man's dark curly hair before both was unsure everywhere and
    never greyed."""

    if not hair.any():
        return np.ones(hair.shape, np.float32)
    # the wall a little way off the hair: right beside it, a tight crop's "background" is often hair the parser
    # gave up on, and hair measured against itself faded out on every UTKFace chip
    off_hair = cv2.distanceTransform((~hair).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near, far = (max(1, round(reach * face_width)) for reach in BACKGROUND_REACH)
    wall = (off_hair > near) & (off_hair <= far) & background
    if int(wall.sum()) < MIN_BACKGROUND_PIXELS:
        return np.ones(hair.shape, np.float32)
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)
    mean, inverse = _local_colour_model(lab, wall, BACKGROUND_NEAR * face_width)
    away = lab - mean
    squared = np.zeros(hair.shape, np.float32)
    for i in range(3):  # the quadratic form away' inverse away, its six distinct terms
        squared += inverse[..., i, i] * away[..., i] ** 2
        for j in range(i + 1, 3):
            squared += 2.0 * inverse[..., i, j] * away[..., i] * away[..., j]
    distance = np.sqrt(np.maximum(squared, 0.0))
    unlike = np.clip((distance - UNLIKE[0]) / (UNLIKE[1] - UNLIKE[0]), 0.0, 1.0).astype(np.float32)
    return cv2.GaussianBlur(unlike, (0, 0), max(FEATHER * face_width, 0.7))


def _inside_silhouette(silhouette: np.ndarray, hair: np.ndarray, face_width: float) -> np.ndarray:
    """(n, n) float32 0..1: the person segmenter's `silhouette`, shrunk by SILHOUETTE_INSIDE and feathered, as far
    as it holds the parse's `hair` (bool). Dark hair before a dark curtain looks like it, and the segmenter sees the
    curly hair as the person's and the curtain not. But the parse of a grainy scan can call the whole black wall
    around a bald head hair, and the segmenter rounds a bald head out with a margin of wall: there most of the
    parse's hair lies outside the silhouette (FG-NET 035A23b: 47%, a baby before a curtain 37%; hair 91% or more
    inside on every other scan), and the segmenter says nothing."""
    agreed = float((silhouette[hair] > 0.5).mean()) if hair.any() else 0.0
    trusted = float(np.clip((agreed - SILHOUETTE_AGREES[0]) / (SILHOUETTE_AGREES[1] - SILHOUETTE_AGREES[0]), 0, 1))
    if trusted <= 0.0:
        return np.zeros(hair.shape, np.float32)
    radius = max(1, round(SILHOUETTE_INSIDE * face_width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    inside = cv2.erode((silhouette > 0.5).astype(np.uint8), kernel).astype(np.float32) * np.float32(trusted)
    return cv2.GaussianBlur(inside, (0, 0), max(FEATHER * face_width, 0.7))


def _local_colour_model(lab: np.ndarray, where: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """((n, n, 3), (n, n, 3, 3)) float32: the mean and the inverse covariance (BACKGROUND_SPREAD added) of the Lab
    colours at `where` (bool) near each pixel (Gaussian weights of sigma `reach` pixels), drawn towards the whole
    of `where`'s where little of it is near. Smooth at that scale, so read on a grid a sixth of `reach` apart."""
    size = lab.shape[:2]
    step = max(1, int(reach / 6.0))
    weight = where.astype(np.float32)
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    moments = (
        [weight] + [lab[..., i] * weight for i in range(3)] + [lab[..., i] * lab[..., j] * weight for i, j in pairs]
    )
    rows, cols = size[0] // step * step, size[1] // step * step  # block means (cv2's area resize takes 4 channels)
    small = np.dstack(moments)[:rows, :cols].reshape(rows // step, step, cols // step, step, 10).mean(axis=(1, 3))
    near = [cv2.GaussianBlur(np.ascontiguousarray(small[..., k]), (0, 0), max(reach / step, 0.5)) for k in range(10)]
    amount = near[0]
    share = amount / (amount + np.float32(NEAR_ENOUGH * amount.max()))
    scale = 1.0 / np.maximum(amount, 1e-6)
    samples = lab[where]
    whole_mean = samples.mean(axis=0)
    whole_covariance = np.cov(samples, rowvar=False)
    local_mean = np.stack([near[1 + i] * scale for i in range(3)], -1)
    mean = share[..., None] * local_mean + (1.0 - share[..., None]) * whole_mean
    covariance = np.empty((*share.shape, 3, 3), np.float32)
    for k, (i, j) in enumerate(pairs):
        local = near[4 + k] * scale - local_mean[..., i] * local_mean[..., j]
        covariance[..., i, j] = covariance[..., j, i] = share * local + (1.0 - share) * whole_covariance[i, j]
    inverse = np.linalg.inv(covariance + np.eye(3, dtype=np.float32) * np.float32(BACKGROUND_SPREAD**2))
    width, height = size[1], size[0]
    full_mean = cv2.resize(mean.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    full_inverse = cv2.resize(
        inverse.reshape(*share.shape, 9).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
    )
    return full_mean, full_inverse.reshape(height, width, 3, 3)


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


def _ears_place(mesh: np.ndarray, face_width: float, size: int) -> np.ndarray:
    """(size, size) bool: where a face's ears are, beside its outline between the brows and the mouth (EAR_PLACE).
    The parser calls an ear in a grainy scan hair, and an ear looks like a grey curtain behind it as much as hair
    does: left out as the wall, a grown head's ear was clipped where it moved."""
    place = np.zeros((size, size), np.uint8)
    out, down, across, tall = (v * face_width for v in EAR_PLACE)
    centre = mesh[[FACE_LEFT, FACE_RIGHT], :2].mean(axis=0)
    for side in (FACE_LEFT, FACE_RIGHT):
        point = mesh[side, :2]
        outward = (point - centre) / max(float(np.linalg.norm(point - centre)), 1e-6)
        x, y = point + out * outward + (0.0, down)
        cv2.ellipse(place, (round(x), round(y)), (max(round(across), 1), max(round(tall), 1)), 0.0, 0, 360, 1, -1)
    return place > 0


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
