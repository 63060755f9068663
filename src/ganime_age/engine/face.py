"""One face of one photo as the engine's jobs share it (:class:`EngineFace`, prepared once by the model), and an
edit's change (:data:`Change`): below the model, so that every job imports it without the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganime_age.engine.beard import Beard
from ganime_age.engine.exemplars import ExemplarMatch
from ganime_age.engine.forehead import Forehead
from ganime_age.engine.frames import GridFrame
from ganime_age.engine.hair import HairLayer
from ganime_age.engine.neck import Neck
from ganime_age.meshwarp import MeshRaster


@dataclass
class EngineFace:
    """What an edit of one face needs that does not depend on the sliders (computed once per photo)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the region an edit may touch (photo pixels)
    scale: float  # engine grid pixels per photo pixel (<= 1)
    grid_shape: tuple[int, int]  # engine grid (height, width)
    raster: MeshRaster  # the face's own mesh on the engine grid (near surface, far side culled)
    template_coords: np.ndarray  # (h, w, 2) template position of each engine pixel on the face
    face_mask: np.ndarray  # (h, w) float32 soft mask of the face on the engine grid
    log_grey_bands: list[np.ndarray]  # the face's own detail bands (engine grid, log luminance)
    rotation: np.ndarray  # (3, 3) canonical frame -> photo frame
    cm_to_grid: float  # engine pixels per canonical centimetre
    female: float  # probability that the face is a woman's (blends the per-sex tables)
    colourfulness: float  # 0 for a grey photo
    landmarks: np.ndarray  # (478, 3) engine-grid positions
    mouth_gap: float  # the lips' gap at their centre, canonical cm
    skin: float  # skin brightness (0..255), the mouth interior's reference
    smooth_rgb: np.ndarray  # (h, w, 3) float32 the face's colours on the engine grid, blurred: what a tint scales
    layer: HairLayer  # the person an edit stays on, and the hair that greys (photo resolution; :mod:`.hair`)
    hair: np.ndarray  # (h, w) float32 the hair share on the engine grid: the skin's changes stay off it
    beard: Beard | None = None  # the facial hair an edit to a child lifts (:mod:`.beard`)
    forehead: Forehead | None = None  # the skin above the mesh, whose lines go when made young (:mod:`.forehead`)
    neck: Neck | None = None  # the skin below the jaw, whose lines go when made young (:mod:`.neck`)
    young_skin: np.ndarray | None = None  # (R, R, 3) a child's lower-face skin (:func:`appearance.young_skin`)
    exemplars: ExemplarMatch | None = None  # real faces of the target age matched to this one (:mod:`.exemplars`)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # per-photo fields slider moves scale

    @property
    def frame(self) -> GridFrame:
        """This face's engine grid over its photo region."""
        return GridFrame(self.box, self.grid_shape)


Change = tuple[tuple[int, int, int, int], np.ndarray]  # an edit's photo box and its (h, w) change mask
