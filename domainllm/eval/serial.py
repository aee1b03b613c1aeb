"""Dataclasses to and from plain JSON data, by their type hints: one mechanism for every typed record.

The comparison's results and each arm's predictions are written as JSON and read back (``compare
--resume``, ``domainllm report``). Rather than a hand-written ``to_dict``/``from_dict`` pair per class
(which drift apart), every record is a dataclass and this module walks its type hints: nested
dataclasses, ``X | None``, ``list[X]``, ``tuple[X, ...]`` and ``dict[str, X]``. Keys a newer version
wrote that this version does not know are ignored, and missing keys take the field's default, so an
older ``results.json`` still renders.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, TypeVar, Union

__all__ = ["from_data", "to_data"]

T = TypeVar("T")


def to_data(obj: Any) -> Any:
    """Plain JSON-ready data from a dataclass tree (nan/inf become None: strict JSON has no NaN)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return to_data(obj.item())
    return obj


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value)
        for arg in args:  # the first member the value fits (e.g. float | str)
            if isinstance(arg, type) and isinstance(value, arg):
                return value
        return value
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v) for v in value]
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_convert(item, v) for v in value)
    if origin is dict:
        _, item = typing.get_args(tp) or (str, Any)
        return {k: _convert(item, v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def from_data(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build ``cls`` from plain data written by :func:`to_data` (unknown keys ignored, missing ones defaulted)."""
    data = data or {}
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)
