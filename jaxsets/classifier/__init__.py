"""Flax classifiers trained and fine-tuned data-parallel, as pure jitted functions of arrays."""
from jaxsets.classifier.baseline import train_baseline
from jaxsets.classifier.config import ClassifierConfig
from jaxsets.classifier.evaluate import EvalMetrics, evaluate
from jaxsets.classifier.models import make_model
from jaxsets.classifier.state import ClassifierState, init_state
from jaxsets.classifier.train import SupportBatch, empty_support, finetune, finetune_start

__all__ = ["ClassifierConfig", "ClassifierState", "EvalMetrics", "SupportBatch", "empty_support",
           "evaluate", "finetune", "finetune_start", "init_state", "make_model", "train_baseline"]
