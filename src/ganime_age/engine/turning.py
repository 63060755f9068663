"""Turning a head in 3-D: the photo's own face as a textured mesh, drawn again at another pose, and the rest of
the photo moved with it.

A flat warp of a whole face cannot turn it: it stretches the side that turns away and tears the side that comes
into view. Here the face is MediaPipe's 468-vertex face mesh where the landmarker put it on the photo, and
turning it is drawing that mesh again:

1. **The face**: the mesh is turned about the top of the neck, its back faces dropped and drawn far to near;
   every pixel on it reads the photo at its barycentric place. Where the turned view shows a surface much more
   squarely than the photo saw it, the face reads its mirror side (the far cheek from the near one) where the
   photo saw that better.
2. **Everything beyond the face** (hair, ears, neck, the wall just around the head) is the photo's own pixels,
   moved as the head would move them and never drawn anew: just past the face's outline by the face's own
   motion (no seam), then by the skull's (an ellipsoid through the face's upper outline, deeper than the face,
   so the ears and the hair come round with a turn) and below the jaw by the neck's (a cylinder, taking less
   of the turn the lower it is, so the shoulders stay); a point the turn brings round from behind reads the
   skull's outline in the photo, and the motion is smoothed, so the side that comes into view stretches
   evenly, and fades out beyond the head. The head's real outline, its flyaway strands and its ears come
   along. (An earlier head proxy, an ellipsoid with a neck drawn as a textured mesh, drew a faceted helmet of
   flat hair over tight hairdos and wedges beside the neck wherever it stood beyond the person.)
3. What moves less than :data:`STILL` keeps the photo's own pixel: drawn at the photo's own pose the head gives
   the photo back exactly, and far from the head nothing changes.
4. A turn about the neck swings the face sideways; where the photo has no room for that (a tight crop, the face
   filling it), the whole head is drawn shifted back as if the camera followed it (:func:`kept_in_view`).

A drawn turn keeps the photo's light and shows no more of the side of the head than the photo did, so it reads
short of its angle; :meth:`TurnableHead.aimed` aims a wanted pose past by that measured shortfall.

Where each pixel reads is drawn at full resolution (it jumps at the nose's and the jaw's edges); the smooth
rest (the mirror share, the motion beyond the mesh) every second pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.head import PIVOT, head_model, smoothstep, vertex_normals
from ganime_age.face_model import head_similarity
from ganime_age.faces.topology import NUM_MESH_VERTICES
from ganime_age.meshwarp import extend_outward, rasterise

OWN_SIDE = (0.2, 0.5)  # source-to-view foreshortening ratio below which the mirror side is read, above own
SEEN = (0.05, 0.3)  # how squarely the photo saw a surface (its normal's z) for its mirror to be read: none, all
BETTER_SEEN = 0.15  # how much more squarely (normal's z) the photo saw a mirror than its own side for it to be read
EDGE_ON = 0.05  # a triangle whose normal is this close to the image plane (its z share) is not drawn
AIM = (1.3, 1.15)  # how far past a wanted yaw and pitch a turn is drawn, for it to read as that (:meth:`aimed`)
MAX_AIMED_TURN = 45.0  # degrees of yaw from the photo's own pose that an aimed turn draws at most
STILL = 1.0  # pixels: a motion below this leaves the photo's pixel (an exact identity)
REACH = 0.3  # of the face's width: how far beyond the face its motion carries the hair, the ears and the neck
FIELD_STEP = 2  # the smooth fields (the mirror share, the motion beyond the mesh) every FIELD_STEP pixels
# beyond the face the head is two surfaces (canonical cm): the skull, an ellipsoid through the face's outline above
# the mouth (fitted on MediaPipe's canonical face, within 0.05 of its radius), deeper than the face's sides, so a
# turn carries the ears and the hair around it as a head carries them; and below the jaw the neck, a cylinder
SKULL = ((0.0, -3.0, 3.6), (8.0, 11.5, 9.25))  # (centre, axes)
NECK = ((0.0, 0.0, 2.5), (5.5, 1e6, 5.5))  # a vertical cylinder: an ellipsoid without end along y
# canonical cm beyond the face's outline over which its own motion gives way to the skull's, and below the jaw
# to the neck's (longer: the jaw moves more than the neck under it, and a shorter run folded the jaw's shadow into
# a second jaw line)
SKULL_BAND, NECK_BAND = 0.8, 3.0
JAW = (1.0, 5.0)  # canonical heights (cm) over which the skull gives way to the neck
CHIN = 9.4  # canonical cm: the chin's height; below it the neck takes less of the turn, none NECK_RUN lower
NECK_RUN = 10.0
SMOOTHING = 1.0  # canonical cm: the head's motion beyond the face is smoothed over this, so the side coming into
# view stretches evenly and the side turning away folds under its outline without a cut


@dataclass
class PlacedHead:
    """The face mesh placed on one photo's landmarks: where each vertex is and how squarely the photo saw it."""

    points: np.ndarray  # (V, 3) pixels (x, y) and depth, the landmark frame
    rotation: np.ndarray  # (3, 3) the head's rotation
    pivot: np.ndarray  # (3,) what it turns about
    scale: float  # pixels per canonical centimetre
    facing: np.ndarray  # (V,) the normal's z towards the camera: 1 seen squarely, 0 edge-on, < 0 from behind
    translation: np.ndarray  # (3,) where the canonical origin lies (pixels and depth)


