"""3. classifier_finetune: one fine-tune (the RL loop's inner step) on the loop's real training
images + a full 400-image support set, jaxsets vs the same model and recipe in PyTorch.

Both sides: the digits SmallCNN, classifier.finetune_steps steps of batch classifier.batch_size,
AdamW + warm-up/cosine, clipping, label smoothing, random crop; starting from the same (baseline)
weights each time, as the loop does. The support images are real digits (repeated): speed does
not depend on what the pixels show.
"""
from __future__ import annotations

import numpy as np

from common import entry, measure_sides, missing_peers, no_sync, skipped_peer


def load_data(config):
  from jaxsets import data
  return data.load_dataset(config.data, int(config.seed))


def support_set(splits, rows: int):
  idx = np.arange(rows) % len(splits.train)
  return splits.train.images[idx], splits.train.labels[idx]


def run(ctx) -> list[dict]:
  import jax
  import jax.numpy as jnp

  from jaxsets import sharding
  from jaxsets.classifier import ClassifierConfig, SupportBatch, finetune
  from jaxsets.classifier.state import init_state
  from jaxsets.data.device import put_on_devices

  config = ctx.config
  cfg = ClassifierConfig.from_config(config.classifier)
  splits = load_data(config)
  budget = int(config.loop.budget)
  s_images, s_labels = support_set(splits, budget)
  mesh = sharding.make_mesh()
  state = init_state(jax.random.key(0), cfg, splits.image_shape, splits.num_classes, mesh)
  real = put_on_devices(splits.train, mesh)
  support = SupportBatch(jnp.asarray(s_images), jnp.asarray(s_labels), jnp.ones(budget, bool))

  ours = lambda i: finetune(state, real, support, jax.random.key(i), cfg=cfg, mesh=mesh)
  sides = {"jaxsets": (ours, None)}
  missing = missing_peers("torch")
  if not missing:
    from peers.torch_classifier import TorchClassifier
    from peers.torch_settings import pick_best
    peer = TorchClassifier(cfg, splits.num_classes, splits.image_shape, splits.train.images,
                           splits.train.labels)
    torch_settings = pick_best(lambda threads, fmt: peer.set_memory_format(fmt),
                               lambda i: peer.finetune(s_images, s_labels, i))
    shared = ctx.shared.setdefault("torch_settings", {})
    shared.setdefault("threads", torch_settings["threads"])
    shared.setdefault("memory_format", "contiguous")
    shared["classifier_memory_format"] = torch_settings["memory_format"]
    sides["torch"] = (lambda i: peer.finetune(s_images, s_labels, i), no_sync)
  t = measure_sides(sides, ctx.repeats)
  ctx.shared["finetune"] = {"jaxsets_s": t["jaxsets"]["steady_s"],
                            "torch_s": t["torch"]["steady_s"] if "torch" in t else None,
                            "state": state, "real": real, "support": support, "cfg": cfg,
                            "mesh": mesh}
  rows = cfg.finetune_steps * cfg.batch_size
  settings = {"model": cfg.model, "steps": cfg.finetune_steps, "batch": cfg.batch_size,
              "real_images": len(splits.train), "support_images": budget,
              "image_shape": list(splits.image_shape)}
  if missing:
    theirs = skipped_peer("PyTorch SmallCNN, same recipe (eager, CPU)", missing)
  else:
    theirs = {"name": peer.name, **t["torch"], "images_per_s": rows / t["torch"]["steady_s"],
              "settings": torch_settings}
  return [entry("classifier_finetune",
                {**t["jaxsets"], "images_per_s": rows / t["jaxsets"]["steady_s"]}, theirs,
                settings=settings)]

