"""A VAE over images, for standard generative replay (GR, Figure 5).

Its encoder has the classifier's shape (the convolutional extractor, then the
hidden stack) and its decoder mirrors it back to an image: dense layers to the
extractor's output size, then transposed convolutions. The prior is the same
per-class Gaussian mixture as `Generator`'s, so the same losses and sampling
serve. The convolutional parts are named `conv_encoder` and `conv_decoder`,
so that they can be frozen after the first task (`gr_frozen`).
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

from plr_jax import classifier as classifier_lib
from plr_jax import config as config_lib
from plr_jax import generator as generator_lib
from plr_jax import layers
from plr_jax import losses


class ConvDecoder(nn.Module):
  """Transposed 3x3 convolutions mirroring `ConvExtractor` back to images."""
  arch: config_lib.ArchConfig

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    arch = self.arch
    shapes = arch.spatial_shapes
    x = h.reshape((h.shape[0],) + arch.extractor_output_shape)
    channels = list(arch.conv_channels[:-1])[::-1] + [arch.image_shape[2]]
    for i, (out, stride) in enumerate(zip(channels,
                                          arch.conv_strides[::-1])):
      x = layers.ConvTranspose(out, stride, name=f'deconv_{i + 1}')(x)
      target = shapes[len(shapes) - 2 - i]
      x = x[:, :target[0], :target[1], :]
      if i < len(channels) - 1:
        x = nn.relu(x)
    return x


class ImageGenerator(nn.Module):
  """VAE over images with a per-class Gaussian-mixture prior."""
  arch: config_lib.ArchConfig

  def setup(self):
    arch = self.arch
    if arch.conv_batch_norm:
      raise ValueError(f'{arch.name}: the image generator supports '
                       'extractors without batch norm only')
    self.conv_encoder = classifier_lib.ConvExtractor(
        arch.conv_channels, arch.conv_strides, False, True)
    self.enc = {str(j): layers.Dense(width)
                for j, width in enumerate(arch.hidden, start=1)}
    self.to_mean = layers.Dense(arch.z_dim)
    self.to_logvar = layers.Dense(arch.z_dim)
    widths = (arch.feature_dim,) + tuple(arch.hidden[:-1])
    self.dec = {str(n): layers.Dense(width) for n, width in enumerate(widths)}
    self.conv_decoder = ConvDecoder(arch)
    self.prior_mean = self.param(
        'prior_mean', nn.initializers.normal(1.0),
        (arch.num_classes, arch.z_dim))
    self.prior_logvar = self.param(
        'prior_logvar', nn.initializers.zeros, (arch.num_classes, arch.z_dim))

  def __call__(self, images: jax.Array, key: jax.Array):
    """`(mean, logvar, z, (reconstructed images,))`, like `Generator`."""
    return self.reconstruct(
        images, generator_lib.latent_noise(self.arch, key, images))

  def reconstruct(self, images: jax.Array, eps: jax.Array):
    """`__call__` with the standard normal noise `eps` [B, z] given."""
    mean, logvar = self.encode(images)
    z = mean + jnp.exp(0.5 * losses.clip_logvar(logvar)) * eps
    return mean, logvar, z, (self.decode(z),)

  def encode(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = self.conv_encoder(images)
    for j in range(1, self.arch.num_levels + 1):
      h = nn.relu(self.enc[str(j)](h))
    return self.to_mean(h), self.to_logvar(h)

  def decode(self, z: jax.Array) -> jax.Array:
    h = z
    for n in range(self.arch.num_levels - 1, -1, -1):
      h = self.dec[str(n)](h)
      if n or self.arch.conv_channels:  # no convolutions: linear pixels
        h = nn.relu(h)
    return self.conv_decoder(h)

  def sample(self, key: jax.Array, class_mask: jax.Array, num: int):
    """`(classes [num], (images [num, H, W, C],))`."""
    class_key, z_key = jax.random.split(key)
    logits = jnp.where(class_mask, 0.0, -jnp.inf)
    classes = jax.random.categorical(class_key, logits, shape=(num,))
    std = jnp.exp(0.5 * losses.clip_logvar(self.prior_logvar[classes]))
    z = self.prior_mean[classes] + std * jax.random.normal(
        z_key, (num, self.arch.z_dim))
    return classes, (self.decode(z),)
