"""Hair greys with age, and an edit stays on its own person.

A face's *person* is the selfie segmenter's silhouette around it (where the crop's and the whole photo's
segmentations agree), less the other faces of the photo: an edit's change is faded out where it ends, so walls,
shirts beside the head and neighbours keep their pixels.

Hair is found, once per photo, at the photo's own resolution:

- where: inside the person, outside the face (but for a fringe well above the brows), within a head-and-shoulders
  window around the face (long hair below the mouth included, the neck and chin below it left out), away from the
  other faces;
- what: two colour models in Lab, the skin's (the face's own pixels, whose spread along the lightness axis keeps
  a shadowed ear or temple skin) and the hair's (the surest hair pixels above the brows). A pixel's hair share
  is its place between the two colours (a hairline pixel half skin is half hair) where its colour is more like
  the hair's than the skin's.

Made young, grey hair regains colour: each grey pixel (by its saturation under the photo's light; blond, red and
brown hair are left alone) that is as rough as hair (its finest detail's energy above the face's skin's: a pale
bald crown is grey under a bright light, but smooth) is scaled, channel by channel, by the person's own pigmented
hair's colour (else young people's, in the photo's light) over the hair's near it: curls keep their light and dark.

Greying adds to each pixel its hair share of the way from the local hair colour to grey hair's (the fitted
brightness relative to the skin, in the colour of the photo's light, so grey hair under a warm lamp is warm),
and lifts the strands' light and dark with the hair's brightness, equally in R, G and B (the photo's colour
noise in black hair is never scaled up). A mixed pixel at the hairline changes by its hair share only, and that
share is bounded by the hair its brightness holds (:mod:`.hairline`), so it never turns paler than the skin and
hair it mixes: no pale band between the hair and the forehead. Part way
grey, dark hair on a large face greys strand by strand (:mod:`.strands`): white strands among dark ones. Where
the photo shows no strands of its own (a small face, a scan's black mass of hair), grey hair's strands are drawn,
combed up and back from the forehead. Strands too thin for the parser (flyaways, wisps) grey too (:mod:`.wisps`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ganime_age.engine import hair_colour as colour
from ganime_age.engine.frames import add_change, add_scaled, channel_mean, overlap, resample_grid, row_bands, weighted
from ganime_age.engine.greying import grey_fields
from ganime_age.engine.hair_window import PERSON_BOX, connected_below, head_window
from ganime_age.engine.hairline import held_share
from ganime_age.engine.light import eye_whites, head_light, lab_to_rgb
from ganime_age.engine.parsing import HeadParse, fringe_floor
from ganime_age.engine.scene import Scene, Segmenter, agreement, own_side, read_grid, scene_silhouette, unseen_face
from ganime_age.engine.strands import Comb, grey_change, greyed_weight, strand_order, strandness
from ganime_age.engine.texture import log_energy, roughness
from ganime_age.engine.wisps import add_wisps, read_box
from ganime_age.faces.topology import BROW_TOPS, CHIN, FACE_LEFT, FACE_RIGHT, MOUTH_CENTRE, NUM_MESH_VERTICES

FOREHEAD_TOP = 10  # the mesh's highest point, mid-forehead
HAIR_GRID_FACE = 96  # grid pixels across the face: the hair's statistics and fields are smooth at this scale
NOTCH = 0.15  # face widths: the person's outline is closed over notches this deep (half their width)
COMB_ORIGIN = 0.3  # face widths below the chin: hair is drawn combed away from there (strands.py)
OTHER_FACE_GROW = 0.15  # face widths: the other faces' hulls grown by this are never another face's edit
FRINGE_FREE = 0.08  # face widths above the brows' tops from where the face's mask no longer keeps hair out
SURE_SHARE = 0.6  # of the way from the skin's colour to the hair's: all hair (a fringe's lit strands: not a blond band)
MIN_HAIR_SEEDS = 25  # sure-hair grid pixels needed for a colour model (fewer: bald, or hair as pale as skin)
SEED_DISTANCE = 27.0  # Lab distance from the skin's colour beyond which a pixel above the brows is surely hair
# grey and white hair is near pale skin in Lab but has far less colour: a pixel above the brows with less than
# this share of the skin's chroma, and at least GREY_SEED_DISTANCE from its colour, is surely hair too
GREY_SEED_CHROMA, GREY_SEED_DISTANCE = 0.4, 12.0
# and at least this much less (Lab chroma) than the skin: in a nearly colourless photo (skin chroma 5.6) a lit
# wrinkled forehead above the mesh has as little colour as white hair, and was greyed and then "restored" red-brown
GREY_SEED_LACK = 5.0
GREY_CHROMA = (0.12, 0.3)  # a hair pixel's saturation under white light: grey below the first, pigmented (blond,
# red, brown) from the second; only grey hair regains colour
RESTORE_SCALE = 0.01  # face widths: the blur of the colour a pixel's grey is read from
RESTORE_BROAD = 0.04  # face widths: the blur of the hair's colour a regained colour is scaled from: curls keep their
# light and dark (at RESTORE_SCALE every curl was one flat brown, its finest strands light wires: FG-NET 003A60 made 6)
MIN_SKIN_CHROMA = 4.0  # Lab chroma of the skin below which a photo has no colour to tell grey hair by
RESTORE_FLOOR = 0.1  # the least a channel of white hair is scaled by when it regains colour
ROUGHER = (-0.4, 0.2)  # log energy over the face's skin's: from skin (no colour given back) to surely hair (all of it)


@dataclass
class HairLayer:
    """One face's person and hair at the photo's resolution, made once per photo (see the module docstring)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1: the head-and-shoulders box (photo pixels)
    grid_shape: tuple[int, int]  # the coarse grid of `person` and `fields` over `box`
    person: np.ndarray  # (h, w) float32 on the grid: where the edit may change the photo (this person, no other face)
    scene: Scene | None  # the whole photo's silhouette, where no parse is given: `person` must agree with it
    hair: np.ndarray  # (h, w) float32 on the grid: the hair share (what the greying fit and its box read)
    hair_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 of the hair (photo pixels); None: no hair
    share: np.ndarray | None = None  # (H, W) uint8 at the photo's resolution over `hair_box`: each pixel's hair share
    # (H, W) uint8 each over `hair_box`: each pixel's rank in greying and how far it greys strand by strand
    # (strands.py); None until the hair first greys (:meth:`strands_at`)
    order: np.ndarray | None = None
    strands: np.ndarray | None = None
    drawn: float | None = None  # 0..1: how far greyed hair's strands are drawn (:func:`.strands.unseen_strands`)
    drawn_order: np.ndarray | None = None  # (H, W) uint8 over `hair_box`: the drawn strands' ranks (their light)
    comb_origin: tuple[float, float] | None = None  # x, y photo pixels below the chin: hair is combed away from it
    fields: np.ndarray | None = None  # (h, w, 8) float32 on the grid: grey hair minus the local hair colour (RGB),
    # the local hair brightness, grey hair's brightness gain over it minus 1, and the local hair colour (RGB)
    # (h, w) float32 on the grid: 0 on the photo's other faces (grown a little), 1 away from them; None: no others
    apart: np.ndarray | None = None
    # (3,) young hair's colour in this photo's light and at its skin's brightness (None: grey hair stays grey)
    young: np.ndarray | None = None
    light: np.ndarray | None = None  # (3,) the light's colour around the head, mean 1 (:func:`.light.head_light`)
    face_width: float = 1.0  # photo pixels
    skin_roughness: float = 0.0  # the face's skin's :func:`.texture.log_energy` (its median): hair is rougher
    # (h, w) float32 on the grid: the face's own mask, where the scene misses the face (a person whatever the
    # scene says); None where the scene sees it
    face: np.ndarray | None = None
    wisps: np.ndarray | None = None  # (H, W) uint8 over `hair_box`: how much of each pixel is a loose strand
    _full: np.ndarray | None = field(default=None, repr=False)  # full greying's change over hair_box, made once
    # their making, started ahead (:meth:`start_changes`), by the name each is kept under
    _making: dict[str, Future] = field(default_factory=dict, repr=False, init=False)
    _restored: np.ndarray | None = field(default=None, repr=False)  # and full restoring's
    _greyed: tuple[float, np.ndarray] | None = field(default=None, repr=False)  # an amount, and its greying's change
    _person: np.ndarray | None = field(default=None, repr=False)  # person_at over `box` as uint8, made once
    # the face parser's view of this face (:mod:`.parsing`): where given, it, not the silhouette and colours, says
    # where the person and its hair are
    parsed: HeadParse | None = None

    def grey(self, pixels: np.ndarray, origin: tuple[int, int], amount: float) -> None:
        """Grey `amount` (0..1) of the hair in `pixels` (uint8 RGB, a photo crop whose top-left is `origin`, holding
        the photo's own pixels), in place. The change at full greying is made once (the first call covering the
        whole hair) and a slider move greys the strands ranked below `amount` (:func:`.strands.greyed_weight`)."""
        self._add(pixels, origin, amount, "_full", self.full_change, greying=True)

    def start_changes(self, rgb: np.ndarray, greying: bool, restoring: bool) -> None:
        """Start making the full greying's change (a new photo's strands included: a third of a 1 MP photo's first
        edit) or the full restoring's (`greying`, `restoring`) from the photo `rgb` on a thread of their own, so that
        they are made while the face's motion and skin are; the first :meth:`grey` or :meth:`restore` takes them.
        The same changes as those make themselves: the hair changes first, on the input's own pixels."""
        if self.hair_box is None:
            return
        x0, y0, x1, y1 = self.hair_box
        pixels = None
        for kept, wanted, change in (
            ("_full", greying and self.fields is not None, self.full_change),
            ("_restored", restoring and self.young is not None, self.restoring_change),
        ):
            if wanted and getattr(self, kept) is None and kept not in self._making:
                pixels = rgb[y0:y1, x0:x1].copy() if pixels is None else pixels
                self._making[kept] = _change_thread().submit(change, pixels, self.hair_box)

    def restore(self, pixels: np.ndarray, origin: tuple[int, int], amount: float) -> None:
        """Give `amount` (0..1) of its colour back to the grey hair in `pixels` (as :meth:`grey`), in place."""
        if self.young is not None:
            self._add(pixels, origin, amount, "_restored", self.restoring_change)

    def _add(
        self,
        pixels: np.ndarray,
        origin: tuple[int, int],
        amount: float,
        kept: str,
        change: Callable[[np.ndarray, tuple[int, int, int, int]], np.ndarray],
        greying: bool = False,
    ) -> None:
        """Add `amount` of a full change of the hair (`change(pixels, box)`) to `pixels`, in place (`greying`: strand
        by strand, see :meth:`grey`); the change over the whole hair box is made once and kept in the attribute
        named `kept`."""
        if self.hair_box is None or amount <= 0.0:
            return
        found = overlap(pixels, origin, self.hair_box)
        if found is None:
            return
        target, box = found
        if box != self.hair_box:
            full = change(target, box)
        else:
            making = self._making.get(kept)  # started ahead (kept: two frames rendered at once may both wait on it)
            if getattr(self, kept) is None and making is not None:
                setattr(self, kept, making.result())
            if getattr(self, kept) is None:
                setattr(self, kept, change(target, box))
            full = getattr(self, kept)
        if greying and self.fields is not None:  # the whole hair's kept per amount: an expression's moves, a video
            greyed = self._greyed if box == self.hair_box else None
            if greyed is None or greyed[0] != amount:
                greyed = (amount, self._greyed_change(target, box, full, amount))
                self._greyed = greyed if box == self.hair_box else self._greyed
            add_change(target, greyed[1])
        else:
            add_scaled(target, full, amount)

    def _greyed_change(
        self, pixels: np.ndarray, box: tuple[int, int, int, int], full: np.ndarray, amount: float
    ) -> np.ndarray:
        """(h, w, 3) int16: `amount` of the full greying `full` over `box`, strand by strand (:meth:`grey`)."""
        order, strands = self.strands_at(pixels, box)
        change = np.empty_like(full)
        for top, bottom in row_bands(*order.shape):  # each pixel's int16 weights for a band at a time
            weight = greyed_weight(order[top:bottom], strands[top:bottom], amount)
            change[top:bottom] = weighted(full[top:bottom], weight)
        return change

    def strands_at(self, pixels: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The hair's greying ranks and strandness (uint8 each, :mod:`.strands`) over the photo box `box`, from
        `pixels` (the photo's own there). Drawn once over the whole hair, at its first greying: an edit that greys
        nothing (an expression, a younger age) never pays for them."""
        order, strands, _, _ = self._strands_at(pixels, box)
        return order, strands

    def _strands_at(
        self, pixels: np.ndarray, box: tuple[int, int, int, int]
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
        """:meth:`strands_at`, how far the strands are drawn (:func:`.strands.unseen_strands`) and the drawn ones'
        ranks, over `box`."""
        if self.order is None or self.strands is None or self.drawn is None:
            x0, y0, x1, _ = box
            comb = None
            sure = self.hair > 0.8  # the grid's surest hair: what greying lifts it by, and to what
            if self.comb_origin is not None and sure.any():
                grey = self.fields[..., 3] + self.fields[..., :3].mean(axis=2)
                origin = (self.comb_origin[0] - x0, self.comb_origin[1] - y0)
                sure_hair = self._inside(self.share, box) > 200
                comb = Comb(
                    origin, sure_hair, float(np.median(self.fields[..., 4][sure])), float(np.median(grey[sure]))
                )
            order, strands, drawn_order, drawn = strand_order(pixels, self.face_width, comb)
            for top, bottom in row_bands(*strands.shape):  # pixel by pixel: the lift's float32 read in bands
                lift = read_grid(self.fields[..., 4], self.box, (x0, y0 + top, x1, y0 + bottom))
                strands[top:bottom] = strandness(lift, strands[top:bottom], self.face_width)
            if box != self.hair_box:
                return order, strands, drawn, drawn_order
            self.order, self.strands, self.drawn, self.drawn_order = order, strands, drawn, drawn_order
        drawn_order = None if self.drawn_order is None else self._inside(self.drawn_order, box)
        return self._inside(self.order, box), self._inside(self.strands, box), self.drawn, drawn_order

    def _inside(self, field: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """A field over `hair_box` (photo resolution) cut to the photo box `box` inside it."""
        x0, y0, x1, y1 = box
        hx0, hy0, _, _ = self.hair_box
        return field[y0 - hy0 : y1 - hy0, x0 - hx0 : x1 - hx0]

    def restoring_change(self, pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """(h, w, 3) int16: what giving grey hair all its colour back adds to `pixels` over `box`: each channel
        towards the person's own pigmented hair's (else young people's), never brightened, as far as it is grey hair."""
        share = self._inside(self.share, box).astype(np.float32) * np.float32(1.0 / 255.0)
        values = pixels.astype(np.float32)
        local = cv2.GaussianBlur(values, (0, 0), max(RESTORE_SCALE * self.face_width, 0.7)).reshape(values.shape)
        white_lit = local / (self.light if self.light is not None else np.ones(3, np.float32))
        brightest = white_lit.max(axis=2)
        saturation = (brightest - white_lit.min(axis=2)) / np.maximum(brightest, 1.0)
        grey = np.clip((GREY_CHROMA[1] - saturation) / (GREY_CHROMA[1] - GREY_CHROMA[0]), 0.0, 1.0)
        broad = max(RESTORE_BROAD * self.face_width, 0.7)  # the hair's colour alone: the wall is not its colour
        hair = cv2.GaussianBlur(values * share[..., None], (0, 0), broad).reshape(values.shape)
        hair /= np.maximum(cv2.GaussianBlur(share, (0, 0), broad), 1e-3)[..., None]
        own = colour.own_pigment(values, share, saturation >= GREY_CHROMA[1])
        ratio = np.clip((self.young if own is None else own) / np.maximum(hair, 1.0), RESTORE_FLOOR, 1.0)
        # hair, not skin: a pale bald crown is as grey as white hair under a bright light but as smooth as the face
        # (given a young colour, it was painted a dark band across the top of the head)
        rough = roughness(pixels, self.face_width) - self.skin_roughness
        strands = np.clip((rough - ROUGHER[0]) / (ROUGHER[1] - ROUGHER[0]), 0.0, 1.0)
        change = values * (ratio - 1.0) * (share * grey * strands)[..., None]
        return np.round(change).astype(np.int16)

    def full_change(self, pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """(h, w, 3) int16: what fully greying the hair adds to the photo's `pixels` over the photo box `box` (in bands
        of rows but for the hairline's share: a 12 MP photo's whole hair box in float32 held 350 MB at once)."""
        x0, y0, x1, y1 = box
        bands = row_bands(y1 - y0, x1 - x0)
        brightness = channel_mean(pixels)
        hair = np.empty(brightness.shape, np.float32)  # the local hair brightness (fields' channel 3)
        for top, bottom in bands:
            hair[top:bottom] = self.fields_at(x0, y0 + top, x1, y0 + bottom)[..., 3]
        share = held_share(self._inside(self.share, box), brightness, hair, self.face_width)
        order, strandness, drawn, drawn_order = self._strands_at(pixels, box)
        out = np.empty((*brightness.shape, 3), np.int16)
        for top, bottom in bands:
            fields = self.fields_at(x0, y0 + top, x1, y0 + bottom)
            rows = slice(top, bottom)
            out[rows] = grey_change(
                fields,
                pixels[rows],
                brightness[rows],
                share[rows],
                order[rows],
                strandness[rows],
                drawn,
                drawn_order[rows] if drawn_order is not None else None,
            )
        return out

    def fields_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The grid `fields` at the photo pixels of the box (x0, y0, x1, y1)."""
        return read_grid(self.fields, self.box, (x0, y0, x1, y1))

    def hair_on(self, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
        """The hair share on another grid (`shape`, spanning the photo box `box`): where the face's skin changes
        must not reach (a detail gain meant for skin, on the hairline's dark-to-skin edge, drew a band there)."""
        return resample_grid(self.hair, self.box, box, shape)

    def apart_on(self, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray | None:
        """:attr:`apart` on another grid (`shape`, spanning the photo box `box`; 1 outside the layer's box): where
        this face's motion may reach (None: everywhere)."""
        if self.apart is None:
            return None
        return 1.0 - resample_grid(1.0 - self.apart, self.box, box, shape)

    def person_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The `person` weight at the photo pixels of the box (x0, y0, x1, y1) where the whole photo's silhouette
        agrees (read at those pixels: the edit ends where the scene's person does), and the face itself where the
        scene misses it (:attr:`face`); 0 outside the layer's box."""
        person = read_grid(self.person, self.box, (x0, y0, x1, y1))
        if self.parsed is not None:  # the parse's outline at the photo's resolution, sharper than the grid's
            person = np.minimum(person, self.parsed.person_at(x0, y0, x1, y1))
        else:
            person *= self.scene.agrees(x0, y0, x1, y1, NOTCH * self.face_width, self.hair_box, self.share)
        if self.wisps is not None:  # loose strands are the person's, outside the parse's outline
            person = np.maximum(person, read_box(self.wisps, self.hair_box, (x0, y0, x1, y1)))
        if self.face is None:
            return person
        return np.maximum(person, read_grid(self.face, self.box, (x0, y0, x1, y1)))

    def person_bytes(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """:meth:`person_at` as uint8 (255 = all this person's) over a box inside the layer's, read once over the
        whole box and then sliced: a slider move pays no resampling for it."""
        bx0, by0, bx1, by1 = self.box
        if self._person is None:
            self._person = np.empty((by1 - by0, bx1 - bx0), np.uint8)  # in bands: a 12 MP photo's held 600 MB
            for top, bottom in row_bands(by1 - by0, bx1 - bx0):
                weight = self.person_at(bx0, by0 + top, bx1, by0 + bottom)
                self._person[top:bottom] = np.round(255.0 * weight)
        return self._person[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]


@functools.lru_cache(maxsize=1)
def _change_thread() -> ThreadPoolExecutor:
    """The thread a photo's full hair changes are made on ahead of their first use (:meth:`HairLayer.start_changes`):
    one, apart from the cores' row bands, whose jobs never wait on it."""
    return ThreadPoolExecutor(1, thread_name_prefix="ganime-hair")


def hair_layer(
    rgb: np.ndarray,
    points: np.ndarray,
    face_mask: np.ndarray,
    mask_box: tuple[int, int, int, int],
    level: float,
    skin: float,
    segment: Segmenter,
    others: Sequence[np.ndarray] = (),
    young: np.ndarray | None = None,
    parsed: HeadParse | None = None,
) -> HairLayer:
    """The person and hair of the face with landmarks `points` (photo pixels) in `rgb`.

    `face_mask` is the face's soft mask on the engine grid over the photo box `mask_box`; `level` grey hair's
    fitted brightness relative to the `skin` brightness, `young` young hair's colour (R, G, B) relative to it
    (None: grey hair never regains colour); `others` the other faces' landmarks in the photo; `parsed` the face
    parser's view of this face: where given, the person and its hair are what it names (with the segmenter's say
    on its hair like the wall, :mod:`.parsing`)."""
    height, width = rgb.shape[:2]
    face_width = max(float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2])), 8.0)
    centre_x = float(points[:NUM_MESH_VERTICES, 0].mean())
    half, above, below = (v * face_width for v in PERSON_BOX)
    x0, x1 = max(int(centre_x - half), 0), min(int(np.ceil(centre_x + half)) + 1, width)
    y0 = max(int(points[FOREHEAD_TOP, 1] - above), 0)
    y1 = min(int(np.ceil(points[CHIN, 1] + below)) + 1, height)
    mx0, my0, mx1, my1 = mask_box  # the engine's own box lies inside (its margin is smaller)
    x0, y0, x1, y1 = min(x0, mx0), min(y0, my0), max(x1, mx1), max(y1, my1)
    scale = min(1.0, HAIR_GRID_FACE / face_width)
    grid_w, grid_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
    roi = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    grid = cv2.resize(roi, (grid_w, grid_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else roi
    sx, sy = grid_w / (x1 - x0), grid_h / (y1 - y0)

    def to_grid(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - x0 + 0.5) * sx - 0.5, (p[:, 1] - y0 + 0.5) * sy - 0.5], axis=1)

    scene = None
    if parsed is not None:
        agreed = parsed.on_grid("person", (x0, y0, x1, y1), (grid_h, grid_w))
        person = agreed.copy()
    else:
        silhouette = cv2.resize(segment(roi), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
        person = np.clip((silhouette - 0.15) / 0.3, 0.0, 1.0).astype(np.float32)  # faint doubts (a wall): none
        scene = scene_silhouette(rgb, segment)
        box = (x0, y0, x1, y1)
        agreed = agreement(resample_grid(scene.silhouette, (0, 0, width, height), box, (grid_h, grid_w)))
        person *= agreed
    face = resample_grid(face_mask, mask_box, (x0, y0, x1, y1), (grid_h, grid_w))
    person = np.maximum(person, face)
    width_grid = face_width * sx
    others_mask = np.zeros((grid_h, grid_w), np.uint8)
    for other in others:
        hull = cv2.convexHull(to_grid(np.asarray(other, np.float64)[:NUM_MESH_VERTICES]).astype(np.float32))
        cv2.fillConvexPoly(others_mask, np.round(hull).astype(np.int32), 1)
    apart = None
    if others_mask.any():
        grow = max(1, round(OTHER_FACE_GROW * width_grid))
        others_mask = cv2.dilate(others_mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        apart = cv2.GaussianBlur(1.0 - others_mask.astype(np.float32), (0, 0), max(grow / 2.0, 0.5))
        person *= apart
    # the light is read from what is no one (the background), before the group is split
    seen = person if parsed is None else parsed.on_grid("anyone", (x0, y0, x1, y1), (grid_h, grid_w))
    side = own_side(points, others, to_grid, (grid_h, grid_w))  # the group's silhouette split among its faces
    if side is not None:
        person = person * side
        apart = side if apart is None else apart * side
    layer = HairLayer(
        (x0, y0, x1, y1),
        (grid_h, grid_w),
        person,
        scene,
        np.zeros_like(person),
        apart=apart,
        face_width=face_width,
        face=unseen_face(face, agreed, apart),
        parsed=parsed,
    )
    local = to_grid(np.asarray(points, np.float64))
    window = head_window(local, (grid_h, grid_w), width_grid)
    brow_row = float(local[list(BROW_TOPS), 1].min())
    rows = np.arange(grid_h, dtype=np.float32)[:, None]
    # the face's features are never hair (brows, eyes, a beard), but well above the brows the colour alone tells
    # hair from forehead (a fringe inside the face's mask stayed brown), and the parser's down to above the eyes
    floor = (
        brow_row - FRINGE_FREE * width_grid
        if parsed is None
        else (fringe_floor(points, face_width) - y0 + 0.5) * sy - 0.5
    )
    above = np.clip((floor - rows) / max(0.05 * width_grid, 1.0), 0.0, 1.0)
    not_face = window * (1.0 - np.clip(2.0 * cv2.GaussianBlur(face, (0, 0), 2.0), 0.0, 1.0) * (1.0 - above))
    region = person * not_face
    lab = colour.lab_of(grid)
    inside = face > 0.5
    if inside.sum() < MIN_HAIR_SEEDS:
        return layer
    skin_model = colour.skin_model(lab[inside])
    energy = cv2.resize(log_energy(roi, face_width), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    layer.skin_roughness = float(np.median(energy[inside]))
    away = lab - skin_model[0]
    distance = np.sqrt((away**2).sum(axis=2))
    # surely hair by colour: darker than the skin, or another hue; skin's own colour, only lighter, is lit skin
    # (a lit forehead above the mesh, 30 L over the skin's mean, was taken for hair)
    unlike = np.sqrt(np.minimum(away[..., 0], 0.0) ** 2 + away[..., 1] ** 2 + away[..., 2] ** 2)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    skin_chroma = float(np.hypot(*skin_model[0][1:]))
    paler = chroma < min(GREY_SEED_CHROMA * skin_chroma, skin_chroma - GREY_SEED_LACK)
    greyer = paler & (distance > GREY_SEED_DISTANCE)
    seeds = (region > 0.8) & (rows < brow_row) & ((unlike > SEED_DISTANCE) | greyer) & (face < 0.5)
    parsed_hair = None
    if parsed is not None:  # hair is what the parser calls this face's hair; its colour says how much
        parsed_hair = parsed.on_grid("hair", (x0, y0, x1, y1), (grid_h, grid_w))
        seeds &= parsed_hair > 0.5
    parsed_enough = parsed_hair is not None and int((parsed_hair > 0.5).sum()) >= MIN_HAIR_SEEDS
    if seeds.sum() < MIN_HAIR_SEEDS and not parsed_enough:
        return layer  # bald, hair as pale as the skin, or no hair in view: hair is left alone
    hair_model = colour.gaussian(lab[seeds]) if seeds.sum() >= MIN_HAIR_SEEDS else None
    if parsed_hair is None:
        # hair by its colour in the segmenter's notches (beside a jaw) is the person's: left out, it stayed brown
        notch = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, round(NOTCH * width_grid)) + 1,) * 2)
        filled = cv2.morphologyEx(person, cv2.MORPH_CLOSE, notch) * (apart if apart is not None else np.float32(1.0))
        region = filled * not_face
        share = connected_below(colour.hair_share(lab, skin_model, hair_model) * region, float(local[MOUTH_CENTRE, 1]))
    else:  # the parser's hair is hair whatever its colour: blonde highlights like the skin's stayed out, a patchwork
        region = share = person * not_face * parsed_hair
    layer.person = np.maximum(person, share).astype(np.float32)
    light = head_light(grid, seen, lab_to_rgb(skin_model[0]), eye_whites(rgb, points))
    fields = grey_fields(grid, share, light * np.float32(level * skin), width_grid)
    layer.light = light
    # a photo without colour (black and white) tells grey hair from skin by nothing: no colour is given back
    if young is not None and np.any(young) and float(np.hypot(*skin_model[0][1:])) >= MIN_SKIN_CHROMA:
        layer.young = (np.asarray(young, np.float32) * np.float32(skin) * light).astype(np.float32)
    hair_rows, hair_cols = np.nonzero(share > 0.02)
    if len(hair_rows) == 0:
        return layer
    # the hair's box at the photo's resolution (one grid pixel of slack), and each pixel's share there
    px0 = max(int((hair_cols.min() - 1 + 0.5) / sx - 0.5) + x0, x0)
    py0 = max(int((hair_rows.min() - 1 + 0.5) / sy - 0.5) + y0, y0)
    px1 = min(int(np.ceil((hair_cols.max() + 2 + 0.5) / sx - 0.5)) + x0 + 1, x1)
    py1 = min(int(np.ceil((hair_rows.max() + 2 + 0.5) / sy - 0.5)) + y0 + 1, y1)
    layer.hair, layer.fields = share.astype(np.float32), fields
    weight = read_grid(region, layer.box, (px0, py0, px1, py1))  # the region at the photo's resolution
    if parsed is not None:
        weight = np.minimum(weight, parsed.hair_at(px0, py0, px1, py1))
    fine = weight if parsed is not None else np.empty(weight.shape, np.float32)
    for top, bottom in row_bands(py1 - py0, px1 - px0) if parsed is None else ():
        # pixel by pixel, in bands: Lab floats of a 12 MP photo's hair are 44 MB
        lab = colour.lab_of(rgb[py0 + top : py0 + bottom, px0:px1])
        fine[top:bottom] = (
            np.clip(colour.hair_share(lab, skin_model, hair_model) / SURE_SHARE, 0.0, 1.0) * weight[top:bottom]
        )
    layer.hair_box = (px0, py0, px1, py1)
    down = points[CHIN, :2] - points[FOREHEAD_TOP, :2]  # the face's own down, however the head rolls
    origin = points[CHIN, :2] + COMB_ORIGIN * face_width * down / max(float(np.linalg.norm(down)), 1e-6)
    layer.comb_origin = (float(origin[0]), float(origin[1]))
    layer.share = np.round(255.0 * np.clip(fine, 0.0, 1.0)).astype(np.uint8)
    if parsed is not None:  # the strands too thin for the parser (:mod:`.wisps`)
        add_wisps(layer, rgb, points)
    return layer
