"""An expression's skin from real people (``engine/expressions.py``) and a driver's own mouth (``engine/mouth.py``).

A pair's change is measured as the skin's motion plus its look once that motion is taken out; the shipped pairs
are matched to an edit's AU change; and a reenactment, on held-out CFEE people driven by their own expressions,
reads closer to its driver with them, and paints the person's own teeth, never the driver's.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ganime_age.conditions import AU_NAMES, NUM_AUS
from ganime_age.engine.expressions import expression_change, expression_weight, pair_change
from ganime_age.engine.frames import log_image, template_map
from ganime_age.faces.topology import BROW_TOPS


@functools.lru_cache(maxsize=1)
def editor() -> Any:
    from ganime_age.editing import FaceEditor

    return FaceEditor.from_pretrained()


@functools.lru_cache(maxsize=1)
def held_out(root: Path) -> dict[str, dict[str, Path]]:
    """CFEE's held-out people (the evaluation's split): person -> category -> photo."""
    from training.evaluation.gates import test_photos

    people: dict[str, dict[str, Path]] = {}
    for photo in test_photos("cfee", root):
        people.setdefault(photo.person, {}).setdefault(photo.category, photo.path)
    return people


def aus_of(**values: float) -> np.ndarray:
    aus = np.zeros(NUM_AUS, np.float32)
    for name, value in values.items():
        aus[AU_NAMES.index(name)] = value
    return aus


def test_a_pairs_motion_is_measured_as_motion_not_as_brightness(shared_dir: Path) -> None:
    """A real neutral face whose cheeks are moved up by a known smooth flow: the measured flow finds that motion, and
    the look left once it is taken out holds little of the brightness change the motion made (an edge that merely
    moved is not painted as a fold)."""
    from ganime_age.faces import load_image

    engine = editor().engine
    template = engine.template
    people = held_out(shared_dir / "datasets" / "cfee")
    path = next(p["Neutral"] for p in people.values() if "Neutral" in p)
    rgb = load_image(path)
    landmarks = editor().analyze(rgb)[0].landmarks.landmarks
    neutral = cv2.remap(
        rgb, template_map(template, landmarks), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    size = template.size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = template.vertices[[205, 425]].mean(axis=0)  # between the cheeks, below the eyes
    bump = np.exp(-(((xs - centre[0]) / (0.25 * size)) ** 2 + ((ys - centre[1]) / (0.12 * size)) ** 2))
    shift = (-2.0 * bump).astype(np.float32)  # up, at most 2 template pixels
    moved = cv2.remap(neutral, xs, ys - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    weight = expression_weight(template)
    flow, look = pair_change(neutral, moved, weight)
    region = (bump > 0.6) & (weight > 0.9)
    assert region.sum() > 200
    assert abs(float(np.median(flow[..., 1][region])) + 2.0) < 0.5  # the motion, found
    assert abs(float(np.median(flow[..., 0][region]))) < 0.3
    raw = np.abs((log_image(moved) - log_image(neutral)).mean(axis=2))[region].mean()
    assert np.abs(look[region]).mean() < 0.35 * raw  # and not painted as brightness


def test_the_shipped_pairs_lift_a_smiles_cheeks_and_the_brows_skin_and_leave_a_still_face() -> None:
    engine = editor().engine
    template = engine.template
    assert expression_change(engine, aus_of(), aus_of(), 0.5) is None  # no AU change: nothing moves
    assert engine.tables["expression_codes"].shape[0] == engine.config.expression_pairs > 500
    smile = expression_change(engine, aus_of(), aus_of(AU06=1.0, AU12=3.0, AU25=2.0), 0.5)
    cheeks = template.vertices[[205, 425, 50, 280]]
    at = [smile.flow[round(y), round(x)] for x, y in cheeks]
    assert np.mean([v[1] for v in at]) < -0.3  # the cheeks rise (template pixels, y down)
    brows = expression_change(engine, aus_of(), aus_of(AU01=3.0, AU02=3.0), 0.5)
    above = template.vertices[list(BROW_TOPS)] - [0.0, 0.04 * template.size]
    assert np.mean([brows.flow[round(y), round(x), 1] for x, y in above]) < -0.3  # the forehead's skin rises


def self_reenactment_error(root: Path, config: Any, people: list[str], categories: tuple[str, ...]) -> float:
    """The mean distance of held-out self-reenactments' AU read-out from their drivers' on the drivers' FACS-coded
    AUs (as ``evaluate.py turning`` judges), under an engine `config`: each person's neutral photo driven by their
    own photos of `categories`."""
    from ganime_age.faces import load_image
    from training.evaluation.gates import test_photos

    ed = editor()
    coded = {(p.person, p.category): p.coded_aus for p in test_photos("cfee", root)}
    photos = held_out(root)
    shipped = ed.engine.config
    errors = []
    try:
        ed.engine.config = config
        ed.engine.invalidate()
        ed.sessions.clear()
        for person in people:
            source = load_image(photos[person]["Neutral"])
            for category in categories:
                if category not in photos[person]:
                    continue
                driver = load_image(photos[person][category])
                judged = np.asarray(coded[(person, category)]) > 0
                wanted = np.asarray(ed.analyze(driver)[0].aus)[judged]
                got = np.asarray(ed.analyze(np.asarray(ed.reenact(source, driver)))[0].aus)[judged]
                errors.append(float(np.abs(got - wanted).mean()))
    finally:
        ed.engine.config = shipped
        ed.engine.invalidate()
        ed.sessions.clear()
    return float(np.mean(errors))


def test_held_out_self_reenactment_reads_its_driver_closer_with_real_skin(shared_dir: Path) -> None:
    """The evaluation's held-out people driven by their own five expressions: the AU read-out of the results is
    nearer the drivers' with the pairs' motion and look than with the landmarks' motion alone."""
    from training.evaluate import spread_indices
    from training.evaluation.gates import EXPRESSIONS

    root = shared_dir / "datasets" / "cfee"
    people = sorted(p for p, photos in held_out(root).items() if "Neutral" in photos)
    chosen = [people[i] for i in spread_indices(len(people), 12)]
    shipped = editor().engine.config
    bare = dataclasses.replace(shipped, expression_flow_gain=0.0, expression_look_gain=0.0)
    with_pairs = self_reenactment_error(root, shipped, chosen, EXPRESSIONS)
    without = self_reenactment_error(root, bare, chosen, EXPRESSIONS)
    assert with_pairs < without - 0.02, (with_pairs, without)


