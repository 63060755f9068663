"""Turning a head in 3-D: the photo's own head as a textured mesh, drawn again at another pose.

A 2-D warp cannot turn a face: it stretches the side that turns away and tears the side that comes into view.
Here the head is MediaPipe's 468-vertex face mesh where the landmarker put it on the photo, continued beyond
the face by a head proxy, and turning it is drawing that mesh again:

1. **The proxy** (:mod:`.head`): rings beyond the face's outline on an ellipsoid of the head's mean
   proportions (forehead to the crown, the temples, the ears), and below the jaw the neck, whose rings follow
   the head's turn less the lower they are, so the shoulders stay where they were.
2. **Texture**: every vertex keeps the photo pixel it lies on. Where the photo saw the surface much more
   obliquely than the turned view shows it, the face reads its mirror side (the far cheek from the near one)
   where the photo saw that better, and the head beyond the face's outline is made up (:mod:`.sides`): the
   head's hair colour (the neck's skin below the jaw) with a little of the hair the photo shows beside the
   face, softened; the proxy is solid wherever it moved, and nothing is read beyond the photo's edges.
3. **Background**: the pixels behind the head, which a turn reveals, are filled once per photo by inpainting
   at a quarter of the resolution from the wall and the person's own hair and shoulders beside the head
   (smooth, so nothing flickers from frame to frame).
4. **Drawing**: the mesh is rotated, its back faces dropped, drawn far to near, and every output pixel reads
   the head at its barycentric place (one remap for the own side, one for the mirror) as a premultiplied
   layer over the filled background, at the photo's resolution: drawn at the photo's own pose it gives the
   photo back exactly, soft edges included. Where a pixel reads is drawn at full resolution (it jumps at the
   nose's and the jaw's edges); the smooth rest (the shares, the made-up side, the motion beyond the mesh)
   every second pixel, which halves a video frame's turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.head import PIVOT, head_model, partial_rotation, smoothstep, vertex_normals
from ganime_age.engine.sides import ping_pong, side_colours, texture_paths
from ganime_age.face_model import head_similarity
from ganime_age.faces.topology import NUM_MESH_VERTICES
from ganime_age.meshwarp import extend_outward, rasterise

OWN_SIDE = (0.2, 0.5)  # source-to-view foreshortening ratio below which the mirror side is read, above own
SEEN = (0.05, 0.3)  # how squarely the photo saw a surface (its normal's z) for its mirror to be read: none, all
BETTER_SEEN = 0.15  # how much more squarely (normal's z) the photo saw a mirror than its own side for it to be read
FILL_SCALE = 4  # the background behind the head is inpainted at 1/FILL_SCALE of the resolution
SIDE_SOFTNESS = 0.2  # canonical cm: the blur of what a side the photo never showed reads
EDGE_ON = 0.05  # a triangle whose normal is this close to the image plane (its z share) is not drawn
STILL = 1.0  # pixels: a motion below this off the drawn head leaves the photo's pixel (an exact identity)
EDGE_SOFTNESS = 0.7  # pixels: the drawn head's edge is anti-aliased over about this
SIDE_DETAIL = 0.35  # of a made-up side: this share of the hair it reads, the rest the head's own hair or neck colour
FIELD_STEP = 2  # the smooth fields (shares, a made-up side, the motion beyond the mesh) every FIELD_STEP pixels


@dataclass
class PlacedHead:
    """The head model placed on one photo's landmarks: where each vertex is, how squarely the photo saw it, and
    the band each outline path reads beyond the photo's view."""

    points: np.ndarray  # (V, 3) pixels (x, y) and depth, the landmark frame
    rotation: np.ndarray  # (3, 3) the head's rotation
    pivot: np.ndarray  # (3,) what it turns about
    scale: float  # pixels per canonical centimetre
    facing: np.ndarray  # (V,) the normal's z towards the camera: 1 seen squarely, 0 edge-on, < 0 from behind
    paths: np.ndarray  # (V, 7) :func:`_texture_paths`
    band: np.ndarray  # (V,) 1 where a vertex is on a path past the face's outline (it can read the band)
    runs: np.ndarray  # (36, 2) where each outline path's hair run lies (:func:`_hair_run`), smoothed


