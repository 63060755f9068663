"""Read a prepared dataset (``training/prepare_data.py`` output) as a torch Dataset.

Only pyarrow and pillow are needed (GPU machines may lack ``datasets``). The label columns are
loaded into numpy arrays up front (a few MB); the WebP images stay encoded in memory and are
decoded lazily in ``__getitem__``, so DataLoader workers share the decoding work.

Items are dicts of tensors (the default collate stacks them):

    image      (3, S, S) float32 in [-1, 1], RGB
    age        () float32 years
    age_group  () int64 FFHQ-Aging group
    aus        (17,) float32 0..5
    pose       (3,) float32 yaw, pitch, roll degrees
    landmarks  (478, 2) float32 x, y in pixels of the returned image
    age_known  () float32 1, or 0 where the source had no age and `age` is an estimate (CFEE)
    au_coded   () float32 1 where the AUs were FACS-coded by people, 0 where estimated from blendshapes

With ``partners`` each item also carries another photo of the same person (CFEE: the same person posing
another expression), flipped like the item, as a paired target for expression edits:

    partner_image  (3, S, S) float32, zeros when the face has no partner
    partner_aus    (17,) float32 the partner's AUs
    has_partner    () float32 1 or 0

AU labels estimated from blendshapes are recomputed from the stored raw scores with the current
read-out (``ganime_age.faces.aus``), so a recalibration reaches training without re-preparing photos.
Datasets prepared before those columns existed read as age_known 1, au_coded 0 with their stored AUs.

The refiner's own format (``training/data/refiner.py``: the fitted engine's edits beside the real photos they
came from and should match, in ``.npz`` shards) is read by :class:`RefinerPairs` at the end of this module.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ganime_age.conditions import NUM_AUS
from ganime_age.errors import DatasetError
from ganime_age.faces.aus import NUM_BLENDSHAPES, blendshape_mapping, blendshapes_to_aus
from ganime_age.faces.topology import NUM_LANDMARKS
from training.data.sources import UTKFACE_NAME

LABEL_COLUMNS = ("id", "age", "age_group", "aus", "pose", "landmarks", "identity_hint")
OPTIONAL_COLUMNS = ("blendshapes", "au_source", "age_estimated")  # format 2


def shard_files(data_dir: str | Path, split: str) -> list[Path]:
    """The Parquet shards of one split, in chunk order."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DatasetError(f"prepared dataset not found: {folder} (make one with `python training/prepare_data.py`)")
    return sorted((folder / "data").glob(f"{split}-*.parquet"))


def list_splits(data_dir: str | Path) -> dict[str, int]:
    """Rows per split, read from the Parquet footers only (no image data is read)."""
    import pyarrow.parquet as pq

    folder = Path(data_dir)
    if not (folder / "data").is_dir():
        raise DatasetError(f"{folder} holds no data/ folder; is it a prepared dataset?")
    counts: dict[str, int] = {}
    for path in sorted((folder / "data").glob("*-*.parquet")):
        split = path.name.rsplit("-", 1)[0]
        counts[split] = counts.get(split, 0) + pq.ParquetFile(path).metadata.num_rows
    return counts