def test_held_out_frowns_and_smiles_read_their_driver_closer_with_the_reenactment_gains(shared_dir: Path) -> None:
    """The landmarker reads a warp short of its landmarks (a warped frown's brows, a warped smile's parted lips):
    held-out people's neutral photos driven by their own anger and smile read nearer the driver on the coded AUs
    with the engine's fitted reenactment gains than driven to the driver's landmarks exactly."""
    from ganime_age.engine.config import REENACT_REGIONS

    root = shared_dir / "datasets" / "cfee"
    people = held_out(root)
    chosen = [p for p in sorted(people) if {"Neutral", "Happy", "Angry"} <= people[p].keys()][:3]
    assert len(chosen) == 3
    shipped = editor().engine.config
    assert shipped.reenact_gains[REENACT_REGIONS["AU04"]] > 1.0 and shipped.reenact_gains[REENACT_REGIONS["AU05"]] > 1.0
    fitted = self_reenactment_error(root, shipped, chosen, ("Happy", "Angry"))
    exact = self_reenactment_error(
        root, dataclasses.replace(shipped, reenact_gains=(1.0,) * 4), chosen, ("Happy", "Angry")
    )
    assert fitted < exact - 0.1, (fitted, exact)


def test_a_drivers_own_face_shape_is_never_driven_past_its_landmarks(shared_dir: Path) -> None:
    """The reenactment gains add the driver's AU change again along the fitted AU shapes, never the driver's
    landmarks' difference from the source: a driver with the source's own AUs (another face's shape, no expression)
    is followed to its landmarks exactly, and a frown adds (gain - 1) of the AU shapes' motion."""
    from ganime_age.engine.config import REENACT_REGIONS
    from ganime_age.faces import load_image

    ed = editor()
    engine = ed.engine
    people = held_out(shared_dir / "datasets" / "cfee")
    person = next(p for p in sorted(people) if {"Neutral", "Angry"} <= people[p].keys())
    rgb = load_image(people[person]["Neutral"])
    found = ed.analyze(rgb)[0]
    frown = ed.analyze(load_image(people[person]["Angry"]))[0]
    face = engine.prepare_face(rgb, found.landmarks.landmarks, segment=ed.analyzer.segmenter)
    source = np.asarray(found.aus, np.float32)
    target = frown.landmarks.landmarks  # another photo's landmarks: its own shape and pose as well as the frown
    shipped = engine.config
    try:
        still = engine.shape_change(face, 30.0, 30.0, source, source, target).expression
        engine.config = dataclasses.replace(shipped, reenact_gains=(1.0,) * 4)
        exact = engine.shape_change(face, 30.0, 30.0, source, source, target).expression
        frowned = np.asarray(frown.aus, np.float32)
        plain = engine.shape_change(face, 30.0, 30.0, source, frowned, target).expression
    finally:
        engine.config = shipped
    past = engine.shape_change(face, 30.0, 30.0, source, frowned, target).expression
    assert np.array_equal(still, exact)
    brows = REENACT_REGIONS["AU04"]
    assert frowned[AU_NAMES.index("AU04")] - source[AU_NAMES.index("AU04")] > 1.0
    extra = frowned - source
    shapes = engine.tables["au_shapes"]
    gains = np.array([shipped.reenact_gains[REENACT_REGIONS.get(n, 0)] for n in AU_NAMES]) - 1.0
    along = shipped.au_shape_gain * np.einsum("a,avc->vc", extra * gains, shapes) @ (face.rotation.T * face.cm_to_grid)
    assert np.allclose(past - plain, along[:, :2], atol=1e-4)
    # the brows move further down than the driver's landmarks put them
    assert shipped.reenact_gains[brows] > 1.0 and (past - plain)[list(BROW_TOPS), 1].mean() > 0.1


