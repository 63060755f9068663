"""Expression presets as AU vectors, from the FACS/EMFACS prototypes of the basic emotions.

EMFACS prototypes (Ekman & Friesen; Ekman, Friesen & Hager 2002) name the AUs of each emotion; the
intensities (0..5, OpenFace's scale, where 1 is a trace and 5 the maximum) are chosen here for a
clearly visible, not caricatured expression. A preset sets its own AUs and leaves the others where they were
(measured on the face, or moved by the visitor): only Neutral sets all 17, to 0.

- happiness (Duchenne smile): AU6 + AU12
- surprise: AU1 + AU2 + AU5 + AU26 (AU25 lips part comes with the jaw drop)
- anger: AU4 + AU5 + AU7 + AU23
- sadness: AU1 + AU4 + AU15
- disgust: AU9 + AU15 + AU16; AU16 (lower lip depressor) is not among GANimation's 17 AUs, so the
  lower-face part uses AU10 (upper lip raiser, the other disgust variant 10+17) and AU17
- fear: AU1 + AU2 + AU4 + AU5 + AU20 + AU26 (+ AU25)
- wink: AU45. GANimation's AU45 (OpenFace's "blink") does not tell the eyes apart, so this closes
  *both* eyes: a blink, not a one-eyed wink.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ganime_age.conditions import AU_NAMES, aus_to_array


@dataclass(frozen=True)
class Preset:
    name: str
    aus: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def apply(self, current: np.ndarray) -> np.ndarray:
        """The 17 AU intensities after choosing this preset, starting from `current`: its own AUs set, every other
        one left where it was (the Smile preset set the brows measured on the face to 0)."""
        return aus_to_array(self.aus, base=np.asarray(current, np.float32))


PRESETS: tuple[Preset, ...] = (
    Preset("Neutral", dict.fromkeys(AU_NAMES, 0.0), note="all AUs at 0"),
    Preset("Smile", {"AU06": 2.5, "AU12": 4.0}, note="happiness: AU6 + AU12"),
    Preset(
        "Surprise",
        {"AU01": 3.0, "AU02": 3.0, "AU05": 3.0, "AU25": 2.0, "AU26": 3.0},
        note="AU1 + AU2 + AU5 + AU26 (+ AU25)",
    ),
    Preset("Anger", {"AU04": 3.5, "AU05": 2.0, "AU07": 3.0, "AU23": 3.0}, note="AU4 + AU5 + AU7 + AU23"),
    Preset("Sadness", {"AU01": 3.0, "AU04": 2.5, "AU15": 3.0}, note="AU1 + AU4 + AU15"),
    Preset(
        "Disgust",
        {"AU09": 3.5, "AU10": 3.0, "AU15": 2.0, "AU17": 2.0},
        note="AU9 + AU15 + AU16, with AU10 + AU17 standing in for AU16 (not in the 17)",
    ),
    Preset(
        "Fear",
        {"AU01": 3.0, "AU02": 2.5, "AU04": 2.5, "AU05": 3.5, "AU20": 3.0, "AU25": 2.0, "AU26": 2.5},
        note="AU1 + AU2 + AU4 + AU5 + AU20 + AU26 (+ AU25)",
    ),
    Preset(
        "Wink",
        {"AU45": 4.0},
        note="AU45 on top of the current expression; AU45 closes both eyes (GANimation has no one-eye AU)",
    ),
)

PRESETS_BY_NAME: dict[str, Preset] = {p.name: p for p in PRESETS}
