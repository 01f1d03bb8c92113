"""The non-learned arms and the over-seeds summary, worked out by hand."""
import numpy as np
import pytest

from jaxsets.loop.arms import balanced_actions
from jaxsets.loop.compare import summarise, table


def test_balanced_default_shape_gives_each_class_every_domain_once():
  a = balanced_actions(40, 4, 10)   # T = 40 steps, D = 4 domains, n = 10 classes
  assert a.dtype == np.int32 and a.shape == (40, 4)
  assert (a[:, 2] == a[:, 1]).all() and (a[:, 3] == a[:, 1]).all()      # pure prompts
  pairs = {(int(d), int(c)) for d, c in a[:, :2]}
  assert len(pairs) == 40                                               # 10 x 4, none twice
  # lcm(10, 4) = 20: steps 0-19 take domain t mod 4, steps 20-39 domain (t + 1) mod 4.
  assert a[:4, 0].tolist() == [0, 1, 2, 3] and a[20:24, 0].tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize("steps,domains,classes", [(4, 4, 10), (40, 4, 3), (30, 4, 10), (12, 3, 2),
                                                   (40, 4, 200), (48, 4, 6)])
def test_balanced_prefixes_are_even_to_one_step(steps, domains, classes):
  a = balanced_actions(steps, domains, classes)
  for k in range(1, steps + 1):
    c = np.bincount(a[:k, 1], minlength=classes)
    d = np.bincount(a[:k, 0], minlength=domains)
    assert c.max() - c.min() <= 1 and d.max() - d.min() <= 1, (k, c, d)


def test_compare_reports_the_paired_gain_over_balanced():
  seed_results = lambda base, rand, bal, rl: {
      "test_accuracy": {"baseline": base, "random": rand, "balanced": bal, "rl": rl},
      "per_class_accuracy": {arm: [0.5, 0.5] for arm in ("baseline", "random", "balanced", "rl")}}
  summary = summarise({0: seed_results(0.90, 0.92, 0.93, 0.95), 1: seed_results(0.90, 0.91, 0.95, 0.94)})
  gain = summary["paired_gains"]["rl-balanced"]
  assert gain["per_seed"] == pytest.approx([0.02, -0.01])
  # mean 0.005; sd of (0.02, -0.01) = 0.0212; t(0.975, 1) = 12.706: half-width 12.706 * 0.015.
  assert gain["mean"] == pytest.approx(0.005) and gain["ci95"] == pytest.approx(12.706 * 0.015, rel=1e-3)
  assert summary["arms"]["balanced"]["mean"] == pytest.approx(0.94)
  assert "validation" not in summary  # results.json written before val_accuracy


def test_compare_summarises_validation_beside_test():
  arms = ("baseline", "random", "balanced", "rl")
  seed_results = lambda test, val: {
      "test_accuracy": dict(zip(arms, test)), "val_accuracy": dict(zip(arms, val)),
      "per_class_accuracy": {arm: [0.5, 0.5] for arm in arms}}
  summary = summarise({3: seed_results((0.90, 0.92, 0.93, 0.95), (0.91, 0.93, 0.96, 0.94)),
                       7: seed_results((0.90, 0.91, 0.95, 0.94), (0.92, 0.90, 0.94, 0.97))})
  val = summary["validation"]
  assert val["arms"]["rl"]["val_accuracy"] == [0.94, 0.97]
  assert val["arms"]["rl"]["mean"] == pytest.approx(0.955)
  gain = val["paired_gains"]["rl-balanced"]
  assert gain["per_seed"] == pytest.approx([-0.02, 0.03])
  # mean 0.005; sd of (-0.02, 0.03) = 0.0354; t(0.975, 1) = 12.706: half-width 12.706 * 0.025.
  assert gain["mean"] == pytest.approx(0.005) and gain["ci95"] == pytest.approx(12.706 * 0.025, rel=1e-3)
  assert summary["paired_gains"]["rl-balanced"]["per_seed"] == pytest.approx([0.02, -0.01])
  text = table(summary)
  assert "validation accuracy" in text and "rl         0.9550 ± " in text


def test_compare_reports_the_rarest_classes_of_long_tailed_data():
  arms = ("baseline", "random", "balanced", "rl")
  def seed_results(counts, per_class_rl):
    per_class = {arm: [0.9, 0.9, 0.9, 0.9] for arm in arms}
    per_class["rl"] = per_class_rl
    return {"test_accuracy": {arm: 0.9 for arm in arms}, "per_class_accuracy": per_class,
            "train_class_counts": counts, "class_names": ["a", "b", "c", "d"]}
  # Seed 0: classes 3, 2, 1 are rarest (1 is tied with 0 at 10 images: the later one counts).
  # Seed 1: its own split makes class 0 the rarest.
  summary = summarise({0: seed_results([10, 10, 4, 2], [1.0, 0.7, 0.6, 0.5]),
                       1: seed_results([1, 9, 8, 7], [0.3, 0.9, 0.9, 0.6])})
  rare = summary["rarest_classes"]
  assert rare["classes"] == [["d", "c", "b"], ["a", "d", "c"]]
  assert rare["train_images"] == [[2, 4, 10], [1, 7, 8]]
  assert rare["arms"]["rl"]["accuracy"] == pytest.approx([0.6, 0.6])      # (0.5+0.6+0.7)/3, (0.3+0.6+0.9)/3
  assert rare["arms"]["baseline"]["accuracy"] == pytest.approx([0.9, 0.9])
  assert rare["paired_gains"]["rl-baseline"]["mean"] == pytest.approx(-0.3)
  # Balanced training data: no such section.
  even = summarise({0: seed_results([5, 5, 5, 5], [1.0, 0.7, 0.6, 0.5])})
  assert "rarest_classes" not in even