def test_a_reenactment_paints_the_persons_own_teeth_never_the_drivers(shared_dir: Path) -> None:
    """Issue 55: held-out people's open smiles each driven by another held-out person's open smile: the lips' gap
    of each result (where the landmarker finds it) is nearer the person's own teeth than the driver's (a laughing
    older man's stained teeth were pasted into a young woman's mouth). A closed mouth has no interior of its own:
    the fitted one is painted, in the person's light, never the driver's."""
    from ganime_age.engine.mouth import gap_colours, own_interior
    from ganime_age.faces import load_image

    ed = editor()
    reenactment = ed.reenactment
    grid = ed.engine.config.mouth_grid
    people = held_out(shared_dir / "datasets" / "cfee")
    chosen = [p for p in sorted(people) if {"Neutral", "Happy"} <= people[p].keys()][:4]
    assert len(chosen) == 4
    nearer = []
    for person, other in zip(chosen, chosen[1:] + chosen[:1], strict=True):
        source, driver = load_image(people[person]["Happy"]), load_image(people[other]["Happy"])
        own = gap_colours(source, ed.analyze(source)[0].landmarks.landmarks, grid)
        theirs = gap_colours(driver, ed.analyze(driver)[0].landmarks.landmarks, grid)
        out = np.asarray(ed.reenact(source, driver))
        got = gap_colours(out, ed.analyze(out)[0].landmarks.landmarks, grid)
        nearer.append(float(np.abs(got - own).mean()) < float(np.abs(got - theirs).mean()))
    assert np.mean(nearer) >= 0.75, nearer
    # closed lips driven by another's laugh: the fitted interior, exactly as a render given no interior, and not
    # the render given the driver's teeth
    source, driver = load_image(people[chosen[0]]["Neutral"]), load_image(people[chosen[1]]["Happy"])
    session = reenactment.sessions.open(source)
    src, drv = reenactment.source_face(session, 0), reenactment.driver_face(driver, 0)
    assert reenactment.own_mouth(session.rgb, src) is None
    out = np.asarray(ed.reenact(source, driver))
    target, plan = reenactment.target_landmarks(src, drv), reenactment.ageing_plan(session, src, None)
    aus = reenactment.trusted_aus(src, drv)
    fitted = reenactment.render(session, src, target, plan, aus, 1.0, None)
    teeth = own_interior(driver, drv.landmarks.landmarks, grid)
    assert teeth is not None
    assert np.array_equal(out, fitted)
    assert not np.array_equal(fitted, reenactment.render(session, src, target, plan, aus, 1.0, teeth))


def test_a_clear_sex_takes_pairs_of_that_sex() -> None:
    """The bank holds both sexes, and a face that is clearly a man's or a woman's is given other pairs."""
    engine = editor().engine
    sexes = engine.tables["expression_female"]
    assert (sexes < 0.2).sum() > 50 and (sexes > 0.8).sum() > 50
    wanted = aus_of(AU12=3.0, AU25=2.0)
    man, woman = (expression_change(engine, aus_of(), wanted, female) for female in (0.05, 0.95))
    assert man is not None and woman is not None
    assert np.abs(man.flow - woman.flow).mean() > 0.01


def test_an_au_edit_takes_the_pairs_skin_motion_as_far_as_its_gains_did_not_go(shared_dir: Path) -> None:
    """An AU edit's landmarks move by the AU gains (2.5 for raised brows: a warp alone reads short), so it takes the
    pairs' skin motion divided by the gain; a reenactment, whose landmarks are the driver's own, takes all of it."""
    from ganime_age.engine.expressions import face_expression, flow_on_grid
    from ganime_age.faces import load_image

    ed = editor()
    engine = ed.engine
    people = held_out(shared_dir / "datasets" / "cfee")
    rgb = load_image(next(p["Neutral"] for p in people.values() if "Neutral" in p))
    found = ed.analyze(rgb)[0]
    face = engine.prepare_face(rgb, found.landmarks.landmarks, segment=ed.analyzer.segmenter)
    source = np.asarray(found.aus, np.float32)
    target = source.copy()
    target[AU_NAMES.index("AU01")] = target[AU_NAMES.index("AU02")] = 4.0
    gains = engine.tables["au_gains"][[AU_NAMES.index("AU01"), AU_NAMES.index("AU02")]]
    assert np.all(gains > 1.5)
    whole = flow_on_grid(face, engine.template, face_expression(engine, face, source, target).flow)
    edit = engine.shape_change(face, 30.0, 30.0, source, target).flow
    given = engine.shape_change(face, 30.0, 30.0, source, target, found.landmarks.landmarks).flow
    wanted = np.abs(target - source)
    share = wanted.sum() / (wanted * engine.tables["au_gains"]).sum()
    assert np.abs(whole).max() > 0.5  # the brows' pairs move the forehead
    assert np.allclose(edit, share * whole, atol=1e-4) and np.allclose(given, whole, atol=1e-4)
