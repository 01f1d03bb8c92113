"""ClassifierConfig: the `classifier` config section as a frozen pytree.

Fields that set shapes or program structure (model, batch size, step counts, augmentation)
are static: changing them recompiles. Numbers one may sweep (learning rates, weight decay,
label smoothing) are pytree leaves, traced inside jit: changing them does not recompile.
"""
from __future__ import annotations

from flax import struct

from jaxsets import config_types
from jaxsets.errors import UserError

FINETUNE_FROM = ("baseline", "continue")


@struct.dataclass
class ClassifierConfig:
  learning_rate: float = 3e-3
  finetune_learning_rate: float = 1e-3
  weight_decay: float = 1e-4
  label_smoothing: float = 0.0
  model: str = struct.field(pytree_node=False, default="small_cnn")
  batch_size: int = struct.field(pytree_node=False, default=64)
  baseline_steps: int = struct.field(pytree_node=False, default=300)
  finetune_steps: int = struct.field(pytree_node=False, default=60)
  warmup_fraction: float = struct.field(pytree_node=False, default=0.05)
  augment: bool = struct.field(pytree_node=False, default=True)
  crop_padding: int = struct.field(pytree_node=False, default=1)
  hflip: bool = struct.field(pytree_node=False, default=False)
  finetune_from: str = struct.field(pytree_node=False, default="baseline")
  eval_chunk: int = struct.field(pytree_node=False, default=1024)

  @classmethod
  def from_config(cls, section) -> "ClassifierConfig":
    """From `config.classifier`, each value of its field's kind; keys it lacks keep the
    defaults above."""
    cfg = cls(**config_types.read_section(cls, section, "classifier."))
    if cfg.finetune_from not in FINETUNE_FROM:
      raise UserError(f"classifier.finetune_from={cfg.finetune_from!r}: use 'baseline' (restart "
                      "every fine-tune from the baseline) or 'continue'.")
    for name in ("batch_size", "baseline_steps", "finetune_steps", "eval_chunk"):
      if getattr(cfg, name) <= 0:
        raise UserError(f"classifier.{name}={getattr(cfg, name)} must be positive.")
    for name in ("learning_rate", "finetune_learning_rate"):
      if not getattr(cfg, name) > 0:
        raise UserError(f"classifier.{name}={getattr(cfg, name)} must be above 0.")
    if cfg.weight_decay < 0 or not 0 <= cfg.label_smoothing < 1:
      raise UserError(f"classifier.weight_decay={cfg.weight_decay} must be 0 or above and "
                      f"classifier.label_smoothing={cfg.label_smoothing} in [0, 1).")
    if cfg.crop_padding < 0:
      raise UserError(f"classifier.crop_padding={cfg.crop_padding} must be 0 or more pixels.")
    from jaxsets.classifier.models import check_model_name  # imports the Flax models
    check_model_name(cfg.model)  # now, not when the first model is built after the generator loads
    return cfg
