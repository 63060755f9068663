"""Face reenactment: a driving face's head pose and expression on the source person.

Two parts, as in dual-generator reenactment:

- :class:`ShapeTransfer` (the identity-preserving shape step) turns MediaPipe's results for the
  source and the driver into *target landmarks*: the source's own 3D face shape, posed with the
  driver's head rotation (a turn of more than ``max_turn_degrees`` away from the source's own pose stops
  there: a photo shows one side of a head), with the driver's expression in the mouth, eye and brow
  regions, turned on the spot where the source's face is in the source photo. It is geometry, not a
  network, so it needs no training. Poses come from a rigid-point fit of MediaPipe's canonical face to
  the 3D landmarks (``rotation="landmarks"``, default) or from MediaPipe's transformation matrix.
- :class:`Reenactor` (the reenacting generator) renders source and target landmarks as heatmaps,
  predicts a dense motion field (a residual on top of a landmark thin-plate spline) and an occlusion
  mask, warps the source's encoder features with ``grid_sample`` and decodes the reenacted face; a
  final attention head blends the decoded colours with the warped source pixels.
  :class:`ReenactDiscriminator` is its conditional PatchGAN critic (image + target heatmaps).

Expression transfer (documented choice): for each region (mouth+jaw, each eye, each brow) the driver's
canonical (pose-free, scale-normalised) landmarks are re-anchored on the source's (subnasale for the
mouth, the eye corners for eyes and brows, with the eye-width ratio as scale) and blended in with a
smooth spatial weight times a *gate*: how differently that region of the two faces is posed, read from
their MediaPipe blendshapes (the largest absolute difference of the region's blendshapes over
``gate_threshold``, capped at 1). When source and driver show the same expression in a region the gate
is ~0 and the source's own region shape is kept untouched; when they differ, the region follows the
driver. Rigid parts (forehead, nose, eye corners, cheeks, face outline above the jaw) always keep the
source's shape, so identity ratios survive. Fine expression detail in the pixels (teeth, closed lids)
comes from the AU path of the ageing model, see ``ganime_age.editing.reenactment``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.config import bounded, check_config, one_of
from ganime_age.face_model import (
    CanonicalFace,
    Similarity,
    canonical_face,
    head_similarity,
    limit_turn,
    matrix_rotation,
    rotation_angle,
)
from ganime_age.faces import mesh as face_mesh
from ganime_age.faces.topology import LEFT_EYE_CORNERS, NUM_LANDMARKS, RIGHT_EYE_CORNERS
from ganime_age.hub import HubModel
from ganime_age.models.ganimation_age import ResidualBlock, conv_norm_relu, init_gan_weights


# ---------------------------------------------------------------------------------------------------------
# Shape transfer
# ---------------------------------------------------------------------------------------------------------
class FaceLandmarks(Protocol):
    """What the shape transfer reads from a face: ``faces.LandmarkResult`` has exactly these."""

    landmarks: np.ndarray  # (478, 3) x, y image pixels, z same scale (smaller = nearer)
    blendshapes: Mapping[str, float]
    matrix: np.ndarray  # (4, 4) MediaPipe facial transformation matrix


def _indices(connections: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.array(sorted({i for pair in connections for i in pair}), np.int64)


@dataclass(frozen=True)
class ExpressionRegion:
    name: str
    centre: tuple[int, ...]  # landmarks whose mean is the region centre (on the canonical face)
    half_axes: tuple[float, float, float]  # x, y above, y below the centre (cm) of the full-weight ellipse
    anchor: tuple[int, ...]  # landmarks the driver's region is re-anchored on (mean, and scale if 2 points)
    scale_by_anchor: bool
    blendshape_prefixes: tuple[str, ...]


_LIPS = tuple(int(i) for i in _indices(face_mesh.LIPS))
_RIGHT_EYE = tuple(int(i) for i in _indices(face_mesh.RIGHT_EYE))
_LEFT_EYE = tuple(int(i) for i in _indices(face_mesh.LEFT_EYE))
_RIGHT_BROW = tuple(int(i) for i in _indices(face_mesh.RIGHT_EYEBROW))
_LEFT_BROW = tuple(int(i) for i in _indices(face_mesh.LEFT_EYEBROW))
_RIGHT_EYE_CORNERS, _LEFT_EYE_CORNERS = RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS
_SUBNASALE = (2,)
# Eye regions take both sides' eye blendshapes: MediaPipe's left/right naming is easy to get mirrored and a
# wink still transfers (the open eye's region just follows the driver's open eye).
_EYE_SHAPES = ("eyeBlink", "eyeSquint", "eyeWide", "eyeLook")
EXPRESSION_REGIONS: tuple[ExpressionRegion, ...] = (
    ExpressionRegion("mouth", _LIPS, (3.5, 1.2, 5.2), _SUBNASALE, False, ("jaw", "mouth", "cheekPuff")),
    ExpressionRegion("right_eye", _RIGHT_EYE, (1.5, 0.8, 0.8), _RIGHT_EYE_CORNERS, True, _EYE_SHAPES),
    ExpressionRegion("left_eye", _LEFT_EYE, (1.5, 0.8, 0.8), _LEFT_EYE_CORNERS, True, _EYE_SHAPES),
    ExpressionRegion("right_brow", _RIGHT_BROW, (2.4, 0.7, 0.6), _RIGHT_EYE_CORNERS, True, ("brow",)),
    ExpressionRegion("left_brow", _LEFT_BROW, (2.4, 0.7, 0.6), _LEFT_EYE_CORNERS, True, ("brow",)),
)
RIGHT_IRIS = tuple(range(468, 473))
LEFT_IRIS = tuple(range(473, 478))


def region_weights(face: CanonicalFace, falloff: float = 1.7) -> np.ndarray:
    """(regions, 478) smooth spatial weights: 1 inside each region's ellipse, 0 beyond `falloff` times it.

    Computed on the canonical face, so every face gets the same weights; the iris points take their eye's.
    """
    vertices = face.vertices
    weights = np.zeros((len(EXPRESSION_REGIONS), NUM_LANDMARKS))
    for r, region in enumerate(EXPRESSION_REGIONS):
        centre = vertices[list(region.centre)].mean(0)
        ax, ay_up, ay_down = region.half_axes
        dx = (vertices[:, 0] - centre[0]) / ax
        dy = vertices[:, 1] - centre[1]
        dy = np.where(dy < 0, dy / ay_up, dy / ay_down)
        rho = np.hypot(dx, dy)
        t = np.clip((rho - 1.0) / (falloff - 1.0), 0.0, 1.0)
        weights[r, : len(vertices)] = 1.0 - t * t * (3.0 - 2.0 * t)  # smoothstep falloff
    for r, region in enumerate(EXPRESSION_REGIONS):
        iris = RIGHT_IRIS if region.name == "right_eye" else LEFT_IRIS if region.name == "left_eye" else ()
        weights[r, list(iris)] = 1.0
    return weights


@dataclass
class ShapeTransferConfig:
    expression_scale: float = bounded(1.0, 0.0, 3.0)  # 0 keeps the source's expression, 1 takes the driver's
    gate_threshold: float = bounded(0.25, 0.0, 1.0)  # blendshape difference at which a region follows the driver fully
    # "landmarks": rigid-point fit to the canonical face; "matrix": MediaPipe's
    rotation: str = one_of("landmarks", "landmarks", "matrix")
    # A photo shows one side of a head: turning it much further than this away from the source's own pose
    # only stretches pixels (the warp) or leaves the training range (the generator), so larger turns stop here.
    max_turn_degrees: float = bounded(35.0, 0.0, 180.0)


class ShapeTransfer:
    """Target landmarks with the source's face shape, the driver's pose and expression, in the source photo."""

    def __init__(
        self,
        config: ShapeTransferConfig | None = None,
        face: CanonicalFace | None = None,
        *,
        landmarker_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config or ShapeTransferConfig()
        check_config(self.config)  # its fields' declared ranges and choices (a ConfigError names the field)
        self._face = face
        self._landmarker_path = landmarker_path  # the canonical face is read from this task file (None: resolved)
        self._weights: np.ndarray | None = None

    @property
    def face(self) -> CanonicalFace:
        if self._face is None:
            self._face = canonical_face(self._landmarker_path)
        return self._face

    @property
    def weights(self) -> np.ndarray:
        if self._weights is None:
            self._weights = region_weights(self.face)
        return self._weights

    def placement(self, result: FaceLandmarks) -> Similarity:
        """Canonical face -> this face's landmarks (rotation from the landmarks or from MediaPipe's matrix)."""
        rotation = None
        matrix = getattr(result, "matrix", None)
        if self.config.rotation == "matrix" and matrix is not None and np.isfinite(matrix).all():
            rotation = matrix_rotation(matrix)
        return head_similarity(_landmarks(result), self.face, rotation=rotation)

    def gates(self, source: Mapping[str, float], driver: Mapping[str, float]) -> np.ndarray:
        """(regions,) in [0, 1]: how much each region follows the driver (1 without blendshapes)."""
        gates = np.ones(len(EXPRESSION_REGIONS))
        if not source or not driver:
            return gates
        for r, region in enumerate(EXPRESSION_REGIONS):
            names = [n for n in driver if n.startswith(region.blendshape_prefixes) and n in source]
            if names:
                difference = max(abs(float(driver[n]) - float(source[n])) for n in names)
                gates[r] = min(1.0, difference / max(self.config.gate_threshold, 1e-6))
        return gates

    def canonical_target(self, source_canon: np.ndarray, driver_canon: np.ndarray, gates: np.ndarray) -> np.ndarray:
        """Source canonical shape with each gated region moved to the (re-anchored) driver's."""
        total = np.zeros_like(source_canon)
        weight_sum = np.zeros(len(source_canon))
        for r, region in enumerate(EXPRESSION_REGIONS):
            w = gates[r] * self.weights[r]
            if not w.any():
                continue
            anchor = list(region.anchor)
            a_src, a_drv = source_canon[anchor].mean(0), driver_canon[anchor].mean(0)
            scale = 1.0
            if region.scale_by_anchor and len(anchor) == 2:
                d_src = np.linalg.norm(source_canon[anchor[0]] - source_canon[anchor[1]])
                d_drv = np.linalg.norm(driver_canon[anchor[0]] - driver_canon[anchor[1]])
                scale = d_src / max(d_drv, 1e-6)
            moved = a_src + (driver_canon - a_drv) * scale
            total += w[:, None] * (moved - source_canon)
            weight_sum += w
        # overlapping regions share one displacement, never more than a full one
        norm = np.maximum(weight_sum, 1.0)
        return source_canon + self.config.expression_scale * total / norm[:, None]

    def transfer(
        self, source: FaceLandmarks, driver: FaceLandmarks, reference: FaceLandmarks | None = None
    ) -> np.ndarray:
        """(478, 3) float32 target landmarks in the source photo's pixel frame.

        `reference`: the driver's first frame, for a video: the head then turns from the source's own pose as the
        driver's turns from that frame's (a driver that holds still leaves the head where it is), instead of
        taking the driver's pose itself."""
        src_place, drv_place, wanted = self._placed(source, driver, reference)
        source_canon = src_place.invert(_landmarks(source))
        driver_canon = drv_place.invert(_landmarks(driver))
        gates = self.gates(getattr(source, "blendshapes", {}) or {}, getattr(driver, "blendshapes", {}) or {})
        target_canon = self.canonical_target(source_canon, driver_canon, gates)
        # Turn about the face itself, not about the canonical origin (a point inside the head): the rigid
        # points' centroid stays where it is in the source photo, so the face turns on the spot.
        ids, w = self.face.rigid_indices, self.face.rigid_weights
        rotation = limit_turn(src_place.rotation, wanted, self.config.max_turn_degrees)
        rotated = src_place.scale * target_canon @ rotation.T
        anchor = w @ _landmarks(source)[ids] - w @ rotated[ids]
        return (rotated + anchor).astype(np.float32)

    __call__ = transfer

    def _placed(self, source: FaceLandmarks, driver: FaceLandmarks, reference: FaceLandmarks | None) -> tuple:
        """(the source's placement, the driver's, the head rotation the driver asks of the source)."""
        src_place = self.placement(source)
        drv_place = self.placement(driver)
        wanted = drv_place.rotation
        if reference is not None:
            wanted = drv_place.rotation @ self.placement(reference).rotation.T @ src_place.rotation
        return src_place, drv_place, wanted

    def beyond_reach(
        self, source: FaceLandmarks, driver: FaceLandmarks, reference: FaceLandmarks | None = None
    ) -> float:
        """Degrees by which the driver asks the source's head to turn past ``max_turn_degrees`` (0 within it):
        what :meth:`transfer` does not follow."""
        src_place, _, wanted = self._placed(source, driver, reference)
        return max(0.0, rotation_angle(wanted @ src_place.rotation.T) - float(self.config.max_turn_degrees))


