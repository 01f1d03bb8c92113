"""Prompts to fixed-length token ids, on the host, once. Inside `jit` only int32 arrays move."""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

log = logging.getLogger("jaxsets")


def tokenize(tokenizer, prompts: Sequence[str], max_length: int | None = None) -> np.ndarray:
  """int32 [N, L]: CLIP ids padded to L = max_length (default: the tokenizer's limit).

  Prompts longer than L are truncated, with a warning naming them (CLIP cannot read past L).
  """
  length = max_length or tokenizer.model_max_length
  full = tokenizer(list(prompts), padding=False, truncation=False)["input_ids"]
  too_long = [p for p, ids in zip(prompts, full) if len(ids) > length]
  if too_long:
    log.warning("%d prompt(s) longer than the text encoder's %d tokens were truncated, e.g. %r",
                len(too_long), length, too_long[0])
  ids = tokenizer(list(prompts), padding="max_length", max_length=length, truncation=True,
                  return_tensors="np")["input_ids"]
  return ids.astype(np.int32)
