"""A person's own photos guide their edits (issue 56), on real FG-NET photos of one person across ages.

The person is made of their own photos as a user would give them; the edit of their adult photo to a child's age
is judged against their real photo at that age, by dlib's descriptor (a network the editor never uses), and the
photo of that age itself, and any within 2 years of it, are never among the photos given.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganime_age import FaceEditor
from ganime_age.cli import main as cli_main
from ganime_age.editing.person import IDENTITY_SPAN, Person, unlike_photos
from ganime_age.engine.own_photos import (
    OWN_DETAIL,
    OWN_FAR,
    OWN_FINE,
    OWN_PLAIN_AGES,
    own_counts,
    own_detail,
    own_share,
    plain_share,
)
from ganime_age.errors import InvalidArgumentError, NoFaceError

PERSON = "029"  # FG-NET person: adult photo at 29, real photo at 5
ADULT, TARGET = "029A29.JPG", "029A05.JPG"
OWN = {"029A01.JPG": 1, "029A10.JPG": 10, "029A11.JPG": 11, "029A16.JPG": 16, "029A20.JPG": 20}


@pytest.fixture(scope="module")
def fgnet(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fgnet" / "images"


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def person(editor: FaceEditor, fgnet: Path) -> Person:
    photos = [(fgnet / name, age) for name, age in OWN.items()]
    return editor.person([*photos, fgnet / "029A22.JPG"])  # the last one's age estimated


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_a_person_is_their_faces_with_the_ages_given_or_estimated(person: Person) -> None:
    assert len(person) == len(OWN) + 1
    assert [p.name for p in person.photos[: len(OWN)]] == list(OWN)
    assert np.allclose(person.ages[: len(OWN)], list(OWN.values()))
    assert [p.age_given for p in person.photos] == [True] * len(OWN) + [False]
    assert 10.0 < person.ages[-1] < 50.0  # an estimate of a 22-year-old's photo
    assert all(0.0 < p.frontal <= 1.0 for p in person.photos)
    assert not any("someone else" in note for note in person.notes)  # all five are this person's


def test_a_strangers_photo_among_the_persons_is_noted(editor: FaceEditor, fgnet: Path) -> None:
    """Another FG-NET child at 11 (034A11) given with 029's photos is kept with a note that it looks like someone
    else (similarity 0.25 to 029's photos at 10 and 11: below IDENTITY_FLOOR, which at 0.2 let it pass)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = editor.person([*((fgnet / name, age) for name, age in OWN.items()), (fgnet / "034A11.JPG", 11.0)])
    assert len(mixed) == len(OWN) + 1  # kept: a note, never a refusal
    noted = [note for note in mixed.notes if "someone else" in note]
    assert len(noted) == 1 and noted[0].startswith("034A11.JPG"), mixed.notes


def test_a_photo_plainly_someone_elses_is_left_out(editor: FaceEditor, fgnet: Path) -> None:
    """Another FG-NET child at 11 (031A11: similarity 0.07 to 029's photos at 10 and 11, which are 0.49 alike)
    given with 029's photos is left out with a note; 029's own photos all stay. (034A11, at 0.25, stays with a
    note: the test above.)"""
    with pytest.warns(UserWarning, match="plainly someone else"):
        mixed = editor.person([*((fgnet / name, age) for name, age in OWN.items()), (fgnet / "031A11.JPG", 11.0)])
    assert [p.name for p in mixed.photos] == list(OWN)
    assert mixed.shapes is not None and len(mixed.shapes) == len(OWN)
    left = [note for note in mixed.notes if "left out" in note]
    assert len(left) == 1 and left[0].startswith("031A11.JPG"), mixed.notes
    assert not any(": kept, " in note for note in mixed.notes)


def test_save_and_load_give_the_same_person_and_the_same_edit(
    person: Person, editor: FaceEditor, fgnet: Path, tmp_path: Path
) -> None:
    folder = person.save_pretrained(tmp_path / "me")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "glasses.safetensors",
        "model.safetensors",
        "person.json",
        "shapes.safetensors",
    ]
    loaded = Person.from_pretrained(folder)
    assert loaded == person and loaded.key == person.key
    assert loaded.shapes is not None and np.array_equal(loaded.shapes, person.shapes)
    assert loaded.glasses_maps is not None and np.array_equal(loaded.glasses_maps, person.glasses_maps)
    first = editor.edit(fgnet / ADULT, age=5, source_age=29, person=person)
    again = editor.edit(fgnet / ADULT, age=5, source_age=29, person=loaded)
    assert np.array_equal(as_array(first), as_array(again))


