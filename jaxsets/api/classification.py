"""Data and classifiers for the public API: arrays on the devices, train, fine-tune, evaluate.

Images are always uint8 [N, H, W, C] (C = 1 or 3) and labels int32 [N] (dataset class indices).
`finetune` and `evaluate` are pure and jittable (and vmappable over support sets); a support set
is padded to a fixed size with a mask, so a growing set never recompiles.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding
from jaxsets.classifier import baseline as _baseline
from jaxsets.classifier.evaluate import evaluate as _evaluate
from jaxsets.classifier import state as _state
from jaxsets.classifier import train as _train
from jaxsets.classifier.config import ClassifierConfig
from jaxsets.data import device as _device
from jaxsets.data.config import DataConfig
from jaxsets.data.types import ImageSet


def load_dataset(name: str = "digits", *, image_size: int, channels: int, seed: int = 0,
                 train_per_class: int = 0, imbalance_ratio: float = 1.0,
                 val_fraction: float = 0.1, data_dir: str = ""):
  """train / validation / test splits as host arrays (a `DatasetSplits`).

  name: "digits" (scikit-learn's, offline), a TFDS image-classification name ("cifar10"), or
  "folder:PATH" (one sub-folder per class, or Tiny-ImageNet's layout). Images are resized to
  uint8 [N, image_size, image_size, channels]. The test split does not depend on `seed`;
  validation is carved from train (stratified) when the dataset has none; train_per_class > 0
  keeps that many training images per class (the low-data regime).

  Example:
    >>> import jaxsets
    >>> splits = jaxsets.load_dataset("digits", image_size=8, channels=1, train_per_class=5)
    >>> splits.train.images.shape, splits.train.labels.dtype, splits.class_names[:3]
    ((50, 8, 8, 1), dtype('int32'), ('zero', 'one', 'two'))
  """
  from jaxsets.data import loading

  data_cfg = DataConfig(name=name, data_dir=data_dir, image_size=int(image_size),
                        channels=int(channels), train_per_class=int(train_per_class),
                        imbalance_ratio=float(imbalance_ratio), val_fraction=float(val_fraction))
  return loading.load_dataset(data_cfg, int(seed))


def device_set(images, labels=None, *, mesh=None, rows: int | None = None):
  """Puts images uint8 [N, H, W, C] and labels int [N] (or an `ImageSet`) on the devices.

  Returns a `DeviceSet(images, labels, mask)` sharded over the batch axis of `mesh` (default:
  every device), padded to `rows` (default: the next multiple of the device count); padded rows
  have mask False and are never sampled or scored.

  Example:
    >>> import numpy as np, jaxsets
    >>> real = jaxsets.device_set(np.zeros((10, 8, 8, 1), np.uint8), np.arange(10) % 2, rows=12)
    >>> real.images.shape, int(real.mask.sum())
    ((12, 8, 8, 1), 10)
  """
  data = images if isinstance(images, ImageSet) else ImageSet(
      np.asarray(images, np.uint8), np.asarray(labels, np.int32))
  return _device.put_on_devices(data, mesh or sharding.make_mesh(), rows=rows)


def support_batch(images, labels, *, rows: int):
  """A support set padded to `rows` (its final size): `SupportBatch(images uint8 [rows, H, W, C],
  labels int32 [rows], mask bool [rows])`. Keep `rows` fixed while the set grows, so `finetune`
  compiles once. Works on host or device arrays (e.g. a generator's output); jittable.

  Example:
    >>> import numpy as np, jaxsets
    >>> support = jaxsets.support_batch(np.zeros((3, 8, 8, 1), np.uint8), [1, 1, 2], rows=40)
    >>> support.images.shape, int(support.mask.sum())
    ((40, 8, 8, 1), 3)
  """
  images = jnp.asarray(images, jnp.uint8)
  labels = jnp.asarray(labels, jnp.int32)
  n = images.shape[0]
  if n > rows:
    raise ValueError(f"{n} support images do not fit in rows={rows}.")
  pad = rows - n
  return _train.SupportBatch(jnp.pad(images, ((0, pad),) + ((0, 0),) * (images.ndim - 1)),
                             jnp.pad(labels, (0, pad)), jnp.arange(rows) < n)


def empty_support(image_shape, rows: int):
  """A `SupportBatch` with no members (uint8 [rows, *image_shape] zeros, mask all False): the
  real-data-only arm, with the same shapes as a full support set.

  Example:
    >>> import jaxsets
    >>> int(jaxsets.empty_support((8, 8, 1), rows=40).mask.sum())
    0
  """
  return _train.empty_support(tuple(image_shape), rows)


def init_classifier(key: jax.Array, image_shape, num_classes: int, cfg: ClassifierConfig | None = None,
                    *, mesh=None):
  """Fresh `ClassifierState` (params + AdamW state, replicated over `mesh`) for images of
  `image_shape` = (H, W, C). `cfg.model`: small_cnn | resnet20 | resnet56 | resnet18 | resnet50 |
  vit_small. `state.apply(images uint8 [B, H, W, C])` gives logits float32 [B, num_classes].

  Example:
    >>> import jax, jaxsets
    >>> cfg = jaxsets.ClassifierConfig(model="small_cnn", baseline_steps=20, finetune_steps=5)
    >>> state = jaxsets.init_classifier(jax.random.key(0), (8, 8, 1), num_classes=10, cfg=cfg)
    >>> state.apply(jax.numpy.zeros((2, 8, 8, 1), "uint8")).shape
    (2, 10)
  """
  cfg = cfg or ClassifierConfig()
  return _state.init_state(key, cfg, tuple(image_shape), int(num_classes),
                           mesh or sharding.make_mesh())


def train_classifier(images, labels, num_classes: int, key: jax.Array, *,
                     cfg: ClassifierConfig | None = None, mesh=None, progress: bool = False):
  """Trains `cfg.model` from scratch on images uint8 [N, H, W, C], labels int [N] for
  cfg.baseline_steps steps (AdamW, warm-up + cosine). Returns (state, mean loss per chunk).
  The chunks are one compiled `lax.scan`; `progress=True` shows a bar.

  Example:
    >>> import jax, jaxsets
    >>> splits = jaxsets.load_dataset("digits", image_size=8, channels=1, train_per_class=5)
    >>> cfg = jaxsets.ClassifierConfig(model="small_cnn", baseline_steps=20, finetune_steps=5)
    >>> state, losses = jaxsets.train_classifier(splits.train.images, splits.train.labels, 10,
    ...                                          jax.random.key(0), cfg=cfg)
    >>> len(losses)
    10
  """
  cfg = cfg or ClassifierConfig()
  data = ImageSet(np.asarray(images, np.uint8), np.asarray(labels, np.int32))
  return _baseline.train_baseline(data, int(num_classes), key, cfg=cfg,
                                  mesh=mesh or sharding.make_mesh(), progress=progress)


def finetune(state, real, support, key: jax.Array, *, cfg: ClassifierConfig, mesh=None):
  """Fine-tunes `state` on real + support for cfg.finetune_steps steps, fresh AdamW (peak
  cfg.finetune_learning_rate). Jitted and pure (jax.vmap it over several support sets).

  Args:
    state: a `ClassifierState`; real: a `DeviceSet` (see `device_set`); support: a
      `SupportBatch` of fixed size (see `support_batch`; mask False rows are never drawn);
    key: a typed PRNG key (minibatches and augmentation); cfg: `ClassifierConfig` (its learning
      rates are traced, its step counts and model static).
  Returns: (state, losses float32 [cfg.finetune_steps]).

  Example:
    >>> import jax, jaxsets
    >>> splits = jaxsets.load_dataset("digits", image_size=8, channels=1, train_per_class=5)
    >>> cfg = jaxsets.ClassifierConfig(model="small_cnn", baseline_steps=20, finetune_steps=5)
    >>> state = jaxsets.init_classifier(jax.random.key(0), (8, 8, 1), 10, cfg)
    >>> support = jaxsets.support_batch(splits.test.images[:4], splits.test.labels[:4], rows=40)
    >>> state, losses = jaxsets.finetune(state, jaxsets.device_set(splits.train), support,
    ...                                  jax.random.key(1), cfg=cfg)
    >>> losses.shape
    (5,)
  """
  return _train.finetune(state, real, support, key, cfg=cfg, mesh=mesh)


def evaluate(state, images, labels, mask=None, *, chunk: int = 1024):
  """`EvalMetrics` of `state` on images uint8 [N, H, W, C], labels int32 [N] (rows with mask
  False ignored): accuracy float32 [], per_class_accuracy float32 [n], mean_entropy float32 []
  (mean predictive entropy, nats), confusion int32 [n, n]. Jittable; logits in chunks of `chunk`.

  Example:
    >>> import jax, jaxsets
    >>> splits = jaxsets.load_dataset("digits", image_size=8, channels=1, train_per_class=5)
    >>> cfg = jaxsets.ClassifierConfig(model="small_cnn", baseline_steps=20, finetune_steps=5)
    >>> state = jaxsets.init_classifier(jax.random.key(0), (8, 8, 1), 10, cfg)
    >>> m = jaxsets.evaluate(state, splits.validation.images, splits.validation.labels)
    >>> m.per_class_accuracy.shape, m.confusion.shape
    ((10,), (10, 10))
  """
  return _evaluate(state, images, labels, mask, chunk=chunk)
