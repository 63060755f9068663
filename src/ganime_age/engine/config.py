"""The engine's settings: the sizes of its fitted tables and the strengths of each part of an edit (its
``config.json``, each field with its declared range), and the fixed constants its jobs share."""

from __future__ import annotations

from dataclasses import dataclass

from ganime_age.conditions import MAX_AGE
from ganime_age.config import bounded

TEMPLE_DEPTH = 1.8  # canonical cm inside the outline above the nose where the prototypes' tone fades (hair)
WRINKLE_AGES = (35.0, 82.0)  # an old face's lines begin at the first age and are full at the second
WRINKLE_WIDTH = 2.5  # the lines' widths (as listed) times this
WRINKLE_RIDGE = 0.5  # a line's lit ridge above its trough, relative to the trough's depth
LOG_EPSILON = 1.0 / 64.0  # log(v + eps): dark pixels do not blow up a ratio
OUTWARD_REACH = 5.0  # canonical centimetres (a third of a face width) over which a face's motion fades out
LARGE_SCALE = 0.1  # face widths: the blur that splits skin tone and shading from features (brows, lips, folds)
FOLD_SCALE = 0.035  # face widths: the local mean an age fold is darker than (nasolabial, marionette, lines)
AGE_SMOOTHING = 0.5  # canonical cm: the scale below which an age's landmark motion is smoothed (no folds)
GROWTH_REACH = (1.05, 1.6)  # chin distances from the head's centre: the growth is whole inside, nothing beyond
EYE_KEEP = (1.2, 2.4)  # eye half-widths from an eye's centre: its size is kept inside, the growth's beyond
SAG_AGES = (35.0, 85.0)  # an old face's soft tissue begins to descend at the first age, fully at the second
# (landmark groups, each one anchor; (down, outward) canonical cm at full descent; the bump's sigma, cm)
SAGS = (
    (((105, 66), (334, 296)), (0.3, 0.0), 1.1),  # the brows, over the lids
    (((50, 101), (280, 330)), (0.25, 0.05), 1.6),  # the cheeks' fat pads
    (((136, 150), (365, 379)), (0.45, 0.2), 1.3),  # the jowls, over the jaw
    (((1,),), (0.15, 0.0), 0.7),  # the nose's tip
)
TABLE_AGE_FLOOR = 5.0  # the fitted shapes and skin are read no younger than this: the youngest (age-2) prototypes
# are flash-lit and soft, and below 5 the growth alone carries the change
EDGE_TAPER = 0.12  # share of the edit region's size over which its motion fades to nothing at the region's edge
YOUNG_AGE = 20.0  # below this age a face's proportions change fastest (young_shape_boost), and its beard goes
CHILD_SHAPE_AGE = 10.0  # a face made this young or younger takes all of the shape gain (younger_shape_share)
CHILD_AGE = 9.0  # the prototype whose skin a face made young takes below the nose (appearance.young_skin)
LOWER_FACE = (1.0, 2.2)  # canonical cm below the face's origin: where a child's lower-face skin begins
YOUNG_LIFT = 0.4  # the most a child's skin lifts the lower face (log: about half again as bright)
# how much of a fold's darkening each of R, G and B takes: a shadow in skin is warmer than the lit skin around it
# (light scattered under the skin comes out red), so a fold darkened alike in every channel kept fair skin's pink
# and read as a mauve bruise under the eyes and a band along the brows
FOLD_SHADE = (0.7, 1.0, 1.3)
# how much of the fitted folds' darkening broader than a fold (FOLD_SCALE) is drawn: the prototypes' mean fold is a
# wide soft shadow (under the eyes a smooth dark crescent, like a black eye); their lines are drawn whole, and the
# engine's age_fold_gain is raised so the folds read as old as before (3.6, was 2.5 with the whole shadow)
FOLD_BROAD = 0.5
YOUTH_RUN = 8.0  # years below YOUNG_AGE (or the source age) over which a beard's removal comes in fully
INVERSE_TOLERANCE = 0.2  # grid pixels: how far a fixed-point inverse may miss before the exact one is used
STILL_PIXELS = 0.25  # photo pixels: a displacement below this leaves a pixel as it was (a quarter pixel: unseen)
TINT_SCALE = 0.03  # face widths: the blur of the colours that a colour change scales (fine colour never changes)
MOUTH_TINT_SIGMA = 3.0  # interior cells (of mouth_grid): the blur of the painted mouth's colour
MOUTH_EDGE_CHROMA = 0.25  # canonical cm: the colour blur across the painted mouth's edge (a photo's chroma is soft)
MOUTH_LIP_INSET = 0.1  # share of a lips' gap at each lip left out where a mouth's interior is read (the landmarks
# sit on the lip itself)
OWN_MOUTH_GAP = 0.3  # canonical cm: a driving face's lips parted this far show its mouth's interior, not lips
AU_LINE_DEPTH, AU_LINE_GLOW = 0.5, 0.1  # log-brightness limits of the AU ratio images' fine part
# the region of each AU whose reenactment gain (FittedEngineConfig.reenact_gains: mouth, eyes, brows, jaw) it takes;
# the jaw's drop has its own: a smile's parted lips read short where a surprise's dropped jaw read long
REENACT_REGIONS = {
    "AU01": 2,
    "AU02": 2,
    "AU04": 2,
    "AU05": 1,
    "AU06": 1,
    "AU07": 1,
    "AU45": 1,
    "AU26": 3,
}  # rest: mouth
AGED_FEATURE_HOLD = 0.5  # share of the detail change that ageing brows and eyes are spared
COLOURFUL = 0.06  # mean |log channel - log grey| from which a face counts as fully coloured (grey photos: 0)


