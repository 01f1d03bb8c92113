"""CLIP's byte-level BPE alphabet, from transformers (one of the generator/hf*.py modules, the only
ones that import it): every byte has a printable symbol, so any text tokenizes."""
from __future__ import annotations

from transformers.models.clip.tokenization_clip import bytes_to_unicode


def byte_symbols() -> dict[int, str]:
  """byte value 0..255 -> the one-character symbol CLIP's vocabulary uses for it."""
  return dict(bytes_to_unicode())
