"""The engine's bank of age exemplars (:mod:`ganime_age.engine.exemplars`), from UTKFace's training split.

Real faces of every age, chosen so that every person can be matched: for each age cell (each year of childhood,
five-year bins of grown ages) and each sex, the same number of faces of each of UTKFace's five race labels where
it has them, near-frontal (the template view of a turned face is smeared on its far side), each drawn into the
engine's shape-normalised template once. Only the training split is used, so the held-out faces that judge the
edits were never in the bank.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ganime_age.engine.descriptors import describe, smile
from ganime_age.engine.exemplars import AgeExemplars, AgeExemplarsConfig
from ganime_age.engine.frames import log_image, template_view
from ganime_age.engine.mouth import mouth_gap
from ganime_age.errors import GanimeAgeError
from training.data.sources import UTKFACE_NAME

log = logging.getLogger(__name__)

CHILD_YEARS = range(1, 16)  # one cell a year: a child's face changes from year to year
GROWN_BINS = range(18, 86, 5)  # then one cell every five years
MAX_TURN = 15.0  # degrees of yaw or pitch


def age_cell(age: float) -> int | None:
    """The bank's cell of an age: the year below 16, the five-year bin's start from 18 to 85, else None."""
    if int(age) in CHILD_YEARS:
        return int(age)
    for start in GROWN_BINS:
        if start <= age < start + 5:
            return start
    return None


Cell = tuple[int, int, int]  # (age cell, female, race)


def choose(photos: list[tuple[Path, float]], per_race: int, seed: int = 0) -> list[tuple[Path, float, int, Cell]]:
    """(photo, age, female, cell) candidates: per (age cell, sex, race) up to three times `per_race`, shuffled
    (some will not be usable), in a fixed order."""
    cells: dict[Cell, list[tuple[Path, float]]] = defaultdict(list)
    for path, age in photos:
        match = UTKFACE_NAME.match(path.name)
        cell = age_cell(age)
        if match is None or cell is None:
            continue
        cells[cell, int(match["gender"]), int(match["race"])].append((path, age))
    rng = np.random.default_rng(seed)
    chosen = []
    for key in sorted(cells):
        members = cells[key]
        order = rng.permutation(len(members))[: 3 * per_race]
        chosen += [(members[i][0], members[i][1], key[1], key) for i in order]
    return chosen


def build_bank(
    photos: list[tuple[Path, float]],
    engine: object,
    analyzer: object,
    *,
    per_race: int = 4,
    stored_size: int = 128,
    progress: bool = True,
) -> tuple[AgeExemplars, dict[str, int]]:
    """The bank from (photo, age) pairs of UTKFace's training split, drawn in `engine`'s template and read by
    `analyzer` (a :class:`ganime_age.faces.FaceAnalyzer`); also what was used and skipped, by reason."""
    from tqdm import tqdm

    from ganime_age.face_model import canonical_face, head_similarity
    from ganime_age.faces import load_image

    c = engine.config
    template = engine.template
    candidates = choose(photos, per_race)
    taken: dict[Cell, int] = defaultdict(int)
    views, ages, descriptors = [], [], []
    report = {"candidates": len(candidates), "used": 0, "no_face": 0, "turned": 0, "cell_full": 0}
    for path, age, female, key in tqdm(candidates, disable=not progress):
        if taken[key] >= per_race:
            report["cell_full"] += 1
            continue
        rgb = load_image(path)
        try:
            face = analyzer.analyze(rgb)[0]
        except GanimeAgeError:
            report["no_face"] += 1
            continue
        if face.landmarks is None:
            report["no_face"] += 1
            continue
        if max(abs(float(face.pose[0])), abs(float(face.pose[1]))) > MAX_TURN:
            report["turned"] += 1
            continue
        points = np.asarray(face.landmarks.landmarks, np.float64)
        view = template_view(template, rgb, points)
        cm = head_similarity(points, canonical_face()).scale  # photo pixels per canonical centimetre
        descriptors.append(describe(template, log_image(view), mouth_gap(points, cm), smile(points), float(female)))
        views.append(view)
        ages.append(age)
        taken[key] += 1
    report["used"] = len(views)
    config = AgeExemplarsConfig(
        stored_size=stored_size,
        template_size=c.template_size,
        template_scale=c.template_scale,
        template_centre=tuple(c.template_centre),
    )
    bank = AgeExemplars.from_faces(views, np.asarray(ages, np.float32), np.asarray(descriptors, np.float32), config)
    bank = bank.with_sharpness(template)  # measured once here, never by an edit
    log.info("age exemplars: %s", report)
    return bank, report
