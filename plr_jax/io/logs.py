"""Losses and accuracies written as a run goes: CSV and TensorBoard.

Per seed, `DIR/seed_<s>/` gets
  metrics.csv   step, task, iteration, name, value: every loss the train
                step reports, averaged over blocks of `every` iterations;
  accuracy.csv  after_task, task, accuracy: the test accuracy per task after
                each task (and `average` over the tasks seen);
  events.out.tfevents.*  the same scalars for TensorBoard (`tensorboard
                --logdir DIR`), written by tensorboardX when it is installed.
The step is the iteration counted over the whole run, from 1. A resumed run
first drops what a killed process wrote past its checkpoint (CSV rows are
cut, TensorBoard's events purged from that step), so the logs of a resumed
run are those of an uninterrupted one.

tensorboardX rather than `flax.metrics.tensorboard` or `clu`: both of those
write through TensorFlow, a dependency of gigabytes; tensorboardX is a
maintained, pure-Python writer of the same event files (numpy and protobuf
only). Without it the CSV files are still written.
"""

import csv
import os
from typing import Mapping, Sequence

import numpy as np

_METRICS_HEADER = ['step', 'task', 'iteration', 'name', 'value']
_ACCURACY_HEADER = ['after_task', 'task', 'accuracy']


def _tensorboard_writer(directory: str, purge_step: int):
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  # The suffix keeps a resumed process's file apart from the killed one's
  # when both start within the same second.
  return tensorboardX.SummaryWriter(directory, purge_step=purge_step or None,
                                    flush_secs=30,
                                    filename_suffix=f'.step{purge_step}')


def _cut_csv(path: str, header: list[str], keep) -> None:
  """Rewrites `path` with the rows `keep(row)` accepts (creates it if
  missing)."""
  rows = []
  if os.path.isfile(path):
    with open(path, newline='') as fh:
      reader = csv.reader(fh)
      if next(reader, None) == header:
        rows = [row for row in reader if row and keep(row)]
  tmp = path + '.tmp'
  with open(tmp, 'w', newline='') as fh:
    writer = csv.writer(fh)
    writer.writerow(header)
    writer.writerows(rows)
  os.replace(tmp, path)


class MetricsLog:
  """The logs of one group of seeds (see the module docstring).

  Args:
    directory: where the `seed_<s>/` folders go.
    seeds: the group's seeds, in the order of the metrics' seed axis.
    iters_per_task: iterations per task (for the global step).
    every: average the per-iteration losses over blocks of this many.
  """

  def __init__(self, directory: str, seeds: Sequence[int],
               iters_per_task: int, every: int = 10):
    if every < 1:
      raise ValueError(f'log every must be positive, got {every}')
    self.seeds = [int(s) for s in seeds]
    self.iters_per_task = iters_per_task
    self.every = every
    self._dirs = [os.path.join(directory, f'seed_{s}') for s in self.seeds]
    self._opened = False
    self._csv = []
    self._tb = []

  def step(self, task: int, iteration: int) -> int:
    return (task - 1) * self.iters_per_task + iteration

  def resume(self, task: int, done: int) -> None:
    """Starts the logs at a checkpoint: task `task`, `done` iterations in."""
    self._open(self.step(task, done), task)

  def _open(self, start_step: int, start_task: int) -> None:
    if self._opened:
      return
    self._opened = True
    for directory in self._dirs:
      os.makedirs(directory, exist_ok=True)
      metrics = os.path.join(directory, 'metrics.csv')
      _cut_csv(metrics, _METRICS_HEADER, lambda r: int(r[0]) <= start_step)
      _cut_csv(os.path.join(directory, 'accuracy.csv'), _ACCURACY_HEADER,
               lambda r: int(r[0]) < start_task)
      self._csv.append(open(metrics, 'a', newline=''))
      self._tb.append(_tensorboard_writer(directory, start_step + 1))

  def chunk(self, task: int, first_iteration: int,
            metrics: Mapping[str, np.ndarray], batched: bool) -> None:
    """Logs a chunk's metrics: `{name: [iterations] or [iterations, seeds]}`
    for iterations `first_iteration + 1 ..`."""
    self._open(self.step(task, first_iteration), task)
    for i, (fh, tb) in enumerate(zip(self._csv, self._tb)):
      writer = csv.writer(fh)
      for name in sorted(metrics):
        values = np.asarray(metrics[name], np.float64)
        values = values[:, i] if batched else values.reshape(len(values), -1)[:, 0]
        for start in range(0, len(values), self.every):
          block = values[start:start + self.every]
          iteration = first_iteration + start + len(block)
          step = self.step(task, iteration)
          value = float(block.mean())
          writer.writerow([step, task, iteration, name, repr(value)])
          if tb is not None:
            tb.add_scalar(name, value, step)
      fh.flush()

  def accuracy(self, task: int, rows: np.ndarray) -> None:
    """Logs each seed's test accuracy per task after `task` (`rows`:
    [seeds, tasks])."""
    self._open(self.step(task, self.iters_per_task), task)
    step = self.step(task, self.iters_per_task)
    for directory, row, tb in zip(self._dirs, np.asarray(rows), self._tb):
      values = [(str(j + 1), float(row[j])) for j in range(task)]
      values.append(('average', float(np.mean(row[:task]))))
      with open(os.path.join(directory, 'accuracy.csv'), 'a',
                newline='') as fh:
        writer = csv.writer(fh)
        for name, value in values:
          writer.writerow([task, name, repr(value)])
      if tb is not None:
        for name, value in values:
          tb.add_scalar(f'accuracy/task_{name}' if name != 'average'
                        else 'accuracy/average', value, step)
        tb.flush()

  def close(self) -> None:
    for fh in self._csv:
      fh.close()
    for tb in self._tb:
      if tb is not None:
        tb.close()
    self._csv, self._tb = [], []


class NoLog:
  """A `MetricsLog` that writes nothing (the other processes of a
  multi-host run)."""

  def resume(self, task: int, done: int) -> None:
    del task, done

  def chunk(self, task, first_iteration, metrics, batched) -> None:
    del task, first_iteration, metrics, batched

  def accuracy(self, task: int, rows) -> None:
    del task, rows

  def close(self) -> None:
    pass
