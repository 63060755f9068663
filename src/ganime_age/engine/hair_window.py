"""Where a face's hair may lie: its head's window (beside and above the head, and below the mouth only beside the
neck), and below the mouth only what hangs from the hair above (never a collar, the chin, the neck or a beard)."""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.frames import turn_share
from ganime_age.faces.topology import CHIN, MOUTH_CENTRE, NUM_MESH_VERTICES

PERSON_BOX = (1.25, 0.9, 0.8)  # face widths: half-width, above the mesh top and below the chin of the hair box
HAIR_TURN = (30.0, 50.0)  # degrees of yaw: the hair changes wholly below the first, not at all past the second
NECK_HALF_WIDTH = 0.3  # face widths: below the mouth, hair hangs beside the neck, never on it (nor a beard)


def head_window(points: np.ndarray, shape: tuple[int, int], face_width: float) -> np.ndarray:
    """(h, w) 0..1: where a face's hair may be: beside and above the head, and below the mouth only beside the
    neck (long hair), never on the chin, neck or a beard."""
    grid_h, grid_w = shape
    cols = np.arange(grid_w, dtype=np.float32)[None, :]
    rows = np.arange(grid_h, dtype=np.float32)[:, None]
    centre = float(points[:NUM_MESH_VERTICES, 0].mean())
    feather = max(0.1 * face_width, 1.0)
    half, _, below = (v * face_width for v in PERSON_BOX)
    lateral = np.clip((half - np.abs(cols - centre)) / feather, 0.0, 1.0)
    low = np.clip((points[CHIN, 1] + below - rows) / feather, 0.0, 1.0)
    mouth_row = float(points[MOUTH_CENTRE, 1])
    beside_neck = np.clip((np.abs(cols - centre) - NECK_HALF_WIDTH * face_width) / (2.0 * feather), 0.0, 1.0)
    below_mouth = np.clip((rows - mouth_row) / feather, 0.0, 1.0)
    return (lateral * low * (1.0 - below_mouth * (1.0 - beside_neck))).astype(np.float32)


def connected_below(share: np.ndarray, mouth_row: float) -> np.ndarray:
    """`share` below the mouth kept only where it hangs from the hair above it (long hair): a dark collar or
    a suit's neck ring below the ears is hair-coloured, but apart from the hair."""
    grid_h = share.shape[0]
    first_below = int(np.clip(np.ceil(mouth_row), 0, grid_h))
    if first_below >= grid_h:
        return share
    count, labels = cv2.connectedComponents((share > 0.3).astype(np.uint8), connectivity=8)
    hanging = np.zeros(count, bool)
    hanging[np.unique(labels[:first_below])] = True
    hanging[0] = False
    kept = cv2.dilate(hanging[labels].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    out = share.copy()
    out[first_below:] *= cv2.GaussianBlur(kept, (0, 0), 1.0)[first_below:]
    return out


def hair_turn_share(rotation: np.ndarray) -> float:
    """How much of its hair's change a head turned so far takes: all up to HAIR_TURN[0] degrees of yaw, none from
    HAIR_TURN[1]. The hair is looked for in a window around the face's mesh, which on a head turned past about 45
    degrees cuts through the back of the head: the Space's cameraman (54 degrees) made 75 got a rectangle of grey
    over his ear, neck and collar with a hard edge where the window ended."""
    return turn_share(rotation, *HAIR_TURN)
