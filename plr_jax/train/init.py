"""Fresh parameters and the initial training state of a continual run."""

import functools

import jax
import jax.numpy as jnp

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator
from plr_jax.train import optim
from plr_jax.train import steps
from plr_jax.train.continual_config import ContinualConfig


@functools.partial(jax.jit, static_argnums=0)
def init_classifier(arch: arch_lib.ArchConfig, key: jax.Array):
  """Classifier variables (`params`, and `batch_stats` with batch norm)."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return classifier_lib.Classifier(arch).init(key, images)


@functools.partial(jax.jit, static_argnums=0)
def init_generator(arch: arch_lib.ArchConfig, key: jax.Array):
  """Generator parameters."""
  features = jnp.zeros((1, arch.feature_dim), jnp.float32)
  return generator_lib.Generator(arch).init(
      {'params': key}, features, jax.random.key(0))['params']


@functools.partial(jax.jit, static_argnums=0)
def init_image_generator(arch: arch_lib.ArchConfig, key: jax.Array):
  """Parameters of the image VAE used by standard generative replay."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return image_generator.ImageGenerator(arch).init(
      {'params': key}, images, jax.random.key(0))['params']


def init_state(config: ContinualConfig, key: jax.Array,
               classifier_params=None) -> steps.PLRState:
  """A fresh PLR state; on cached features the extractor is left out."""
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
  if config.replay != 'buffer':
    gen = (init_image_generator(config.arch, gen_key)
           if config.replay == 'images' else
           init_generator(config.arch, gen_key))
    generator = steps.TrainState.create(gen, tx)
    prev_generator = steps.copy_tree(gen)
  return steps.PLRState(
      classifier=steps.TrainState.create(top, tx), generator=generator,
      prev_classifier=steps.copy_tree(top), prev_generator=prev_generator,
      key=run_key, step=jnp.zeros((), jnp.int32))
