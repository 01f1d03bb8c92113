"""What a run leaves in its workdir: support_set/ (PNGs, manifest, TFDS), results.json, report.md
with plots, TensorBoard events."""
import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxsets import outputs
from jaxsets.outputs import folders, support_set

# A comma and a space: the folder name must be made safe, the class name kept as is.
CLASS_NAMES = ("cat", "goldfish, Carassius", "dog")


def make_set(n=12, shape=(6, 5, 3), seed=0, prompt="p"):
  """Non-square RGB images (a transposed or channel-dropped read would not match)."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
  labels = np.array([i % 2 * 2 if i % 3 else 1 for i in range(n)], np.int32)  # classes 0, 1, 2
  records = [{"prompt": f"{prompt} {i // 3}", "step": i // 3, "reward": 0.25 * (i // 3) - 0.5,
              "episode": 7} for i in range(n)]
  return images, labels, records


def read_manifest(folder):
  with open(os.path.join(folder, "manifest.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  images, labels, records = make_set()
  path = outputs.write_support_set(workdir, images, labels, CLASS_NAMES, records)
  return workdir, path, images, labels, records


def test_support_set_round_trips_through_tfds(written):
  import tensorflow_datasets as tfds
  _, path, images, labels, records = written
  builder = tfds.builder_from_directory(os.path.join(path, "tfds"))
  assert list(builder.info.splits) == ["train"]
  assert builder.info.features["label"].names == list(CLASS_NAMES)
  source = builder.as_data_source("train")
  items = [source[i] for i in range(len(source))]
  assert len(items) == len(images)
  np.testing.assert_array_equal(np.stack([x["image"] for x in items]), images)
  np.testing.assert_array_equal([x["label"] for x in items], labels)
  assert [x["prompt"].decode() if isinstance(x["prompt"], bytes) else x["prompt"] for x in items] == \
      [r["prompt"] for r in records]
  np.testing.assert_array_equal([x["step"] for x in items], [r["step"] for r in records])
  np.testing.assert_allclose([x["reward"] for x in items], [r["reward"] for r in records])
  # The same examples, in the same order, through tf.data (TFRecord shards). A fresh builder:
  # as_data_source switches the builder's own info to ArrayRecord, which tf.data cannot read.
  builder = tfds.builder_from_directory(os.path.join(path, "tfds"))
  rows = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
  np.testing.assert_array_equal(np.stack([x["image"] for x in rows]), images)
  np.testing.assert_array_equal([x["label"] for x in rows], labels)
  assert [x["prompt"].decode() for x in rows] == [r["prompt"] for r in records]


def test_manifest_matches_records_and_pngs(written):
  _, path, images, labels, records = written
  lines = read_manifest(path)
  assert len(lines) == len(images)
  for i, (line, record) in enumerate(zip(lines, records)):
    assert line["label"] == labels[i]
    assert line["class_name"] == CLASS_NAMES[labels[i]]
    assert (line["prompt"], line["step"], line["reward"]) == \
        (record["prompt"], record["step"], record["reward"])
    assert line["episode"] == 7  # extra record keys are kept
    assert line["file"] == f"{support_set.class_folders(CLASS_NAMES)[labels[i]]}/{i:04d}.png"
    np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(path, line["file"]))), images[i])


def test_one_folder_per_class(written):
  _, path, _, labels, _ = written
  names = support_set.class_folders(CLASS_NAMES)
  assert names == ["cat", "goldfish_Carassius", "dog"]
  dirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
  assert dirs == sorted(names + ["tfds"])
  for k, name in enumerate(names):
    files = sorted(os.listdir(os.path.join(path, name)))
    assert files == [f"{i:04d}.png" for i in np.flatnonzero(labels == k)]


def test_class_folders_stay_distinct_and_flat():
  assert support_set.class_folders(["a/b", "a b", "..", "Cat", "cat"]) == \
      ["a_b", "a_b_1", "class_2", "Cat", "cat_4"]


def _snapshot(path):
  return {os.path.relpath(p, path): open(p, "rb").read()
          for p in glob.glob(os.path.join(path, "**"), recursive=True) if os.path.isfile(p)}


def test_failure_mid_write_keeps_previous_set(tmp_path, monkeypatch):
  workdir = str(tmp_path)
  images, labels, records = make_set(n=6, shape=(4, 4, 1), prompt="old")
  path = outputs.write_support_set(workdir, images, labels, CLASS_NAMES, records)
  before = _snapshot(path)

  def broken_tfds(folder, *args):  # PNGs and manifest are written by now; TFDS fails half-way
    os.makedirs(folder)
    open(os.path.join(folder, "half_a_shard"), "w").close()
    raise OSError("disk full")

  monkeypatch.setattr(support_set, "write_tfds", broken_tfds)
  new_images, new_labels, new_records = make_set(n=9, seed=1, prompt="new")
  with pytest.raises(OSError, match="disk full"):
    outputs.write_support_set(workdir, new_images, new_labels, CLASS_NAMES, new_records)
  assert _snapshot(path) == before
  assert os.listdir(workdir) == ["support_set"]  # no hidden temporary folder left behind

  monkeypatch.undo()
  outputs.write_support_set(workdir, new_images, new_labels, CLASS_NAMES, new_records)
  lines = read_manifest(path)
  assert [r["prompt"] for r in lines] == [r["prompt"] for r in new_records]
  pngs = {f for f in _snapshot(path) if f.endswith(".png")}
  assert pngs == {line["file"] for line in lines}  # none of the old set's PNGs survive
  for i, line in enumerate(lines):
    np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(path, line["file"]))),
                                  new_images[i])
  assert os.listdir(workdir) == ["support_set"]


def test_replace_without_atomic_exchange(tmp_path, monkeypatch):
  """Where renameat2 is missing, the two-rename fallback still ends with only the new set."""
  monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
  target = tmp_path / "support_set"
  for text in ("old", "new"):
    with folders.atomic_dir(str(target)) as tmp:
      with open(os.path.join(tmp, "x.txt"), "w") as f:
        f.write(text)
  assert (target / "x.txt").read_text() == "new"
  assert os.listdir(tmp_path) == ["support_set"]


def test_stale_build_folders_are_cleaned(tmp_path):
  (tmp_path / ".support_set.tmp-dead").mkdir()  # a run killed while writing
  with folders.atomic_dir(str(tmp_path / "support_set")):
    pass
  assert os.listdir(tmp_path) == ["support_set"]


def test_bad_support_set_writes_nothing(tmp_path):
  images, labels, records = make_set(n=3)
  with pytest.raises(ValueError, match="labels must lie"):
    outputs.write_support_set(str(tmp_path), images, labels + 5, CLASS_NAMES, records)
  with pytest.raises(ValueError, match="lacks"):
    outputs.write_support_set(str(tmp_path), images, labels, CLASS_NAMES, [{"prompt": "x"}] * 3)
  assert os.listdir(tmp_path) == []


def fake_results(n_classes=3):
  per_class = {"baseline": [0.5, 0.75, 0.25][:n_classes] if n_classes == 3 else [0.5] * n_classes,
               "random": [0.625] * n_classes, "rl": [0.875] * n_classes}
  return {"test_accuracy": {"baseline": 0.7125, "random": np.float32(0.7375), "rl": 0.7625},
          "per_class_accuracy": per_class,
          "test_mean_entropy": {"baseline": 0.9, "random": 0.8, "rl": 0.7},
          "num_synthetic": 12, "seed": 3, "config": {"data": {"name": "digits"}, "loop": {"budget": 12}}}


def fake_history(steps=8, episodes=2):
  rng = np.random.default_rng(0)
  return {"step_reward": list(rng.normal(0, 0.01, steps)),
          "step_episode": list(np.repeat(np.arange(episodes), steps // episodes)),
          "episode_reward": list(rng.normal(0, 0.02, episodes)),
          "step_val_accuracy": list(np.linspace(0.5, 0.7, steps))}


def assert_png(path, min_side=200):
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with Image.open(path) as img:
    img.verify()
  with Image.open(path) as img:
    assert min(img.size) >= min_side, (path, img.size)


def test_results_json_is_plain_json(tmp_path):
  path = outputs.write_results(str(tmp_path), fake_results())
  data = json.loads(open(path).read())
  assert data["test_accuracy"]["random"] == pytest.approx(0.7375)  # np.float32 converted
  assert data["seed"] == 3
  assert os.listdir(tmp_path) == ["results.json"]


def test_report_has_three_arms_and_plots(tmp_path):
  images, labels, records = make_set()
  results = fake_results()
  results["rl_composition"] = {"domain_steps": {"photo": 1, "sketch": 0, "drawing": 2},
                               "pure_steps": 2, "first_class_steps": {}, "steps": 3}
  path = outputs.write_report(str(tmp_path), results, fake_history(), images, labels,
                              [r["prompt"] for r in records], CLASS_NAMES)
  text = open(path).read()
  assert ("The RL set's 3 steps by domain: drawing 2, photo 1; pure prompts (c2 = c3 = c1) in 2 "
          "of them.") in text
  # Accuracies and gains, worked out by hand: rl - baseline = 0.05, rl - random = 0.025.
  for expected in ("71.25%", "73.75%", "**76.25%**", "+2.50 pts", "+5.00 pts",
                   "baseline (real only)", "random prompts", "RL prompts",
                   "| goldfish, Carassius | 75.00% | 62.50% | 87.50% | +12.50 pts | +25.00 pts | 4 |"):
    assert expected in text, expected
  for name in ("reward_per_step", "reward_per_episode", "per_class_accuracy", "support_set_grid",
               "support_set_all"):
    assert f"(plots/{name}.png)" in text
    assert_png(tmp_path / "plots" / f"{name}.png", min_side=40 if name == "support_set_all" else 200)
  assert sorted(os.listdir(tmp_path)) == ["plots", "report.md"]  # no temporary files left


def test_report_shows_the_balanced_arm_and_the_gain_over_it(tmp_path):
  images, labels, records = make_set()
  results = fake_results()
  results["test_accuracy"]["balanced"] = 0.775
  results["per_class_accuracy"]["balanced"] = [1.0, 0.5, 0.75]
  results["test_mean_entropy"]["balanced"] = 0.6
  path = outputs.write_report(str(tmp_path), results, fake_history(), images, labels,
                              [r["prompt"] for r in records], CLASS_NAMES)
  text = open(path).read()
  # rl - balanced = 0.7625 - 0.775 = -1.25 pts; per class (goldfish) 0.875 - 0.5 = +37.50 pts.
  for expected in ("balanced pure prompts", "**77.50%**", "-1.25 pts", "trails the balanced rule",
                   "| RL vs random | RL vs balanced |",
                   "| goldfish, Carassius | 75.00% | 62.50% | 50.00% | 87.50% | +12.50 pts "
                   "| +25.00 pts | +37.50 pts | 4 |"):
    assert expected in text, expected


def test_report_without_training_and_with_many_classes(tmp_path):
  """No steps recorded (a run with zero episodes) and 50 classes: still a readable report."""
  names = tuple(f"class {k}" for k in range(50))
  results = fake_results(n_classes=50)
  images, labels, records = make_set(n=6)
  empty = {"step_reward": [], "step_episode": [], "episode_reward": [], "step_val_accuracy": []}
  path = outputs.write_report(str(tmp_path), results, empty, images, labels,
                              [r["prompt"] for r in records], names)
  assert "environment steps: 0" in open(path).read()
  for png in glob.glob(str(tmp_path / "plots" / "*.png")):
    assert_png(png, min_side=40)


def read_events(logdir):
  import tensorflow as tf
  out = []
  for f in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(f):
      for v in event.summary.value:
        value = v.simple_value if v.HasField("simple_value") else float(tf.make_ndarray(v.tensor))
        out.append((v.tag, event.step, value))
  return out


def test_metric_writer_event_file_reads_back(tmp_path):
  logdir = str(tmp_path / "tensorboard")
  with outputs.MetricWriter(logdir) as writer:
    writer.scalar("train/reward", np.float32(0.5), 1)
    writer.scalars({"train/reward": -0.25, "train/val_accuracy": 0.75}, 2)
    writer.flush()
  writer.close()  # a second close is harmless
  assert sorted(read_events(logdir)) == [("train/reward", 1, 0.5), ("train/reward", 2, -0.25),
                                         ("train/val_accuracy", 2, 0.75)]


def test_metric_writer_only_on_process_zero(tmp_path, monkeypatch):
  import jax
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  writer = outputs.MetricWriter(str(tmp_path / "tensorboard"))
  writer.scalar("train/reward", 1.0, 0)
  writer.scalars({"a": 1.0}, 0)
  writer.flush()
  writer.close()
  assert not writer.active and os.listdir(tmp_path) == []


def test_exchange_swaps_two_folders(tmp_path):
  a, b = tmp_path / "a", tmp_path / "b"
  a.mkdir()
  b.mkdir()
  (a / "from_a").touch()
  if not folders._exchange(str(a), str(b)):
    pytest.skip("renameat2(RENAME_EXCHANGE) unsupported here; the fallback is tested above")
  assert os.listdir(a) == [] and os.listdir(b) == ["from_a"]
