"""Turning a head in 3-D: the photo's own head as a textured mesh, drawn again at another pose.

A 2-D warp cannot turn a face: it stretches the side that turns away and tears the side that comes into view.
Here the head is MediaPipe's 468-vertex face mesh where the landmarker put it on the photo, continued beyond
the face by a head proxy, and turning it is drawing that mesh again:

1. **The proxy** (:func:`head_model`): rings beyond the face's outline on an ellipsoid of the head's mean
   proportions (forehead to the crown, the temples, the ears), and below the jaw the neck, whose rings follow
   the head's turn less the lower they are, so the shoulders stay where they were.
2. **Texture**: every vertex keeps the photo pixel it lies on. Where the photo saw the surface much more
   obliquely than the turned view shows it, the face reads its mirror side (the far cheek from the near one),
   and the head beyond the face's outline reads the band of hair the photo shows beside the face, reflected
   back and forth at its own scale and softened (the side of the head is hair like the hair at its edge; at
   full detail the reflected strands repeat into a marbled pattern).
3. **Background**: the pixels behind the head, which a turn reveals, are filled once per photo by inpainting
   at a quarter of the resolution (smooth, so nothing flickers from frame to frame).
4. **Drawing**: the mesh is rotated, its back faces dropped, drawn far to near, and every output pixel reads
   the head at its barycentric place (one remap for the own side, one for the mirror) as a premultiplied
   layer over the filled background, at the photo's resolution: drawn at the photo's own pose it gives the
   photo back exactly, soft edges included.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.face_model import canonical_face, head_similarity
from ganime_age.faces.topology import FACE_LEFT, FACE_OVAL, FACE_RIGHT, NUM_MESH_VERTICES
from ganime_age.meshwarp import extend_outward, rasterise

# the head's mean proportions in the canonical face's centimetres (landmark frame: x right, y down, z away): an
# ellipsoid through the canonical face's forehead and temples (head breadth about 16 cm with the hair, length
# 19 cm), and the neck as a cylinder under it
HEAD_CENTRE = (0.0, -2.0, 4.0)
HEAD_AXES = (9.0, 12.5, 10.5)
NECK_AXIS = (0.0, 2.5)  # (x, z) of the neck's vertical axis
NECK_RADIUS = 5.5
PIVOT = (0.0, 1.0, 3.5)  # what the head turns about: the top of the neck, behind the jaw
BEYOND = (10.0, 22.0, 38.0, 58.0, 80.0)  # degrees past the outline, along the head, of the skull's rings
NECK_DROP = (1.5, 3.5, 6.0, 9.0, 13.0)  # cm below the jaw of the neck's rings
NECK_FOLLOW = (0.95, 0.8, 0.55, 0.25, 0.0)  # how much of the head's turn each neck ring takes
NECK_BLEND = (0.0, 4.0)  # outline heights (cm below the face's origin) from skull rings to neck rings
HAIR_MARGIN = 1.05  # the skull's outer rings stand this much off the ellipsoid (hair has volume)
OWN_SIDE = (0.2, 0.5)  # source-to-view foreshortening ratio below which the mirror side is read, above own
SEEN = (0.05, 0.3)  # how squarely the photo saw a surface (its normal's z) for its mirror to be read: none, all
BAND_SHARE = 0.85  # of the hair out to the silhouette's edge that a made-up side reads (not its soft rim)
HAIR_DEPTH = 1.2  # canonical cm: the outer part of the silhouette beside the face that is read as the head's hair
CANONICAL_WIDTH = 15.33  # canonical cm between the face outline's two sides (vertices 234 and 454)
SQUARELY = 0.35  # a proxy vertex seen at least this squarely (its normal's z) has its distance along its path read
FILL_SCALE = 4  # the background behind the head is inpainted at 1/FILL_SCALE of the resolution
SIDE_SOFTNESS = 0.2  # canonical cm: the blur of what a side the photo never showed reads
EDGE_ON = 0.05  # a triangle whose normal is this close to the image plane (its z share) is not drawn
STILL = 1.0  # pixels: a motion below this off the drawn head leaves the photo's pixel (an exact identity)
EDGE_SOFTNESS = 0.7  # pixels: the drawn head's edge is anti-aliased over about this


@dataclass(frozen=True)
class HeadModel:
    """The canonical face continued into a head: (V, 3) vertices in canonical cm, the first 468 the face's."""

    vertices: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (T, 3) int32, wound so that their normals point out of the head
    mirror: np.ndarray  # (V,) int64 each vertex's mirror image across the face's midline
    follow: np.ndarray  # (V,) float64 how much of the head's turn a vertex takes (1 the head, 0 the shoulders)
    rings: np.ndarray  # (R + 1, 36) int64 the outline's vertices, then each ring's beyond it


