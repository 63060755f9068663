"""A person's own photos as the faces an edit across ages takes its features from.

An edit into childhood takes the features of real children matched to the person (:mod:`.exemplars`): a child,
but a generic one. The person's own photos at about the target age carry what no stranger's face does (their
features, skin, hair colour): on FG-NET, an adult photo made a child with two of the person's own photos in place
of the bank came closer to their real photo at that age than the adult photo for 65% of people (the bank's
strangers: 15%), and closer than the general edit for 90% (``shared/DESIGN.md``, "The person's own photos as the
bank").

So a person's own faces are a small :class:`~.exemplars.AgeExemplars` of their own (drawn as the bank's are,
:func:`draw_face`), and :class:`PersonalMatch` is an :class:`~.exemplars.ExemplarMatch` whose matched view is the
own faces' mean, each weighed by how near its age is to the target (in growth, :func:`growth_gaps`) and how frontal
it is, blended over the bank's matched strangers by :func:`own_share`: at its most (OWN_MOST, with the strangers'
finest detail) where an own photo is within OWN_NEAR years of the target, fading to the bank alone at OWN_FAR.
Everything after the matched view (the photo's own light, the skin weights, the creases, the share an edit takes) is
the bank's, unchanged; beyond the ages the own photos cover the edit is the general one, exactly. A black-and-white
own photo gives its light and dark, not its colour (:meth:`PersonalMatch.own_colour`).

Where the own photos cover a grown target (:func:`plain_share`), the edit is the own faces put in plainly
(:meth:`PersonalMatch.plain_change`): their features above the light's scale in place of the photo's, without the
tables or the strangers, their shape whole and the head's growth theirs: a child made their adult age with their
adult photos, or a young adult made older with their older ones. An own photo in glasses gives its face only outside
its glasses (:mod:`.own_glasses`).

The own faces also give the age's landmark shape (:meth:`PersonalMatch.personal_age_change`): each own face's
landmarks, its expression taken out, carried by the fitted change from its age to the target's, is where the
person's features would be at that age; the edit moves part of the way there from the general change (the
proportions of their own child's face, not an average child's).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine import geometry
from ganime_age.engine.descriptors import describe, smile
from ganime_age.engine.exemplars import COLOUR_LIMIT, AgeExemplars, ExemplarMatch, bounded_change
from ganime_age.engine.face import EngineFace
from ganime_age.engine.frames import (
    Template,
    colour_share,
    colourfulness,
    log_image,
    template_blur,
    template_view,
)
from ganime_age.engine.mouth import mouth_gap
from ganime_age.engine.own_glasses import GLASSES_WORN, glasses_band, glasses_view, without_glasses
from ganime_age.engine.parsing import Parser
from ganime_age.engine.tables import EngineTables
from ganime_age.face_model import canonical_face, head_similarity

OWN_NEAR, OWN_FAR = 6.0, 18.0  # years from the target to the nearest own photo: the own faces' share whole, none
OWN_SCALE = 4.0  # years: an own face counts exp(-(gap / OWN_SCALE)^2 / 2) against the others
OWN_LEAST = 0.05  # of the nearest own face's count, below which a farther one is left out
OWN_COUNT = 4  # own faces averaged at most (the nearest in age)
# an own photo is often an old print: blurred, grainy, lit hard from one side. Taken whole, its blur and its
# shadows became the edit's (smeared eyes, a dark cheek; on FG-NET, edits to a child's age read 10.6 and 15.8 years
# off on the two age networks, the general edit's 5.0 and 7.4): the own faces give the features' shapes and tones
# down to OWN_DETAIL face widths, the bank's sharp strangers the finer detail, and the strangers keep a part of the
# whole (1 - OWN_MOST): on all 35 people the errors came to 7.0 and 8.3, the personal edits' distance to the real
# photo rising from 0.547 to 0.568 (the general edit's: 0.581): finer own detail, closer and older (JOURNAL)
OWN_DETAIL = 0.03
OWN_MOST = 0.7
# a grown face's own detail is the person's (brows, lashes, skin), a child's scan's is mostly grain: from a target of
# OWN_FINE_AGES[0] years (none finer up to it, the children's rows as they were) to OWN_FINE_AGES[1], the own faces
# give their detail down to OWN_FINE face widths. On FG-NET's 33 adults made their real teen photo's age (all own
# photos), 0.03 / 0.015 / 0.01: 0.539 / 0.530 / 0.526 from the real photo, closer than the general edit 79 / 85 / 91%,
# reading as near the real photo's age; made a child, 0.015 read 0.9 years further from the real photo's age on the
# shipped estimator than 0.03 (JOURNAL)
OWN_FINE = 0.01
OWN_FINE_AGES = (10.0, 14.0)
EYE_SOFTNESS = 1.0  # template pixels: the eyes' openings' edge, softened (:func:`eye_openings`)
EYES_KEPT_AGES = (10.0, 16.0)  # a photo's age from which its eyes' openings are kept, and wholly (:func:`eyes_kept`)
# the most of the way from the general landmark change to the own faces' shape an edit goes. On FG-NET's 35 adults
# made their own childhood age (3-10), with 1 / 3 / all own photos, the edits closer to the real photo than the
# adult photo itself were 80 / 77 / 77% of people at 0, 86 / 80 / 83% at 0.4, 89-91% from 0.55, and closer than the
# general edit 71 / 83 / 77% at 0, 83% each at 0.4, 66% each at 1: landmarks read on old scans are noisy (JOURNAL)
OWN_SHAPE_MOST = 0.4
# cm: where the photo's expression moves a landmark by this much (its AUs' fitted motion), the own shape there counts
# exp(-1) (and less the more it moves); the photo's neutral shape is a guess there. FG-NET 082A31 laughing, made 16:
# the own shape widened his smile (0.49 from his real photo at 16 for the general edit, 0.57 for the personal one)
OWN_SHAPE_EXPRESSION = 0.8
# a gap in age weighs as its years or, where more, as many years at OWN_PACE_AGE as its growth (its log(age + 1)):
# made 6, an own face at 3 is farther than one at 9 (a child's face changes most in its first years). It picks which
# own faces an edit takes most from, not how much (:func:`own_share` keeps years). On FG-NET's 35 adults made their
# own childhood age with 3 / all own photos, closer than the general edit: years 77 / 80%, growth 89 / 89%; closer
# than the adult photo 86 / 86%, 89 / 89%. With 1 own photo (no choice to make) and made a teen: the same (JOURNAL)
OWN_PACE_AGE = 8.0
# a grown target's own faces put in plainly (:func:`plain_share`), none for a target of OWN_PLAIN_AGES[0] years, whole
# from OWN_PLAIN_AGES[1]: a grown face is the person's own, a child's scan mostly grain. On FG-NET's 35 children made
# their real adult photo's age with their other adult photos, the edits closer to the real photo than the child photo
# were 40% as the rest of this module makes them (the own view at OWN_MOST over the tables' change, a share of the own
# shape, the head's growth on top of it), 63% with the own texture plain and its shape whole, and 89% with the head's
# growth the own shape's alone (an own shape at the target age has grown already). Made a teen with 1 / 3 own
# photos, closer than the adult photo and than the general edit: plain from 10 to 14 years 48 / 61%, 70 / 79%; from
# 12 to 16 55 / 64%, 76 / 88% (and the nearest reading of the real photo's age); from 14 to 18 36 / 48%, 85 / 94%
# (JOURNAL)
OWN_PLAIN_AGES = (12.0, 16.0)


def growth_gaps(ages: np.ndarray, target_age: float) -> np.ndarray:
    """Each age's gap to `target_age` in years, or in OWN_PACE_AGE-years of growth where that is more."""
    ages = np.asarray(ages, np.float64)
    growth = (OWN_PACE_AGE + 1.0) * np.abs(np.log((ages + 1.0) / (target_age + 1.0)))
    return np.maximum(np.abs(ages - target_age), growth)