def place_head(landmarks: np.ndarray, person: np.ndarray, runs: np.ndarray | None = None) -> PlacedHead:
    """The head model on 478 (or 468) landmarks in pixels, with the photo's silhouette `person` (H, W) in 0..1.

    `runs`: the hair runs of the same photo's head placed before (an edit of the photo moves its face, not the
    silhouette: a video's frames reuse them)."""
    model = head_model()
    points = np.asarray(landmarks, np.float64)[:NUM_MESH_VERTICES, :3]
    similarity = head_similarity(points)
    placed = similarity.apply(model.vertices)
    # the proxy joins the face where the landmarker put it: each ring carries its outline point's offset from
    # the fitted canonical face, fading out towards the crown and the shoulders
    placed[:NUM_MESH_VERTICES] = points
    offsets = points[model.rings[0]] - similarity.apply(model.vertices[model.rings[0]])
    for index, ring in enumerate(model.rings[1:]):
        placed[ring] += offsets * (1.0 - (index + 1) / len(model.rings))
    facing = -vertex_normals(placed, model.triangles)[:, 2]
    # the photo never saw the head beyond its edges (a tight crop cuts it off): a read there would reflect the
    # face back in as a ghost outline, so such a surface counts as unseen and is made up (the neck below the
    # photo's bottom edge reads on: it goes on as it was, into the body)
    height, width = person.shape
    beyond = (placed[:, 0] < 0) | (placed[:, 1] < 0) | (placed[:, 0] > width - 1)
    beyond |= (placed[:, 1] > height - 1) & (model.follow > 0.99)
    facing[beyond] = -1.0
    paths, runs = texture_paths(placed, facing, model, person, runs)
    band = np.zeros(len(placed))
    band[model.rings[1:].reshape(-1)] = 1.0
    return PlacedHead(
        placed, similarity.rotation, similarity.apply(np.asarray(PIVOT)), similarity.scale, facing, paths, band, runs
    )


