"""The skin's change, computed in the shape-normalised template and mapped onto the face: the age prototypes'
tone and shading (a ratio image), the person's own detail bands scaled by the prototypes' detail energy
(wrinkles deepen with age, skin smooths when young), new folds when ageing, and the AU ratio images; and the
grey thumbnail the sex classifier reads. Everything is in the log domain, where a lighting change is an offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ganime_age.engine.beard import change_around
from ganime_age.engine.config import (
    AGED_FEATURE_HOLD,
    AU_LINE_DEPTH,
    AU_LINE_GLOW,
    CHILD_AGE,
    FOLD_BROAD,
    FOLD_SCALE,
    FOLD_SHADE,
    LARGE_SCALE,
    LOWER_FACE,
    TEMPLE_DEPTH,
    YOUNG_LIFT,
    FittedEngineConfig,
)
from ganime_age.engine.expressions import face_expression
from ganime_age.engine.face import EngineFace
from ganime_age.engine.frames import Template, colour_share, template_blur, template_width
from ganime_age.engine.geometry import age_weights, blend, table_weights, youth
from ganime_age.engine.light import skin_headroom, within_headroom
from ganime_age.engine.lines import wrinkle_depth, wrinkle_pattern
from ganime_age.engine.tables import EngineTables
from ganime_age.faces.topology import (
    BROW_TOPS,
    LEFT_BROW,
    LEFT_EYE_CONTOUR,
    NOSE_TIP,
    RIGHT_BROW,
    RIGHT_EYE_CONTOUR,
)

BEARD_SURE = (0.5, 0.85)  # how likely a man's: from no men's beard table (a child's unsure reading) to all of it


@dataclass
class TextureChange:
    """An edit's repaint on the engine grid, in the log domain.

    ``ratio`` (h, w, 3) is smooth and multiplies each channel (tone, shading, colour: a ratio image); ``fine``
    (h, w) changes brightness alone, by the same amount in every channel, so that deepened or smoothed
    wrinkles keep the skin's colour instead of scaling it into fine colour speckles.
    """

    ratio: np.ndarray
    fine: np.ndarray
    mask: np.ndarray  # (h, w) where the change may be non-zero (the face)
    # (h, w) 0..1 or None: how much of a pixel the skin around it replaces (its blurred colour, with the ratio's
    # change): an old face's crease where a young face has smooth skin (:func:`.exemplars.features_change`)
    fill: np.ndarray | None = None


def detail_bands(grey: np.ndarray, sigma: float, count: int) -> list[np.ndarray]:
    """Difference-of-Gaussian bands of an image, finest first (sigma, then doubling)."""
    bands, previous = [], grey
    for b in range(count):
        blurred = cv2.GaussianBlur(grey, (0, 0), sigma * 2**b)
        bands.append(previous - blurred)
        previous = blurred
    return bands


def band_energies(grey: np.ndarray, sigma: float, count: int) -> list[np.ndarray]:
    """Local detail energy per band: each band squared and averaged over a neighbourhood of twice its scale."""
    return [cv2.GaussianBlur(b * b, (0, 0), 2.0 * sigma * 2**i) for i, b in enumerate(detail_bands(grey, sigma, count))]


def grey_and_colour(grey_gain: float, colour_gain: float) -> np.ndarray:
    """The 3x3 matrix (for ``cv2.transform``) that scales an RGB change's mean by `grey_gain` and the rest by
    `colour_gain`: one pass over the pixels instead of four."""
    return (colour_gain * np.eye(3) + (grey_gain - colour_gain) / 3.0 * np.ones((3, 3))).astype(np.float32)


def hold_above(table: np.ndarray, row: int, axis: int = 0) -> np.ndarray:
    """`table` with every row above `row` (along `axis`) replaced by that row: a change held constant upward."""
    out = np.array(table, copy=True)
    index = [slice(None)] * out.ndim
    source = list(index)
    index[axis], source[axis] = slice(0, row), slice(row, row + 1)
    out[tuple(index)] = out[tuple(source)]
    return out


def forehead_row(template: Template) -> int:
    """The template row a little above the brows: above it the prototypes' age differences are hair as
    much as skin (see :func:`tone_weight`), so the tone change is not taken and the detail energies are held."""
    vertices = template.vertices
    brows = float(vertices[list(BROW_TOPS), 1].min())
    return max(int(brows - 0.04 * template_width(template)), 0)


def skin_tone(template: Template, image: np.ndarray, features: np.ndarray) -> np.ndarray:
    """A prototype's tone and shading: `image` blurred to LARGE_SCALE over the skin below the forehead
    alone (normalised convolution), which continues it over the brows, the eyes and the upper forehead.

    What the blur must not see: the brows and eyes (an average old woman's brows are paler and thinner, and
    a ratio image of that does not thin a brow: it bleaches a band where the brow is and makes eye whites
    glow; brows thin through the detail gains), and the upper forehead (see :func:`tone_weight`).
    """
    weight = (1.0 - features) * template.raster.mask
    weight[: forehead_row(template)] = 0.0
    sigma = LARGE_SCALE * template_width(template)
    spread = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    blurred = cv2.GaussianBlur(image * weight[..., None], (0, 0), sigma).reshape(image.shape)
    return np.where(spread > 1e-3, blurred / np.maximum(spread, 1e-3), image).astype(np.float32)


def tone_weight(template: Template) -> np.ndarray:
    """(R, R, 1): how much of the prototypes' tone change a template pixel takes: none above the brows, all
    from the brows' lower edge down.

    The prototypes' foreheads are part hair (children's fringes, receding hairlines), so their difference
    there is a hairline, not skin: it painted a dark band across the forehead of every face made young (a
    band the age estimator read as a fringe, and so as a child).
    """
    vertices = template.vertices
    low = float(vertices[list(RIGHT_BROW[:5]) + list(LEFT_BROW[:5]), 1].max())
    row = forehead_row(template)
    rows = np.arange(template.size, dtype=np.float32)
    ramp = np.clip((rows - row) / max(low - row, 1.0), 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible edge where the change begins
    return np.repeat(ramp[:, None, None], template.size, axis=1)


def glow_weight(template: Template) -> np.ndarray:
    """(R, R, 1): where the prototypes' tone may not brighten a face: everywhere above the eyes' corners,
    fading out down to the eyes' lower lids.

    There an old average's brightening is hair, not skin (an old woman's grey temples and lateral brows): it
    glowed as pink-white patches above the brows' tails of faces made old. Used when ageing only.
    """
    rows = np.arange(template.size, dtype=np.float32)
    vertices = template.vertices
    top = float(vertices[list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR), 1].min())
    low = float(vertices[list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR), 1].max())
    ramp = np.clip((low - rows) / max(low - top, 1.0), 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)
    return np.repeat(ramp[:, None, None], template.size, axis=1).astype(np.float32)


def temple_weight(template: Template) -> np.ndarray:
    """(R, R, 1): how much of the age prototypes' tone change a template pixel takes near the face's outline:
    none at the outline above the nose, all from TEMPLE_DEPTH inside it, and all along the jaw.

    The temples are part hair too (a child's hair covers them, an old man's recedes from them): there the
    prototypes' difference glowed as a pale pink patch on faces made young or old.
    """
    rows = np.arange(template.size, dtype=np.float32)
    scale = template_width(template) / 15.3  # template pixels per canonical cm
    inside = cv2.distanceTransform((template.raster.mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    edge = np.clip(inside / (TEMPLE_DEPTH * scale), 0.0, 1.0)
    edge = edge * edge * (3.0 - 2.0 * edge)
    nose = float(template.vertices[NOSE_TIP, 1])
    below = np.clip((rows - nose) / (1.5 * scale), 0.0, 1.0)[:, None]  # the jaw's own edge keeps its change
    return (edge + (1.0 - edge) * below)[..., None].astype(np.float32)


def age_split(config: FittedEngineConfig, tables: dict[str, np.ndarray], template: Template) -> dict[str, np.ndarray]:
    """The fitted tables as a slider move reads them, made once: the age prototypes' large scale (tone,
    shading), their fold-scale luminance band (between the finest detail band and the large scale), the
    detail energies, and the AU ratio images on skin only, split like the age change into their large
    scale (per channel) and the brightness of the rest (frown lines, folds); all channels last.

    (What the AU ratio images show in the eyes, the lips' gap and the brows, hair that MediaPipe's brow
    points follow loosely, is the pairs' misalignment, not the AU: it is masked out.)
    """
    t, c = tables, config
    prototypes = (t["mean_texture"][None, None] + t["age_textures"]).transpose(0, 1, 3, 4, 2)
    large = np.empty_like(prototypes)
    folds = np.empty(prototypes.shape[:4], np.float32)
    regions = template.regions
    features = np.maximum(np.maximum(regions["eyes"], regions["brows"]), regions["mouth"])
    forehead = forehead_row(template)
    for index in np.ndindex(prototypes.shape[:2]):
        luma = prototypes[index].mean(axis=2)
        # folds are narrow: against a local mean of FOLD_SCALE, not the large scale, whose band held the old
        # prototypes' broad cheek shading (a dusky cheek read as dirt, not as age)
        reference = template_blur(template, luma[..., None], FOLD_SCALE)[..., 0]
        folds[index] = cv2.GaussianBlur(luma, (0, 0), c.band_sigma) - reference
        large[index] = skin_tone(template, prototypes[index], features)
    energies = t["age_energies"].transpose(0, 1, 3, 4, 2)
    energies = hold_above(energies, forehead // c.energy_downsample, axis=2)
    skin = 1.0 - np.maximum(np.maximum(regions["mouth"], regions["eyes_wide"]), regions["brows"])
    au_skin = np.ascontiguousarray((t["au_textures"] * skin).transpose(0, 2, 3, 1), dtype=np.float32)
    # a pair's tone difference on the forehead is its brows' misalignment (MediaPipe's brow points lag a
    # raised brow): it painted a glowing band above raised brows; forehead lines are in the fine part
    au_blurred = np.stack([template_blur(template, image) for image in au_skin])
    weight = tone_weight(template)
    return {
        "large": np.ascontiguousarray(large, dtype=np.float32),
        "folds": folds * (template.mask * (1.0 - regions["mouth"]))[None, None],
        "energies": np.ascontiguousarray(energies, dtype=np.float32),
        "tone_weight": weight * temple_weight(template),
        "glow_weight": glow_weight(template),
        "wrinkles": wrinkle_pattern(template),
        "features": cv2.resize(features, t["age_energies"].shape[-2:][::-1], interpolation=cv2.INTER_AREA)[..., None],
        "au_smooth": au_blurred * weight[None],
        "au_fine": np.ascontiguousarray((au_skin - au_blurred).mean(axis=3), dtype=np.float32),
    }


def texture_change(
    engine: EngineTables,
    face: EngineFace,
    source_age: float,
    target_age: float,
    source_aus: np.ndarray,
    target_aus: np.ndarray,
) -> TextureChange | None:
    """The log-intensity change on the engine grid (None when the edit repaints nothing), in two parts:
    a smooth per-channel ratio (tone, shading, colour) and a fine change of brightness alone.

    The age change has three parts, all computed in the template and mapped onto the face once:

    - the prototypes' large-scale difference (skin tone, shading, colour), added in the log domain (a
      ratio image), less most of its face-wide mean (``age_exposure_share``);
    - the face's own detail, band by band, scaled by the ratio of the prototypes' local detail energy
      (Tiddeman et al.): wrinkles, brows and beard shadow grow or fade as the face has them, and nothing
      appears where it has none, so a clean-shaven man gets no white patch where the average man of
      his age has a moustache shadow;
    - when ageing, the darkening part of the prototypes' fold-scale difference, so that nasolabial folds,
      eye bags and forehead lines appear even on a face that has no trace of them yet.

    Fine changes are of brightness only (see :class:`TextureChange`): a photo carries almost no fine
    colour (JPEG keeps colour at half resolution), and a fine *ratio* would print the skin's colour into
    every wrinkle it deepens or smooths, as speckles of colour.

    The age's part depends on the two ages alone, so it is mapped onto the face once and kept
    (``face.cache``): a video's frames and an expression slider change only the AUs' part.
    """
    age_part = _age_texture(engine, face, source_age, target_age)
    au_part = _au_texture(engine, face, source_aus, target_aus)
    if age_part is None and au_part is None:
        return None
    if age_part is not None and au_part is not None:
        ratio_out, fine_out = age_part[0] + au_part[0], age_part[1] + au_part[1]
    else:
        only = age_part or au_part
        ratio_out, fine_out = only[0].copy(), only[1].copy()
    # the skin's change, on skin: hair inside the mesh (a hairline, a fringe) keeps its own detail and colour
    skin = face.face_mask * (1.0 - np.clip(face.hair, 0.0, 1.0))
    ratio_out *= skin[..., None]
    fine_out *= skin
    fill = age_part[2] * skin if age_part is not None and age_part[2] is not None else None
    return TextureChange(ratio_out, fine_out, face.face_mask, fill)


def per_sex(female: float, beard: np.ndarray | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A blend of a per-sex, per-age table (:func:`.geometry.blend`) for a face `female` (0..1) likely a woman's,
    where a beard grows (`beard`, (R, R) 0..1; None: nowhere) by a surer reading of its sex: the men's table there
    only as far as the face is surely a man's (BEARD_SURE). A child's sex reads unsure (a girl's scan 0.40 female),
    and half the men's table there drew a moustache's shadow on a girl made a woman; a missing shadow on a man is
    the lesser harm."""
    lo, hi = BEARD_SURE
    sexes = np.array([1.0 - female, female])
    male = float(np.clip((1.0 - female - lo) / (hi - lo), 0.0, 1.0))
    surer = np.array([male, 1.0 - male])

    def sexed(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
        plain = blend(table, sexes, weights)
        if beard is None or np.allclose(surer, sexes):
            return plain
        where = (
            beard
            if beard.shape == plain.shape[:2]
            else cv2.resize(beard, plain.shape[1::-1], interpolation=cv2.INTER_AREA)
        )
        where = where.reshape(where.shape + (1,) * (plain.ndim - 2)).astype(np.float32)
        return plain + where * (blend(table, surer, weights) - plain)

    return sexed


def _age_texture(
    engine: EngineTables, face: EngineFace, source_age: float, target_age: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """The age's (ratio, fine, fill) change on the engine grid before the skin mask (fill: None where no crease
    is replaced, see :class:`TextureChange`), or None for no age change; kept in ``face.cache`` for the last pair
    of ages."""
    if source_age == target_age:
        return None
    key = (engine, float(source_age), float(target_age))  # the engine too: a face may be tried with two engines
    cached = face.cache.get("age_texture")
    if cached is not None and cached[0] == key:
        return cached[1]
    c, t = engine.config, engine.tables
    size = c.template_size
    # made older, the men's beard tables only on a face surely a man's; made younger, a beard's shade goes as far as
    # the face may be a man's (taken only from the surely male, adults made 5 read a year older)
    sexed = per_sex(face.female, engine.template.regions["beard"] if target_age > source_age else None)
    smooth = np.zeros((size, size, 3), np.float32)  # channels last: what cv2.remap maps in one call
    fine = np.zeros((size, size), np.float32)
    split = engine.age_split
    beyond = c.age_extrapolation
    w_t, w_s = table_weights(target_age, engine.centres, beyond), table_weights(source_age, engine.centres, beyond)
    large = sexed(split["large"], w_t - w_s)
    if target_age > source_age:
        # no glow above the eyes, before the face-wide mean is taken out (else the face as a whole darkens);
        # a child's brighter skin is the whole face's (held from the forehead alone, it drew a band)
        large -= np.maximum(large.mean(axis=2, keepdims=True), 0.0) * split["glow_weight"]
    if c.age_exposure_share != 1.0:
        # the mean over the skin the tone reaches (below the brows): the face keeps its own brightness and
        # colour, and its parts change relative to it (a whole face darkened read as a grey mask)
        mask = engine.template.mask * split["tone_weight"][..., 0]
        mean = np.tensordot(mask, large, axes=([0, 1], [0, 1])) / max(float(mask.sum()), 1e-6)
        large -= np.float32(1.0 - c.age_exposure_share) * mean.astype(np.float32)
    large *= split["tone_weight"]
    # brightness (the channels' mean) times age_texture_gain, colour (the rest) times age_chroma_gain
    tone = cv2.transform(large, grey_and_colour(c.age_texture_gain, c.age_chroma_gain))
    if target_age > source_age and face.exemplars is not None:  # no pallor where the skin is near white already
        headroom = face.cache.get("skin_headroom")  # the face's own: read once, not on every move of the slider
        if headroom is None:
            headroom = face.cache["skin_headroom"] = skin_headroom(engine.template, face.exemplars.person)
        tone = within_headroom(tone, headroom, c.tone_headroom)
    if target_age > source_age:  # folds and lines that come with age: the prototypes' darkening only
        # a ratio (darker in every channel alike), not a brightness offset: taking the same amount off
        # each channel of a deep fold saturates its colour into a purple, bruise-like socket
        folds = np.minimum(c.age_fold_gain * sexed(split["folds"], w_t - w_s), 0.0)
        broad = template_blur(engine.template, folds[..., None], FOLD_SCALE)[..., 0]
        folds = np.minimum(folds - np.float32(1.0 - FOLD_BROAD) * broad, 0.0)  # never a bright halo beside a fold
        tone += folds[..., None] * np.asarray(FOLD_SHADE, np.float32)
    smooth += tone
    # an extrapolated energy (past the oldest centre) may fall below zero: there is no less detail than none
    energies = [np.maximum(sexed(split["energies"], w), 0.0) for w in (w_t, w_s)]
    floor = 1e-6 + 0.05 * energies[1].mean(axis=(0, 1), keepdims=True)
    ratio = (energies[0] + floor) / (energies[1] + floor)
    gains = np.clip(ratio ** (0.5 * c.detail_gain_power), *c.detail_gain_range)
    caps = np.asarray(c.detail_gain_caps, np.float32)[: gains.shape[2]]
    gains = np.minimum(gains, caps).astype(np.float32)
    share = face.exemplars.share_for(source_age, target_age) if face.exemplars is not None else 0.0
    plain = face.exemplars.plain_change(target_age, source_age) if face.exemplars is not None else None
    if plain is not None and np.min(plain[0]) >= 1.0:
        share = 0.0  # their faces whole, plainly: the matched faces' change would be blended away (a slider's cost)
    found = face.exemplars.change(target_age) if share > 0.0 else None
    kept = np.ones((size, size), np.float32)  # how much of the tables' own change of the skin's detail stays
    fill = None
    if found is not None:  # real faces of the target age, matched to the person: their features in its light
        smooth += np.float32(share) * found[0]
        fine += np.float32(share) * found[1]
        if target_age < source_age:  # made younger: the creases the younger faces lack go (none are made older)
            filled = np.maximum(found[2], found[3])
            fill = np.float32(share) * filled if np.any(filled) else None
        # their difference replaces the person's detail there: a child's evened skin on top of it (and the
        # tables' own detail gains, below) corrected every dark spot twice, into bright blobs
        kept -= np.float32(share) * face.exemplars.weight
    young = youth(source_age, target_age)
    if young > 0.0 and face.young_skin is not None:
        smooth += np.float32(young) * face.young_skin * kept[..., None]
    if target_age > source_age and c.wrinkle_depth > 0.0 and np.any(t["age_textures"]):
        # an old face's lines, where a face has none yet
        deepen = wrinkle_depth(c, target_age) - wrinkle_depth(c, source_age)
        fine += np.float32(deepen) * split["wrinkles"]
    if target_age > source_age:
        # ageing brows keep most of their detail: an average's fainter brow, applied as a gain, bleaches
        # the brow's body and leaves its outline, as if drawn on (a child's faint brows are right)
        keep = 1.0 - AGED_FEATURE_HOLD * split["features"]
        gains = (1.0 + (gains - 1.0) * keep).astype(np.float32)
    if found is not None:
        # the matched faces' difference takes out `1 - kept` of the person's detail, the gains below `1 - gain`
        # more: where the two together take out more than all of it, a dark spot turned into a bright blob, so
        # what is taken out beyond the whole is given back
        bands = face.cache.get("template_bands")
        if bands is None:
            bands = detail_bands(face.exemplars.person.mean(axis=2), c.band_sigma, c.detail_bands)
            face.cache["template_bands"] = bands
        scaled = cv2.resize(gains, (size, size)).reshape(size, size, -1)
        taken = 1.0 - kept
        fine += sum(np.maximum(taken - scaled[..., b], 0.0) * band for b, band in enumerate(bands))
    part: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    if np.any(smooth) or np.any(fine) or fill is not None or not np.all(gains == 1.0):
        ratio_out, fine_out = _to_grid(face, smooth, fine)
        coords = face.template_coords
        fill_out = None if fill is None else cv2.remap(fill, coords, None, cv2.INTER_LINEAR, borderValue=0.0)
        stacked = cv2.resize(gains, (size, size))
        mapped = cv2.remap(stacked, coords, None, cv2.INTER_LINEAR, borderValue=1.0)
        mapped = mapped.reshape(*face.grid_shape, -1)
        fine_out += sum((mapped[..., b] - 1.0) * band for b, band in enumerate(face.log_grey_bands))
        if plain is not None:  # their faces at that age, plainly, in place of the rest (a beard is still lifted)
            own, s = _to_grid(face, plain[1], np.zeros(plain[1].shape[:2], np.float32))[0], np.float32(plain[0])
            if s.ndim:  # a share of its own at each pixel (their glasses left out): on the grid, the edge's beyond
                s = cv2.remap(s, face.template_coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            ratio_out, fine_out = (1 - s[..., None]) * ratio_out + s[..., None] * own, (1 - s) * fine_out
            fill_out = None if fill_out is None else (1 - s) * fill_out
        if young > 0.0 and face.beard is not None:
            # the beard is lifted to the skin around it in the photo (:mod:`.beard`), which then changes as that
            # skin does; no finer detail brightens there (a young face's beardless lip on top: a glowing patch)
            hair = face.beard.share_on(face.box, face.grid_shape)
            lifted = np.float32(young) * hair
            ratio_out = change_around(ratio_out, hair, lifted, face.face_mask, face.landmarks)
            fine_out -= np.maximum(fine_out, 0.0) * lifted
            if fill_out is not None:
                fill_out *= 1.0 - lifted
        part = (ratio_out, fine_out, fill_out)
    face.cache["age_texture"] = (key, part)
    return part


def _au_texture(
    engine: EngineTables, face: EngineFace, source_aus: np.ndarray, target_aus: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The expression's (ratio, fine) change on the engine grid before the skin mask, or None for none."""
    c, t = engine.config, engine.tables
    au_delta = (np.asarray(target_aus, np.float32) - np.asarray(source_aus, np.float32)) * t["au_gains"]
    if not np.any(au_delta):
        return None
    size = c.template_size
    smooth = np.zeros((size, size, 3), np.float32)
    lines = np.zeros((size, size), np.float32)
    # real people's folds and shading, matched to this edit (none where the engine has no pairs)
    skin = face_expression(engine, face, source_aus, target_aus)
    # the gains make an AU's shape read as asked; its skin (folds, shading) follows, more gently
    gentle = au_delta / np.sqrt(t["au_gains"])
    for au in np.flatnonzero(gentle):
        if skin is None:  # the fitted AUs' broad shading is a mean of every pair's: it printed dark cheek bands
            smooth += (c.au_texture_gain * gentle[au]) * engine.age_split["au_smooth"][au]
        lines += (c.au_texture_gain * gentle[au]) * engine.age_split["au_fine"][au]
    # expression lines darken (frown lines, folds); a strong brightening is a pair's misalignment at an
    # edge (a lid's crease), which printed thin white arcs
    fine = np.clip(lines, -AU_LINE_DEPTH, AU_LINE_GLOW)
    if skin is not None:  # measured once the skin's motion was taken out: its brightening is no edge's
        fine = fine + skin.look
    if not np.any(smooth) and not np.any(fine):
        return None
    return _to_grid(face, smooth, fine)


def _to_grid(face: EngineFace, smooth: np.ndarray, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A template-space (smooth ratio, fine) change mapped onto the face's engine grid (the smooth part's colour
    in proportion to how colourful the face is: a grey photo stays grey)."""
    smooth = cv2.transform(smooth, grey_and_colour(1.0, colour_share(face.colourfulness)))
    coords = face.template_coords
    ratio_out = cv2.remap(smooth, coords, None, cv2.INTER_LINEAR, borderValue=0.0)
    fine_out = cv2.remap(fine, coords, None, cv2.INTER_LINEAR, borderValue=0.0)
    return ratio_out, fine_out


def young_skin(
    config: FittedEngineConfig, split: dict[str, np.ndarray], template: Template, log_face: np.ndarray, female: float
) -> np.ndarray:
    """(R, R, 3) the log change per channel that evens a face's lower half to a child's skin, from the face's
    log-colour template view (R, R, 3): what an edit to a child takes, in full YOUTH_RUN years below the
    source age.

    A child's prototype (its tone and shading, per sex) levelled to the person's cheeks (per channel, with a
    left-to-right slope for the light) predicts the lower face as a child's skin under the same light. Where
    the face is darker than that below the nose (lips excepted: stubble's shadow, a shaving rash, an adult's
    folds) it is lifted to it, smoothly; it is never darkened. Both age networks read a face so evened as
    younger; the beard itself goes in the photo (:mod:`.beard`).
    """
    from ganime_age.face_model import canonical_face

    size = template.size
    canonical = canonical_face().vertices[:, :2]
    scale = float(np.ptp(template.vertices[:, 0]) / np.ptp(canonical[:, 0]))  # template pixels per canonical cm
    origin = (template.vertices - scale * canonical).mean(axis=0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = (xs - np.float32(origin[0])) / scale, (ys - np.float32(origin[1])) / scale  # canonical cm
    regions = template.regions
    skin = template.raster.mask * (1.0 - np.maximum(regions["eyes_wide"], regions["brows"]))
    sigma = FOLD_SCALE * template_width(template)
    weight = cv2.GaussianBlur(skin, (0, 0), sigma)[..., None]
    person = cv2.GaussianBlur(log_face * skin[..., None], (0, 0), sigma) / np.maximum(weight, 1e-3)
    sexes = np.array([1.0 - female, female])
    child = blend(split["large"], sexes, age_weights(CHILD_AGE, np.asarray(config.age_centres, np.float64)))
    cheeks = (skin > 0.5) & (cy > -1.5) & (cy < 1.0) & (np.abs(cx) > 2.2) & (np.abs(cx) < 5.5)
    difference = (person - child)[cheeks]  # (n, 3)
    design = np.stack([np.ones(int(cheeks.sum()), np.float32), cx[cheeks] / 5.0], axis=1)
    level, *_ = np.linalg.lstsq(design, difference, rcond=None)  # (2, 3): per channel, a level and a slope
    predicted = child + level[0] + (cx / 5.0)[..., None] * level[1]
    t = np.clip((cy - LOWER_FACE[0]) / (LOWER_FACE[1] - LOWER_FACE[0]), 0.0, 1.0)
    lower = t * t * (3.0 - 2.0 * t)
    region = lower * template.raster.mask * (1.0 - regions["lips"])
    deficit = np.clip((predicted - person) * region[..., None], 0.0, YOUNG_LIFT)
    # smooth: a lift with an edge (at the lips' corners, where the lips' mask ends) drew a dark arc there
    return cv2.GaussianBlur(deficit, (0, 0), sigma).reshape(deficit.shape).astype(np.float32)


def sex_thumbnail(template: Template, side: int, log_face: np.ndarray) -> np.ndarray:
    """A face's log-colour template view -> the classifier's input (grey, small, standardised)."""
    grey = log_face.mean(axis=2) * template.mask
    thumb = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).reshape(-1)
    return (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)
