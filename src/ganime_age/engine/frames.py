"""The engine's two frames and the one mapping between each pair: the shape-normalised *template* (the
canonical face drawn in an R x R image, where the fitted tables live) and a face's *engine grid* (its region of
the photo, resampled to about ``engine_face_pixels`` wide, where an edit is computed), and the photo itself.

Grid pixel g sits at photo position (g + 0.5) * per - 0.5 + box origin (per = region size / grid size): the grid
spans the face's region exactly, so every conversion between the two goes through :class:`GridFrame`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.config import COLOURFUL, LARGE_SCALE, LOG_EPSILON
from ganime_age.faces.mesh import rotation_angles
from ganime_age.faces.topology import (
    BROW_TOPS,
    FACE_LEFT,
    FACE_RIGHT,
    LEFT_BROW,
    LEFT_EYE_CONTOUR,
    LOWER_INNER_LIP,
    NOSE_BASE,
    NUM_MESH_VERTICES,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE_CONTOUR,
    UPPER_INNER_LIP,
)
from ganime_age.meshwarp import MeshRaster, rasterise, signed_areas

FINE_SPAN = 8.0  # pixels: a blur that keeps a small face's detail runs shrunk from twice this wide (large_face_blur)
BAND_PIXELS = 1 << 18  # photo pixels: a pass over a whole box at the photo's resolution goes in bands of about this


def channel_mean(values: np.ndarray) -> np.ndarray:
    """(h, w) float32: the mean of `values`' first three channels (the last axis): the same float32 sums as
    NumPy's ``values[..., :3].mean(axis=2)`` in three adds, where NumPy's reduction over so short an axis runs three
    times slower (0.3 s of a 12 MP photo's hair greying)."""
    total = values[..., 0].astype(np.float32)
    total += values[..., 1]
    total += values[..., 2]
    total /= np.float32(3.0)
    return total


def log_image(rgb: np.ndarray) -> np.ndarray:
    """uint8 or 0..255 float RGB -> log intensity (the domain where a lighting change is an offset)."""
    return np.log(np.asarray(rgb, np.float32) * (1.0 / 255.0) + LOG_EPSILON)


def colourfulness(log_rgb: np.ndarray, mask: np.ndarray) -> float:
    """A log image's mean |log channel - log grey| where `mask` > 0.5 (0 for a black-and-white photo)."""
    inside = mask > 0.5
    if not inside.any():
        return 0.0
    return float(np.abs(log_rgb - log_rgb.mean(axis=2, keepdims=True))[inside].mean())


def colour_share(chroma: float) -> float:
    """0..1 how far a face of this :func:`colourfulness` has colour of its own: whole from COLOURFUL (a grey
    photo's colour changes stay grey)."""
    return min(chroma / COLOURFUL, 1.0)


@dataclass(frozen=True)
class Template:
    """The canonical face drawn in an R x R image: where every mesh vertex sits, and which pixels it covers."""

    size: int
    vertices: np.ndarray  # (468, 2) template pixels
    triangles: np.ndarray  # (898, 3)
    frontal_areas: np.ndarray  # (898,) signed areas on the frontal canonical face (orientation reference)
    raster: MeshRaster
    mask: np.ndarray  # (R, R) float32 1 inside the face, 0 outside, a few pixels of soft edge
    regions: dict[str, np.ndarray]  # (R, R) float32 masks: "mouth" (the lip gap), "eyes", ..., "nostrils"


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
        "lips": _polygon_mask(vertices, OUTER_LIPS, size, grow=3.0),
        "brows": np.maximum(
            _polygon_mask(vertices, RIGHT_BROW, size, grow=7.0), _polygon_mask(vertices, LEFT_BROW, size, grow=7.0)
        ),
        "nostrils": _polygon_mask(vertices, tuple(_hull(vertices, NOSE_BASE)), size, grow=4.0),
    }
    # where a beard or a moustache grows: the face below the nose's base, the lips excepted
    below_nose = (rows >= float(vertices[list(NOSE_BASE), 1].max())).astype(np.float32)
    beard = cv2.GaussianBlur(hard.astype(np.float32) * below_nose, (0, 0), 3.0) * (1.0 - regions["lips"])
    regions["beard"] = np.clip(beard, 0.0, 1.0).astype(np.float32)
    return Template(size, vertices, face.triangles, signed_areas(vertices[face.triangles]), raster, soft, regions)


