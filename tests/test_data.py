"""The data layer: the digits TFDS builder, seeded splits, bad input. No downloads."""
import threading

import ml_collections
import numpy as np
import pytest

from jaxsets.data import digits_builder, load_dataset, load_generator_pool, splits
from jaxsets.data.types import ImageSet
from jaxsets.errors import UserError


def data_cfg(data_dir, **kw):
  c = ml_collections.ConfigDict(dict(name="digits", data_dir=str(data_dir), image_size=8,
                                     channels=1, train_per_class=5, imbalance_ratio=1.0,
                                     val_fraction=0.3))
  c.update(kw)
  return c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("tfds")
  digits_builder.prepared_builder(str(d))
  return d


def _keys(images):  # one hashable key per image, to test disjointness by content
  return {im.tobytes() for im in images}


def test_digits_splits_are_fixed_stratified_and_cover_sklearn():
  idx = digits_builder.split_indices()
  sizes = {k: len(v) for k, v in idx.items()}
  assert sum(sizes.values()) == 1797
  # 45 / 30 / 25 % of every class, rounded per class: e.g. class 0 has 178 images ->
  # cuts at round(0.45*178)=80 and round(0.75*178)=134 -> 80, 54, 44.
  assert sizes == {"generator_pool": 808, "train": 539, "test": 450}
  all_idx = np.concatenate(list(idx.values()))
  assert len(np.unique(all_idx)) == 1797
  from sklearn.datasets import load_digits
  y = load_digits().target
  assert np.bincount(y[idx["generator_pool"]])[0] == 80
  assert np.bincount(y[idx["train"]])[0] == 54 and np.bincount(y[idx["test"]])[0] == 44
  # The split does not depend on anything but the fixed dataset seed.
  again = digits_builder.split_indices()
  assert all(np.array_equal(idx[k], again[k]) for k in idx)