def neutral_shape(engine: EngineTables, points: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """(478, 3) float32 a face's landmarks in the canonical head's frame (cm), its expression (its AUs' fitted
    motion) taken out: what a person's own photo says of their features' shape at its age."""
    points = np.asarray(points, np.float64)
    canonical = head_similarity(points, canonical_face()).invert(points)
    return (canonical - geometry.expression_shape(engine, aus)).astype(np.float32)


def draw_face(
    template: Template, rgb: np.ndarray, points: np.ndarray, female: float, parse: Parser | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A face's uint8 RGB view in the engine's template, its descriptor (:func:`.descriptors.describe`) and where
    its glasses are ((R, R) 0..1, :func:`.own_glasses.glasses_view`; none without the parser), drawn as the bank's
    faces are: one way, for the bank's strangers and a person's own photos alike. With the face parser (`parse`),
    glasses keep only their coarse part (:func:`.own_glasses.without_glasses`)."""
    points = np.asarray(points, np.float64)
    view = template_view(template, rgb, points)
    glasses = np.zeros((template.size, template.size), np.float32)
    if parse is not None:
        glasses = glasses_view(template, rgb, points, parse)
        view = without_glasses(template, view, glasses, OWN_DETAIL)
    cm = head_similarity(points, canonical_face()).scale  # photo pixels per canonical centimetre
    return view, describe(template, log_image(view), mouth_gap(points, cm), smile(points), float(female)), glasses


def eye_openings(template: Template) -> np.ndarray:
    """(R, R) 0..1 the eyes' openings (irises, whites, the lids' rims), which an edit put in plainly leaves the
    photo's: an eye's colour and its catchlight are the person's at any age, and the own faces' mean there is a blur
    of irises and whites that never lay on one another (FG-NET 021 made 16: pale grey-green irises for brown ones,
    the catchlights gone; children made their adult age: ghosted eyes)."""
    return cv2.GaussianBlur(template.regions["eyes"], (0, 0), EYE_SOFTNESS)


def eyes_kept(source_age: float) -> float:
    """0..1 how much of the eyes' openings an edit put in plainly leaves the photo's, by the photo's age: all of a
    grown face's (EYES_KEPT_AGES[1] on), none of a child's (to EYES_KEPT_AGES[0]): a child's eye, its iris carried
    by the growth into a grown face's opening, is a child's. FG-NET's children made their adult age with their own
    eyes kept read 1.6 years further from the real photo's age on the second age network than with the own faces'
    (its interval against the general edit's above 0)."""
    low, high = EYES_KEPT_AGES
    return float(np.clip((source_age - low) / (high - low), 0.0, 1.0))


def own_share(ages: np.ndarray, target_age: float) -> float:
    """How much of the matched view the own faces make for `target_age` (the rest is the bank's strangers):
    whole where one is within OWN_NEAR years, none from OWN_FAR, linear between (no jump as a slider moves)."""
    if not len(ages):
        return 0.0
    gap = float(np.min(np.abs(np.asarray(ages, np.float64) - target_age)))
    return float(np.clip((OWN_FAR - gap) / (OWN_FAR - OWN_NEAR), 0.0, 1.0))


def own_detail(target_age: float) -> float:
    """Face widths down to which the own faces give the matched view's detail for `target_age` (the bank's
    strangers the finer): OWN_DETAIL for a child, OWN_FINE from OWN_FINE_AGES[1], linear between."""
    young, grown = OWN_FINE_AGES
    t = float(np.clip((target_age - young) / (grown - young), 0.0, 1.0))
    return (1.0 - t) * OWN_DETAIL + t * OWN_FINE


def plain_ramp(target_age: float) -> float:
    """How far `target_age` is a grown face's (0..1, :data:`OWN_PLAIN_AGES`), for which own faces are put in plainly."""
    young, grown = OWN_PLAIN_AGES
    return float(np.clip((target_age - young) / (grown - young), 0.0, 1.0))


def plain_share(ages: np.ndarray, turns: np.ndarray, target_age: float) -> float:
    """How plainly own faces of `ages` make an edit to `target_age`: :func:`plain_ramp` times :func:`own_share` of
    those that count (:func:`own_counts`); 0 beyond the ages they cover, and for a child's target."""
    ages = np.asarray(ages, np.float64)
    if not len(ages):
        return 0.0
    counts = own_counts(ages, turns, target_age)
    return plain_ramp(target_age) * own_share(ages[counts > 0.0], target_age)


def own_counts(ages: np.ndarray, turns: np.ndarray, target_age: float) -> np.ndarray:
    """How much each own face counts for `target_age`, the most 1: by how near its age is (:func:`growth_gaps`; the
    OWN_COUNT nearest, down to OWN_LEAST of the nearest's), times how frontal it is (a turned face's view is its
    near side stretched)."""
    gaps = growth_gaps(ages, target_age)
    counts = np.exp(-0.5 * (gaps / OWN_SCALE) ** 2) * np.asarray(turns, np.float64)
    keep = np.zeros(len(counts), bool)
    keep[np.argsort(gaps, kind="stable")[:OWN_COUNT]] = True
    counts = np.where(keep, counts, 0.0)
    top = counts.max(initial=0.0)
    return np.where(counts >= OWN_LEAST * top, counts / top, 0.0) if top > 0.0 else counts


@dataclass
class PersonalMatch(ExemplarMatch):
    """An :class:`~.exemplars.ExemplarMatch` whose matched faces are the person's own near the target age, the
    bank's strangers filling in beyond the ages they cover (:func:`own_share`)."""

    own: AgeExemplars | None = None  # the person's own faces (their template views, ages and descriptors)
    own_turns: np.ndarray | None = None  # (N,) how frontal each own face is (:func:`.exemplars.turn_share`)
    own_shapes: np.ndarray | None = None  # (N, 478, 3) each own face's :func:`neutral_shape`
    own_glasses: np.ndarray | None = None  # (N,) how much of each own face's eyes' surround glasses cover
    own_glasses_maps: np.ndarray | None = None  # (N, R, R) uint8 where each own face's glasses are (None: unknown)

    @property
    def turns(self) -> np.ndarray:
        """(N,) how frontal each own face is (:attr:`own_turns`; each wholly where not given)."""
        return np.ones(len(self.own.ages)) if self.own_turns is None else np.asarray(self.own_turns, np.float64)

    @functools.cached_property
    def own_colour_shares(self) -> np.ndarray:
        """(N,) 0..1 how far each own face's photo has colour of its own (:func:`.frames.colour_share`; a
        black-and-white scan: 0): a property of the photo, read once for every target age."""
        mask = self.template.raster.mask
        return np.array([colour_share(colourfulness(self.own.log_view(i), mask)) for i in range(len(self.own.ages))])

    def matched_view(self, target_age: float) -> tuple[np.ndarray, np.ndarray] | None:
        general = super().matched_view(target_age)
        if self.own is None or not len(self.own.ages):
            return general
        own = self.own_view(target_age, self.person if general is None else general[0])
        if own is None:
            return general  # beyond the own photos' ages: the general edit, exactly
        mine, sure, share = own
        if general is None:  # no stranger of that age: the person's own pixels fill the rest
            general = (self.person, np.zeros_like(sure))
        else:  # the finest detail is the strangers' (sharp photos); the own faces' below own_detail
            detail = own_detail(target_age)
            mine = general[0] + template_blur(self.template, mine - general[0], detail)  # a blur is linear: one
        a = np.float32(OWN_MOST * share) if np.ndim(share) == 0 else np.float32(OWN_MOST) * share
        a3 = a if np.ndim(a) == 0 else a[..., None]
        return (a3 * mine + (1.0 - a3) * general[0]).astype(np.float32), (a * sure + (1.0 - a) * general[1])

    def own_view(
        self, target_age: float, general: np.ndarray, kept: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray, float | np.ndarray] | None:
        """((R, R, 3) the own faces' levelled mean for `target_age` in their colour (:meth:`own_colour`, `general`
        the rest), (R, R) how sure it is, how much it counts: :func:`own_share`), or None beyond their ages. Where
        some of them wear glasses, inside their band (:func:`.own_glasses.glasses_band`) the mean and its share
        ((R, R) then) are those of the own faces without glasses, none where there are none: a worn pair's coarse
        frames and the eyes behind its lenses drew glasses round the eyes of FG-NET 001 made 29 from his photo at
        33. The eyes' openings are the nearest face's as far as the photo's are not `kept` (:func:`eyes_kept`)."""
        whole = self._own_mean(np.arange(len(self.own.ages)), target_age, general, kept)
        if whole is None:
            return None
        mine, sure, share, picked = whole
        maps = None if self.own_glasses_maps is None else self.own_glasses_maps[picked]
        band = glasses_band(self.template, self.worn[picked], maps)
        if band is None:
            return mine, sure, share
        bare = self._own_mean(self.bare_faces(), target_age, general, kept) or (mine, sure, 0.0, picked)
        mine = mine + band[..., None] * (bare[0] - mine)
        return mine, sure + band * (bare[1] - sure), ((1.0 - band) * share + band * bare[2]).astype(np.float32)

    def _own_mean(
        self, faces: np.ndarray, target_age: float, general: np.ndarray, kept: float
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
        """:meth:`own_view` of the own `faces` alone, and those it took (None where they count for nothing)."""
        ages = self.own.ages.numpy()[faces]
        counts = own_counts(ages, self.turns[faces], target_age)
        share = own_share(ages[counts > 0.0], target_age)
        if share <= 0.0:
            return None
        picked, counts = faces[counts > 0.0], counts[counts > 0.0]
        mine, sure = self.levelled_mean(self.own, picked, counts)
        if kept < 1.0 and len(picked) > 1:  # the eyes of the nearest own face alone: a mean of eyes is a ghost
            nearest = self.levelled_mean(self.own, picked[[np.argmax(counts)]])[0]
            mine = mine + eye_openings(self.template)[..., None] * (nearest - mine)
        return self.own_colour(mine, picked, counts, general), sure, share, picked

    @property
    def worn(self) -> np.ndarray:
        """(N,) which own faces wear glasses (:data:`.own_glasses.GLASSES_WORN`; none where not read)."""
        return np.zeros(len(self.own.ages), bool) if self.own_glasses is None else self.own_glasses >= GLASSES_WORN

    def bare_faces(self) -> np.ndarray:
        """The own faces without glasses, which an edit takes where the others' glasses are (:meth:`own_view`)."""
        return np.flatnonzero(~self.worn)

    def plain_share(self, target_age: float) -> float:
        """:func:`plain_share` of the own faces for `target_age` (0 without any), their glasses aside: what the head's
        shape takes (:meth:`growth_kept`, :meth:`personal_age_change`)."""
        if self.own is None or not len(self.own.ages):
            return 0.0
        return plain_share(self.own.ages.numpy(), self.turns, target_age)

    def growth_kept(self, target_age: float) -> float:
        """How much of the head's fitted growth an edit to `target_age` takes (:func:`.geometry.growth_field`): none
        where the own shape is whole (it has grown already), all where there is none."""
        return 1.0 - self.plain_share(target_age)

    def plain_change(self, target_age: float, source_age: float) -> tuple[float | np.ndarray, np.ndarray] | None:
        """(the share, (R, R, 3) log change in the template): the own faces' levelled mean (:meth:`own_view`) over
        the person's view, less its part above the bank's light scale (the photo's light, shading and cast stay),
        bounded as the strangers' is (:func:`.exemplars.bounded_change`: its colour clipped to COLOUR_LIMIT and
        coarse; a flash scan's fine colour, taken whole, drew an orange band down FG-NET 021's nose made 16), where
        the features are taken (:attr:`weight`); the eyes' openings (:func:`eye_openings`) stay the photo's as far
        as :func:`eyes_kept` for `source_age` says. The share is :meth:`plain_share`, or (R, R) where own faces
        wear glasses (:meth:`own_view`). None where it is 0. What an edit becomes at that share, in place of the
        tables' and the strangers' change (:func:`.appearance.texture_change`)."""
        if self.plain_share(target_age) <= 0.0:
            return None
        kept = eyes_kept(source_age)
        mine, _, share = self.own_view(target_age, self.person, kept)
        share = plain_ramp(target_age) * share
        if np.max(share) <= 0.0:
            return None
        change = mine - self.person
        change -= template_blur(self.template, change, self.bank.config.light_scale)
        grey = change.mean(axis=2, keepdims=True)  # bounded: an own scan's hard shadow or highlight
        change = bounded_change(self.template, grey, np.clip(change - grey, -COLOUR_LIMIT, COLOUR_LIMIT))
        taken = self.weight * (1.0 - kept * eye_openings(self.template))
        return share, (change * taken[..., None]).astype(np.float32)

    def own_colour(self, mine: np.ndarray, picked: np.ndarray, counts: np.ndarray, general: np.ndarray) -> np.ndarray:
        """`mine` (the own faces' levelled mean) with its colour (each pixel's channels less their mean) taken from
        the own faces as far as their photos have colour (:attr:`own_colour_shares`), the rest from `general` (the
        strangers' matched view): a grey scan's lips and cheeks, levelled onto the person's skin, are the skin's
        tone, and drew pale lips on a colour photo."""
        trust = self.own_colour_shares[picked]
        if trust.min() >= 1.0:
            return mine
        weights = counts * trust
        tinted = self.levelled_mean(self.own, picked, weights)[0] if weights.sum() > 0.0 else mine
        share = np.float32(weights.sum() / counts.sum())
        grey = mine.mean(axis=2, keepdims=True)
        own = tinted - tinted.mean(axis=2, keepdims=True)
        theirs = general - general.mean(axis=2, keepdims=True)
        return (grey + share * own + (1.0 - share) * theirs).astype(np.float32)

    def personal_age_change(
        self,
        engine: EngineTables,
        face: EngineFace,
        source_age: float,
        target_age: float,
        source_aus: np.ndarray,
        general: np.ndarray,
    ) -> np.ndarray:
        """(478, 3) the age's landmark change (canonical cm) part of the way from the `general` one to the own
        faces' shape at `target_age`: the nearest own faces each carried there by the fitted change from their age,
        weighed as the matched view weighs them. The head's outline keeps the general change (the growth moves
        it; put in plainly, :meth:`plain_share`, the own shape is whole there too and the growth is not taken), and
        so, in part, does what the photo's expression moves (OWN_SHAPE_EXPRESSION: the photo's neutral shape is a
        guess there); beyond the ages the own photos cover, the general change exactly. Kept in the face's cache for
        the pair of ages: a slider move or a video's frames reuse it."""
        if self.own is None or self.own_shapes is None or not len(self.own.ages):
            return general
        key = ("own shape", source_age, target_age)
        if key in face.cache:
            return face.cache[key]
        ages = self.own.ages.numpy().astype(np.float64)
        counts = own_counts(ages, self.turns, target_age)
        picked = np.flatnonzero(counts > 0.0)
        plain = self.plain_share(target_age)  # put in plainly, the own shape is whole, on the head's outline too
        share = max(OWN_SHAPE_MOST * own_share(ages[picked], target_age), plain)
        change = general
        if share > 0.0:
            grown = [
                self.own_shapes[i] + geometry.age_shape_change(engine, face.female, float(ages[i]), target_age)
                for i in picked
            ]
            weights = counts[picked] / counts[picked].sum()
            mine = np.tensordot(weights, np.stack(grown), axes=1) - neutral_shape(engine, face.landmarks, source_aus)
            motion = np.linalg.norm(geometry.expression_shape(engine, source_aus), axis=1)
            sure = np.exp(-((motion / OWN_SHAPE_EXPRESSION) ** 2))[:, None]
            mine = sure * mine + (1.0 - sure) * general
            mine = geometry.smoothing_kernel(geometry.AGE_SMOOTHING) @ mine
            outline = (1.0 - plain) * geometry.outline_weights()[:, None]
            mine = mine * (1.0 - outline) + general * outline
            change = share * mine + (1.0 - share) * general
        face.cache[key] = change
        return change


def personal_face(
    face: EngineFace,
    own: AgeExemplars,
    turns: np.ndarray,
    key: str,
    shapes: np.ndarray | None = None,
    glasses: np.ndarray | None = None,
    glasses_maps: np.ndarray | None = None,
) -> EngineFace:
    """`face` (prepared once per photo) matched to a person's own faces as well as the bank's (and to their
    `shapes`, :func:`neutral_shape`, `glasses`, :func:`.own_glasses.glasses_cover`, and `glasses_maps`, where
    given): made once per photo and person (kept in the face's cache under `key`), so that a slider move or a
    video's frames reuse it.
    A face the bank matches nothing to (turned past the bank's limit, an engine that fits no ages, an editor
    without a bank) stays as it is."""
    if face.exemplars is None:
        return face
    cache_key = ("person", key)
    personal = face.cache.get(cache_key)
    if personal is None:
        base = face.exemplars
        own.check_template(base.template, base.bank.config.template_scale, tuple(base.bank.config.template_centre))
        match = PersonalMatch(
            base.bank,
            base.template,
            base.person,
            base.descriptor,
            base.share,
            facial_hair=base.facial_hair,
            own=own,
            own_turns=np.asarray(turns, np.float64),
            own_shapes=None if shapes is None else np.asarray(shapes, np.float32),
            own_glasses=None if glasses is None else np.asarray(glasses, np.float64),
            own_glasses_maps=glasses_maps,
        )
        # a cache of its own: the age texture the face keeps for its last pair of ages is the general match's
        personal = dataclasses.replace(face, exemplars=match, cache={})
        face.cache[cache_key] = personal
    return personal
