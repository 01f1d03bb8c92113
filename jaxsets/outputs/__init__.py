"""What a run leaves in its workdir, written at the end of `jaxsets run`:

  support_set/      PNGs per class, manifest.jsonl, tfds/ (see support_set.py)
  results.json      each arm's test metrics, seed, config
  report.md, plots/ the comparison for a person
  tensorboard/      training curves (MetricWriter, the only user of tensorboardX)

Every file is written atomically (jaxsets.atomic), and support_set/ appears as a whole.
"""
from jaxsets.outputs.metrics import MetricWriter
from jaxsets.outputs.report import write_report
from jaxsets.outputs.results import write_results
from jaxsets.outputs.support_set import SupportSet, load_support_set, write_support_set

__all__ = ["MetricWriter", "SupportSet", "load_support_set", "write_report", "write_results",
           "write_support_set"]
