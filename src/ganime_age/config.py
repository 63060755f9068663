"""One config mechanism for models, trainer, CLI and Space: plain dataclasses.

Dataclasses nest, convert to and from dicts (config.json, YAML) and take dotted command-line
overrides such as ``train.batch_size=32`` or ``model.image_size=256``. Each field of a model config
declares what it accepts (:func:`bounded`, :func:`one_of`); :func:`check_config` holds values to it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ganime_age.errors import ConfigError, echo

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON/YAML-ready dict of a (possibly nested) dataclass."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return dataclasses.asdict(config)  # type: ignore[arg-type]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# -- declared limits -----------------------------------------------------------------------------------------
# A model folder's config.json is user data: every field says what it accepts next to its default, and
# check_config holds each value to it before the model is sized from it (an image side of 1e9, a blur sigma
# of a million, "32" for 32 or NaN inside a tuple never reach an allocation or a NumPy call).
RANGE = "range"
"""Field metadata: inclusive (low, high) of a number, or of every number inside a tuple or list field. For a
field of fixed-length records (MobileFaceNet's bottlenecks), one (low, high) per position of the record."""
LENGTH = "length"
"""Field metadata: inclusive (shortest, longest) length of a variable-length tuple or list field."""
CHOICES = "choices"
"""Field metadata: the values a str field may take."""

Limits = tuple[float, float]


def bounded(default: Any, low: float, high: float, *, length: tuple[int, int] | None = None) -> Any:
    """A config field whose numbers (each element, for a tuple) must lie in [low, high]; `length` bounds how
    many elements a variable-length tuple holds. Declared with the field, so no field goes unchecked."""
    return _declared(default, {RANGE: (low, high)}, length)


def bounded_records(default: Any, *positions: Limits, length: tuple[int, int]) -> Any:
    """A variable-length tuple of fixed-length records whose i-th number must lie in ``positions[i]``."""
    return _declared(default, {RANGE: positions}, length)


def one_of(default: str, *choices: str) -> Any:
    """A str field that must be one of `choices` (the default is one of them)."""
    if default not in choices:
        raise ValueError(f"the default {default!r} is not one of {choices}")
    return dataclasses.field(default=default, metadata={CHOICES: choices})


def _declared(default: Any, metadata: dict[str, Any], length: tuple[int, int] | None) -> Any:
    if length is not None:
        metadata[LENGTH] = length
    return dataclasses.field(default=default, metadata=metadata)


def check_config(config: Any, *, name: str | None = None) -> None:
    """Hold every field of a config dataclass (nested ones too) to its annotation and declared limits: the
    type (an int field takes an int, not a bool, a str or 2.5; a float field an int or a float), a fixed
    tuple's length, finite numbers, each number in its RANGE, each str in its CHOICES. A ConfigError names
    the class and the field, e.g. "FittedEngineConfig.band_sigma must be between 0.25 and 8, not 1000000.0"."""
    prefix = name or type(config).__name__
    hints = _field_types(type(config))
    for item in dataclasses.fields(config):
        _check(hints[item.name], getattr(config, item.name), f"{prefix}.{item.name}", item.metadata)


def _check(tp: Any, value: Any, where: str, meta: Mapping[str, Any]) -> None:
    optional = _is_optional(tp)
    tp = _strip_optional(tp)
    if value is None:
        if optional:
            return
        raise ConfigError(f"{where} must be set, not null")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, tp):
            raise ConfigError(f"{where} must be a mapping of {tp.__name__} settings, not {_show(value)}")
        check_config(value, name=where)
        return
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        _check_sequence(tp, value, where, meta)
    elif tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {_show(value)}")
    elif tp in (int, float):
        _check_number(tp, value, where, meta.get(RANGE))
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {_show(value)}")
        choices = meta.get(CHOICES)
        if choices is not None and value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, choices))}, not {_show(value)}")
    # dict, Any and other annotations: the consumer checks them


