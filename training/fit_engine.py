"""Fit the edit engine (``ganime_age.engine``) on real photos, in CPU minutes.

    python training/fit_engine.py --utkface ../shared/datasets/utkface --cfee ../shared/datasets/cfee \\
        --cache runs/engine --output src/ganime_age/weights/ganime-age-engine [--max-utkface 4000]

What is fitted, and from what (training splits only; the test splits are prepare_data's, so the gates'
held-out faces were never seen):

- **age shapes**: per sex, the mean pose-normalised 3-D landmark shape at each age centre (UTKFace), by
  least squares on linear-interpolation ("hat") functions of age, jointly with a per-race offset and a
  linear effect of each measured AU, so that the smiles of older photos and the race mix of each age do
  not become part of "old";
- **age textures**: the same regression, per template pixel, on the shape-normalised log-colour image of
  every near-frontal face, and on its local detail energy per band;
- **AU shapes and textures**: ridge regressions of CFEE's same-person (posed - Neutral) landmark moves and
  log-colour differences on the coded AU differences;
- **sex**: a logistic regression on a grey shape-normalised thumbnail (UTKFace's labels), which blends the
  two sexes' tables, so that women do not get moustache shadows;
- **mouth interiors**: per-pixel medians of CFEE's open mouths per gap height, smiles and dropped jaws apart;
- **AU gains**: per AU, how far one unit moves the face, so that an edit to 4 reads about 4 on the AU read-out;
- **hair greying**: grey hair's brightness relative to the skin, and per age centre the share of people's hair
  that has turned to it (their hair's brightness relative to the skin, between that of 20-35 year olds and
  grey hair's), from the hair that the engine's own :func:`~ganime_age.engine.hair.hair_layer`
  finds in UTKFace.

``fit_engine.py hair --engine DIR --utkface ... [--cache ...]`` fits the hair alone into an engine folder.

Then ``training/evaluate.py gates --engine DIR --fgnet FOLDER --samples DIR --markdown DIR/evaluation.md`` measures
it on the held-out photos, and ``training/fit_engine.py card --engine DIR`` puts the table and the grids into its card.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ganime_age.conditions import AU_NAMES, NUM_AUS
from ganime_age.engine import FittedEngine, FittedEngineConfig
from ganime_age.engine.appearance import band_energies
from ganime_age.engine.frames import log_image, template_view
from ganime_age.engine.geometry import age_weights
from ganime_age.engine.mouth import gap_colours
from ganime_age.faces.topology import LEFT_BROW, RIGHT_BROW
from training.data.expression_pairs import fit_expression_pairs
from training.data.face_records import FaceRecords, collect, neutral_pairs
from training.data.sources import UTKFACE_NAME

log = logging.getLogger(__name__)

MAX_TURN = 25.0  # degrees of yaw or pitch beyond which a face's texture is not averaged (its far side is hidden)
NUM_RACES = 5  # UTKFace's race labels 0..4
AGE_RIDGE = 20.0  # on the race and AU columns
AU_SHAPE_RIDGE = 10.0
AU_REACH_MARGIN = 1.2  # an expression edit may move a landmark 1.2x as far as the 99th percentile of real ones
AU_TEXTURE_RIDGE = 20.0
SEX_L2 = 1e-3
MOUTH_SMILE_CODE = 2.0  # open mouths coded AU12 >= this are smiles (teeth), the others dropped jaws
HAIR_YOUNG = (20.0, 35.0)  # ages whose hair colour is the "not greyed" reference
HAIR_MIN_SHARE = 0.03  # a photo's hair counts when it covers this share of the engine grid
HAIR_OLD = 70.0  # from this age the brightest hair (HAIR_GREY_PERCENTILE) is taken as fully grey
HAIR_GREY_PERCENTILE = 90.0
HAIR_MAX_FACES = 2500
HAIR_MIN_GROUP = 10  # faces with visible hair needed among the young and among the old to fit the greying


def normalised_shapes(records: FaceRecords) -> np.ndarray:
    """(N, 478, 3) landmarks in the canonical face's frame (pose, position and size removed), centimetres."""
    from ganime_age.face_model import canonical_face, head_similarity

    face = canonical_face()
    return np.stack([head_similarity(points, face).invert(points) for points in records.landmarks]).astype(np.float64)


def utkface_races(records: FaceRecords) -> np.ndarray:
    races = np.zeros(len(records), np.int64)
    for i, path in enumerate(records.paths):
        match = UTKFACE_NAME.match(Path(str(path)).name)
        races[i] = int(match.group("race")) if match else 0
    return races


def age_design(records: FaceRecords, centres: np.ndarray) -> np.ndarray:
    """(N, 2K + 4 + 17): hats of age per sex, race offsets (race 0 the reference), measured AUs."""
    k = len(centres)
    hats = np.stack([age_weights(a, centres) for a in records.ages])
    female = records.sex.astype(np.float64)[:, None]
    races = np.eye(NUM_RACES)[utkface_races(records)][:, 1:]
    return np.concatenate(
        [hats * (1.0 - female), hats * female, races, records.aus.astype(np.float64)], axis=1
    ).reshape(len(records), 2 * k + NUM_RACES - 1 + NUM_AUS)


