"""CLIP's real tokenizer, offline: vocab.json and merges.txt built from the BPE file that the
open_clip_torch wheel ships (open_clip/bpe_simple_vocab_16e6.txt.gz), as CLIP builds them.

  python benchmarks/clip_bpe.py --out DIR [--pad-token '!']   # writes DIR, prints prompt lengths

The vocabulary, in id order: the 256 byte symbols of CLIP's byte-to-unicode alphabet, the same
with '</w>' (end of word), one token per merge of the file's first 48,894 merge lines (49,152 -
256 - 2), then <|startoftext|> and <|endoftext|>: 49,408 tokens, the vocabulary of every SD text
encoder. The tokenizer configs are the SD repositories': model_max_length 77; SD 1.5 pads with
<|endoftext|> (49407), SD 2.x with "!" (id 0), which its special_tokens_map.json sets.
open_clip is located, never imported (its __init__ imports torch and timm).
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import itertools
import json
import os
import random
import statistics

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
NUM_MERGES = 49152 - 256 - 2
VOCAB_SIZE = 2 * 256 + NUM_MERGES + 2  # 49,408
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Tiny-ImageNet-style names (the first synonym of words.txt, as jaxsets' folder reader takes it):
# the multiword and rare ones, which tokenize longest.
TINY_IMAGENET_LIKE = (
    "Egyptian cat", "German shepherd", "Yorkshire terrier", "golden retriever",
    "Labrador retriever", "standard poodle", "African elephant", "Persian cat", "brown bear",
    "European fire salamander", "American alligator", "boa constrictor", "black widow",
    "American lobster", "spiny lobster", "king penguin", "lesser panda", "Arabian camel",
    "walking stick", "sulphur butterfly", "steel arch bridge", "suspension bridge",
    "beach wagon", "police van", "school bus", "sports car", "freight car", "moving van",
    "potter's wheel", "rocking chair", "water tower", "triumphal arch", "cliff dwelling",
    "coral reef", "water jug", "beer bottle", "pop bottle", "wooden spoon", "frying pan",
    "bell pepper", "mashed potato", "ice cream", "ice lolly", "meat loaf", "Christmas stocking",
    "academic gown", "military uniform", "swimming trunks", "computer keyboard", "dining table",
    "cash machine", "CD player", "comic book", "magnetic compass", "neck brace", "parking meter",
    "punching bag", "remote control", "butcher shop", "rugby ball", "brain coral", "sea slug",
    "sea cucumber", "guinea pig", "jinrikisha", "confectionery", "go-kart", "pay-phone")
DOMAINS = ("photo", "drawing", "painting", "sketch", "collage", "poster", "digital art image",
           "3D rendering")  # configs/cifar10_sd.py
TEMPLATE = "A {domain} of a {c1}, {c2}, and {c3}"


def bpe_path() -> str | None:
  """The BPE file inside the installed open_clip package, or None (open_clip_torch absent)."""
  spec = importlib.util.find_spec("open_clip")
  for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, BPE_FILE)
    if os.path.isfile(path):
      return path
  return None


def _byte_alphabet() -> list[str]:
  from transformers.models.clip.tokenization_clip import bytes_to_unicode
  return list(bytes_to_unicode().values())


def clip_vocab_and_merges(path: str | None = None) -> tuple[dict, list[str]]:
  """({token: id} with 49,408 entries, the 48,894 merge lines "a b") from CLIP's BPE file."""
  path = path or bpe_path()
  if path is None:
    raise SystemExit(f"CLIP's {BPE_FILE} is not installed: pip install --no-deps open_clip_torch "
                     "(only its data file is used; torch and timm are not needed)")
  lines = gzip.open(path).read().decode("utf-8").split("\n")
  merges = lines[1:NUM_MERGES + 1]  # line 0 is the file's version header
  alphabet = _byte_alphabet()
  tokens = alphabet + [s + "</w>" for s in alphabet] + ["".join(m.split()) for m in merges] + [BOS, EOS]
  vocab = {t: i for i, t in enumerate(tokens)}
  assert len(vocab) == VOCAB_SIZE, len(vocab)
  return vocab, merges


