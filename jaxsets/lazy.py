"""Package attributes imported on first use (PEP 562).

A package whose __init__ imported every module would make importing its lightest module (a
config) import the heaviest (diffusers, distrax and through it TensorFlow Probability): a typo
in a config would then take ten seconds to be refused.
"""
from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, tuple[str, str]], hint: str = ""):
  """(__getattr__, __dir__) for `package`, whose public names map to (module, attribute).

  A name that is also a submodule's (jaxsets.agent.reward the module, `reward` the function)
  must be bound eagerly instead: importing the submodule sets the package's attribute to it.
  """
  def __getattr__(name: str):
    if name not in exports:
      raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}")
    module, attribute = exports[name]
    value = getattr(importlib.import_module(module), attribute)
    setattr(sys.modules[package], name, value)
    return value

  def __dir__():
    return sorted(set(vars(sys.modules[package])) | set(exports))

  return __getattr__, __dir__