def solve_ridge(gram: np.ndarray, moments: np.ndarray, penalised: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares from the normal equations, `ridge` on the columns marked in `penalised`."""
    regulariser = np.diag(np.where(penalised, ridge, 1e-6 * max(float(np.trace(gram)) / len(gram), 1.0)))
    return np.linalg.solve(gram + regulariser, moments)


def age_penalty(centres: np.ndarray) -> np.ndarray:
    return np.array([False] * (2 * len(centres)) + [True] * (NUM_RACES - 1 + NUM_AUS))


@dataclass
class Templates:
    """Shape-normalised views of photos: log colour and local detail energy in the template frame."""

    engine: FittedEngine
    root: Path

    def view(self, records: FaceRecords, row: int) -> tuple[np.ndarray, np.ndarray]:
        from ganime_age.faces import load_image

        c = self.engine.config
        rgb = load_image(self.root / str(records.paths[row]))
        log_rgb = log_image(template_view(self.engine.template, rgb, records.landmarks[row]))
        energies = band_energies(log_rgb.mean(axis=2), c.band_sigma, c.detail_bands)
        small = c.template_size // c.energy_downsample
        stacked = np.stack([cv2.resize(e, (small, small), interpolation=cv2.INTER_AREA) for e in energies])
        return log_rgb.transpose(2, 0, 1), stacked

    def many(self, records: FaceRecords, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for row in rows:
            colour, energy = self.view(records, int(row))
            yield int(row), colour, energy


def frontal(records: FaceRecords, max_turn: float = MAX_TURN) -> np.ndarray:
    return (np.abs(records.pose[:, 0]) < max_turn) & (np.abs(records.pose[:, 1]) < max_turn)


def fit_age_and_sex(engine: FittedEngine, records: FaceRecords, root: Path, progress: bool = True) -> dict[str, Any]:
    """Age shapes, textures and detail energies, and the sex classifier, in one pass over UTKFace.

    Age tables come from training faces with a known age and sex that are near-frontal; the sex classifier
    from every training face with a sex label and a turn under 35 degrees (its test accuracy is reported).
    """
    c = engine.config
    centres = engine.centres
    labelled = np.isfinite(records.sex) & frontal(records, 35.0)
    ageing = labelled & np.isfinite(records.ages) & (records.split == "train") & frontal(records)
    if ageing.sum() < 4 * len(centres):
        raise ValueError(f"too few UTKFace training faces with age and sex to fit ({int(ageing.sum())})")
    rows = np.flatnonzero(labelled)
    subset = records.subset(rows)
    in_age = ageing[rows]
    design = age_design(subset, centres) * in_age[:, None]
    gram = design.T @ design
    penalised = age_penalty(centres)
    k = len(centres)
    shapes = normalised_shapes(subset.subset(np.flatnonzero(in_age))).reshape(int(in_age.sum()), -1)
    shape_solution = solve_ridge(gram, design[in_age].T @ shapes, penalised, AGE_RIDGE)
    age_shapes = shape_solution[: 2 * k].reshape(2, k, -1, 3)
    mean_shape = age_shapes.mean(axis=(0, 1))
    templates = Templates(engine, root)
    size, small = c.template_size, c.template_size // c.energy_downsample
    colour_moments = np.zeros((design.shape[1], 3 * size * size))
    energy_moments = np.zeros((design.shape[1], c.detail_bands * small * small))
    thumbnails = np.zeros((len(subset), c.sex_features**2), np.float32)
    iterator: Any = templates.many(subset, np.arange(len(subset)))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(subset), desc="age and sex", unit="face")
    batch: list[tuple[int, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if batch:
            x = design[[r for r, _, _ in batch]]
            colour_moments[:] += x.T @ np.stack([col.reshape(-1) for _, col, _ in batch]).astype(np.float64)
            energy_moments[:] += x.T @ np.stack([e.reshape(-1) for _, _, e in batch]).astype(np.float64)
            batch.clear()

    for row, colour, energy in iterator:
        thumbnails[row] = engine.sex_thumbnail(colour.transpose(1, 2, 0))
        if in_age[row]:
            batch.append((row, colour, energy))
            if len(batch) == 128:
                flush()
    flush()
    colour_solution = solve_ridge(gram, colour_moments, penalised, AGE_RIDGE)[: 2 * k]
    energy_solution = solve_ridge(gram, energy_moments, penalised, AGE_RIDGE)[: 2 * k]
    textures = colour_solution.reshape(2, k, 3, size, size)
    mean_texture = textures.mean(axis=(0, 1))
    energies = np.maximum(energy_solution.reshape(2, k, c.detail_bands, small, small), 0.0)
    engine.set_tables(
        mean_shape=mean_shape,
        age_shapes=age_shapes - mean_shape,  # offsets: fp16 keeps them exact
        mean_texture=mean_texture,
        age_textures=textures - mean_texture,
        age_energies=energies,
    )
    sex = fit_sex(engine, thumbnails, subset.sex, subset.split == "train")
    support = design[:, : 2 * k].sum(0).reshape(2, k)
    return {
        "faces": int(in_age.sum()),
        "support_per_centre": {"male": support[0].round(1).tolist(), "female": support[1].round(1).tolist()},
        "sex": sex,
    }


def rigid_brows(moves: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Each brow's part of each (M, 478, 3) displacement made a rigid move (a shift and a tilt in the face plane).

    MediaPipe's brow points follow the hair loosely and their upper and lower edges disagree, so an averaged
    brow motion thickens or thins the brow; a brow is lifted, lowered and tilted as a whole.
    """
    out = moves.copy()
    for brow in (list(RIGHT_BROW), list(LEFT_BROW)):
        offsets = shape[brow, :2] - shape[brow, :2].mean(axis=0)
        perpendicular = np.stack([-offsets[:, 1], offsets[:, 0]], axis=1)  # d(rotation)/d(angle) at each point
        for m in range(len(moves)):
            d = moves[m, brow, :2]
            angle = float((perpendicular * (d - d.mean(axis=0))).sum() / max((perpendicular**2).sum(), 1e-12))
            out[m, brow, :2] = d.mean(axis=0) + angle * perpendicular
            out[m, brow, 2] = moves[m, brow, 2].mean()
    return out


def fit_aus(engine: FittedEngine, records: FaceRecords, root: Path, progress: bool = True) -> dict[str, Any]:
    """Per-AU landmark moves and ratio images from CFEE's same-person (posed - Neutral) pairs."""
    pairs = neutral_pairs(records)
    if len(pairs) < NUM_AUS:
        raise ValueError(f"too few CFEE neutral/posed training pairs to fit AU effects ({len(pairs)})")
    shapes = normalised_shapes(records)
    codes = np.stack([records.coded_aus[posed] - records.coded_aus[neutral] for neutral, posed in pairs]).astype(float)
    moves = np.stack([(shapes[posed] - shapes[neutral]).reshape(-1) for neutral, posed in pairs])
    gram = codes.T @ codes
    au_shapes = np.linalg.solve(gram + AU_SHAPE_RIDGE * np.eye(NUM_AUS), codes.T @ moves).reshape(NUM_AUS, -1, 3)
    au_shapes = rigid_brows(au_shapes, shapes.mean(axis=0))
    reach = AU_REACH_MARGIN * np.percentile(np.linalg.norm(moves.reshape(len(moves), -1, 3), axis=2), 99, axis=0)
    templates = Templates(engine, root)
    size = engine.config.template_size
    moments = np.zeros((NUM_AUS, 3 * size * size))
    cache: dict[int, np.ndarray] = {}

    def colour(row: int) -> np.ndarray:
        if row not in cache:
            cache[row] = templates.view(records, row)[0].reshape(-1)
        return cache[row]

    iterator: Any = enumerate(pairs)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(pairs), desc="AU textures", unit="pair")
    for index, (neutral, posed) in iterator:
        moments += np.outer(codes[index], colour(posed) - colour(neutral))
    au_textures = np.linalg.solve(gram + AU_TEXTURE_RIDGE * np.eye(NUM_AUS), moments).reshape(NUM_AUS, 3, size, size)
    engine.set_tables(au_shapes=au_shapes, au_reach=reach, au_textures=au_textures * engine.template.mask)
    return {"pairs": len(pairs), "coded_pairs_per_au": (codes > 0).sum(0).tolist()}