def place_head(landmarks: np.ndarray, size: tuple[int, int] | None = None) -> PlacedHead:
    """The face mesh on 478 (or 468) landmarks in pixels. `size` (height, width): the photo's, where the photo
    never saw a surface beyond its edges (a tight crop cuts the face off), so a turn never reads it."""
    model = head_model()
    points = np.asarray(landmarks, np.float64)[:NUM_MESH_VERTICES, :3]
    similarity = head_similarity(points)
    facing = -vertex_normals(points, model.triangles)[:, 2]
    if size is not None:
        height, width = size
        beyond = (points[:, 0] < 0) | (points[:, 1] < 0) | (points[:, 0] > width - 1) | (points[:, 1] > height - 1)
        facing[beyond] = -1.0
    pivot = similarity.apply(np.asarray(PIVOT))
    return PlacedHead(points, similarity.rotation, pivot, similarity.scale, facing, similarity.translation)


class TurnableHead:
    """One photo's head, ready to be drawn at other poses (a video's frames share what is made once).

    `rgb` (H, W, 3) uint8, `landmarks` (478 or 468, 3) MediaPipe's in pixels.
    """

    def __init__(self, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        self.rgb = np.ascontiguousarray(rgb)
        self.head = place_head(landmarks, self.rgb.shape[:2])
        points = self.head.points[:, :2]
        self.reach = REACH * float(np.ptp(points[:, 0]))
        # the head (the face and the skull around it): what a turn moves, before its motion fades out
        centre = self.head.scale * self.head.rotation @ np.asarray(SKULL[0]) + self.head.translation
        half = self.head.scale * np.linalg.norm(self.head.rotation[:2] * np.asarray(SKULL[1]), axis=1)
        low, high = np.minimum(points.min(axis=0), centre[:2] - half), np.maximum(points.max(axis=0), centre[:2] + half)
        self.box = (*np.floor(low).astype(int), *np.ceil(high).astype(int) + 1)

    @property
    def rotation(self) -> np.ndarray:
        """The photo's head rotation (3x3, the landmark frame)."""
        return self.head.rotation

    def aimed(self, rotation: np.ndarray) -> np.ndarray:
        """The rotation to draw for a head that should read as at `rotation` (3x3): the face drawn turned keeps
        the photo's light and shows no more of the side than the photo did, so the landmarker reads its turn
        short (22-23 of 30 degrees of yaw, 10-14 of 15 of pitch on four CFEE originals); the turn from the
        photo's own pose is aimed past by that much (AIM), at most MAX_AIMED_TURN degrees of yaw."""
        from ganime_age.faces.mesh import rotation_angles, rotation_matrix

        own = np.asarray(rotation_angles(self.rotation))
        wanted = np.asarray(rotation_angles(np.asarray(rotation, np.float64)))
        yaw = own[0] + float(np.clip(AIM[0] * (wanted[0] - own[0]), -MAX_AIMED_TURN, MAX_AIMED_TURN))
        return rotation_matrix(yaw, own[1] + AIM[1] * (wanted[1] - own[1]), wanted[2])

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
        turn instead of the photo itself.
        """
        image = self.rgb if photo is None else np.ascontiguousarray(photo)
        head = self.head if landmarks is None else place_head(landmarks, image.shape[:2])
        model = head_model()
        height, width = image.shape[:2]
        placed, visible = turned_points(head, rotation)
        shift = kept_in_view(head.points, placed, width, height)
        placed[:, :2] += shift
        # everything within the reach of the head's motion, where it was and where the face is now (the skull
        # turns within its own box: an ellipsoid's outline about a point inside it)
        x0, y0, x1, y1 = _union_box(self.box, placed[:, :2], self.reach, width, height)
        corner = np.array([x0, y0], np.float64)
        raster = rasterise(placed[:, :2] - corner, model.triangles[visible], (y1 - y0, x1 - x0), depth=placed[:, 2])
        # per vertex: keep its own pixel unless the view shows it much more squarely than the photo did; then
        # it reads its mirror side, where the photo saw that better (a frontal face's two outlines are both
        # oblique: the far one read on the near side drew its edge, hair or wall, inside the cheek)
        facing_now = -vertex_normals(placed, model.triangles)[:, 2]
        ratio = head.facing / np.maximum(facing_now, 0.05)
        keep = np.where(facing_now <= 0.05, 1.0, smoothstep((ratio - OWN_SIDE[0]) / (OWN_SIDE[1] - OWN_SIDE[0])))
        seen = smoothstep((head.facing - SEEN[0]) / (SEEN[1] - SEEN[0]))
        better = smoothstep((head.facing[model.mirror] - head.facing) / BETTER_SEEN)
        mirror_share = (1.0 - keep) * seen[model.mirror] * better
        source = head.points[:, :2] - corner
        # the smooth fields on a grid every FIELD_STEP pixels (sample (i, j) at pixel (step j, step i)): the
        # mirror share and where each pixel reads, continued beyond the mesh as the motion of what is around it
        step = FIELD_STEP
        coarse = ((y1 - y0 - 1) // step + 2, (x1 - x0 - 1) // step + 2)
        coarse_raster = raster.subsample(step, coarse)
        fields = np.zeros((*coarse, 3), np.float32)
        coarse_raster.interpolate_into(fields, np.column_stack([mirror_share, source]).astype(np.float32))
        grid = np.stack(np.meshgrid(step * np.arange(coarse[1]), step * np.arange(coarse[0])), axis=2)
        on_mesh = coarse_raster.mask
        own_motion = extend_outward(fields[..., 1:3] - grid, on_mesh, self.reach / step)
        # beyond the face: its own motion just past its outline (no seam), then the skull's and below the jaw the
        # neck's, each fading out beyond its outline (the wall stays) and down the neck (the shoulders stay)
        # a head shifted back into view moves as the turned head would have at the unshifted place; down the
        # neck the shift fades as the turn does (the shoulders stay)
        skull, beyond_skull, height = surface_motion(head, rotation, grid + corner - shift, *SKULL)
        neck, beyond_neck, neck_height = surface_motion(head, rotation, grid + corner - shift, *NECK)
        skull -= shift.astype(np.float32)
        neck -= (neck_follow(neck_height)[..., None] * shift).astype(np.float32)

        def faded(motion: np.ndarray, beyond: np.ndarray) -> np.ndarray:  # out to nothing past the outline
            distance = cv2.distanceTransform(beyond.astype(np.uint8), cv2.DIST_L2, 3) * step
            return motion * (1.0 - smoothstep(distance / self.reach))[..., None]

        lower = smoothstep((height - JAW[0]) / (JAW[1] - JAW[0]))[..., None].astype(np.float32)
        body = (1.0 - lower) * faded(skull, beyond_skull) + lower * faded(neck, beyond_neck)
        body = cv2.GaussianBlur(body, (0, 0), SMOOTHING * head.scale / step)
        off_mesh = cv2.distanceTransform((on_mesh < 0.5).astype(np.uint8), cv2.DIST_L2, 3) * step
        band = ((1.0 - lower) * SKULL_BAND + lower * NECK_BAND) * head.scale
        own_share = 1.0 - smoothstep(off_mesh[..., None] / band)
        fields[..., 1:3] = own_share * own_motion + (1.0 - own_share) * body
        up = np.meshgrid(np.arange(x1 - x0, dtype=np.float32) / step, np.arange(y1 - y0, dtype=np.float32) / step)
        smooth = cv2.remap(fields, up[0], up[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mirror_w, moved = smooth[..., 0], smooth[..., 1:3]
        full_grid = np.stack(np.meshgrid(np.arange(x1 - x0, dtype=np.float32), np.arange(y1 - y0, dtype=np.float32)), 2)
        # on the mesh each pixel reads where its triangle was; off it, where the motion beyond takes it
        own_map = cv2.copyTo(raster.interpolate(source), (raster.mask > 0.5).astype(np.uint8), full_grid + moved)
        still = 1.0 - smoothstep(np.linalg.norm(own_map - full_grid, axis=2) / STILL).astype(np.float32)
        offset = corner.astype(np.float32)

        def read(where: np.ndarray) -> np.ndarray:  # the photo at `where` (box pixels), any place in the photo
            return cv2.remap(image, where + offset, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        colour = read(own_map).astype(np.float32)
        mirrored = mirror_w > 0.0
        part = _bounds(mirrored)
        if part is not None:
            mirror_map = own_map[part].copy()
            pixels, where = raster.interpolate_at(source[model.mirror], mirrored)
            rows, cols = np.divmod(pixels, x1 - x0)
            mirror_map[rows - part[0].start, cols - part[1].start] = where
            weight = np.ascontiguousarray(mirror_w[part])
            colour[part] = _mix(read(mirror_map).astype(np.float32), colour[part], weight)
        box = (slice(y0, y1), slice(x0, x1))
        mixed = _mix(image[box].astype(np.float32), colour, still)
        out = image.copy()
        out[box] = np.clip(np.rint(mixed, out=mixed), 0, 255, out=mixed).astype(np.uint8)
        return out

    def turn(self, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
        """The photo with its head turned by yaw, pitch and roll degrees from where it is."""
        from ganime_age.faces.mesh import rotation_matrix

        return self.render(rotation_matrix(yaw, pitch, roll) @ self.rotation)


def surface_motion(
    head: PlacedHead, rotation: np.ndarray, pixels: np.ndarray, centre: tuple[float, ...], axes: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far each of `pixels` (..., 2) reads from itself when the head is at `rotation`, as an ellipsoid of the
    head (canonical `centre` and `axes`) carries it (..., 2): the turned surface's front there (its outline beyond
    it) turned back to the photo's pose, taking less of the turn down the neck; where the pixel is beyond the
    turned surface's outline (...); and its height on the canonical head (...).

    Each coordinate is its own row (a video frame's two surfaces over 50,000 grid pixels: (n, 3) products took
    a fifth of the turn)."""
    relative = np.asarray(rotation, np.float64) @ head.rotation.T
    axes, centre = np.asarray(axes, np.float64), np.asarray(centre, np.float64)
    # pixel frame -> the turned surface's unit sphere: q = frame @ (p - origin)
    origin = relative @ (head.scale * head.rotation @ centre + head.translation - head.pivot) + head.pivot
    frame = (relative @ head.rotation).T / head.scale / axes[:, None]
    flat = np.asarray(pixels, np.float64).reshape(-1, 2).T  # (2, n)
    a = frame[:, :2] @ (flat - origin[:2, None]) - (origin[2] * frame[:, 2])[:, None]  # (3, n): q at depth 0
    b = frame[:, 2]
    bb, ab = float(b @ b), b @ a
    discriminant = ab * ab - bb * (np.einsum("ij,ij->j", a, a) - 1.0)
    depth = (-ab - np.sqrt(np.maximum(discriminant, 0.0))) / bb  # the front surface; beyond the outline, its rim
    canonical_y = (a[1] + depth * b[1]) * axes[1] + centre[1]
    follow = neck_follow(canonical_y)
    pivot = np.asarray(head.pivot, np.float64)
    # turned back: relative.T @ (p - pivot) + pivot
    read = relative[:2].T @ (flat - pivot[:2, None]) + np.outer(relative[2], depth - pivot[2]) + pivot[:, None]
    # a point the photo saw from behind (the turn brought it round) reads the photo's outline of the surface at
    # the same place around it, never the face in front of the point (a second ear, a ghost cheek)
    own_origin = head.scale * head.rotation @ centre + head.translation
    own_frame = head.rotation.T / head.scale / axes[:, None]
    towards = own_frame[:, 2] / float(np.linalg.norm(own_frame[:, 2]))
    behind = ((own_frame.T @ towards) @ (read - own_origin[:, None]) > 0.0) & (discriminant >= 0.0)
    if behind.any():
        q = own_frame @ (read[:, behind] - own_origin[:, None])  # (3, m)
        rim = q - np.outer(towards, towards @ q)
        rim /= np.maximum(np.linalg.norm(rim, axis=0, keepdims=True), 1e-9)
        read[:, behind] = np.linalg.inv(own_frame) @ rim + own_origin[:, None]
    # beyond the turned surface's outline a pixel moves as that outline does (with its centre)
    outside = discriminant < 0.0
    shape = np.shape(pixels)[:-1]
    motion = np.empty((*shape, 2), np.float32)
    for axis, centre_moved in enumerate((origin - own_origin)[:2]):
        beyond = flat[axis] - centre_moved
        motion[..., axis] = (follow * (np.where(outside, beyond, read[axis]) - flat[axis])).reshape(shape)
    return motion, outside.reshape(shape), canonical_y.reshape(shape)


def neck_follow(height: np.ndarray) -> np.ndarray:
    """How much of the head's turn a point at canonical `height` (cm) takes: all above the chin, none NECK_RUN
    below it (the shoulders stay)."""
    return 1.0 - smoothstep((np.asarray(height) - CHIN) / NECK_RUN)


def kept_in_view(before: np.ndarray, after: np.ndarray, width: int, height: int) -> np.ndarray:
    """(2,) pixels: the shift that keeps a turned face (`after`, its vertices) in a photo of `width` x `height`:
    its motion beyond the room the face had (`before`) towards the photo's edge, taken back. A head turned about
    the neck swings its face a quarter of its width sideways, physically so, and where the photo has room around
    the head nothing is shifted; but in a tight crop (a face filling the photo) the swing pushed half the face out
    of the picture and stretched the other side over the hair (dlib verified 82% of turns to 20-30 degrees):
    there the head is drawn as if the camera followed it."""
    before, after = np.asarray(before, np.float64)[:, :2], np.asarray(after, np.float64)[:, :2]
    moved = after.mean(axis=0) - before.mean(axis=0)
    room = np.where(moved < 0.0, before.min(axis=0), np.array([width - 1.0, height - 1.0]) - before.max(axis=0))
    excess = np.clip(np.abs(moved) - np.maximum(room, 0.0), 0.0, np.abs(moved))
    return -np.sign(moved) * excess


def turned_points(head: PlacedHead, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face's vertices turned to `rotation` about the top of the neck, and which triangles then face the
    camera."""
    model = head_model()
    relative = np.asarray(rotation, np.float64) @ head.rotation.T
    placed = (head.points - head.pivot) @ relative.T + head.pivot
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
