"""Accuracy over seeds; batched inference is `models.inference`."""

import numpy as np

from plr_jax.models import inference

# Re-exported: evaluation code reads them from here.
extract_features = inference.extract_features
predict = inference.predict
task_accuracies = inference.task_accuracies


def mean_and_sem(values) -> tuple[float, float]:
  """Mean and standard error of the mean (0 for a single value)."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float(values.mean()), 0.0
  return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