def test_the_edit_moves_part_of_the_way_to_the_persons_own_shape_at_the_target_age(
    person: Person, editor: FaceEditor, fgnet: Path
) -> None:
    """The own faces near 5 (at 1 and 10), each carried to 5 by the fitted change, say where 029's features would
    be at 5: the edit's inner landmarks go OWN_SHAPE_MOST of the way there from the general change's, the head's
    outline keeps the general change (the growth moves it), and the same person without shapes (as one saved before
    they were kept) edits visibly differently: by the texture alone."""
    from ganime_age.editing.person import personal
    from ganime_age.engine import geometry
    from ganime_age.engine.own_photos import OWN_SHAPE_MOST, neutral_shape

    session = editor.session(fgnet / ADULT)
    face = session.faces[0]
    prepared = personal(session.engine_face(face), person)
    general = geometry.age_shape_change(editor.engine, prepared.female, 29.0, 5.0)
    mine = prepared.exemplars.personal_age_change(editor.engine, prepared, 29.0, 5.0, face.aus, general)
    weights = geometry.outline_weights()
    outline, inner = weights > 0.99, weights < 0.01
    assert np.allclose(mine[outline], general[outline], atol=0.02)
    source = neutral_shape(editor.engine, prepared.landmarks, face.aus)
    counts = own_counts(person.ages, person.frontal, 5.0)  # 1 and 10 count most, 11 a little
    grown = [
        person.shapes[i] + geometry.age_shape_change(editor.engine, prepared.female, person.ages[i], 5.0)
        for i in np.flatnonzero(counts)
    ]
    own = np.tensordot(counts[counts > 0] / counts.sum(), np.stack(grown), axes=1)
    to_own = np.linalg.norm((own - source - general)[inner, :2], axis=1).mean()
    left = np.linalg.norm((own - source - mine)[inner, :2], axis=1).mean()
    assert 0.05 < 1.0 - left / to_own <= OWN_SHAPE_MOST + 0.05, (left, to_own)
    with_shapes = as_array(editor.edit(fgnet / ADULT, age=5, source_age=29, person=person))
    texture_only = Person(person.faces, person.photos, person.notes)
    without = as_array(editor.edit(fgnet / ADULT, age=5, source_age=29, person=texture_only))
    assert np.abs(with_shapes.astype(np.int16) - without).mean() > 0.3


def test_where_the_photos_expression_moves_the_face_the_own_shape_counts_less(editor: FaceEditor, fgnet: Path) -> None:
    """FG-NET 082 laughing at 31, made 16 with his photos at 20-23: where his laugh moves his face, his neutral
    shape is a guess, and the edit keeps more of the general change there (the own shape widened his smile:
    0.57 from his real photo at 16 by dlib, the general edit 0.49); where it moves little, the own shape counts."""
    from ganime_age.editing.person import personal
    from ganime_age.engine import geometry
    from ganime_age.engine.own_photos import OWN_SHAPE_EXPRESSION

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        person = editor.person([(fgnet / f"082A{age}.JPG", float(age)) for age in (20, 21, 22, 23)])
    session = editor.session(fgnet / "082A31.JPG")
    face = session.faces[0]
    prepared = personal(session.engine_face(face), person)
    general = geometry.age_shape_change(editor.engine, prepared.female, 31.0, 16.0)
    mine = prepared.exemplars.personal_age_change(editor.engine, prepared, 31.0, 16.0, face.aus, general)
    motion = np.linalg.norm(geometry.expression_shape(editor.engine, face.aus), axis=1)
    inner = geometry.outline_weights() < 0.01
    moved, still = inner & (motion > OWN_SHAPE_EXPRESSION), inner & (motion < 0.3 * OWN_SHAPE_EXPRESSION)
    assert moved.sum() > 10 and still.sum() > 50, (moved.sum(), still.sum())
    off = np.linalg.norm((mine - general)[:, :2], axis=1)
    assert off[moved].mean() < 0.5 * off[still].mean(), (off[moved].mean(), off[still].mean())