def fit_mouth(engine: FittedEngine, records: FaceRecords, root: Path, progress: bool = True) -> dict[str, Any]:
    """Open-mouth interiors per gap height from CFEE's training photos, relative to the skin's brightness.

    Each is the per-pixel *median* of the photos nearest that gap height: a mean of a hundred mouths is a
    blurred white bar, the median keeps the edge of the teeth, the gap between the front teeth and the dark
    of the mouth behind them.
    """
    from ganime_age.faces import load_image

    c = engine.config
    rows_n, cols_n = c.mouth_grid
    bins = np.asarray(c.mouth_gaps, np.float64)
    shapes = normalised_shapes(records)
    gaps = shapes[:, 14, 1] - shapes[:, 13, 1]
    chosen = np.flatnonzero((records.split == "train") & (gaps >= 0.5 * bins[0]) & frontal(records))
    samples, weights = [], []
    iterator: Any = chosen
    if progress:
        from tqdm import tqdm

        iterator = tqdm(chosen, desc="mouth interiors", unit="photo")
    for row in iterator:
        rgb = load_image(root / str(records.paths[row]))
        samples.append(gap_colours(rgb, records.landmarks[row], (rows_n, cols_n)))
        weights.append(age_weights(gaps[row], bins))
    if not samples:
        raise ValueError("no open-mouth training photos to fit the mouth interior on")
    stack, hats = np.stack(samples), np.stack(weights)
    smiles = records.coded_aus[chosen, AU_NAMES.index("AU12")] >= MOUTH_SMILE_CODE
    interiors = np.zeros((2, len(bins), rows_n, cols_n, 3), np.float32)
    counts = np.zeros((2, len(bins)), int)
    for family, members in enumerate((~smiles, smiles)):
        for k in range(len(bins)):
            nearest = members & (hats[:, k] >= 0.5)
            counts[family, k] = int(nearest.sum())
            if nearest.sum() >= 5:
                interiors[family, k] = np.median(stack[nearest], axis=0)
            elif (hats[:, k] * members).sum() > 0:
                weight = hats[:, k] * members
                interiors[family, k] = np.tensordot(weight, stack, axes=1) / weight.sum()
            else:
                counts[family, k] = -1  # filled from the other family below
    for family in (0, 1):
        for k in np.flatnonzero(counts[family] < 0):
            if counts[1 - family, k] < 0:
                raise ValueError(f"no open-mouth training photo near a gap of {bins[k]} cm")
            interiors[family, k] = interiors[1 - family, k]
    engine.set_tables(mouth_interiors=interiors.transpose(0, 1, 4, 2, 3))
    return {"photos": len(chosen), "photos_per_gap": {"open": counts[0].tolist(), "smile": counts[1].tolist()}}