def _matrix(column: Any, width: int, name: str) -> np.ndarray:
    """A (fixed- or variable-size) list<float> column as an (N, width) float32 array."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), np.float32)
    if values.size != len(column) * width:
        raise DatasetError(f"column {name!r} should hold {width} values per row")
    return values.reshape(len(column), width)


def item_key(key: int | tuple, length: int, hflip: bool, what: str) -> tuple[int, bool]:
    """A dataset key (an index, or the trainer's resumable ``(index, flip, ...)``) -> (index >= 0, flip); the
    flip is drawn from the torch RNG only when the key leaves it open and ``hflip`` is on."""
    if isinstance(key, tuple):
        index, flip = int(key[0]), bool(key[1])
    else:
        index, flip = int(key), hflip and bool(torch.rand(()) < 0.5)
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for {length} {what}")
    return index % length, flip


def same_person_rows(identity_hints: list[str]) -> list[np.ndarray]:
    """For each row, the other rows showing the same person (empty where the source names no person)."""
    from training.data.sources import cfee_person

    rows: dict[str, list[int]] = {}
    persons = [cfee_person(hint) for hint in identity_hints]
    for row, person in enumerate(persons):
        if person is not None:
            rows.setdefault(person, []).append(row)
    empty = np.zeros(0, np.int64)
    return [
        np.array([r for r in rows[person] if r != row], np.int64) if person is not None else empty
        for row, person in enumerate(persons)
    ]


class PreparedFaces(Dataset):
    """A split of a prepared dataset.

    Args:
        data_dir: the prepared folder (holding data/{split}-NNNNN.parquet).
        split: "train" or "test".
        image_size: resize faces (and landmarks) to this size; None keeps the prepared resolution.
        max_samples: keep only the first N rows (tiny runs, tests).
        hflip: random horizontal flip with probability 0.5 (augmentation). A flip mirrors the image and
            the landmark x coordinates (point indices are not re-paired left/right) and negates yaw and
            roll; age, age group and the AUs (one intensity per bilateral AU) are unchanged.
        partners: add a same-person partner photo to each item (see the module docstring).

    Items are read by index, or by an ``(index, flip)`` or ``(index, flip, draw)`` key that says whether
    to mirror the face and which partner to pair it with (``draw`` modulo the person's other photos); the
    trainer's sampler uses keys so that flips and pairs are reproducible. Without a key, ``hflip`` and
    the torch RNG decide.
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str = "train",
        image_size: int | None = None,
        max_samples: int | None = None,
        hflip: bool = False,
        partners: bool = False,
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = shard_files(data_dir, split)
        if not files:
            raise DatasetError(f"{data_dir} has no {split!r} shards (data/{split}-*.parquet)")
        present = set(pq.read_schema(files[0]).names)
        optional = [name for name in OPTIONAL_COLUMNS if name in present]
        tables = [pq.read_table(path, columns=["image", *LABEL_COLUMNS, *optional]) for path in files]
        table = pa.concat_tables(tables)
        if max_samples is not None:
            table = table.slice(0, max_samples)
        if len(table) == 0:
            raise DatasetError(f"{data_dir} split {split!r} is empty")
        self.data_dir = Path(data_dir)
        self.split = split
        self.image_size = image_size
        self.hflip = hflip
        self._images = table.column("image").combine_chunks().field("bytes")
        self.ids: list[str] = table.column("id").to_pylist()
        self.identity_hints: list[str] = table.column("identity_hint").to_pylist()
        self.ages = table.column("age").to_numpy().astype(np.float32)
        self.age_groups = table.column("age_group").to_numpy().astype(np.int64)
        self.aus = _matrix(table.column("aus"), NUM_AUS, "aus")
        self.poses = _matrix(table.column("pose"), 3, "pose")
        self.landmarks = _matrix(table.column("landmarks"), NUM_LANDMARKS * 2, "landmarks").reshape(
            -1, NUM_LANDMARKS, 2
        )
        n = len(self.ids)
        self.age_known = np.ones(n, np.float32)
        if "age_estimated" in optional:
            self.age_known = 1.0 - table.column("age_estimated").to_numpy().astype(np.float32)
        self.au_coded = np.zeros(n, np.float32)
        if "au_source" in optional:
            self.au_coded = (np.asarray(table.column("au_source").to_pylist()) == "facs").astype(np.float32)
        self.partners = partners
        self.same_person = same_person_rows(self.identity_hints) if partners else []
        self.blendshapes: np.ndarray | None = None
        if "blendshapes" in optional:
            self.blendshapes = _matrix(table.column("blendshapes"), NUM_BLENDSHAPES, "blendshapes")
            self.aus = self.aus.copy()  # Arrow's buffer is read-only
            for index in np.flatnonzero(self.au_coded == 0):
                self.aus[index] = blendshapes_to_aus(blendshape_mapping(self.blendshapes[index]))

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, index: int) -> Image.Image:
        """The decoded face as a PIL image at the prepared resolution."""
        data = self._images[index].as_py()
        with Image.open(io.BytesIO(data), formats=("WEBP", "PNG", "JPEG")) as image:  # skip format probing
            return image.convert("RGB")

    def __getitem__(self, key: int | tuple) -> dict[str, torch.Tensor]:
        index, flip, draw = self._read_key(key)
        item = self._face(index, flip)
        if self.partners:
            others = self.same_person[index]
            if len(others):
                partner = int(others[draw % len(others)])
                item["partner_image"] = self._face(partner, flip)["image"]
                item["partner_aus"] = torch.from_numpy(self.aus[partner].copy())
            else:
                item["partner_image"] = torch.zeros_like(item["image"])
                item["partner_aus"] = item["aus"].clone()
            item["has_partner"] = torch.tensor(float(len(others) > 0))
        return item

    def _read_key(self, key: int | tuple) -> tuple[int, bool, int]:
        """(index, flip, partner draw); the torch RNG is only drawn from for what the key leaves open."""
        index, flip = item_key(key, len(self), self.hflip, "faces")
        if isinstance(key, tuple) and len(key) > 2:
            draw = int(key[2])
        else:
            draw = int(torch.randint(1 << 30, ())) if self.partners else 0
        return index, flip, draw

    def _face(self, index: int, flip: bool) -> dict[str, torch.Tensor]:
        image = self.image(index)
        landmarks = self.landmarks[index].copy()
        if self.image_size is not None and image.size != (self.image_size, self.image_size):
            # pixel centres sit at integer coordinates (OpenCV's warp convention)
            landmarks = (landmarks + 0.5) * (self.image_size / image.size[0]) - 0.5
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, np.float32)
        pose = self.poses[index].copy()
        if flip:
            pixels = pixels[:, ::-1]
            landmarks[:, 0] = (pixels.shape[1] - 1) - landmarks[:, 0]
            pose[0], pose[2] = -pose[0], -pose[2]
        tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))) / 127.5 - 1.0
        return {
            "image": tensor,
            "age": torch.tensor(self.ages[index], dtype=torch.float32),
            "age_group": torch.tensor(self.age_groups[index], dtype=torch.int64),
            "aus": torch.from_numpy(self.aus[index].copy()),
            "pose": torch.from_numpy(pose),
            "landmarks": torch.from_numpy(landmarks),
            "age_known": torch.tensor(self.age_known[index]),
            "au_coded": torch.tensor(self.au_coded[index]),
        }