def _oval_loop() -> list[int]:
    """The face outline's 36 vertices in order around the face."""
    return [a for a, _ in FACE_OVAL]


def _rodrigues(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _smoothstep(t: np.ndarray | float) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.lru_cache(maxsize=2)
def head_model(landmarker_path: str | None = None) -> HeadModel:
    """The canonical face and its head proxy, built once."""
    face = canonical_face(landmarker_path)
    vertices = face.vertices
    centre, axes = np.asarray(HEAD_CENTRE), np.asarray(HEAD_AXES)
    oval = _oval_loop()
    front = (np.array([0.0, -2.0, -8.0]) - centre) / axes
    front /= np.linalg.norm(front)
    rings = [np.asarray(oval)]
    new_points: list[np.ndarray] = []
    follow: list[float] = []
    count = len(vertices)
    for ring in range(len(BEYOND)):
        ids = []
        for k in oval:
            point = vertices[k]
            # the skull: on along the great circle from the face's front through this outline point
            unit = (point - centre) / axes
            radius = float(np.linalg.norm(unit))
            unit /= radius
            axis = np.cross(front, unit)
            axis /= max(float(np.linalg.norm(axis)), 1e-9)
            angle = float(np.arccos(np.clip(front @ unit, -1.0, 1.0))) + np.radians(BEYOND[ring])
            lift = radius + (HAIR_MARGIN - radius) * min(1.0, (ring + 1) / 2.0)
            skull = centre + axes * (lift * (_rodrigues(axis, angle) @ front))
            # the neck: straight down from the jaw, drawn in towards the neck's cylinder
            around = np.array([point[0] - NECK_AXIS[0], point[2] - NECK_AXIS[1]])
            around = around / max(float(np.linalg.norm(around)), 1e-9) * NECK_RADIUS
            pull = (ring + 1) / len(NECK_DROP)
            neck = np.array(
                [
                    point[0] + (NECK_AXIS[0] + around[0] - point[0]) * pull,
                    point[1] + NECK_DROP[ring],
                    point[2] + (NECK_AXIS[1] + around[1] - point[2]) * pull,
                ]
            )
            weight = float(_smoothstep((point[1] - NECK_BLEND[0]) / (NECK_BLEND[1] - NECK_BLEND[0])))
            new_points.append((1.0 - weight) * skull + weight * neck)
            follow.append((1.0 - weight) + weight * NECK_FOLLOW[ring])
            ids.append(count)
            count += 1
        rings.append(np.asarray(ids))
    all_vertices = np.concatenate([vertices, np.asarray(new_points)])
    triangles = [np.asarray(face.triangles, np.int64)]
    n = len(oval)
    for inner, outer in itertools.pairwise(rings):
        for k in range(n):
            a, b, c, d = inner[k], inner[(k + 1) % n], outer[k], outer[(k + 1) % n]
            triangles.append(np.array([[a, b, c], [b, d, c]]))
    tri = np.concatenate(triangles).astype(np.int64)
    tri = _outward(all_vertices, tri, centre)
    mirror = _mirror(vertices, all_vertices, oval, rings)
    follow_all = np.concatenate([np.ones(len(vertices)), np.asarray(follow)])
    return HeadModel(all_vertices, tri.astype(np.int32), mirror, follow_all, np.stack(rings))


def _outward(vertices: np.ndarray, triangles: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The triangles rewound so that each normal points away from the head's centre."""
    corners = vertices[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normal * (corners.mean(axis=1) - centre)).sum(axis=1) < 0.0
    fixed = triangles.copy()
    fixed[inward] = triangles[inward][:, [0, 2, 1]]
    return fixed


def _mirror(face: np.ndarray, vertices: np.ndarray, oval: list[int], rings: list[np.ndarray]) -> np.ndarray:
    """Each vertex's mirror across the midline: the face's nearest to its reflection, ring by ring beyond."""
    reflected = face * np.array([-1.0, 1.0, 1.0])
    distances = ((reflected[:, None, :] - face[None, :, :]) ** 2).sum(axis=2)
    mirror = np.arange(len(vertices))
    mirror[: len(face)] = distances.argmin(axis=1)
    position = {vertex: k for k, vertex in enumerate(oval)}
    partner = [position.get(int(mirror[v]), k) for k, v in enumerate(oval)]
    for ring in rings[1:]:
        mirror[ring] = ring[partner]
    return mirror


def vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals of a placed mesh (area-weighted over the triangles around each vertex)."""
    corners = points[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    out = np.zeros_like(points)
    for k in range(3):
        np.add.at(out, triangles[:, k], normal)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def partial_rotation(rotation: np.ndarray, share: np.ndarray) -> np.ndarray:
    """(V, 3, 3): `rotation` scaled to each share of its angle about its own axis (share 1 all, 0 none)."""
    cosine = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cosine))
    if angle < 1e-9:
        return np.broadcast_to(np.eye(3), (len(share), 3, 3)).copy()
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    axis /= max(float(np.linalg.norm(axis)), 1e-12)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    theta = angle * np.asarray(share, np.float64)[:, None, None]
    return np.eye(3)[None] + np.sin(theta) * k[None] + (1.0 - np.cos(theta)) * (k @ k)[None]


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


def place_head(landmarks: np.ndarray, person: np.ndarray) -> PlacedHead:
    """The head model on 478 (or 468) landmarks in pixels, with the photo's silhouette `person` (H, W) in 0..1."""
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
    paths = _texture_paths(placed, facing, model, person)
    band = np.zeros(len(placed))
    band[model.rings[1:].reshape(-1)] = 1.0
    return PlacedHead(
        placed, similarity.rotation, similarity.apply(np.asarray(PIVOT)), similarity.scale, facing, paths, band
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
        self.person = np.clip(np.asarray(person, np.float32), 0.0, 1.0)
        self.head = place_head(landmarks, self.person)
        model = head_model()
        # the head's own silhouette in the photo: the person where the head's mesh lies, with its soft edge
        drawn = rasterise(self.head.points[:, :2], model.triangles, (height, width))
        region = _head_region(drawn.mask, self.person, self.head.scale)
        ys, xs = np.nonzero(region)
        self.box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 1, 1)
        self.alpha = (self.person * region).astype(np.float32)
        self.background = _fill_behind(self.rgb, region)
        # the head's own colours without the background its soft edge lets through, softened: what a made-up
        # side reads (normalised convolution over the silhouette)
        sigma = SIDE_SOFTNESS * self.head.scale
        weight = cv2.GaussianBlur(self.alpha, (0, 0), sigma)[..., None]
        spread = cv2.GaussianBlur(self.rgb.astype(np.float32) * self.alpha[..., None], (0, 0), sigma)
        self.soft = (spread / np.maximum(weight, 1e-3)).astype(np.float32)
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
        head = self.head if landmarks is None else place_head(landmarks, self.person)
        model = head_model()
        height, width = image.shape[:2]
        placed, visible = turned_points(head, rotation)
        # all the work within the box the head can change: where it was (with its soft edge) and where it is now,
        # and the reach of its motion beyond
        x0, y0, x1, y1 = _union_box(self.box, placed[:, :2], self.reach, width, height)
        raster = rasterise(placed[:, :2] - [x0, y0], model.triangles[visible], (y1 - y0, x1 - x0), depth=placed[:, 2])
        # per vertex: keep its own pixel unless the view shows it much more squarely than the photo did; then
        # the face reads its mirror side (where the photo saw that squarely), the head beyond the outline its band
        facing_now = -vertex_normals(placed, model.triangles)[:, 2]
        ratio = head.facing / np.maximum(facing_now, 0.05)
        keep = np.where(facing_now <= 0.05, 1.0, _smoothstep((ratio - OWN_SIDE[0]) / (OWN_SIDE[1] - OWN_SIDE[0])))
        seen = _smoothstep((head.facing - SEEN[0]) / (SEEN[1] - SEEN[0]))
        face = 1.0 - head.band
        mirror_share = (1.0 - keep) * seen[model.mirror] * face
        band_share = (1.0 - keep) * head.band
        source = head.points[:, :2]
        values = np.column_stack([source, source[model.mirror], mirror_share, band_share, head.paths])
        fields = raster.interpolate(values.astype(np.float32), fill=np.nan)
        covered = np.isfinite(fields[..., 0])
        fields[~covered] = 0.0
        own_map, mirror_map = fields[..., 0:2], fields[..., 2:4]
        mirror_w, band_w = fields[..., 4:5], fields[..., 5:6]
        origin, outward, hair, along = fields[..., 6:8], fields[..., 8:10], fields[..., 10:12], fields[..., 12:13]
        norm = np.maximum(np.linalg.norm(outward, axis=2, keepdims=True), 1e-6)
        from_band = origin + _ping_pong(along, hair[..., 0:1], hair[..., 1:2]) * outward / norm
        geometric = own_map

        # beyond the drawn mesh the head's motion (where it is, not what a made-up side reads) continues and
        # fades: its soft edge comes along, and far from it every pixel reads itself
        xs, ys = np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)
        grid = np.stack(np.meshgrid(xs, ys), axis=2)
        moved = extend_outward(geometric - grid, covered.astype(np.float32), self.reach)
        still = 1.0 - _smoothstep(np.linalg.norm(moved, axis=2) / STILL)[..., None]
        own_map = np.where(covered[..., None], own_map, grid + moved)  # the drawn edge's soft side reads on

        def read(values: np.ndarray, where: np.ndarray) -> np.ndarray:
            return cv2.remap(values, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

        # the head as a premultiplied layer over the filled background: read where it moved, it gives the photo
        # back exactly where nothing moved, soft edge included
        background = self.background.astype(np.float32)
        layer = image.astype(np.float32) - (1.0 - self.alpha[..., None]) * background
        head = (1.0 - mirror_w) * read(layer, own_map) + mirror_w * read(layer, mirror_map)
        alpha = (1.0 - mirror_w[..., 0]) * read(self.alpha, own_map) + mirror_w[..., 0] * read(self.alpha, mirror_map)
        background = background[y0:y1, x0:x1]
        drawn = head + (1.0 - alpha[..., None]) * background
        # a side the photo never showed: the hair beside the face, softened (reflected strands repeat into a
        # marbled pattern at full detail) and solid (the head is there, whatever its edge let through)
        drawn += band_w * (read(self.soft, from_band) - drawn)
        # off the drawn mesh: the photo where nothing moves, the filled background where the head moved away
        # (the head's old place never shows through: no ghost ear, no second outline)
        off = still * image[y0:y1, x0:x1].astype(np.float32) + (1.0 - still) * background
        coverage = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), EDGE_SOFTNESS)[..., None]
        out = image.copy()
        out[y0:y1, x0:x1] = np.clip(np.round(coverage * drawn + (1.0 - coverage) * off), 0, 255).astype(np.uint8)
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


