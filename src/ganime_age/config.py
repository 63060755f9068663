"""One config mechanism for models, trainer, CLI and Space: plain dataclasses.

Dataclasses nest, convert to and from dicts (config.json, YAML) and take dotted command-line
overrides such as ``train.batch_size=32`` or ``model.image_size=256``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON/YAML-ready dict of a (possibly nested) dataclass."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return dataclasses.asdict(config)  # type: ignore[arg-type]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(tp: Any, value: Any) -> Any:
    """Convert a parsed value (from JSON, YAML or a CLI string) to the field's declared type."""
    if value is None:
        return None
    tp = _strip_optional(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = typing.get_args(tp)
        items = list(value) if not isinstance(value, str) else _parse_list(value)
        inner = args[0] if args else Any
        converted = [_coerce(inner, v) for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or origin is Mapping:
        return dict(value)
    if tp is bool and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if tp in (int, float, str) and not isinstance(value, tp):
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"not an integer: {value!r}")
        return tp(value)
    return value


def check_ranges(config: Any, **ranges: tuple[float, float]) -> None:
    """For a config's ``validate()`` hook: each named field must lie in its inclusive (low, high) range."""
    from ganime_age.errors import ConfigError

    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{type(config).__name__}.{name} must be between {low:g} and {high:g}, not {value!r}")


def _parse_list(text: str) -> list[str]:
    body = text.strip().strip("[]()")
    return [part.strip() for part in body.split(",") if part.strip()]


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, strict: bool = True) -> T:
    """Build a dataclass from a dict; unknown keys are an error when `strict` (typos must not pass)."""
    data = dict(data or {})
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown and strict:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(hints[name], data[name]) for name in names if name in data}
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file must hold a mapping at the top level")
    return loaded


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (values parsed as YAML scalars/lists)."""
    import yaml

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
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def replace(config: T, **changes: Any) -> T:
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]
