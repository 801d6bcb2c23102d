"""Checks of user-given values (TOML files, configurations, command lines) against the fields
they fill: unknown keys with the nearest known name, and values against their type annotations,
each refused in one line that names the value and shows how to write it."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import types
from collections.abc import Iterable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


def closest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the choice nearest ``word``, or nothing."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def unknown_keys(keys: Iterable[str], known: Iterable[str], where: str, what: str = "keys") -> None:
    """Raise a ValueError naming the keys not in ``known``, the known ones and the nearest spelling."""
    known = list(known)
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ValueError(
            f"{where}unknown {what} {unknown}{closest(unknown[0], known)} (known: {', '.join(known)}); "
            "fix the spelling or remove them"
        )


def toml_literal(value: Any) -> str:
    """``value`` as TOML writes it (error messages show how to write a field)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return repr(value)


_KINDS: dict[Any, tuple[str, str, Any]] = {
    bool: ("true or false", "true or false", True),
    int: ("an integer", "a whole number", 1),
    float: ("a number", "a number", 0.001),
    str: ("a string", "a quoted string", "..."),
    dict: ("a table", "a table of NAME = VALUE pairs", {}),
}


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union annotation (``int | None``), or the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for member in get_args(annotation) for a in _members(member)]
    return [annotation]


def accepts(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (as read from TOML or JSON) fits a field annotation: bool, int, float (an
    int is accepted; inf and nan are not), str, dict, Literal, tuple/list of one type, Any, optional."""
    for member in _members(annotation):
        origin = get_origin(member)
        if member is Any or (member is type(None) and value is None):
            return True
        if member is bool and isinstance(value, bool):
            return True
        if member is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if member is float and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return True
        if member is str and isinstance(value, str):
            return True
        if (member is dict or origin is dict) and isinstance(value, dict):
            return True
        if origin is Literal and value in get_args(member):
            return True
        if origin in (tuple, list) and isinstance(value, list | tuple):
            item = get_args(member)[0] if get_args(member) else Any
            if all(accepts(v, item) for v in value):
                return True
    return False


def type_error(name: str, value: Any, annotation: Any, example: Any = None) -> str | None:
    """None when ``value`` fits ``annotation``, else ``name = value is not <kind>; write <how>, e.g.
    name = <example>`` (the example: ``example`` when it fits, else one of the kind's)."""
    if accepts(value, annotation):
        return None
    members = [m for m in _members(annotation) if m is not type(None)]
    first = members[0] if members else Any
    origin = get_origin(first)
    if origin is Literal:
        choices = get_args(first)
        kind = "one of " + ", ".join(map(toml_literal, choices))
        how, fallback = "one of them", choices[0]
    elif origin in (tuple, list):
        item = get_args(first)[0] if get_args(first) else Any
        kind, how, _ = _KINDS.get(item, ("a value", "a value", 1))
        kind, how, fallback = f"a list of {kind.removeprefix('an ').removeprefix('a ')}s", "a list", [1, 28, 28]
    else:
        kind, how, fallback = _KINDS.get(origin or first, ("a value of another type", "a value", None))
    if isinstance(value, float) and not math.isfinite(value) and first is float:
        kind = "a finite number"
    shown = example if example is not None and accepts(example, annotation) else fallback
    return f"{name} = {value!r} is not {kind}; write {how}, e.g. {name} = {toml_literal(shown)}"


@functools.cache
def _annotations(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dataclass's resolved field annotations and its fields' defaults (examples for messages)."""
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return get_type_hints(cls), defaults


def check_field_types(data: dict[str, Any], cls: type, where: str = "", examples: dict[str, Any] | None = None) -> None:
    """Raise a ValueError (prefixed by ``where``) for the first value of ``data`` that does not fit
    the annotation of the dataclass ``cls``'s field of that name; the example offered is
    ``examples[name]``, else the field's default. Keys that are not fields are left to the caller."""
    hints, defaults = _annotations(cls)
    for name, value in data.items():
        if name in hints:
            example = (examples or {}).get(name, defaults.get(name))
            problem = type_error(name, value, hints[name], example)
            if problem:
                raise ValueError(f"{where}{problem}")