AU_GAIN_STEPS = (1.0, 1.5, 2.0, 2.5)  # beyond 2.5 units of movement per unit an edit is a caricature
AU_GAIN_TARGET = 4.0  # the edit asked for
AU_GAIN_READS = 3.5  # what an edit to AU_GAIN_TARGET should read at least (the read-out saturates near 4)
AU_GAIN_SEEN = 2.0  # an AU whose edits read less than this even at the largest gain is not seen by the read-out


def calibrate_au_gains(
    engine: FittedEngine, records: FaceRecords, root: Path, faces: int = 24, progress: bool = True
) -> dict[str, Any]:
    """Per-AU gains so that an edit of a neutral face to AU = 4 reads about 4 on the AU read-out.

    The AU effects are fitted against FACS codes, but a user moves sliders that start at the face's *measured*
    AUs, and the read-out (a least-squares fit to the codes) reads a coded-4 photo well below 4. Each AU's gain
    is the smallest of AU_GAIN_STEPS (interpolated) at which CFEE's neutral training faces, edited to 4, read
    AU_GAIN_READS; an AU that never gets there takes the largest step if the read-out follows it at all, and
    keeps 1 if it does not (AU06 and AU09 are invisible to MediaPipe's blendshapes: amplifying them would be
    blind).
    """
    from ganime_age.errors import GanimeAgeError
    from ganime_age.faces import FaceAnalyzer, load_image

    analyzer = FaceAnalyzer(size=128)
    neutral = np.flatnonzero((records.category == "Neutral") & (records.split == "train"))
    chosen = neutral[np.linspace(0, len(neutral) - 1, min(faces, len(neutral))).astype(int)]
    prepared = []
    for row in chosen:
        rgb = load_image(root / str(records.paths[row]))
        found = analyzer.analyze(rgb)[0]
        if found.landmarks is not None:
            face = engine.prepare_face(rgb, found.landmarks.landmarks, segment=analyzer.segmenter)
            prepared.append((rgb, face, np.asarray(found.aus)))
    gains = np.ones(NUM_AUS)
    readings: dict[str, list[float]] = {}
    iterator: Any = range(NUM_AUS)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="AU gains", unit="AU")
    for au in iterator:
        curve: list[float] = []
        for gain in AU_GAIN_STEPS:
            trial = engine.tables["au_gains"].copy()
            trial[au] = gain
            engine.set_tables(au_gains=trial)
            values = []
            for rgb, face, aus in prepared:
                target = aus.copy()
                target[au] = AU_GAIN_TARGET
                edited, _ = engine.edit_photo(rgb, [face], [30.0], [30.0], [aus], [target])
                try:
                    values.append(float(analyzer.analyze(edited)[0].aus[au]))
                except GanimeAgeError:
                    continue
            curve.append(float(np.mean(values)) if values else 0.0)
            if curve[-1] >= AU_GAIN_READS:
                break
        readings[AU_NAMES[au]] = [round(v, 3) for v in curve]
        if curve[-1] >= AU_GAIN_READS:
            steps = AU_GAIN_STEPS[: len(curve)]
            gains[au] = float(np.interp(AU_GAIN_READS, curve[-2:], steps[-2:])) if len(curve) > 1 else 1.0
        elif curve[-1] >= AU_GAIN_SEEN and curve[-1] - curve[0] >= 1.0:
            gains[au] = AU_GAIN_STEPS[-1]
        else:
            gains[au] = 1.0
    engine.set_tables(au_gains=gains)
    analyzer.close()
    return {
        "faces": len(prepared),
        "gains": dict(zip(AU_NAMES, gains.round(2).tolist(), strict=True)),
        "readings": readings,
    }


def fit_sex(engine: FittedEngine, thumbnails: np.ndarray, sex: np.ndarray, train: np.ndarray) -> dict[str, Any]:
    """Logistic regression (L2) of the sex label on the grey shape-normalised thumbnails."""
    x = torch.tensor(thumbnails, dtype=torch.float64)
    y = torch.tensor(sex, dtype=torch.float64)
    train_t = torch.tensor(train)
    weights = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights], max_iter=300, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x[train_t] @ weights[:-1] + weights[-1]
        value = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y[train_t])
            + SEX_L2 * (weights[:-1] ** 2).sum()
        )
        value.backward()
        return value

    optimiser.step(loss)
    engine.set_tables(sex_weights=weights.detach())
    with torch.no_grad():
        predicted = (x @ weights[:-1] + weights[-1]) > 0
        accuracy = {
            split: float((predicted[mask] == (y[mask] > 0.5)).double().mean())
            for split, mask in (("train", train_t), ("test", ~train_t))
            if bool(mask.any())
        }
    return {"faces": len(thumbnails), "accuracy": accuracy}


def hair_colour(engine: FittedEngine, rgb: np.ndarray, landmarks: np.ndarray, segment: Any) -> np.ndarray | None:
    """(3,) one photo's mean hair colour (R, G, B) over its skin's brightness (the engine's own hair mask and skin
    level, with the person's silhouette from `segment`), or None when too little hair is found."""
    face = engine.prepare_face(rgb, landmarks, segment=segment)
    layer = face.layer
    if layer.hair_box is None or layer.share.mean() / 255.0 * _share_of(layer) < HAIR_MIN_SHARE:
        return None
    x0, y0, x1, y1 = layer.hair_box
    weight = layer.share.astype(np.float32)[..., None]
    colour = (rgb[y0:y1, x0:x1].astype(np.float32) * weight).sum(axis=(0, 1)) / weight.sum()
    return colour / max(face.skin, 1.0)


