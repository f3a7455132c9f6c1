"""Typed config sections: dataclasses whose fields carry their checks (choices, ranges).

A section is a frozen dataclass with no defaults in code: every value comes from the YAML files
(`configs/`), so each default lives once. `build(cls, mapping, origin)` turns a composed mapping into
the dataclass, and any problem (unknown key with the nearest known one as a hint, missing key, wrong
type, a value that is not finite or is outside its choices or range) is one UserError naming where the value came from.
"""
import dataclasses
import difflib
import math
import types
import typing

from .errors import UserError


def spec(*, choices=None, min=None, max=None, above=None, default=dataclasses.MISSING):
    """A dataclass field with checks: `choices` (allowed values), `min`/`max` (inclusive bounds),
    `above` (exclusive lower bound); `default` only for optional dataset facts."""
    return dataclasses.field(default=default, metadata={"choices": choices, "min": min, "max": max, "above": above})


def _describe(tp):
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return str(tp)


def _convert(tp, value, key, origin, where):
    """Check `value` against the type `tp`; returns the value to store."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _convert(inner, value, key, origin, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where}: {key} takes {_describe(tp)}, not {value!r}")
        return build(tp, value, origin, key)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):    # nan passes every range check; inf is no setting either
            raise UserError(f"{where}: {key} takes a finite number, not {value!r}")
    elif tp is str:
        ok = isinstance(value, str)
    elif typing.get_origin(tp) in (list, tuple):
        ok = isinstance(value, (list, tuple))
        if ok:
            (inner,) = typing.get_args(tp)[:1]
            value = tuple(_convert(inner, v, f"{key}[{i}]", origin, where) for i, v in enumerate(value))
    elif typing.get_origin(tp) is dict or tp is dict:
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise UserError(f"{where}: {key} takes {_describe(tp)}, not {value!r}")
    return value


def _check_range(meta, value, key, where):
    if value is None:
        return
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise UserError(f"{where}: {key}={value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if meta.get("min") is not None and value < meta["min"]:
        raise UserError(f"{where}: {key}={value!r} is below its minimum {meta['min']}")
    if meta.get("max") is not None and value > meta["max"]:
        raise UserError(f"{where}: {key}={value!r} is above its maximum {meta['max']}")
    if meta.get("above") is not None and value <= meta["above"]:
        raise UserError(f"{where}: {key}={value!r} must be greater than {meta['above']}")


def build(cls, mapping, origin=None, prefix=""):
    """The dataclass `cls` from a mapping. origin(dotted key) names the file or option that set the
    key (for error messages); prefix is the section's dotted path."""
    origin = origin or (lambda key: "config")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}

    def dotted(k):
        return f"{prefix}.{k}" if prefix else k

    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {dotted(close[0])}?)" if close else \
                f" (known keys: {', '.join(sorted(known))})"
            raise UserError(f"{origin(dotted(key))}: unknown key {dotted(key)}{hint}")
    values = {}
    for name, f in known.items():
        key = dotted(name)
        if name not in mapping:
            if f.default is not dataclasses.MISSING:
                values[name] = f.default
                continue
            raise UserError(f"{origin(prefix) if prefix else 'config'}: missing key {key}")
        value = _convert(hints[name], mapping[name], key, origin, origin(key))
        _check_range(f.metadata, value, key, origin(key))
        values[name] = value
    return cls(**values)


def to_dict(section):
    """A plain, YAML/JSON-friendly mapping of a section (tuples become lists)."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(section))
