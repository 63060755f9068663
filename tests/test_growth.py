"""The head's growth fitted on FG-NET (training/data/growth.py, ``fit_engine.py growth``): the strain read from a
young photo's shape, the curve through FG-NET's training people, and the shipped engine's strains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.fgnet import fgnet_split, parse_fgnet
from training.data.growth import GROWN_FROM, STRAINS, fit_growth, strain_for, strained


@pytest.fixture(scope="module")
def grown_points(shared_dir: Path) -> np.ndarray:
    """A real FG-NET training person's landmarks at 20 or older."""
    photos = parse_fgnet(shared_dir / "datasets" / "fgnet").photos
    grown = [p for p in photos if p.points_path is not None and p.age >= 20 and fgnet_split(p.person) == "train"]
    return grown[0].points().astype(np.float64)


def test_a_strain_is_read_back_from_the_shape_it_makes(grown_points: np.ndarray) -> None:
    """The model's own growth of a real grown face, moved, turned and scaled as a photo frames it, is read as the
    strain that made it; no strain is no change."""
    assert np.allclose(strained(grown_points, 0.0), grown_points)
    step = float(STRAINS[1] - STRAINS[0])
    angle = np.radians(8.0)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    for k in (-0.12, -0.05, 0.04):
        young = 0.7 * strained(grown_points, k) @ turn.T + np.array([40.0, -25.0])
        assert strain_for(grown_points, young) == pytest.approx(k, abs=step)
    # a child's face is smaller below the ears against the cranium: the chin nears the eyes
    eyes = grown_points[36:48].mean(axis=0)
    child = strained(grown_points, -0.1)
    assert np.linalg.norm(child[8] - child[36:48].mean(axis=0)) < np.linalg.norm(grown_points[8] - eyes)


def test_growth_fitted_on_fgnet_rises_to_a_grown_face(shared_dir: Path) -> None:
    """On FG-NET's training people the fitted strain is a child's (negative) and rises with age to nothing at 20;
    grown centres keep the engine's own strains."""
    centres = np.array([2.0, 5.0, 9.0, 14.0, 19.0, 25.0, 40.0, 64.0])
    current = np.array([-0.07, -0.045, -0.028, -0.012, -0.003, 0.0, 0.0, 0.01])
    fitted = fit_growth(shared_dir / "datasets" / "fgnet", centres, current)
    young = centres < GROWN_FROM
    strains = fitted.strains
    assert fitted.report["people"] >= 30 and fitted.report["young_photos"] >= 150
    assert np.all(strains[young] < 0.0) and np.all(np.diff(strains[young]) > 0.0)
    assert -0.2 < strains[0] < -0.06 and strains[young][-1] > -0.02
    assert np.array_equal(strains[~young], current[~young])


def test_the_shipped_engine_grows_as_fitted_on_fgnet(shared_dir: Path) -> None:
    """The embedded engine's strains are the FG-NET fit's (``fit_engine.py growth``, recorded in its fit report)."""
    import json

    from ganime_age.editing import DEFAULT_ENGINE_DIR
    from ganime_age.hub import load_pretrained

    engine = load_pretrained(DEFAULT_ENGINE_DIR)
    report = json.loads((Path(DEFAULT_ENGINE_DIR) / "fit_report.json").read_text())["growth"]
    assert list(engine.config.growth_strains) == pytest.approx(report["strains"], abs=1e-4)
    refit = fit_growth(shared_dir / "datasets" / "fgnet", engine.centres, np.asarray(engine.config.growth_strains))
    assert list(refit.strains) == pytest.approx(list(engine.config.growth_strains), abs=1e-4)
