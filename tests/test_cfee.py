"""CFEE as training data: FACS codes -> AU targets, person-level split, estimated ages, mixing with UTKFace."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ganime_age.conditions import AU_NAMES
from ganime_age.errors import DatasetError
from training.data.prepared import MixedFaces, PreparedFaces
from training.data.sources import facs_intensity, parse_cfee, read_cfee_codes
from training.train import EpochSampler, TrainingError


def test_facs_codes_map_to_the_project_scale() -> None:
    assert [facs_intensity(c) for c in "abcde"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert facs_intensity("x") == 3.0  # present, intensity not scored
    assert facs_intensity("LcRb") == facs_intensity("RbLc") == 2.5  # sides averaged
    assert facs_intensity("Lb") == 1.0  # one side only: the other side counts 0
    for bad in ("f", "LL", "LcLb", "", "Lcx"):
        with pytest.raises(DatasetError):
            facs_intensity(bad)


def test_the_real_cfee_listing(shared_dir: Path) -> None:
    root = shared_dir / "datasets" / "cfee"
    listing = parse_cfee(root)
    assert len(listing.items) == 2179 and not listing.skipped
    codes = read_cfee_codes(root / "aus.csv")
    au12 = AU_NAMES.index("AU12")
    happy = [item for item in listing.items if item.identity_hint.endswith("-Happy")]
    neutral = [item for item in listing.items if item.identity_hint.endswith("-Neutral")]
    assert len(neutral) == 101 and all(not any(item.aus) for item in neutral)
    assert np.mean([item.aus[au12] for item in happy]) >= 3.0  # smiles are coded c-d
    assert all(not item.age_known and item.split_key == f"cfee-{item.identity_hint.split('-')[1]}" for item in happy)
    # AU43 (eyes closed) is CFEE's only eyelid code: it lands on AU45
    assert any(vector[AU_NAMES.index("AU45")] > 0 for vector in codes.values())


def test_prepared_cfee_rows(prepared_cfee64: Path) -> None:
    people: dict[str, set[str]] = {}
    for split in ("train", "test"):
        faces = PreparedFaces(prepared_cfee64, split)
        assert faces.au_coded.min() == 1 and faces.age_known.max() == 0
        assert np.all((faces.ages > 3) & (faces.ages < 90)), faces.ages  # estimated by the shipped estimator
        assert faces.blendshapes is not None and np.isfinite(faces.blendshapes).all()
        for hint in faces.identity_hints:
            people.setdefault(hint.split("-")[1], set()).add(split)
        happy = [i for i, h in enumerate(faces.identity_hints) if h.endswith("-Happy")]
        assert faces.aus[happy, AU_NAMES.index("AU12")].min() >= 2
    assert all(len(splits) == 1 for splits in people.values()), "a person straddles the split"
    assert len(people) >= 14 and {"train", "test"} == set().union(*people.values())  # of the 16 picked people
    table = pq.read_table(sorted((prepared_cfee64 / "data").glob("train-*.parquet"))[0])
    assert set(table.column("au_source").to_pylist()) == {"facs"}


def test_mixed_sampler_draws_each_part_by_its_share(prepared_utk64: Path, prepared_cfee64: Path) -> None:
    mixed = MixedFaces([PreparedFaces(prepared_utk64, "train"), PreparedFaces(prepared_cfee64, "train")])
    sizes = mixed.sizes
    sampler = EpochSampler(len(mixed), seed=3, flips=True, sizes=sizes, shares=[0.7, 0.3])
    keys = list(sampler)
    assert len(keys) == len(sampler)
    parts = Counter(int(index >= sizes[0]) for index, _ in keys)
    assert parts[1] == round(0.3 * len(mixed)) and parts[0] == round(0.7 * len(mixed))
    assert keys == list(EpochSampler(len(mixed), seed=3, flips=True, sizes=sizes, shares=[0.7, 0.3]))
    sampler.set_epoch(1)
    assert list(sampler) != keys
    item = mixed[keys[0]]
    assert item["image"].shape == (3, 64, 64) and float(item["au_coded"]) == float(keys[0][0] >= sizes[0])
    with pytest.raises(TrainingError):
        EpochSampler(len(mixed), seed=0, sizes=sizes, shares=[0.5, 0.6])


def test_partners_are_other_photos_of_the_same_person(prepared_utk64: Path, prepared_cfee64: Path) -> None:
    """Paired expression targets: each CFEE face's partner is another photo of its person, flipped alike."""
    cfee = PreparedFaces(prepared_cfee64, "train", partners=True)
    mixed = MixedFaces([PreparedFaces(prepared_utk64, "train", partners=True), cfee])
    sampler = EpochSampler(len(mixed), seed=1, flips=True, sizes=mixed.sizes, shares=[0.5, 0.5], partners=True)
    keys = list(sampler)
    assert all(len(key) == 3 for key in keys) and keys == list(sampler)  # reproducible draws
    person = [hint.rsplit("-", 1)[0] for hint in cfee.identity_hints]
    photos = Counter(person)
    for row, others in enumerate(cfee.same_person):
        assert len(others) == photos[person[row]] - 1 and row not in others
        assert {person[o] for o in others} <= {person[row]}
    offset = mixed.sizes[0]
    index, flip, draw = next(
        key for key in keys if key[0] >= offset and key[1] and len(cfee.same_person[key[0] - offset])
    )
    item = mixed[(index, flip, draw)]
    row = index - offset
    partner = int(cfee.same_person[row][draw % len(cfee.same_person[row])])
    assert float(item["has_partner"]) == 1.0
    assert np.array_equal(item["partner_aus"].numpy(), cfee.aus[partner])
    assert torch.equal(item["partner_image"], cfee[(partner, True)]["image"])  # mirrored like the face
    utk_item = mixed[(0, False, 7)]
    assert float(utk_item["has_partner"]) == 0.0 and not utk_item["partner_image"].any()