def _share_of(layer: Any) -> float:
    """The hair box's share of the head-and-shoulders box (so a photo's hair share is of the whole head)."""
    x0, y0, x1, y1 = layer.hair_box
    bx0, by0, bx1, by1 = layer.box
    return (x1 - x0) * (y1 - y0) / max((bx1 - bx0) * (by1 - by0), 1)


def fit_hair(
    engine: FittedEngine, records: FaceRecords, root: Path, progress: bool = True, max_faces: int = HAIR_MAX_FACES
) -> dict[str, Any]:
    """The hair-greying tables from UTKFace's training faces. Hair brightness relative to the skin rises with age
    (UTKFace's medians: 0.45 at 20-30, 0.57 at 40-50, 0.79 at 60-70, 0.84 at 70-80); fully grey hair is the
    brightest tenth of the over-70s', and each age centre's share is how far its mean lies from the young's
    towards that, kept from falling with age. (Colourfulness does not tell grey from black hair: both lack it.)
    """
    from ganime_age.faces import load_image
    from ganime_age.faces.segment import SelfieSegmenter

    segment = SelfieSegmenter()
    centres = engine.centres
    usable = np.flatnonzero((records.split == "train") & np.isfinite(records.ages) & frontal(records))
    if len(usable) > max_faces:
        usable = np.sort(np.random.default_rng(0).choice(usable, max_faces, replace=False))
    iterator: Any = usable
    if progress:
        from tqdm import tqdm

        iterator = tqdm(usable, desc="hair", unit="face")
    ages, colours = [], []
    for row in iterator:
        found = hair_colour(engine, load_image(root / str(records.paths[row])), records.landmarks[row], segment)
        if found is not None:
            ages.append(float(records.ages[row]))
            colours.append(found)
    age, colour = np.asarray(ages), np.asarray(colours).reshape(-1, 3)
    light = colour.mean(axis=1)
    young_rows = (age >= HAIR_YOUNG[0]) & (age <= HAIR_YOUNG[1])
    old = light[age >= HAIR_OLD]
    if young_rows.sum() < HAIR_MIN_GROUP or len(old) < HAIR_MIN_GROUP:  # a small subset: hair is left alone
        log.warning("hair greying not fitted: %d young and %d old faces with visible hair", young_rows.sum(), len(old))
        return {"faces": len(light), "fitted": False}
    weights = np.stack([age_weights(a, centres) for a in age])  # (faces, centres): hat functions of age
    per_centre = (weights * light[:, None]).sum(0) / np.maximum(weights.sum(0), 1e-6)
    young = float(np.mean(light[young_rows]))
    # the colour grey hair is given back when a face is made young: the young's median hair (each channel over
    # the skin's brightness: the photo's own light scales it as it scales the skin)
    young_colour = np.median(colour[young_rows], axis=0)
    level = float(np.percentile(old, HAIR_GREY_PERCENTILE))
    greying = np.clip((per_centre - young) / max(level - young, 1e-3), 0.0, 1.0)
    greying[centres <= HAIR_YOUNG[1]] = 0.0
    greying = np.maximum.accumulate(greying)  # hair does not regain its colour with age
    engine.set_tables(
        hair_greying=greying.astype(np.float32),
        hair_level=np.array([level], np.float32),
        hair_young=young_colour.astype(np.float32),
    )
    return {
        "faces": len(light),
        "fitted": True,
        "young_hair_level": round(young, 3),
        "young_hair_colour": young_colour.round(3).tolist(),
        "greying": dict(zip([f"{c:g}" for c in centres], greying.round(3).tolist(), strict=True)),
        "old_faces": len(old),
        "grey_level": round(level, 3),
    }


def fit(
    utkface: FaceRecords,
    utkface_root: Path,
    cfee: FaceRecords,
    cfee_root: Path,
    config: FittedEngineConfig | None = None,
    progress: bool = True,
    au_gain_faces: int = 24,
) -> tuple[FittedEngine, dict[str, Any]]:
    config = config or FittedEngineConfig()
    pairs = len(neutral_pairs(cfee))  # the expression tables hold one row per CFEE training pair
    engine = FittedEngine(
        dataclasses.replace(
            config, expression_pairs=pairs, expression_components=max(1, min(config.expression_components, pairs))
        )
    )
    report: dict[str, Any] = {}
    started = time.perf_counter()
    report["age"] = fit_age_and_sex(engine, utkface, utkface_root, progress)
    report["aus"] = fit_aus(engine, cfee, cfee_root, progress)
    report["mouth"] = fit_mouth(engine, cfee, cfee_root, progress)
    # the gains are the landmarks' own: an AU edit takes the pairs' skin motion as far as its gains did not go
    report["au_gains"] = calibrate_au_gains(engine, cfee, cfee_root, faces=au_gain_faces, progress=progress)
    if pairs:
        tables, report["expressions"] = fit_expression_pairs(
            engine, cfee, cfee_root, engine.config.expression_components, progress=progress
        )
        engine.set_tables(**tables)
    report["hair"] = fit_hair(engine, utkface, utkface_root, progress)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return engine, report


