"""An expression's skin, from real people making it.

A warp moves the landmarks where the driver's (or the sliders') are, but a face that only moves its landmarks
does not read as the expression: the skin between them bulges, bunches and folds, and the landmarker itself reads
a warped smile or frown well short of what it was moved to. CFEE photographs each person neutral and making each
expression, so every such pair shows one real person's change, and each is measured in the engine's template in
two parts: how the skin moved beyond the landmarks (a dense flow: a raised cheek's bulge, brows bunching, lids
folding), and how it looked once that motion is taken out (folds, furrows, creases). Measured so, the look holds
no edge of a feature that merely moved (a brow's, which painted as a ghost brow), and only its brightness is kept,
with its broader part (the pair's light, and the shading of the moved skin, which depends on the light) removed:
it is the same in every channel, a log change, so it darkens this face's own skin in this photo's own light.

An edit takes the few pairs whose AU change is most like its own (the person's sex where it is clear), each
scaled to it, and adds their mean flow to the landmarks' motion and the median of their looks to the skin. The
pairs are kept as their coordinates on the pairs' principal components (what those leave out is registration
noise and pores), fitted by ``training/fit_engine.py expressions``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ganime_age.conditions import NUM_AUS
from ganime_age.engine.config import FittedEngineConfig
from ganime_age.engine.frames import Template, log_image, template_for

if TYPE_CHECKING:
    from ganime_age.engine.face import EngineFace
    from ganime_age.engine.tables import EngineTables

FLOW_SMOOTHING = 2.0  # template pixels: a pair's flow is smooth (its finer part is registration noise)
LOOK_SMOOTHING = 1.0  # template pixels: and its look (pores and JPEG noise differ between any two photos)
LIGHT_SCALE = 6.0  # template pixels: a pair's brightness change broader than this is its light or shading, no fold
LOOK_LIMITS = (-0.4, 0.25)  # the log change a pair's look may make, darkest and brightest
EDGE_PIXELS = 4  # template pixels inside the face's outline where the change begins (and fades in over twice that)
FLOW_SIDE, LOOK_SIDE = 4, 2  # the stored flow is the template's side over 4, the look over 2 (both smooth)
SCALE_LIMIT = 1.0  # a pair is scaled down to an edit's AU change, never up (its skin is as far as that person went)
SEX_PENALTY = 1.0  # AU units added to a pair of the other sex's distance, where the face's sex is clear
SURE_SEX = (0.2, 0.8)
STILL_AUS = 0.05  # an AU change below this everywhere moves and paints nothing


@dataclass
class ExpressionChange:
    """An expression's skin on the template: ``flow`` (R, R, 2) float32, how far (template pixels) the skin at
    each template point moves beyond the landmarks' motion; ``look`` (R, R) float32, its log brightness change
    there, before it moves."""

    flow: np.ndarray
    look: np.ndarray


def expression_weight(template: Template) -> np.ndarray:
    """(R, R) float32 where the pairs' flow and look are taken: inside the face's outline, off the mouth's interior
    (the lips' motion is the landmarks', the interior :mod:`.mouth`'s) and the eyes' openings (the iris moves with
    the gaze, which differs between any two photos)."""
    regions = template.regions
    kernel = np.ones((2 * EDGE_PIXELS + 1,) * 2, np.uint8)
    inside = cv2.GaussianBlur(cv2.erode(template.mask.astype(np.float32), kernel), (0, 0), float(EDGE_PIXELS))
    off = np.maximum(regions["mouth"], regions["eyes"]).astype(np.float32)
    return (inside * (1.0 - cv2.dilate(off, np.ones((3, 3), np.uint8)))).astype(np.float32)


def pair_change(neutral: np.ndarray, expression: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One person's (flow, look) from neutral to an expression, both uint8 RGB template views (R, R, 3), taken where
    `weight` (:func:`expression_weight`) says."""
    grey = [cv2.cvtColor(np.ascontiguousarray(v), cv2.COLOR_RGB2GRAY) for v in (neutral, expression)]
    measure = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = measure.calc(grey[0], grey[1], None)  # neutral(p) ~ expression(p + flow(p))
    flow = cv2.GaussianBlur(flow, (0, 0), FLOW_SMOOTHING) * weight[..., None]
    size = neutral.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    moved_back = cv2.remap(
        expression, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    change = (log_image(moved_back) - log_image(neutral)).mean(axis=2)
    change -= cv2.GaussianBlur(change, (0, 0), LIGHT_SCALE)
    look = np.clip(cv2.GaussianBlur(change, (0, 0), LOOK_SMOOTHING), *LOOK_LIMITS) * weight
    return flow.astype(np.float32), look.astype(np.float32)


def stored_sides(template_size: int) -> tuple[int, int]:
    """The sides of a pair's flow and look as stored."""
    return max(template_size // FLOW_SIDE, 1), max(template_size // LOOK_SIDE, 1)


def expression_change(
    engine: EngineTables, source_aus: np.ndarray, target_aus: np.ndarray, female: float
) -> ExpressionChange | None:
    """The matched pairs' change for an edit from `source_aus` to `target_aus`, or None where the engine has no
    pairs or the AUs barely change."""
    t, c = engine.tables, engine.config
    if c.expression_pairs == 0 or not np.any(t["expression_aus"]):  # none fitted
        return None
    wanted = np.asarray(target_aus, np.float64) - np.asarray(source_aus, np.float64)
    if np.abs(wanted).max() < STILL_AUS:
        return None
    deltas = t["expression_aus"].astype(np.float64)
    scale = np.clip(deltas @ wanted / np.maximum((deltas**2).sum(axis=1), 1e-6), 0.0, SCALE_LIMIT)
    distance = np.linalg.norm(wanted[None] - scale[:, None] * deltas, axis=1)
    if female < SURE_SEX[0] or female > SURE_SEX[1]:
        distance += SEX_PENALTY * (np.abs(t["expression_female"] - female) > 0.5)
    chosen = np.argsort(distance, kind="stable")[: c.expression_neighbours]
    decoded = t["expression_codes"][chosen] @ t["expression_basis"]  # (k, D)
    size = c.template_size
    flow_side, look_side = stored_sides(size)
    split = 2 * flow_side * flow_side
    flow_scale, look_scale = t["expression_scales"]
    flows = decoded[:, :split].reshape(-1, flow_side, flow_side, 2) / flow_scale
    looks = decoded[:, split:].reshape(-1, look_side, look_side) / look_scale
    weights = scale[chosen].astype(np.float32)
    flow = np.tensordot(weights, flows, axes=1) / len(chosen)
    look = np.median(weights[:, None, None] * looks, axis=0)
    weight = _weight_for(size, c.template_scale, tuple(c.template_centre))
    flow = cv2.resize(flow.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) * weight[..., None]
    look = cv2.resize(look.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) * weight
    return ExpressionChange(flow=flow * c.expression_flow_gain, look=look * c.expression_look_gain)


def face_expression(
    engine: EngineTables, face: EngineFace, source_aus: np.ndarray, target_aus: np.ndarray
) -> ExpressionChange | None:
    """:func:`expression_change` for this face, kept for its AUs (the geometry and the skin both read it)."""
    key = (np.asarray(source_aus, np.float32).tobytes(), np.asarray(target_aus, np.float32).tobytes())
    cached = face.cache.get("expression")
    if cached is None or cached[0] != key:
        cached = (key, expression_change(engine, source_aus, target_aus, face.female))
        face.cache["expression"] = cached
    return cached[1]


def register_tables(module: torch.nn.Module, config: FittedEngineConfig) -> None:
    """The engine's expression tables (zeros until fitted): the pairs' principal components (flow then look, each
    flattened), each pair's coordinates on them, its AU change (the read-out's) and how likely it is a woman's,
    and the (flow, look) scales the components were fitted at."""
    flow_side, look_side = stored_sides(config.template_size)
    pairs, components = config.expression_pairs, config.expression_components
    module.register_buffer("expression_basis", torch.zeros(components, 2 * flow_side * flow_side + look_side**2))
    module.register_buffer("expression_codes", torch.zeros(pairs, components))
    module.register_buffer("expression_aus", torch.zeros(pairs, NUM_AUS))
    module.register_buffer("expression_female", torch.zeros(pairs))
    module.register_buffer("expression_scales", torch.ones(2))


@functools.lru_cache(maxsize=4)
def _weight_for(size: int, scale: float, centre: tuple[float, float]) -> np.ndarray:
    return expression_weight(template_for(size, scale, centre))


def flow_on_grid(face: EngineFace, template: Template, flow: np.ndarray) -> np.ndarray:
    """(h, w, 2) float32 the template's skin flow as a forward displacement of this face's engine grid."""
    linear = face.cache.get("template_to_grid")
    if linear is None:  # the grid's pixels per template pixel, turned as the face is (least squares)
        source = template.vertices[:, :2].astype(np.float64)
        target = face.landmarks[: len(source), :2].astype(np.float64)
        design = np.hstack([source - source.mean(axis=0), np.ones((len(source), 1))])
        solution, *_ = np.linalg.lstsq(design, target - target.mean(axis=0), rcond=None)
        linear = solution[:2].T.astype(np.float32)  # (2, 2): grid displacement = linear @ template displacement
        face.cache["template_to_grid"] = linear
    on_face = cv2.remap(flow, face.template_coords, None, cv2.INTER_LINEAR, borderValue=0.0)
    return np.ascontiguousarray(on_face @ linear.T, dtype=np.float32)
