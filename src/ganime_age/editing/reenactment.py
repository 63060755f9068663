"""Reenactment: the source photo with a driving face's pose and expression, at any age.

One frame goes through three steps:

1. **Shape transfer** (:class:`ganime_age.models.reenact.ShapeTransfer`): MediaPipe's 3D landmarks,
   transformation matrix and blendshapes of both faces -> target landmarks with the source's face
   shape and the driver's head pose and expression, placed in the source photo.
2. **Pose and expression**: by default the edit engine itself moves the face to the driver's expression at the
   photo's own head pose (one warp of the photo at full resolution), paints the driver's AUs (times
   ``aus_scale``), the target age and an opening mouth's interior, and the photo's head is then turned in 3-D
   to the driver's pose (:class:`ganime_age.engine.turning.TurnableHead`: the side that comes into view from
   the mirror side and the hair beside the face, the background behind the head filled once per photo). With a trained
   :class:`~ganime_age.models.reenact.Reenactor` (the editor's ``reenactor`` part) that network redraws the
   aligned face at the target landmarks first, and the engine then adds the age and the AUs.
3. **Refinement**: the editor's refiner, if it has one, adds its change to the moved face.

It is built on the editor's photo sessions (:mod:`.session`): the source photo is analysed, aged and prepared
for the engine once, whether it drives one edit or every frame of a video. Videos are processed frame by frame
with the target landmarks and AUs smoothed over time by a One-Euro filter: the driver's frames are read and
analysed in order while earlier frames render on other threads (the renders are NumPy and OpenCV, which work
outside Python's lock), and the output, an MP4 (H.264) at the driver's frame rate through imageio-ffmpeg, keeps
the driver's audio.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganime_age.conditions import AU_MAX
from ganime_age.editing.person import check_person, personal
from ganime_age.editing.session import UNKNOWN_AGE, PhotoSession, SessionCache
from ganime_age.errors import FaceIndexError, ModelFileNotFoundError, NoFaceError, TurnBeyondReachWarning, VideoError
from ganime_age.faces.landmarks import UNMEASURED
from ganime_age.validation import check_aus_scale, check_face_index, check_optional_age

logger = logging.getLogger(__name__)

RENDER_THREADS = 2  # a video's frames rendered at once, beside the driver's analysis (two cores: each busy)
REACH_NOTE = 2.0  # degrees a driver may be turned past the head's reach before a note says so
AU_TRUST_TURN = (10.0, 30.0)  # degrees of a driver's yaw: its AUs are taken whole below the first, none past the second

ProgressCallback = Callable[[float, str], Any]
Refine = Callable[..., np.ndarray]  # FaceEditor.refine_photo: (photo, points, target ages, target AUs) -> photo


# ---------------------------------------------------------------------------------------------------------
# temporal smoothing
# ---------------------------------------------------------------------------------------------------------
class OneEuroFilter:
    """One-Euro filter (Casiez et al. 2012) on arrays: little smoothing when things move fast, much when still.

    Values are expected in "face units" (e.g. landmarks divided by the face size), so the defaults fit any
    resolution: `min_cutoff` Hz is the cutoff at rest, raised by `beta` per face-unit/s of speed.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 2.0, d_cutoff: float = 1.0) -> None:
        self.period = 1.0 / max(float(fps), 1e-6)
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.period)

    def __call__(self, value: np.ndarray) -> np.ndarray:
        x = np.asarray(value, np.float64)
        if self._value is None or self._value.shape != x.shape:
            self._value, self._speed = x.copy(), np.zeros_like(x)
            return x.copy()
        speed = (x - self._value) / self.period
        a_d = self._alpha(self.d_cutoff)
        self._speed = a_d * speed + (1.0 - a_d) * self._speed
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._speed))
        self._value = a * x + (1.0 - a) * self._value
        return self._value.copy()

    def reset(self) -> None:
        self._value = self._speed = None


