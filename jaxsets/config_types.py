"""Typed config sections: a ConfigDict section read into a frozen dataclass, each value checked
against the kind its field declares (int, float, bool, str, tuple[...], a nested section).

A config file may hold any Python value and a plain conversion would hide a mistake
(bool("False") is True, int(2.7) is 2), so a value of the wrong kind is refused here, once, at
the boundary; past it every section is a typed dataclass and nothing reads the ConfigDict.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import typing
from typing import Any

from jaxsets.errors import UserError

MISSING = object()  # a key the section does not hold


class BadValues(UserError):
  """Values of the wrong kind; the message names each key and how to fix it."""


def lookup(section: Any, dotted: str):
  """section[a][b] for "a.b", or MISSING where a part is absent."""
  node = section
  for part in dotted.split("."):
    if not hasattr(node, "keys") or part not in node:
      return MISSING
    node = node[part]
  return node


def _kind_problem(key: str, value, kind) -> tuple[Any, str | None]:
  """-> (the value in its declared kind, None) or (None, what is wrong with it)."""
  if kind is bool:
    return (value, None) if isinstance(value, bool) else (None, f"{key}={value!r} must be True or False")
  if kind is int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      return None, f"{key}={value!r} must be a whole number"
    return int(value), None
  if kind is float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
      return None, f"{key}={value!r} must be a number"
    if not math.isfinite(value):
      return None, f"{key}={value!r} must be finite (a NaN or infinite setting makes NaN rewards)"
    return float(value), None
  if kind is str:
    return (value, None) if isinstance(value, str) else (None, f"{key}={value!r} must be a string")
  if typing.get_origin(kind) is tuple:
    (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
    if not isinstance(value, (tuple, list)):
      return None, (f"{key}={value!r} must be a tuple of {item.__name__}, e.g. "
                    f"{(_EXAMPLES[item],)!r} or ()")
    items = [_kind_problem(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    problems = [p for _, p in items if p]
    return (None, "; ".join(problems)) if problems else (tuple(v for v, _ in items), None)
  raise TypeError(f"config field {key} declares {kind!r}, which config_types cannot check")


_EXAMPLES = {int: 64, str: "domain", float: 0.5, bool: True}


@functools.cache
def _field_kinds(cls) -> dict[str, Any]:
  return typing.get_type_hints(cls)


def read_fields(cls, section: Any, prefix: str, names=None, *, problems: list[str],
                required: bool = False) -> dict[str, Any]:
  """The fields `names` (default: every field) of dataclass `cls` from `section`, each checked
  against its declared kind; a wrong one is appended to `problems` (its key as prefix + name).
  A key the section lacks keeps the field's default (absent from the result), or is reported
  when the field has none or `required` is set (a config file that is the single source of its
  defaults). A nested dataclass field is read from the sub-section of its name."""
  kinds = _field_kinds(cls)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  values = {}
  for name in names or fields:
    key, value = prefix + name, lookup(section, name)
    if value is MISSING:
      f = fields[name]
      if required or (f.default is dataclasses.MISSING
                      and f.default_factory is dataclasses.MISSING):
        problems.append(f"{key} is missing")
      continue
    if dataclasses.is_dataclass(kinds[name]):
      before = len(problems)
      nested = read_fields(kinds[name], value, key + ".", problems=problems, required=required)
      if len(problems) == before:
        values[name] = kinds[name](**nested)
      continue
    value, problem = _kind_problem(key, value, kinds[name])
    if problem:
      problems.append(problem)
    else:
      values[name] = value
  return values


def read_value(key: str, value, kind):
  """One value checked against `kind` (int, float, bool, str, tuple[...]), or BadValues."""
  value, problem = _kind_problem(key, value, kind)
  refuse([problem] if problem else [])
  return value


def refuse(problems: list[str]) -> None:
  """Raises BadValues for the collected problems (nothing when there are none)."""
  if problems:
    raise BadValues("bad config values: " + "; ".join(problems) + ". Fix them in the config "
                    "file or with --config.KEY=VALUE.")


def read_section(cls, section: Any, prefix: str, names=None, *,
                 required: bool = False) -> dict[str, Any]:
  """read_fields, or BadValues naming every wrong value."""
  problems = []
  values = read_fields(cls, section, prefix, names, problems=problems, required=required)
  refuse(problems)
  return values
