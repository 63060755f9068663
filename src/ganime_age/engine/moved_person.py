"""The person moves with the face's warp.

An edit fades out where the photo's person ends, so walls, shirts and neighbours keep their pixels. But the face's
warp moves the head's own outline: a child's ear lobe sits lower on the head, an old jaw sags. Where the warp
moves the person past its old outline, faded out there, the wall cut a square notch into the moved ear (FG-NET
003A60 made 6), and where it moved the soft edge, mixing in the input printed the old outline as a faint line.
So the person's weight is moved with the face's pixels, and the edit is whole wherever the moved person surely is.
"""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.hair import HairLayer

MOVED_EDGE = 64  # person weight (of 255) from which a moved silhouette edge is wholly the edit's
MOVED_SURE = 160  # moved person weight (of 255) from which what the warp brings is the person
MOVED_FLOOR = 16  # moved person weight (of 255) below which the moved person adds nothing
MOVED_PERSON_STEP = 0.006  # face widths: the grid the person moved by the face's warp is read on


def person_moved(
    layer: HairLayer, face_box: tuple[int, int, int, int], region: tuple[int, int, int, int], positions: np.ndarray
) -> np.ndarray:
    """uint8 on a coarse grid over the photo box `region`: how much more of the person the face's warp brings
    to each place than was there (`positions`: where each pixel of `region` is read, in `face_box`'s crop), where
    what it brings is surely the person (MOVED_SURE: the outline's soft edge moved outward changed the wall by a
    few levels). Read every MOVED_PERSON_STEP face widths (a slider move pays for no full-resolution remap),
    never onto another face; 0 wherever nothing moved."""
    fx0, fy0, _, _ = face_box
    rx0, ry0, _, _ = region
    step = max(1, round(MOVED_PERSON_STEP * layer.face_width))
    whole = layer.person_bytes(*face_box)
    samples = np.ascontiguousarray(positions[::step, ::step])
    moved = cv2.remap(whole, samples, None, cv2.INTER_LINEAR)
    still = whole[ry0 - fy0 :: step, rx0 - fx0 :: step][: moved.shape[0], : moved.shape[1]]
    grown = cv2.subtract(moved, still)
    grown[moved < MOVED_SURE] = 0
    apart = layer.apart_on(region, grown.shape)
    if apart is not None:
        grown = (grown * apart).astype(np.uint8)
    return grown


def hold_moved(person: np.ndarray, moved: np.ndarray, grown: np.ndarray) -> None:
    """The person's weight (uint8, in place) over the region the face's warp changes: wholly the edit's where
    the warp `moved` (float32 > 0) its soft edge (the faintest quarter stays soft: it is where other faces are
    kept out), and as much more as the warp brings of it (:func:`person_moved`'s coarse `grown`, enlarged)."""
    person[(moved > 0.0) & (person >= MOVED_EDGE)] = 255
    grown = cv2.resize(grown, person.shape[::-1], interpolation=cv2.INTER_LINEAR)
    grown[grown < MOVED_FLOOR] = 0  # the coarse grid's enlarged fringe: no wall pixel changes by a level
    cv2.add(person, grown, dst=person)
