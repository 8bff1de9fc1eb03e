"""What a continual run has produced so far, and its checkpointed form."""

import dataclasses
import math
import time

import numpy as np


@dataclasses.dataclass
class RunProgress:
  """What a run has produced so far, and its checkpointed form.

  Attributes:
    accuracy: [seeds, tasks, tasks], rows filled up to the last task done.
    histories: per seed, per finished task, the metrics of every iteration.
    chunks: the current task's metrics so far, one dict per chunk.
    earlier_s: training seconds of the processes before this one, each
      counted up to its last checkpoint (NaN: a checkpoint written by code
      that did not count them).
    processes: how many processes have trained this run, this one included.
  """
  accuracy: np.ndarray
  histories: list[list[dict[str, np.ndarray]]]
  chunks: list[dict[str, np.ndarray]] = dataclasses.field(
      default_factory=list)
  earlier_s: float = 0.0
  processes: int = 1
  _start: float = dataclasses.field(default_factory=time.perf_counter,
                                    repr=False)

  def seconds(self) -> float:
    """Training seconds so far over every process (NaN if unknown)."""
    return self.earlier_s + time.perf_counter() - self._start

  def end_task(self, batched: bool) -> None:
    """The current task's chunks become each seed's history entry."""
    for i, history in enumerate(self.histories):
      # Scanned metrics are [iterations, seeds] when batched.
      history.append({
          k: np.concatenate([c[k][:, i] if batched else c[k]
                             for c in self.chunks])
          for k in self.chunks[0]})
    self.chunks = []

  def pack(self) -> dict[str, np.ndarray]:
    """Accuracy rows and losses so far, as flat arrays for a checkpoint."""
    arrays = {'accuracy': self.accuracy,
              'seconds': np.float64(self.seconds()),
              'processes': np.int64(self.processes)}
    for i, history in enumerate(self.histories):
      for k, task_metrics in enumerate(history):
        for name, values in task_metrics.items():
          arrays[f'history|{i}|{k}|{name}'] = values
    for name in (self.chunks[0] if self.chunks else {}):
      arrays[f'current|{name}'] = np.concatenate([c[name]
                                                  for c in self.chunks])
    return arrays

  @classmethod
  def unpack(cls, arrays, num_seeds: int, task: int) -> 'RunProgress':
    """Inverse of `pack` for a checkpoint taken in `task`."""
    histories = [[{} for _ in range(task - 1)] for _ in range(num_seeds)]
    chunks = {}
    for key, values in arrays.items():
      parts = key.split('|')
      if parts[0] == 'history':
        histories[int(parts[1])][int(parts[2])][parts[3]] = values
      elif parts[0] == 'current':
        chunks[parts[1]] = values
    earlier = (float(arrays['seconds']) if 'seconds' in arrays
               else math.nan)
    return cls(accuracy=arrays['accuracy'], histories=histories,
               chunks=[chunks] if chunks else [], earlier_s=earlier,
               processes=int(arrays.get('processes', 1)) + 1)
