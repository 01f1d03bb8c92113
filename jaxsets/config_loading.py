"""Loads an ml_collections config file and applies `--config.a.b=value` overrides.

This is the boundary between user text and the library: everything past it sees a locked
ConfigDict (unknown keys are refused) and, inside jitted code, small frozen dataclasses.
"""
from __future__ import annotations

import ast
import difflib
import importlib.util
import os
from typing import Sequence

import ml_collections


class ConfigError(ValueError):
  """A config file or an override that cannot be used; the message says what to do."""


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` by calling its `get_config(arg)`."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    here = os.path.dirname(path) or "."
    hint = ""
    if os.path.isdir(here):
      close = difflib.get_close_matches(os.path.basename(path), os.listdir(here), n=3)
      if close:
        hint = f" Did you mean: {', '.join(os.path.join(here, c) for c in close)}?"
    raise ConfigError(f"config file {path!r} does not exist.{hint} "
                      "Pass --config path/to/config.py (for example configs/digits.py).")
  module_spec = importlib.util.spec_from_file_location("jaxsets_user_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # A user's file: report any failure as a config error.
    raise ConfigError(f"config file {path!r} failed to load: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} has no get_config() function.")
  try:
    config = module.get_config(arg) if arg else module.get_config()
  except Exception as e:  # e.g. ml_collections refusing a str where the field holds an int
    raise ConfigError(f"get_config({arg!r}) in {path!r} failed: {type(e).__name__}: {e}") from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() in {path!r} must return an ml_collections.ConfigDict.")
  config.lock()
  return config


def _parse_value(text: str):
  """`3` -> 3, `0.5` -> 0.5, `True` -> True, `(1,2)` -> (1, 2); anything else stays a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _all_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  keys = []
  for key, value in config.items():
    keys.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      keys.extend(_all_keys(value, prefix + key + "."))
  return keys


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> list[str]:
  """Applies `--config.a.b=value` (or `--config.a.b value`) overrides; returns leftover args."""
  leftover = []
  args = list(overrides)
  i = 0
  while i < len(args):
    arg = args[i]
    if not arg.startswith("--config."):
      leftover.append(arg)
      i += 1
      continue
    dotted, has_value, text = arg[len("--config."):].partition("=")
    if not has_value:
      if i + 1 >= len(args):
        raise ConfigError(f"override {arg} has no value: write {arg}=VALUE.")
      text = args[i + 1]
      i += 1
    set_by_path(config, dotted, _parse_value(text))
    i += 1
  return leftover


def set_by_path(config: ml_collections.ConfigDict, dotted: str, value) -> None:
  """Sets config.a.b = value, with a clear error for unknown keys and wrong types."""
  *parents, leaf = dotted.split(".")
  node = config
  for depth, part in enumerate(parents + [leaf]):
    known = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
    if part not in known:
      close = difflib.get_close_matches(dotted, _all_keys(config), n=3)
      hint = f" Did you mean: {', '.join('config.' + c for c in close)}?" if close else ""
      raise ConfigError(f"unknown config key 'config.{dotted}'.{hint}")
    if depth < len(parents):
      node = node[part]
  old = node[leaf]
  if isinstance(old, ml_collections.ConfigDict):
    raise ConfigError(f"config.{dotted} is a section; set one of its keys instead.")
  if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(old, tuple) and isinstance(value, (list, str)):
    value = tuple(value) if isinstance(value, list) else tuple(
        v.strip() for v in value.split(",") if v.strip())
  if isinstance(old, str) and not isinstance(value, str):
    value = str(value)
  if isinstance(value, bool) != isinstance(old, bool) and isinstance(old, (int, float)):
    # bool is an int to Python and to ml_collections: "--config.seed=True" would set seed to True.
    raise ConfigError(f"config.{dotted}={value!r}: expected {type(old).__name__} "
                      f"(current value {old!r}).")
  if value is None and old is not None:
    # ml_collections lets None replace a value of any kind; "--config.seed=None" would then
    # fail much later, far from the override.
    raise ConfigError(f"config.{dotted}=None: expected {type(old).__name__} "
                      f"(current value {old!r}).")
  try:
    node[leaf] = value
  except (TypeError, ValueError) as e:
    raise ConfigError(f"config.{dotted}={value!r}: expected {type(old).__name__} "
                      f"(current value {old!r}).") from e
