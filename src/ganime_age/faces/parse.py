"""What each pixel around a face is: BiSeNetV2 trained on CelebAMask-HQ's 19 classes (skin, brows, eyes,
glasses, ears, earring, nose, mouth, lips, neck, necklace, cloth, hair, hat).

The selfie segmenter only tells a person from the background, so the engine guessed hair, clothes and the
neighbours from colours inside that silhouette, and greyed caps, headscarves, dark shirts and the man in front.
The parser names them. The model (MIT, 2.8 MB, shipped in ``weights/face-models``) is int8 TFLite, which
OpenCV's dnn cannot run; Google's ``ai-edge-litert`` runtime does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

import cv2
import numpy as np

from ganime_age.assets import resolve_asset
from ganime_age.errors import ModelFileNotFoundError

INPUT_SIZE = 448
# CelebAMask-HQ's classes as the network numbers them
BACKGROUND, SKIN, LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, GLASSES, LEFT_EAR, RIGHT_EAR, EARRING = range(10)
NOSE, MOUTH, UPPER_LIP, LOWER_LIP, NECK, NECKLACE, CLOTH, HAIR, HAT = range(10, 19)
NUM_CLASSES = 19


class FaceParser:
    """Label maps of square RGB crops around one face; reuse one instance (creation loads the network).

    Thread-safe: one interpreter serves one call at a time. `threads` (None: as many as torch's intra-op threads,
    the process's CPU budget) run each parse: 57 ms a face on one of two cores, 37 on both, the same labels.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, threads: int | None = None) -> None:
        import torch
        from ai_edge_litert.interpreter import Interpreter

        threads = torch.get_num_threads() if threads is None else threads
        path = resolve_asset("face_parser", model_path)
        try:
            with _native_stderr_silenced():  # the runtime prints a line naming its CPU delegate on every load
                self._interpreter = Interpreter(model_path=str(path), num_threads=max(1, int(threads)))
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as error:
            raise ModelFileNotFoundError(f"cannot read the face parser {path.name}: {error}") from error
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(INPUT_SIZE, INPUT_SIZE) uint8 class labels of the uint8 RGB crop `rgb` (any size; the face about
        half its width), resized to the network's square."""
        square = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        blob = (square.astype(np.float32) - np.float32(128.0)) * np.float32(1.0 / 128.0)
        with self._lock:
            self._interpreter.set_tensor(self._input, blob[None])
            self._interpreter.invoke()
            labels = self._interpreter.get_tensor(self._output)
        return np.clip(labels.reshape(INPUT_SIZE, INPUT_SIZE), 0, NUM_CLASSES - 1).astype(np.uint8)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Native code's writes to the process's stderr go nowhere inside this block (Python's own are flushed first)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
