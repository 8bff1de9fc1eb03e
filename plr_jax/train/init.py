"""The initial training state of a continual run."""

import jax
import jax.numpy as jnp

from plr_jax.models.init import init_classifier
from plr_jax.train import optim
from plr_jax.train import replay_kinds
from plr_jax.train import steps


def init_state(config, key: jax.Array,
               classifier_params=None) -> steps.PLRState:
  """A fresh `PLRState` for `config` (a `ContinualConfig`): the classifier
  (without its extractor on cached features) and the replay kind's
  generator, if it has one."""
  cls_key, gen_key, run_key = jax.random.split(key, 3)
  if classifier_params is None:
    classifier_params = init_classifier(config.arch, cls_key)['params']
  # Own buffers: the steps donate the state, which must not delete the
  # caller's arrays.
  top = steps.copy_tree(
      {k: v for k, v in classifier_params.items()
       if k != 'extractor' or config.inputs == 'images'})
  tx = optim.adam(config.learning_rate)
  generator = prev_generator = None
  params = replay_kinds.get(config.replay).init_generator(config, gen_key)
  if params is not None:
    generator = steps.TrainState.create(params, tx)
    prev_generator = steps.copy_tree(params)
  return steps.PLRState(
      classifier=steps.TrainState.create(top, tx), generator=generator,
      prev_classifier=steps.copy_tree(top), prev_generator=prev_generator,
      key=run_key, step=jnp.zeros((), jnp.int32))
