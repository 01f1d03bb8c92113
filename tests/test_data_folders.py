"""Image folders and Tiny-ImageNet's layout, on tiny folders written to tmp_path."""
import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxsets.data import load_dataset
from jaxsets.errors import UserError


def cfg(path, **kw):
  c = ml_collections.ConfigDict(dict(name=f"folder:{path}", data_dir="", image_size=4,
                                     channels=3, train_per_class=0, imbalance_ratio=1.0,
                                     val_fraction=0.25))
  c.update(kw)
  return c


def write(path, value, size=4):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def test_class_folders_hold_out_a_fixed_test_split(tmp_path):
  for c, name in enumerate(["red_fox", "cat"]):
    for i in range(8):
      write(tmp_path / name / f"{i}.png", 10 * c + i)
  (tmp_path / "cat" / "notes.txt").write_text("not an image, ignored")
  d = load_dataset(cfg(tmp_path), seed=0)
  assert d.class_names == ("cat", "red fox")            # sorted folder names, "_" -> " "
  # 8 per class: test round(0.25*8)=2, then validation round(0.25*6)=2 (rounds half to even
  # -> 1.5 -> 2), train keeps 4.
  assert d.test.class_counts(2).tolist() == [2, 2]
  assert d.validation.class_counts(2).tolist() == [2, 2]
  assert d.train.class_counts(2).tolist() == [4, 4]
  assert d.train.images.shape[1:] == (4, 4, 3)
  # red_fox images were written with values 0..7, cat 10..17; cat sorts first (label 0).
  assert np.all(d.train.images[d.train.labels == 0] >= 10)
  assert np.all(d.train.images[d.train.labels == 1] < 8)
  other = load_dataset(cfg(tmp_path), seed=5)
  assert np.array_equal(d.test.images, other.test.images)


def test_split_folders_and_mixed_sizes_resized_with_one_notice(tmp_path, capsys):
  for split, n in (("train", 6), ("test", 2)):
    for name in ("a", "b"):
      for i in range(n):
        write(tmp_path / split / name / f"{i}.jpg", 100, size=4 if i else 9)
  d = load_dataset(cfg(tmp_path), seed=0)
  assert len(d.test) == 4 and len(d.train) + len(d.validation) == 12
  out = capsys.readouterr().out
  assert out.count("resized") == 2   # once per split folder, not once per image
  assert "10 of 4x4, 2 of 9x9" in out   # train: 5 + 5 small, one 9x9 per class


def test_tiny_imagenet_layout_maps_wordnet_ids_to_english(tmp_path):
  wnids = ["n01443537", "n01629819"]
  (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
  (tmp_path / "words.txt").write_text(
      "n01443537\tgoldfish, Carassius auratus\n"
      "n01629819\tEuropean fire salamander, Salamandra salamandra\n"
      "n00000001\tunused entry\n")
  lines = []
  for c, w in enumerate(wnids):
    for i in range(5):
      write(tmp_path / "train" / w / "images" / f"{w}_{i}.JPEG", 50 * c)
    for i in range(3):
      write(tmp_path / "val" / "images" / f"val_{c}_{i}.JPEG", 50 * c)
      lines.append(f"val_{c}_{i}.JPEG\t{w}\t0\t0\t4\t4")
  (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
  d = load_dataset(cfg(tmp_path), seed=0)
  assert d.class_names == ("goldfish", "European fire salamander")
  assert d.test.class_counts(2).tolist() == [3, 3]       # Tiny-ImageNet's val is our test
  assert np.all(d.test.images[d.test.labels == 1] == 50)
  assert len(d.train) + len(d.validation) == 10


def test_empty_folder(tmp_path):
  (tmp_path / "cat").mkdir()
  (tmp_path / "dog").mkdir()
  write(tmp_path / "dog" / "0.png", 1)
  with pytest.raises(UserError, match=r"class folder .*cat.* has no images"):
    load_dataset(cfg(tmp_path), seed=0)
  with pytest.raises(UserError, match="no class sub-folders"):
    load_dataset(cfg(tmp_path / "cat"), seed=0)


def test_unreadable_file_is_named(tmp_path):
  for name in ("a", "b"):
    for i in range(4):
      write(tmp_path / name / f"{i}.png", 3)
  (tmp_path / "b" / "broken.png").write_bytes(b"this is not a png")
  with pytest.raises(UserError, match=r"cannot read image file .*b/broken\.png"):
    load_dataset(cfg(tmp_path), seed=0)


def test_a_directory_name_without_the_prefix_is_explained(tmp_path):
  with pytest.raises(UserError, match="folder:"):
    load_dataset(cfg(tmp_path, name=str(tmp_path)), seed=0)
  with pytest.raises(UserError, match="does not exist"):
    load_dataset(cfg(tmp_path / "nope"), seed=0)
