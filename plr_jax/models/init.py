"""Fresh parameters of the networks, jit-compiled per architecture."""

import functools

import jax
import jax.numpy as jnp

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator


@functools.partial(jax.jit, static_argnums=0)
def init_classifier(arch: arch_lib.ArchConfig, key: jax.Array):
  """Classifier variables (`params`, and `batch_stats` with batch norm)."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return classifier_lib.Classifier(arch).init(key, images)


@functools.partial(jax.jit, static_argnums=0)
def init_generator(arch: arch_lib.ArchConfig, key: jax.Array):
  """Parameters of the feature VAE (generative PLR)."""
  features = jnp.zeros((1, arch.feature_dim), jnp.float32)
  return generator_lib.Generator(arch).init(
      {'params': key}, features, jax.random.key(0))['params']


@functools.partial(jax.jit, static_argnums=0)
def init_image_generator(arch: arch_lib.ArchConfig, key: jax.Array):
  """Parameters of the image VAE of standard generative replay."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return image_generator.ImageGenerator(arch).init(
      {'params': key}, images, jax.random.key(0))['params']