class TurnableHead:
    """One photo's head, ready to be drawn at other poses: its silhouette and the background behind it are made
    once per photo; each pose is one drawing (a video's frames share them, so the fill never flickers).

    `rgb` (H, W, 3) uint8, `landmarks` (478 or 468, 3) MediaPipe's in pixels, `person` (H, W) in 0..1 the
    selfie segmenter's silhouette (hair and neck included).
    """

    def __init__(self, rgb: np.ndarray, landmarks: np.ndarray, person: np.ndarray) -> None:
        self.rgb = np.ascontiguousarray(rgb)
        height, width = self.rgb.shape[:2]
        model = head_model()
        # the segmenter leaves holes in a face that fills the photo (a tight crop): the face's own mesh is the
        # person for certain
        face = model.triangles[(model.triangles < NUM_MESH_VERTICES).all(axis=1)]
        face_mask = rasterise(np.asarray(landmarks, np.float64)[:NUM_MESH_VERTICES, :2], face, (height, width)).mask
        self.person = np.maximum(np.clip(np.asarray(person, np.float32), 0.0, 1.0), face_mask)
        self.head = place_head(landmarks, self.person)
        # the head's own silhouette in the photo: the person where the head's mesh lies, with its soft edge
        drawn = rasterise(self.head.points[:, :2], model.triangles, (height, width))
        region = _head_region(drawn.mask, self.person, self.head.scale)
        ys, xs = np.nonzero(region)
        self.box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 1, 1)
        self.alpha = (self.person * region).astype(np.float32)
        self.background = _fill_behind(self.rgb, region, self.person)
        # what of the background the head's soft edge lets through: the photo less it is the head as a layer
        self.behind = ((1.0 - self.alpha[..., None]) * self.background).astype(np.float32)
        # the head's own colours without the background its soft edge lets through, softened: what a made-up
        # side reads (normalised convolution over the silhouette)
        sigma = SIDE_SOFTNESS * self.head.scale
        weight = cv2.GaussianBlur(self.alpha, (0, 0), sigma)[..., None]
        spread = cv2.GaussianBlur(self.rgb.astype(np.float32) * self.alpha[..., None], (0, 0), sigma)
        self.soft = (spread / np.maximum(weight, 1e-3)).astype(np.float32)
        self.side_colour = side_colours(self.soft, self.head.points, self.head.paths, self.head.runs, model)
        self.reach = 0.25 * self.head.scale * float(np.ptp(model.vertices[:NUM_MESH_VERTICES, 0]))

    @property
    def rotation(self) -> np.ndarray:
        """The photo's head rotation (3x3, the landmark frame)."""
        return self.head.rotation

    def at_own_pose(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Target landmarks (478, 3) at another head pose, as (the same face at the photo's own pose, the
        target's head rotation): an expression is made at the photo's pose, then the head is turned where it is
        (:meth:`render`; moved too, it would leave long hair and the neck behind)."""
        points = np.asarray(target, np.float64)
        wanted = head_similarity(points)
        own = head_similarity(self.head.points[:NUM_MESH_VERTICES])
        return own.apply(wanted.invert(points)).astype(np.float32), wanted.rotation

    def render(
        self, rotation: np.ndarray, photo: np.ndarray | None = None, landmarks: np.ndarray | None = None
    ) -> np.ndarray:
        """The photo with its head at `rotation` (3x3, the landmark frame's head rotation, as
        :func:`~ganime_age.face_model.head_similarity` reads it).

        `photo` and `landmarks`: the same photo edited (an expression, an age) and its face's landmarks there, to
        turn instead of the photo itself; the silhouette and the background stay the photo's.
        """
        image = self.rgb if photo is None else np.ascontiguousarray(photo)
        head = self.head if landmarks is None else place_head(landmarks, self.person, self.head.runs)
        model = head_model()
        height, width = image.shape[:2]
        placed, visible = turned_points(head, rotation)
        # the smooth fields within the box the head's motion reaches: where it was (with its soft edge), where it is
        # now, and the reach of its motion beyond; the pixels only where the head was or is drawn (beyond, the
        # motion moves nothing drawn and the filled background is the photo: every pixel stays the photo's)
        x0, y0, x1, y1 = _union_box(self.box, placed[:, :2], self.reach, width, height)
        u0, v0, u1, v1 = _union_box(self.box, placed[:, :2], 4.0 * EDGE_SOFTNESS + 2.0, width, height)
        # where each pixel reads (its own side, its mirror side) is drawn at the photo's resolution: it jumps where
        # the nose passes over the cheek; the shares, a made-up side's paths and the motion beyond the mesh are
        # smooth, made on a grid every FIELD_STEP pixels (sample (i, j) at pixel (x0 + step j, y0 + step i)) and
        # interpolated back
        corner = np.array([u0, v0], np.float64)
        triangles = model.triangles[visible]
        raster = rasterise(placed[:, :2] - corner, triangles, (v1 - v0, u1 - u0), depth=placed[:, 2])
        step = FIELD_STEP
        coarse = ((y1 - y0 - 1) // step + 2, (x1 - x0 - 1) // step + 2)
        coarse_raster = raster.subsample(step, coarse, (x0 - u0, y0 - v0))
        # per vertex: keep its own pixel unless the view shows it much more squarely than the photo did; then
        # the face reads its mirror side (where the photo saw that squarely), the head beyond the outline its band
        facing_now = -vertex_normals(placed, model.triangles)[:, 2]
        ratio = head.facing / np.maximum(facing_now, 0.05)
        keep = np.where(facing_now <= 0.05, 1.0, smoothstep((ratio - OWN_SIDE[0]) / (OWN_SIDE[1] - OWN_SIDE[0])))
        seen = smoothstep((head.facing - SEEN[0]) / (SEEN[1] - SEEN[0]))
        face = 1.0 - head.band
        # the mirror only where the photo saw it better than the side itself: a frontal face's two outlines are
        # both oblique, and the far one read on the near side drew its edge (hair, background) inside the cheek
        better = smoothstep((head.facing[model.mirror] - head.facing) / BETTER_SEEN)
        mirror_share = (1.0 - keep) * seen[model.mirror] * better * face
        band_share = (1.0 - keep) * head.band
        source = head.points[:, :2]
        own_map = raster.interpolate(source - corner)  # where each pixel reads, in the drawn box's pixels
        covered = raster.mask
        # the coarse fields: mirror share, band share, a made-up side's colour (3), its map (2), still, proxy, the
        # motion beyond the mesh (2)
        fields = np.zeros((*coarse, 11), np.float32)
        raster_values = np.column_stack([mirror_share, band_share, self.side_colour, source]).astype(np.float32)
        coarse_raster.interpolate_into(fields[..., :7], raster_values)
        coarse_raster.interpolate_into(fields[..., 8:9], head.band[:, None].astype(np.float32))
        own_coarse = fields[..., 5:7].copy()
        banded = fields[..., 1] > 1e-4  # a made-up side's place along its path: only where one is read
        if banded.any():
            pixels, path = coarse_raster.interpolate_at(head.paths, banded)
            origin, outward, hair, along = path[:, 0:2], path[:, 2:4], path[:, 4:6], path[:, 6:7]
            norm = np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
            along = ping_pong(along, hair[:, 0:1], hair[:, 1:2])
            fields.reshape(-1, 11)[pixels, 5:7] = origin + along * outward / norm
        # beyond the drawn mesh the head's motion (where it is, not what a made-up side reads) continues and
        # fades: its soft edge comes along, and far from it every pixel reads itself
        xs = (x0 + step * np.arange(coarse[1])).astype(np.float32)
        ys = (y0 + step * np.arange(coarse[0])).astype(np.float32)
        grid = np.stack(np.meshgrid(xs, ys), axis=2)
        moved = extend_outward(own_coarse - grid, coarse_raster.mask, self.reach / step)
        fields[..., 7] = 1.0 - smoothstep(np.linalg.norm(moved, axis=2) / STILL)
        fields[..., 9:11] = moved
        # back to every pixel of the drawn box (where each sample lies, exactly: remap, not resize)
        up = np.meshgrid(
            np.arange(u0 - x0, u1 - x0, dtype=np.float32) / step, np.arange(v0 - y0, v1 - y0, dtype=np.float32) / step
        )
        smooth = cv2.remap(fields, up[0], up[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mirror_w, band_w, side_colour = smooth[..., 0], smooth[..., 1], smooth[..., 2:5]
        from_band, still, proxy, moved = smooth[..., 5:7], smooth[..., 7], smooth[..., 8], smooth[..., 9:11]
        # off the drawn mesh each pixel reads where the motion beyond it takes it (the drawn edge's soft side reads on)
        full_grid = np.stack(np.meshgrid(np.arange(u1 - u0, dtype=np.float32), np.arange(v1 - v0, dtype=np.float32)), 2)
        own_map = cv2.copyTo(own_map, (covered > 0.5).astype(np.uint8), full_grid + moved)
        # the mirror side's map only where it is read
        mirrored = mirror_w > 0.0
        mirror_map = own_map.copy()
        if mirrored.any():
            pixels, where = raster.interpolate_at(source[model.mirror] - corner, mirrored)
            mirror_map.reshape(-1, 2)[pixels] = where

        # the head as a premultiplied layer (its colour, its alpha) over the filled background, read within the
        # box: read where it moved, it gives the photo back exactly where nothing moved, soft edge included (the
        # blends below are OpenCV's, each one pass over the box)
        crop = (slice(v0, v1), slice(u0, u1))
        colour = cv2.subtract(image[crop], self.behind[crop], dtype=cv2.CV_32F)
        alpha = self.alpha[crop]

        def read(values: np.ndarray, where: np.ndarray) -> np.ndarray:  # `where`: one two-channel map
            return cv2.remap(values, np.ascontiguousarray(where), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

        head_colour, head_alpha = read(colour, own_map), read(alpha, own_map)
        part = _bounds(mirrored)  # the mirror side and the made-up side: only where they are read
        if part is not None:
            weight = np.ascontiguousarray(mirror_w[part])
            for values, layer in ((colour, head_colour), (alpha, head_alpha)):
                layer[part] = _mix(read(values, mirror_map[part]), layer[part], weight)
        background = self.background[crop].astype(np.float32)
        # a side the photo never showed: the head's hair colour (the neck's skin below the jaw) with a little of
        # the hair beside the face, softened (reflected strands repeat into a marbled pattern at full detail)
        solid = proxy * (1.0 - still)
        part = _bounds((band_w > 1e-4) | (solid > 1e-4))
        backdrop = background.copy()
        made = None
        if part is not None:
            # (read within the motion's box: a path runs out into the hair beyond the drawn one)
            soft = read(self.soft[y0:y1, x0:x1], from_band[part] - np.array([x0, y0], np.float32))
            made = cv2.addWeighted(soft, SIDE_DETAIL, side_colour[part], 1.0 - SIDE_DETAIL, 0.0)
            # the proxy is solid where it moved: what the head's soft edge lets through is the head's made-up side,
            # not the wall (beyond a tight hairdo the wall turned into the head's outline showed as holes in the
            # hair, and a turned jaw's or ear's old edge as a pale fringe); where nothing moved, the photo's own
            # silhouette stays
            backdrop[part] = _mix(made, backdrop[part], np.ascontiguousarray(solid[part]))
        drawn = backdrop * (1.0 - head_alpha)[..., None]
        drawn += head_colour
        if made is not None:  # and where the view shows what the photo never did, the made-up side itself
            drawn[part] = _mix(made, drawn[part], np.ascontiguousarray(band_w[part]))
        # off the drawn mesh: the photo where nothing moves, the filled background where the head moved away
        # (the head's old place never shows through: no ghost ear, no second outline)
        off = _mix(image[crop].astype(np.float32), background, np.ascontiguousarray(still))
        coverage = cv2.GaussianBlur(covered, (0, 0), EDGE_SOFTNESS)
        mixed = _mix(drawn, off, coverage)
        out = image.copy()
        out[v0:v1, u0:u1] = np.clip(np.rint(mixed, out=mixed), 0, 255, out=mixed).astype(np.uint8)
        return out

    def turn(self, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
        """The photo with its head turned by yaw, pitch and roll degrees from where it is."""
        from ganime_age.faces.mesh import rotation_matrix

        return self.render(rotation_matrix(yaw, pitch, roll) @ self.rotation)


def turned_points(head: PlacedHead, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head's vertices turned to `rotation` about the top of the neck (the neck's lower rings less), and
    which triangles then face the camera."""
    model = head_model()
    relative = np.asarray(rotation, np.float64) @ head.rotation.T
    turns = partial_rotation(relative, model.follow)
    placed = np.einsum("vij,vj->vi", turns, head.points - head.pivot) + head.pivot
    corners = placed[model.triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    # edge-on slivers are left out too: their barycentric weights, clipped at snapped pixels, read a few
    # pixels off along the jaw and the temples
    return placed, normal[:, 2] < -EDGE_ON * np.linalg.norm(normal, axis=1)


def _mix(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """weight * first + (1 - weight) * second, per pixel (`weight` (h, w) float32 in 0..1; one pass)."""
    return cv2.blendLinear(first, second, weight, 1.0 - weight)


def _bounds(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns holding `mask`'s true pixels, or None where there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _union_box(
    box: tuple[int, int, int, int], points: np.ndarray, margin: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): `box` and the points' bounding box together, grown by `margin`, inside the photo."""
    x0 = min(box[0], float(points[:, 0].min())) - margin
    y0 = min(box[1], float(points[:, 1].min())) - margin
    x1 = max(box[2], float(points[:, 0].max())) + margin
    y1 = max(box[3], float(points[:, 1].max())) + margin
    return max(0, int(x0)), max(0, int(y0)), min(width, int(np.ceil(x1)) + 1), min(height, int(np.ceil(y1)) + 1)


def _head_region(mesh: np.ndarray, person: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) uint8: the head's place in the photo, the mesh where the person is and, a few millimetres beyond,
    the silhouette's soft edge against the background (not the hair that goes on beyond the mesh, which stays)."""
    grow = max(3, round(0.4 * scale))
    head = ((mesh > 0.5) & (person > 0.02)).astype(np.uint8)
    near = cv2.dilate(head, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return head | (near & (person < 0.98))


def _fill_behind(rgb: np.ndarray, region: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The photo with `region` (the head) taken out and what is around it continued into its place, inpainted
    at 1/FILL_SCALE of the resolution (smooth: a video's frames share it, so it never flickers); elsewhere the
    photo's own pixels. Where long hair or the shoulders border the head they are continued too: a turned
    neck uncovers hair behind it, not the wall."""
    height, width = rgb.shape[:2]
    if not region.any():
        return rgb.copy()
    small_size = (max(8, width // FILL_SCALE), max(8, height // FILL_SCALE))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA) > 0
    # continued from clean background, not the hair's soft fringe beyond the region (it would grey the fill), and
    # from the person's own solid parts beside the head (hair, shoulders)
    solid = cv2.resize(person, small_size, interpolation=cv2.INTER_AREA) > 0.5
    grown = cv2.dilate(hole.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    hole = (hole | (grown & ~solid)).astype(np.uint8)
    filled = cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.5)
    large = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(region[..., None] > 0, large, rgb)
