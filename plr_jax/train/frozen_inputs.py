"""A frozen extractor's level-0 features, computed once per task.

With images as inputs and the extractor frozen after task K
(`ContinualConfig.extractor_trainable_until`, Figure 5's `ir_frozen`), every
iteration of the tasks after K would convolve its batch with parameters that
no longer change. Where the replay kind's step sees images only through the
classifier's extractor (`ReplayKind.frozen_extractor_cacheable`: generative
PLR, no replay), the task loop instead extracts each seed's training rows of
the task once, at the start of the task (or where it resumes), and runs the
task as a features run (`inputs="features"`) over them. The iteration draws
the same positions, so it trains on the same rows; the level-0 values are the
same bit for bit (XLA:CPU's convolution of an image does not depend on the
batch it is in: `tests/test_frozen_inputs.py`), and the frozen extractor's
parameters and Adam moments stay untouched either way (its gate is closed).
Without convolutions in the loop the seeds are vmapped and the chunk is one
`lax.scan` on every backend (`loops.slow_convolutions`), so results agree
with the per-iteration extraction to float tolerance, not bit for bit (as
vmapped seeds agree with seeds run alone).

`ContinualConfig.cache_frozen_features=False` keeps the per-iteration
extraction (the reference's computation order).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.models import inference
from plr_jax.train import chunks
from plr_jax.train import replay_kinds
from plr_jax.train import sharding
from plr_jax.train.continual_config import ContinualConfig
from plr_jax.train.tasks import TaskData


def applies(config: ContinualConfig, task: int) -> bool:
  """Whether 1-based `task` runs on cached features: images as inputs, the
  extractor frozen before the task, a kind whose step reads images only
  through the extractor, and the option on."""
  return (config.cache_frozen_features and config.inputs == 'images'
          and bool(config.arch.conv_channels)
          and config.extractor_trainable_until is not None
          and task > config.extractor_trainable_until
          and replay_kinds.get(config.replay).frozen_extractor_cacheable)


def features_config(config: ContinualConfig) -> ContinualConfig:
  """The run as a features run (what the cached tasks compute with)."""
  return dataclasses.replace(config, inputs='features',
                             extractor_trainable_until=None)


def cached_task(config: ContinualConfig, task: int, classifier_params,
                images, labels, data: TaskData, batched: bool,
                mesh: jax.sharding.Mesh | None = None):
  """How 1-based `task` runs on cached features, or None where it does not
  (`applies`): `(run_chunk, features, labels, data)`, the chunk runner of
  `features_config(config)` and its inputs (`task_inputs`; arguments as
  there)."""
  if not applies(config, task):
    return None
  features, task_labels, data = task_inputs(
      config, classifier_params, images, labels, data, batched, mesh)
  run_chunk = chunks.make_chunk_runner(features_config(config), batched, mesh)
  return run_chunk, features, task_labels, data


def task_inputs(config: ContinualConfig, classifier_params, images,
                labels, data: TaskData, batched: bool,
                mesh: jax.sharding.Mesh | None = None
                ) -> tuple[jax.Array, jax.Array, TaskData]:
  """The task's inputs for the chunk runner of `features_config(config)`.

  Args:
    config: the run's configuration (`applies` holds for the task).
    classifier_params: the classifier's parameters (a leading seed axis if
      `batched`), whose frozen extractor is applied.
    images: the training images [N, H, W, C] (on the device or the host).
    labels: the training labels [N].
    data: the task's `TaskData` (rows of the images).
    batched: the seeds are stacked on a leading axis.
    mesh: as for the run (the features are replicated over it).

  Returns:
    `(features, labels, data)`: level-0 features [S * R, D_0] and labels
    [S * R] of the seeds' task rows, seed after seed, each seed's in its
    `data.rows` order (R: the padded row count; padding rows are zeros and
    never drawn), and `data` whose `rows` point seed i at its block
    i * R .. i * R + R - 1, so the chunk's draws pick the same rows. The
    runner's shared-inputs layout is kept: one array, read per seed.
  """
  if data.memory_rows is not None:
    raise ValueError('cached frozen features need a replay kind that keeps '
                     'no training rows')
  params = sharding.to_host(classifier_params)
  rows = np.asarray(data.rows)
  num_rows = np.asarray(data.num_rows)
  labels = np.asarray(labels)
  if not batched:
    params, rows, num_rows = (jax.tree.map(lambda x: x[None], params),
                              rows[None], num_rows[None])
  seeds, padded_rows = rows.shape
  features = np.zeros((seeds * padded_rows, config.arch.feature_dim),
                      np.float32)
  task_labels = np.zeros(seeds * padded_rows, np.int32)
  for i in range(seeds):
    real = rows[i, :int(num_rows[i])]
    start = i * padded_rows
    features[start:start + len(real)] = inference.extract_features(
        config.arch, {'params': jax.tree.map(lambda x, i=i: x[i], params)},
        np.asarray(images[real]))
    task_labels[start:start + len(real)] = labels[real]
  positions = (np.arange(seeds, dtype=np.int32)[:, None] * padded_rows
               + np.arange(padded_rows, dtype=np.int32)[None])
  if not batched:
    positions = positions[0]
  place = lambda x: sharding.replicate(mesh, jnp.asarray(x))
  return (place(features), place(task_labels),
          data.replace(rows=place(positions)))