def test_a_saved_persons_shapes_and_glasses_are_checked_and_an_older_person_loads_without_them(
    person: Person, tmp_path: Path
) -> None:
    import json

    from safetensors.numpy import save_file

    from ganime_age.errors import WeightsError

    for name, key, field in (
        ("shapes.safetensors", "shapes", "shapes"),
        ("glasses.safetensors", "glasses", "glasses_maps"),
    ):
        folder = person.save_pretrained(tmp_path / key)
        part = folder / name
        payload = bytearray(part.read_bytes())
        payload[-5] ^= 0xFF  # one number changed
        part.write_bytes(bytes(payload))
        with pytest.raises(WeightsError, match="sha256"):
            Person.from_pretrained(folder)
        save_file({key: np.zeros((1, 2), np.float32)}, str(part))  # the wrong shape, whatever its checksum
        with pytest.raises(WeightsError, match=f"is not the {key} of {len(person)} faces"):
            Person.from_pretrained(folder)
        record = json.loads((folder / "person.json").read_text())
        del record[f"{key}_sha256"]  # as a person saved before they were kept
        (folder / "person.json").write_text(json.dumps(record))
        part.unlink()
        older = Person.from_pretrained(folder)
        assert getattr(older, field) is None and len(older) == len(person)


def test_without_a_person_nothing_changes(person: Person, editor: FaceEditor, fgnet: Path) -> None:
    """Byte for byte: before and after personal edits of the same photo (their matches kept apart), and where
    the person's photos are all too far from the target age to count."""
    before = as_array(editor.edit(fgnet / ADULT, age=5, source_age=29))
    editor.edit(fgnet / ADULT, age=5, source_age=29, person=person)
    assert np.array_equal(as_array(editor.edit(fgnet / ADULT, age=5, source_age=29, person=None)), before)
    fresh = FaceEditor.from_pretrained(device="cpu")
    assert np.array_equal(as_array(fresh.edit(fgnet / ADULT, age=5, source_age=29)), before)
    far = person.select([0])  # the photo at 1: more than OWN_FAR years from 70
    assert own_share(far.ages, 70.0) == 0.0 and 70.0 - far.ages[0] > OWN_FAR
    general = as_array(editor.edit(fgnet / ADULT, age=70, source_age=29))
    assert np.array_equal(as_array(editor.edit(fgnet / ADULT, age=70, source_age=29, person=far)), general)


def test_an_adult_made_a_child_comes_closer_to_their_real_photo_at_that_age(
    person: Person, editor: FaceEditor, fgnet: Path
) -> None:
    from ganime_age.faces import load_image
    from training.evaluation.judges import DlibIdentity

    identity = DlibIdentity()
    real = identity.embed(load_image(fgnet / TARGET))
    general = as_array(editor.edit(fgnet / ADULT, age=5, source_age=29))
    own = as_array(editor.edit(fgnet / ADULT, age=5, source_age=29, person=person))
    assert np.abs(own.astype(np.int16) - general).mean() > 0.5  # a visibly different edit
    d_general = identity.distance(identity.embed(general), real)
    d_own = identity.distance(identity.embed(own), real)
    d_adult = identity.distance(identity.embed(load_image(fgnet / ADULT)), real)
    assert d_own < d_general and d_own < d_adult, (d_own, d_general, d_adult)


def test_a_child_made_their_adult_age_is_their_adult_photos_face_put_in_plainly(
    editor: FaceEditor, fgnet: Path
) -> None:
    """013 at 8 made 30 with his photos at 23, 25 and 34 (never the real one at 30): a grown target they cover takes
    their faces plainly (within OWN_NEAR years of them the whole plain share and none of the head's fitted growth,
    which their shape has had), and the edit comes closer to his real photo at 30 than the child photo and the
    general edit (dlib's descriptor)."""
    from ganime_age.editing.person import personal
    from ganime_age.faces import load_image
    from training.evaluation.judges import DlibIdentity

    child, real_adult = fgnet / "013A08.JPG", fgnet / "013A30.JPG"
    person = editor.person([(fgnet / f"013A{age}.JPG", age) for age in (23, 25, 34)])
    session = editor.session(child)
    match = personal(session.engine_face(session.faces[0]), person).exemplars
    assert match.plain_share(30.0) == 1.0 and match.growth_kept(30.0) == 0.0
    assert match.plain_share(OWN_PLAIN_AGES[0]) == 0.0 and match.plain_change(8.0, 8.0) is None
    share, change = match.plain_change(30.0, 8.0)
    assert share == 1.0 and np.abs(change).max() > 0.1  # his adult features, above the light's scale
    identity = DlibIdentity()
    real = identity.embed(load_image(real_adult))
    general = as_array(editor.edit(child, age=30, source_age=8))
    own = as_array(editor.edit(child, age=30, source_age=8, person=person))
    d_own, d_general = (identity.distance(identity.embed(x), real) for x in (own, general))
    d_child = identity.distance(identity.embed(load_image(child)), real)
    assert d_own < d_child and d_own < d_general, (d_own, d_child, d_general)


