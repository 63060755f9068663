"""The face's structure: landmark displacements for an age (a fitted trajectory per sex) and for AUs (a fitted
basis), in the face's own 3-D frame, and the smooth, invertible backward map of the engine grid that moves the
photo's own pixels by them, continued beyond the face and fading to nothing."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.conditions import AU_NAMES
from ganime_age.engine.config import (
    AGE_SMOOTHING,
    CHILD_SHAPE_AGE,
    EDGE_TAPER,
    EYE_KEEP,
    GROWTH_REACH,
    INVERSE_TOLERANCE,
    OUTWARD_REACH,
    REENACT_REGIONS,
    SAG_AGES,
    SAGS,
    STILL_PIXELS,
    TABLE_AGE_FLOOR,
    YOUNG_AGE,
    YOUTH_RUN,
    FittedEngineConfig,
)
from ganime_age.engine.expressions import face_expression, flow_on_grid
from ganime_age.engine.face import EngineFace
from ganime_age.engine.frames import Template, identity_grid
from ganime_age.engine.tables import EngineTables
from ganime_age.faces.topology import (
    BROW_TOPS,
    CHIN,
    FACE_LEFT,
    FACE_RIGHT,
    LEFT_EYE_CONTOUR,
    LEFT_EYE_CORNERS,
    NOSE_TIP,
    NUM_LANDMARKS,
    NUM_MESH_VERTICES,
    RIGHT_EYE_CONTOUR,
    RIGHT_EYE_CORNERS,
)
from ganime_age.meshwarp import extend_outward, flow_points, integrate_flow, invert_displacement, rasterise


def blend(table: np.ndarray, sexes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum over sex s and age centre k of sexes[s] * weights[k] * table[s, k], over the non-zero terms only
    (an age touches two centres of a dozen: the rest would be multiplications by zero)."""
    out: np.ndarray | None = None
    for s in np.flatnonzero(sexes):
        for k in np.flatnonzero(weights):
            term = table[s, k] * np.float32(sexes[s] * weights[k])
            out = term if out is None else out + term
    return out if out is not None else np.zeros(table.shape[2:], table.dtype)


def youth(source_age: float, target_age: float) -> float:
    """0..1: how much of a child's skin an edit from `source_age` to `target_age` takes (no beard, no stubble):
    none for targets above YOUNG_AGE or the source age, all from YOUTH_RUN years below the lower of the two."""
    t = float(np.clip((min(source_age, YOUNG_AGE) - target_age) / YOUTH_RUN, 0.0, 1.0))
    return t * t * (3.0 - 2.0 * t)


def age_weights(age: float, centres: np.ndarray) -> np.ndarray:
    """Linear-interpolation weights of one age between the fitted age centres (clamped at the ends)."""
    a = float(np.clip(age, centres[0], centres[-1]))
    upper = int(np.clip(np.searchsorted(centres, a), 1, len(centres) - 1))
    t = (a - centres[upper - 1]) / (centres[upper] - centres[upper - 1])
    weights = np.zeros(len(centres))
    weights[upper - 1], weights[upper] = 1.0 - t, t
    return weights


def table_weights(age: float, centres: np.ndarray, beyond: float = 0.0) -> np.ndarray:
    """The age weights the fitted tables (shapes, skin) are read with: no younger than TABLE_AGE_FLOOR, and past the
    oldest centre the last two centres' difference continued for up to `beyond` years (a linear extrapolation)."""
    if beyond <= 0.0 or age <= centres[-1] or len(centres) < 2:
        return age_weights(max(age, TABLE_AGE_FLOOR), centres)
    past = (min(age, centres[-1] + beyond) - centres[-1]) / (centres[-1] - centres[-2])
    weights = np.zeros(len(centres))
    weights[-2], weights[-1] = -past, 1.0 + past
    return weights