def test_digits_builds_once_and_reads_back(data_dir):
  builder = digits_builder.prepared_builder(str(data_dir))   # second call: no rebuild
  assert builder.info.features["label"].names[:3] == ["zero", "one", "two"]
  images, labels = digits_builder.read_split(builder, "test")
  assert images.shape == (450, 8, 8, 1) and images.dtype == np.uint8
  assert labels.dtype == np.int32
  # sklearn values 0..16 scaled by 255 // 16: the brightest pixel is 255, the set of values
  # is exactly {v * 255 // 16}.
  allowed = {v * 255 // 16 for v in range(17)}
  assert set(np.unique(images).tolist()) <= allowed and images.max() == 255


def test_concurrent_builds_do_not_corrupt(tmp_path):
  errors = []

  def build():
    try:
      digits_builder.prepared_builder(str(tmp_path))
    except Exception as e:  # noqa: BLE001 - reported below
      errors.append(e)

  threads = [threading.Thread(target=build) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  images, _ = digits_builder.read_split(digits_builder.prepared_builder(str(tmp_path)), "train")
  assert len(images) == 539
  assert not list(tmp_path.glob("digits/incomplete*"))   # no half-written folder left


def test_load_dataset_digits(data_dir):
  d = load_dataset(data_cfg(data_dir), seed=0)
  assert d.class_names == ("zero", "one", "two", "three", "four", "five", "six", "seven",
                           "eight", "nine")
  assert d.num_classes == 10 and d.image_shape == (8, 8, 1)
  assert len(d.test) == 450
  # train has 52..55 per class; validation takes round(0.3 * count) of each: 160 in all.
  assert len(d.validation) == 160
  assert np.all(d.validation.class_counts(10) >= 15)
  assert np.array_equal(d.train.class_counts(10), np.full(10, 5))
  pool = load_generator_pool(data_cfg(data_dir))
  assert len(pool) == 808 and pool.class_names == d.class_names
  # Disjoint by index: each split holds exactly the sklearn images of its (disjoint, tested
  # above) index set, compared as sorted multisets of image bytes.
  from sklearn.datasets import load_digits
  sk = (load_digits().images.astype(np.int32) * 255 // 16).astype(np.uint8)[..., None]
  idx = digits_builder.split_indices()
  as_bytes = lambda ims: sorted(im.tobytes() for im in ims)
  assert as_bytes(pool.images) == as_bytes(sk[idx["generator_pool"]])
  assert as_bytes(d.test.images) == as_bytes(sk[idx["test"]])
  train_full = load_dataset(data_cfg(data_dir, train_per_class=0), seed=0)
  assert as_bytes(np.concatenate([train_full.train.images, train_full.validation.images])) == \
      as_bytes(sk[idx["train"]])
  assert _keys(d.train.images) <= _keys(train_full.train.images)


def test_test_split_and_pool_do_not_move_with_the_seed(data_dir):
  a = load_dataset(data_cfg(data_dir), seed=0)
  b = load_dataset(data_cfg(data_dir), seed=1)
  assert np.array_equal(a.test.images, b.test.images)
  assert not np.array_equal(a.validation.labels, b.validation.labels) or \
      not np.array_equal(a.validation.images, b.validation.images)
  assert np.array_equal(a.train.images, load_dataset(data_cfg(data_dir), seed=0).train.images)


def test_all_training_data_and_long_tail(data_dir):
  full = load_dataset(data_cfg(data_dir, train_per_class=0), seed=0)
  assert len(full.train) + len(full.validation) == 539
  tail = load_dataset(data_cfg(data_dir, train_per_class=20, imbalance_ratio=10.0), seed=0)
  counts = tail.train.class_counts(10)
  # 20 * 10 ** (-i / 9): 20, 15.5->15 (round half even), 12.0, 9.3, 7.2, 5.6, 4.3, 3.3, 2.6, 2.0
  expected = np.round(20 * 10.0 ** (-np.arange(10) / 9)).astype(int)
  assert counts.tolist() == expected.tolist()
  assert counts[0] == 20 and counts[-1] == 2


def test_train_per_class_too_large_names_the_limit(data_dir):
  with pytest.raises(UserError, match=r"train_per_class=100 is more than.*'zero' has 3\d"):
    load_dataset(data_cfg(data_dir, train_per_class=100), seed=0)


def test_generator_pool_only_for_digits():
  with pytest.raises(UserError, match="only for data.name='digits'"):
    load_generator_pool(data_cfg("", name="cifar10"))


def test_unknown_tfds_name_lists_close_matches():
  with pytest.raises(UserError, match=r"not a TFDS dataset.*cifar10"):
    load_dataset(data_cfg("", name="cifar_10"), seed=0)


def test_missing_dataset_offline_says_where(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXSETS_OFFLINE", "1")
  with pytest.raises(UserError) as e:
    load_dataset(data_cfg(tmp_path, name="cifar10"), seed=0)
  msg = str(e.value)
  assert f"{tmp_path}/cifar10/3.0.2" in msg and "data.data_dir" in msg
  assert not (tmp_path / "cifar10" / "3.0.2" / "dataset_info.json").exists()


def test_split_arithmetic_by_hand():
  labels = np.array([0] * 10 + [1] * 3 + [2] * 1, np.int32)
  s = ImageSet(np.arange(14, dtype=np.uint8).reshape(14, 1, 1, 1), labels)
  train, val = splits.carve_validation(s, 0.3, seed=3, num_classes=3)
  # class 0: round(3.0)=3 to validation; class 1: round(0.9)=1; class 2 (one image): none.
  assert val.class_counts(3).tolist() == [3, 1, 0]
  assert train.class_counts(3).tolist() == [7, 2, 1]
  assert not set(train.images.ravel()) & set(val.images.ravel())
  assert splits.per_class_targets(np.array([50, 50, 50]), 100, 10.0).tolist() == [100, 32, 10]
  with pytest.raises(UserError, match="val_fraction"):
    splits.carve_validation(s, 1.5, 0, 3)