def test_own_photos_in_glasses_are_put_in_plainly_outside_their_glasses(editor: FaceEditor, fgnet: Path) -> None:
    """FG-NET 001 wears glasses at 33 and 40, not at 19: the parser reads which and where, and the saved person keeps
    both. His child photo made 29 from his photo at 33 alone takes that face plainly outside its glasses' band
    and the general change inside it (its share there 0), so no frames are drawn: over where the frames were,
    the edit is no darker than the general edit (2.7% of those pixels darker by 0.2 log; put in plainly whole,
    frames and all, 28%). With his photo at 19 too, the band is the bare face's, put in plainly as well."""
    from ganime_age.editing.person import personal
    from ganime_age.engine.frames import log_image, template_view
    from ganime_age.engine.own_glasses import GLASSES_WORN
    from ganime_age.faces import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        person = editor.person([(fgnet / f"001A{age}.JPG", float(age)) for age in (19, 33, 40)])
    assert person.glasses[0] < GLASSES_WORN <= person.glasses[1:].min(), person.glasses
    assert person.glasses_maps[0].max() < 128 and (person.glasses_maps[1:] >= 128).mean(axis=(1, 2)).min() > 0.05
    template = editor.engine.template
    child = load_image(fgnet / "001A05.JPG")
    session = editor.session(child)
    worn = person.select([1])
    share, _ = personal(session.engine_face(session.faces[0]), worn).exemplars.plain_change(29.0, 5.0)
    assert share[template.regions["eyes"] > 0.5].max() < 0.01 and share[template.regions["lips"] > 0.5].min() > 0.99
    both, _ = personal(session.engine_face(session.faces[0]), person.select([0, 1])).exemplars.plain_change(25.0, 5.0)
    assert np.min(both) > 0.99

    def view(rgb: np.ndarray) -> np.ndarray:
        return log_image(template_view(template, rgb, editor.session(rgb).faces[0].landmarks.landmarks))

    general = view(as_array(editor.edit(child, age=29, source_age=5)))
    edit = view(as_array(editor.edit(child, age=29, source_age=5, person=worn)))
    frames = (worn.glasses_maps[0] >= 128) & (template.regions["eyes_wide"] < 0.5)
    darker = ((edit - general).mean(axis=2)[frames] < -0.2).mean()
    assert darker < 0.08, darker


def test_own_faces_put_in_plainly_leave_the_photos_eyes(editor: FaceEditor, fgnet: Path) -> None:
    """021 at 30 made 16 with her photos at 11, 20 and 27, and 015 at 19 made 14 with hers at 10 and 17: their faces
    are put in plainly, and each iris keeps its colour and brightness (the own faces' mean there, a blur of irises
    and whites, made 021's right iris 17 grey levels darker and 015's both 8 levels off in colour)."""
    from ganime_age.faces import load_image
    from ganime_age.faces.topology import LEFT_IRIS, LEFT_PUPIL, RIGHT_IRIS, RIGHT_PUPIL

    def irises(rgb: np.ndarray) -> np.ndarray:
        """(2, 3) each iris's mean colour, within 0.8 of its radius of its centre."""
        points = editor.session(rgb).faces[0].landmarks.landmarks[:, :2]
        rows, columns = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        means = []
        for centre, ring in ((RIGHT_PUPIL, RIGHT_IRIS), (LEFT_PUPIL, LEFT_IRIS)):
            radius = np.mean([np.linalg.norm(points[a] - points[centre]) for a, _ in ring])
            disc = (columns - points[centre, 0]) ** 2 + (rows - points[centre, 1]) ** 2 <= (0.8 * radius) ** 2
            means.append(rgb[disc].astype(np.float64).mean(axis=0))
        return np.array(means)

    for name, source_age, target_age, own in (("021", 30, 16, (11, 20, 27)), ("015", 19, 14, (10, 17))):
        photo = load_image(fgnet / f"{name}A{source_age}.JPG")
        person = editor.person([(fgnet / f"{name}A{age:02d}.JPG", float(age)) for age in own])
        edit = as_array(editor.edit(photo, age=target_age, source_age=source_age, person=person))
        before, after = irises(photo), irises(edit)
        brightness = np.abs(after.mean(axis=1) - before.mean(axis=1))
        colour = np.abs((after - after.mean(axis=1, keepdims=True)) - (before - before.mean(axis=1, keepdims=True)))
        assert brightness.max() < 3.0 and colour.max() < 2.0, (name, before.round(), after.round())


