"""The fitted edit engine: age and expression edits of real photos at their own resolution, no network.

Why fitted: two CPU cores cannot train a generator to move a face's structure, and no pretrained face
generator can be had, but the classical prototype-and-transform methods need only means and least
squares (Burt & Perrett 1995; Tiddeman, Burt & Perrett 2001; expression ratio images, Liu, Shan & Zhang
2001). Everything here was fitted in CPU minutes by ``training/fit_engine.py`` on UTKFace (ages) and
CFEE (same-person posed expressions with FACS codes); the trained networks refine its output.

An edit has two parts, both driven by MediaPipe's 478-point mesh:

- **geometry**: landmark displacements in the face's own 3-D frame (an age shape trajectory per sex and a
  displacement basis per AU unit, in the canonical face's centimetres), rotated into the photo's head
  pose, spread over the pixels by the mesh's piecewise-linear interpolation and continued smoothly
  beyond the face, fading to nothing; one backward map and one ``cv2.remap`` of the photo's region;
- **appearance**, in the *shape-normalised template* (every training face warped onto the canonical
  face's shape before averaging, so the means are sharp): log-domain prototype differences (a ratio
  image: shading, folds, colour), the person's own detail bands scaled by the prototypes' local detail
  energy ratio (wrinkles deepen with age, skin smooths when young; Tiddeman et al.), and per-AU ratio
  images (frown lines, nasolabial folds). They are mapped onto the face through its own mesh and
  applied multiplicatively, so the person's texture stays theirs.

Do no harm: an edit that changes nothing returns the input's pixels, and only the region the edit
moves or repaints is touched; the rest of the photo is the input, byte for byte.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from ganime_age.conditions import AU_NAMES, MAX_AGE, NUM_AUS
from ganime_age.config import bounded
from ganime_age.hub import HubModel
from ganime_age.meshwarp import MeshRaster, extend_outward, invert_displacement, rasterise, signed_areas

NUM_LANDMARKS = 478
NUM_MESH_VERTICES = 468
LOG_EPSILON = 1.0 / 64.0  # log(v + eps): dark pixels do not blow up a ratio
OUTWARD_REACH = 5.0  # canonical centimetres (a third of a face width) over which a face's motion fades out
LARGE_SCALE = 0.1  # face widths: the blur that splits skin tone and shading from features (brows, lips, folds)
YOUNG_AGE = 20.0  # below this age a face's proportions change fastest (young_shape_boost)
INVERSE_TOLERANCE = 0.2  # grid pixels: how far a fixed-point inverse may miss before the exact one is used
STILL_PIXELS = 0.25  # photo pixels: a displacement below this leaves a pixel as it was (a quarter pixel: unseen)
TINT_SCALE = 0.03  # face widths: the blur of the colours that a colour change scales (fine colour never changes)
MOUTH_TINT_SIGMA = 3.0  # interior cells (of mouth_grid): the blur of the painted mouth's colour
MOUTH_EDGE_CHROMA = 0.25  # canonical cm: the colour blur across the painted mouth's edge (a photo's chroma is soft)
AU_LINE_DEPTH, AU_LINE_GLOW = 0.5, 0.1  # log-brightness limits of the AU ratio images' fine part
HAIR_MAX_LIFT = 1.3  # log brightness: the most greying brightens hair (x3.7), so black hair's noise stays unseen
HAIR_SKIN_DISTANCE = (12.0, 27.0)  # Lab distance from the skin's colour over which a pixel turns from skin to hair
AGED_FEATURE_HOLD = 0.5  # share of the detail change that ageing brows and eyes are spared
COLOURFUL = 0.06  # mean |log channel - log grey| from which a face counts as fully coloured (grey photos: 0)
# landmark ids used for the face's frame: the oval's extreme points left/right (face width)
FACE_LEFT, FACE_RIGHT = 234, 454
MOUTH_CENTRE = 13  # the upper lip's inner centre
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
RIGHT_EYE_CONTOUR = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_CONTOUR = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
BROW_TOPS = (105, 66, 107, 334, 296, 336)  # the upper edge of both eyebrows
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)  # lower edge outer to inner, then upper edge back
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)


@dataclass
class FittedEngineConfig:
    """Sizes of the fitted tables and the strengths of each part of an edit.

    Each field declares its range: sizes are bounded so that no table, blur or grid can ask for absurd memory
    (the tables are R x R per age centre and AU; a blur's kernel grows with its sigma), strengths so that an
    edit stays an edit. validate() adds the rules across fields.
    """

    image_size: int = bounded(128, 16, 1024)  # aligned crops for display and for the refiners
    template_size: int = bounded(200, 32, 512)  # R: the shape-normalised template is R x R pixels
    # template pixels per centimetre of the canonical face (15.5 x 17.7 cm: 30 fills the largest template)
    template_scale: float = bounded(10.0, 2.0, 30.0)
    template_centre: tuple[float, float] = bounded((100.0, 90.6), 0.0, 512.0)  # template pixel of the face's origin
    age_centres: tuple[float, ...] = bounded(
        (2.0, 5.0, 9.0, 14.0, 19.0, 25.0, 32.0, 40.0, 48.0, 56.0, 64.0, 72.0, 80.0), 0.0, MAX_AGE, length=(2, 40)
    )
    detail_bands: int = bounded(5, 1, 5)  # detail bands whose energy is fitted (finest first)
    # template pixels: Gaussian sigma splitting off the finest band (doubles per band; the energies blur at twice
    # that, so the coarsest kernel is 2 * 16 * band_sigma: at most 256, a 2049-tap kernel)
    band_sigma: float = bounded(1.0, 0.25, 8.0)
    energy_downsample: int = bounded(2, 1, 8)  # the energy maps are stored this many times smaller than the template
    sex_features: int = bounded(32, 8, 512)  # side of the grey template thumbnail the sex classifier reads
    # strengths (1 = as fitted)
    # (chosen by eye on held-out full-size photos, with the estimator's readings beside: training/README.md)
    # MediaPipe's landmarks under-state how much a child's face differs from an adult's
    age_shape_gain: float = bounded(3.0, 0.0, 5.0)
    # the shape gain grows by this factor towards a child's face (5 and under)
    young_shape_boost: float = bounded(1.5, 0.0, 5.0)
    # share of the age shape change kept on the face's outline (jaw, chin, hairline; the features keep all):
    # a warp can only drag the photo's own pixels, so a chin pulled far up leaves the old jawline's shadow
    # and the neck's edges behind it as ghost lines
    age_outline_share: float = bounded(0.3, 0.0, 5.0)
    # prototype differences are means of many faces: fainter than one face's ageing
    age_texture_gain: float = bounded(2.0, 0.0, 5.0)
    age_chroma_gain: float = bounded(1.0, 0.0, 5.0)
    # share of the prototypes' face-wide mean change kept (their overall exposure and tint): UTKFace's children
    # are photographed brighter and its old faces redder, which on a face reads as a glow or a bruise-like tint,
    # and brightening a photo amplifies its own colour noise; the change's layout (shading, folds) is all kept
    age_exposure_share: float = bounded(0.0, 0.0, 5.0)
    age_fold_gain: float = bounded(2.5, 0.0, 5.0)  # the prototypes' new folds and lines, added when ageing
    detail_gain_range: tuple[float, float] = bounded((0.35, 2.5), 0.0, 10.0)
    # the most each band may be amplified, finest first: a photo's finest band is mostly noise and JPEG's 8x8
    # blocks, which amplified become a leathery grid; wrinkles and folds live in the coarser bands
    detail_gain_caps: tuple[float, ...] = bounded((1.0, 1.4, 2.5, 2.5, 2.5), 0.0, 10.0, length=(1, 16))
    # the detail gains raised to this power (a prototype's energy is an average too)
    detail_gain_power: float = bounded(1.5, 0.0, 5.0)
    au_shape_gain: float = bounded(1.0, 0.0, 5.0)
    au_texture_gain: float = bounded(1.0, 0.0, 5.0)
    # the fitted greying of hair is an average of people: fainter than one person's
    hair_greying_gain: float = bounded(1.2, 0.0, 5.0)
    # the mouth interior, fitted from CFEE's open mouths: one mean per gap height (canonical cm at the lips' centre)
    mouth_gaps: tuple[float, ...] = bounded((0.3, 0.6, 0.9, 1.2, 1.5, 1.9, 2.4), 0.0, 10.0, length=(2, 20))
    mouth_grid: tuple[int, int] = bounded((32, 96), 4, 256)  # (rows across the gap, columns corner to corner)
    # where an edit is computed: the face is resampled to about this many pixels wide (never enlarged)
    engine_face_pixels: int = bounded(128, 32, 1024)
    # face widths around the face that an edit may move (hair, ears, neck follow the face)
    margin: float = bounded(0.5, 0.1, 2.0)

    def validate(self) -> None:
        """The rules across fields (each field's own range is declared with it and checked first)."""
        from ganime_age.errors import ConfigError

        name = type(self).__name__
        if list(self.age_centres) != sorted(set(self.age_centres)):
            raise ConfigError(f"{name}.age_centres must be increasing ages, not {self.age_centres}")
        if list(self.mouth_gaps) != sorted(set(self.mouth_gaps)):
            raise ConfigError(f"{name}.mouth_gaps must be increasing gap heights (cm), not {self.mouth_gaps}")
        if len(self.detail_gain_caps) < self.detail_bands:
            raise ConfigError(f"{name}.detail_gain_caps needs one cap per detail band ({self.detail_bands})")
        if self.detail_gain_range[0] > self.detail_gain_range[1]:
            raise ConfigError(f"{name}.detail_gain_range must be (low, high), not {self.detail_gain_range}")
        if self.template_size % self.energy_downsample:
            raise ConfigError(
                f"{name}.template_size must be a multiple of energy_downsample ({self.energy_downsample})"
            )
        if self.sex_features > self.template_size:
            raise ConfigError(f"{name}.sex_features must not exceed template_size ({self.template_size})")
        if max(self.template_centre) > self.template_size:
            raise ConfigError(f"{name}.template_centre must lie inside the {self.template_size} px template")


# -- the template frame ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """The canonical face drawn in an R x R image: where every mesh vertex sits, and which pixels it covers."""

    size: int
    vertices: np.ndarray  # (468, 2) template pixels
    triangles: np.ndarray  # (898, 3)
    frontal_areas: np.ndarray  # (898,) signed areas on the frontal canonical face (orientation reference)
    raster: MeshRaster
    mask: np.ndarray  # (R, R) float32 1 inside the face, 0 outside, a few pixels of soft edge
    regions: dict[str, np.ndarray]  # (R, R) float32 masks: "mouth" (the lip gap), "eyes"


@functools.lru_cache(maxsize=4)
def template_for(size: int, scale: float, centre: tuple[float, float]) -> Template:
    from ganime_age.face_model import canonical_face

    face = canonical_face()
    vertices = face.vertices[:, :2] * scale + np.asarray(centre, np.float64)
    raster = rasterise(vertices, face.triangles, (size, size))
    hard = raster.mask
    soft = cv2.GaussianBlur(cv2.erode(hard, np.ones((3, 3), np.uint8), iterations=6), (0, 0), 4.0) * hard
    # the top of the forehead meets the hairline, which differs from face to face: fade out gently there
    top, brows = vertices[:, 1].min(), vertices[list(BROW_TOPS), 1].min()
    rows = np.arange(size, dtype=np.float32)[:, None]
    soft = soft * np.clip((rows - top) / max(0.6 * (brows - top), 1.0), 0.0, 1.0)
    regions = {
        "mouth": _polygon_mask(vertices, (*UPPER_INNER_LIP, *LOWER_INNER_LIP[::-1][1:-1]), size, grow=3.0),
        "eyes": np.maximum(
            _polygon_mask(vertices, RIGHT_EYE_CONTOUR, size, grow=2.0),
            _polygon_mask(vertices, LEFT_EYE_CONTOUR, size, grow=2.0),
        ),
        "eyes_wide": np.maximum(  # what the AU ratio images leave out: lids and creases move with the eye
            _polygon_mask(vertices, RIGHT_EYE_CONTOUR, size, grow=5.0),
            _polygon_mask(vertices, LEFT_EYE_CONTOUR, size, grow=5.0),
        ),
        "brows": np.maximum(
            _polygon_mask(vertices, RIGHT_BROW, size, grow=7.0), _polygon_mask(vertices, LEFT_BROW, size, grow=7.0)
        ),
    }
    return Template(size, vertices, face.triangles, signed_areas(vertices[face.triangles]), raster, soft, regions)


def _polygon_mask(vertices: np.ndarray, ids: tuple[int, ...], size: int, grow: float) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [np.round(vertices[list(ids)] * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if grow > 0:
        mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=int(grow)), (0, 0), grow / 2)
    return np.clip(mask, 0.0, 1.0)


def template_map(template: Template, landmarks: np.ndarray) -> np.ndarray:
    """(R, R, 2) photo positions of every template pixel: the mesh inside the face, an affine fit outside."""
    points = np.asarray(landmarks, np.float64)[:NUM_MESH_VERTICES, :2]
    source = np.concatenate([template.vertices, np.ones((NUM_MESH_VERTICES, 1))], axis=1)
    affine, *_ = np.linalg.lstsq(source, points, rcond=None)  # (3, 2)
    size = template.size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    outside = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ affine.astype(np.float32)
    inside = template.raster.interpolate(points.astype(np.float32))
    mask = template.raster.mask[..., None]
    return (inside * mask + outside * (1.0 - mask)).astype(np.float32)


def log_image(rgb: np.ndarray) -> np.ndarray:
    """uint8 or 0..255 float RGB -> log intensity (the domain where a lighting change is an offset)."""
    return np.log(np.asarray(rgb, np.float32) * (1.0 / 255.0) + LOG_EPSILON)


def detail_bands(grey: np.ndarray, sigma: float, count: int) -> list[np.ndarray]:
    """Difference-of-Gaussian bands of an image, finest first (sigma, then doubling)."""
    bands, previous = [], grey
    for b in range(count):
        blurred = cv2.GaussianBlur(grey, (0, 0), sigma * 2**b)
        bands.append(previous - blurred)
        previous = blurred
    return bands


def band_energies(grey: np.ndarray, sigma: float, count: int) -> list[np.ndarray]:
    """Local detail energy per band: each band squared and averaged over a neighbourhood of twice its scale."""
    return [cv2.GaussianBlur(b * b, (0, 0), 2.0 * sigma * 2**i) for i, b in enumerate(detail_bands(grey, sigma, count))]


def grey_and_colour(grey_gain: float, colour_gain: float) -> np.ndarray:
    """The 3x3 matrix (for ``cv2.transform``) that scales an RGB change's mean by `grey_gain` and the rest by
    `colour_gain`: one pass over the pixels instead of four."""
    return (colour_gain * np.eye(3) + (grey_gain - colour_gain) / 3.0 * np.ones((3, 3))).astype(np.float32)


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


# -- the mouth's gap ----------------------------------------------------------------------------------------
CHEEK_POINTS = (50, 280, 101, 330, 117, 346)  # skin the mouth interior's brightness is measured against


def mouth_strip(points: np.ndarray, rows: int, cols: int, inset: float = 0.0) -> np.ndarray:
    """(rows, cols, 2) positions across the lips' gap: column u from corner to corner, row v from the upper
    inner lip (0) to the lower (1). Training photos are sampled here (`inset`: leave that share of the gap's
    height at each lip out, where the landmarks sit on the lip itself); an edit paints the grid back."""
    upper = np.asarray(points, np.float64)[list(UPPER_INNER_LIP), :2]
    lower = np.asarray(points, np.float64)[list(LOWER_INNER_LIP), :2]
    knots = np.linspace(0.0, 1.0, len(UPPER_INNER_LIP))
    u = np.linspace(0.0, 1.0, cols)
    top = np.stack([np.interp(u, knots, upper[:, k]) for k in range(2)], axis=-1)
    bottom = np.stack([np.interp(u, knots, lower[:, k]) for k in range(2)], axis=-1)
    v = np.linspace(inset, 1.0 - inset, rows)[:, None, None]
    return (top[None] + v * (bottom - top)[None]).astype(np.float32)


def mouth_gap(points: np.ndarray, cm: float) -> float:
    """Height of the lips' gap at its centre in canonical centimetres (`cm` pixels per centimetre)."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(p[14, :2] - p[13, :2]) / max(cm, 1e-6)) * (1.0 if p[14, 1] >= p[13, 1] else -1.0)


def skin_level(rgb: np.ndarray, points: np.ndarray, face_width: float) -> float:
    """The face's skin brightness (0..255 grey): the median of small patches on both cheeks."""
    radius = max(1, round(0.03 * face_width))
    height, width = rgb.shape[:2]
    samples = []
    for index in CHEEK_POINTS:
        x, y = (round(float(v)) for v in np.asarray(points)[index, :2])
        patch = rgb[max(y - radius, 0) : min(y + radius + 1, height), max(x - radius, 0) : min(x + radius + 1, width)]
        if patch.size:
            samples.append(patch.reshape(-1, 3).astype(np.float32).mean(axis=1))
    return float(np.median(np.concatenate(samples))) if samples else 128.0


def hair_weight(roi: np.ndarray, grid_rgb: np.ndarray, face_mask: np.ndarray, mouth_row: float) -> np.ndarray:
    """(h, w) float32 on the engine grid: how surely each pixel is the person's hair, 0 where that is unsure.

    Hair is what is inside the person's silhouette (MediaPipe's selfie segmenter on the photo region `roi`),
    outside the face, above the mouth (below it are the neck, beards and clothes) and unlike the face's skin
    in colour (ears, a bald crown and blond hair as pale as the skin are left alone).
    """
    from ganime_age.faces.segment import shared_segmenter

    grid_h, grid_w = grid_rgb.shape[:2]
    silhouette = cv2.resize(shared_segmenter()(roi), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    silhouette = np.clip((silhouette - 0.3) / 0.4, 0.0, 1.0)  # the segmenter's faint doubts (a wall) count as none
    lab = cv2.cvtColor(np.ascontiguousarray(grid_rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = face_mask > 0.5
    if not inside.any():
        return np.zeros((grid_h, grid_w), np.float32)
    distance = np.sqrt(((lab - np.median(lab[inside], axis=0)) ** 2).sum(axis=2))
    near, far = HAIR_SKIN_DISTANCE
    unlike_skin = np.clip((distance - near) / (far - near), 0.0, 1.0)
    outside_face = 1.0 - np.clip(2.0 * cv2.GaussianBlur(face_mask, (0, 0), 2.0), 0.0, 1.0)
    rows = np.arange(grid_h, dtype=np.float32)[:, None]
    above_mouth = np.clip((mouth_row - rows) / max(0.05 * grid_h, 1.0), 0.0, 1.0)
    weight = (silhouette * unlike_skin * outside_face * above_mouth).astype(np.float32)
    # a grid pixel astride the hairline is half skin: greyed, its skin would light up as a seam
    weight = cv2.erode(weight, np.ones((3, 3), np.uint8))
    weight[weight < 0.02] = 0.0  # so the repainted box ends where the hair does
    return weight


def strip_mesh(cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Triangles and (u, v) per vertex of the gap drawn as a strip of quads (upper lip row, lower lip row)."""
    n = len(UPPER_INNER_LIP)
    triangles = []
    for i in range(n - 1):
        triangles += [(i, i + 1, n + i), (i + 1, n + i + 1, n + i)]
    u = np.linspace(0.0, 1.0, n)
    coords = np.concatenate([np.stack([u, np.zeros(n)], 1), np.stack([u, np.ones(n)], 1)]) * [cols - 1, 1.0]
    return np.asarray(triangles), coords.astype(np.float32)


# -- one face of one photo, ready for slider moves ---------------------------------------------------------
@dataclass
class EngineFace:
    """What an edit of one face needs that does not depend on the sliders (computed once per photo)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the region an edit may touch (photo pixels)
    scale: float  # engine grid pixels per photo pixel (<= 1)
    grid_shape: tuple[int, int]  # engine grid (height, width)
    raster: MeshRaster  # the face's own mesh on the engine grid (near surface, far side culled)
    template_coords: np.ndarray  # (h, w, 2) template position of each engine pixel on the face
    face_mask: np.ndarray  # (h, w) float32 soft mask of the face on the engine grid
    log_grey_bands: list[np.ndarray]  # the face's own detail bands (engine grid, log luminance)
    rotation: np.ndarray  # (3, 3) canonical frame -> photo frame
    cm_to_grid: float  # engine pixels per canonical centimetre
    female: float  # probability that the face is a woman's (blends the per-sex tables)
    colourfulness: float  # 0 for a grey photo
    landmarks: np.ndarray  # (478, 3) engine-grid positions
    mouth_gap: float  # the lips' gap at their centre, canonical cm
    skin: float  # skin brightness (0..255), the mouth interior's reference
    smooth_rgb: np.ndarray  # (h, w, 3) float32 the face's colours on the engine grid, blurred: what a tint scales
    hair: np.ndarray  # (h, w) float32 where the engine grid is the person's hair (see :func:`hair_weight`)
    hair_colour: np.ndarray  # (h, w, 3) float32 log ratio of mean 0: the hair's colour to grey (see grey_hair)
    hair_lift: np.ndarray  # (h, w) float32 log brightness change: the hair to grey hair's brightness


@dataclass
class TextureChange:
    """An edit's repaint on the engine grid, in the log domain.

    ``ratio`` (h, w, 3) is smooth and multiplies each channel (tone, shading, colour: a ratio image); ``fine``
    (h, w) changes brightness alone, by the same amount in every channel, so that deepened or smoothed
    wrinkles keep the skin's colour instead of scaling it into fine colour speckles.
    """

    ratio: np.ndarray
    fine: np.ndarray
    mask: np.ndarray  # (h, w) where the change may be non-zero (the face, and the hair when it greys)


class FittedEngine(HubModel):
    """Age and AU edits of whole photos from fitted shape and appearance tables (see the module docstring)."""

    model_type = "fitted_engine"
    config_class = FittedEngineConfig
    description = (
        "A fitted (least squares, means) face-edit engine: age progression/regression and FACS AU expression "
        "edits at the photo's own resolution, from landmark displacement models and shape-normalised prototypes."
    )
    uses_aus = True
    uses_source_age = True

    def __init__(self, config: FittedEngineConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        k, size = len(c.age_centres), c.template_size
        energy = size // c.energy_downsample
        thumb = c.sex_features * c.sex_features
        self.register_buffer("mean_shape", torch.zeros(NUM_LANDMARKS, 3))  # canonical cm
        self.register_buffer("age_shapes", torch.zeros(2, k, NUM_LANDMARKS, 3))  # male, female: offsets from the mean
        self.register_buffer("au_shapes", torch.zeros(NUM_AUS, NUM_LANDMARKS, 3))
        # per AU: how far one unit moves the face, fitted so that an edit to x reads x on the AU read-out
        self.register_buffer("au_gains", torch.ones(NUM_AUS))
        # per landmark: the farthest real expressions move it (canonical cm); an expression edit never goes further
        self.register_buffer("au_reach", torch.zeros(NUM_LANDMARKS))
        self.register_buffer("mean_texture", torch.zeros(3, size, size))
        self.register_buffer("age_textures", torch.zeros(2, k, 3, size, size))  # offsets from mean_texture
        self.register_buffer("age_energies", torch.zeros(2, k, c.detail_bands, energy, energy))
        self.register_buffer("au_textures", torch.zeros(NUM_AUS, 3, size, size))
        self.register_buffer("sex_weights", torch.zeros(thumb + 1))  # logistic regression, last = bias
        rows, cols = c.mouth_grid
        # colour of the open mouth relative to the face's skin brightness
        # (open jaw | smile, gap bin, 3, rows, cols): a dropped jaw shows the dark of the mouth, a smile the teeth
        self.register_buffer("mouth_interiors", torch.zeros(2, len(c.mouth_gaps), 3, rows, cols))
        # per age centre, the share of a person's hair that has greyed (0 = none fitted: hair is never touched),
        # and grey hair's brightness relative to the skin's
        self.register_buffer("hair_greying", torch.zeros(k))
        self.register_buffer("hair_level", torch.ones(1))
        self._tables: dict[str, np.ndarray] | None = None
        self._split: dict[str, np.ndarray] | None = None

    # -- tables as numpy (the engine runs in numpy/OpenCV; torch holds the fitted state) ---------------
    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.invalidate()
        super()._load_from_state_dict(*args, **kwargs)

    @property
    def tables(self) -> dict[str, np.ndarray]:
        if self._tables is None:
            self._tables = {name: buffer.detach().float().cpu().numpy() for name, buffer in self.named_buffers()}
        return self._tables

    def invalidate(self) -> None:
        """Call after changing buffers in place (the fitting does)."""
        self._tables = None
        self._split = None

    @property
    def template(self) -> Template:
        c = self.config
        return template_for(c.template_size, c.template_scale, tuple(c.template_centre))

    @property
    def centres(self) -> np.ndarray:
        return np.asarray(self.config.age_centres, np.float64)

    # -- per photo ----------------------------------------------------------------------------------------
    def prepare_face(self, rgb: np.ndarray, landmarks: np.ndarray) -> EngineFace:
        """Everything about one face that slider moves reuse: region, engine grid, mesh raster, bands, sex."""
        from ganime_age.face_model import canonical_face, head_similarity

        c = self.config
        template = self.template
        points = np.asarray(landmarks, np.float64)
        height, width = rgb.shape[:2]
        face_width = float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2]))
        face_width = max(face_width, float(np.ptp(points[:NUM_MESH_VERTICES, 0])), 8.0)
        low, high = points[:, :2].min(0), points[:, :2].max(0)
        reach = c.margin * face_width
        x0, y0 = np.floor(low - reach).astype(int)
        x1, y1 = np.ceil(high + reach).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        scale = min(1.0, c.engine_face_pixels / face_width)
        grid_w, grid_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
        # exact grid <-> photo mapping: grid pixel centres at photo ((g + 0.5) / sx - 0.5) + x0
        sx, sy = grid_w / (x1 - x0), grid_h / (y1 - y0)
        grid_points = points.copy()
        grid_points[:, 0] = (points[:, 0] - x0 + 0.5) * sx - 0.5
        grid_points[:, 1] = (points[:, 1] - y0 + 0.5) * sy - 0.5
        grid_points[:, 2] = points[:, 2] * sx
        roi = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        grid_rgb = cv2.resize(roi, (grid_w, grid_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else roi
        raster = rasterise(
            grid_points[:NUM_MESH_VERTICES, :2],
            template.triangles,
            (grid_h, grid_w),
            depth=grid_points[:NUM_MESH_VERTICES, 2],
            reference_areas=template.frontal_areas,
        )
        template_coords = raster.interpolate(template.vertices.astype(np.float32), fill=-1.0)
        face_mask = (
            cv2.remap(
                template.mask, template_coords[..., 0], template_coords[..., 1], cv2.INTER_LINEAR, borderValue=0.0
            )
            * raster.mask
        )
        log_rgb = log_image(grid_rgb)
        grey = log_rgb.mean(axis=2)
        band_scale = c.band_sigma * (grid_points[FACE_RIGHT, 0] - grid_points[FACE_LEFT, 0]) / self._template_width
        bands = detail_bands(grey, max(float(band_scale), 0.5), c.detail_bands)
        similarity = head_similarity(points, canonical_face())
        inside = face_mask > 0.5
        chroma = np.abs(log_rgb - grey[..., None])[inside].mean() if inside.any() else 0.0
        cm_to_grid = float(similarity.scale * sx)
        face_mask = face_mask.astype(np.float32)
        hair = hair_weight(roi, grid_rgb, face_mask, float(grid_points[MOUTH_CENTRE, 1]))
        skin = skin_level(rgb, points, face_width)
        hair_colour, hair_lift = self.grey_hair(grid_rgb, hair, skin)
        return EngineFace(
            box=(int(x0), int(y0), int(x1), int(y1)),
            scale=float(sx),
            grid_shape=(grid_h, grid_w),
            raster=raster,
            template_coords=template_coords,
            face_mask=face_mask,
            log_grey_bands=bands,
            rotation=similarity.rotation,
            cm_to_grid=cm_to_grid,
            female=self.female_probability(rgb, points),
            colourfulness=float(chroma),
            landmarks=grid_points,
            mouth_gap=mouth_gap(grid_points, cm_to_grid),
            skin=skin,
            smooth_rgb=cv2.GaussianBlur(
                grid_rgb.astype(np.float32), (0, 0), max(TINT_SCALE * face_width * sx, 1.0)
            ).reshape(grid_h, grid_w, 3),
            hair=hair,
            hair_colour=hair_colour,
            hair_lift=hair_lift,
        )

    @property
    def _template_width(self) -> float:
        v = self.template.vertices
        return float(v[FACE_RIGHT, 0] - v[FACE_LEFT, 0])

    def female_probability(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """The fitted logistic regression on a grey, shape-normalised thumbnail of the face (UTKFace's labels)."""
        weights = self.tables["sex_weights"]
        if not np.any(weights):
            return 0.5
        features = self.sex_features(rgb, landmarks)
        return float(1.0 / (1.0 + math.exp(-float(np.clip(features @ weights[:-1] + weights[-1], -30, 30)))))

    def sex_features(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        mapping = template_map(self.template, landmarks)
        face = cv2.remap(rgb, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        return self.sex_thumbnail(log_image(face))

    def sex_thumbnail(self, log_face: np.ndarray) -> np.ndarray:
        """A face's log-colour template view -> the classifier's input (grey, small, standardised)."""
        grey = log_face.mean(axis=2) * self.template.mask
        side = self.config.sex_features
        thumb = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).reshape(-1)
        return (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)

    # -- per slider move --------------------------------------------------------------------------------
    def shape_change(
        self,
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
        c, t = self.config, self.tables
        sexes = np.array([1.0 - face.female, face.female])
        change = np.zeros((NUM_LANDMARKS, 3))
        if source_age != target_age:
            weights = age_weights(target_age, self.centres) - age_weights(source_age, self.centres)
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
            moved += self.to_grid(face, np.asarray(target_landmarks, np.float64)[:, :2]) - face.landmarks[:, :2]
        return moved

    @staticmethod
    def to_grid(face: EngineFace, points: np.ndarray) -> np.ndarray:
        """Photo pixel positions -> engine grid positions of this face."""
        x0, y0, x1, y1 = face.box
        sx, sy = face.grid_shape[1] / (x1 - x0), face.grid_shape[0] / (y1 - y0)
        out = np.empty_like(np.asarray(points, np.float64))
        out[:, 0] = (points[:, 0] - x0 + 0.5) * sx - 0.5
        out[:, 1] = (points[:, 1] - y0 + 0.5) * sy - 0.5
        return out

    def texture_change(
        self, face: EngineFace, source_age: float, target_age: float, source_aus: np.ndarray, target_aus: np.ndarray
    ) -> TextureChange | None:
        """The log-intensity change on the engine grid (None when the edit repaints nothing), in two parts:
        a smooth per-channel ratio (tone, shading, colour) and a fine change of brightness alone.

        The age change has three parts, all computed in the template and mapped onto the face once:

        - the prototypes' large-scale difference (skin tone, shading, colour), added in the log domain (a
          ratio image), less most of its face-wide mean (``age_exposure_share``);
        - the face's own detail, band by band, scaled by the ratio of the prototypes' local detail energy
          (Tiddeman et al.): wrinkles, brows and beard shadow grow or fade as the face has them, and nothing
          appears where it has none, so a clean-shaven man gets no white patch where the average man of
          his age has a moustache shadow;
        - when ageing, the darkening part of the prototypes' fold-scale difference, so that nasolabial folds,
          eye bags and forehead lines appear even on a face that has no trace of them yet.

        Fine changes are of brightness only (see :class:`TextureChange`): a photo carries almost no fine
        colour (JPEG keeps colour at half resolution), and a fine *ratio* would print the skin's colour into
        every wrinkle it deepens or smooths, as speckles of colour.
        """
        c, t = self.config, self.tables
        size = c.template_size
        sexes = np.array([1.0 - face.female, face.female])
        smooth = np.zeros((size, size, 3), np.float32)  # channels last: what cv2.remap maps in one call
        fine = np.zeros((size, size), np.float32)
        repaint = False
        gains = None
        if source_age != target_age:
            split = self.age_split
            w_t, w_s = age_weights(target_age, self.centres), age_weights(source_age, self.centres)
            large = blend(split["large"], sexes, w_t - w_s)
            if c.age_exposure_share != 1.0:
                mask = self.template.mask
                mean = np.tensordot(mask, large, axes=([0, 1], [0, 1])) / max(float(mask.sum()), 1e-6)
                large -= np.float32(1.0 - c.age_exposure_share) * mean.astype(np.float32)
            large *= split["tone_weight"]
            # brightness (the channels' mean) times age_texture_gain, colour (the rest) times age_chroma_gain
            tone = cv2.transform(large, grey_and_colour(c.age_texture_gain, c.age_chroma_gain))
            if target_age > source_age:  # folds and lines that come with age: the prototypes' darkening only
                # a ratio (darker in every channel alike), not a brightness offset: taking the same amount off
                # each channel of a deep fold saturates its colour into a purple, bruise-like socket
                folds = c.age_fold_gain * blend(split["folds"], sexes, w_t - w_s)
                tone += np.minimum(folds, 0.0)[..., None]
            smooth += tone
            energies = [blend(split["energies"], sexes, w) for w in (w_t, w_s)]
            floor = 1e-6 + 0.05 * energies[1].mean(axis=(0, 1), keepdims=True)
            ratio = (energies[0] + floor) / (energies[1] + floor)
            gains = np.clip(ratio ** (0.5 * c.detail_gain_power), *c.detail_gain_range)
            caps = np.asarray(c.detail_gain_caps, np.float32)[: gains.shape[2]]
            gains = np.minimum(gains, caps).astype(np.float32)
            if target_age > source_age:
                # ageing brows keep most of their detail: an average's fainter brow, applied as a gain, bleaches
                # the brow's body and leaves its outline, as if drawn on (a child's faint brows are right)
                keep = 1.0 - AGED_FEATURE_HOLD * split["features"]
                gains = (1.0 + (gains - 1.0) * keep).astype(np.float32)
            repaint = True
        au_delta = (np.asarray(target_aus, np.float32) - np.asarray(source_aus, np.float32)) * t["au_gains"]
        if np.any(au_delta):
            # the gains make an AU's shape read as asked; its skin (folds, shading) follows, more gently
            gentle = au_delta / np.sqrt(t["au_gains"])
            lines = np.zeros_like(fine)
            for au in np.flatnonzero(gentle):
                smooth += (c.au_texture_gain * gentle[au]) * self.age_split["au_smooth"][au]
                lines += (c.au_texture_gain * gentle[au]) * self.age_split["au_fine"][au]
            # expression lines darken (frown lines, folds); a strong brightening is a pair's misalignment at an
            # edge (a lid's crease), which printed thin white arcs
            fine += np.clip(lines, -AU_LINE_DEPTH, AU_LINE_GLOW)
            repaint = True
        greying = self.hair_greying_share(source_age, target_age) if face.hair.any() else 0.0
        if greying <= 0.0 and (
            not repaint or (not np.any(smooth) and not np.any(fine) and (gains is None or np.all(gains == 1.0)))
        ):
            return None
        # colour changes in proportion to how colourful the face is: a grey photo stays grey
        smooth = cv2.transform(smooth, grey_and_colour(1.0, min(face.colourfulness / COLOURFUL, 1.0)))
        coords = face.template_coords
        ratio_out = cv2.remap(smooth, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderValue=0.0)
        ratio_out *= face.face_mask[..., None]
        fine_out = cv2.remap(fine, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderValue=0.0)
        if gains is not None:
            stacked = cv2.resize(gains, (size, size))
            mapped = cv2.remap(stacked, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderValue=1.0)
            mapped = mapped.reshape(*face.grid_shape, -1)
            fine_out += sum((mapped[..., b] - 1.0) * band for b, band in enumerate(face.log_grey_bands))
        fine_out *= face.face_mask
        if greying <= 0.0:
            return TextureChange(ratio_out, fine_out, face.face_mask)
        ratio_out += np.float32(greying) * face.hair_colour
        fine_out += np.float32(greying) * face.hair_lift
        return TextureChange(ratio_out, fine_out, np.maximum(face.face_mask, face.hair))

    def hair_greying_share(self, source_age: float, target_age: float) -> float:
        """The share of the hair still pigmented at `source_age` that greys by `target_age` (0 when getting
        younger: grey hair's lost colour cannot be told from the photo)."""
        table = self.tables["hair_greying"]
        if target_age <= source_age or self.config.hair_greying_gain <= 0.0 or not table.any():
            return 0.0
        before, after = np.interp([source_age, target_age], self.centres, table)
        share = self.config.hair_greying_gain * (after - before) / max(1.0 - before, 1e-3)
        return float(np.clip(share, 0.0, 1.0))

    def grey_hair(self, grid_rgb: np.ndarray, hair: np.ndarray, skin: float) -> tuple[np.ndarray, np.ndarray]:
        """The way from the hair's colours to grey hair's (the fitted brightness relative to the `skin`, no
        colour), weighted by `hair`: a colour change ((h, w, 3) log ratios of mean 0) and a brightness change
        ((h, w) log, the same light added to R, G and B, so the photo's colour noise in dark hair is not scaled
        up into teal speckles). An edit takes a share of both; they are made once per photo.

        Both start from the hair's colours at the grid's own sharpness (a grid pixel is a few photo pixels):
        from colours blurred across the hairline, a lift meant for dark hair lit the skin beside it into a
        bright seam. Strands finer than a grid pixel keep their light and dark, brightened.
        """
        offset = np.float32(255.0 * LOG_EPSILON)
        level = np.float32(self.tables["hair_level"][0] * skin) + offset
        sharp = cv2.GaussianBlur(grid_rgb.astype(np.float32), (0, 0), 1.0).reshape(grid_rgb.shape)
        ratio = np.log(level) - np.log(sharp + offset)
        mean = ratio.mean(axis=2, keepdims=True)
        return (ratio - mean) * hair[..., None], np.clip(mean[..., 0], 0.0, HAIR_MAX_LIFT) * hair

    @property
    def age_split(self) -> dict[str, np.ndarray]:
        """The fitted tables as a slider move reads them, made once: the age prototypes' large scale (tone,
        shading), their fold-scale luminance band (between the finest detail band and the large scale), the
        detail energies, and the AU ratio images on skin only, split like the age change into their large
        scale (per channel) and the brightness of the rest (frown lines, folds); all channels last.

        (What the AU ratio images show in the eyes, the lips' gap and the brows, hair that MediaPipe's brow
        points follow loosely, is the pairs' misalignment, not the AU: it is masked out.)
        """
        if self._split is None:
            t = self.tables
            c = self.config
            prototypes = (t["mean_texture"][None, None] + t["age_textures"]).transpose(0, 1, 3, 4, 2)
            large = np.empty_like(prototypes)
            folds = np.empty(prototypes.shape[:4], np.float32)
            regions = self.template.regions
            features = np.maximum(np.maximum(regions["eyes"], regions["brows"]), regions["mouth"])
            forehead = self.forehead_row
            for index in np.ndindex(prototypes.shape[:2]):
                blurred = self.template_blur(np.ascontiguousarray(prototypes[index]))
                luma = prototypes[index].mean(axis=2)
                folds[index] = cv2.GaussianBlur(luma, (0, 0), c.band_sigma) - blurred.mean(axis=2)
                large[index] = self.skin_tone(prototypes[index], features)
            energies = t["age_energies"].transpose(0, 1, 3, 4, 2)
            energies = hold_above(energies, forehead // c.energy_downsample, axis=2)
            skin = 1.0 - np.maximum(np.maximum(regions["mouth"], regions["eyes_wide"]), regions["brows"])
            au_skin = np.ascontiguousarray((t["au_textures"] * skin).transpose(0, 2, 3, 1), dtype=np.float32)
            # a pair's tone difference on the forehead is its brows' misalignment (MediaPipe's brow points lag a
            # raised brow): it painted a glowing band above raised brows; forehead lines are in the fine part
            au_blurred = np.stack([self.template_blur(image) for image in au_skin])
            tone_weight = self.tone_weight
            self._split = {
                "large": np.ascontiguousarray(large, dtype=np.float32),
                "folds": folds * (self.template.mask * (1.0 - regions["mouth"]))[None, None],
                "energies": np.ascontiguousarray(energies, dtype=np.float32),
                "tone_weight": tone_weight,
                "features": cv2.resize(features, t["age_energies"].shape[-2:][::-1], interpolation=cv2.INTER_AREA)[
                    ..., None
                ],
                "au_smooth": au_blurred * tone_weight[None],
                "au_fine": np.ascontiguousarray((au_skin - au_blurred).mean(axis=3), dtype=np.float32),
            }
        return self._split

    @property
    def forehead_row(self) -> int:
        """The template row a little above the brows: above it the prototypes' age differences are hair as
        much as skin (see :attr:`tone_weight`), so the tone change is not taken and the detail energies are held."""
        vertices = self.template.vertices
        brows = float(vertices[list(BROW_TOPS), 1].min())
        return max(int(brows - 0.04 * self._template_width), 0)

    def skin_tone(self, image: np.ndarray, features: np.ndarray) -> np.ndarray:
        """A prototype's tone and shading: `image` blurred to LARGE_SCALE over the skin below the forehead
        alone (normalised convolution), which continues it over the brows, the eyes and the upper forehead.

        What the blur must not see: the brows and eyes (an average old woman's brows are paler and thinner, and
        a ratio image of that does not thin a brow: it bleaches a band where the brow is and makes eye whites
        glow; brows thin through the detail gains), and the upper forehead (see :attr:`tone_weight`).
        """
        weight = (1.0 - features) * self.template.raster.mask
        weight[: self.forehead_row] = 0.0
        sigma = LARGE_SCALE * self._template_width
        spread = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
        blurred = cv2.GaussianBlur(image * weight[..., None], (0, 0), sigma).reshape(image.shape)
        return np.where(spread > 1e-3, blurred / np.maximum(spread, 1e-3), image).astype(np.float32)

    @property
    def tone_weight(self) -> np.ndarray:
        """(R, R, 1): how much of the prototypes' tone change a template pixel takes: none above the brows, all
        from the brows' lower edge down.

        The prototypes' foreheads are part hair (children's fringes, receding hairlines), so their difference
        there is a hairline, not skin: it painted a dark band across the forehead of every face made young (a
        band the age estimator read as a fringe, and so as a child).
        """
        vertices = self.template.vertices
        low = float(vertices[list(RIGHT_BROW[:5]) + list(LEFT_BROW[:5]), 1].max())
        rows = np.arange(self.config.template_size, dtype=np.float32)
        ramp = np.clip((rows - self.forehead_row) / max(low - self.forehead_row, 1.0), 0.0, 1.0)
        ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible edge where the change begins
        return np.repeat(ramp[:, None, None], self.config.template_size, axis=1)

    def template_blur(self, image: np.ndarray) -> np.ndarray:
        """A blur over the template's face only (normalised by the blurred mask, so the edge is not darkened)."""
        mask = self.template.raster.mask
        sigma = LARGE_SCALE * self._template_width
        weight = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]
        blurred = cv2.GaussianBlur(image * mask[..., None], (0, 0), sigma)
        blurred = blurred.reshape(image.shape)
        return np.where(weight > 1e-3, blurred / np.maximum(weight, 1e-3), image).astype(np.float32)

    def render(
        self,
        rgb: np.ndarray,
        face: EngineFace,
        source_age: float,
        target_age: float,
        source_aus: np.ndarray,
        target_aus: np.ndarray,
        *,
        target_landmarks: np.ndarray | None = None,
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """The edited part of the photo: its box (x0, y0, x1, y1), its uint8 pixels and where it changed
        ((h, w) float32, 0 = the input's pixel), or None when the edit changes nothing.

        The geometry and the log-intensity change are computed on the engine grid; only the final
        resampling (one cubic remap of the input's own pixels) and the intensity change run at the photo's
        resolution, and only over the box the edit changes. `target_landmarks`: see :meth:`shape_change`.
        """
        source_age = float(np.clip(source_age, 0.0, MAX_AGE))
        target_age = float(np.clip(target_age, 0.0, MAX_AGE))
        moves = self.shape_change(face, source_age, target_age, source_aus, target_aus, target_landmarks)
        texture = self.texture_change(face, source_age, target_age, source_aus, target_aus)
        moving = bool(np.abs(moves).max() > 1e-3)
        if not moving and texture is None:
            return None
        grid_h, grid_w = face.grid_shape
        bx0, by0, bx1, by1 = face.box
        per_x, per_y = (bx1 - bx0) / grid_w, (by1 - by0) / grid_h
        sample: np.ndarray | None = None
        changed = np.zeros(face.grid_shape, np.float32)
        if moving:
            forward = face.raster.interpolate(moves[:NUM_MESH_VERTICES].astype(np.float32))
            forward = extend_outward(forward, face.raster.mask, reach=OUTWARD_REACH * face.cm_to_grid)
            # a smooth, gentle motion (an age edit) is inverted by fixed-point steps; where that misses (a large
            # expression folds the field), the face takes the exact inverse: the moved mesh drawn near side
            # last, each pixel reading from where its triangle came from
            sample = invert_displacement(forward)
            landed = sample + cv2.remap(forward, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR)
            if np.abs(landed - identity_grid(grid_h, grid_w)).max() > INVERSE_TOLERANCE:
                source = face.landmarks[:NUM_MESH_VERTICES, :2]
                moved = rasterise(
                    source + moves[:NUM_MESH_VERTICES],
                    self.template.triangles,
                    face.grid_shape,
                    depth=face.landmarks[:NUM_MESH_VERTICES, 2],
                    reference_areas=self.template.frontal_areas,
                )
                moved.interpolate_into(sample, source)
            # photo pixels each grid pixel moves; what barely moves (< STILL_PIXELS) keeps the input's pixels
            shift = cv2.magnitude(*cv2.split(sample - identity_grid(grid_h, grid_w))) * np.float32(max(per_x, per_y))
            changed = np.clip(shift * 4.0, 0.0, 1.0)
            changed[shift < STILL_PIXELS] = 0.0
        factor: np.ndarray | None = None
        if texture is not None:
            factor = repaint_table(texture, face.smooth_rgb)
            if sample is not None:  # painted on the input's shape, then moved with it
                factor = cv2.remap(factor, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR, borderValue=0.0)
            # where the face is repainted (a change below half a grey level rounds back to the input's pixel);
            # the table is masked by the face, so this is also where it is not zero
            painted = (
                texture.mask
                if sample is None
                else cv2.remap(texture.mask, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR)
            )
            changed = np.maximum(changed, painted)
        # the box of the photo that changes (engine grid -> photo pixels, one grid pixel of slack)
        rows, cols = np.nonzero(changed > 0.0)
        if len(rows) == 0:
            return None
        gy0, gy1 = max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, grid_h)
        gx0, gx1 = max(int(cols.min()) - 1, 0), min(int(cols.max()) + 2, grid_w)
        x0, x1 = bx0 + int(np.floor(gx0 * per_x)), min(bx0 + int(np.ceil(gx1 * per_x)), bx1)
        y0, y1 = by0 + int(np.floor(gy0 * per_y)), min(by0 + int(np.ceil(gy1 * per_y)), by1)
        region_size = (bx1 - bx0, by1 - by0)
        box = (slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))

        def to_photo(field: np.ndarray) -> np.ndarray:
            """A grid field at the photo pixels of the box. The grid spans the region exactly, so a resize of the
            whole grid to the region puts grid pixel g at photo pixel (g + 0.5) * per - 0.5 as the rest of the
            engine does, three times faster than an affine warp of the box alone; a view of the box is kept."""
            return cv2.resize(field, region_size, interpolation=cv2.INTER_LINEAR)[box]

        mask = to_photo(changed)
        original = rgb[y0:y1, x0:x1]
        if sample is not None:
            # sampling positions in the photo region's pixels, then one cubic remap of the input's own pixels
            # (one two-channel map: slicing x and y apart would copy both)
            sample += 0.5
            sample *= np.array([per_x, per_y], np.float32)
            sample -= 0.5
            region = rgb[by0:by1, bx0:bx1]
            edited = resample(region, to_photo(sample))
        else:
            edited = original.copy()
        if factor is not None:
            # only the part of the box the colour change reaches (the face; the geometry's box is wider)
            painted_rows, painted_cols = np.nonzero(painted > 0.0)
            if len(painted_rows):
                px0 = max(bx0 + int(np.floor((painted_cols.min() - 1) * per_x)), x0)
                px1 = min(bx0 + int(np.ceil((painted_cols.max() + 2) * per_x)), x1)
                py0 = max(by0 + int(np.floor((painted_rows.min() - 1) * per_y)), y0)
                py1 = min(by0 + int(np.ceil((painted_rows.max() + 2) * per_y)), y1)
                # photo pixel (x, y) sits at grid position ((x - bx0 + 0.5) / per_x - 0.5): an affine map
                to_grid = np.array(
                    [
                        [1.0 / per_x, 0.0, (px0 - bx0 + 0.5) / per_x - 0.5],
                        [0.0, 1.0 / per_y, (py0 - by0 + 0.5) / per_y - 0.5],
                    ]
                )
                repaint(edited[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0], factor, to_grid)
        if moving:
            smile = float(np.asarray(target_aus)[AU_NAMES.index("AU12")])
            self._paint_mouth(edited, face, moves, (x0, y0), (per_x, per_y), smile)
        cv2.copyTo(original, cv2.compare(mask, 0.0, cv2.CMP_LE), edited)  # untouched pixels: the input's own
        return (x0, y0, x1, y1), edited, mask

    def _paint_mouth(
        self,
        edited: np.ndarray,
        face: EngineFace,
        moves: np.ndarray,
        origin: tuple[int, int],
        per_pixel: tuple[float, float],
        smile: float,
    ) -> None:
        """Paint the fitted mouth interior into the lips' gap where the edit opened it (in place).

        A warp can only stretch the lips' own pixels over an opening mouth; teeth and the dark of the mouth
        come from the interiors of CFEE's open mouths at the same gap height (of smiles or of dropped jaws, as
        much as the target AU12 says), brightness-matched to this face's skin. Where the mouth was already
        open the face keeps its own interior, and the painted one takes over only as far as the gap grew.
        """
        target = face.landmarks[:, :2] + moves
        gap = mouth_gap(target, face.cm_to_grid)
        grown = gap - max(face.mouth_gap, 0.0)
        share = float(np.clip(grown / (0.5 * max(gap, 0.0) + 0.1), 0.0, 1.0))
        if gap <= 0.05 or share <= 0.0:
            return
        # target lip points in the edited box's pixels (grid -> photo pixel centres -> box)
        x0, y0 = origin
        bx0, by0, _, _ = face.box
        points = np.empty_like(target)
        points[:, 0] = (target[:, 0] + 0.5) * per_pixel[0] - 0.5 + bx0 - x0
        points[:, 1] = (target[:, 1] + 0.5) * per_pixel[1] - 0.5 + by0 - y0
        lips = points[list(UPPER_INNER_LIP) + list(LOWER_INNER_LIP)]
        sigma = MOUTH_EDGE_CHROMA * face.cm_to_grid * max(per_pixel)  # photo pixels
        margin = 2 + int(np.ceil(3.0 * sigma))  # room for the colour blur around the lips' gap
        lo = np.maximum(np.floor(lips.min(0)).astype(int) - margin, 0)
        hi = np.minimum(np.ceil(lips.max(0)).astype(int) + margin + 1, [edited.shape[1], edited.shape[0]])
        if np.any(hi - lo < 2):
            return
        rows, cols = self.config.mouth_grid
        triangles, coords = strip_mesh(cols)
        raster = rasterise(lips - lo, triangles, (int(hi[1] - lo[1]), int(hi[0] - lo[0])))
        if len(raster.pixels) == 0:
            return
        uv = raster.interpolate(coords * [1.0, rows - 1.0], fill=-10.0)
        interior = self._mouth_interior(gap, smile, face)
        painted = cv2.remap(interior, uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # a soft edge one pixel inside the lips, so the lip line stays the photo's
        weight = cv2.GaussianBlur(cv2.erode(raster.mask, np.ones((3, 3), np.uint8)), (0, 0), 0.8) * share
        region = edited[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
        blended = region + weight[..., None] * (painted - region)
        # the lips' red meeting painted teeth is a colour edge as sharp as a pixel, which a camera (demosaicing,
        # chroma subsampling) never keeps: across the edge the colour is blurred, the brightness stays sharp
        blended = soften_colour(blended, weight, sigma)
        edited[lo[1] : hi[1], lo[0] : hi[0]] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)

    def _mouth_interior(self, gap: float, smile: float, face: EngineFace) -> np.ndarray:
        """(rows, cols, 3) float32 colours of an open mouth with this gap and smile, at this face's brightness."""
        bins = np.asarray(self.config.mouth_gaps, np.float64)
        smiling = float(np.clip((smile - 1.0) / 2.0, 0.0, 1.0))
        relative = blend(self.tables["mouth_interiors"], np.array([1.0 - smiling, smiling]), age_weights(gap, bins))
        relative = relative.transpose(1, 2, 0)
        colour = relative * face.skin
        grey = colour.mean(axis=2, keepdims=True)
        share = min(face.colourfulness / COLOURFUL, 1.0)
        # teeth, gums and the dark of the mouth keep their sharp brightness; their colour is smoothed, as a photo
        # keeps it (a median of many mouths has colour edges at every tooth, twice a real mouth's fine colour)
        tint = cv2.GaussianBlur(np.ascontiguousarray(colour - grey, dtype=np.float32), (0, 0), MOUTH_TINT_SIGMA)
        return np.ascontiguousarray(grey + share * tint, dtype=np.float32)

    def edit_photo(
        self,
        rgb: np.ndarray,
        faces: list[EngineFace],
        source_ages: list[float],
        target_ages: list[float],
        source_aus: list[np.ndarray],
        target_aus: list[np.ndarray],
        target_landmarks: list[np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, list[tuple[tuple[int, int, int, int], np.ndarray] | None]]:
        """The whole photo with every listed face edited, and per face the box and mask of what changed.

        Faces are prepared on the input photo; each is rendered from the photo as the previous faces left it.
        `target_landmarks` (per face, or None): given geometry, e.g. a driving face's (see :meth:`shape_change`).
        """
        out = rgb
        changes: list[tuple[tuple[int, int, int, int], np.ndarray] | None] = []
        given = target_landmarks if target_landmarks is not None else [None] * len(faces)
        for face, s_age, t_age, s_aus, t_aus, points in zip(
            faces, source_ages, target_ages, source_aus, target_aus, given, strict=True
        ):
            result = self.render(out, face, s_age, t_age, s_aus, t_aus, target_landmarks=points)
            if result is None:
                changes.append(None)
                continue
            if out is rgb:
                out = rgb.copy()
            (x0, y0, x1, y1), pixels, mask = result
            out[y0:y1, x0:x1] = pixels
            changes.append(((x0, y0, x1, y1), mask))
        return out, changes


@functools.lru_cache(maxsize=1)
def outline_weights(reach: float = 1.5) -> np.ndarray:
    """(478,) 1 on the face's outline (MediaPipe's oval), falling off smoothly over `reach` canonical cm inside."""
    from ganime_age.face_model import canonical_face
    from ganime_age.faces.mesh import FACE_OVAL

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


def hold_above(table: np.ndarray, row: int, axis: int = 0) -> np.ndarray:
    """`table` with every row above `row` (along `axis`) replaced by that row: a change held constant upward."""
    out = np.array(table, copy=True)
    index = [slice(None)] * out.ndim
    source = list(index)
    index[axis], source[axis] = slice(0, row), slice(row, row + 1)
    out[tuple(index)] = out[tuple(source)]
    return out


LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)  # BT.601, as the chroma measure's complement


def resample(rgb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """uint8 RGB read at float (h, w, 2) `positions`: the brightness by a cubic, the colour by a linear kernel.

    OpenCV's cubic overshoots at an edge; in brightness that keeps a moved pixel as sharp as the photo's, but
    at a colour edge (skin against a wall, lips against teeth) it prints a coloured halo, the fine colour
    detail no camera keeps (a cubic remap alone raised a smile's fine colour by a third). So the colour comes
    from a linear read and only the brightness difference of the cubic read is added, equally to R, G and B.
    A large read runs in row bands over the cores, each band's passes on what the previous left in cache.
    """
    height, width = positions.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = np.empty((height, width, 3), np.uint8)

    def band(rows: slice) -> None:
        where = positions[rows]
        linear = cv2.remap(rgb, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        sharp = cv2.remap(grey, where, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        flat = cv2.cvtColor(linear, cv2.COLOR_RGB2GRAY)
        # the brightness difference, as its positive and negative parts in uint8 (one is 0): saturating adds
        # give the exact, clipped sum in a third of the memory traffic of 16-bit arithmetic
        lighter = cv2.cvtColor(cv2.subtract(sharp, flat), cv2.COLOR_GRAY2RGB)
        darker = cv2.cvtColor(cv2.subtract(flat, sharp), cv2.COLOR_GRAY2RGB)
        out[rows] = cv2.subtract(cv2.add(linear, lighter), darker)

    in_row_bands(band, height, width, PARALLEL_RESAMPLE, RESAMPLE_BAND_PIXELS)
    return out


def soften_colour(rgb: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """float32 RGB whose colour (each channel minus the BT.601 brightness) is blurred by `sigma` pixels where
    `weight` (h, w), spread by the blur, reaches; the brightness is kept exactly."""
    if sigma < 0.3:
        return rgb
    brightness = cv2.transform(rgb, LUMA)[..., None]
    colour = rgb - brightness
    soft = wide_blur(colour, sigma)
    reach = np.clip(2.0 * wide_blur(weight, sigma), 0.0, 1.0)[..., None]
    return brightness + colour + reach * (soft - colour)


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels, run at a scale where it spans about 3 pixels when it is wide (a 12 MP
    photo's mouth would otherwise take a 140-tap kernel): the result is smooth, so little is lost."""
    step = max(1, int(sigma / 3.0))
    if step == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // step), max(1, height // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def repaint_table(texture: TextureChange, smooth_rgb: np.ndarray) -> np.ndarray:
    """(h, w, 5) float32, 0 where nothing changes: the coefficients of one linear map per pixel,
    out = (1 + a) p + b luma(p) + c (a, b, then c per channel), see :func:`apply_factor`.

    They fold three changes into one pass over the photo: the ratio image's brightness (a gain), the fine
    brightness change (added equally to R, G and B, so deepened or smoothed wrinkles keep the skin's colour),
    and the ratio image's colour as an offset computed from the face's *blurred* colours, so a tint is as
    smooth as the ratio image itself: multiplying each channel by its own factor would also scale the
    photo's fine brightness detail differently per channel, printing wrinkles and edges in colour.
    (All act on p + eps, the log domain's offset: luma(p + eps) = luma(p) + eps.)
    """
    eps = np.float32(255.0 * LOG_EPSILON)
    grey = texture.ratio.mean(axis=2)
    gain = cv2.exp(grey)
    fine = cv2.exp(texture.fine) - np.float32(1.0)
    tint = cv2.exp(texture.ratio - grey[..., None]) - np.float32(1.0)
    brightness = gain * fine
    offset = (smooth_rgb + eps) * (gain[..., None] * tint)
    offset += (eps * (gain + brightness) - eps)[..., None]
    return cv2.merge([gain - np.float32(1.0), brightness, *cv2.split(offset)])


def apply_factor(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels repainted by a :func:`repaint_table`: out = (1 + a) p + b luma(p) + c, rounded."""
    scaled = pixels.astype(np.float32)
    brightness = cv2.transform(scaled, LUMA).reshape(*scaled.shape[:2], 1)  # (h, w, 1): added to each channel
    brightness *= table[..., 1:2]
    scaled *= table[..., :1] + np.float32(1.0)
    scaled += brightness
    scaled += table[..., 2:]
    cv2.max(scaled, 0.0, dst=scaled)  # convertScaleAbs would turn a negative value into its absolute value
    return cv2.convertScaleAbs(scaled)  # rounds and saturates at 255


PARALLEL_PIXELS = 120_000  # a repaint this large is split into row bands over the cores
BAND_PIXELS = 32_768  # pixels per band: its float32 temporaries (~0.4 MB each) stay in the core's cache
PARALLEL_RESAMPLE = 1_500_000  # a resample this large runs in bands (below it OpenCV's own threads do as well)
RESAMPLE_BAND_PIXELS = 65_536


@functools.lru_cache(maxsize=1)
def _band_pool() -> tuple[ThreadPoolExecutor, int]:
    workers = max(1, min(os.cpu_count() or 1, 4))
    return ThreadPoolExecutor(workers, thread_name_prefix="ganime-bands"), workers


def in_row_bands(band: Callable[[slice], None], height: int, width: int, parallel: int, band_pixels: int) -> None:
    """Call `band` on row slices covering `height` rows: one slice below `parallel` pixels (or on one core),
    else slices of about `band_pixels` shared by the cores, each small enough to stay in a core's cache."""
    pool, workers = _band_pool()
    if height * width < parallel or workers < 2:
        band(slice(0, height))
        return
    step = max(1, band_pixels // max(width, 1))
    list(pool.map(band, [slice(start, min(start + step, height)) for start in range(0, height, step)]))


def repaint(pixels: np.ndarray, factor: np.ndarray, to_grid: np.ndarray) -> None:
    """:func:`apply_factor` in place with the grid's `factor` table read at each pixel (`to_grid`: the (2, 3)
    affine map from these pixels to grid positions). A large face runs in row bands shared by the cores
    (NumPy's passes release the GIL and run on one core each); each band warps its own rows of the table, and
    is small enough that every pass reads what the previous one left in cache instead of going back to memory
    (a 12 MP face's table alone is 100 MB)."""
    height, width = pixels.shape[:2]

    def band(rows: slice) -> None:
        shifted = np.array(to_grid, np.float64)
        shifted[:, 2] += shifted[:, 1] * rows.start  # the band's first row is its row 0
        table = cv2.warpAffine(
            factor,
            shifted,
            (width, rows.stop - rows.start),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        pixels[rows] = apply_factor(pixels[rows], table)

    in_row_bands(band, height, width, PARALLEL_PIXELS, BAND_PIXELS)


@functools.lru_cache(maxsize=8)
def identity_grid(height: int, width: int) -> np.ndarray:
    """(h, w, 2) float32 pixel positions: the sampling map of an edit that moves nothing."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid = np.stack([xs, ys], axis=-1)
    grid.setflags(write=False)
    return grid
