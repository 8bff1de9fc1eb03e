"""A chunk of a task's iterations as one compiled program (`ChunkRunner`)."""

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from plr_jax.train import loops
from plr_jax.train import optim
from plr_jax.train import replay_kinds
from plr_jax.train import sharding
from plr_jax.train import steps
from plr_jax.train.continual_config import ContinualConfig
from plr_jax.train.tasks import TaskData


def make_chunk_runner(config: ContinualConfig, batched: bool = False,
                      mesh: jax.sharding.Mesh | None = None
                      ) -> 'ChunkRunner':
  """A `ChunkRunner`: `runner(state, features, labels, data, length)`.

  Runs `length` iterations (static) in one `lax.scan` over one task's
  `TaskData`. Each iteration draws `batch_size` rows uniformly from
  `data.rows[:data.num_rows]` (padded to a fixed size, so tasks of different
  sizes share one compilation) with a key folded from the state's key and
  step. The replay kind's step (`replay_kinds`) does the rest; the inputs of
  the rows it keeps (`data.memory_rows`) reach it as `info.memory`.
  Cached per config, so every run of the same config reuses one
  compilation.

  Args:
    config: the run's configuration.
    batched: the state and `data` carry a leading seed axis and the
      iteration is `vmap`ped over it: independent runs in one program
      (`features` and `labels` are shared).
    mesh: data parallelism: the current and replay batches are sharded over
      the mesh's `"data"` axis (parameters stay replicated, gradients are
      reduced by XLA).
  """
  return _chunk_runner(config, batched, mesh)


# Iterations per chunk where the loop runs on the host (`loops.slow_convolutions`).
HOST_LOOP_CHUNK = 20


@functools.lru_cache(maxsize=None)
def _chunk_runner(config, batched, mesh):
  """`make_chunk_runner`, cached on all three arguments."""
  tx = optim.adam(config.learning_rate)
  shard = None
  if mesh is not None:
    shard = functools.partial(sharding.constrain_batch, mesh)
  replay_step = replay_kinds.get(config.replay).make_step(config, tx, shard)

  def iteration(state, _, features, labels, rows, num_rows, info):
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), 1)
    pick = rows[jax.random.randint(key, (config.batch_size,), 0, num_rows)]
    batch = steps.Batch(x=features[pick], y=labels[pick])
    if shard is not None:
      batch = shard(batch)
    return replay_step(state, batch, info)

  has_convolutions = (config.inputs == 'images'
                      and bool(config.arch.conv_channels))
  if batched:
    seed_axes = (0, None, None, None, 0, 0, 0)
    iteration = (loops.map_unrolled(iteration, seed_axes)
                 if loops.slow_convolutions(has_convolutions)
                 else jax.vmap(iteration, in_axes=seed_axes))
  host_loop = loops.slow_convolutions(has_convolutions)
  # A host loop gains nothing from long chunks; short ones keep the progress
  # lines coming on slow backends.
  return ChunkRunner(
      loop=loops.make_loop(iteration, host_loop, unroll=config.scan_unroll),
      chunk_size=(min(config.chunk_size, HOST_LOOP_CHUNK) if host_loop
                  else config.chunk_size),
      iteration=iteration)


@dataclasses.dataclass(frozen=True)
class ChunkRunner:
  """Runs a chunk of a task's iterations: `runner(state, features, labels,
  data, length) -> (state, per-iteration metrics)`.

  Attributes:
    loop: the compiled loop (`loops.make_loop`) over `iteration`.
    chunk_size: iterations per chunk the task loop asks for.
    iteration: one iteration, pure (for cost analysis).
  """
  loop: Callable[..., Any]
  chunk_size: int
  iteration: Callable[..., Any]

  def __call__(self, state, features, labels, data: 'TaskData', length: int):
    memory = jax.tree.map(lambda rows: jnp.take(features, rows, axis=0),
                          data.memory_rows)
    return self.loop(state, features, labels, data.rows, data.num_rows,
                     data.info.replace(memory=memory), length=length)
