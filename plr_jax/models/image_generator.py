"""A VAE over images, for standard generative replay (GR, Figure 5).

The reference's separate image generator (the authors' `models/vae.py`
without internal replay). Its encoder has the classifier's shape (the
convolutional extractor, last convolution as the classifier's, then the
hidden stack) and heads to the latent mean and log-variance (no bias). The
decoder starts with `from_z` (z to the last hidden size, ReLU), mirrors the
hidden stack back to the extractor's output size (ReLU), then mirrors the
convolutions with PyTorch-style transposed convolutions: kernel 4, stride 2,
padding 1 where the extractor strides by 2; kernel 3, stride 1, padding 1
where it does not. Fashion-MNIST: z(10) -> 100 -> 3136 -> 7x7x64 -> 14x14x32
-> 28x28x16 -> 28x28x1.

With `bernoulli` (inputs in [0, 1], the reference's Fashion-MNIST setting)
the last layer's outputs are pixel logits: images are their sigmoid and the
reconstruction loss is binary cross-entropy. Otherwise (standardised inputs)
the outputs are the pixels themselves, linear. The prior is the same
per-class Gaussian mixture as `Generator`'s. The convolutional parts are
named `conv_encoder` and `conv_decoder`, so that they can be frozen after the
first task (`gr_frozen`).
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import generator as generator_lib
from plr_jax.models import layers

# Transposed convolution (kernel, padding) mirroring a 3x3 convolution of
# each stride, as the reference's decoder builds them.
_DECONV = {1: (3, 1), 2: (4, 1)}


class ConvDecoder(nn.Module):
  """Transposed convolutions mirroring `ConvExtractor` back to an image;
  the last layer is linear."""
  arch: arch_lib.ArchConfig

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    arch = self.arch
    shapes = arch.spatial_shapes
    x = h.reshape((h.shape[0],) + arch.extractor_output_shape)
    channels = list(arch.conv_channels[:-1])[::-1] + [arch.image_shape[2]]
    strides = arch.conv_strides[::-1]
    for i, (out, stride) in enumerate(zip(channels, strides)):
      target = shapes[len(shapes) - 2 - i]
      if stride not in _DECONV or tuple(
          d * stride for d in x.shape[1:3]) != tuple(target):
        raise ValueError(
            f'{arch.name}: the image decoder mirrors stride-1 and stride-2 '
            f'convolutions of even sizes only (stride {stride}, '
            f'{x.shape[1:3]} -> {target})')
      kernel, padding = _DECONV[stride]
      x = layers.ConvTranspose(out, kernel, stride, padding,
                               name=f'deconv_{i + 1}')(x)
      if i < len(channels) - 1:
        x = nn.relu(x)
    return x


class ImageGenerator(nn.Module):
  """VAE over images with a per-class Gaussian-mixture prior.

  Attributes:
    arch: the classifier's architecture, whose shape the VAE mirrors.
    bernoulli: pixels in [0, 1] with a Bernoulli likelihood (the decoder's
      raw output is logits); False: a linear output for standardised pixels.
  """
  arch: arch_lib.ArchConfig
  bernoulli: bool = True

  def setup(self):
    arch = self.arch
    if arch.conv_batch_norm:
      raise ValueError(f'{arch.name}: the image generator supports '
                       'extractors without batch norm only')
    self.conv_encoder = classifier_lib.ConvExtractor(
        arch.conv_channels, arch.conv_strides, False, arch.conv_last_relu)
    self.enc = {str(j): layers.Dense(width)
                for j, width in enumerate(arch.hidden, start=1)}
    self.to_mean = layers.Dense(arch.z_dim)
    self.to_logvar = layers.Dense(arch.z_dim, use_bias=False)
    self.from_z = layers.Dense(arch.hidden[-1])
    widths = (arch.feature_dim,) + tuple(arch.hidden[:-1])
    self.dec = {str(n): layers.Dense(width) for n, width in enumerate(widths)}
    if arch.conv_channels:
      self.conv_decoder = ConvDecoder(arch)
    self.prior_mean, self.prior_logvar = (
        generator_lib.gaussian_mixture_prior(self, arch))

  def __call__(self, images: jax.Array, key: jax.Array):
    """`(mean, logvar, z, (raw output,))`, like `Generator`."""
    return self.reconstruct(
        images, generator_lib.latent_noise(self.arch, key, images))

  def reconstruct(self, images: jax.Array, eps: jax.Array):
    """`__call__` with the standard normal noise `eps` [B, z] given. The
    output is the decoder's raw output (`to_images` makes images of it)."""
    mean, logvar = self.encode(images)
    z = mean + jnp.exp(0.5 * layers.clip_logvar(logvar)) * eps
    return mean, logvar, z, (self.decode_raw(z),)

  def encode(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = self.conv_encoder(images)
    for j in range(1, self.arch.num_levels + 1):
      h = nn.relu(self.enc[str(j)](h))
    return self.to_mean(h), self.to_logvar(h)

  def decode_raw(self, z: jax.Array) -> jax.Array:
    """Pixel logits (`bernoulli`) or pixels [B, H, W, C] of latents z."""
    h = nn.relu(self.from_z(z))
    for n in range(self.arch.num_levels - 1, -1, -1):
      h = self.dec[str(n)](h)
      if n or self.arch.conv_channels:  # no convolutions: the last is linear
        h = nn.relu(h)
    if self.arch.conv_channels:
      return self.conv_decoder(h)
    return h.reshape((h.shape[0],) + tuple(self.arch.image_shape))

  def to_images(self, raw: jax.Array) -> jax.Array:
    """Images from the decoder's raw output."""
    return to_images(raw, self.bernoulli)

  def decode(self, z: jax.Array) -> jax.Array:
    """Images [B, H, W, C] of latents z."""
    return self.to_images(self.decode_raw(z))

  def sample(self, key: jax.Array, class_mask: jax.Array, num: int):
    """`(classes [num], (images [num, H, W, C],))`."""
    class_key, z_key = jax.random.split(key)
    logits = jnp.where(class_mask, 0.0, -jnp.inf)
    classes = jax.random.categorical(class_key, logits, shape=(num,))
    std = jnp.exp(0.5 * layers.clip_logvar(self.prior_logvar[classes]))
    z = self.prior_mean[classes] + std * jax.random.normal(
        z_key, (num, self.arch.z_dim))
    return classes, (self.decode(z),)


def to_images(raw: jax.Array, bernoulli: bool) -> jax.Array:
  """Images from an `ImageGenerator`'s raw output: the sigmoid of pixel
  logits (`bernoulli`) or the pixels themselves."""
  return jax.nn.sigmoid(raw) if bernoulli else raw
