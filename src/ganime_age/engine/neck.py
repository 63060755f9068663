"""An old neck's lines and the creases along the jaw, smoothed away below the jaw when a face is made decades younger.

An age edit's skin change is drawn inside the face's mesh, which ends at the jaw. So an old face made a child kept,
just below its new jaw, the creases of the old jowls and neck: the growth pulls the chin up and takes the neck's skin
with it, and those creases read as a dark band along the jaw, like stubble (FG-NET 003A60 made 6). Once per photo,
the skin below the jaw (a band from a little inside the mesh's lower edge down to REACH face widths, this person's
skin and neck only: never a collar, hair or a beard, which :mod:`.beard` lifts) loses its lines as an old
forehead does (:mod:`.forehead`: the detail between the photo's grain and a crease's width, in every channel alike),
and a slider move scales the change by the same share.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ganime_age.engine.frames import PhotoLift, arc_band, wide_blur
from ganime_age.faces.topology import CHIN, FACE_LEFT, FACE_OVAL, FACE_RIGHT, OUTER_LIPS

REACH = 0.3  # face widths below the mesh's lower edge the neck's band reaches
INSIDE = 0.04  # face widths above that edge it begins: the jowls' creases straddle the mesh's edge
FEATHER = 0.03  # face widths: the soft edge of the band
LINE_SCALES = (0.006, 0.035)  # face widths: the photo's grain (kept) and the widest crease (taken out)


class Neck(PhotoLift):
    """The skin below the jaw and its lines' removal at the photo's resolution (`change`: all of it)."""


def find_neck(
    rgb: np.ndarray,
    points: np.ndarray,
    person: Callable[[int, int, int, int], np.ndarray],
    hair: Callable[[tuple[int, int, int, int], tuple[int, int]], np.ndarray],
    beard: Callable[[tuple[int, int, int, int], tuple[int, int]], np.ndarray] | None = None,
) -> Neck | None:
    """The skin below the jaw of the face with landmarks `points` (photo pixels) in `rgb`, or None where none is in
    view. `person` and `hair` as for :func:`.beard.find_beard`; `beard` (the facial hair's share over a box, as
    :meth:`.beard.Beard.share_on`), where the beard's own lift evens the skin already: the neck's would lift the
    same dark grain a second time."""
    height, width = rgb.shape[:2]
    points = np.asarray(points, np.float64)
    face_width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    ring = [pair[0] for pair in FACE_OVAL]
    top = min(ring, key=lambda index: points[index, 1])
    ring = ring[ring.index(top) :] + ring[: ring.index(top)]  # from the top round: the lower arc is one run
    mouth_row = float(points[list(OUTER_LIPS), 1].mean())  # the jowls begin beside the mouth
    arc = points[[i for i in ring if points[i, 1] > mouth_row], :2]
    if len(arc) < 3:
        return None
    down = points[CHIN, :2] - points[ring, :2].mean(axis=0)  # from the face's centre to the chin
    down /= max(float(np.linalg.norm(down)), 1e-6)
    upper, lower = arc - INSIDE * face_width * down, arc + REACH * face_width * down
    x0 = max(int(min(upper[:, 0].min(), lower[:, 0].min())), 0)
    x1 = min(int(np.ceil(max(upper[:, 0].max(), lower[:, 0].max()))) + 1, width)
    y0 = max(int(min(upper[:, 1].min(), lower[:, 1].min())), 0)
    y1 = min(int(np.ceil(max(upper[:, 1].max(), lower[:, 1].max()))) + 1, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    box, shape = (x0, y0, x1, y1), (y1 - y0, x1 - x0)
    band = arc_band(upper, lower, np.array([x0, y0], np.float64), shape).astype(np.float32)
    weight = wide_blur(band, max(FEATHER * face_width, 1.0), border=cv2.BORDER_REFLECT_101) * person(*box)
    weight *= 1.0 - np.clip(hair(box, shape), 0.0, 1.0)
    if beard is not None:
        weight *= 1.0 - np.clip(beard(box, shape), 0.0, 1.0)
    if float(weight.max()) < 0.05:
        return None
    return Neck.lines_out(rgb, box, weight, (LINE_SCALES[0] * face_width, LINE_SCALES[1] * face_width))
