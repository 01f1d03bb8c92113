"""A tiny CLIP byte-level BPE vocabulary for the embedded generator's text encoder.

Real SD ships a 49,408-token vocabulary; the embedded model needs only the prompt dictionary's
words. Every byte symbol is in the vocabulary (as in CLIP), so any text still tokenizes: unknown
words fall apart into characters instead of failing. Whole dictionary words get one token each
through a chain of merges, the way CLIP's BPE builds words.
"""
from __future__ import annotations

import json
import os
import re
from typing import Iterable

from jaxsets.generator.hf_bpe import byte_symbols

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# The prompt template's own words and punctuation.
TEMPLATE_WORDS = ("a", "an", "of", "and", ",", ".")


def words_of(texts: Iterable[str]) -> list[str]:
  """Lower-case words and punctuation as CLIP's pre-tokenizer splits them (letters, digits, other)."""
  out = []
  for t in texts:
    out.extend(re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", t.lower()))
  return out


def write_vocab(folder: str, texts: Iterable[str]) -> None:
  """Writes vocab.json and merges.txt to `folder` covering every word in `texts`."""
  byte_symbol = byte_symbols()
  symbols = list(byte_symbol.values())
  vocab: dict[str, int] = {}
  for s in symbols + [s + "</w>" for s in symbols]:
    vocab.setdefault(s, len(vocab))
  merges: list[tuple[str, str]] = []
  for word in sorted(set(words_of(list(texts) + list(TEMPLATE_WORDS)))):
    # The word's bytes, mapped to CLIP's printable byte symbols; the last one ends the word.
    chars = [byte_symbol[b] for b in word.encode("utf-8")]
    parts = chars[:-1] + [chars[-1] + "</w>"]
    while len(parts) > 1:  # left-to-right chain: ((s e) v) e n</w> -> "seven</w>"
      pair = (parts[0], parts[1])
      if pair not in merges:
        merges.append(pair)
      parts = [parts[0] + parts[1]] + parts[2:]
      vocab.setdefault(parts[0], len(vocab))
  vocab.setdefault(BOS, len(vocab))
  vocab.setdefault(EOS, len(vocab))
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "vocab.json"), "w") as f:
    json.dump(vocab, f)
  with open(os.path.join(folder, "merges.txt"), "w") as f:
    f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