def test_an_own_flash_scan_put_in_plainly_brings_no_colour_band(editor: FaceEditor, fgnet: Path) -> None:
    """021 at 30 made 16 from her flash-lit photo at 20 alone: the plain change's colour is bounded and coarse, as the
    strangers' is. Taken whole, it drew an orange band down the side of her nose and a blue-grey cheek: the face's red
    over its mean channel moved by -0.16 to +0.15 (1st and 99th percentiles; the general edit's -0.09 to +0.08)."""
    import cv2

    from ganime_age.editing.person import personal
    from ganime_age.faces import load_image

    photo = load_image(fgnet / "021A30.JPG")
    person = editor.person([(fgnet / "021A20.JPG", 20.0)])
    session = editor.session(photo)
    assert personal(session.engine_face(session.faces[0]), person).exemplars.plain_share(16.0) == 1.0  # whole
    edit = as_array(editor.edit(photo, age=16, source_age=30, person=person))
    points = session.faces[0].landmarks.landmarks[:, :2]
    inside = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, cv2.convexHull(points.astype(np.float32)).astype(np.int32), 1)
    inside = cv2.erode(inside, np.ones((9, 9), np.uint8)) > 0

    def redness(rgb: np.ndarray) -> np.ndarray:
        log = np.log(rgb.astype(np.float64) / 255.0 + 1.0 / 255.0)
        return log[..., 0] - log.mean(axis=2)

    shift = cv2.GaussianBlur(redness(edit) - redness(photo), (0, 0), 3.0)[inside]
    low, high = np.percentile(shift, [1, 99])
    assert max(-low, high) < 0.13, (low, high)


def test_a_slider_sweep_levels_the_own_faces_once_and_changes_nothing(
    person: Person, editor: FaceEditor, fgnet: Path
) -> None:
    """A slider over a child's ages picks other strangers at most ages but the same own faces: those are levelled
    onto the photo's skin once and kept (levelled again at every move, an edit with a person took 1.20x the time of
    one without), the strangers never (megabytes a face, for nothing: the next age picks others), and what is kept
    changes no view."""
    from ganime_age.editing.person import personal

    session = editor.session(fgnet / ADULT)
    match = personal(session.engine_face(session.faces[0]), person).exemplars
    ages = [6.0 + 0.25 * n for n in range(10)]  # the same own faces throughout
    strangers = {tuple(match.bank.nearest(match.descriptor, age, match.template).tolist()) for age in ages}
    assert len(strangers) > 2  # the strangers change along the sweep
    match.levelled.clear()  # what earlier edits of this photo with the person kept
    views = [match.matched_view(age)[0] for age in ages]
    assert [key[0] for key in match.levelled] == [id(match.own)]  # one set, the own faces'
    first = next(iter(match.levelled.values()))[0]
    views += [match.matched_view(age)[0] for age in ages]
    assert next(iter(match.levelled.values()))[0] is first  # never levelled again
    for n in (0, 5):
        match.levelled.clear()
        np.testing.assert_array_equal(match.matched_view(ages[n])[0], views[n])


