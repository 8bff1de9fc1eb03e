"""A seed's task split and the per-task data a chunk of iterations reads:
rows of the task, the replay buffer, the task's static `TaskInfo`."""

import dataclasses
from typing import Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

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
    buffer_rows: the training rows stored for buffer replay, int32 [M]
      (zeros in task 1; [1] for generative replay, unused).
    info: the task's `steps.TaskInfo`.
  """
  rows: jax.Array
  num_rows: jax.Array
  buffer_rows: jax.Array
  info: steps.TaskInfo


def task_data(config: ContinualConfig, splits: Sequence[TaskSplit],
              seeds: Sequence[int], task: int,
              batched: bool = True) -> TaskData:
  """`TaskData` of 1-based `task` for the seeds' splits (stacked on a seed
  axis if `batched`, else the one seed's)."""
  max_rows = max(int(np.bincount(s.train_tasks,
                                 minlength=config.num_tasks).max())
                 for s in splits)
  num_buffer = config.buffer_size if config.replay == 'buffer' else 1
  per_seed = []
  for seed, split in zip(seeds, splits):
    task_rows = np.flatnonzero(split.train_tasks == task - 1)
    if not len(task_rows):
      raise ValueError(f'task {task} has no training data')
    rows = np.zeros(max_rows, np.int32)
    rows[:len(task_rows)] = task_rows
    buffer_rows = jnp.zeros((num_buffer,), jnp.int32)
    if config.replay == 'buffer' and task > 1:
      buffer_rows = _fill_buffer(
          jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 0xB0F),
                             task - 1),
          np.flatnonzero(split.train_tasks < task - 1), config.buffer_size)
    per_seed.append(TaskData(
        rows=jnp.asarray(rows), num_rows=jnp.asarray(len(task_rows), jnp.int32),
        buffer_rows=buffer_rows,
        info=steps.task_info(task, split.order, config.num_tasks,
                             frozen_after=config.extractor_trainable_until)))
  return stack_seeds(per_seed, batched)


def stack_seeds(trees, batched: bool = True):
  """Per-seed pytrees stacked on a leading seed axis (the only one if not
  `batched`), as `run_seeds` and its chunk runner take them."""
  if not batched:
    return trees[0]
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def _fill_buffer(key: jax.Array, seen_rows: np.ndarray,
                 size: int) -> jax.Array:
  """`size` training rows from the tasks seen, without replacement if enough."""
  pick = jax.random.choice(key, len(seen_rows), (size,),
                           replace=len(seen_rows) < size)
  return jnp.asarray(seen_rows[np.asarray(pick)], jnp.int32)