@functools.lru_cache(maxsize=4)
def smoothing_kernel(sigma: float) -> np.ndarray:
    """(478, 478) row-normalised Gaussian weights between the canonical face's landmarks (`sigma` canonical cm):
    a landmark motion times it keeps its broad shape (a chin, a jaw, an eye's size) and loses the point-to-point
    jitter that a fitted mean, amplified several times, folds the lips' tiny triangles with."""
    from ganime_age.face_model import canonical_face

    vertices = canonical_face().vertices
    points = np.zeros((NUM_LANDMARKS, 3))
    points[: len(vertices)] = vertices
    if len(vertices) < NUM_LANDMARKS:  # the irises sit at their eyes' centres
        points[len(vertices) :] = vertices.mean(axis=0)
    squared = ((points[:, None, :] - points[None]) ** 2).sum(-1)
    kernel = np.exp(-0.5 * squared / sigma**2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    kernel.setflags(write=False)
    return kernel


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


@dataclass
class Motion:
    """An edit's landmark motion on the engine grid, in two parts that move the photo differently.

    ``age`` (478, 2) is broad and may be large (made a child, a face's features move a fifth of its height): it is
    taken as a velocity and integrated over the whole grid, which cannot fold or tear. ``expression``
    (478, 2) is an expression's or a driving face's, applied after it, landmark-exact (lips part, lids close).
    """

    age: np.ndarray
    expression: np.ndarray
    flow: np.ndarray | None = None  # (h, w, 2) the expression's skin beyond its landmarks (:mod:`.expressions`)

    @property
    def total(self) -> np.ndarray:
        return self.age + self.expression

    @property
    def expressing(self) -> bool:
        return bool(np.abs(self.expression).max() > 1e-3 or self.flow is not None)

    @property
    def moving(self) -> bool:
        return bool(np.abs(self.age).max() > 1e-3 or self.expressing)


def reenact_gains(config: FittedEngineConfig) -> np.ndarray:
    """(NUM_AUS,) each AU's reenactment gain: its region's (REENACT_REGIONS; the mouth's for the rest)."""
    mouth = 0
    return np.array([config.reenact_gains[REENACT_REGIONS.get(name, mouth)] for name in AU_NAMES], np.float64)


def age_shape_change(engine: EngineTables, female: float, source_age: float, target_age: float) -> np.ndarray:
    """(478, 3) the fitted landmark change from `source_age` to `target_age` in the canonical head's frame (cm),
    for a face `female` likely a woman's; zeros for no change."""
    c, t = engine.config, engine.tables
    if source_age == target_age:
        return np.zeros((NUM_LANDMARKS, 3))
    # MediaPipe's landmarks on infants are unreliable (closed and squinting eyes, tilted heads): below
    # TABLE_AGE_FLOOR the fitted shapes hold still and the head's growth carries the change
    beyond = c.age_extrapolation
    weights = table_weights(target_age, engine.centres, beyond) - table_weights(source_age, engine.centres, beyond)
    youth = float(np.clip((YOUNG_AGE - min(target_age, source_age)) / (YOUNG_AGE - 5.0), 0.0, 1.0))
    gain = c.age_shape_gain * (1.0 + (c.young_shape_boost - 1.0) * youth)
    if target_age < source_age:  # a child of CHILD_SHAPE_AGE or under takes all of it
        child = float(np.clip((YOUNG_AGE - target_age) / (YOUNG_AGE - CHILD_SHAPE_AGE), 0.0, 1.0))
        gain *= c.younger_shape_share + (1.0 - c.younger_shape_share) * child
    change = smoothing_kernel(AGE_SMOOTHING) @ (
        gain * blend(t["age_shapes"], np.array([1.0 - female, female]), weights)
    )
    if c.age_outline_share != 1.0:
        change *= 1.0 - (1.0 - c.age_outline_share) * outline_weights()[:, None]
    return change


def expression_shape(engine: EngineTables, au_delta: np.ndarray) -> np.ndarray:
    """(478, 3) the fitted landmark motion of an AU change (17,) in the canonical head's frame (cm)."""
    c, t = engine.config, engine.tables
    expression = c.au_shape_gain * np.einsum(
        "a,avc->vc", np.asarray(au_delta, np.float64) * t["au_gains"], t["au_shapes"]
    )
    if np.any(t["au_reach"]):  # AUs that move the same point (AU25 and AU26 both drop the jaw) add up
        distance = np.linalg.norm(expression, axis=1)
        expression *= np.minimum(1.0, t["au_reach"] / np.maximum(distance, 1e-9))[:, None]
    return expression


def shape_change(
    engine: EngineTables,
    face: EngineFace,
    source_age: float,
    target_age: float,
    source_aus: np.ndarray,
    target_aus: np.ndarray,
    target_landmarks: np.ndarray | None = None,
) -> Motion:
    """The landmark motion on the engine grid for this edit (the age's, and the expression's).

    With `target_landmarks` (photo pixels; e.g. a driving face's pose and expression transferred onto
    this face) the expression's geometry is given, and only the age's shape change is added to it.
    """
    c, t = engine.config, engine.tables
    age_change = age_shape_change(engine, face.female, source_age, target_age)
    personal = getattr(face.exemplars, "personal_age_change", None)  # a person's own photos' shapes (.own_photos)
    if personal is not None and source_age != target_age:
        age_change = personal(engine, face, source_age, target_age, source_aus, age_change)
    expression = np.zeros((NUM_LANDMARKS, 3))
    au_delta = np.asarray(target_aus, np.float64) - np.asarray(source_aus, np.float64)
    if target_landmarks is None and np.any(au_delta):
        expression = expression_shape(engine, au_delta)
    if target_landmarks is not None and np.any(au_delta):
        # the landmarker reads a warp short of the landmarks it was given (even an exact one): a driver's expression
        # is drawn past them along the fitted AU shapes, the driver's AU change (its own face's shape, a child's large
        # eyes, is never amplified; a turned driver's AUs are faded to the source's before they come here)
        past = (np.asarray(target_aus, np.float64) - np.asarray(source_aus, np.float64)) * (reenact_gains(c) - 1.0)
        expression = c.au_shape_gain * np.einsum("a,avc->vc", past, t["au_shapes"])
    to_grid = face.rotation.T * face.cm_to_grid
    expression_moves = (expression @ to_grid)[:, :2]
    if target_landmarks is not None:
        given = face.frame.to_grid(np.asarray(target_landmarks, np.float64)[:, :2]) - face.landmarks[:, :2]
        expression_moves = expression_moves + given
    skin = face_expression(engine, face, source_aus, target_aus)
    flow = None if skin is None else flow_on_grid(face, engine.template, skin.flow)
    if flow is not None and target_landmarks is None:
        # an AU edit's landmarks move by the AU gains (a warp alone reads short); the pairs' skin moved with their
        # landmarks' real motion, so it is taken as far as the gains did not already go (brows raised to 4 overshot)
        wanted = np.abs(np.asarray(target_aus, np.float64) - np.asarray(source_aus, np.float64))
        flow *= np.float32(wanted.sum() / max(float((wanted * t["au_gains"]).sum()), 1e-6))
    return Motion(age=(age_change @ to_grid)[:, :2], expression=expression_moves, flow=flow)


def growth_field(
    engine: EngineTables,
    face: EngineFace,
    source_age: float,
    target_age: float,
    shapes: np.ndarray | None = None,
) -> np.ndarray | None:
    """(h, w, 2) the head's growth from `source_age` to `target_age` as a motion of the engine grid, with an old
    face's sagging (:func:`sag_field`); None when neither changes.

    A cardioidal strain (Todd, Mark, Shaw and Pittenger's model of the growing head, which viewers read as age):
    about a centre between the ears, a point at angle theta from the head's up direction moves to radius
    R (1 + k (1 - cos theta)). Above the ears the head barely changes; the face below them, the jaw and the chin
    most, grows with k. It moves the whole head's outline at once (jaw, chin, cheeks, ears, the neck below),
    which landmark means cannot: MediaPipe's outline points regress to its own mean face. The growth is whole
    out to GROWTH_REACH[0] chin distances and fades to nothing by GROWTH_REACH[1]. The eyes keep their size (a
    child's eyes are nearly an adult's, and so larger in the smaller face).

    Childhood's strain (fitted on FG-NET's points, brows to chin) and the age's landmark shapes (`shapes`,
    (478, 2) grid moves; :func:`shape_change`) are each fitted up to a similarity; the photo takes the one that
    keeps the chin where it was, and the cranium above the brows takes the difference: the face from the brows
    down moves back along the head's down by the chin's motion, the forehead and the crown stretching (or, made
    grown, gathering) between the brows and the crown, which stays. So a child's small face sits lower in a head
    that keeps its size (the eye line lower, the forehead taller), and the neck and a tight crop's bottom edge
    stay as they were. Held at the centre between the ears, an old face made 5 raised its chin a fifth of its
    distance from the centre and stretched the neck three times over, into streaks; a child made 35 pushed it
    below a tight crop's edge. Held by a scaling about the crown instead, a face made a child kept the adult
    face's width within the head and looked swollen at full size. An old face's lengthening (the strains past
    50) and its sag are its soft tissue's own and move the chin as they do. A person's own shape at the target
    age has grown already (:meth:`.own_photos.PersonalMatch.growth_kept`): the strain is taken only as far as it is not.

    Each part is linear in one number of the target age, so its field is made once per photo and a slider move
    only scales and adds them.
    """
    if not np.any(engine.tables["age_shapes"]):  # an engine that has fitted no ages changes no age
        return None
    strains = np.asarray(engine.config.growth_strains, np.float64)
    k_source = float(age_weights(source_age, engine.centres) @ strains)
    k_target = float(age_weights(target_age, engine.centres) @ strains)
    if face.exemplars is not None:  # a person's own shape at the target has grown already
        k_target = k_source + face.exemplars.growth_kept(target_age) * (k_target - k_source)
    sag = engine.config.sag_depth * (_sagging(target_age) - _sagging(source_age))
    grows = abs(k_target - k_source) >= 1e-6
    basis = face.cache.get(("growth", k_source))
    if basis is None:
        basis = face.cache[("growth", k_source)] = _growth_basis(face, k_source)
    strain, eyes, unit_sag, (chin_strain, down, unit_lowering) = basis
    held = min(k_target, 0.0) - min(k_source, 0.0)  # childhood's strains (negative); an old face's move the chin
    chin_moves = held * chin_strain + (0.0 if shapes is None else float(shapes[CHIN] @ down))
    if not grows and sag == 0.0 and abs(chin_moves) < 1e-3:
        return None
    field = np.zeros((*face.grid_shape, 2), np.float32)
    if grows:
        field += np.float32(k_target - k_source) * strain
        for across, bump in eyes:
            keep = (1.0 + k_source * across) / (1.0 + k_target * across) - 1.0
            field += np.float32(keep) * bump
    if chin_moves != 0.0:  # the face from the brows down moves back by the chin's motion, the cranium takes it
        field -= np.float32(chin_moves) * unit_lowering
    if sag != 0.0:  # an old face made young is lifted by as much as it sagged
        field += np.float32(sag) * unit_sag
    return field


def _growth_basis(
    face: EngineFace, k_source: float
) -> tuple[np.ndarray, list[tuple[float, np.ndarray]], np.ndarray, tuple[float, np.ndarray, np.ndarray]]:
    """The fields :func:`growth_field` scales: the strain's per unit of k, each eye's (1 - cos theta, and its
    magnification per unit), the full sag's, and the chin's anchor: the strain's motion of the chin along the
    head's down per unit of k, that direction, and the lowering of the face per unit of it (whole from the brows
    down, none at the crown: the chin's distance above the centre, the cardioid's circle)."""
    grid_h, grid_w = face.grid_shape
    centre = 0.5 * (face.landmarks[FACE_LEFT, :2] + face.landmarks[FACE_RIGHT, :2])
    down = face.rotation[:2, 1]  # the canonical face's y axis (its chin is +y) in the photo's plane
    down = down / max(float(np.linalg.norm(down)), 1e-9)
    chin_distance = max(float(np.linalg.norm(face.landmarks[CHIN, :2] - centre)), 1.0)
    xs, ys = np.meshgrid(np.arange(grid_w, dtype=np.float32), np.arange(grid_h, dtype=np.float32))
    dx, dy = xs - np.float32(centre[0]), ys - np.float32(centre[1])
    radius = np.sqrt(dx * dx + dy * dy) + np.float32(1e-6)
    across = 1.0 - (-(dx * np.float32(down[0]) + dy * np.float32(down[1])) / radius)  # 1 - cos theta
    # R (1 + k_t a) / (1 + k_s a) - R = R (k_t - k_s) a / (1 + k_s a): linear in k_t
    per_strain = across / (1.0 + np.float32(k_source) * across)
    low, high = GROWTH_REACH
    within = 1.0 - _smoothstep((radius / chin_distance - low) / (high - low))
    per_strain *= within
    strain = np.stack([dx * per_strain, dy * per_strain], axis=-1).astype(np.float32)
    chin = face.landmarks[CHIN, :2] - centre
    chin_across = 1.0 + float(chin @ down) / chin_distance
    chin_strain = float(chin @ down) * chin_across / (1.0 + k_source * chin_across)
    brows = float((face.landmarks[list(BROW_TOPS), :2].mean(axis=0) - centre) @ down) + chin_distance
    below_crown = (dx * np.float32(down[0]) + dy * np.float32(down[1]) + np.float32(chin_distance)) / max(brows, 1.0)
    lowering = (_smoothstep(below_crown) * within)[..., None] * down.astype(np.float32)
    anchor = (chin_strain, down, lowering.astype(np.float32))
    eyes = []
    for contour, corners in ((RIGHT_EYE_CONTOUR, RIGHT_EYE_CORNERS), (LEFT_EYE_CONTOUR, LEFT_EYE_CORNERS)):
        eye = face.landmarks[list(contour), :2].mean(axis=0)
        size = 0.5 * float(np.linalg.norm(face.landmarks[corners[0], :2] - face.landmarks[corners[1], :2]))
        offset = eye - centre
        across_eye = 1.0 + float(offset @ down) / max(float(np.linalg.norm(offset)), 1e-6)
        ex, ey = xs - np.float32(eye[0]), ys - np.float32(eye[1])
        reach = np.sqrt(ex * ex + ey * ey) / max(size, 1.0)
        weight = 1.0 - _smoothstep((reach - EYE_KEEP[0]) / (EYE_KEEP[1] - EYE_KEEP[0]))
        eyes.append((across_eye, np.stack([ex * weight, ey * weight], axis=-1).astype(np.float32)))
    return strain, eyes, sag_field(face, 1.0, (xs, ys)), anchor


def _sagging(age: float) -> float:
    """0..1: how far an old face's soft tissue has descended at `age` (none until SAG_AGES[0], all at [1])."""
    t = float(np.clip((age - SAG_AGES[0]) / (SAG_AGES[1] - SAG_AGES[0]), 0.0, 1.0))
    return t * t * (3.0 - 2.0 * t)


def sag_field(face: EngineFace, amount: float, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(h, w, 2) the descent of an old face's soft tissue (`amount` of SAGS' full one) as a motion of the grid.

    With age the brows drop over the lids (heavier lids), the cheeks' fat pads and the jowls slide down and out
    over the jaw (a softer jawline), and the nose's tip droops: each a smooth bump of motion at its landmarks,
    in the face's own down and outward directions.
    """
    xs, ys = grid
    down = face.rotation[:2, 1]
    out_right = face.rotation[:2, 0]
    field = np.zeros((*xs.shape, 2), np.float32)
    for anchors, (drop, spread), sigma in SAGS:
        for anchor in anchors:
            point = face.landmarks[list(anchor), :2].mean(axis=0)
            side = np.sign(float((point - face.landmarks[NOSE_TIP, :2]) @ out_right))
            move = (drop * down + spread * side * out_right) * face.cm_to_grid * amount
            reach = sigma * face.cm_to_grid
            bump = np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / np.float32(2.0 * reach * reach))
            field[..., 0] += bump * np.float32(move[0])
            field[..., 1] += bump * np.float32(move[1])
    return field


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a cubic without kinks between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def edge_taper(shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 1) 1 inside the edit region, falling smoothly to 0 over EDGE_TAPER of its size at its edges: a
    motion that reaches the region's edge ends there without a seam."""
    tapers = []
    for size in shape:
        ramp = np.minimum(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32)[::-1])
        t = np.clip(ramp / max(EDGE_TAPER * size, 1.0), 0.0, 1.0)
        tapers.append(t * t * (3.0 - 2.0 * t))
    return (tapers[0][:, None] * tapers[1][None, :])[..., None]


