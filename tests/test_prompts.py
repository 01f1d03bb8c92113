"""Prompt ids assembled inside jit equal the tokenizer's own ids."""
import itertools

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxsets.errors import UserError
from jaxsets.generator import hf
from jaxsets.generator.embedded import vocab
from jaxsets.generator.tokens import tokenize
from jaxsets.prompts import make_prompt_book

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DOMAINS = ("photo", "drawing", "sketch", "painting", "digital art image")
TEMPLATE = "A {domain} of a {c1}, {c2}, and {c3}"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("tok"))
  vocab.write_vocab(folder, list(NAMES) + ["photo drawing sketch painting", TEMPLATE])
  return hf.make_tokenizer(folder, 16)


def test_every_digits_prompt_matches_the_tokenizer(tokenizer):
  book = make_prompt_book(tokenizer, TEMPLATE, DOMAINS, NAMES)
  actions = np.asarray(list(itertools.product(range(5), range(10), range(10), range(10))), np.int32)
  ours = np.asarray(jax.jit(book.ids)(jnp.asarray(actions)))
  theirs = tokenize(tokenizer, [book.text(a) for a in actions], 16)
  np.testing.assert_array_equal(ours, theirs)   # includes "digital art image" (unknown words)


def test_too_long_prompts_are_truncated_like_clip(tokenizer):
  book = make_prompt_book(tokenizer, TEMPLATE, ("photo",), ("zebra crossing sign", "one"), 8)
  action = np.asarray([[0, 0, 0, 1]], np.int32)
  ours = np.asarray(book.ids(jnp.asarray(action)))
  theirs = tokenize(tokenizer, [book.text(action[0])], 8)
  np.testing.assert_array_equal(ours, theirs)


def test_bad_dictionaries_are_refused(tokenizer):
  with pytest.raises(UserError, match="domains is empty"):
    make_prompt_book(tokenizer, TEMPLATE, (), NAMES)
  with pytest.raises(UserError, match="at least 2"):
    make_prompt_book(tokenizer, TEMPLATE, DOMAINS, ("one",))
  with pytest.raises(UserError, match="exactly once"):
    make_prompt_book(tokenizer, "A {domain} of a {c1}", DOMAINS, NAMES)
