"""The mesh backend: each source photo's own head turned in 3-D to the requested poses, no generative model.

The head is :class:`ganime_age.engine.turning.TurnableHead` (the photo's MediaPipe face mesh drawn turned, the
hair, ears and neck the photo's own pixels moved with a skull and a neck), made once per source from the photo
and its landmarks, and drawn again at each pose. It works in the
photo's own frame and size: resampling the photo into another frame first would only blur it, and borders
reflected into a wider frame would be turned along with the head.

Aiming: a job asks for an absolute pose (or the source's plus an offset, ``pose_mode``), and the judge measures
the output's pose with the landmarker, as it does for every backend. The turn needed is the request less the
source's measured pose, but the landmarker reads a rendered turn short (about 7 of 30 degrees on UTKFace, its
nose still lit from the front), so an output that misses by more than half the tolerance is turned again, aimed
past the request by the measured shortfall (``aim_corrections`` times), and the attempt measured closest is the
one judged. The judge itself is unchanged: pose, identity and the age label are decided as for ControlNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import AugmentConfig
from .judge import FaceJudge, Outcome, pose_error
from .poses import FramedSource, Job


@dataclass
class _Attempt:
    image: np.ndarray
    verdict: Any
    error: float
    aim: np.ndarray


class MeshBackend:
    """Turns each job's source head to its pose and judges the result (``produce``), CPU only."""

    reframe = False  # the photo stays in its own frame (see the module docstring)
    condition = None  # no conditioning drawing

    def __init__(self, config: AugmentConfig, judge: FaceJudge) -> None:
        self.config = config
        self.judge = judge
        self._head: tuple[str, Any] | None = None  # the last source's head: a source's jobs arrive together

    def head(self, source: FramedSource) -> Any:
        """The source's TurnableHead, made once per source."""
        if self._head is None or self._head[0] != source.source_id:
            from ganime_age.engine.turning import TurnableHead

            self._head = (source.source_id, TurnableHead(source.image, source.landmarks))
        return self._head[1]

    def planned_turn(self, job: Job) -> np.ndarray:
        """(yaw, pitch) degrees from the source's measured pose to the requested one."""
        return np.asarray(job.requested[:2], np.float64) - np.asarray(job.source.pose[:2], np.float64)

    def refuse(self, job: Job) -> str | None:
        """A reason not to attempt a job: its pose is further than ``max_turn`` from the source's (the side that
        comes into view would be mostly made up)."""
        turn = self.planned_turn(job)
        return "source_turn_too_large" if float(np.hypot(*turn)) > self.config.max_turn else None

    def produce(self, jobs: list[Job]) -> list[Outcome]:
        return [self.turn(job) for job in jobs]

    def turn(self, job: Job) -> Outcome:
        """One job: turn, measure, aim again by the shortfall while it misses by more than half the tolerance."""
        head = self.head(job.source)
        requested = np.asarray(job.requested[:2], np.float64)
        aim = self.planned_turn(job)
        best: _Attempt | None = None
        attempts = 0
        for _ in range(1 + max(0, self.config.aim_corrections)):
            attempts += 1
            image = head.turn(yaw=float(aim[0]), pitch=float(aim[1]))
            verdict = self.judge.assess(image, job)
            error = pose_error(verdict, job)
            if best is None or error < best.error:
                best = _Attempt(image, verdict, error, aim)
            if verdict.pose_measured is None or error <= self.config.pose_tolerance / 2:
                break
            aim = self._limit(aim + requested - np.asarray(verdict.pose_measured[:2], np.float64))
        assert best is not None
        extra = {"turn": [round(float(v), 2) for v in best.aim], "attempts": attempts}
        return Outcome(job, best.image, best.verdict, extra)

    def _limit(self, aim: np.ndarray) -> np.ndarray:
        size = float(np.hypot(*aim))
        return aim if size <= self.config.max_turn else aim * (self.config.max_turn / size)
