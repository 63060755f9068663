"""Issue 28: every setting of every model is checked when the model loads.

A model folder without ``config_sha256`` (a user's own fit) is trusted for nothing: each config field
declares its type and range (``ganime_age.config.bounded`` / ``one_of``), and a value of the wrong type
("32" for 32, 2.5 for an int), NaN or infinite (also inside a tuple), out of range, or a tuple of the wrong
length is refused with a typed error naming the field, before anything is sized from it. The shipped
folders are copied, one field damaged, and loaded the way the library, the editor and the CLI load them;
the models that ship no folder are built from a config dict.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ganime_age.config import CHOICES, LENGTH, RANGE, bounded, from_dict, load_yaml, to_dict
from ganime_age.editing import DEFAULT_ENGINE_DIR, DEFAULT_ESTIMATOR_DIR, FaceEditor
from ganime_age.engine import FittedEngine, FittedEngineConfig
from ganime_age.errors import ConfigError, GanimeAgeError
from ganime_age.hub import CONFIG_NAME, CONFIG_SHA256, MODEL_REGISTRY, WEIGHTS_NAME, load_pretrained, model_class
from ganime_age.models.age_estimator import AgeEstimator, AgeEstimatorConfig
from ganime_age.models.reenact import ShapeTransfer, ShapeTransferConfig

BAD_SCALARS: dict[str, Any] = {"nan": math.nan, "inf": math.inf, "negative": -1, "huge": 1e9, "string": "32"}


# -- walking the declarations ---------------------------------------------------------------------------------
def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def config_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """(dotted name, annotation, field) of every field of a config class, nested dataclasses walked into."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        tp = _strip_optional(hints[item.name])
        name = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(tp):
            yield from config_fields(tp, f"{name}.")
        else:
            yield name, tp, item