def _check_sequence(tp: Any, value: Any, where: str, meta: Mapping[str, Any]) -> None:
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{where} must be a list, not {_show(value)}")
    args = typing.get_args(tp)
    limits = meta.get(RANGE)
    if typing.get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(f"{where} must hold {len(args)} values, not {len(value)}")
        per_position = limits is not None and isinstance(limits[0], tuple) and len(limits) == len(args)
        for index, (inner, item) in enumerate(zip(args, value, strict=True)):
            own = {RANGE: limits[index]} if per_position else {RANGE: limits}
            _check(inner, item, f"{where}[{index}]", own)
        return
    length = meta.get(LENGTH)
    if length is not None and not length[0] <= len(value) <= length[1]:
        raise ConfigError(f"{where} must hold {length[0]} to {length[1]} values, not {len(value)}")
    inner = args[0] if args else Any
    for index, item in enumerate(value):
        _check(inner, item, f"{where}[{index}]", {RANGE: limits})


def _check_number(tp: type, value: Any, where: str, limits: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (tp is int and isinstance(value, float)):
        kind = "an integer" if tp is int else "a number"
        raise ConfigError(f"{where} must be {kind}, not {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, not {value}")
    if limits is not None:
        low, high = limits
        if not low <= value <= high:
            raise ConfigError(f"{where} must be between {_number(low)} and {_number(high)}, not {_show(value)}")


def _number(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


def _show(value: Any) -> str:
    """A value for an error message, short whatever it is (an int of 5,000 digits cannot even be printed)."""
    return echo(value)


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(tp: Any, value: Any) -> Any:
    """Shape a parsed value (JSON, YAML) to the field's declared type where no information is lost: a mapping
    becomes its nested dataclass, a list a tuple, 32.0 an int, 2 a float. Nothing else is converted (a string
    is never read as a number): check_config then refuses what does not fit, naming the field."""
    if value is None:
        return None
    tp = _strip_optional(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value) if isinstance(value, Mapping) else value
    origin = typing.get_origin(tp)
    if origin in (tuple, list) and isinstance(value, (tuple, list)):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) == len(value):
            converted = [_coerce(inner, v) for inner, v in zip(args, value, strict=True)]
        else:
            inner = args[0] if args else Any
            converted = [_coerce(inner, v) for v in value]
        return tuple(converted) if origin is tuple else converted
    if isinstance(value, bool):
        return value
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is float and isinstance(value, int) and abs(value) <= 2**1023:
        return float(value)
    return value


def _build(cls: type[T], data: Mapping[str, Any], *, strict: bool = True) -> T:
    """The dataclass of a dict, nested dicts included, unchecked; unknown keys are an error when `strict`."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown and strict:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    hints = _field_types(cls)
    return cls(**{name: _coerce(hints[name], data[name]) for name in names if name in data})


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, strict: bool = True) -> T:
    """Build a dataclass from a dict (config.json, YAML) and hold it to its fields' declarations
    (:func:`check_config`): a string for a number or a value out of range is a ConfigError; unknown keys
    are one too when `strict` (typos must not pass)."""
    config = _build(cls, dict(data or {}), strict=strict)
    check_config(config)
    return config


@functools.cache
def _yaml_loader() -> type:
    """A safe YAML loader that reads ``1e-4`` and ``1.0e4`` as the numbers YAML 1.2 (and everyone writing them)
    means; PyYAML follows YAML 1.1, where they are strings, and a string is not accepted for a number."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
    )
    return Loader


def _yaml(text: Any) -> Any:
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader: plain data only


def load_yaml(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        loaded = _yaml(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file must hold a mapping at the top level")
    return loaded


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (values parsed as YAML scalars/lists)."""
    result = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ValueError(f"override {item!r} has an empty key")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = _yaml(raw) if raw.strip() else ""
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def replace(config: T, **changes: Any) -> T:
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]