def _token(content: str, typed: bool) -> dict:
  out = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
  return {"__type": "AddedToken", **out} if typed else out


def write_tokenizer_configs(folder: str, *, pad_token: str, name_or_path: str) -> None:
  """special_tokens_map.json and tokenizer_config.json as the SD repositories ship them."""
  os.makedirs(folder, exist_ok=True)
  special = {"bos_token": _token(BOS, False), "eos_token": _token(EOS, False), "pad_token": pad_token,
             "unk_token": _token(EOS, False)}
  config = {"add_prefix_space": False, "bos_token": _token(BOS, True), "do_lower_case": True,
            "eos_token": _token(EOS, True), "errors": "replace", "model_max_length": 77,
            "name_or_path": name_or_path, "pad_token": "<|endoftext|>",
            "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
            "unk_token": _token(EOS, True)}
  for name, obj in (("special_tokens_map.json", special), ("tokenizer_config.json", config)):
    with open(os.path.join(folder, name), "w") as f:
      json.dump(obj, f, indent=2)


def write_clip_tokenizer(folder: str, *, pad_token: str = "!",
                         name_or_path: str = "stabilityai/stable-diffusion-2-1-base") -> None:
  """CLIP's tokenizer in transformers' CLIPTokenizer layout (vocab.json, merges.txt, configs)."""
  vocab, merges = clip_vocab_and_merges()
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False)
  with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
  write_tokenizer_configs(folder, pad_token=pad_token, name_or_path=name_or_path)


def prompt_lengths(tokenizer, class_names, domains=DOMAINS, template=TEMPLATE,
                   limit: int = 20000) -> dict:
  """Token counts (BOS and EOS included) of the prompts a user's agent can form: every
  (domain, c1, c2, c3), or a seeded sample of `limit` of them, plus the worst case (the longest domain and the
  three longest names), against the text encoder's 77."""
  def length(domain, c1, c2, c3):
    return len(tokenizer(template.format(domain=domain, c1=c1, c2=c2, c3=c3))["input_ids"])
  by_name = sorted(class_names, key=lambda n: len(tokenizer(n)["input_ids"]), reverse=True)
  longest_domain = max(domains, key=lambda d: len(tokenizer(d)["input_ids"]))
  worst = (longest_domain, *by_name[:3])
  actions = list(itertools.product(domains, class_names, class_names, class_names))
  if len(actions) > limit:  # a seeded uniform sample, so the median is the typical prompt's
    actions = random.Random(0).sample(actions, limit)
  lengths = [length(*a) for a in actions]
  return {"prompts_counted": len(lengths), "min": min(lengths), "median": statistics.median(lengths),
          "max_counted": max(lengths), "worst_case": length(*worst),
          "worst_case_prompt": template.format(domain=worst[0], c1=worst[1], c2=worst[2], c3=worst[3]),
          "limit": int(tokenizer.model_max_length)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--pad-token", default="!", help="'!' as SD 2.x, '<|endoftext|>' as SD 1.5")
  args = parser.parse_args(argv)
  write_clip_tokenizer(args.out, pad_token=args.pad_token)
  from transformers import CLIPTokenizer
  tok = CLIPTokenizer.from_pretrained(args.out)
  print(json.dumps({"vocab_size": len(tok), "A photo of a cat": tok("A photo of a cat")["input_ids"],
                    "pad_token_id": tok.pad_token_id,
                    "cifar10": prompt_lengths(tok, CIFAR10),
                    "tiny_imagenet_like": prompt_lengths(tok, TINY_IMAGENET_LIKE, limit=4000)}, indent=1))


if __name__ == "__main__":
  main()