def backward_map(
    face: EngineFace,
    motion: Motion,
    template: Template,
    growth: np.ndarray | None = None,
    *,
    age_key: tuple[object, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each engine grid pixel reads the input from ((h, w, 2) grid positions) for a `motion`, how much
    it moved ((h, w) float32 in 0..1; 0 below STILL_PIXELS photo pixels: the input's pixel stays), and where
    the landmarks end up ((478, 2) moves: the age's as integrated, plus the expression's).

    The age's motion, continued beyond the face, is a velocity whose flow is integrated (scaling and squaring):
    one smooth, invertible map of the whole grid, so a chin pulled far up takes its shadow and the neck along
    and no old outline is left behind. The expression's motion then moves the aged face: a smooth, gentle one
    is inverted by fixed-point steps; where that misses (a large expression folds the field), the face takes
    the exact inverse: the moved mesh drawn near side last, each pixel reading from where its triangle came
    from.

    `age_key` (the engine, and the source and target ages the age's motion and `growth` were made for): the
    integrated age map is kept in ``face.cache`` for it, so a video's frames and an expression slider integrate it
    once.
    """
    grid_h, grid_w = face.grid_shape
    identity = identity_grid(grid_h, grid_w)
    reach = OUTWARD_REACH * face.cm_to_grid
    source = face.landmarks[:NUM_MESH_VERTICES, :2]
    sample: np.ndarray | None = None
    aged_moves = np.zeros_like(motion.age)
    raster = face.raster
    cached = face.cache.get("aged_map")
    if age_key is not None and cached is not None and cached[0] == age_key:
        sample, aged_moves = cached[1].copy(), cached[2]
    elif np.abs(motion.age).max() > 1e-3 or growth is not None:
        velocity = (
            extend_outward(raster.interpolate(motion.age[:NUM_MESH_VERTICES].astype(np.float32)), raster.mask, reach)
            if np.abs(motion.age).max() > 1e-3
            else np.zeros((grid_h, grid_w, 2), np.float32)
        )
        if growth is not None:
            velocity += growth
        if "taper" not in face.cache:  # the region's edge, the photo's other faces, a shirt and a hat never move
            taper = edge_taper(face.grid_shape)
            parsed = face.layer.parsed
            for still in (
                face.layer.apart_on(face.box, face.grid_shape),
                None if parsed is None else parsed.movable_on(face.box, face.grid_shape),
            ):
                taper = taper if still is None else taper * still[..., None]
            face.cache["taper"] = taper
        velocity *= face.cache["taper"]
        sample = identity + integrate_flow(-velocity)
        aged_moves = flow_points(velocity, face.landmarks[:, :2])
        if age_key is not None:
            face.cache["aged_map"] = (age_key, sample.copy(), aged_moves)
    if motion.expressing:
        start = source + aged_moves[:NUM_MESH_VERTICES]
        moves = motion.expression[:NUM_MESH_VERTICES]
        forward = extend_outward(raster.interpolate(moves.astype(np.float32)), raster.mask, reach)
        if sample is not None:  # the expression moves the aged face: its motion travels with the skin it moves
            forward = cv2.remap(forward, sample, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        expressed = invert_displacement(forward)
        landed = expressed + cv2.remap(forward, expressed, None, cv2.INTER_LINEAR)
        if np.abs(landed - identity).max() > INVERSE_TOLERANCE:
            moved = rasterise(
                start + moves,
                template.triangles,
                face.grid_shape,
                depth=face.landmarks[:NUM_MESH_VERTICES, 2],
                reference_areas=template.frontal_areas,
            )
            moved.interpolate_into(expressed, start)
        if motion.flow is not None:  # the skin moved beyond the landmarks first, then with them
            expressed = cv2.remap(
                invert_displacement(motion.flow), expressed, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        sample = (
            expressed
            if sample is None
            else cv2.remap(sample, expressed, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )
    if sample is None:
        return identity, np.zeros((grid_h, grid_w), np.float32), aged_moves
    # photo pixels each grid pixel moves; what barely moves (< STILL_PIXELS) keeps the input's pixels
    shift = cv2.magnitude(*cv2.split(sample - identity)) * np.float32(max(face.frame.per))
    changed = np.clip(shift * 4.0, 0.0, 1.0)
    changed[shift < STILL_PIXELS] = 0.0
    return sample, changed, aged_moves + motion.expression
