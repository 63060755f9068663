"""The side of a turned head that the photo never showed, made up (issue 31).

Each of the face outline's 36 paths over the head starts where the photo shows the face's edge; past the edge a
path reads the hair the photo shows beside the face along it (its outer part: the ear and the temple lie
farther in), reflected back and forth at its own scale, and the whole made-up side takes one hair colour (read
at the crown) and, below the jaw, one neck colour: hair continues as hair without the streaks that each
path's own run (crossing ears, earrings, collars) drew.
"""

from __future__ import annotations

import numpy as np

from ganime_age.engine.head import HeadModel
from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT

BAND_SHARE = 0.85  # of the hair out to the silhouette's edge that a made-up side reads (not its soft rim)
HAIR_DEPTH = 1.2  # canonical cm: the outer part of the silhouette beside the face that is read as the head's hair
CANONICAL_WIDTH = 15.33  # canonical cm between the face outline's two sides (vertices 234 and 454)
SQUARELY = 0.35  # a proxy vertex seen at least this squarely (its normal's z) has its distance along its path read
CROWN_PATHS = 7  # of the outline's 36 paths, the topmost this many read the head's hair colour


def texture_paths(
    placed: np.ndarray, facing: np.ndarray, model: HeadModel, person: np.ndarray, runs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(V, 7) per vertex: where its path over the head starts in the photo (x, y), the path's outward direction
    there (dx, dy), where the hair beside the face runs along it (from, to: pixels from the start) and the
    vertex's distance along it (all 0 for the face's own vertices).

    A turn that shows the side of the head (seen edge-on or not at all) reads it from the hair the photo does
    show beside the face along the same path (its outer part: the ear and the temple lie farther in; short of
    the silhouette's soft edge), reflected back and forth at its own scale, pixel by pixel (:func:`ping_pong`): hair continues as
    hair, its strands the size they were, instead of a thin band at the silhouette stretched into streaks.
    Returned with the (36, 2) runs, which `runs` gives instead of measuring them again.
    """
    paths = np.zeros((len(placed), 7), np.float64)
    centre = placed[list(model.rings[0]), :2].mean(axis=0)
    scale = float(np.linalg.norm(placed[FACE_RIGHT, :2] - placed[FACE_LEFT, :2])) / CANONICAL_WIDTH
    found: list[tuple[float, float]] = []
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
        if runs is None:
            neck = model.follow[path[-1]] < 0.5
            found.append(hair_run(person, origin, outward, reach, HAIR_DEPTH * scale, inner=neck))
        along = (placed[path[: last + 1], :2] - origin) @ outward
        steps = np.linalg.norm(np.diff(placed[path[last:]], axis=0), axis=1)
        paths[path, 0:2], paths[path, 2:4] = origin, outward
        paths[path, 6] = np.concatenate([along, along[-1] + np.cumsum(steps)])
    if runs is None:
        # neighbouring paths read alike (runs that change from one path to the next drew shards between them)
        raw = np.asarray(found)
        count = len(raw)
        runs = np.stack([raw[np.arange(k - 2, k + 3) % count] for k in range(count)]).mean(axis=1)
    for k in range(len(runs)):
        paths[model.rings[:, k], 4:6] = runs[k]
    return paths, runs


def side_colours(
    soft: np.ndarray, points: np.ndarray, paths: np.ndarray, runs: np.ndarray, model: HeadModel
) -> np.ndarray:
    """(V, 3) the colour a made-up side takes at each vertex of a placed head (`points`, its :func:`texture_paths`
    and their runs): the head's hair (the median of what the paths at
    the crown read beyond the face) on the skull's paths, the neck's skin (the median of what the neck's paths
    read) on the neck's, mixed where the one becomes the other. One colour each: a path's own run crosses ears,
    earrings and collars, which read apart from path to path drew streaks."""
    height, width = soft.shape[:2]
    medians, heights, neck = [], [], []
    for k in range(model.rings.shape[1]):
        path = model.rings[:, k]
        origin, outward = paths[path[0], 0:2], paths[path[0], 2:4]
        start, stop = runs[k]
        steps = np.arange(0.5 * (start + stop), stop, 1.0)  # its outer half: hair, past the skin of a high forehead
        if len(steps) == 0:
            medians.append(np.full(3, np.nan))
        else:
            xs = np.clip(np.round(origin[0] + steps * outward[0]).astype(int), 0, width - 1)
            ys = np.clip(np.round(origin[1] + steps * outward[1]).astype(int), 0, height - 1)
            medians.append(np.median(soft[ys, xs], axis=0))
        heights.append(origin[1])
        neck.append(model.follow[path[-1]])
    medians_array = np.asarray(medians)
    heights_array, head_share = np.asarray(heights), np.asarray(neck)
    eyes = float(points[[33, 263], 1].mean())
    found = np.isfinite(medians_array[:, 0])

    def pooled(where: np.ndarray) -> np.ndarray:
        chosen = medians_array[where & found]
        return np.median(chosen, axis=0) if len(chosen) else np.median(medians_array[found], axis=0)

    if not found.any():  # no silhouette beside the face (a tight crop): the face's own edge colour
        xs = np.clip(np.round(paths[model.rings[0], 0]).astype(int), 0, width - 1)
        ys = np.clip(np.round(paths[model.rings[0], 1]).astype(int), 0, height - 1)
        medians_array = np.repeat(np.median(soft[ys, xs], axis=0)[None], len(medians_array), axis=0)
        found[:] = True
    # the hair is read at the crown: beside the temples and the ears the silhouette is often skin (short or
    # tied-back hair)
    crown = np.zeros(len(heights_array), bool)
    crown[np.argsort(np.where(found, heights_array, np.inf))[:CROWN_PATHS]] = True
    hair = pooled(crown & (heights_array < eyes))
    skin = pooled(head_share < 0.5)
    colours = np.zeros((len(points), 3))
    for k in range(model.rings.shape[1]):
        colours[model.rings[1:, k]] = head_share[k] * hair + (1.0 - head_share[k]) * skin
    return colours.astype(np.float32)


def hair_run(
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


def ping_pong(distance: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """`distance` beyond `start` folded back and forth into [start, stop] (a mirror at each end); `distance`
    itself before `start`, and 0 where there is no run."""
    width = stop - start
    period = np.maximum(2.0 * width, 1e-6)
    phase = np.mod(np.maximum(distance - start, 0.0), period)
    folded = start + np.where(phase <= width, phase, period - phase)
    return np.where(width >= 4.0, np.where(distance < start, distance, folded), 0.0)
