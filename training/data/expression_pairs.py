"""The engine's expression tables from CFEE's real pairs (:mod:`ganime_age.engine.expressions`).

Every training person photographed neutral and making an expression gives one pair: both photos drawn in the
engine's template, the skin's flow from one to the other and its look once that flow is taken out
(:func:`~ganime_age.engine.expressions.pair_change`), stored smaller (both are smooth) and kept as coordinates on
the pairs' principal components, with the pair's AU change as the read-out measures it (what an edit is matched
by) and how likely the person is a woman.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ganime_age.engine.expressions import expression_weight, pair_change, stored_sides
from ganime_age.engine.frames import template_view
from training.data.face_records import FaceRecords, neutral_pairs


def fit_expression_pairs(
    engine: Any, records: FaceRecords, root: Path, components: int, *, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The engine's ``expression_*`` tables from CFEE's training pairs, and a report of the fit."""
    from ganime_age.faces import load_image

    template = engine.template
    weight = expression_weight(template)
    flow_side, look_side = stored_sides(template.size)
    pairs = neutral_pairs(records)
    if not pairs:
        raise ValueError("no CFEE training person has a neutral photo and an expression photo")
    neutral_views: dict[int, np.ndarray] = {}  # each person's neutral view, read once for all their pairs
    female: dict[int, float] = {}

    def view(row: int) -> tuple[np.ndarray, np.ndarray]:
        """(photo, its view in the template)."""
        rgb = load_image(root / str(records.paths[row]))
        return rgb, template_view(template, rgb, records.landmarks[row])

    def neutral_view(row: int) -> np.ndarray:
        if row not in neutral_views:
            rgb, neutral_views[row] = view(row)
            female[row] = engine.female_probability(rgb, records.landmarks[row])
        return neutral_views[row]

    iterator: Any = pairs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc="expression pairs", unit="pair")
    flows, looks = [], []
    for neutral, expression in iterator:
        flow, look = pair_change(neutral_view(neutral), view(expression)[1], weight)
        flows.append(cv2.resize(flow, (flow_side, flow_side), interpolation=cv2.INTER_AREA).reshape(-1))
        looks.append(cv2.resize(look, (look_side, look_side), interpolation=cv2.INTER_AREA).reshape(-1))
    flow_scale, look_scale = 1.0 / float(np.std(flows)), 1.0 / float(np.std(looks))
    stacked = np.concatenate([np.stack(flows) * flow_scale, np.stack(looks) * look_scale], axis=1)
    u, s, vt = np.linalg.svd(stacked, full_matrices=False)
    kept = min(components, len(s))
    tables = {
        "expression_basis": vt[:kept],
        "expression_codes": u[:, :kept] * s[:kept],
        "expression_aus": np.stack([records.aus[e] - records.aus[n] for n, e in pairs]),
        "expression_female": np.array([female[n] for n, _ in pairs]),
        "expression_scales": np.array([flow_scale, look_scale]),
    }
    report = {
        "pairs": len(pairs),
        "people": len({n for n, _ in pairs}),
        "components": kept,
        "variance_kept": round(float((s[:kept] ** 2).sum() / (s**2).sum()), 4),
    }
    return tables, report