def test_own_faces_are_put_in_plainly_only_for_a_grown_target_they_cover() -> None:
    """A child's target keeps the edit as it was (a child's scan is grain); a grown one the own photos cover is
    theirs, whole within OWN_NEAR years, fading with the own share to none at OWN_FAR, with no jump as a slider
    moves."""
    ages, frontal = np.array([4.0, 16.0, 25.0]), np.ones(3)
    assert plain_share(ages, frontal, 5.0) == 0.0 and plain_share(ages, frontal, OWN_PLAIN_AGES[0]) == 0.0
    assert plain_share(ages, frontal, 25.0) == plain_share(ages, frontal, OWN_PLAIN_AGES[1] + 1.0) == 1.0
    assert plain_share(ages, frontal, 25.0 + OWN_FAR) == 0.0 and plain_share(np.array([]), np.ones(0), 25.0) == 0.0
    shares = [plain_share(ages, frontal, t) for t in np.linspace(8.0, 50.0, 421)]
    assert np.max(np.abs(np.diff(shares))) < 0.05


def test_own_photos_years_older_than_the_target_do_not_age_the_edit(editor: FaceEditor, fgnet: Path) -> None:
    """FG-NET 034 made 4, given her other photos (the nearest at 11: hard-lit, blurred scans): taken whole, they
    made the edit read 23 on the shipped estimator (the general edit: 4). The edit takes their features' shapes
    and tones, the bank's sharp children the finest detail and part of the whole, and reads a child: under twice
    the target age (the general edit reads 0.4, younger than the target; the own shape at 11, carried to 4 by the
    fitted change, reads about 5.6)."""
    from training.data.fgnet import parse_fgnet
    from training.evaluation.own_ageing import ADULT as ADULT_AGES
    from training.evaluation.own_ageing import CHILD, own_photos, pick

    photos = [p for p in parse_fgnet(fgnet.parent).photos if p.person == "034"]
    adult, target = pick(photos, ADULT_AGES, 30), pick(photos, CHILD, 6)
    assert (adult.path.name, target.path.name) == ("034A30.JPG", "034A04.JPG")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        person = editor.person([(p.path, float(p.age)) for p in own_photos(photos, adult, target)])
    general = editor.estimate_age(editor.edit(adult.path, age=4, source_age=30), face=0)
    own = editor.estimate_age(editor.edit(adult.path, age=4, source_age=30, person=person), face=0)
    assert own < 2.0 * 4.0, (own, general)


def test_age_strip_and_reenact_take_the_person(person: Person, editor: FaceEditor, fgnet: Path) -> None:
    plain = editor.age_strip(fgnet / ADULT, ages=[5], source_age=29)
    own = editor.age_strip(fgnet / ADULT, ages=[5], source_age=29, person=person)
    assert not np.array_equal(as_array(plain[0][1]), as_array(own[0][1]))
    drive = fgnet / "029A31.JPG"
    reenacted = editor.reenact(fgnet / ADULT, drive, age=5, source_age=29, person=person)
    assert not np.array_equal(as_array(reenacted), as_array(editor.reenact(fgnet / ADULT, drive, age=5, source_age=29)))


def test_a_photo_without_a_face_is_skipped_with_a_note(editor: FaceEditor, fgnet: Path, tmp_path: Path) -> None:
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 240, 3), 200, np.uint8)).save(wall)
    with pytest.warns(UserWarning, match=r"wall\.png: skipped"):
        person = editor.person([(wall, 5), (fgnet / "029A10.JPG", 10)])
    assert len(person) == 1 and any(note.startswith("wall.png: skipped") for note in person.notes)
    with warnings.catch_warnings(), pytest.raises(NoFaceError, match=r"wall\.png"):
        warnings.simplefilter("ignore")
        editor.person([(wall, 5)])


def test_bad_input_is_refused_with_typed_errors(editor: FaceEditor, fgnet: Path, person: Person) -> None:
    with pytest.raises(InvalidArgumentError):
        editor.person([])
    with pytest.raises(InvalidArgumentError, match="age"):
        editor.person([(fgnet / "029A10.JPG", 120)])
    with pytest.raises(InvalidArgumentError):
        editor.edit(fgnet / ADULT, age=5, person="me")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        person.select([])


def test_someone_else_is_noted_only_against_photos_of_about_their_age() -> None:
    rng = np.random.default_rng(0)
    me = rng.normal(size=64)
    mine = [me + 0.3 * rng.normal(size=64) for _ in range(3)]
    stranger = rng.normal(size=64)
    ages = np.array([5.0, 7.0, 30.0, 6.0])
    assert unlike_photos(ages, [*mine, stranger]) == [(3, pytest.approx(unlike_photos(ages, [*mine, stranger])[0][1]))]
    # across a large span a face is not judged: a child against the adult alone is never called someone else
    assert unlike_photos(np.array([5.0, 5.0 + IDENTITY_SPAN + 1.0]), [me, stranger]) == []


