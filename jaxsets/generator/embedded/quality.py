"""How recognisable the embedded generator's images are: a plain classifier trained on real digits
(scikit-learn's logistic regression on raw pixels) reads the generated images."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression


def fit_reader(images: np.ndarray, labels: np.ndarray) -> LogisticRegression:
  """images uint8 [N, H, W, C] -> a logistic regression on pixels scaled to [0, 1]."""
  x = images.reshape(len(images), -1).astype(np.float32) / 255.0
  return LogisticRegression(max_iter=3000).fit(x, labels)


def recognition_rate(reader: LogisticRegression, images: np.ndarray, intended: np.ndarray,
                     num_classes: int) -> tuple[float, list[float]]:
  """Share of generated images read as the intended class: overall and per class."""
  pred = reader.predict(images.reshape(len(images), -1).astype(np.float32) / 255.0)
  hit = pred == intended
  per_class = [float(hit[intended == c].mean()) if np.any(intended == c) else float("nan")
               for c in range(num_classes)]
  return float(hit.mean()), per_class


def single_class_prompts(class_names: Sequence[str], per_class: int, domain: str = "photo"):
  """["A photo of a zero"] * per_class + ... and the intended labels."""
  prompts = [f"A {domain} of a {c}" for c in class_names for _ in range(per_class)]
  labels = np.repeat(np.arange(len(class_names)), per_class)
  return prompts, labels