def _is_variable(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is list or (typing.get_origin(tp) is tuple and (not args or args[-1] is Ellipsis))


def _leaves(tp: Any) -> Iterator[Any]:
    """The scalar types inside a (nested) tuple or list annotation: tuple[tuple[int, int], ...] -> int, int."""
    if typing.get_origin(tp) in (tuple, list):
        for inner in typing.get_args(tp):
            if inner is not Ellipsis:
                yield from _leaves(inner)
    else:
        yield tp


def undeclared(cls: type) -> list[str]:
    """Fields that say nothing of what they accept: a number (or numbers in a tuple) without a RANGE, a
    variable-length tuple without a LENGTH, a str without CHOICES, or a kind the checker cannot hold at all."""
    missing = []
    for name, tp, item in config_fields(cls):
        leaves = set(_leaves(tp))
        sequence = typing.get_origin(tp) in (tuple, list)
        if leaves <= {bool} and not sequence:
            continue  # true or false: nothing more to declare
        if leaves == {str} and not sequence:
            ok = CHOICES in item.metadata
        elif leaves <= {int, float}:
            ok = RANGE in item.metadata and (not _is_variable(tp) or LENGTH in item.metadata)
        else:
            ok = False
        if not ok:
            missing.append(name)
    return missing


CONFIG_CLASSES = {t: model_class(t).config_class for t in sorted(MODEL_REGISTRY)}


@pytest.mark.parametrize("model_type", sorted(CONFIG_CLASSES))
def test_every_field_of_every_model_declares_what_it_accepts(model_type: str) -> None:
    """A field added later without a range (or choices) fails here, not when a user's folder sets it to 1e9."""
    cls = CONFIG_CLASSES[model_type]
    assert not undeclared(cls), f"{cls.__name__} fields without a declared range or choices: {undeclared(cls)}"
    assert any(True for _ in config_fields(cls))


def test_the_shape_transfer_settings_are_declared_too() -> None:
    assert not undeclared(ShapeTransferConfig)
    with pytest.raises(ConfigError, match=r"ShapeTransferConfig\.max_turn_degrees must be between 0 and 180"):
        ShapeTransfer(ShapeTransferConfig(max_turn_degrees=1e9))
    with pytest.raises(ConfigError, match=r"ShapeTransferConfig\.rotation must be one of 'landmarks', 'matrix'"):
        ShapeTransfer(ShapeTransferConfig(rotation="euler"))


def test_an_undeclared_field_is_caught() -> None:
    @dataclasses.dataclass
    class Later:
        size: int = bounded(8, 1, 64)
        sizes: tuple[int, ...] = bounded((1, 2), 1, 8)  # a range but no length
        added: float = 0.5
        mode: str = "fast"
        pairs: tuple[tuple[int, int], ...] = bounded(((1, 2),), 1, 8, length=(1, 4))
        flag: bool = True

    assert undeclared(Later) == ["sizes", "added", "mode"]


# -- bad values for every field -------------------------------------------------------------------------------
def _nan_inside(value: Any) -> Any:
    """The value with its first number (however deep) replaced by NaN."""
    if isinstance(value, (tuple, list)):
        return [_nan_inside(value[0]), *value[1:]]
    return math.nan


def bad_values(tp: Any, default: Any) -> dict[str, Any]:
    values = dict(BAD_SCALARS)
    if typing.get_origin(tp) in (tuple, list):
        values["nan_element"] = _nan_inside(default)
        values["wrong_length"] = [] if _is_variable(tp) else [*default, default[0]]
    return values


def cases(cls: type) -> list[Any]:
    defaults = to_dict(cls())
    return [
        pytest.param(name, value, id=f"{name}-{kind}")
        for name, tp, _ in config_fields(cls)
        for kind, value in bad_values(tp, defaults[name]).items()
    ]


def names_field(cls: type, name: str) -> str:
    """The message names the class and the field: 'FittedEngineConfig.band_sigma must be ...'."""
    return rf"\b{cls.__name__}\.{re.escape(name)}\b"


def damaged_folder(source: Path, folder: Path, **changes: Any) -> Path:
    """A copy of a shipped model folder (the weights linked, not copied) without its settings checksum, as a
    user's own fit would be, with `changes` written into config.json."""
    folder.mkdir(parents=True)
    try:
        os.link(source / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    except OSError:  # another file system: copy
        shutil.copyfile(source / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    settings = json.loads((source / CONFIG_NAME).read_text())
    settings.pop(CONFIG_SHA256)
    settings.update(changes)
    (folder / CONFIG_NAME).write_text(json.dumps(settings))  # NaN and Infinity as Python's json writes them
    return folder


@pytest.mark.parametrize(("name", "value"), cases(FittedEngineConfig))
def test_a_bad_engine_setting_is_refused_on_load(tmp_path: Path, name: str, value: Any) -> None:
    folder = damaged_folder(DEFAULT_ENGINE_DIR, tmp_path / "engine", **{name: value})
    with pytest.raises(GanimeAgeError, match=names_field(FittedEngineConfig, name)):
        load_pretrained(folder)


@pytest.mark.parametrize(("name", "value"), cases(AgeEstimatorConfig))
def test_a_bad_estimator_setting_is_refused_on_load(tmp_path: Path, name: str, value: Any) -> None:
    folder = damaged_folder(DEFAULT_ESTIMATOR_DIR, tmp_path / "estimator", **{name: value})
    with pytest.raises(GanimeAgeError, match=names_field(AgeEstimatorConfig, name)):
        load_pretrained(folder)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("band_sigma", 1e6),  # was a 6 GB Gaussian kernel
        ("image_size", "32"),
        ("template_size", 1e9),
        ("template_centre", [100.0, math.nan]),
        ("age_centres", [2.0, math.inf, 80.0]),
        ("mouth_grid", [32, 96, 4]),
        ("engine_face_pixels", -1),
    ],
)
def test_the_editor_refuses_a_bad_engine_setting(tmp_path: Path, name: str, value: Any) -> None:
    """The editor, the CLI and the Space load an engine folder as the model or beside a refiner."""
    folder = damaged_folder(DEFAULT_ENGINE_DIR, tmp_path / "engine", **{name: value})
    with pytest.raises(GanimeAgeError, match=names_field(FittedEngineConfig, name)):
        FaceEditor.from_pretrained(folder)
    with pytest.raises(GanimeAgeError, match=names_field(FittedEngineConfig, name)):
        FaceEditor.from_pretrained(engine=folder)


@pytest.mark.parametrize(("name", "value"), [("image_size", "48"), ("channel_multipliers", [1, 2, math.nan, 8])])
def test_the_editor_refuses_a_bad_estimator_setting(tmp_path: Path, name: str, value: Any) -> None:
    folder = damaged_folder(DEFAULT_ESTIMATOR_DIR, tmp_path / "estimator", **{name: value})
    with pytest.raises(GanimeAgeError, match=names_field(AgeEstimatorConfig, name)):
        FaceEditor.from_pretrained(age_estimator=folder)


SHIPLESS = [t for t in sorted(CONFIG_CLASSES) if t not in ("fitted_engine", "age_estimator")]


@pytest.mark.parametrize(
    ("model_type", "name", "value"),
    [pytest.param(t, *case.values, id=f"{t}-{case.id}") for t in SHIPLESS for case in cases(CONFIG_CLASSES[t])],
)
def test_a_bad_setting_of_any_other_model_is_refused(model_type: str, name: str, value: Any) -> None:
    cls = model_class(model_type)
    settings = {**to_dict(cls.config_class()), name: value}
    with pytest.raises(ConfigError, match=names_field(cls.config_class, name)):
        cls(settings)


# -- what still loads -----------------------------------------------------------------------------------------
def test_the_shipped_folders_load_with_and_without_their_settings_checksum(tmp_path: Path) -> None:
    """JSON lists fill the tuple fields; a user's own fit (no checksum) with sound settings loads."""
    engine = load_pretrained(DEFAULT_ENGINE_DIR)
    assert isinstance(engine, FittedEngine) and engine.config == FittedEngineConfig()
    estimator = load_pretrained(DEFAULT_ESTIMATOR_DIR)
    assert isinstance(estimator, AgeEstimator) and estimator.config.channel_multipliers == (1, 2, 4, 8)
    own = load_pretrained(damaged_folder(DEFAULT_ESTIMATOR_DIR, tmp_path / "own", dropout=0.2, lambda_mean=1))
    assert own.config.dropout == 0.2 and own.config.lambda_mean == 1.0 and isinstance(own.config.lambda_mean, float)


def test_the_rules_across_fields_run_after_the_field_checks(tmp_path: Path) -> None:
    with pytest.raises(GanimeAgeError, match=r"age_centres must be increasing"):
        load_pretrained(damaged_folder(DEFAULT_ENGINE_DIR, tmp_path / "a", age_centres=[2.0, 40.0, 20.0]))
    with pytest.raises(GanimeAgeError, match=r"template_size must be a multiple of energy_downsample"):
        load_pretrained(damaged_folder(DEFAULT_ENGINE_DIR, tmp_path / "b", energy_downsample=3))


def test_from_dict_reads_no_numbers_from_strings() -> None:
    with pytest.raises(ConfigError, match=r"AgeEstimatorConfig\.image_size must be an integer, not '32'"):
        from_dict(AgeEstimatorConfig, {"image_size": "32"})
    with pytest.raises(ConfigError, match=r"AgeEstimatorConfig\.dropout must be a number, not '0.1'"):
        from_dict(AgeEstimatorConfig, {"dropout": "0.1"})
    with pytest.raises(ConfigError, match=r"AgeEstimatorConfig\.image_size must be an integer, not 32.5"):
        from_dict(AgeEstimatorConfig, {"image_size": 32.5})
    config = from_dict(AgeEstimatorConfig, {"image_size": 32.0, "dropout": 0, "channel_multipliers": [1, 2]})
    assert config.image_size == 32 and isinstance(config.image_size, int) and isinstance(config.dropout, float)
    assert config.channel_multipliers == (1, 2)


def test_yaml_reads_exponents_as_numbers(tmp_path: Path) -> None:
    """YAML 1.1 (PyYAML) reads 1e-4 as a string, which a float field now refuses: the loader reads it as 0.0001."""
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-4\nbig: 3.0e4\nplain: 2\nname: v1e3\n")
    assert load_yaml(path) == {"lr": 1e-4, "big": 3e4, "plain": 2, "name": "v1e3"}