def _landmarks(result: FaceLandmarks) -> np.ndarray:
    points = np.asarray(result.landmarks, np.float64)
    if points.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"the shape transfer needs MediaPipe's (478, 3) landmarks, got {points.shape}")
    return points


# ---------------------------------------------------------------------------------------------------------
# Landmark drawings and thin-plate splines (torch, batched, differentiable in the image)
# ---------------------------------------------------------------------------------------------------------
_NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
_INNER_LIPS = (13, 14, 78, 80, 81, 82, 87, 88, 95, 178, 191, 308, 310, 311, 312, 317, 318, 324, 402, 415)


def _heatmap_groups() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Landmark groups drawn as one heatmap channel each.

    Left and right parts share a channel, so a mirrored face (training flips do not re-pair point
    indices) draws exactly the same maps; the "mesh" channel holds every other point (cheeks, forehead),
    which carries the 3D surface the head pose shows.
    """
    oval = tuple(int(i) for i in _indices(face_mesh.FACE_OVAL))
    brows = _RIGHT_BROW + _LEFT_BROW
    eyes = _RIGHT_EYE + _LEFT_EYE
    irises = RIGHT_IRIS + LEFT_IRIS
    outer_lips = tuple(i for i in _LIPS if i not in _INNER_LIPS)
    named = [
        ("oval", oval),
        ("brows", brows),
        ("eyes", eyes),
        ("irises", irises),
        ("nose", _NOSE),
        ("outer_lips", outer_lips),
        ("inner_lips", _INNER_LIPS),
    ]
    used = {i for _, group in named for i in group}
    named.append(("mesh", tuple(i for i in range(468) if i not in used)))
    return tuple(named)


HEATMAP_GROUPS = _heatmap_groups()
NUM_HEATMAPS = len(HEATMAP_GROUPS)
# Control points of the landmark thin-plate spline: the 68 classic face points (spread over the face).
TPS_CONTROL = face_mesh.MEDIAPIPE_TO_68


def pixels_to_grid(points: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinates (cv2 convention, centres at integers) of a size x size image -> grid_sample's [-1, 1]."""
    return (points + 0.5) * (2.0 / size) - 1.0


