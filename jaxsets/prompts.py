"""The prompt dictionary: actions (domain, c1, c2, c3) to prompt text and to CLIP ids inside jit.

Tokenizing every prompt would take |D|·n³ rows (8 million for 200 classes). Instead each piece
of the template and each dictionary word is tokenized once, on the host, and a prompt's ids are
assembled inside `jit` by placing those pieces one after another. CLIP splits text into words
before BPE, so the assembled ids equal the tokenizer's own output (a test checks every digits
prompt).
"""
from __future__ import annotations

import dataclasses
import re
import string
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import config_types
from jaxsets.errors import UserError

SLOTS = ("domain", "c1", "c2", "c3")


def _pieces(template: str) -> list[str]:
  """Literal text and slot names, in order: "A {domain} of a {c1}" -> ["A ", "domain", " of a ", "c1"]."""
  how = (f"prompts.template {template!r} must use each of {{domain}}, {{c1}}, {{c2}}, {{c3}} "
         "exactly once, plainly, with no other braces")
  try:
    fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)
              if f is not None]
  except ValueError as e:  # "A {domain of a ...": an unclosed or stray brace
    raise UserError(f"{how} ({e}).") from None
  names = [f for f, _, _ in fields]
  if sorted(names) != sorted(SLOTS) or any(spec or conv for _, spec, conv in fields):
    raise UserError(f"{how} (found {['{' + f + '}' for f in names]}).")
  pieces = [p for p in re.split(r"\{(domain|c1|c2|c3)\}", template) if p != ""]
  if any("{" in p or "}" in p for p in pieces if p not in SLOTS):
    # "{{" formats as "{" in text() but would be tokenized as "{{" here: the two would differ.
    raise UserError(f"{how} (found a literal brace).")
  return pieces


def check_prompt_text(template: str, domains: Sequence[str], class_names: Sequence[str]) -> None:
  """Refuses a template or dictionary that cannot write the prompts: the template must hold the
  four slots, and each word must be non-empty and named once. Needs no tokenizer."""
  _pieces(template)
  if not domains:
    raise UserError("prompts.domains is empty: give at least one domain, e.g. ('photo',).")
  for label, words in (("prompts.domains", domains), ("the class names", class_names)):
    if any(not str(w).strip() for w in words):
      raise UserError(f"{label} {tuple(words)!r} hold an empty name: remove it or name it.")
    twice = sorted({w for w in words if list(words).count(w) > 1})
    if twice:
      raise UserError(f"{label} name {twice!r} more than once: name each once, or its prompts "
                      "could not be told apart.")


@dataclasses.dataclass(frozen=True)
class PromptsConfig:
  """`config.prompts`, checked at the boundary, before any data loads or pretraining starts."""
  template: str                      # "A {domain} of a {c1}, {c2}, and {c3}"
  domains: tuple[str, ...]
  class_names: tuple[str, ...] = ()  # () = the dataset's own names, in label order

  @classmethod
  def from_config(cls, section) -> "PromptsConfig":
    prompts = cls(**config_types.read_section(cls, section, "prompts."))
    check_prompt_text(prompts.template, prompts.domains, prompts.class_names)
    return prompts


@dataclasses.dataclass(frozen=True, eq=False)
class PromptBook:
  """Token tables for assembling prompt ids. Shapes: words int32 [W, Lw], lengths int32 [W]."""
  template: str
  domains: tuple[str, ...]
  class_names: tuple[str, ...]
  pieces: tuple[str, ...]          # template pieces; slot names stand for the chosen words
  piece_ids: tuple[np.ndarray, ...]
  domain_ids: np.ndarray           # int32 [D, Lw] padded with 0
  domain_len: np.ndarray           # int32 [D]
  class_ids: np.ndarray            # int32 [n, Lw]
  class_len: np.ndarray            # int32 [n]
  bos: int
  eos: int
  pad: int
  length: int

  @property
  def num_domains(self) -> int:
    return len(self.domains)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def text(self, action: Sequence[int]) -> str:
    d, a, b, c = (int(x) for x in action)
    n = self.class_names
    return self.template.format(domain=self.domains[d], c1=n[a], c2=n[b], c3=n[c])

  def ids(self, actions: jax.Array) -> jax.Array:
    """actions int32 [..., 4] -> CLIP ids int32 [..., L] (jittable, vmappable)."""
    flat = actions.reshape(-1, 4)
    return jax.vmap(self._ids_one)(flat).reshape(actions.shape[:-1] + (self.length,))

  def _ids_one(self, action: jax.Array) -> jax.Array:
    L = self.length
    out = jnp.full((L,), self.pad, jnp.int32).at[0].set(self.bos)
    pos = jnp.int32(1)
    for piece, literal in zip(self.pieces, self.piece_ids):
      if piece == "domain":
        tokens, n = jnp.asarray(self.domain_ids)[action[0]], jnp.asarray(self.domain_len)[action[0]]
      elif piece in ("c1", "c2", "c3"):
        slot = SLOTS.index(piece)
        tokens, n = jnp.asarray(self.class_ids)[action[slot]], jnp.asarray(self.class_len)[action[slot]]
      else:
        tokens, n = jnp.asarray(literal), jnp.int32(len(literal))
      idx = pos + jnp.arange(tokens.shape[0])
      # Position L-1 is kept for EOS (CLIP truncates to L-1 tokens + EOS); index L is dropped.
      idx = jnp.where((jnp.arange(tokens.shape[0]) < n) & (idx < L - 1), idx, L)
      out = out.at[idx].set(tokens, mode="drop")
      pos = pos + n
    return out.at[jnp.minimum(pos, L - 1)].set(self.eos)


def _word_table(tokenizer, words: Sequence[str]):
  rows = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
  width = max(1, max(len(r) for r in rows))
  table = np.zeros((len(rows), width), np.int32)
  for i, r in enumerate(rows):
    table[i, :len(r)] = r
  return table, np.asarray([len(r) for r in rows], np.int32)


def make_prompt_book(tokenizer, template: str, domains: Sequence[str],
                     class_names: Sequence[str], length: int | None = None) -> PromptBook:
  if len(class_names) < 2:
    raise UserError(f"the dataset has {len(class_names)} class(es); a classifier needs at least 2.")
  check_prompt_text(template, domains, class_names)
  pieces = _pieces(template)
  piece_ids = tuple(np.asarray(tokenizer(p, add_special_tokens=False)["input_ids"], np.int32)
                    if p not in SLOTS else np.zeros((0,), np.int32) for p in pieces)
  d_ids, d_len = _word_table(tokenizer, domains)
  c_ids, c_len = _word_table(tokenizer, class_names)
  pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
  return PromptBook(template, tuple(domains), tuple(class_names), tuple(pieces), piece_ids,
                    d_ids, d_len, c_ids, c_len, int(tokenizer.bos_token_id),
                    int(tokenizer.eos_token_id), int(pad), int(length or tokenizer.model_max_length))
