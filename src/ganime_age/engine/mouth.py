"""The mouth: where the lips' gap is, how wide it opens, and the interior (teeth, the dark of the mouth) painted
into a gap an edit opens, brightness-matched to the face's skin: the fitted one (medians of CFEE's open mouths),
or in a reenactment the driving face's own (real teeth, where a median of many mouths is a smooth white bar)."""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.config import (
    MOUTH_EDGE_CHROMA,
    MOUTH_LIP_INSET,
    MOUTH_TINT_SIGMA,
    OWN_MOUTH_GAP,
)
from ganime_age.engine.face import EngineFace
from ganime_age.engine.frames import colour_share
from ganime_age.engine.geometry import age_weights, blend
from ganime_age.engine.pixels import soften_colour
from ganime_age.engine.tables import EngineTables
from ganime_age.face_model import canonical_face, head_similarity
from ganime_age.faces.topology import CHEEK_POINTS, FACE_LEFT, FACE_RIGHT, LOWER_INNER_LIP, UPPER_INNER_LIP
from ganime_age.meshwarp import rasterise


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


def gap_colours(rgb: np.ndarray, points: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(rows, cols, 3) float32 colours across a real photo's lips' gap, relative to its skin's brightness (`grid`:
    the engine's ``mouth_grid``): what the fitted interiors are medians of, and a driving face's own mouth."""
    points = np.asarray(points, np.float64)
    rows, cols = grid
    strip = mouth_strip(points, rows, cols, inset=MOUTH_LIP_INSET)
    interior = cv2.remap(rgb, strip[..., 0], strip[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    width = float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2]))
    return interior.astype(np.float32) / max(skin_level(rgb, points, width), 1.0)


def own_interior(rgb: np.ndarray, points: np.ndarray, grid: tuple[int, int]) -> np.ndarray | None:
    """A driving face's own open mouth (:func:`gap_colours`), or None where its lips barely part (OWN_MOUTH_GAP):
    the gap between them is then lip, not teeth, and the fitted interior is painted."""
    points = np.asarray(points, np.float64)
    if mouth_gap(points, head_similarity(points, canonical_face()).scale) < OWN_MOUTH_GAP:
        return None
    return gap_colours(rgb, points, grid)


def strip_mesh(cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Triangles and (u, v) per vertex of the gap drawn as a strip of quads (upper lip row, lower lip row)."""
    n = len(UPPER_INNER_LIP)
    triangles = []
    for i in range(n - 1):
        triangles += [(i, i + 1, n + i), (i + 1, n + i + 1, n + i)]
    u = np.linspace(0.0, 1.0, n)
    coords = np.concatenate([np.stack([u, np.zeros(n)], 1), np.stack([u, np.ones(n)], 1)]) * [cols - 1, 1.0]
    return np.asarray(triangles), coords.astype(np.float32)


def paint_mouth(
    engine: EngineTables,
    edited: np.ndarray,
    face: EngineFace,
    moves: np.ndarray,
    origin: tuple[int, int],
    smile: float,
    own: np.ndarray | None = None,
) -> None:
    """Paint a mouth interior into the lips' gap where the edit opened it (in place).

    A warp can only stretch the lips' own pixels over an opening mouth; teeth and the dark of the mouth
    come from the interiors of CFEE's open mouths at the same gap height (of smiles or of dropped jaws, as
    much as the target AU12 says), or from `own`, a driving face's own open mouth (:func:`own_interior`),
    brightness-matched to this face's skin. Where the mouth was already open the face keeps its own
    interior, and the painted one takes over only as far as the gap grew.
    """
    target = face.landmarks[:, :2] + moves
    gap = mouth_gap(target, face.cm_to_grid)
    grown = gap - max(face.mouth_gap, 0.0)
    share = float(np.clip(grown / (0.5 * max(gap, 0.0) + 0.1), 0.0, 1.0))
    if gap <= 0.05 or share <= 0.0:
        return
    points = face.frame.to_photo(target, origin)  # target lip points in the edited box's pixels
    lips = points[list(UPPER_INNER_LIP) + list(LOWER_INNER_LIP)]
    sigma = MOUTH_EDGE_CHROMA * face.cm_to_grid * max(face.frame.per)  # photo pixels
    margin = 2 + int(np.ceil(3.0 * sigma))  # room for the colour blur around the lips' gap
    lo = np.maximum(np.floor(lips.min(0)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(lips.max(0)).astype(int) + margin + 1, [edited.shape[1], edited.shape[0]])
    if np.any(hi - lo < 2):
        return
    rows, cols = engine.config.mouth_grid
    triangles, coords = strip_mesh(cols)
    raster = rasterise(lips - lo, triangles, (int(hi[1] - lo[1]), int(hi[0] - lo[0])))
    if len(raster.pixels) == 0:
        return
    uv = raster.interpolate(coords * [1.0, rows - 1.0], fill=-10.0)
    interior = mouth_interior(engine, gap, smile, face, own)
    painted = cv2.remap(interior, uv, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # a soft edge one pixel inside the lips, so the lip line stays the photo's
    weight = cv2.GaussianBlur(cv2.erode(raster.mask, np.ones((3, 3), np.uint8)), (0, 0), 0.8) * share
    region = edited[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
    blended = region + weight[..., None] * (painted - region)
    # the lips' red meeting painted teeth is a colour edge as sharp as a pixel, which a camera (demosaicing,
    # chroma subsampling) never keeps: across the edge the colour is blurred, the brightness stays sharp
    blended = soften_colour(blended, weight, sigma)
    edited[lo[1] : hi[1], lo[0] : hi[0]] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def mouth_interior(
    engine: EngineTables, gap: float, smile: float, face: EngineFace, own: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols, 3) float32 colours of an open mouth with this gap and smile (or `own`, a real one relative
    to its skin), at this face's brightness."""
    if own is None:
        bins = np.asarray(engine.config.mouth_gaps, np.float64)
        smiling = float(np.clip((smile - 1.0) / 2.0, 0.0, 1.0))
        relative = blend(engine.tables["mouth_interiors"], np.array([1.0 - smiling, smiling]), age_weights(gap, bins))
        own = relative.transpose(1, 2, 0)
    colour = own * face.skin
    grey = colour.mean(axis=2, keepdims=True)
    share = colour_share(face.colourfulness)
    # teeth, gums and the dark of the mouth keep their sharp brightness; their colour is smoothed, as a photo
    # keeps it (a median of many mouths has colour edges at every tooth, twice a real mouth's fine colour)
    tint = cv2.GaussianBlur(np.ascontiguousarray(colour - grey, dtype=np.float32), (0, 0), MOUTH_TINT_SIGMA)
    return np.ascontiguousarray(grey + share * tint, dtype=np.float32)