def _union_box(
    box: tuple[int, int, int, int], points: np.ndarray, margin: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): `box` and the points' bounding box together, grown by `margin`, inside the photo."""
    x0 = min(box[0], float(points[:, 0].min())) - margin
    y0 = min(box[1], float(points[:, 1].min())) - margin
    x1 = max(box[2], float(points[:, 0].max())) + margin
    y1 = max(box[3], float(points[:, 1].max())) + margin
    return max(0, int(x0)), max(0, int(y0)), min(width, int(np.ceil(x1)) + 1), min(height, int(np.ceil(y1)) + 1)


def _texture_paths(placed: np.ndarray, facing: np.ndarray, model: HeadModel, person: np.ndarray) -> np.ndarray:
    """(V, 7) per vertex: where its path over the head starts in the photo (x, y), the path's outward direction
    there (dx, dy), where the hair beside the face runs along it (from, to: pixels from the start) and the
    vertex's distance along it (all 0 for the face's own vertices).

    A turn that shows the side of the head (seen edge-on or not at all) reads it from the hair the photo does
    show beside the face along the same path (its outer part: the ear and the temple lie farther in; short of
    the silhouette's soft edge), reflected back and forth at its own scale, pixel by pixel (:func:`_ping_pong`): hair continues as
    hair, its strands the size they were, instead of a thin band at the silhouette stretched into streaks.
    """
    paths = np.zeros((len(placed), 7), np.float64)
    centre = placed[list(model.rings[0]), :2].mean(axis=0)
    scale = float(np.linalg.norm(placed[FACE_RIGHT, :2] - placed[FACE_LEFT, :2])) / CANONICAL_WIDTH
    runs: list[tuple[float, float]] = []
    for k in range(model.rings.shape[1]):
        path = model.rings[:, k]
        well = facing[path] >= SQUARELY
        last = 0
        while last + 1 < len(path) and well[last + 1]:
            last += 1
        origin = placed[path[0], :2]
        outward = origin - centre
        outward /= max(float(np.linalg.norm(outward)), 1e-9)
        reach = 0.6 * float(np.linalg.norm(origin - centre))
        # the head's paths read the outer part of the silhouette beside the face (hair), the neck's its inner
        # part, the skin under the jaw (not the hair or the collar beside the neck)
        neck = model.follow[path[-1]] < 0.5
        runs.append(_hair_run(person, origin, outward, reach, HAIR_DEPTH * scale, inner=neck))
        along = (placed[path[: last + 1], :2] - origin) @ outward
        steps = np.linalg.norm(np.diff(placed[path[last:]], axis=0), axis=1)
        paths[path, 0:2], paths[path, 2:4] = origin, outward
        paths[path, 6] = np.concatenate([along, along[-1] + np.cumsum(steps)])
    # neighbouring paths read alike (runs that change from one path to the next drew shards between them)
    runs_array = np.asarray(runs)
    count = len(runs_array)
    smoothed = np.stack([runs_array[np.arange(k - 2, k + 3) % count] for k in range(count)]).mean(axis=1)
    for k in range(count):
        paths[model.rings[:, k], 4:6] = smoothed[k]
    return paths


