"""What every comparison shares: the run config, how many repeats, and the generator weights
(built or converted once per run, in a scratch folder)."""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any


@dataclasses.dataclass
class Context:
  config: Any                    # configs/digits.py with the command line's overrides
  quick: bool
  scratch: str                   # converted weights etc. (reused between runs)
  random_weights: bool = False   # force random generator weights even if the embedded one is cached
  tiny: bool = False             # tiny models and one repeat: every code path in minutes (CI)
  shared: dict = dataclasses.field(default_factory=dict)  # figures one comparison leaves for another

  @property
  def repeats(self) -> int:
    return 1 if self.tiny else 3 if self.quick else 7

  @functools.cached_property
  def sd_folder(self) -> tuple[str, str]:
    """(Flax diffusers folder, what weights it holds)."""
    from sd_weights import embedded_or_random_folder
    return embedded_or_random_folder(self.config, self.scratch, random_weights=self.random_weights)

  @functools.cached_property
  def torch_sd_folder(self) -> str:
    from sd_weights import torch_pipeline_folder
    folder, kind = self.sd_folder
    tag = "embedded" if kind.startswith("embedded") else "random"
    return torch_pipeline_folder(folder, os.path.join(self.scratch, f"torch_sd_{tag}_{_digest(folder)}"))

  def generator_config(self):
    """The config with generator.model pointing at the folder every side loads."""
    config = self.config.copy_and_resolve_references()
    config.generator.model = self.sd_folder[0]
    return config


def _digest(folder: str) -> str:
  """Changes when the Flax weights change, so a stale PyTorch conversion is never reused."""
  import hashlib
  h = hashlib.sha256()
  for kind in ("text_encoder", "unet", "vae"):
    sub = os.path.join(folder, kind)
    for name in sorted(os.listdir(sub)):
      st = os.stat(os.path.join(sub, name))
      h.update(f"{kind}/{name}:{st.st_size}:{st.st_mtime_ns}".encode())
  return h.hexdigest()[:10]