# ---------------------------------------------------------------------------------------------------------
# the engine behind FaceEditor.reenact / reenact_video
# ---------------------------------------------------------------------------------------------------------
def five_points(landmarks: np.ndarray) -> np.ndarray:
    """YuNet-style 5 points (right eye, left eye, nose tip, right and left mouth corner) from 478 landmarks."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    return np.stack([points[[33, 133]].mean(0), points[[362, 263]].mean(0), points[1], points[61], points[291]])


class Reenactment:
    """Pose and expression transfer from a driving face, on an editor's sessions, engine and refiner."""

    def __init__(
        self,
        sessions: SessionCache,
        analyzer: Callable[[], Any],
        engine: Any,
        *,
        refine: Refine,
        reenactor: Any = None,
        device: torch.device | None = None,
        landmarker: str | None = None,
        shape_transfer: Any = None,
    ) -> None:
        from ganime_age.models.reenact import ShapeTransfer

        self.sessions = sessions
        self._analyzer = analyzer  # the editor's face analysis, for driving photos and frames (never cached)
        self.engine = engine
        self.refine = refine
        self.device = device or torch.device("cpu")
        self.reenactor = reenactor.to(self.device).eval() if reenactor is not None else None
        self.shape = shape_transfer or ShapeTransfer(landmarker_path=landmarker)
        self._warned: set[str] = set()

    @property
    def method(self) -> str:
        """ "learned" with a trained reenactor, else "warp" (the classical path: the engine's warp for the expression,
        the head turned in 3-D for the pose)."""
        return "learned" if self.reenactor is not None else "warp"

    @property
    def description(self) -> str:
        """How the pose and expression are made, in the words the README and the Space use."""
        if self.reenactor is not None:
            return "a trained reenactor moves the face"
        return "the expression warped, the head turned in 3-D"

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    # -- analysis ----------------------------------------------------------------------------------
    def source_face(self, session: PhotoSession, face: int) -> Any:
        chosen = session.selected(face)[0]
        if chosen.landmarks is None:
            raise NoFaceError(f"the source photo's face: {UNMEASURED}")
        return chosen

    def driver_face(self, rgb: np.ndarray, face: int = 0, *, what: str = "driving image") -> Any:
        try:
            faces = self._analyzer().analyze(rgb)
        except NoFaceError as error:
            raise NoFaceError(f"no face found in the {what}: {error}") from error
        if not 0 <= face < len(faces):
            raise FaceIndexError(f"driving face {face} asked for, but the {what} has {len(faces)} face(s)")
        chosen = faces[face]
        if chosen.landmarks is None:
            raise NoFaceError(f"a face was detected in the {what}, but its landmarks could not be measured")
        return chosen

    # -- the three steps -----------------------------------------------------------------------------
    def target_landmarks(self, source: Any, driver: Any, reference: Any = None) -> np.ndarray:
        """The source's face with the driver's expression and head pose (with `reference`, the driver's first
        frame: the driver's turn from that frame's pose)."""
        return self.shape.transfer(
            source.landmarks, driver.landmarks, None if reference is None else reference.landmarks
        )

    def pose(self, rgb: np.ndarray, source: Any, target: np.ndarray) -> np.ndarray:
        """The full photo with the source face moved to the target landmarks."""
        if self.reenactor is None:
            from ganime_age.warp import warp_face

            return warp_face(rgb, source.landmarks.landmarks, target, face=self.shape.face)
        from ganime_age.faces import align_face, paste_back, transform_points

        size = int(self.reenactor.config.image_size)
        aligned = align_face(rgb, source.detection.points, size)
        src = transform_points(source.landmarks.landmarks[:, :2], aligned.matrix)
        dst = transform_points(target[:, :2], aligned.matrix)
        device = self.device
        image = torch.from_numpy(aligned.image).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            out = self.reenactor(
                image, torch.from_numpy(src).float()[None].to(device), torch.from_numpy(dst).float()[None].to(device)
            ).image
        crop = ((out[0].clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return paste_back(rgb, crop, aligned.matrix)

    def trusted_aus(self, source: Any, driver: Any) -> np.ndarray:
        """The driver's AUs as far as its turn lets them be read (AU_TRUST_TURN), faded to the source's own beyond.

        MediaPipe's read-out of a face turned 20-30 degrees raises its brows and lids and loses its smile (UTKFace's
        held-out faces: AU02 2.0 and AU05 1.6 where frontal faces read 0.8, AU12 0.15 against 0.95), and the AUs
        paint the expression's skin: a turned driver's misread surprise drew itself on the source. The geometry is
        the landmarks', which the turn does not bias."""
        yaw = abs(float(driver.pose[0]))
        low, high = AU_TRUST_TURN
        share = float(np.clip((high - yaw) / (high - low), 0.0, 1.0))
        own = np.asarray(source.aus, np.float32)
        return own + np.float32(share) * (np.asarray(driver.aus, np.float32) - own)

    def own_mouth(self, rgb: np.ndarray, source: Any) -> np.ndarray | None:
        """The person's own open mouth where their photo shows it, relative to its skin
        (:func:`ganime_age.engine.mouth.own_interior`): their real teeth and the dark behind them; None where the
        lips are closed, and the fitted interior is painted in the person's light. Never the driver's: a laughing
        older man's stained teeth were pasted into a young woman's mouth."""
        from ganime_age.engine.mouth import own_interior

        return own_interior(rgb, source.landmarks.landmarks, self.engine.config.mouth_grid)

    def ageing_plan(
        self, session: PhotoSession, source: Any, age: float | None, source_age: float | None = None
    ) -> tuple[float, float]:
        """(source age, target age) of the edit: the same when no target age is asked for (or none is known).

        `source_age`: the source face's current age as the user knows it, instead of the estimator's reading."""
        age = check_optional_age(age)
        source_age = check_optional_age(source_age, "source_age")
        if source_age is not None:
            return source_age, (age if age is not None else source_age)
        try:
            source_age = float(session.age(source))
        except ModelFileNotFoundError:
            if age is not None:
                raise
            self._warn_once(
                "no-estimator",
                "no age estimator is loaded, so the source's age is unknown and it is kept as it is; "
                "pass age=... or an age estimator",
            )
            return UNKNOWN_AGE, UNKNOWN_AGE
        return source_age, (age if age is not None else source_age)

    def render(
        self,
        session: PhotoSession,
        source: Any,
        target: np.ndarray,
        plan: tuple[float, float],
        driver_aus: np.ndarray,
        aus_scale: float,
        mouth: np.ndarray | None = None,
        person: Any = None,
    ) -> np.ndarray:
        """The source photo with its face moved to the target landmarks, the driver's AUs painted and the age set.

        The classical path: the edit engine moves the face to the target landmarks brought back to the photo's
        own head pose (the driver's expression: one warp at full resolution), paints the AUs, the age and an
        opening mouth's interior (`mouth`: the person's own, :meth:`own_mouth`), and the photo's head,
        turned in 3-D (:mod:`ganime_age.engine.turning`), then takes the driver's pose. With a learned
        reenactor, that network poses the face and the engine then adds age and AUs. `person`: the person's own
        photos (:mod:`.person`), which the classical path's age takes the features of.
        """
        aus = np.clip(np.asarray(driver_aus, np.float32) * float(aus_scale), 0.0, AU_MAX)
        source_aus = np.asarray(source.aus, np.float32)
        engine = self.engine
        if self.reenactor is None:
            face = personal(session.engine_face(source), person)  # prepared once per source photo: a video reuses it
            head = session.turnable_head(source)
            posed, rotation = head.at_own_pose(target)
            out, _ = engine.edit_photo(session.rgb, [face], [plan[0]], [plan[1]], [source_aus], [aus], [posed], [mouth])
            out = head.render(head.aimed(rotation), photo=out, landmarks=posed)
        else:
            posed = self.pose(session.rgb, source, target)
            face = engine.prepare_face(posed, target, segment=self._analyzer().segmenter, parse=self._analyzer().parser)
            out, _ = engine.edit_photo(posed, [face], [plan[0]], [plan[1]], [source_aus], [aus], [target], [mouth])
        # align the refiner's crop on the moved face: its landmark-derived points, with YuNet's offset kept
        offset = np.asarray(source.detection.points, np.float64) - five_points(source.landmarks.landmarks)
        return self.refine(out, [five_points(target) + offset], [plan[1]], [aus])

    # -- public entry points --------------------------------------------------------------------------
    def image(
        self,
        source: Any,
        driving: Any,
        age: float | None = None,
        aus_scale: float = 1.0,
        *,
        face: int = 0,
        driving_face: int = 0,
        source_age: float | None = None,
        person: Any = None,
    ) -> Image.Image:
        """The source photo, full size, with the driver's pose and expression at the target age (`source_age`: the
        source face's current age where the estimate is wrong; `person`: their own photos, :mod:`.person`)."""
        from ganime_age.faces import load_image

        # every argument is checked before a photo is read: the same typed errors as FaceEditor.edit
        age, face, driving_face = _check_arguments(age, aus_scale, face, driving_face)
        source_age = check_optional_age(source_age, "source_age")
        person = check_person(person)
        session = self.sessions.open(source)
        driver_rgb = load_image(driving)
        src = self.source_face(session, face)
        drv = self.driver_face(driver_rgb, driving_face)
        plan = self.ageing_plan(session, src, age, source_age)
        mouth = self.own_mouth(session.rgb, src)
        aus = self.trusted_aus(src, drv)
        out = self.render(session, src, self.target_landmarks(src, drv), plan, aus, aus_scale, mouth, person)
        self.note_reach(self.shape.beyond_reach(src.landmarks, drv.landmarks))
        return Image.fromarray(out)

    def note_reach(self, beyond: float) -> None:
        """A :class:`~ganime_age.errors.TurnBeyondReachWarning` where a driver asked the head to turn `beyond`
        degrees past what it follows (the shape transfer's ``max_turn_degrees``; a degree or two is no news)."""
        if beyond > REACH_NOTE:
            warnings.warn(
                f"the driving face is turned {beyond:.0f} degrees further from the photo's pose than its head can "
                f"turn, so the head is turned as far as it can be ({self.shape.config.max_turn_degrees:.0f} "
                "degrees from its own pose): the photo never showed the rest of it",
                TurnBeyondReachWarning,
                stacklevel=3,
            )

    def video(
        self,
        source: Any,
        driving_video: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        age: float | None = None,
        aus_scale: float = 1.0,
        *,
        face: int = 0,
        driving_face: int = 0,
        progress: ProgressCallback | None = None,
        smoothing: bool = True,
        max_frames: int | None = None,
        max_side: int = 1280,
        show_progress_bar: bool = True,
        source_age: float | None = None,
        person: Any = None,
    ) -> Path:
        """Reenact the source photo with every frame of a driving video; writes an MP4 and returns its path.

        Frames where the driver shows no face repeat the last pose (the source as it is before the
        first face). `source_age` as for :meth:`image`. The source is downscaled to `max_side` pixels on its
        longest side first, so videos of huge photos stay playable. The driver's audio is kept (as long as the
        frames written).
        """
        import cv2
        from threadpoolctl import threadpool_limits
        from tqdm.auto import tqdm

        from ganime_age.faces import load_image
        from ganime_age.video import VideoWriter, add_audio, iter_frames, probe_video

        age, face, driving_face = _check_arguments(age, aus_scale, face, driving_face)
        source_age = check_optional_age(source_age, "source_age")
        person = check_person(person)
        output = Path(output_path)
        if output.suffix.lower() != ".mp4":
            raise VideoError(f"a driving video makes a video: the output must be an .mp4 file, got {output.name!r}")
        info = probe_video(driving_video)
        session = self.sessions.open(_limit_side(load_image(source), max_side))
        rgb = session.rgb
        src = self.source_face(session, face)
        plan = self.ageing_plan(session, src, age, source_age)
        total = info.frames if max_frames is None or info.frames is None else min(info.frames, max_frames)
        scale = float(np.ptp(src.landmarks.landmarks[:, :2], axis=0).max()) or 1.0
        landmark_filter = OneEuroFilter(info.fps)
        au_filter = OneEuroFilter(info.fps, min_cutoff=1.5, beta=0.5)
        target: np.ndarray | None = None
        first: Any = None  # the driver's first face
        aus = np.zeros_like(np.asarray(src.aus, np.float32))
        mouth = self.own_mouth(session.rgb, src)  # the person's own open mouth, where the photo shows one
        found, beyond = 0, 0.0
        # what every frame shares is made once, before the threads that render frames start
        if self.reenactor is None:
            personal(session.engine_face(src), person)
            session.turnable_head(src)
        bar = tqdm(total=total, desc="reenact", unit="frame", disable=not show_progress_bar)
        pending: deque[Future[np.ndarray]] = deque()
        written = 0

        def write_next(writer: VideoWriter) -> None:
            nonlocal written
            writer.write(pending.popleft().result())
            written += 1
            bar.update(1)
            if progress is not None:
                progress(written / total if total else 0.0, f"frame {written}" + (f" of {total}" if total else ""))

        pool = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="reenact")
        # the frames are the parallel work: OpenCV's own threads within each only add their hand-offs (a tenth
        # more CPU a frame)
        opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            # OpenBLAS called from two threads at once, each with its own pool of threads, spins without end
            with threadpool_limits(limits=1, user_api="blas"), VideoWriter(output, info.fps) as writer:
                for index, frame in enumerate(iter_frames(driving_video, max_frames)):
                    try:
                        drv = self.driver_face(frame, driving_face, what=f"driving video frame {index}")
                    except (NoFaceError, FaceIndexError):
                        drv = None
                    if drv is not None:
                        found += 1
                        # the head follows the driver's motion from its first frame, not the driver's own pose
                        first = drv if first is None else first
                        new_target = self.target_landmarks(src, drv, first)
                        new_aus = self.trusted_aus(src, drv)
                        if smoothing:
                            new_target = (landmark_filter(new_target / scale) * scale).astype(np.float32)
                            new_aus = np.clip(au_filter(new_aus / AU_MAX) * AU_MAX, 0.0, AU_MAX).astype(np.float32)
                        target, aus = new_target, new_aus
                        beyond = max(beyond, self.shape.beyond_reach(src.landmarks, drv.landmarks, first.landmarks))
                    if target is None:
                        done: Future[np.ndarray] = Future()
                        done.set_result(rgb)
                        pending.append(done)
                    else:
                        pending.append(
                            pool.submit(self.render, session, src, target, plan, aus, aus_scale, mouth, person)
                        )
                    while len(pending) > RENDER_THREADS:
                        write_next(writer)
                while pending:
                    write_next(writer)
            if found:
                add_audio(output, driving_video, written / info.fps)
        except BaseException:
            output.unlink(missing_ok=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # after a failure, frames not yet started never start
            cv2.setNumThreads(opencv_threads)
            bar.close()
        if found == 0:
            output.unlink(missing_ok=True)
            raise NoFaceError(f"no face found in any frame of the driving video {Path(driving_video).name}")
        self.note_reach(beyond)
        return output


def _check_arguments(age: Any, aus_scale: Any, face: Any, driving_face: Any) -> tuple[float | None, int, int]:
    """The shared checks (validation.py) of a reenactment's arguments: (age, face, driving_face) canonical."""
    check_aus_scale(aus_scale)
    return check_optional_age(age), check_face_index(face, "face"), check_face_index(driving_face, "driving_face")


def _limit_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
