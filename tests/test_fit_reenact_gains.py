"""The reenactment gains' fit (training/tools/fit_reenact_gains.py) on CFEE's real training people."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.tools.fit_reenact_gains import REGIONS, best_gain, main


def test_the_best_gain_is_the_vertex_of_the_parabola_through_the_best_three() -> None:
    gains = np.array([1.0, 1.2, 1.4, 1.6])
    assert best_gain(gains, (gains - 1.3) ** 2 + 0.2) == pytest.approx(1.3)
    assert best_gain(gains, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0  # best at the grid's end: the end
    assert best_gain(gains, np.array([0.4, 0.3, np.nan, 0.5])) == pytest.approx(1.2)


def test_a_small_fit_on_a_training_person_drives_frowns_and_smiles_past_their_landmarks(
    tmp_path: Path, shared_dir: Path
) -> None:
    """One CFEE training person's self-reenactments at gains 1 and 1.8: each region's coded AUs are judged, and a
    warp to the landmarks exactly reads further from the drivers than a warp past them for the brows and eyes."""
    out = tmp_path / "gains.json"
    assert (
        main(["--cfee", str(shared_dir / "datasets" / "cfee"), "--people", "1", "--gains", "1,1.8", "--json", str(out)])
        == 0
    )
    fit = json.loads(out.read_text())
    assert fit["people"] == 1 and fit["pairs"] >= 5
    assert set(fit["regions"]) == set(REGIONS) and len(fit["reenact_gains"]) == len(REGIONS)
    assert all(1.0 <= g <= 1.8 for g in fit["reenact_gains"])
    assert all(region["coded_aus"] > 0 for region in fit["regions"].values())
    eyes_and_brows = [fit["regions"][r]["error_by_gain"] for r in ("eyes", "brows")]
    assert sum(e[1] for e in eyes_and_brows) < sum(e[0] for e in eyes_and_brows)