LICENCE_NOTE = (
    "The tables are fitted on UTKFace (ages; non-commercial research only) and CFEE (posed expressions with FACS "
    "codes, the Ohio State University; no licence came with the copy: non-commercial research only). The engine "
    "inherits those terms: use it for non-commercial research. The code is Apache-2.0."
)
REPORT_NAME = "fit_report.json"
EVALUATION_NAME = "evaluation.md"
TURNING_NAME = "turning.md"  # training/evaluate.py turning --markdown: reenactment by the 3-D turn


def fit_summary(report: dict[str, Any]) -> str:
    """The fit report as a few lines of Markdown for the card."""
    age, aus, mouth = report.get("age", {}), report.get("aus", {}), report.get("mouth", {})
    lines = [
        f"- Age tables: {age.get('faces', '?')} near-frontal UTKFace training faces with an age and a sex label.",
        f"- Sex classifier: logistic regression on a 32x32 grey template view; held-out accuracy "
        f"{age.get('sex', {}).get('accuracy', {}).get('test', float('nan')):.1%}.",
        f"- AU effects: {aus.get('pairs', '?')} CFEE same-person (posed, Neutral) training pairs.",
        f"- Mouth interiors: {mouth.get('photos', '?')} open-mouth CFEE training photos.",
        f"- Expressions' skin: {report.get('expressions', {}).get('pairs', 'no')} CFEE training pairs (neutral and "
        f"an expression of one person) as motion and look, {report.get('expressions', {}).get('components', 0)} "
        "principal components.",
    ]
    gains = report.get("au_gains", {}).get("gains")
    if gains:
        listed = ", ".join(f"{name} {value:g}" for name, value in gains.items() if value != 1.0)
        lines.append(f"- AU gains (an edit to 4 reads about 4 on the AU read-out): {listed}; the others 1.")
    hair = report.get("hair")
    if hair and hair.get("fitted", True):
        listed = ", ".join(f"{age} {share:.0%}" for age, share in hair["greying"].items() if share > 0)
        lines.append(
            f"- Hair greying: {hair['faces']} UTKFace training faces with visible hair; the share of hair greyed "
            f"by age: {listed or 'none'}; grey hair {hair['grey_level']:.2f}x as bright as the skin."
        )
    if "seconds" in report:
        lines.append(f"- Fitting took {report['seconds'] / 60:.1f} CPU minutes (2 cores).")
    return "\n".join(lines)


def write_engine(
    engine: FittedEngine,
    folder: str | Path,
    report: dict[str, Any] | None = None,
    samples: str | Path | None = None,
    note: str | None = None,
) -> None:
    """Save the engine (fp16 safetensors, config.json, card) with its fit report, evaluation and grids.

    The card's evaluation is ``evaluation.md`` in the folder (``training/evaluate.py gates --markdown``) and
    ``turning.md`` (``training/evaluate.py turning --markdown``) where there is one, its
    samples the ``gates_*.jpg`` grids of `samples` (copied in) or already in the folder; `note` goes under
    its description (for the embedded default: the one story of it that the README and the Space tell too).
    """
    import json
    import shutil

    from training.evaluation.gates import GRID_SUFFIX

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if report is not None:
        (folder / REPORT_NAME).write_text(json.dumps(report, indent=2, default=str))
    elif (folder / REPORT_NAME).is_file():
        report = json.loads((folder / REPORT_NAME).read_text())
    if samples is not None:
        for grid in sorted(Path(samples).glob(f"gates_*{GRID_SUFFIX}")):
            if grid.resolve() != (folder / grid.name).resolve():
                shutil.copyfile(grid, folder / grid.name)
    grids = sorted(p.name for p in folder.glob(f"gates_*{GRID_SUFFIX}"))
    evaluation = (folder / EVALUATION_NAME).read_text() if (folder / EVALUATION_NAME).is_file() else None
    if (folder / TURNING_NAME).is_file():  # the head turned in 3-D is the engine's too (reenactment's pose)
        evaluation = "\n\n".join(part for part in (evaluation, (folder / TURNING_NAME).read_text()) if part)
    if evaluation:  # the grids are the Samples section's
        evaluation = "\n".join(line for line in evaluation.splitlines() if not line.startswith("![gates_"))
    card = {
        "model_name": "ganime-age fitted edit engine",
        "trained_on": "the training splits of UTKFace (ages, sexes) and CFEE (expressions, FACS codes)",
        "license_note": LICENCE_NOTE,
        "license": "other",
        "license_name": "non-commercial-research",
        "datasets": ["UTKFace", "CFEE"],
        "training": fit_summary(report) if report else None,
        "evaluation": evaluation,
        "samples": "\n\n".join(f"![{g}]({g})" for g in grids) if grids else None,
        "age_centres": ", ".join(f"{a:g}" for a in engine.config.age_centres),
        "note": note,
    }
    engine.save_pretrained(folder, dtype=torch.float16, model_card_kwargs=card)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utkface", required=True, help="UTKFace folder (ages, sexes)")
    parser.add_argument("--cfee", required=True, help="CFEE folder (posed expressions with FACS codes)")
    parser.add_argument("--cache", default="runs/engine", help="where the analysed photos are kept between runs")
    parser.add_argument("--output", required=True, help="folder to write the fitted engine to (Hub layout)")
    parser.add_argument("--max-utkface", type=int, default=None, help="fit on at most this many UTKFace photos")
    parser.add_argument("--max-cfee", type=int, default=None, help="fit on at most this many CFEE photos")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    return parser