class MixedFaces(Dataset):
    """Several prepared datasets read as one: index i falls in the part whose offsets hold it.

    The trainer's sampler decides how often each part is drawn (``train.mix_shares``); this class only
    maps a global index, or ``(index, flip)`` key, to its part.
    """

    def __init__(self, parts: list[PreparedFaces]) -> None:
        if not parts:
            raise DatasetError("MixedFaces needs at least one dataset")
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(part) for part in parts])

    @property
    def sizes(self) -> list[int]:
        return [len(part) for part in self.parts]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, key: int | tuple) -> dict[str, torch.Tensor]:
        index = int(key[0]) if isinstance(key, tuple) else int(key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} faces")
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        local = index - int(self.offsets[part])
        return self.parts[part][(local, *key[1:]) if isinstance(key, tuple) else local]


# -- the refiner's pairs (training/data/refiner.py) -----------------------------------------------------------

REFINER_FORMAT_VERSION = 1
REFINER_SHARDS = "shards"  # <folder>/shards/{cfee,utkface}-NNNNN.npz
REFINER_MANIFEST = "manifest.json"


def refiner_shard_paths(data_dir: str | Path) -> list[Path]:
    """The npz shards of a refiner dataset, in name order; DatasetError when there is no such dataset."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DatasetError(
            f"refiner dataset not found: {folder} (make one with `python training/data/refiner.py --output {folder}`)"
        )
    paths = sorted((folder / REFINER_SHARDS).glob("*.npz"))
    if not paths:
        raise DatasetError(f"{folder} holds no refiner shards ({REFINER_SHARDS}/*.npz); is it a refiner dataset?")
    return paths


def refiner_split(person: str, test_fraction: float) -> str:
    """'test' for a stable `test_fraction` of people (a hash of the person's name): one person, one split.

    Salted: the unsalted hash is prepare_data's, which already sent its low values (the gates' people) to
    its test split, so none of the refiner's CFEE people would ever be held out.
    """
    import hashlib

    digest = hashlib.sha1(f"refiner:{person}".encode()).hexdigest()
    return "test" if int(digest[:8], 16) / 2**32 < test_fraction else "train"


class RefinerPairs(Dataset):
    """A split of a refiner dataset: the engine's edits, the real photos they came from and should match.

    All crops stay uint8 in memory (a full build is ~0.5 GB); each real photo is stored once per shard and
    referenced by its edits. Items:

        image         (3, S, S) float32 in [-1, 1]: the engine's edit (the refiner's input)
        source_image  (3, S, S): the photo the engine edited
        target_image  (3, S, S): the real photo the edit should look like (zeros where there is none)
        has_target    () float32 1 for CFEE pairs, 0 for UTKFace age edits
        aus           (17,) float32: the target AUs (the refiner's condition)
        age           () float32: the target age (CFEE: the source's estimated age; UTKFace: the edit's age)
        source_age    () float32: the source's estimated age

    The split is by person (CFEE person, or the UTKFace photo itself), ``test_fraction`` of them held out
    for the sample grids. Keys are an index or an ``(index, flip)`` pair (the trainer's resumable flips);
    a flip mirrors all three crops alike. ``max_samples`` keeps that many rows spread evenly over the split
    (so a small sample shows every kind of edit).
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str = "train",
        *,
        test_fraction: float = 0.1,
        image_size: int | None = None,
        max_samples: int | None = None,
        hflip: bool = False,
    ) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"split must be 'train' or 'test', not {split!r}")
        photos, inputs, columns = [], [], {}
        offset = 0
        for path in refiner_shard_paths(data_dir):
            try:
                with np.load(path, allow_pickle=False) as data:
                    if int(data["version"]) != REFINER_FORMAT_VERSION:
                        raise DatasetError(f"{path}: format {int(data['version'])}, expected {REFINER_FORMAT_VERSION}")
                    shard = {key: data[key] for key in data.files}
            except (OSError, ValueError, KeyError) as error:
                raise DatasetError(f"{path} is not a readable refiner shard: {error}") from error
            keep = np.array([refiner_split(str(p), test_fraction) == split for p in shard["person"]], bool)
            photos.append(shard["photos"])
            inputs.append(shard["inputs"][keep])
            for key in ("target_aus", "target_age", "source_age", "has_target", "person", "kind"):
                columns.setdefault(key, []).append(shard[key][keep])
            for key in ("source_index", "target_index"):
                local = shard[key][keep].astype(np.int64)
                columns.setdefault(key, []).append(np.where(local >= 0, local + offset, -1))
            offset += len(shard["photos"])
        rows = {key: np.concatenate(parts) for key, parts in columns.items()}
        count = len(rows["person"])
        if count == 0:
            raise DatasetError(f"{data_dir} split {split!r} is empty")
        picks = np.arange(count)
        if max_samples is not None and max_samples < count:
            picks = np.linspace(0, count - 1, max(1, max_samples)).round().astype(np.int64)
        self.data_dir = Path(data_dir)
        self.split = split
        self.image_size = image_size
        self.hflip = hflip
        self.photos = np.concatenate(photos)
        self.inputs = np.concatenate(inputs)[picks]
        self.source_index = rows["source_index"][picks]
        self.target_index = rows["target_index"][picks]
        self.aus = rows["target_aus"][picks].astype(np.float32)
        self.ages = rows["target_age"][picks].astype(np.float32)
        self.source_ages = rows["source_age"][picks].astype(np.float32)
        self.has_target = rows["has_target"][picks].astype(np.float32)
        self.persons = rows["person"][picks]
        self.kinds = rows["kind"][picks]

    def __len__(self) -> int:
        return len(self.inputs)

    def labelled_source_ages(self) -> np.ndarray:
        """(N,) float32: each age row's labelled age, read from its UTKFace file's name (``source_ages`` holds the
        engine's estimate); NaN for the CFEE rows, which carry no label."""
        ages = np.full(len(self), np.nan, np.float32)
        for row, person in enumerate(map(str, self.persons)):
            if person.startswith("utkface-"):  # an age row's person: utkface-REL
                match = UTKFACE_NAME.match(person.removeprefix("utkface-").rsplit("/", 1)[-1])
                ages[row] = float(match.group("age")) if match is not None else np.nan
        return ages

    def _tensor(self, crop: np.ndarray, flip: bool) -> torch.Tensor:
        image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 127.5 - 1.0
        if self.image_size is not None and image.shape[-1] != self.image_size:
            image = torch.nn.functional.interpolate(
                image[None], size=(self.image_size, self.image_size), mode="bilinear", antialias=True
            )[0]
        return image.flip(-1) if flip else image

    def __getitem__(self, key: int | tuple) -> dict[str, torch.Tensor]:
        index, flip = item_key(key, len(self), self.hflip, "pairs")
        target = int(self.target_index[index])
        image = self._tensor(self.inputs[index], flip)
        return {
            "image": image,
            "source_image": self._tensor(self.photos[self.source_index[index]], flip),
            "target_image": self._tensor(self.photos[target], flip) if target >= 0 else torch.zeros_like(image),
            "has_target": torch.tensor(self.has_target[index]),
            "aus": torch.from_numpy(self.aus[index].copy()),
            "age": torch.tensor(self.ages[index]),
            "source_age": torch.tensor(self.source_ages[index]),
        }