def grid_to_pixels(points: torch.Tensor, size: int) -> torch.Tensor:
    return (points + 1.0) * (size / 2.0) - 0.5


def identity_grid(n: int, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(n, h, w, 2) sampling grid that reproduces the input (align_corners=False convention)."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(n, height, width, 2)


def render_heatmaps(landmarks: torch.Tensor, image_size: int, out_size: int, sigma: float = 1.0) -> torch.Tensor:
    """(N, 478, 2|3) landmark pixels of an image_size image -> (N, NUM_HEATMAPS, out, out) Gaussian maps in [0, 1].

    `sigma` is in output pixels. Points outside the image simply draw nothing.
    """
    points = pixels_to_grid(landmarks[..., :2].float(), image_size)
    grid = identity_grid(1, out_size, out_size, landmarks.device).reshape(1, 1, -1, 2)
    scale = (2.0 / out_size) * sigma
    maps = []
    for _, group in HEATMAP_GROUPS:
        p = points[:, list(group), None, :]  # (N, k, 1, 2)
        d2 = ((p - grid) ** 2).sum(-1)  # (N, k, HW)
        maps.append(torch.exp(-d2.amin(dim=1) / (2.0 * scale * scale)))
    return torch.stack(maps, dim=1).reshape(landmarks.shape[0], NUM_HEATMAPS, out_size, out_size)


def _tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r2 = ((a[:, :, None, :] - b[:, None, :, :]) ** 2).sum(-1)
    return 0.5 * r2 * torch.log(r2.clamp_min(1e-12))


def tps_solve(control_from: torch.Tensor, control_to: torch.Tensor, regularisation: float = 0.0) -> torch.Tensor:
    """Batched thin-plate spline through control pairs (N, K, 2) -> coefficients (N, K+3, 2)."""
    n, k, _ = control_from.shape
    p = control_from.float()
    kernel = _tps_kernel(p, p) + regularisation * torch.eye(k, device=p.device)
    ones = torch.ones(n, k, 1, device=p.device)
    top = torch.cat([kernel, ones, p], dim=2)
    bottom = torch.cat([torch.cat([ones, p], dim=2).transpose(1, 2), torch.zeros(n, 3, 3, device=p.device)], dim=2)
    system = torch.cat([top, bottom], dim=1)
    rhs = torch.cat([control_to.float(), torch.zeros(n, 3, 2, device=p.device)], dim=1)
    return torch.linalg.solve(system, rhs)


def tps_transform(coefficients: torch.Tensor, control_from: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Evaluate batched splines at (N, M, 2) points."""
    k = control_from.shape[1]
    basis = _tps_kernel(points.float(), control_from.float())
    return basis @ coefficients[:, :k] + coefficients[:, k : k + 1] + points.float() @ coefficients[:, k + 1 :]


def frame_points(n: int, per_side: int = 4, device: torch.device | None = None) -> torch.Tensor:
    """(n, 4*per_side, 2) fixed points on the image border in grid coordinates (they pin the background)."""
    t = torch.linspace(-1.0, 1.0, per_side + 1, device=device)[:-1]
    one = torch.ones_like(t)
    border = torch.cat(
        [torch.stack([t, -one], 1), torch.stack([one, t], 1), torch.stack([-t, one], 1), torch.stack([-one, -t], 1)]
    )
    return border.unsqueeze(0).expand(n, -1, -1)


def landmark_tps_grid(
    source_landmarks: torch.Tensor,
    target_landmarks: torch.Tensor,
    image_size: int,
    out_size: int,
    regularisation: float = 1e-3,
) -> torch.Tensor:
    """Backward sampling grid (N, out, out, 2): for each target-frame position, where to read in the source.

    A thin-plate spline through the 68 classic face points (target -> source) and the image border
    (fixed), so the face moves and the background stays.
    """
    n = source_landmarks.shape[0]
    idx = list(TPS_CONTROL)
    frame = frame_points(n, device=source_landmarks.device)
    control_to = torch.cat([pixels_to_grid(source_landmarks[:, idx, :2].float(), image_size), frame], 1)
    control_from = torch.cat([pixels_to_grid(target_landmarks[:, idx, :2].float(), image_size), frame], 1)
    coefficients = tps_solve(control_from, control_to, regularisation)
    grid = identity_grid(n, out_size, out_size, source_landmarks.device).reshape(n, -1, 2)
    return tps_transform(coefficients, control_from, grid).reshape(n, out_size, out_size, 2)


def resize_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """A sampling grid at another resolution: its displacement is resized, so identity stays exact."""
    n, side = grid.shape[0], grid.shape[1]
    if side == size:
        return grid
    displacement = (grid - identity_grid(n, side, side, grid.device)).permute(0, 3, 1, 2)
    resized = F.interpolate(displacement, size=(size, size), mode="bilinear", align_corners=False)
    return identity_grid(n, size, size, grid.device) + resized.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------------------
# Reenacting generator and critic
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ReenactorConfig:
    """The generator's architecture; image_size must be a multiple of 4 and motion_size divide by
    2**motion_depth (checked when built)."""

    image_size: int = bounded(128, 16, 1024)
    conv_dim: int = bounded(32, 1, 1024)  # channels of the first encoder level (x2 per level down)
    num_residual_blocks: int = bounded(4, 0, 64)
    motion_size: int = bounded(64, 8, 512)  # resolution of the motion network and the heatmaps
    motion_dim: int = bounded(32, 1, 1024)  # channels of the motion hourglass' first level
    motion_depth: int = bounded(3, 1, 8)  # hourglass levels
    max_motion_channels: int = bounded(256, 1, 4096)
    heatmap_sigma: float = bounded(1.0, 0.1, 16.0)  # Gaussian sigma of the landmark heatmaps, in motion pixels
    max_residual_flow: float = bounded(0.25, 0.0, 2.0)  # bound of the learned flow on the TPS prior ([-1, 1] units)
    tps_prior: bool = True  # start from the landmark thin-plate spline; False learns the flow from identity
    tps_regularisation: float = bounded(1e-3, 0.0, 1.0)


@dataclass
class ReenactDiscriminatorConfig:
    """The critic's architecture; image_size must also divide by 2**num_layers (checked when built)."""

    image_size: int = bounded(128, 16, 1024)
    conv_dim: int = bounded(64, 1, 1024)
    num_layers: int = bounded(4, 1, 10)  # stride-2 convs; the realism map is image_size / 2**num_layers wide
    max_channels: int = bounded(512, 1, 4096)
    heatmap_size: int = bounded(64, 8, 512)
    heatmap_sigma: float = bounded(1.0, 0.1, 16.0)


class ReenactOutput(NamedTuple):
    image: torch.Tensor  # (N, 3, S, S) in [-1, 1]: attention * warped + (1 - attention) * colour
    warped: torch.Tensor  # (N, 3, S, S) the source image warped by the motion field
    grid: torch.Tensor  # (N, m, m, 2) backward sampling grid (target frame -> source frame)
    occlusion: torch.Tensor  # (N, 1, m, m) in [0, 1]; 0 = not visible in the source
    attention: torch.Tensor  # (N, 1, S, S) in [0, 1]; 1 = take the warped source pixel


class _Hourglass(nn.Module):
    """U-Net-shaped motion estimator (as in FOMM's dense motion network): down with avg-pooling, up with skips."""

    def __init__(self, in_channels: int, base: int, depth: int, max_channels: int) -> None:
        super().__init__()
        down = [in_channels] + [min(base * 2 ** (i + 1), max_channels) for i in range(depth)]
        up = [min(base * 2**i, max_channels) for i in range(depth)]
        self.down = nn.ModuleList(conv_norm_relu(down[i], down[i + 1], 3, 1, 1) for i in range(depth))
        blocks = []
        previous = down[depth]
        for i in reversed(range(depth)):
            blocks.append(conv_norm_relu(previous, up[i], 3, 1, 1))
            previous = up[i] + down[i]
        self.up = nn.ModuleList(blocks)
        self.out_channels = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = [x]
        for block in self.down:
            levels.append(F.avg_pool2d(block(levels[-1]), 2))
        h = levels.pop()
        for block in self.up:
            h = F.interpolate(block(h), scale_factor=2.0, mode="nearest")
            h = torch.cat([h, levels.pop()], dim=1)
        return h


class Reenactor(HubModel):
    """Reenacting generator: source face + source/target landmarks -> the source face at the target landmarks."""

    model_type = "reenactor"
    role = "reenactor"
    config_class = ReenactorConfig
    description = (
        "Landmark-driven reenacting generator: a dense motion field (residual on a landmark thin-plate "
        "spline) and an occlusion mask from landmark heatmaps, warped encoder features, a refining "
        "decoder and an attention blend with the warped source."
    )

    def __init__(self, config: ReenactorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: ReenactorConfig = self.config
        if c.image_size % 4:
            raise ValueError("image_size must be a multiple of 4")
        if c.motion_size % (2**c.motion_depth):
            raise ValueError(f"motion_size {c.motion_size} must be divisible by 2**motion_depth ({2**c.motion_depth})")
        motion_in = 3 + 3 + 2 * NUM_HEATMAPS  # source, TPS-warped source, source and target heatmaps
        self.motion = _Hourglass(motion_in, c.motion_dim, c.motion_depth, c.max_motion_channels)
        self.flow_head = nn.Conv2d(self.motion.out_channels, 2, 7, 1, 3)
        self.occlusion_head = nn.Conv2d(self.motion.out_channels, 1, 7, 1, 3)
        d = c.conv_dim
        self.encoder0 = conv_norm_relu(3, d, 7, 1, 3)
        self.encoder1 = conv_norm_relu(d, 2 * d, 4, 2, 1)
        self.encoder2 = conv_norm_relu(2 * d, 4 * d, 4, 2, 1)
        self.fuse = conv_norm_relu(4 * d + NUM_HEATMAPS, 4 * d, 3, 1, 1)
        self.bottleneck = nn.Sequential(*[ResidualBlock(4 * d) for _ in range(c.num_residual_blocks)])
        self.up1 = nn.Sequential(
            nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(2 * d, affine=True),
            nn.ReLU(inplace=True),
        )
        self.merge1 = conv_norm_relu(4 * d, 2 * d, 3, 1, 1)
        self.up0 = nn.Sequential(
            nn.ConvTranspose2d(2 * d, d, 4, 2, 1, bias=False), nn.InstanceNorm2d(d, affine=True), nn.ReLU(inplace=True)
        )
        self.color_head = nn.Sequential(nn.Conv2d(d, 3, 7, 1, 3), nn.Tanh())
        self.attention_head = nn.Sequential(nn.Conv2d(d, 1, 7, 1, 3), nn.Sigmoid())
        init_gan_weights(self)
        # Start as the landmark spline: no learned flow yet, everything visible, mostly warped source pixels.
        for head, bias in ((self.flow_head, 0.0), (self.occlusion_head, 3.0)):
            nn.init.zeros_(head.weight)
            nn.init.constant_(head.bias, bias)
        nn.init.constant_(self.attention_head[0].bias, 2.0)

    def heatmaps(self, landmarks: torch.Tensor, image_size: int) -> torch.Tensor:
        c: ReenactorConfig = self.config
        return render_heatmaps(landmarks, image_size, c.motion_size, c.heatmap_sigma)

    def dense_motion(
        self, source: torch.Tensor, source_landmarks: torch.Tensor, target_landmarks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(grid (N, m, m, 2), occlusion (N, 1, m, m), target heatmaps (N, G, m, m))."""
        c: ReenactorConfig = self.config
        n, size = source.shape[0], source.shape[-1]
        m = c.motion_size
        if c.tps_prior:
            prior = landmark_tps_grid(source_landmarks, target_landmarks, size, m, c.tps_regularisation)
        else:
            prior = identity_grid(n, m, m, source.device)
        small = F.interpolate(source, size=(m, m), mode="bilinear", align_corners=False, antialias=True)
        prior = prior.to(small.dtype)
        warped_small = F.grid_sample(small, prior, mode="bilinear", padding_mode="border", align_corners=False)
        source_maps = self.heatmaps(source_landmarks, size).to(small.dtype)
        target_maps = self.heatmaps(target_landmarks, size).to(small.dtype)
        features = self.motion(torch.cat([small, warped_small, source_maps, target_maps], dim=1))
        residual = torch.tanh(self.flow_head(features)) * c.max_residual_flow
        grid = prior + residual.permute(0, 2, 3, 1)
        occlusion = torch.sigmoid(self.occlusion_head(features))
        return grid, occlusion, target_maps

    def forward(
        self, source: torch.Tensor, source_landmarks: torch.Tensor, target_landmarks: torch.Tensor
    ) -> ReenactOutput:
        """`source` (N, 3, S, S) in [-1, 1]; landmarks (N, 478, 2|3) in the crop's pixel coordinates."""
        if source.ndim != 4 or source.shape[1] != 3 or source.shape[2] != source.shape[3]:
            raise ValueError(f"source must be (N, 3, S, S), got {tuple(source.shape)}")
        if source.shape[-1] % 4:
            raise ValueError("the image side must be a multiple of 4")
        for name, points in (("source_landmarks", source_landmarks), ("target_landmarks", target_landmarks)):
            if points.ndim != 3 or points.shape[0] != source.shape[0] or points.shape[1] != NUM_LANDMARKS:
                raise ValueError(f"{name} must be (N, {NUM_LANDMARKS}, 2|3), got {tuple(points.shape)}")
        size = source.shape[-1]
        grid, occlusion, target_maps = self.dense_motion(source, source_landmarks, target_landmarks)

        def warp(features: torch.Tensor) -> torch.Tensor:
            side = features.shape[-1]
            g = resize_grid(grid, side).to(features.dtype)
            warped = F.grid_sample(features, g, mode="bilinear", padding_mode="border", align_corners=False)
            if side != occlusion.shape[-1]:
                return warped * F.interpolate(occlusion, size=(side, side), mode="bilinear", align_corners=False)
            return warped * occlusion

        e0 = self.encoder0(source)
        e1 = self.encoder1(e0)
        e2 = self.encoder2(e1)
        maps = F.interpolate(target_maps, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        h = self.bottleneck(self.fuse(torch.cat([warp(e2), maps.to(e2.dtype)], dim=1)))
        h = self.merge1(torch.cat([self.up1(h), warp(e1)], dim=1))
        h = self.up0(h)
        color = self.color_head(h)
        attention = self.attention_head(h)
        full_grid = resize_grid(grid, size).to(source.dtype)
        warped = F.grid_sample(source, full_grid, mode="bilinear", padding_mode="border", align_corners=False)
        image = attention * warped + (1.0 - attention) * color
        return ReenactOutput(image, warped, grid, occlusion, attention)


class ReenactDiscriminator(HubModel):
    """Conditional PatchGAN critic: is this a real face *at these landmarks*? (image + target heatmaps)."""

    model_type = "reenact_discriminator"
    role = "critic"
    config_class = ReenactDiscriminatorConfig
    description = "PatchGAN critic on the image concatenated with the target landmark heatmaps."

    def __init__(self, config: ReenactDiscriminatorConfig | dict | None = None) -> None:
        super().__init__(config)
        c: ReenactDiscriminatorConfig = self.config
        if c.image_size % (2**c.num_layers):
            raise ValueError(f"image_size {c.image_size} must be divisible by 2**num_layers ({2**c.num_layers})")
        layers: list[nn.Module] = []
        cin = 3 + NUM_HEATMAPS
        for i in range(c.num_layers):
            cout = min(c.conv_dim * 2**i, c.max_channels)
            block: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1)]
            if i > 0:
                block.append(nn.InstanceNorm2d(cout, affine=True))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Sequential(*block))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.realism_head = nn.Conv2d(cin, 1, 3, 1, 1)
        init_gan_weights(self)

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Realism map (N, 1, S / 2**num_layers, same) of `image` (N, 3, S, S) given its landmarks (N, 478, 2|3)."""
        c: ReenactDiscriminatorConfig = self.config
        size = image.shape[-1]
        maps = render_heatmaps(landmarks, size, c.heatmap_size, c.heatmap_sigma)
        maps = F.interpolate(maps, size=image.shape[-2:], mode="bilinear", align_corners=False).to(image.dtype)
        return self.realism_head(self.layers(torch.cat([image, maps], dim=1)))


__all__ = [
    "EXPRESSION_REGIONS",
    "HEATMAP_GROUPS",
    "ReenactDiscriminator",
    "ReenactDiscriminatorConfig",
    "ReenactOutput",
    "Reenactor",
    "ReenactorConfig",
    "ShapeTransfer",
    "ShapeTransferConfig",
    "landmark_tps_grid",
    "render_heatmaps",
    "tps_solve",
    "tps_transform",
]
