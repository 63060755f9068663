"""The face's structure: landmark displacements for an age (a fitted trajectory per sex) and for AUs (a fitted
basis), in the face's own 3-D frame, and the smooth, invertible backward map of the engine grid that moves the
photo's own pixels by them, continued beyond the face and fading to nothing."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ganime_age.engine.config import INVERSE_TOLERANCE, OUTWARD_REACH, STILL_PIXELS, YOUNG_AGE
from ganime_age.engine.frames import Template, identity_grid
from ganime_age.faces.topology import NUM_LANDMARKS, NUM_MESH_VERTICES
from ganime_age.meshwarp import extend_outward, invert_displacement, rasterise

if TYPE_CHECKING:
    from ganime_age.engine.model import EngineFace, FittedEngine


def blend(table: np.ndarray, sexes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum over sex s and age centre k of sexes[s] * weights[k] * table[s, k], over the non-zero terms only
    (an age touches two centres of a dozen: the rest would be multiplications by zero)."""
    out: np.ndarray | None = None
    for s in np.flatnonzero(sexes):
        for k in np.flatnonzero(weights):
            term = table[s, k] * np.float32(sexes[s] * weights[k])
            out = term if out is None else out + term
    return out if out is not None else np.zeros(table.shape[2:], table.dtype)


def age_weights(age: float, centres: np.ndarray) -> np.ndarray:
    """Linear-interpolation weights of one age between the fitted age centres (clamped at the ends)."""
    a = float(np.clip(age, centres[0], centres[-1]))
    upper = int(np.clip(np.searchsorted(centres, a), 1, len(centres) - 1))
    t = (a - centres[upper - 1]) / (centres[upper] - centres[upper - 1])
    weights = np.zeros(len(centres))
    weights[upper - 1], weights[upper] = 1.0 - t, t
    return weights


@functools.lru_cache(maxsize=1)
def outline_weights(reach: float = 1.5) -> np.ndarray:
    """(478,) 1 on the face's outline (MediaPipe's oval), falling off smoothly over `reach` canonical cm inside."""
    from ganime_age.face_model import canonical_face
    from ganime_age.faces.topology import FACE_OVAL

    vertices = canonical_face().vertices[:, :2]
    oval = vertices[sorted({i for pair in FACE_OVAL for i in pair})]
    points = np.zeros((NUM_LANDMARKS, 2))
    points[: len(vertices)] = vertices
    if len(vertices) < NUM_LANDMARKS:  # the irises: at the eyes' centres, far from the outline
        points[len(vertices) :] = vertices.mean(axis=0)
    distance = np.sqrt(((points[:, None, :] - oval[None]) ** 2).sum(-1)).min(axis=1)
    weights = np.exp(-0.5 * (distance / reach) ** 2)
    weights.setflags(write=False)
    return weights


def shape_change(
    engine: FittedEngine,
    face: EngineFace,
    source_age: float,
    target_age: float,
    source_aus: np.ndarray,
    target_aus: np.ndarray,
    target_landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """(478, 2) landmark displacements on the engine grid for this edit.

    With `target_landmarks` (photo pixels; e.g. a driving face's pose and expression transferred onto
    this face) the expression's geometry is given, and only the age's shape change is added to it.
    """
    c, t = engine.config, engine.tables
    sexes = np.array([1.0 - face.female, face.female])
    change = np.zeros((NUM_LANDMARKS, 3))
    if source_age != target_age:
        weights = age_weights(target_age, engine.centres) - age_weights(source_age, engine.centres)
        youth = float(np.clip((YOUNG_AGE - min(target_age, source_age)) / (YOUNG_AGE - 5.0), 0.0, 1.0))
        gain = c.age_shape_gain * (1.0 + (c.young_shape_boost - 1.0) * youth)
        age_change = gain * blend(t["age_shapes"], sexes, weights)
        if c.age_outline_share != 1.0:
            age_change *= 1.0 - (1.0 - c.age_outline_share) * outline_weights()[:, None]
        change += age_change
    au_delta = (np.asarray(target_aus, np.float64) - np.asarray(source_aus, np.float64)) * t["au_gains"]
    if target_landmarks is None and np.any(au_delta):
        expression = c.au_shape_gain * np.einsum("a,avc->vc", au_delta, t["au_shapes"])
        if np.any(t["au_reach"]):  # AUs that move the same point (AU25 and AU26 both drop the jaw) add up
            distance = np.linalg.norm(expression, axis=1)
            expression *= np.minimum(1.0, t["au_reach"] / np.maximum(distance, 1e-9))[:, None]
        change += expression
    moved = (change @ face.rotation.T * face.cm_to_grid)[:, :2]
    if target_landmarks is not None:
        moved += face.frame.to_grid(np.asarray(target_landmarks, np.float64)[:, :2]) - face.landmarks[:, :2]
    return moved


def backward_map(face: EngineFace, moves: np.ndarray, template: Template) -> tuple[np.ndarray, np.ndarray]:
    """Where each engine grid pixel reads the input from ((h, w, 2) grid positions) for landmark `moves` (478, 2),
    and how much it moved ((h, w) float32 in 0..1; 0 below STILL_PIXELS photo pixels: the input's pixel stays).

    A smooth, gentle motion (an age edit) is inverted by fixed-point steps; where that misses (a large
    expression folds the field), the face takes the exact inverse: the moved mesh drawn near side last, each
    pixel reading from where its triangle came from.
    """
    grid_h, grid_w = face.grid_shape
    forward = face.raster.interpolate(moves[:NUM_MESH_VERTICES].astype(np.float32))
    forward = extend_outward(forward, face.raster.mask, reach=OUTWARD_REACH * face.cm_to_grid)
    sample = invert_displacement(forward)
    landed = sample + cv2.remap(forward, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR)
    if np.abs(landed - identity_grid(grid_h, grid_w)).max() > INVERSE_TOLERANCE:
        source = face.landmarks[:NUM_MESH_VERTICES, :2]
        moved = rasterise(
            source + moves[:NUM_MESH_VERTICES],
            template.triangles,
            face.grid_shape,
            depth=face.landmarks[:NUM_MESH_VERTICES, 2],
            reference_areas=template.frontal_areas,
        )
        moved.interpolate_into(sample, source)
    # photo pixels each grid pixel moves; what barely moves (< STILL_PIXELS) keeps the input's pixels
    shift = cv2.magnitude(*cv2.split(sample - identity_grid(grid_h, grid_w))) * np.float32(max(face.frame.per))
    changed = np.clip(shift * 4.0, 0.0, 1.0)
    changed[shift < STILL_PIXELS] = 0.0
    return sample, changed