def test_own_faces_count_by_how_near_their_age_is() -> None:
    ages, frontal = np.array([3.0, 9.0, 30.0]), np.ones(3)
    counts = own_counts(ages, frontal, 5.0)
    assert counts[0] == 1.0 > counts[1] > counts[2] >= 0.0
    # as many years apart, a child's face has grown more in its earlier ones: made 6, a face at 9 is nearer than
    # one at 3; among grown faces a year is a year
    younger, older = own_counts(np.array([3.0, 9.0]), np.ones(2), 6.0)
    assert older == 1.0 and younger < 0.8
    assert np.array_equal(own_counts(np.array([27.0, 33.0]), np.ones(2), 30.0), [1.0, 1.0])
    assert own_share(ages, 5.0) == 1.0 and own_share(ages, 60.0) == 0.0
    shares = [own_share(ages, t) for t in np.linspace(30.0, 60.0, 31)]
    assert np.all(np.diff(shares) <= 0.0) and np.max(np.abs(np.diff(shares))) < 0.1  # smooth, no jump


def test_own_detail_is_finer_for_a_grown_target_than_for_a_child() -> None:
    """A child's scan gives its shapes and tones only (its fine detail is grain); from a teen's age on, the own
    faces give finer detail (brows, lashes), with no jump as a slider moves."""
    assert own_detail(4.0) == own_detail(10.0) == OWN_DETAIL
    assert own_detail(14.0) == own_detail(40.0) == OWN_FINE < OWN_DETAIL
    steps = np.diff([own_detail(t) for t in np.linspace(10.0, 14.0, 41)])
    assert np.all(steps <= 0.0) and np.max(np.abs(steps)) < 0.1 * (OWN_DETAIL - OWN_FINE)


