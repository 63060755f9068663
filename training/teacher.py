"""A classical face-edit teacher fitted on the training data: age prototypes and AU shape fields.

Why: on two CPU cores the adversarial critic is too slow a teacher (its regression heads get
exploited long before they teach, see the campaign in training/README.md) and a frozen estimator
alone can be fooled by patterns. Classical age progression moves a face by the difference between
the mean aligned faces of its age and of the target age, in shape and in texture (the prototype
method of Burt & Perrett and of Kemelmacher-Shlizerman et al.); coded expressions move landmarks in a
way a linear map from AU intensities predicts well (fitted here on CFEE's photo pairs of one person,
neutral vs posed). Both edits are smooth, free of speckles and keep the person, so the generator is
asked to reproduce them at low resolution and is left free in the fine detail.

Everything lives in the aligned-crop frame: flows and textures are dense (H, W) maps, made
left-right symmetric so that horizontally flipped training faces get the same edit mirrored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ganime_age.conditions import AU_NAMES
from ganime_age.faces import mesh as face_mesh
from training.data import same_person_rows

AGE_CENTRES = (2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85)
FLOW_SIGMA = 5.0  # pixels at 128 px: landmark displacements spread this far, then fade to none
NEUTRAL_SUFFIX = "-Neutral"
COLOURFUL = 0.06  # mean |channel - grey| (in -1..1 units) from which a face counts as fully coloured


class EditTeacher(torch.nn.Module):
    """Age prototypes (mean faces and mean landmark shapes per age) and per-AU landmark flows.

    A module of buffers only, so that the trainer moves it to the device with the other frozen networks.
    """

    centres: torch.Tensor
    textures: torch.Tensor
    age_flows: torch.Tensor
    au_flows: torch.Tensor

    def __init__(
        self, centres: torch.Tensor, textures: torch.Tensor, age_flows: torch.Tensor, au_flows: torch.Tensor
    ) -> None:
        super().__init__()
        if not (len(centres) == len(textures) == len(age_flows)) or au_flows.shape[0] != len(AU_NAMES):
            raise ValueError("teacher tensors disagree: one texture and flow per age centre, one flow per AU")
        self.register_buffer("centres", centres.float())
        self.register_buffer("textures", textures.float())  # (K, 3, H, W) in -1..1, face-weighted prototypes
        self.register_buffer("age_flows", age_flows.float())  # (K, 2, H, W) mean landmarks at an age - overall
        self.register_buffer("au_flows", au_flows.float())  # (17, 2, H, W) landmark motion per unit of each AU

    # -- fitting --------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        age_faces,
        expression_faces=None,
        centres: Sequence[float] = AGE_CENTRES,
        max_faces: int | None = None,
        min_support: float = 5.0,
        ridge: float = 50.0,
        seed: int = 0,
    ) -> EditTeacher:
        """Prototypes from `age_faces` (known ages only), AU flows from `expression_faces` (CFEE, or None).

        Age centres with less than `min_support` faces' worth of weight are left out (edits towards
        those ages use the nearest centre).

        The prototypes are fitted jointly with per-AU effects (a per-pixel least-squares fit on hat
        functions of age plus the AUs), so that expressions that go with age in the photos (older
        people smile more in UTKFace) do not enter the age edit.
        """
        size = age_faces.image_size or int(age_faces[0]["image"].shape[-1])
        known = np.flatnonzero(np.asarray(age_faces.age_known, bool))
        if len(known) == 0:
            raise ValueError("no training face has a known age: cannot build age prototypes")
        if max_faces and len(known) > max_faces:
            known = np.sort(np.random.default_rng(seed).choice(known, max_faces, replace=False))
        ages = np.asarray(age_faces.ages, np.float64)[known]
        centre_array = np.asarray(centres, np.float64)
        support = age_hats(torch.from_numpy(ages), torch.from_numpy(centre_array)).numpy().sum(0)
        centre_array = centre_array[support >= min_support]  # ages with too few faces get no prototype
        if len(centre_array) < 2:
            raise ValueError(f"too few faces with known ages to fit age prototypes ({len(known)} faces)")
        centres = centre_array.tolist()
        hats = age_hats(torch.from_numpy(ages), torch.from_numpy(centre_array)).numpy()
        basis = np.concatenate([hats, np.asarray(age_faces.aus)[known]], axis=1)
        # (N, K + 17): appearance = age prototypes (linear between the centres) + AU effects
        gram = basis.T @ basis + ridge * np.diag([0.0] * len(centres) + [1.0] * len(AU_NAMES))
        gram[: len(centres), : len(centres)] += 1e-3 * np.eye(len(centres))
        moments = torch.zeros(basis.shape[1], 3 * size * size, dtype=torch.float64)
        for start in range(0, len(known), 256):
            rows = known[start : start + 256]
            pixels = torch.stack([age_faces[int(r)]["image"].double().reshape(-1) for r in rows])
            moments += torch.from_numpy(basis[start : start + len(rows)]).T @ pixels
        solution = torch.linalg.solve(torch.from_numpy(gram), moments).float()
        landmarks = np.asarray(age_faces.landmarks, np.float64)[known].reshape(len(known), -1)
        shape_solution = np.linalg.solve(gram, basis.T @ landmarks)
        mean_shape = landmarks.mean(0).reshape(-1, 2)
        shapes = shape_solution[: len(centres)].reshape(len(centres), -1, 2)
        age_flows = landmark_flows(mean_shape, shapes - mean_shape, size)
        au_motion = np.zeros((len(AU_NAMES), *mean_shape.shape))
        if expression_faces is not None:
            au_motion = fit_au_motion(expression_faces, ridge)
        au_flows = landmark_flows(mean_shape, au_motion, size)
        mask = face_region(mean_shape, size)
        textures_t = mirror_average(solution[: len(centres)].reshape(-1, 3, size, size)) * mask
        return cls(torch.tensor(list(centres)), textures_t, age_flows, au_flows)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> EditTeacher:
        t = load_file(str(path))
        return cls(t["centres"], t["textures"], t["age_flows"], t["au_flows"])

    # -- editing --------------------------------------------------------------------------------------
    def at_age(self, table: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """Per-sample linear interpolation of a per-centre table at ages (clamped to the centres)."""
        return torch.einsum("nk,k...->n...", age_hats(age.float(), self.centres), table)

    @torch.no_grad()
    def edit(
        self,
        images: torch.Tensor,
        aus: torch.Tensor,
        ages: torch.Tensor,
        target_aus: torch.Tensor,
        target_ages: torch.Tensor,
        texture_gain: float = 2.0,
        chroma_gain: float = 1.0,
    ) -> torch.Tensor:
        """The faces moved from (aus, ages) to (target AUs, target ages): texture shift, then a warp.

        The prototypes are means of many faces, so their differences are fainter than one person's
        ageing: `texture_gain` amplifies the brightness part (shading, wrinkles' blur, greying) and
        `chroma_gain` the colour part (kept lower: a strong colour shift reads as a tint, not as age).
        """
        size = images.shape[-1]
        texture = self.at_age(self.textures, target_ages) - self.at_age(self.textures, ages)
        texture = keep_colourfulness(texture, images, texture_gain, chroma_gain)
        flow = self.at_age(self.age_flows, target_ages) - self.at_age(self.age_flows, ages)
        flow = flow + torch.einsum("na,achw->nchw", (target_aus - aus).float(), self.au_flows)
        if size != texture.shape[-1]:
            scale = size / texture.shape[-1]
            texture = F.interpolate(texture, size=(size, size), mode="bilinear", align_corners=False)
            flow = F.interpolate(flow, size=(size, size), mode="bilinear", align_corners=False) * scale
        return warp(images.float() + texture, flow).clamp(-1.0, 1.0)


def keep_colourfulness(
    change: torch.Tensor, images: torch.Tensor, grey_gain: float = 1.0, chroma_gain: float = 1.0
) -> torch.Tensor:
    """A colour change split into brightness and chroma, each with its gain; the chroma is scaled down
    for faces that have little colour, so grey photos stay grey."""
    grey = images.float().mean(1, keepdim=True)
    colourfulness = (images.float() - grey).abs().mean(dim=(1, 2, 3), keepdim=True)
    change_grey = change.mean(1, keepdim=True)
    chroma = (change - change_grey) * (colourfulness / COLOURFUL).clamp(max=1.0)
    return grey_gain * change_grey + chroma_gain * chroma


def age_hats(ages: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, K) linear-interpolation weights of ages between the centres (each row sums to 1; clamped)."""
    a = ages.clamp(float(centres[0]), float(centres[-1])).contiguous()
    upper = torch.searchsorted(centres, a).clamp(1, len(centres) - 1)
    t = (a - centres[upper - 1]) / (centres[upper] - centres[upper - 1])
    rows = torch.arange(len(ages), device=ages.device)
    hats = torch.zeros(len(ages), len(centres), dtype=ages.dtype, device=ages.device)
    hats[rows, upper - 1] = 1 - t
    hats[rows, upper] = t
    return hats


def fit_au_motion(faces, ridge: float) -> np.ndarray:
    """(17, L, 2) landmark motion per AU unit: ridge regression of same-person (posed - neutral) pairs."""
    landmarks = np.asarray(faces.landmarks, np.float64)
    aus = np.asarray(faces.aus, np.float64)
    hints = faces.identity_hints
    moves, codes = [], []
    for neutral, others in enumerate(same_person_rows(hints)):
        if not hints[neutral].endswith(NEUTRAL_SUFFIX):
            continue
        for row in others:
            if not hints[row].endswith(NEUTRAL_SUFFIX):
                moves.append((landmarks[row] - landmarks[neutral]).reshape(-1))
                codes.append(aus[row] - aus[neutral])
    if not moves:
        raise ValueError("no same-person neutral/posed pairs to fit AU motion on (is this CFEE data?)")
    x, y = np.stack(codes), np.stack(moves)
    solution = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    return solution.reshape(len(AU_NAMES), -1, 2)


def landmark_flows(points: np.ndarray, displacements: np.ndarray, size: int) -> torch.Tensor:
    """Dense (M, 2, size, size) flows from (M, L, 2) displacements at (L, 2) points, fading off the face.

    Gaussian-weighted average of the nearby landmarks' displacements, divided by the weights plus a
    constant, so that far from every landmark the flow goes to zero; then made left-right symmetric.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    sigma = FLOW_SIGMA * size / 128.0
    weights = np.exp(-((grid[:, None, :] - points[None]) ** 2).sum(-1) / (2 * sigma**2))
    dense = np.einsum("pl,mlc->mcp", weights, displacements) / (weights.sum(1) + 0.5)
    flows = torch.tensor(dense.reshape(len(displacements), 2, size, size), dtype=torch.float32)
    return mirror_average(flows, flow=True)


def mirror_average(maps: torch.Tensor, flow: bool = False) -> torch.Tensor:
    """The average of (N, C, H, W) maps and their mirror image (a flow's x component changes sign)."""
    mirrored = maps.flip(-1).clone()
    if flow:
        mirrored[:, 0] = -mirrored[:, 0]
    return 0.5 * (maps + mirrored)


def face_region(points: np.ndarray, size: int) -> torch.Tensor:
    """A soft (1, 1, H, W) weight: 1 over the face and hair (the oval, widened), fading to 0 outside."""
    oval = points[[a for a, _ in face_mesh.FACE_OVAL]]
    centre = oval.mean(0)
    radius = np.abs(oval - centre).max(0) * np.array([1.15, 1.3])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    distance = np.sqrt(((xs - centre[0]) / radius[0]) ** 2 + ((ys - centre[1]) / radius[1]) ** 2)
    weight = np.clip((1.25 - distance) / 0.35, 0.0, 1.0)
    return mirror_average(torch.tensor(weight, dtype=torch.float32)[None, None])


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Move image content along a small smooth flow (pixels): output(p) = input(p - flow(p))."""
    h, w = images.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device, dtype=torch.float32),
        torch.arange(w, device=images.device, dtype=torch.float32),
        indexing="ij",
    )
    x = xs - flow[:, 0]
    y = ys - flow[:, 1]
    grid = torch.stack([(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