def _hull(vertices: np.ndarray, ids: tuple[int, ...]) -> list[int]:
    """`ids` in the order of their convex hull (a polygon that does not cross itself)."""
    order = cv2.convexHull(vertices[list(ids)].astype(np.float32), returnPoints=False).reshape(-1)
    return [ids[i] for i in order]


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


def template_view(template: Template, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A photo's face (or any image aligned with it: its log colours) drawn in the template, R x R."""
    return cv2.remap(image, template_map(template, landmarks), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def template_width(template: Template) -> float:
    """The canonical face's width in template pixels (its oval's left to right points)."""
    v = template.vertices
    return float(v[FACE_RIGHT, 0] - v[FACE_LEFT, 0])


def template_blur(template: Template, image: np.ndarray, scale: float = LARGE_SCALE) -> np.ndarray:
    """A blur over the template's face only (normalised by the blurred mask, so the edge is not darkened), of
    `scale` face widths."""
    mask = template.raster.mask
    sigma = scale * template_width(template)
    weight = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]
    blurred = cv2.GaussianBlur(image * mask[..., None], (0, 0), sigma)
    blurred = blurred.reshape(image.shape)
    return np.where(weight > 1e-3, blurred / np.maximum(weight, 1e-3), image).astype(np.float32)


def resample_grid(
    field: np.ndarray, box: tuple[int, int, int, int], onto: tuple[int, int, int, int], shape: tuple[int, int]
) -> np.ndarray:
    """A smooth field on a grid spanning the photo box `box`, read on a grid of `shape` spanning the photo box
    `onto` (0 outside `box`)."""
    bx0, by0, bx1, by1 = box
    ox0, oy0, ox1, oy1 = onto
    grid_h, grid_w = shape
    fsx, fsy = field.shape[1] / (bx1 - bx0), field.shape[0] / (by1 - by0)
    gsx, gsy = grid_w / (ox1 - ox0), grid_h / (oy1 - oy0)
    # grid pixel u -> photo (u + 0.5) / gsx - 0.5 + ox0 -> field (x - bx0 + 0.5) * fsx - 0.5
    matrix = np.array(
        [
            [fsx / gsx, 0.0, 0.5 * fsx / gsx + (ox0 - bx0) * fsx - 0.5],
            [0.0, fsy / gsy, 0.5 * fsy / gsy + (oy0 - by0) * fsy - 0.5],
        ]
    )
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(field.astype(np.float32, copy=False), matrix, (grid_w, grid_h), flags=flags)


@dataclass(frozen=True)
class GridFrame:
    """A face's engine grid over its photo region ``box`` (x0, y0, x1, y1): conversions both ways."""

    box: tuple[int, int, int, int]
    grid_shape: tuple[int, int]  # (height, width)

    @property
    def scale(self) -> tuple[float, float]:
        """Grid pixels per photo pixel, (x, y)."""
        x0, y0, x1, y1 = self.box
        return self.grid_shape[1] / (x1 - x0), self.grid_shape[0] / (y1 - y0)

    @property
    def per(self) -> tuple[float, float]:
        """Photo pixels per grid pixel, (x, y)."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) / self.grid_shape[1], (y1 - y0) / self.grid_shape[0]

    def to_grid(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel positions (n, >=2) -> engine grid positions (n, 2)."""
        x0, y0, _, _ = self.box
        sx, sy = self.scale
        out = np.empty((len(points), 2), np.float64)
        out[:, 0] = (points[:, 0] - x0 + 0.5) * sx - 0.5
        out[:, 1] = (points[:, 1] - y0 + 0.5) * sy - 0.5
        return out

    def to_photo(self, points: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        """Engine grid positions (n, 2) -> pixel positions in a photo crop whose top-left is `origin`."""
        bx0, by0, _, _ = self.box
        per_x, per_y = self.per
        out = np.empty_like(points)
        out[:, 0] = (points[:, 0] + 0.5) * per_x - 0.5 + bx0 - origin[0]
        out[:, 1] = (points[:, 1] + 0.5) * per_y - 0.5 + by0 - origin[1]
        return out

    def positions_to_photo(self, positions: np.ndarray) -> np.ndarray:
        """(h, w, 2) float32 grid positions -> positions in the region's photo pixels, in place."""
        positions += 0.5
        positions *= np.array(self.per, np.float32)
        positions -= 0.5
        return positions

    def field_to_photo(self, field: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """A grid field at the photo pixels of the region's `rows` and `cols`. The grid spans the region exactly,
        so a resize of the whole grid to the region puts every grid pixel where :meth:`to_photo` says, three
        times faster than an affine warp of the part alone; a view of the part is kept."""
        x0, y0, x1, y1 = self.box
        return cv2.resize(field, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)[rows, cols]

    def grid_affine(self, px0: int, py0: int) -> np.ndarray:
        """(2, 3) map from the pixels of a photo crop whose top-left is (px0, py0) to grid positions."""
        bx0, by0, _, _ = self.box
        per_x, per_y = self.per
        return np.array(
            [
                [1.0 / per_x, 0.0, (px0 - bx0 + 0.5) / per_x - 0.5],
                [0.0, 1.0 / per_y, (py0 - by0 + 0.5) / per_y - 0.5],
            ]
        )

    def photo_box(self, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[int, int, int, int]:
        """The photo box (x0, y0, x1, y1) covering grid rows [r0, r1) and cols [c0, c1), clipped to the region."""
        bx0, by0, bx1, by1 = self.box
        per_x, per_y = self.per
        x0, x1 = bx0 + int(np.floor(cols[0] * per_x)), min(bx0 + int(np.ceil(cols[1] * per_x)), bx1)
        y0, y1 = by0 + int(np.floor(rows[0] * per_y)), min(by0 + int(np.ceil(rows[1] * per_y)), by1)
        return x0, y0, x1, y1

    def changed_box(self, changed: np.ndarray) -> tuple[tuple[int, int, int, int], tuple[slice, slice]] | None:
        """The photo box where the grid field `changed` is above 0 (one grid pixel of slack) and its rows and
        columns within the face's region; None where nothing changes."""
        rows, cols = np.nonzero(changed > 0.0)
        if len(rows) == 0:
            return None
        grid_h, grid_w = self.grid_shape
        gy0, gy1 = max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, grid_h)
        gx0, gx1 = max(int(cols.min()) - 1, 0), min(int(cols.max()) + 2, grid_w)
        x0, y0, x1, y1 = self.photo_box((gy0, gy1), (gx0, gx1))
        bx0, by0, _, _ = self.box
        return (x0, y0, x1, y1), (slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))


def overlap(
    pixels: np.ndarray, origin: tuple[int, int], box: tuple[int, int, int, int]
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Where the photo box `box` (x0, y0, x1, y1) meets `pixels`, a crop of the photo whose top-left is the photo
    pixel `origin`: that part of `pixels` (a view) and its photo box; None where they do not meet."""
    bx0, by0, bx1, by1 = box
    ox, oy = origin
    x0, y0 = max(bx0, ox), max(by0, oy)
    x1, y1 = min(bx1, ox + pixels.shape[1]), min(by1, oy + pixels.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return pixels[y0 - oy : y1 - oy, x0 - ox : x1 - ox], (x0, y0, x1, y1)


def turn_share(rotation: np.ndarray, full: float, none: float) -> float:
    """How much of a change a face turned so far (rotation: canonical frame -> photo frame) takes: all of it up to
    `full` degrees of yaw, none from `none`."""
    yaw = abs(rotation_angles(rotation)[0])
    return float(np.clip((none - yaw) / (none - full), 0.0, 1.0))


@dataclass
class PhotoCrop:
    """A crop of the photo that knows where it lies in the photo (`x0`, `y0`)."""

    pixels: np.ndarray
    x0: int
    y0: int


def photo_crop(source: np.ndarray | PhotoCrop, box: tuple[int, int, int, int]) -> np.ndarray:
    """The photo box (x0, y0, x1, y1) of the photo, or of a crop of it that covers the box."""
    x0, y0, x1, y1 = box
    if isinstance(source, PhotoCrop):
        return source.pixels[y0 - source.y0 : y1 - source.y0, x0 - source.x0 : x1 - source.x0]
    return source[y0:y1, x0:x1]


def add_scaled(target: np.ndarray, change: np.ndarray, amount: float) -> None:
    """uint8 `target` += `amount` * int16 `change`, in place, rounded and saturating (one pass, in bands of rows)."""
    for top, bottom in row_bands(*target.shape[:2]):
        band = target[top:bottom]
        band[...] = cv2.addWeighted(band.astype(np.int16), 1.0, change[top:bottom], float(amount), 0.0, dtype=cv2.CV_8U)


@dataclass
class PhotoLift:
    """A change of the photo's own pixels found once per photo (a beard's removal, an old forehead's lines smoothed)
    and scaled by each slider move, before the geometry moves them."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (photo pixels)
    change: np.ndarray  # (h, w, 3) int16: what all of it adds to the photo's pixels over `box`

    @property
    def changed(self) -> np.ndarray:
        """(h, w) float32 1 where the lift changes the photo, 0 elsewhere."""
        return np.any(self.change != 0, axis=2).astype(np.float32)

    @classmethod
    def lines_out(
        cls, rgb: np.ndarray, box: tuple[int, int, int, int], weight: np.ndarray, scales: tuple[float, float]
    ) -> PhotoLift:
        """The lift that takes the lines out of the photo box `box` of `rgb` as far as `weight` ((h, w) 0..1 over the
        box) says: the detail of its lightness between `scales` (pixels: the grain, kept, and the widest line), in
        every channel alike, so the skin keeps its grain, its shading and its colour."""
        x0, y0, x1, y1 = box
        lightness = channel_mean(rgb[y0:y1, x0:x1])
        grain, line = (max(scale, 0.7) for scale in scales)
        # the widest line's blur runs shrunk on a large face (a 12 MP photo's forehead and neck took 0.35 s each)
        lines = cv2.GaussianBlur(lightness, (0, 0), grain) - large_face_blur(lightness, line)
        return cls(box, np.round(-(lines * weight)[..., None] * np.ones(3, np.float32)).astype(np.int16))

    def lift(self, pixels: np.ndarray, origin: tuple[int, int], amount: float) -> None:
        """Add `amount` (0..1) of the change to `pixels` (uint8 RGB, a photo crop whose top-left is `origin`,
        holding the photo's own pixels), in place."""
        if amount <= 0.0:
            return
        found = overlap(pixels, origin, self.box)
        if found is not None:
            target, (x0, y0, x1, y1) = found
            bx0, by0 = self.box[:2]
            add_scaled(target, self.change[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0], amount)


def fade_out(edited: np.ndarray, original: np.ndarray, person: np.ndarray, mask: np.ndarray) -> None:
    """Mix `edited` back towards `original` (uint8 RGB over one photo box) where the uint8 `person` weight is between
    0 and 255 (the silhouette's soft edge), and scale the float32 change `mask` by it; in place, in bands of rows
    (over a 12 MP photo's box, most of the photo, its float32 weights were 44 MB each). In saturating integers, the
    way :func:`add_weighted` adds: gathering the edge's pixels by a boolean mask cost a 1 MP slider move 8 ms."""
    for top, bottom in row_bands(*person.shape):
        band = person[top:bottom]
        edge = cv2.inRange(band, 1, 254)
        if cv2.countNonZero(edge):
            back = cv2.bitwise_and(cv2.bitwise_not(band), edge).astype(np.int16)  # 255 less the weight, on the edge
            towards = cv2.subtract(original[top:bottom], edited[top:bottom], dtype=cv2.CV_16S)
            add_weighted(edited[top:bottom], towards, back)
        mask[top:bottom] *= band.astype(np.float32) * np.float32(1.0 / 255.0)


def add_weighted(target: np.ndarray, change: np.ndarray, weight: np.ndarray) -> None:
    """uint8 `target` += `weight` / 255 (per pixel, int16 0..255) * int16 `change`, in place, rounded and
    saturating (in bands of rows)."""
    for top, bottom in row_bands(*target.shape[:2]):
        band = target[top:bottom]
        band[...] = cv2.add(band, weighted(change[top:bottom], weight[top:bottom]), dtype=cv2.CV_8U)


def weighted(change: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """int16 `change` (h, w, c) times `weight` / 255 (per pixel, int16 0..255), rounded."""
    return cv2.multiply(change, cv2.merge([weight] * change.shape[2]), scale=1.0 / 255.0, dtype=cv2.CV_16S)


def add_change(target: np.ndarray, change: np.ndarray) -> None:
    """uint8 `target` += int16 `change`, in place, saturating (in bands of rows)."""
    for top, bottom in row_bands(*target.shape[:2]):
        band = target[top:bottom]
        band[...] = cv2.add(band, change[top:bottom], dtype=cv2.CV_8U)


def row_bands(height: int, width: int, pixels: int = BAND_PIXELS) -> list[tuple[int, int]]:
    """[top, bottom) row ranges of about `pixels` pixels each over `height` rows of `width` pixels: a pass pixel by
    pixel over a box at the photo's resolution holds its float32 temporaries for one band at a time (over a 12 MP
    photo's head box, most of the photo, each whole-box float32 temporary was 44 MB)."""
    rows = max(1, pixels // max(width, 1))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


@functools.lru_cache(maxsize=8)
def identity_grid(height: int, width: int) -> np.ndarray:
    """(h, w, 2) float32 pixel positions: the sampling map of an edit that moves nothing."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid = np.stack([xs, ys], axis=-1)
    grid.setflags(write=False)
    return grid


def arc_band(arc: np.ndarray, moved: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 1 between a run of points `arc` ((n, 2) photo pixels) and its `moved` copy, on a grid of `shape`
    whose top-left is the photo pixel `origin`: the skin beside an edge of the face's mesh."""
    band = np.zeros(shape, np.uint8)
    for a, b, c, d in zip(arc[:-1], arc[1:], moved[1:], moved[:-1], strict=True):
        cv2.fillConvexPoly(band, np.round(np.stack([a, b, c, d]) - origin).astype(np.int32), 1)
    return band


def large_face_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels (as OpenCV's, mirrored beyond the image) that runs shrunk only where it is
    wider than a small face's (:func:`wide_blur` spanning FINE_SPAN pixels): a 1 MP photo's face, up to about 500
    pixels wide, keeps the full blur, and a 12 MP photo's (1,300 px) pays a sixteenth of it."""
    return wide_blur(image, sigma, FINE_SPAN, cv2.BORDER_REFLECT_101)


def wide_blur(image: np.ndarray, sigma: float, span: float = 3.0, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels (beyond the image: `border`), run at a scale where it spans about `span`
    pixels when it is wide (a 12 MP photo's mouth would otherwise take a 140-tap kernel): the result is smooth, so
    little is lost."""
    step = max(1, int(sigma / span))
    if step == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=border)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // step), max(1, height // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=border)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
