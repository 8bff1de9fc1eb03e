"""Layers initialised as PyTorch initialises them, as the reference code did.

PyTorch's `nn.Linear` and `nn.Conv2d` draw weights and biases from
uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). Flax's defaults (LeCun normal, zero
bias) would also train, but matching the reference keeps the accuracy numbers
comparable.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np


def _uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class Dense(nn.Module):
  """A fully connected layer with PyTorch's default initialisation."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    bound = 1.0 / np.sqrt(fan_in)
    kernel = self.param('kernel', _uniform(bound), (fan_in, self.features))
    bias = self.param('bias', _uniform(bound), (self.features,))
    return x @ kernel + bias


class Conv(nn.Module):
  """A 3x3 convolution, padding 1, with PyTorch's default initialisation."""
  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = 9 * x.shape[-1]
    bound = 1.0 / np.sqrt(fan_in)
    return nn.Conv(
        self.features, (3, 3), strides=self.stride, padding=((1, 1), (1, 1)),
        kernel_init=_uniform(bound), bias_init=_uniform(bound),
        name='conv')(x)
