"""The fitted edit engine as a Hub model: its fitted tables (torch buffers in ``model.safetensors``), a face
prepared once per photo, and an edit of the photo as a short sequence of the engine's jobs (geometry,
appearance, hair, mouth, pixels; see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from ganime_age.conditions import AU_NAMES, MAX_AGE, NUM_AUS
from ganime_age.engine import appearance, expressions, geometry
from ganime_age.engine.appearance import (
    TextureChange,
    detail_bands,
    sex_thumbnail,
)
from ganime_age.engine.beard import find_beard
from ganime_age.engine.config import TINT_SCALE, FittedEngineConfig
from ganime_age.engine.descriptors import describe, smile
from ganime_age.engine.exemplars import AgeExemplars, ExemplarMatch, turn_share
from ganime_age.engine.face import Change, EngineFace
from ganime_age.engine.forehead import find_forehead, forehead_share
from ganime_age.engine.frames import (
    GridFrame,
    PhotoCrop,
    Template,
    colourfulness,
    fade_out,
    log_image,
    photo_crop,
    template_for,
    template_map,
    template_view,
    template_width,
)
from ganime_age.engine.greying import hair_greying_share, hair_restoring_share
from ganime_age.engine.hair import hair_layer
from ganime_age.engine.hair_window import hair_turn_share
from ganime_age.engine.mouth import mouth_gap, paint_mouth, skin_level
from ganime_age.engine.moved_person import hold_moved, person_moved
from ganime_age.engine.neck import find_neck
from ganime_age.engine.parsing import Parser, parse_head
from ganime_age.engine.pixels import enlargement, repaint_box, repaint_field, resample, sharpen_enlarged
from ganime_age.engine.scene import Segmenter
from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT, NUM_LANDMARKS, NUM_MESH_VERTICES
from ganime_age.hub import HubModel
from ganime_age.meshwarp import rasterise


class FittedEngine(HubModel):
    """Age and AU edits of whole photos from fitted shape and appearance tables (see the package docstring)."""

    model_type = "fitted_engine"
    role: ClassVar[str] = "engine"
    config_class = FittedEngineConfig
    description = (
        "A fitted (least squares, means) face-edit engine: age progression/regression and FACS AU expression "
        "edits at the photo's own resolution, from landmark displacement models and shape-normalised prototypes."
    )

    def __init__(self, config: FittedEngineConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        k, size = len(c.age_centres), c.template_size
        energy = size // c.energy_downsample
        thumb = c.sex_features * c.sex_features
        self.register_buffer("mean_shape", torch.zeros(NUM_LANDMARKS, 3))  # canonical cm
        self.register_buffer("age_shapes", torch.zeros(2, k, NUM_LANDMARKS, 3))  # male, female: offsets from the mean
        self.register_buffer("au_shapes", torch.zeros(NUM_AUS, NUM_LANDMARKS, 3))
        # per AU: how far one unit moves the face, fitted so that an edit to x reads x on the AU read-out
        self.register_buffer("au_gains", torch.ones(NUM_AUS))
        # per landmark: the farthest real expressions move it (canonical cm); an expression edit never goes further
        self.register_buffer("au_reach", torch.zeros(NUM_LANDMARKS))
        self.register_buffer("mean_texture", torch.zeros(3, size, size))
        self.register_buffer("age_textures", torch.zeros(2, k, 3, size, size))  # offsets from mean_texture
        self.register_buffer("age_energies", torch.zeros(2, k, c.detail_bands, energy, energy))
        self.register_buffer("au_textures", torch.zeros(NUM_AUS, 3, size, size))
        self.register_buffer("sex_weights", torch.zeros(thumb + 1))  # logistic regression, last = bias
        rows, cols = c.mouth_grid
        # colour of the open mouth relative to the face's skin brightness
        # (open jaw | smile, gap bin, 3, rows, cols): a dropped jaw shows the dark of the mouth, a smile the teeth
        self.register_buffer("mouth_interiors", torch.zeros(2, len(c.mouth_gaps), 3, rows, cols))
        # per age centre, the share of a person's hair that has greyed (0 = none fitted: hair is never touched),
        # grey hair's brightness relative to the skin's, and young hair's colour (R, G, B) relative to it (what
        # grey hair is given back when a face is made young; 0 = none fitted: grey hair stays grey)
        self.register_buffer("hair_greying", torch.zeros(k))
        self.register_buffer("hair_level", torch.ones(1))
        self.register_buffer("hair_young", torch.zeros(3))
        expressions.register_tables(self, c)
        self._tables: dict[str, np.ndarray] | None = None
        self._split: dict[str, np.ndarray] | None = None
        self._splitting: Future[dict[str, np.ndarray]] | None = None

    # -- the fitted tables (torch holds them; the engine runs in NumPy/OpenCV on float32 copies) ---------------
    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.invalidate()
        super()._load_from_state_dict(*args, **kwargs)

    @property
    def tables(self) -> dict[str, np.ndarray]:
        if self._tables is None:
            self._tables = {name: buffer.detach().float().cpu().numpy() for name, buffer in self.named_buffers()}
        return self._tables

    def invalidate(self) -> None:
        """Call after changing buffers in place (the fitting does)."""
        if self._splitting is not None:  # a split made ahead reads the tables: let it end before they change
            self._splitting.result()
        self._tables = self._split = self._splitting = None

    def start_split(self) -> None:
        """Make :attr:`age_split` (0.4 s, once a process) on a thread of its own: an editor starts it when it is
        built, so that a process's first edit analyses its photo meanwhile."""
        if self._split is None and self._splitting is None:
            making = ThreadPoolExecutor(1, thread_name_prefix="ganime-tables")
            self._splitting = making.submit(appearance.age_split, self.config, self.tables, self.template)
            making.shutdown(wait=False)

    @property
    def template(self) -> Template:
        c = self.config
        return template_for(c.template_size, c.template_scale, tuple(c.template_centre))

    @property
    def centres(self) -> np.ndarray:
        return np.asarray(self.config.age_centres, np.float64)

    # -- per photo ----------------------------------------------------------------------------------------

    def set_tables(self, **tables: np.ndarray | torch.Tensor) -> None:
        """Replace fitted tables by name (what ``training/fit_engine.py`` fits), shapes checked; the copies and
        the derived tables slider moves read are rebuilt on next use."""
        buffers = dict(self.named_buffers())
        for name, value in tables.items():
            if name not in buffers:
                raise KeyError(f"the engine has no table {name!r}; it has {', '.join(sorted(buffers))}")
            with torch.no_grad():
                buffers[name].copy_(torch.as_tensor(value))
        self.invalidate()

    @property
    def age_split(self) -> dict[str, np.ndarray]:
        """The tables as a slider move reads them (:func:`appearance.age_split`), made once."""
        if self._split is None:
            making, self._splitting = self._splitting, None  # started ahead by an editor (start_split)
            self._split = (
                making.result() if making is not None else appearance.age_split(self.config, self.tables, self.template)
            )
        return self._split

    # -- per photo ----------------------------------------------------------------------------------------
    def prepare_face(
        self,
        rgb: np.ndarray,
        landmarks: np.ndarray,
        *,
        segment: Segmenter,
        parse: Parser | None = None,
        others: Sequence[np.ndarray] = (),
        female: float | None = None,
        exemplars: AgeExemplars | None = None,
    ) -> EngineFace:
        """Everything about one face that slider moves reuse: region, engine grid, mesh raster, bands, sex, hair.

        `segment` is the face analysis's selfie segmenter (the person's silhouette, where hair is): the engine
        takes what the analysis sees, and runs no analysis of its own. `parse`: the analysis's face parser, which
        names each pixel around the face (:mod:`.parsing`): with it, the edit changes this person's head, neck and
        hair and nothing else (a cap, a shirt, a neighbour), and the segmenter only settles its hair that looks like
        the wall beside it. `others`: the landmarks of the photo's
        other faces, which this face's edit never reaches. `female`: how likely the face is a woman's, where the
        caller knows better than the engine's own classifier (None: the engine's reading). `exemplars`: a bank of
        real faces of every age (:mod:`.exemplars`), which edits across the young years match this face to.
        """
        from ganime_age.face_model import canonical_face, head_similarity

        c = self.config
        template = self.template
        points = np.asarray(landmarks, np.float64)
        height, width = rgb.shape[:2]
        face_width = float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2]))
        face_width = max(face_width, float(np.ptp(points[:NUM_MESH_VERTICES, 0])), 8.0)
        low, high = points[:, :2].min(0), points[:, :2].max(0)
        reach = c.margin * face_width
        x0, y0 = np.floor(low - reach).astype(int)
        x1, y1 = np.ceil(high + reach).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        scale = min(1.0, c.engine_face_pixels / face_width)
        grid_w, grid_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
        frame = GridFrame((int(x0), int(y0), int(x1), int(y1)), (grid_h, grid_w))
        sx, _ = frame.scale
        grid_points = points.copy()
        grid_points[:, :2] = frame.to_grid(points)
        grid_points[:, 2] = points[:, 2] * sx
        roi = rgb[y0:y1, x0:x1]  # read in place: a contiguous copy of a 12 MP photo's face region was 25 MB
        grid_rgb = cv2.resize(roi, (grid_w, grid_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else roi.copy()
        raster = rasterise(
            grid_points[:NUM_MESH_VERTICES, :2],
            template.triangles,
            (grid_h, grid_w),
            depth=grid_points[:NUM_MESH_VERTICES, 2],
            reference_areas=template.frontal_areas,
        )
        template_coords = raster.interpolate(template.vertices.astype(np.float32), fill=-1.0)
        face_mask = (
            cv2.remap(
                template.mask, template_coords[..., 0], template_coords[..., 1], cv2.INTER_LINEAR, borderValue=0.0
            )
            * raster.mask
        )
        log_rgb = log_image(grid_rgb)
        grey = log_rgb.mean(axis=2)
        band_scale = c.band_sigma * (grid_points[FACE_RIGHT, 0] - grid_points[FACE_LEFT, 0]) / template_width(template)
        bands = detail_bands(grey, max(float(band_scale), 0.5), c.detail_bands)
        similarity = head_similarity(points, canonical_face())
        cm_to_grid = float(similarity.scale * sx)
        face_mask = face_mask.astype(np.float32)
        skin = skin_level(rgb, points, face_width)
        female_share = self.female_probability(rgb, points) if female is None else float(np.clip(female, 0.0, 1.0))
        young_skin = None
        if np.any(self.tables["age_textures"]):
            mapping = template_map(template, grid_points)
            template_face = cv2.remap(log_rgb, mapping, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            young_skin = appearance.young_skin(c, self.age_split, template, template_face, female_share)
        level, young = float(self.tables["hair_level"][0]), self.tables["hair_young"]
        parsed = parse_head(rgb, points, parse, segment) if parse is not None else None
        layer = hair_layer(rgb, points, face_mask, frame.box, level, skin, segment, others, young=young, parsed=parsed)
        # an engine that has fitted no ages changes no age: no beard is looked for
        beard = (
            find_beard(rgb, points, layer.person_at, layer.hair_on, female_share) if young_skin is not None else None
        )
        forehead = find_forehead(rgb, points, layer.person_at, layer.hair_on) if young_skin is not None else None
        beard_on = beard.share_on if beard is not None else None
        neck = find_neck(rgb, points, layer.person_at, layer.hair_on, beard_on) if young_skin is not None else None
        matched = None
        if exemplars is not None and young_skin is not None:
            exemplars.check_template(template, c.template_scale, tuple(c.template_centre))
            gap = mouth_gap(grid_points, cm_to_grid)
            described = describe(template, template_face, gap, smile(grid_points), female_share)
            share = turn_share(similarity.rotation)
            facial_hair = None
            if beard is not None:
                on_grid = beard.share_on(frame.box, (grid_h, grid_w))
                facial_hair = cv2.remap(on_grid, mapping, None, cv2.INTER_LINEAR, borderValue=0.0)
            if share > 0.0:
                matched = ExemplarMatch(exemplars, template, template_face, described, share, facial_hair=facial_hair)
        return EngineFace(
            box=frame.box,
            scale=float(sx),
            grid_shape=(grid_h, grid_w),
            raster=raster,
            template_coords=template_coords,
            face_mask=face_mask,
            log_grey_bands=bands,
            rotation=similarity.rotation,
            cm_to_grid=cm_to_grid,
            female=female_share,
            colourfulness=colourfulness(log_rgb, face_mask),
            landmarks=grid_points,
            mouth_gap=mouth_gap(grid_points, cm_to_grid),
            skin=skin,
            smooth_rgb=cv2.GaussianBlur(
                grid_rgb.astype(np.float32), (0, 0), max(TINT_SCALE * face_width * sx, 1.0)
            ).reshape(grid_h, grid_w, 3),
            layer=layer,
            hair=layer.hair_on(frame.box, (grid_h, grid_w)),
            beard=beard,
            forehead=forehead,
            neck=neck,
            young_skin=young_skin,
            exemplars=matched,
        )

    def female_probability(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """The fitted logistic regression on a grey, shape-normalised thumbnail of the face (UTKFace's labels)."""
        weights = self.tables["sex_weights"]
        if not np.any(weights):
            return 0.5
        features = self.sex_features(rgb, landmarks)
        return float(1.0 / (1.0 + math.exp(-float(np.clip(features @ weights[:-1] + weights[-1], -30, 30)))))

    def sex_features(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.sex_thumbnail(log_image(template_view(self.template, rgb, landmarks)))

    def sex_thumbnail(self, log_face: np.ndarray) -> np.ndarray:
        """A face's log-colour template view -> the sex classifier's input (what the fit trains it on)."""
        return sex_thumbnail(self.template, self.config.sex_features, log_face)

    def hair_greying_share(self, source_age: float, target_age: float) -> float:
        """The share of a person's pigmented hair that greys from `source_age` to `target_age` (:mod:`.hair`)."""
        return hair_greying_share(self, source_age, target_age)

    def hair_restoring_share(self, source_age: float, target_age: float) -> float:
        """The share of a person's grey hair that regains its colour from `source_age` to `target_age`."""
        return hair_restoring_share(self, source_age, target_age)

    # -- per slider move --------------------------------------------------------------------------------
    def shape_change(
        self,
        face: EngineFace,
        source_age: float,
        target_age: float,
        source_aus: np.ndarray,
        target_aus: np.ndarray,
        target_landmarks: np.ndarray | None = None,
    ) -> geometry.Motion:
        """The landmark motion on the engine grid for this edit (:func:`geometry.shape_change`)."""
        return geometry.shape_change(self, face, source_age, target_age, source_aus, target_aus, target_landmarks)

    def texture_change(
        self, face: EngineFace, source_age: float, target_age: float, source_aus: np.ndarray, target_aus: np.ndarray
    ) -> TextureChange | None:
        """The log-intensity change on the engine grid (:func:`appearance.texture_change`)."""
        return appearance.texture_change(self, face, source_age, target_age, source_aus, target_aus)

    def render(
        self,
        rgb: np.ndarray,
        face: EngineFace,
        source_age: float,
        target_age: float,
        source_aus: np.ndarray,
        target_aus: np.ndarray,
        *,
        target_landmarks: np.ndarray | None = None,
        mouth: np.ndarray | None = None,
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """The edited part of the photo: its box (x0, y0, x1, y1), its uint8 pixels and where it changed
        ((h, w) float32, 0 = the input's pixel), or None when the edit changes nothing.

        The geometry and the log-intensity change are computed on the engine grid; only the final
        resampling (one cubic remap of the input's own pixels) and the intensity change run at the photo's
        resolution, and only over the box the edit changes. `target_landmarks`: see :meth:`shape_change`;
        `mouth`: a driving face's own open mouth (:func:`.mouth.own_interior`), painted where the lips part.
        """
        source_age = float(np.clip(source_age, 0.0, MAX_AGE))
        target_age = float(np.clip(target_age, 0.0, MAX_AGE))
        layer = face.layer
        turned = hair_turn_share(face.rotation)  # a far-turned head's hair window is a guess
        greying = turned * self.hair_greying_share(source_age, target_age) if layer.hair_box is not None else 0.0
        restoring = turned * self.hair_restoring_share(source_age, target_age) if layer.young is not None else 0.0
        # made while the motion and skin are (a new photo's strands); where both change, restoring reads greyed hair
        layer.start_changes(rgb, greying > 0.0, restoring > 0.0 and greying <= 0.0)
        motion = self.shape_change(face, source_age, target_age, source_aus, target_aus, target_landmarks)
        texture = self.texture_change(face, source_age, target_age, source_aus, target_aus)
        growth = geometry.growth_field(self, face, source_age, target_age, motion.age)
        moving = motion.moving or growth is not None
        lifts = [
            (face.beard, geometry.youth(source_age, target_age)),
            (face.forehead, forehead_share(source_age, target_age)),
            (face.neck, forehead_share(source_age, target_age)),  # an old neck's lines go as the forehead's do
        ]
        lifts = [(lift, amount) for lift, amount in lifts if lift is not None and amount > 0.0]
        hair = max(greying, restoring)
        if not moving and texture is None and hair <= 0.0 and not lifts:
            return None
        sample, changed, moves = (
            geometry.backward_map(face, motion, self.template, growth, age_key=(self, source_age, target_age))
            if moving
            else (None, np.zeros(face.grid_shape, np.float32), motion.total)
        )
        factor, painted = repaint_field(texture, face.smooth_rgb, sample)
        if painted is not None:
            changed = np.maximum(changed, painted)
        found = face.frame.changed_box(changed)
        boxes = ([found[0]] if found is not None else []) + ([layer.hair_box] if hair > 0.0 else [])
        boxes += [lift.box for lift, _ in lifts]
        if not boxes:
            return None
        # the photo box that changes: the face's (geometry, colour) and its hair's when it greys
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        source = rgb
        if hair > 0.0 or lifts:  # hair greys (or regains its colour), a beard and old lines go first, on the
            # input's pixels, then all move with the geometry
            bx0, by0, bx1, by1 = face.box
            gx0, gy0, gx1, gy1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
            greyed = rgb[gy0:gy1, gx0:gx1].copy()
            layer.grey(greyed, (gx0, gy0), greying)
            layer.restore(greyed, (gx0, gy0), restoring)
            for lift, amount in lifts:
                lift.lift(greyed, (gx0, gy0), amount)
            source = PhotoCrop(greyed, gx0, gy0)
        moved = None
        if found is not None:  # the face first: its cubic read's positions are the largest thing an edit holds
            (ex0, ey0, ex1, ey1), part = found
            frame = face.frame
            original = photo_crop(source, (ex0, ey0, ex1, ey1))
            moved_person = None
            if sample is not None:
                sharpening = self.config.enlargement_sharpening
                enlarged = enlargement(sample, frame.per) if sharpening > 0.0 else None  # (the next line reuses sample)
                # one cubic remap of the input's own pixels (one two-channel map: slicing x and y apart copies both)
                positions = frame.field_to_photo(frame.positions_to_photo(sample), *part)
                face_pixels = resample(photo_crop(source, face.box), positions)
                moved_person = person_moved(layer, face.box, (ex0, ey0, ex1, ey1), positions)
                del positions  # two float32 channels over the face's region (67 MB at 12 MP)
                if enlarged is not None:
                    sharpen_enlarged(face_pixels, frame.field_to_photo(enlarged, *part), sharpening)
            else:
                face_pixels = original.copy()
            engine_mask = frame.field_to_photo(changed, *part).copy()  # not the whole region's resize, held
            if moved_person is not None:
                moved = ((ex0, ey0, ex1, ey1), engine_mask, moved_person)
            if factor is not None:
                repaint_box(face_pixels, factor, painted, frame, (ex0, ey0, ex1, ey1))
            if moving:
                smile = float(np.asarray(target_aus)[AU_NAMES.index("AU12")])
                paint_mouth(self, face_pixels, face, moves, (ex0, ey0), smile, mouth)
            cv2.copyTo(original, cv2.compare(engine_mask, 0.0, cv2.CMP_LE), face_pixels)  # untouched: the input's
        edited = photo_crop(source, (x0, y0, x1, y1)).copy()
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        if hair > 0.0:
            hx0, hy0, hx1, hy1 = layer.hair_box
            np.multiply(layer.share, np.float32(hair / 255.0), out=mask[hy0 - y0 : hy1 - y0, hx0 - x0 : hx1 - x0])
        for lift, amount in lifts:
            bx0, by0, bx1, by1 = lift.box
            inner = mask[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
            np.maximum(inner, lift.changed * np.float32(amount), out=inner)
        if found is not None:
            edited[ey0 - y0 : ey1 - y0, ex0 - x0 : ex1 - x0] = face_pixels
            inner = mask[ey0 - y0 : ey1 - y0, ex0 - x0 : ex1 - x0]
            np.maximum(inner, engine_mask, out=inner)
        # the edit stays on its person: walls, shirts and neighbours keep their pixels
        person = layer.person_bytes(x0, y0, x1, y1).copy()
        if moved is not None:
            (mx0, my0, mx1, my1), moved_mask, grown = moved
            hold_moved(person[my0 - y0 : my1 - y0, mx0 - x0 : mx1 - x0], moved_mask, grown)
        original = rgb[y0:y1, x0:x1]
        fade_out(edited, original, person, mask)  # the silhouette's soft edge: the edit fades out there
        cv2.copyTo(original, cv2.compare(mask, 0.0, cv2.CMP_LE), edited)  # untouched pixels: the input's own
        return (x0, y0, x1, y1), edited, mask

    def edit_photo(
        self,
        rgb: np.ndarray,
        faces: list[EngineFace],
        source_ages: list[float],
        target_ages: list[float],
        source_aus: list[np.ndarray],
        target_aus: list[np.ndarray],
        target_landmarks: list[np.ndarray | None] | None = None,
        mouths: list[np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, list[Change | None]]:
        """The whole photo with every listed face edited, and per face the box and mask of what changed.

        Faces are prepared on the input photo; each is rendered from the photo as the previous faces left it.
        `target_landmarks` (per face, or None): given geometry, e.g. a driving face's (see :meth:`shape_change`);
        `mouths` (per face, or None): a driving face's own open mouth (see :meth:`render`).
        """
        out = rgb
        changes: list[Change | None] = []
        given = target_landmarks if target_landmarks is not None else [None] * len(faces)
        interiors = mouths if mouths is not None else [None] * len(faces)
        for face, s_age, t_age, s_aus, t_aus, points, mouth in zip(
            faces, source_ages, target_ages, source_aus, target_aus, given, interiors, strict=True
        ):
            result = self.render(out, face, s_age, t_age, s_aus, t_aus, target_landmarks=points, mouth=mouth)
            if result is None:
                changes.append(None)
                continue
            if out is rgb:
                out = rgb.copy()
            (x0, y0, x1, y1), pixels, mask = result
            out[y0:y1, x0:x1] = pixels
            changes.append(((x0, y0, x1, y1), mask))
        return out, changes