def card_main(argv: list[str]) -> int:
    """``fit_engine.py card --engine DIR [--samples DIR]``: re-render an engine folder's card (after gates)."""
    from ganime_age.hub import load_pretrained

    parser = argparse.ArgumentParser(prog="fit_engine.py card", description=card_main.__doc__)
    parser.add_argument("--engine", required=True, help="engine folder (its evaluation.md and fit_report.json)")
    parser.add_argument("--samples", default=None, help="folder of gates_*.jpg grids to copy in")
    parser.add_argument("--note", default=None, help="a Markdown file for the card, under the description")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the engine's strengths (a FittedEngineConfig field, JSON value), e.g. age_texture_gain=2",
    )
    args = parser.parse_args(argv)
    note = Path(args.note).read_text(encoding="utf-8").strip() if args.note else None
    engine = load_pretrained(args.engine)
    if args.settings:
        engine = retuned(engine, args.settings)
    write_engine(engine, args.engine, samples=args.samples, note=note)
    return 0


def retuned(engine: FittedEngine, settings: list[str]) -> FittedEngine:
    """The same fitted tables under changed strengths (``KEY=VALUE`` each): tuning needs no refit."""
    import json

    from ganime_age.errors import ConfigError

    fields = {f.name for f in dataclasses.fields(FittedEngineConfig)}
    changes: dict[str, Any] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--set takes KEY=VALUE with KEY a FittedEngineConfig field, not {setting!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--set {key}: {value!r} is not a JSON value") from error
        changes[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    config = dataclasses.replace(engine.config, **changes)
    config.validate()
    fresh = FittedEngine(config)
    fresh.load_state_dict(engine.state_dict())
    return fresh


def hair_main(argv: list[str]) -> int:
    """``fit_engine.py hair --engine DIR --utkface DIR [--cache DIR]``: fit the hair greying into an engine folder
    (its other tables are kept; an engine saved before the hair tables existed gets them)."""
    import json

    from ganime_age.hub import load_pretrained

    parser = argparse.ArgumentParser(prog="fit_engine.py hair", description=hair_main.__doc__)
    parser.add_argument("--engine", required=True, help="engine folder to update")
    parser.add_argument("--utkface", required=True, help="UTKFace folder (ages)")
    parser.add_argument("--cache", default="runs/engine", help="where the analysed photos are kept between runs")
    parser.add_argument("--max-utkface", type=int, default=None, help="analyse at most this many UTKFace photos")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--keep-greying",
        action="store_true",
        help="fit young hair's colour alone, keeping the engine's greying tables (the shipped ones were fitted "
        "with an earlier hair mask, which counted more of grey hair as hair)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = load_pretrained(args.engine, strict=False)
    kept = {name: engine.tables[name].copy() for name in ("hair_greying", "hair_level")}
    utk = collect(
        "utkface", args.utkface, Path(args.cache) / "utkface.npz", max_photos=args.max_utkface, workers=args.workers
    )
    started = time.perf_counter()
    hair = fit_hair(engine, utk, Path(args.utkface))
    hair["seconds"] = round(time.perf_counter() - started, 1)
    report_path = Path(args.engine) / REPORT_NAME
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if args.keep_greying and hair.get("fitted"):
        engine.set_tables(**kept)
        earlier = report.get("hair", {})
        hair = {**earlier, "young_hair_colour": hair["young_hair_colour"], "young_colour_fit": hair}
    report["hair"] = hair
    write_engine(engine, args.engine, report)
    log.info("hair greying on %d faces: %s", hair["faces"], hair.get("greying", "not fitted (too few faces)"))
    return 0


def expressions_main(argv: list[str]) -> int:
    """``fit_engine.py expressions --engine DIR --cfee DIR [--cache DIR]``: fit an expression's skin from CFEE's
    training pairs (:mod:`training.data.expression_pairs`) into an engine folder (its other tables are kept, the AU
    gains too, which are the landmarks' own; an engine saved before the expression tables existed gets them)."""
    import json

    from ganime_age.hub import load_pretrained

    parser = argparse.ArgumentParser(prog="fit_engine.py expressions", description=expressions_main.__doc__)
    parser.add_argument("--engine", required=True, help="engine folder to update")
    parser.add_argument("--cfee", required=True, help="CFEE folder (each person neutral and making expressions)")
    parser.add_argument("--cache", default="runs/engine", help="where the analysed photos are kept between runs")
    parser.add_argument("--components", type=int, default=FittedEngineConfig().expression_components)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    earlier = load_pretrained(args.engine, strict=False)
    cfee = collect("cfee", args.cfee, Path(args.cache) / "cfee.npz", workers=args.workers)
    started = time.perf_counter()
    tables, fitted = fit_expression_pairs(earlier, cfee, Path(args.cfee), args.components, progress=not args.quiet)
    fitted["seconds"] = round(time.perf_counter() - started, 1)
    config = dataclasses.replace(
        earlier.config, expression_pairs=fitted["pairs"], expression_components=fitted["components"]
    )
    engine = FittedEngine(config)
    kept = {name: value for name, value in earlier.state_dict().items() if not name.startswith("expression_")}
    engine.load_state_dict(kept, strict=False)
    engine.set_tables(**tables)
    report_path = Path(args.engine) / REPORT_NAME
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["expressions"] = fitted
    write_engine(engine, args.engine, report)
    log.info("expressions from %d pairs of %d people: %s", fitted["pairs"], fitted["people"], fitted)
    return 0


def growth_main(argv: list[str]) -> int:
    """``fit_engine.py growth --engine DIR --fgnet DIR``: fit the head's growth (the cardioidal strain per young age
    centre, :mod:`training.data.growth`) on FG-NET's training people into an engine folder (its tables are kept)."""
    import json

    from ganime_age.hub import load_pretrained
    from training.data.growth import fit_growth

    parser = argparse.ArgumentParser(prog="fit_engine.py growth", description=growth_main.__doc__)
    parser.add_argument("--engine", required=True, help="engine folder to update")
    parser.add_argument("--fgnet", required=True, help="FG-NET folder (images/PPPaNN.JPG, points/*.pts)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = load_pretrained(args.engine)
    started = time.perf_counter()
    fitted = fit_growth(Path(args.fgnet), engine.centres, np.asarray(engine.config.growth_strains))
    engine.config.growth_strains = tuple(round(float(v), 4) for v in fitted.strains)
    engine.config.validate()
    engine.invalidate()
    growth = {**fitted.report, "seconds": round(time.perf_counter() - started, 1)}
    report_path = Path(args.engine) / REPORT_NAME
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["growth"] = growth
    write_engine(engine, args.engine, report)
    log.info("growth strains from %d young FG-NET photos: %s", growth["young_photos"], growth["strains"])
    return 0


def exemplars_main(argv: list[str]) -> int:
    """``fit_engine.py exemplars --utkface DIR --output DIR [--engine DIR] [--per-race N]``: the engine's bank of
    real faces of every age (:mod:`training.data.exemplars`), from UTKFace's training split, drawn in the engine's
    template; an editor names it as its ``exemplars`` part."""
    import json

    from ganime_age.editing.manifest import DEFAULT_ENGINE_DIR
    from ganime_age.faces import FaceAnalyzer
    from ganime_age.hub import load_pretrained
    from training.data.exemplars import build_bank
    from training.data.face_records import utkface_split

    parser = argparse.ArgumentParser(prog="fit_engine.py exemplars", description=exemplars_main.__doc__)
    parser.add_argument("--utkface", required=True, help="UTKFace folder (ages, sexes, races)")
    parser.add_argument("--output", required=True, help="folder to write the bank to (Hub layout)")
    parser.add_argument("--engine", default=str(DEFAULT_ENGINE_DIR), help="the engine whose template the bank uses")
    parser.add_argument("--per-race", type=int, default=4, help="faces per age cell, sex and race label")
    parser.add_argument("--max-photos", type=int, default=None, help="consider at most this many training photos")
    parser.add_argument("--evaluation", default=None, help="a Markdown file for the card's Evaluation section")
    parser.add_argument("--samples", default=None, help="a folder of grids (*.jpg) to copy in and show in the card")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    grids = sorted(Path(args.samples).glob("*.jpg")) if args.samples else []
    started = time.perf_counter()
    photos = utkface_split(Path(args.utkface), "train")[: args.max_photos]
    engine = load_pretrained(args.engine)
    bank, report = build_bank(photos, engine, FaceAnalyzer(), per_race=args.per_race, progress=not args.quiet)
    report["seconds"] = round(time.perf_counter() - started, 1)
    ages = bank.ages.numpy()
    card = {
        "model_name": "ganime-age age exemplars",
        "license": "other",
        "license_name": "non-commercial-research",
        "datasets": ["UTKFace"],
        "trained_on": (
            f"{len(ages)} real faces of UTKFace's training split, aged {ages.min():.0f} to {ages.max():.0f} "
            f"(up to {args.per_race} per year of childhood or five years of grown age, sex and race label; "
            f"near-frontal), drawn in the engine's template"
        ),
        "training": f"`python training/fit_engine.py exemplars` ({report})",
        "license_note": (
            "The bank holds real faces of UTKFace's training split (128 px views of the face in the engine's "
            "template), and UTKFace is for non-commercial research only: so is this bank, and so are the edits "
            "made with it."
        ),
        "evaluation": Path(args.evaluation).read_text(encoding="utf-8").strip() if args.evaluation else None,
        "samples": "\n\n".join(f"![{g.name}]({g.name})" for g in grids) or None,
    }
    bank.save_pretrained(args.output, model_card_kwargs=card)
    for grid in grids:
        shutil.copyfile(grid, Path(args.output) / grid.name)
    (Path(args.output) / "fit_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("%d exemplars in %.0f s; wrote %s", len(ages), report["seconds"], args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["card"]:
        return card_main(argv[1:])
    if argv[:1] == ["hair"]:
        return hair_main(argv[1:])
    if argv[:1] == ["exemplars"]:
        return exemplars_main(argv[1:])
    if argv[:1] == ["growth"]:
        return growth_main(argv[1:])
    if argv[:1] == ["expressions"]:
        return expressions_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = Path(args.cache)
    progress = not args.quiet
    utk = collect("utkface", args.utkface, cache / "utkface.npz", max_photos=args.max_utkface, workers=args.workers)
    cfee = collect("cfee", args.cfee, cache / "cfee.npz", max_photos=args.max_cfee, workers=args.workers)
    engine, report = fit(utk, Path(args.utkface), cfee, Path(args.cfee), progress=progress)
    write_engine(engine, args.output, report)
    log.info("fitted in %.0f s; wrote %s", report["seconds"], args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