def test_an_own_photos_glasses_keep_only_their_coarse_part(editor: FaceEditor, fgnet: Path) -> None:
    """FG-NET 001's child photo made 29 with his adult photos, three of them in glasses: given as his fine detail,
    their frames were drawn as a ghost of glasses round the edit's eyes. The parser finds the frames (and the
    lenses) in his photo at 33 and none at 22; drawn with it, the frames' fine detail is gone, the rest of the view
    is as drawn without it, and a face without glasses is drawn the same."""
    from ganime_age.engine.frames import template_blur
    from ganime_age.engine.own_photos import draw_face, glasses_view
    from ganime_age.faces import load_image

    template, parser = editor.engine.template, editor.analyzer.parser

    def drawn(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb = load_image(fgnet / name)
        points = np.asarray(editor.analyzer.analyze(rgb)[0].landmarks.landmarks, np.float64)
        plain = draw_face(template, rgb, points, 0.0)[0]
        return (
            plain,
            draw_face(template, rgb, points, 0.0, parse=parser)[0],
            glasses_view(template, rgb, points, parser),
        )

    plain, drawn_33, glasses = drawn("001A33.JPG")
    assert glasses.mean() > 0.1  # his thick frames, about the eyes
    fine = [np.abs(v - template_blur(template, v.astype(np.float32), 0.03)).mean(axis=2) for v in (plain, drawn_33)]
    on = glasses > 0.9
    assert fine[1][on].mean() < 0.4 * fine[0][on].mean()  # the frames' lines are gone (measured: 0.3 times)
    off = glasses == 0.0
    assert np.array_equal(plain[off], drawn_33[off])
    plain, drawn_22, glasses = drawn("001A22.JPG")
    assert not glasses.any() and np.array_equal(plain, drawn_22)


def test_a_grey_own_photo_gives_no_colour(editor: FaceEditor, fgnet: Path) -> None:
    """029's photo at 1 is a black-and-white scan: levelled onto her skin, its lips and cheeks were her skin's tone,
    and the personal edit's lips came out paler than the general edit's. Now its colour is the strangers' (the
    general matched view's), its light and dark its own; a colour photo (at 10) keeps its own colour."""
    from ganime_age.editing.person import personal
    from ganime_age.engine.exemplars import ExemplarMatch

    grey = editor.person([(fgnet / "029A01.JPG", 1.0)])
    coloured = editor.person([(fgnet / "029A10.JPG", 10.0)])
    session = editor.session(fgnet / ADULT)
    face = session.engine_face(session.faces[0])
    inside = editor.engine.template.raster.mask > 0.5

    def colour(view: np.ndarray) -> np.ndarray:
        return (view - view.mean(axis=2, keepdims=True))[inside]

    views = {}
    for name, one in (("grey", grey), ("coloured", coloured)):
        match = personal(face, one).exemplars
        trust = match.own_colour_shares[0]
        assert trust == (pytest.approx(0.0, abs=1e-3) if name == "grey" else 1.0)
        views[name] = (match.matched_view(5.0)[0], ExemplarMatch.matched_view(match, 5.0)[0])
    mine, general = views["grey"]
    assert np.abs(colour(mine) - colour(general)).max() < 1e-4
    assert np.abs(mine - general)[inside].mean() > 0.01  # its light and dark are still its own
    mine, general = views["coloured"]
    assert np.abs(colour(mine) - colour(general)).mean() > 0.005


def test_cli_edit_with_own_photos(fgnet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, saved = tmp_path / "child.png", tmp_path / "me"
    own = [f"--own={fgnet / name}:{age}" for name, age in OWN.items()]
    code = cli_main(
        [
            "edit",
            str(fgnet / ADULT),
            "--age",
            "5",
            "--from-age",
            "29",
            *own,
            "--save-person",
            str(saved),
            "-o",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert out.is_file() and (saved / "person.json").is_file()
    assert f"saved the person ({len(OWN)} photos)" in printed.out
    folder = tmp_path / "own"
    folder.mkdir()
    for name in OWN:
        (folder / name).write_bytes((fgnet / name).read_bytes())
    (folder / "ages.csv").write_text("photo,age\n" + "".join(f"{n},{a}\n" for n, a in OWN.items()))
    again = tmp_path / "again.png"
    assert (
        cli_main(
            [
                "edit",
                str(fgnet / ADULT),
                "--age",
                "5",
                "--from-age",
                "29",
                "--own-folder",
                str(folder),
                "-o",
                str(again),
            ]
        )
        == 0
    )
    loaded = tmp_path / "loaded.png"
    assert (
        cli_main(
            ["edit", str(fgnet / ADULT), "--age", "5", "--from-age", "29", "--person", str(saved), "-o", str(loaded)]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(loaded)))
    assert cli_main(["edit", str(fgnet / ADULT), "--age", "5", "--person", str(saved), *own, "-o", str(again)]) != 0


def test_the_own_ageing_evaluation_runs_on_one_person(fgnet: Path, tmp_path: Path) -> None:
    import json

    from training.evaluate import main

    out = tmp_path / "own.json"
    args = ["own-ageing", "--fgnet", str(fgnet.parent), "--max-people", "1", "--json", str(out)]
    assert main([*args, "--samples", str(tmp_path / "grids")]) == 0
    part = json.loads(out.read_text())["spans"]["3-10"]
    assert part["people"] == 1 and set(part["own"]) == {"1", "3", "all"}
    assert 0.0 < part["own"]["all"]["distance"] < 1.5
    differences = part["own"]["all"]["real_age_error_differences"]  # personal less general, both networks
    errors, general = part["own"]["all"]["real_age_errors"], part["general_real_age_errors"]
    for network, difference in enumerate(differences):  # one person: the interval is the difference itself
        assert difference["low"] == pytest.approx(difference["difference"]) == pytest.approx(difference["high"])
        assert difference["difference"] == pytest.approx(errors[network] - general[network])
    for reference in ("nearest_own", "closest_own"):  # the own photos unedited, beside the edits
        assert part["references"][reference]["people"] == 1
        assert 0.0 < part["references"][reference]["distance"] < 1.5
    assert part["references"]["closest_own"]["distance"] <= part["references"]["nearest_own"]["distance"]
    grid = np.asarray(Image.open(tmp_path / "grids" / "own_ageing_3-10.jpg"))
    assert grid.shape[0] == 256 and grid.shape[1] > 4 * 256  # one person: the label, then four faces
    assert grid[:, -256:].std() > 20  # the real photo's face, not a blank
