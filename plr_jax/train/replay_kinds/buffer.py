"""Buffer replay: stored level-0 features of earlier tasks, their levels
recomputed by the previous classifier (Table 1; `steps.make_buffer_step`)."""

import jax
import numpy as np

from plr_jax.train import steps
from plr_jax.train.replay_kinds import base


class Buffer(base.ReplayKind):
  name = 'buffer'
  description = ('a buffer of stored level-0 features of earlier tasks '
                 '(Table 1)')

  def validate(self, config):
    if config.inputs != 'features':
      raise ValueError('buffer replay stores level-0 features: it needs '
                       'inputs="features"')

  def make_step(self, config, tx, shard):
    return steps.make_buffer_step(config.arch, config.strategy,
                                  config.replay_size, tx, shard=shard,
                                  jit=False)

  def memory_rows(self, config, key, earlier_rows, task):
    """`config.buffer_size` rows of the earlier tasks, drawn without
    replacement if there are enough (zeros in task 1, unused)."""
    if task == 1:
      return np.zeros(config.buffer_size, np.int32)
    pick = jax.random.choice(key, len(earlier_rows), (config.buffer_size,),
                             replace=len(earlier_rows) < config.buffer_size)
    return np.asarray(earlier_rows[np.asarray(pick)], np.int32)


KIND = Buffer()