def _hair_run(
    person: np.ndarray, origin: np.ndarray, direction: np.ndarray, reach: float, depth: float, *, inner: bool
) -> tuple[float, float]:
    """(from, to) pixels from `origin` along `direction`: the outermost `depth` pixels of the person's
    silhouette there (the hair around a head: the ear and the temple's skin lie farther in), ending BAND_SHARE
    of the way to the silhouette's edge, or with `inner` its first `depth` pixels; (0, 0) where the
    silhouette ends too soon."""
    height, width = person.shape
    steps = np.arange(1.0, max(reach, 2.0))
    x, y = origin[0] + steps * direction[0], origin[1] + steps * direction[1]
    inside = (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1)
    xs = np.clip(np.round(x).astype(int), 0, width - 1)
    ys = np.clip(np.round(y).astype(int), 0, height - 1)
    on = inside & (person[ys, xs] > 0.5)
    off = np.flatnonzero(~on)
    end = float(steps[off[0]] - 1.0) if len(off) else float(steps[-1])
    stop = BAND_SHARE * end
    start = max(0.0, stop - depth)
    if inner:
        start, stop = 0.0, min(stop, depth)
    if stop - start < 4.0:
        return 0.0, 0.0
    return start, stop


def _ping_pong(distance: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """`distance` beyond `start` folded back and forth into [start, stop] (a mirror at each end); `distance`
    itself before `start`, and 0 where there is no run."""
    width = stop - start
    period = np.maximum(2.0 * width, 1e-6)
    phase = np.mod(np.maximum(distance - start, 0.0), period)
    folded = start + np.where(phase <= width, phase, period - phase)
    return np.where(width >= 4.0, np.where(distance < start, distance, folded), 0.0)


def _head_region(mesh: np.ndarray, person: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) uint8: the head's place in the photo, the mesh where the person is and, a few millimetres beyond,
    the silhouette's soft edge against the background (not the hair that goes on beyond the mesh, which stays)."""
    grow = max(3, round(0.4 * scale))
    head = ((mesh > 0.5) & (person > 0.02)).astype(np.uint8)
    near = cv2.dilate(head, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return head | (near & (person < 0.98))


def _fill_behind(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The photo with `region` (the head) taken out and the background continued into its place, inpainted at
    1/FILL_SCALE of the resolution (smooth: a video's frames share it, so it never flickers); elsewhere the
    photo's own pixels."""
    height, width = rgb.shape[:2]
    if not region.any():
        return rgb.copy()
    small_size = (max(8, width // FILL_SCALE), max(8, height // FILL_SCALE))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA) > 0
    # continued from clean background: the hair's soft fringe beyond the region would grey the fill
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((7, 7), np.uint8))
    filled = cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.5)
    large = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(region[..., None] > 0, large, rgb)
