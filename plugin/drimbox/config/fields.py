"""Small helpers to read one JSON section into a frozen dataclass with clear errors."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from drimbox.util.setting import SettingsError, setting

__all__ = ["SettingsError", "camel", "coerce", "read_section", "setting"]


def read_section(cls: type, raw: dict[str, Any] | None, path: str):
    """Build dataclass ``cls`` from ``raw`` (JSON keys are the field names in CamelCase).

    Unknown keys are refused so that a typo never silently falls back to a default.
    """
    raw = dict(raw or {})
    hints = typing.get_type_hints(cls)
    kwargs = {}
    known = {}
    for field in dataclasses.fields(cls):
        key = field.metadata.get("key") or camel(field.name)
        known[key] = field
        if key not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise SettingsError(f"{path}.{key} is required")
            continue
        kwargs[field.name] = coerce(raw.pop(key), hints[field.name], f"{path}.{key}", field)
    if raw:
        unknown = ", ".join(sorted(raw))
        raise SettingsError(f"{path}: unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate:
        validate(path)
    return obj


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def coerce(value: Any, hint: Any, path: str, field: dataclasses.Field):
    nested = field.metadata.get("section")
    if nested is not None:
        if not isinstance(value, dict):
            raise SettingsError(f"{path} must be an object")
        return read_section(nested, value, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{path} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{path} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{path} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(f"{path} must be a string, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise SettingsError(f"{path} must be a list")
        item = args[0] if args else Any
        if item is Any:
            return tuple(value)
        return tuple(coerce(v, item, f"{path}[{i}]", dataclasses.field()) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{path} must be an object")
        return dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return read_section(hint, value, path)
    return value
