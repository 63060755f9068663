"""Real faces of the target age, matched to the person: what makes a child read as a child (and a grown face as
grown) that no average and no warp can make.

Averages wash out what makes an age visible (Burt & Perrett 1995; Tiddeman, Burt & Perrett 2001), and a child is
a child's features, not an adult's features on a child's proportions. So an edit into or out of childhood, or
across decades, takes the appearance of a few real people of the target age who look most like the person (sex,
skin tone, mouth open or closed, smiling or not), each seen in the engine's shape-normalised template with its
colour taken relative to its own skin, and adds their difference from the person in **the photo's own light**:
only the difference's features (brows, eyes, nose, lips, folds, skin texture) are taken; its large-scale part
(tone, shading, the colour cast of the light) is removed, so the face keeps the photo's light and the person's
colouring, and nothing reads as a mask. Where an exemplar shows no skin (a fringe, hair over a cheek, glasses) it
is left out of the mean there. Made younger, a face's own creases that the younger faces lack (a fold, a line,
where they are brighter, or where too few show skin to say) are replaced by the skin around them rather than only
brightened: no brightening of an old face's deep crease removes it, and a crease lifted in brightness alone kept
its low colour as a grey line.

:class:`AgeExemplars` is the bank (a Hub model: the faces as JPEG bytes in ``model.safetensors``, their ages and
descriptors), fitted by ``training/fit_engine.py exemplars`` from UTKFace's training split; :class:`ExemplarMatch`
is one face's matches, made once per photo and kept per target age.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from ganime_age.config import bounded
from ganime_age.engine.config import FOLD_SCALE, LARGE_SCALE, LOG_EPSILON
from ganime_age.engine.descriptors import DESCRIPTOR, descriptor_distance
from ganime_age.engine.frames import Template, template_blur
from ganime_age.engine.frames import turn_share as yaw_share
from ganime_age.engine.skin_average import skin_mean, skin_weights
from ganime_age.errors import ConfigError
from ganime_age.faces.topology import BROW_TOPS
from ganime_age.hub import HubModel

CHILDHOOD_END = 20.0  # an edit takes exemplars where one of its two ages is below this, fully below CHILDHOOD_FULL
CHILDHOOD_FULL = 8.0
GAP_FULL = 10.0  # years between the two ages at which the exemplars' share is whole
# years between a grown age and a child's from which an edit to the child takes more of the children's features than
# `share`, and all of them: an old face made a child keeps less of itself than a young adult's does (FG-NET: the
# longer the span, the less often one person's photos are verified), and its own features at 0.8 read 14 (real 5s: 7)
LIFETIME = (40.0, 70.0)
SPAN_FROM, SPAN_FULL = 20.0, 40.0  # between grown ages: years of change where their share begins, and is whole
COLOUR_SCALE = 4.0  # template pixels: colour changes no finer than this (fine colour would print as speckles)
COLOUR_LIMIT = 0.1  # the most a channel's log change may differ from the others' mean (dark skin's blue channel
# is a few grey levels, so its log ratio against a lighter exemplar printed yellow blobs)
SKIN_DARKEST = -0.3  # the darkest log change a pixel of skin takes (outside the eyes, brows and lips): an exemplar's
# smile fold a little off the person's printed a dark line like a pen stroke beside the person's own
LIMIT = (-0.7, 0.3)  # the log change a pixel takes, darkest and brightest (a smile's folds filled by a neutral
# face's flat cheek glowed; dark nostrils against a lit exemplar printed speckles)
BRIGHT_HUE = 0.3  # log brightening at which a pixel's colour has moved wholly to its skin's around it
# log brightening (of skin, after the light is taken out) from which a pixel is replaced by the skin around it, and
# at which it is wholly: an old face's crease or fold is darker than a young face's skin there by more than any
# brightening may lift it (LIMIT), and a crease lifted in brightness alone kept its low colour as a grey line
FILL = (0.1, 0.35)
# log depth of a face's own crease below the skin around it (FOLD_SCALE) from which it is a line, and a whole one:
# where the matched younger faces show no skin (their fringes over the forehead) a face made younger loses these
CREASE = (0.03, 0.12)
SOLID_DEPTH = 0.35  # log depth below the skin around it beyond which a dark thing near the eyes is no crease
# log height of a face's highlight above the skin around it (FOLD_SCALE, or the light's scale: a sunlit patch is
# wider than a fold) from which a darkened pixel takes the colour of the skin around it and is replaced by it (as a
# brightened crease is: FILL), and wholly: a blown highlight has no colour left, and darkened to the evenly lit young
# faces' level it turned a grey-blue patch on a side-lit dark-skinned face (its lit cheek, measured at the fold's
# scale alone, stayed a pale grey-beige)
SHINE = (0.1, 0.25)
GLASSES_REACH = 14  # template pixels around the eyes where glasses' frames are looked for
CREASE_LACK = 0.05  # log brightening towards the matched faces at which they lack a crease of the face's wholly
# sets of a person's own faces a face keeps levelled, the least recently used dropped (the bank's strangers, other
# faces at each age, are levelled anew: 4 kept sets of 8 were 20 MB a face, and a crowd holds dozens of faces): the
# own set and its nearest face's, and where some wear glasses the set without them and its nearest (.own_photos):
# with 2 kept, a slider move with FG-NET 029's photos (one in glasses) levelled two sets anew (116 ms against 90)
LEVELLED_KEPT = 4
EDGE_PIXELS = 8  # template pixels inside the face's outline where the exemplars' features begin
SURE_SEX = (0.2, 0.8)  # how likely a face is a woman's below which its matches are all men, above which all women
# a face's finest detail (0.7-1.4 template pixels) over its coarser (2.8-5.6) at its eyes, brows and lips, below which
# it is a blurred photo (a bank's 5th percentile; sharp faces 0.3-0.6): averaged in, one printed a smear over the brows
SHARP_FLOOR = 0.27
TURN_FULL, TURN_NONE = 15.0, 40.0  # degrees of yaw: the exemplars' share is whole below the first, none past it


@dataclass
class AgeExemplarsConfig:
    """The bank's size and the template it is drawn in (the engine's: checked when a face is matched)."""

    count: int = bounded(0, 0, 100_000)  # faces in the bank
    encoded_bytes: int = bounded(0, 0, 1 << 28)  # their JPEG bytes, all together (256 MB at most)
    stored_size: int = bounded(128, 16, 512)  # each face's side as stored (the template view, resized)
    template_size: int = bounded(200, 32, 512)
    template_scale: float = bounded(10.0, 2.0, 30.0)
    template_centre: tuple[float, float] = bounded((100.0, 90.6), 0.0, 512.0)
    neighbours: int = bounded(8, 1, 64)  # faces averaged for one target age
    share: float = bounded(0.8, 0.0, 1.0)  # the most of their features' difference an edit into childhood takes
    grown_share: float = bounded(0.5, 0.0, 1.0)  # and one across decades of grown ages (identity holds more there)
    # and one across decades to a younger grown age: an old face's lines, spots and sagged folds, which scaling its
    # own detail cannot remove, go only with the young faces' skin (old people made 25 read 10 years too old at 0.5)
    younger_share: float = bounded(0.8, 0.0, 1.0)
    age_window: float = bounded(1.5, 0.5, 20.0)  # years around the target age (wider where the bank is sparse)
    # face widths: the scale above which the matched faces' difference is the photo's light, not their features
    light_scale: float = bounded(LARGE_SCALE, 0.02, 0.5)
    image_size: int = bounded(128, 16, 1024)  # HubModel's convention (unused: the bank makes no crops)
    # the bank holds each face's sharpness (:func:`view_sharpness`), measured once when it was drawn: measured at a
    # process's first match at a new target age, a window's hundred faces cost 0.16 s of a 1 MP photo's edit
    measured_sharpness: bool = False


class AgeExemplars(HubModel):
    """A bank of real faces in the engine's template, with their ages and what they are matched by."""

    model_type = "age_exemplars"
    role: ClassVar[str] = "exemplars"
    config_class = AgeExemplarsConfig
    card_pipeline_tag = "image-to-image"
    description = (
        "Real faces of every age in the fitted engine's shape-normalised template (JPEG bytes), which an edit into "
        "or out of childhood, or across decades, matches to the person and takes the features of, in the photo's "
        "own light."
    )

    def __init__(self, config: AgeExemplarsConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.register_buffer("encoded", torch.zeros(c.encoded_bytes, dtype=torch.uint8))
        self.register_buffer("offsets", torch.zeros(c.count + 1, dtype=torch.int64))
        self.register_buffer("ages", torch.zeros(c.count))
        self.register_buffer("descriptors", torch.zeros(c.count, DESCRIPTOR))
        if c.measured_sharpness:
            self.register_buffer("sharpness", torch.zeros(c.count))
        self._decoded: dict[int, np.ndarray] = {}
        self._sharpness: dict[int, float] = {}

    @classmethod
    def from_faces(
        cls, views: list[np.ndarray], ages: np.ndarray, descriptors: np.ndarray, config: AgeExemplarsConfig
    ) -> AgeExemplars:
        """A bank from uint8 RGB template views (any size: stored at ``stored_size``), JPEG quality 92."""
        encoded = []
        for view in views:
            small = cv2.resize(view, (config.stored_size,) * 2, interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise ValueError("a view could not be encoded")
            encoded.append(data.reshape(-1))
        config.count, config.encoded_bytes = len(encoded), int(sum(len(e) for e in encoded))
        config.measured_sharpness = False  # new faces: :meth:`with_sharpness` measures them
        bank = cls(config)
        with torch.no_grad():
            bank.encoded.copy_(torch.from_numpy(np.concatenate(encoded) if encoded else np.zeros(0, np.uint8)))
            bank.offsets.copy_(torch.from_numpy(np.cumsum([0, *[len(e) for e in encoded]])))
            bank.ages.copy_(torch.as_tensor(ages, dtype=torch.float32))
            bank.descriptors.copy_(torch.as_tensor(descriptors, dtype=torch.float32))
        return bank

    def with_sharpness(self, template: Template) -> AgeExemplars:
        """This bank holding each face's sharpness (:func:`view_sharpness` in the engine's `template`), so that no
        edit measures it."""
        measured = [view_sharpness(template, self._decode(index)) for index in range(self.config.count)]
        bank = type(self)(replace(self.config, measured_sharpness=True))
        bank.load_state_dict({**self.state_dict(), "sharpness": torch.as_tensor(measured, dtype=torch.float32)})
        return bank

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._decoded, self._sharpness = {}, {}
        super()._load_from_state_dict(*args, **kwargs)

    def log_view(self, index: int) -> np.ndarray:
        """(R, R, 3) float32 log intensity of face `index` in the engine's template (kept while recently used)."""
        view = self._decoded.pop(index, None)  # the dict's order: the least recently used first
        self._decoded[index] = view = self._decode(index) if view is None else view
        if len(self._decoded) > 8 * self.config.neighbours:  # eight targets' matches (all 1,014 faces were 490 MB)
            del self._decoded[next(iter(self._decoded))]
        return view

    def _decode(self, index: int) -> np.ndarray:
        start, end = (int(v) for v in self.offsets[index : index + 2])
        bgr = cv2.imdecode(self.encoded[start:end].numpy(), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ConfigError(f"exemplar {index} of the bank is not a readable JPEG")
        size = self.config.template_size
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_CUBIC)
        return np.log(rgb.astype(np.float32) * (1.0 / 255.0) + LOG_EPSILON)

    def sharp(self, indices: np.ndarray, template: Template) -> np.ndarray:
        """Which of the faces `indices` are sharp photos (:func:`view_sharpness` at least SHARP_FLOOR); measured
        once per face, without keeping the views (a window of children is a hundred of them), where the bank does
        not hold it."""
        if self.config.measured_sharpness:
            return self.sharpness.numpy()[np.asarray(indices, np.int64)] >= SHARP_FLOOR
        for index in (int(i) for i in indices):
            if index not in self._sharpness:
                view = self._decoded.get(index)
                self._sharpness[index] = view_sharpness(template, view if view is not None else self._decode(index))
        return np.array([self._sharpness[int(i)] >= SHARP_FLOOR for i in indices], bool)

    def check_template(self, template: Template, scale: float, centre: tuple[float, float]) -> None:
        c = self.config
        same = c.template_size == template.size and math.isclose(c.template_scale, scale)
        if not same or not np.allclose(c.template_centre, centre):
            raise ConfigError(
                "the age exemplars were drawn in another template than the engine's "
                f"({c.template_size} px at {c.template_scale} px/cm vs {template.size} px at {scale} px/cm)"
            )

    def nearest(self, descriptor: np.ndarray, age: float, template: Template | None = None) -> np.ndarray:
        """The indices of the faces of about `age` (the window widened until there are three times as many as
        are averaged) that look most like a face with this descriptor; with the `template`, sharp photos only."""
        c = self.config
        ages = self.ages.numpy()
        window = max(c.age_window, 0.08 * age)

        def within(window: float) -> np.ndarray:
            found = np.flatnonzero(np.abs(ages - age) <= window)
            return found if template is None else found[self.sharp(found, template)]

        candidates = within(window)
        while len(candidates) < 3 * c.neighbours and window < 60.0:
            window *= 1.5
            candidates = within(window)
        if not len(candidates):
            return candidates
        bank = self.descriptors.numpy()[candidates]
        distance = descriptor_distance(bank, descriptor)
        unsure = (float(descriptor[5]) - SURE_SEX[0]) / (SURE_SEX[1] - SURE_SEX[0])
        if 0.0 < unsure < 1.0 and age >= CHILDHOOD_END:
            # a face whose sex the readings are unsure of takes grown faces of both sexes, in proportion (all of one
            # sex, a woman read as a little more likely a man was given men's brows and a moustache's shadow; a
            # child's face is less a sex's, and children of both read older than children of one)
            women = round(unsure * c.neighbours)
            order = np.argsort(descriptor_distance(bank, descriptor, sex_weight=0.0), kind="stable")
            is_woman = bank[order, 5] > 0.5
            picked = np.concatenate([order[is_woman][:women], order[~is_woman][: c.neighbours - women]])
            if len(picked) == c.neighbours:
                return candidates[picked]
        return candidates[np.argsort(distance, kind="stable")[: c.neighbours]]


def exemplar_share(
    source_age: float, target_age: float, child: float = 1.0, grown: float = 1.0, younger_grown: float | None = None
) -> float:
    """How much of the exemplars' difference an edit from `source_age` to `target_age` takes: `child` for a change
    of GAP_FULL years or more whose younger end is a child's (made younger, growing to all of it over a LIFETIME);
    between grown ages, growing from SPAN_FROM years of change to `grown` at SPAN_FULL for a face made older,
    `younger_grown` (default `grown`) for one made younger; none for smaller changes, which the fitted tables
    carry."""
    if target_age < source_age and younger_grown is not None:
        grown = younger_grown
    younger, span = min(source_age, target_age), abs(target_age - source_age)
    young = np.clip((CHILDHOOD_END - younger) / (CHILDHOOD_END - CHILDHOOD_FULL), 0.0, 1.0)
    if target_age < source_age:  # (a child made old took more and read older than real old faces on FG-NET)
        child += (1.0 - child) * np.clip((span - LIFETIME[0]) / (LIFETIME[1] - LIFETIME[0]), 0.0, 1.0)
    decades = np.clip((span - SPAN_FROM) / (SPAN_FULL - SPAN_FROM), 0.0, 1.0)
    return float(max(child * young * np.clip(span / GAP_FULL, 0.0, 1.0), grown * decades))


@dataclass
class ExemplarMatch:
    """One face's exemplars: its log template view and descriptor, and per target age the features' change."""

    bank: AgeExemplars
    template: Template
    person: np.ndarray  # (R, R, 3) log template view of the face
    descriptor: np.ndarray
    share: float = 1.0  # of the bank's share, for this face (a turned face takes less: :func:`turn_share`)
    facial_hair: np.ndarray | None = None  # (R, R) the face's beard and moustache share in the template (.beard)
    changes: dict[float, tuple[np.ndarray, ...]] = field(default_factory=dict, repr=False)
    # the last LEVELLED_KEPT sets of own faces levelled onto the person's skin, with their skin weights
    levelled: dict[tuple, tuple[list, list]] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def weight(self) -> np.ndarray:
        """(R, R) where the matched faces' features are taken (:func:`features_weight`), never on a beard or a
        moustache: their skin is not there to take a young face's (brightened, a moustache printed a white smear;
        made a child, the beard is lifted in the photo, :mod:`.beard`, and their change on top printed a glow)."""
        return self._without_facial_hair(features_weight(self.template))

    @functools.cached_property
    def fill_weight(self) -> np.ndarray:
        """(R, R) where a crease may be replaced by the skin around it: as :attr:`weight`, and up the forehead to
        the hairline (a fringe is darker than skin, so it fills nothing; hair inside the face is masked later)."""
        return self._without_facial_hair(features_weight(self.template, forehead=False))

    def _without_facial_hair(self, weight: np.ndarray) -> np.ndarray:
        if self.facial_hair is not None:
            weight = weight * (1.0 - np.clip(self.facial_hair, 0.0, 1.0))
        return weight

    def share_for(self, source_age: float, target_age: float) -> float:
        """How much of the change towards `target_age` an edit from `source_age` takes (:func:`exemplar_share`,
        the bank's shares, this face's turn)."""
        c = self.bank.config
        return self.share * exemplar_share(source_age, target_age, c.share, c.grown_share, c.younger_share)

    @functools.cached_property
    def creases(self) -> np.ndarray:
        """(R, R) 0..1 the face's own lines: skin darker than the skin around it (forehead lines, crow's feet, folds),
        never the eyes, brows, lips or nostrils, whose dark is theirs at any age."""
        regions = self.template.regions
        depth = crease_depth(self.template, self.person)
        lines = np.clip((depth - CREASE[0]) / (CREASE[1] - CREASE[0]), 0.0, 1.0) * not_skin_deep(self.template, depth)
        keep = np.maximum.reduce([regions[k] for k in ("eyes_wide", "brows", "lips", "mouth", "nostrils")])
        return (cv2.GaussianBlur(lines, (0, 0), 1.0) * (1.0 - keep) * self.fill_weight).astype(np.float32)

    def change(self, target_age: float) -> tuple[np.ndarray, ...] | None:
        """(smooth (R, R, 3), fine (R, R), fill (R, R), unseen creases (R, R)) change towards the matched faces of
        `target_age`, in the photo's light, before the edit's share (:func:`features_change`); the last is the
        face's :attr:`creases` where too few of the matched faces show skin to say (what a younger edit also
        fills); None where the bank has no face of about that age."""
        key = round(float(target_age), 1)
        if key not in self.changes:
            matched = self.matched_view(key)
            if matched is None:
                return None
            self.changes.clear()  # one target at a time: a slider's next move rarely returns
            exemplar, confidence = matched
            smooth, fine, fill = features_change(self.template, self.person, exemplar, self.bank.config.light_scale)
            # the face's own lines where the young faces are brighter (they have none there), or show no skin
            difference = (exemplar - self.person).mean(axis=2, keepdims=True)
            difference -= template_blur(self.template, difference, self.bank.config.light_scale)
            lacking = np.clip(difference[..., 0] / CREASE_LACK, 0.0, 1.0)
            unseen = np.maximum(1.0 - confidence, lacking) * self.creases
            self.changes[key] = (smooth * self.weight[..., None], fine * self.weight, fill * self.fill_weight, unseen)
        return self.changes[key]

    def plain_change(self, target_age: float, source_age: float) -> tuple[float, np.ndarray] | None:
        """A person's own faces put in plainly (:meth:`.own_photos.PersonalMatch.plain_change`): none here."""
        return None

    def growth_kept(self, target_age: float) -> float:
        """How much of the head's fitted growth an edit takes (:meth:`.own_photos.PersonalMatch.growth_kept`): all."""
        return 1.0

    def matched_view(self, target_age: float) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`levelled_mean` of the bank's faces matched at `target_age` (None: none of about that age): the
        one step a match of a person's own faces (:mod:`.own_photos`) replaces."""
        picked = self.bank.nearest(self.descriptor, target_age, self.template)
        return self.levelled_mean(self.bank, picked) if len(picked) else None

    def levelled_mean(self, bank: AgeExemplars, picked: np.ndarray, weights: np.ndarray | None = None) -> Any:
        """((R, R, 3) the faces `picked` of `bank` averaged on the person's skin tone
        (:func:`.skin_average.skin_mean`, each counted by its `weights`), the person's own pixels where too few show
        skin; (R, R) how sure it is)."""
        key = (id(bank), tuple(int(i) for i in picked))
        kept = self.levelled.pop(key, None)
        if kept is None:
            views = [bank.log_view(int(i)) for i in picked]
            tones = bank.descriptors.numpy()[picked, :3]
            # each face's colour is taken relative to its own skin, on the person's skin: its light's cast goes
            levelled = [view - tone + self.descriptor[:3] for view, tone in zip(views, tones, strict=True)]
            kept = (levelled, skin_weights(self.template, levelled))
        if bank is not self.bank:  # a person's own faces, the same at every age of a slider: kept (a few MB)
            while len(self.levelled) >= LEVELLED_KEPT:  # the least recently used goes
                self.levelled.pop(next(iter(self.levelled)))
            self.levelled[key] = kept
        levelled, likeness = kept
        mean, confidence = skin_mean(self.template, levelled, weights, likeness)
        return confidence[..., None] * mean + (1.0 - confidence[..., None]) * self.person, confidence


def features_weight(template: Template, forehead: bool = True) -> np.ndarray:
    """(R, R) where the exemplars' features are taken: the face well inside its outline (at the outline their
    hair and background would print a dark rim), fading out above the brows (their fringes would print a band
    along the forehead; `forehead` False: not), never inside the lips' gap."""
    inner = cv2.erode(template.raster.mask, np.ones((3, 3), np.uint8), iterations=EDGE_PIXELS)
    inner = cv2.GaussianBlur(inner, (0, 0), EDGE_PIXELS / 2.0)
    if not forehead:
        return (inner * (1.0 - template.regions["mouth"])).astype(np.float32)
    top, brows = template.vertices[:, 1].min(), template.vertices[list(BROW_TOPS), 1].min()
    rows = np.arange(template.size, dtype=np.float32)[:, None]
    forehead = np.clip((rows - top) / max(float(brows - top), 1.0), 0.0, 1.0) ** 2
    return (inner * forehead * (1.0 - template.regions["mouth"])).astype(np.float32)


def crease_depth(template: Template, log_view: np.ndarray) -> np.ndarray:
    """(R, R) how much darker (log) each pixel of a face's template view is than its skin around it (FOLD_SCALE)."""
    grey = log_view.mean(axis=2, keepdims=True)
    return (template_blur(template, grey, FOLD_SCALE) - grey)[..., 0]


def not_skin_deep(template: Template, depth: np.ndarray) -> np.ndarray:
    """(R, R) 0 around the eyes where a face is darker than its skin around it by more than a crease there
    (:data:`SOLID_DEPTH`), and just beside: a glasses' frame, which no younger face's skin replaces (filled, a
    frame's lower rim faded into a ghost of the glasses). (Elsewhere an old face's deepest folds are as dark.)"""
    near_eyes = cv2.dilate(
        (template.regions["eyes_wide"] > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=GLASSES_REACH
    )
    solid = ((depth > SOLID_DEPTH) & (near_eyes > 0)).astype(np.uint8)
    solid = cv2.dilate(solid, np.ones((3, 3), np.uint8), iterations=2).astype(np.float32)
    return (1.0 - cv2.GaussianBlur(solid, (0, 0), 1.0)).astype(np.float32)


def view_sharpness(template: Template, log_view: np.ndarray) -> float:
    """A face's finest detail over its coarser, at its eyes, brows and lips, where every face has edges: a blurred
    photo's fine detail is gone while its features' shading stays (a ratio: a face's contrast cancels)."""
    grey = log_view.mean(axis=2)
    regions = template.regions
    features = np.maximum.reduce([regions["eyes_wide"], regions["brows"], regions["lips"]]) > 0.3
    fine = cv2.GaussianBlur(grey, (0, 0), 0.7) - cv2.GaussianBlur(grey, (0, 0), 1.4)
    coarse = cv2.GaussianBlur(grey, (0, 0), 2.8) - cv2.GaussianBlur(grey, (0, 0), 5.6)
    return float(np.sqrt((fine[features] ** 2).mean() / max(float((coarse[features] ** 2).mean()), 1e-12)))


def turn_share(rotation: np.ndarray) -> float:
    """How much of the exemplars a face turned so far takes: all up to TURN_FULL degrees of yaw, none from
    TURN_NONE (the template view of a turned face is its near side stretched over the far one)."""
    return yaw_share(rotation, TURN_FULL, TURN_NONE)


def bounded_brightness(template: Template, grey: np.ndarray) -> np.ndarray:
    """(R, R, 1) a log brightness change bounded as a pixel may take it: down to SKIN_DARKEST on skin (a matched
    fold a little off the person's printed a pen stroke), to LIMIT[0] on the eyes, brows and lips, up to LIMIT[1]."""
    regions = template.regions
    features = np.maximum.reduce([regions["eyes_wide"], regions["brows"], regions["lips"]])
    return np.clip(grey, SKIN_DARKEST + (LIMIT[0] - SKIN_DARKEST) * features[..., None], LIMIT[1])


def bounded_change(template: Template, grey: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(R, R, 3) a log change made of its brightness `grey` (R, R, 1), bounded (:func:`bounded_brightness`), and
    its `colour` (R, R, 3, each channel less their mean) blurred over COLOUR_SCALE: a fine colour change prints
    speckles, and a matched face's shading is coloured by its own light."""
    return bounded_brightness(template, grey) + cv2.GaussianBlur(colour, (0, 0), COLOUR_SCALE).reshape(colour.shape)


def features_change(
    template: Template, person: np.ndarray, exemplar: np.ndarray, light_scale: float = LARGE_SCALE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exemplar's features over the person's in the person's light: the log difference less its large-scale
    part (tone, shading and the light's cast stay the person's), its colour kept coarse, split into a smooth
    per-channel part and a fine part of brightness alone (a fine colour change prints speckles). Where it
    brightens, the person's colour there moves to its skin's around it: a fold's or a shadow's deeper, saturated
    hue, only brightened, glowed as an orange blotch. Where it brightens skin by more than FILL[0], the third
    part, `fill` (R, R, 0..1), is how much of the pixel the skin around it replaces (:func:`.pixels.repaint_table`):
    an old face's creases are gone in a young face, and no brightening of their own pixels removes them. Nothing
    inside the lips' gap: an open mouth keeps its teeth.
    A darkened highlight is filled the same way (:data:`SHINE`). (An edge-aware light, a guided filter that kept a
    side-lit face's shadow edges as light, also kept the brows', eyes' and folds' edges: adults made 5 read 2-3
    years older.)"""
    difference = exemplar - person
    difference -= template_blur(template, difference, light_scale)
    grey = difference.mean(axis=2, keepdims=True)
    regions = template.regions
    features = np.maximum.reduce([regions["eyes_wide"], regions["brows"], regions["lips"]])
    depth = crease_depth(template, person)
    fill = np.clip((grey[..., 0] - FILL[0]) / (FILL[1] - FILL[0]), 0.0, 1.0)
    # a highlight darkened is replaced as a crease is: a blown one has no colour of its own left to darken
    grey_view = person.mean(axis=2, keepdims=True)
    height = -np.minimum(depth, (template_blur(template, grey_view, light_scale) - grey_view)[..., 0])
    shine = np.clip((height - SHINE[0]) / (SHINE[1] - SHINE[0]), 0.0, 1.0)
    shine *= 1.0 - np.maximum(features, regions["mouth"])  # the eyes' whites and the teeth are white at any age
    fill = np.maximum(fill, shine * np.clip((-grey[..., 0] - FILL[0]) / (FILL[1] - FILL[0]), 0.0, 1.0))
    fill *= 1.0 - np.maximum(features, regions["nostrils"])  # a darker nose's tip or nostril is no crease
    fill *= not_skin_deep(template, depth)
    fill = cv2.GaussianBlur(fill, (0, 0), 1.0)
    colour = np.clip(difference - grey, -COLOUR_LIMIT, COLOUR_LIMIT)  # a dark channel's log ratio runs wild
    hue = person - person.mean(axis=2, keepdims=True)
    to_skin = template_blur(template, hue, light_scale) - hue  # the person's colour around each pixel, less its own
    brighter = np.clip(grey / BRIGHT_HUE, 0.0, 1.0)
    colour = colour + brighter * np.clip(to_skin, -COLOUR_LIMIT, COLOUR_LIMIT)
    darker = shine[..., None] * np.clip(-grey / BRIGHT_HUE, 0.0, 1.0)
    colour = colour * (1.0 - darker) + darker * np.clip(to_skin, -3 * COLOUR_LIMIT, 3 * COLOUR_LIMIT)
    # the brightness is bounded, not each channel: bounded channel by channel, a blown highlight darkened to the
    # bound lost the colour the change gave it (a flat white-blue patch on a sunlit boy's nose, FG-NET 057A12)
    difference = bounded_change(template, grey, colour)
    smooth = cv2.GaussianBlur(difference, (0, 0), 1.2).reshape(difference.shape)
    fine = (difference - smooth).mean(axis=2)
    return smooth.astype(np.float32), fine.astype(np.float32), fill.astype(np.float32)
