"""Glasses on a person's own photos: where they are, and where an edit put in plainly leaves them out.

An own photo's glasses are read once, with the face parser, when the person is made (:func:`glasses_view`): the
view keeps only their coarse part (:func:`without_glasses`), the person keeps how much of the eyes' surround they
cover (:func:`glasses_cover`) and where they are (a map in the template). Put in plainly (:mod:`.own_photos`), a
worn pair's coarse part is a pair of frames, and the parser's label covers the lenses and the eyes behind them
(tinted, magnified): so an own face in glasses is put in plainly only outside its glasses' band
(:func:`glasses_band`), and inside it the own faces without glasses are, or else the general change.
"""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.frames import Template, template_blur, template_map, template_width
from ganime_age.engine.parsing import Parser, parse_square
from ganime_age.faces.parse import GLASSES

# face widths the eyes' surround reaches beyond their region (:func:`glasses_zone`), and how much of it an own photo's
# glasses cover (:func:`glasses_cover`) from which it wears them (FG-NET 001's photos: 0.59-0.87 in glasses, under
# 0.002 without; 029's thin wire frames 0.06): put in plainly, a worn pair's coarse frames (:func:`without_glasses`)
# drew glasses
GLASSES_ZONE = 0.1
GLASSES_WORN = 0.02
GLASSES_GROW = 0.03  # face widths: the parser's glasses grown and softened by this in an own face's view (its label
# often ends inside the frames' rims)
# face widths an own face's glasses (:func:`glasses_view`) are grown by, and softened by half as much, where it is not
# put in plainly (:func:`glasses_band`): a frame's shadow and a rim the label misses lie outside it, and a band's
# edge as sharp as the label's was a seam between the own face and the general change
GLASSES_BAND = 0.06


def glasses_zone(template: Template) -> np.ndarray:
    """(R, R) 0..1 the eyes' surround, where a pair of glasses sits: the eyes' region grown by GLASSES_ZONE face
    widths, softened by half as much."""
    return _grown(template, (template.regions["eyes_wide"] > 0.5).astype(np.uint8), GLASSES_ZONE)


def glasses_cover(template: Template, glasses: np.ndarray) -> float:
    """How much (0..1) of the eyes' surround (:func:`glasses_zone`) a face's glasses (:func:`glasses_view`) cover."""
    zone = glasses_zone(template)
    return float(np.clip((glasses * zone).sum() / max(float(zone.sum()), 1e-6), 0.0, 1.0))


def glasses_view(template: Template, rgb: np.ndarray, points: np.ndarray, parse: Parser) -> np.ndarray:
    """(R, R) float32 0..1 where the face's glasses are in the template (the parser's, grown by GLASSES_GROW face
    widths and softened as much: a frame's edge is wider than its label)."""
    (x0, y0, x1, _), _, labels, inside = parse_square(rgb, points, parse)
    glasses = ((labels == GLASSES) & (inside > 0)).astype(np.float32)
    if not glasses.any():
        return np.zeros((template.size, template.size), np.float32)
    scale = labels.shape[0] / (x1 - x0)
    where = (template_map(template, points) - np.array([x0, y0], np.float32)) * np.float32(scale)
    view = cv2.remap(glasses, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderValue=0.0)
    sigma = GLASSES_GROW * template_width(template)
    return np.clip(2.0 * cv2.GaussianBlur(view, (0, 0), sigma), 0.0, 1.0)


def without_glasses(template: Template, view: np.ndarray, glasses: np.ndarray, detail: float) -> np.ndarray:
    """`view` with its detail finer than `detail` face widths taken out where `glasses` are: an own photo's frames,
    given as the person's fine detail, were drawn as a ghost of glasses round the eyes of an edit (FG-NET 001's child
    photo made 29 with his adult photos, some in glasses). Blurred as finely as a child's target blurs all own
    detail (:data:`.own_photos.OWN_DETAIL`), the frames are a faint shade, as before own detail was finer."""
    if not glasses.any():
        return view
    colours = view.astype(np.float32)
    coarse = template_blur(template, colours, detail)
    return np.clip(np.round(colours + glasses[..., None] * (coarse - colours)), 0, 255).astype(np.uint8)


def glasses_band(template: Template, worn: np.ndarray, maps: np.ndarray | None) -> np.ndarray | None:
    """(R, R) 0..1 where an edit put in plainly leaves out own faces that wear glasses (`worn`, (N,) bool: their
    :func:`glasses_cover` from GLASSES_WORN): the union of their glasses (`maps`, (N, R, R) uint8 of
    :func:`glasses_view`) grown by GLASSES_BAND face widths; the whole face where their maps are unknown (a person
    saved before them). None where none of them wears glasses."""
    if not np.any(worn):
        return None
    if maps is None:
        return np.ones((template.size, template.size), np.float32)
    union = (np.asarray(maps)[np.asarray(worn)].max(axis=0) >= 128).astype(np.uint8)
    return _grown(template, union, GLASSES_BAND)


def _grown(template: Template, mask: np.ndarray, reach_widths: float) -> np.ndarray:
    """(R, R) 0..1 a uint8 template mask grown by `reach_widths` face widths and softened by half as much."""
    reach = reach_widths * template_width(template)
    size = 2 * round(reach) + 1
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))).astype(np.float32)
    return np.clip(cv2.GaussianBlur(grown, (0, 0), reach / 2.0), 0.0, 1.0)