@dataclass
class FittedEngineConfig:
    """Sizes of the fitted tables and the strengths of each part of an edit.

    Each field declares its range: sizes are bounded so that no table, blur or grid can ask for absurd memory
    (the tables are R x R per age centre and AU; a blur's kernel grows with its sigma), strengths so that an
    edit stays an edit. validate() adds the rules across fields.
    """

    image_size: int = bounded(128, 16, 1024)  # aligned crops for display and for the refiners
    template_size: int = bounded(200, 32, 512)  # R: the shape-normalised template is R x R pixels
    # template pixels per centimetre of the canonical face (15.5 x 17.7 cm: 30 fills the largest template)
    template_scale: float = bounded(10.0, 2.0, 30.0)
    template_centre: tuple[float, float] = bounded((100.0, 90.6), 0.0, 512.0)  # template pixel of the face's origin
    age_centres: tuple[float, ...] = bounded(
        (2.0, 5.0, 9.0, 14.0, 19.0, 25.0, 32.0, 40.0, 48.0, 56.0, 64.0, 72.0, 80.0), 0.0, MAX_AGE, length=(2, 40)
    )
    detail_bands: int = bounded(5, 1, 5)  # detail bands whose energy is fitted (finest first)
    # template pixels: Gaussian sigma splitting off the finest band (doubles per band; the energies blur at twice
    # that, so the coarsest kernel is 2 * 16 * band_sigma: at most 256, a 2049-tap kernel)
    band_sigma: float = bounded(1.0, 0.25, 8.0)
    energy_downsample: int = bounded(2, 1, 8)  # the energy maps are stored this many times smaller than the template
    sex_features: int = bounded(32, 8, 512)  # side of the grey template thumbnail the sex classifier reads
    # strengths (1 = as fitted)
    # (chosen by eye on held-out full-size photos, with the estimator's readings beside: training/JOURNAL.md)
    # MediaPipe's landmarks under-state how much a child's face differs from an adult's
    age_shape_gain: float = bounded(3.0, 0.0, 5.0)
    # the shape gain grows by this factor towards a child's face (5 and under)
    young_shape_boost: float = bounded(1.0, 0.0, 5.0)
    # the share of that gain a face made younger takes at a grown target age, growing to all of it at
    # CHILD_SHAPE_AGE: the landmarks' change costs identity, and a teen or a younger adult needs less of it
    younger_shape_share: float = bounded(0.6667, 0.0, 1.0)
    # share of the age shape change kept on the face's outline (jaw, chin, hairline; the features keep all):
    # a warp can only drag the photo's own pixels, so a chin pulled far up leaves the old jawline's shadow
    # and the neck's edges behind it as ghost lines
    age_outline_share: float = bounded(0.3, 0.0, 5.0)
    # the head's craniofacial growth (a cardioidal strain, see geometry.growth_field), one strain per age centre:
    # negative makes the face below the ears smaller towards the cranium (a child's), 0 is an adult's; the young
    # centres' are fitted on FG-NET's same people across years (training/fit_engine.py growth), the grown ones set
    growth_strains: tuple[float, ...] = bounded(
        (-0.1057, -0.0819, -0.053, -0.0227, -0.0018, 0.0, 0.0, 0.0, 0.0, 0.005, 0.01, 0.015, 0.02),
        -0.4,
        0.2,
        length=(2, 40),
    )
    # the unsharp mask per unit of enlargement on a moved read (pixels.sharpen_enlarged): a child made grown enlarges
    # its lower face by a fifth to a half, and a small photo's lips blurred into a soft band (at 4, UTKFace children
    # made 30 have lips nearly as sharp as real 25-35-year-olds' at that size: fine over coarse detail 0.283, real
    # 0.298, 0.248 unsharpened)
    enlargement_sharpening: float = bounded(4.0, 0.0, 10.0)
    # made older, the tables' brightening of the face's centre (a grown face's relief) is kept only as far as the
    # skin's brightest channel is this far (log) below white: a flash-lit child made 22 went pale (red >= 250 on
    # 54% of her face's centre; 31% with it)
    tone_headroom: float = bounded(0.3, 0.0, 2.0)
    # how far an old face's soft tissue descends (brows, cheeks, jowls, nose tip; geometry.sag_field), 1 = SAGS
    sag_depth: float = bounded(1.0, 0.0, 4.0)
    # prototype differences are means of many faces: fainter than one face's ageing
    age_texture_gain: float = bounded(2.0, 0.0, 5.0)
    age_chroma_gain: float = bounded(1.0, 0.0, 5.0)
    # share of the prototypes' face-wide mean change kept (their overall exposure and tint): UTKFace's children
    # are photographed brighter and its old faces redder, which on a face reads as a glow or a bruise-like tint,
    # and brightening a photo amplifies its own colour noise; the change's layout (shading, folds) is all kept
    age_exposure_share: float = bounded(0.0, 0.0, 5.0)
    # log darkness of an old face's lines (forehead, crow's feet, under the eyes, folds) at full age, drawn where
    # a face has none yet: a young face has no lines for the detail gains to deepen
    wrinkle_depth: float = bounded(0.5, 0.0, 2.0)
    # years past the oldest age centre over which the tables go on changing as they do between the last two: UTKFace
    # has too few faces past its last centre (80) to fit one beyond it, and a target of 90 was drawn as 80
    age_extrapolation: float = bounded(10.0, 0.0, 40.0)
    age_fold_gain: float = bounded(3.6, 0.0, 5.0)  # the prototypes' new folds and lines, added when ageing
    detail_gain_range: tuple[float, float] = bounded((0.35, 2.5), 0.0, 10.0)
    # the most each band may be amplified, finest first: a photo's finest band is mostly noise and JPEG's 8x8
    # blocks, which amplified become a leathery grid; wrinkles and folds live in the coarser bands
    detail_gain_caps: tuple[float, ...] = bounded((1.0, 1.4, 2.5, 2.5, 2.5), 0.0, 10.0, length=(1, 16))
    # the detail gains raised to this power (a prototype's energy is an average too)
    detail_gain_power: float = bounded(1.5, 0.0, 5.0)
    au_shape_gain: float = bounded(1.0, 0.0, 5.0)
    au_texture_gain: float = bounded(1.0, 0.0, 5.0)
    # an expression's skin from CFEE's real pairs (expressions.py): how many pairs and principal components they are
    # kept as, how many an edit takes, and how much of their skin's motion and look
    expression_pairs: int = bounded(871, 0, 20_000)
    expression_components: int = bounded(96, 1, 512)
    expression_neighbours: int = bounded(5, 1, 64)
    expression_flow_gain: float = bounded(1.0, 0.0, 3.0)
    expression_look_gain: float = bounded(1.0, 0.0, 3.0)
    # reenactment: how far past a driver's landmarks the mouth's, the eyes', the brows' and the jaw's AUs are drawn
    # (1 = to the landmarks): the landmarker reads a warp short of the landmarks it was given (lowered brows, parted lips), so
    # the driver's AU change is added again along the fitted AU shapes, by (gain - 1), fitted on CFEE's training
    # people (training/tools/fit_reenact_gains.py); REENACT_REGIONS names each AU's region
    reenact_gains: tuple[float, float, float, float] = bounded((1.23, 1.94, 1.47, 1.0), 0.0, 3.0)
    # the fitted greying of hair is an average of people: fainter than one person's
    hair_greying_gain: float = bounded(1.2, 0.0, 5.0)
    # the mouth interior, fitted from CFEE's open mouths: one mean per gap height (canonical cm at the lips' centre)
    mouth_gaps: tuple[float, ...] = bounded((0.3, 0.6, 0.9, 1.2, 1.5, 1.9, 2.4), 0.0, 10.0, length=(2, 20))
    mouth_grid: tuple[int, int] = bounded((32, 96), 4, 256)  # (rows across the gap, columns corner to corner)
    # where an edit is computed: the face is resampled to about this many pixels wide (never enlarged)
    engine_face_pixels: int = bounded(128, 32, 1024)
    # face widths around the face that an edit may move (hair, ears, neck follow the face)
    margin: float = bounded(0.5, 0.1, 2.0)

    def validate(self) -> None:
        """The rules across fields (each field's own range is declared with it and checked first)."""
        from ganime_age.errors import ConfigError

        name = type(self).__name__
        if list(self.age_centres) != sorted(set(self.age_centres)):
            raise ConfigError(f"{name}.age_centres must be increasing ages, not {self.age_centres}")
        if len(self.growth_strains) != len(self.age_centres):
            raise ConfigError(f"{name}.growth_strains needs one strain per age centre ({len(self.age_centres)})")
        if list(self.mouth_gaps) != sorted(set(self.mouth_gaps)):
            raise ConfigError(f"{name}.mouth_gaps must be increasing gap heights (cm), not {self.mouth_gaps}")
        if len(self.detail_gain_caps) < self.detail_bands:
            raise ConfigError(f"{name}.detail_gain_caps needs one cap per detail band ({self.detail_bands})")
        if self.detail_gain_range[0] > self.detail_gain_range[1]:
            raise ConfigError(f"{name}.detail_gain_range must be (low, high), not {self.detail_gain_range}")
        if self.template_size % self.energy_downsample:
            raise ConfigError(
                f"{name}.template_size must be a multiple of energy_downsample ({self.energy_downsample})"
            )
        if self.sex_features > self.template_size:
            raise ConfigError(f"{name}.sex_features must not exceed template_size ({self.template_size})")
        if max(self.template_centre) > self.template_size:
            raise ConfigError(f"{name}.template_centre must lie inside the {self.template_size} px template")
