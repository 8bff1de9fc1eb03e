"""A seed's task split and the per-task data a chunk of iterations reads:
rows of the task, the rows the replay kind keeps, the task's `TaskInfo`."""

import dataclasses
from typing import Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.train import replay_kinds
from plr_jax.train import steps
from plr_jax.train.class_order import class_order
from plr_jax.train.class_order import task_of_class
from plr_jax.train.continual_config import ContinualConfig


@dataclasses.dataclass(frozen=True)
class TaskSplit:
  """How one seed's classes split into tasks.

  Attributes:
    order: the class permutation; task t gets its t-th consecutive group.
    train_tasks: the 0-based task of every training row.
    test_tasks: likewise for the test rows.
  """
  order: np.ndarray
  train_tasks: np.ndarray
  test_tasks: np.ndarray


def task_split(config: ContinualConfig, seed: int, train_labels: np.ndarray,
               test_labels: np.ndarray) -> TaskSplit:
  """Seed `seed`'s class order (`config.class_order_rule`) and the tasks of
  the training and test rows."""
  order = class_order(seed, config.arch.num_classes, config.class_order_rule,
                      config.dataset)
  of_class = task_of_class(order, config.num_tasks)
  return TaskSplit(order=order, train_tasks=of_class[train_labels],
                   test_tasks=of_class[test_labels])


@flax.struct.dataclass
class TaskData:
  """One task's data as the chunk runner takes it (a leading seed axis on
  every leaf when the seeds are batched).

  Attributes:
    rows: the task's training rows, int32 [R], padded to the largest task of
      the run (so every task shares one compilation).
    num_rows: how many of `rows` are real, int32 scalar.
    memory_rows: the training rows the replay kind keeps from earlier tasks
      (`ReplayKind.memory_rows`), int32 [M]; None for kinds that keep none.
      The chunk runner hands their inputs to the step as `info.memory`.
    info: the task's `steps.TaskInfo`.
  """
  rows: jax.Array
  num_rows: jax.Array
  memory_rows: jax.Array | None
  info: steps.TaskInfo


def task_data(config: ContinualConfig, splits: Sequence[TaskSplit],
              seeds: Sequence[int], task: int,
              batched: bool = True) -> TaskData:
  """`TaskData` of 1-based `task` for the seeds' splits (stacked on a seed
  axis if `batched`, else the one seed's)."""
  kind = replay_kinds.get(config.replay)
  max_rows = max(int(np.bincount(s.train_tasks,
                                 minlength=config.num_tasks).max())
                 for s in splits)
  per_seed = []
  for seed, split in zip(seeds, splits):
    task_rows = np.flatnonzero(split.train_tasks == task - 1)
    if not len(task_rows):
      raise ValueError(f'task {task} has no training data')
    rows = np.zeros(max_rows, np.int32)
    rows[:len(task_rows)] = task_rows
    memory_rows = kind.memory_rows(
        config,
        jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 0xB0F),
                           task - 1),
        np.flatnonzero(split.train_tasks < task - 1), task)
    per_seed.append(TaskData(
        rows=jnp.asarray(rows), num_rows=jnp.asarray(len(task_rows), jnp.int32),
        memory_rows=None if memory_rows is None else jnp.asarray(memory_rows),
        info=steps.task_info(task, split.order, config.num_tasks,
                             frozen_after=config.extractor_trainable_until)))
  return stack_seeds(per_seed, batched)


def stack_seeds(trees, batched: bool = True):
  """Per-seed pytrees stacked on a leading seed axis (the only one if not
  `batched`), as `run_seeds` and its chunk runner take them."""
  if not batched:
    return trees[0]
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)
